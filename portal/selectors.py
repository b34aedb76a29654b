"""Who may see what. Every page and API endpoint starts from one of these querysets, so the
tenancy rule lives in one place:

- a client user sees the Clients they belong to (ClientMembership), and those clients' jobs;
  a head office's client users also see its live sites (`Client.parent`, ServiceM8's
  `parent_company_uuid`) and their jobs, never the other way round: a site's users do not
  see the head office. (A ServiceTitan merge is not a site: its mapping sets no parent.)
  Sites are read into the same id list as the memberships, by one query on the indexed
  `parent_id`; a site linked or unlinked by a sync shows within SCOPE_CACHE_SECONDS in the
  API (the portal's pages read the scope per request);
- a company's team members (TeamMembership) see everything of their company's integrations;
- superusers (Fieldbridge operators) see everything.

Scopes use `IN (subquery)` rather than joins, so a user who is both a client user and a team
member never gets duplicate rows and no `DISTINCT` is needed. Records the provider deleted
(`remote_deleted_at`) are hidden, and so is everything of a deleted client.
"""

import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Q, QuerySet

from portal.models import Client, ClientMembership, Company, Job, TeamMembership, User


def user_client_ids(user: User):
    return ClientMembership.objects.filter(user=user).values("client_id")


def user_company_ids(user: User):
    return TeamMembership.objects.filter(user=user).values("company_id")


@dataclass(frozen=True)
class Scope:
    client_ids: tuple[int, ...]
    integration_ids: tuple[int, ...]


SCOPE_CACHE_SECONDS = 30
SCOPE_VERSION_KEY = "portal:user-scope:version"


def _scope_cache_key(user: User) -> str:
    # date_joined guards against a reused id (a recreated test database, same Redis).
    joined = user.date_joined.timestamp() if user.date_joined else 0
    return f"portal:user-scope:{user.pk}:{joined}"


def user_scope_invalidate() -> None:
    """Retire every cached scope (portal.signals calls it when memberships change)."""
    cache.set(SCOPE_VERSION_KEY, uuid.uuid4().hex, None)


def _user_scope_query(user: User) -> Scope:
    from integrations.models import Integration

    member_of = user_client_ids(user)
    # The user's clients and the live sites of those clients, in one query.
    client_ids = (
        Client.objects.filter(
            Q(pk__in=member_of)
            | Q(parent_id__in=member_of, remote_deleted_at__isnull=True, is_active=True)
        )
        .order_by()
        .values_list("pk", flat=True)
    )
    return Scope(
        client_ids=tuple(client_ids),
        integration_ids=tuple(
            Integration.objects.filter(company_id__in=user_company_ids(user)).values_list(
                "id", flat=True
            )
        ),
    )


def user_scope_cache_keys(user: User) -> tuple[str, str]:
    """The cache entries user_scope reads for a user flagged `share_scope_cache`."""
    return (SCOPE_VERSION_KEY, _scope_cache_key(user))


def user_scope_prefetched(user: User, found: dict) -> None:
    """Hand user_scope the entries of user_scope_cache_keys read elsewhere (the API reads
    them in its throttles' Redis round trip, portal.api.mixins): {key: value} of those found."""
    user._fieldbridge_scope_found = found


def user_scope(user: User) -> Scope:
    """The ids a non-superuser may see, read once per request (cached on the user object):
    plain id lists let PostgreSQL walk an index in page order instead of filtering 100,000
    rows through subqueries.

    Across requests the scope is cached for SCOPE_CACHE_SECONDS with the scope version it was
    read under, fetched together with the current version (one cache round trip); a change of
    membership or integration bumps the version (portal.signals), so it applies at once.
    Only for users flagged `share_scope_cache` (the API's, by CompanyScopedApiMixin): the
    portal's pages keep reading it per request (their query-count tests pin that)."""
    cached = getattr(user, "_fieldbridge_scope", None)
    if cached is None and not getattr(user, "share_scope_cache", False):
        cached = user._fieldbridge_scope = _user_scope_query(user)
    if cached is None:
        key = _scope_cache_key(user)
        found = getattr(user, "_fieldbridge_scope_found", None)
        if found is None:
            found = cache.get_many([SCOPE_VERSION_KEY, key])
        version = found.get(SCOPE_VERSION_KEY)
        stored = found.get(key)
        if version is not None and stored is not None and stored[0] == version:
            cached = Scope(client_ids=stored[1], integration_ids=stored[2])
        else:
            if version is None:  # never set, or evicted: start one, cache from the next read
                cache.add(SCOPE_VERSION_KEY, uuid.uuid4().hex, None)
            cached = _user_scope_query(user)
            if version is not None:
                stored = (version, cached.client_ids, cached.integration_ids)
                cache.set(key, stored, SCOPE_CACHE_SECONDS)
        user._fieldbridge_scope = cached
    return cached


def _scope_fields(user: User, *, client_field: str | None) -> dict[str, tuple[int, ...]] | None:
    """The user's scope as {field: ids} of a row with an `integration` and a client (through
    `client_field`), fields with no ids left out; None means "everything" (a superuser), {}
    nothing (anonymous or inactive users, or an empty scope)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return {}
    if user.is_superuser:
        return None
    scope = user_scope(user)
    fields = {"integration_id": scope.integration_ids}
    if client_field is not None:
        fields[client_field] = scope.client_ids
    return {field: ids for field, ids in fields.items() if ids}


def visibility_q(user: User, *, client_field: str | None) -> Q | None:
    """The scope of a row with a `client` (through `client_field`) and an `integration`.
    None means "everything" (a superuser); a Q that matches nothing for anonymous users."""
    fields = _scope_fields(user, client_field=client_field)
    if fields is None:
        return None
    if not fields:
        return Q(pk__in=[])
    combined = Q()
    for field, ids in fields.items():
        combined |= Q(**{f"{field}__in": ids})
    return combined


# More branches than this and one walk filtering the ordering index is the better plan.
MAX_SCOPE_BRANCHES = 16


def visibility_branches(
    user: User, *, client_field: str | None
) -> dict[str, tuple[int, ...]] | None:
    """The user's scope split into one branch per integration and per client ({field:
    values}), for lists paged newest id first (portal.api.pagination._Branched): PostgreSQL
    can walk an `(integration, id)` or `(client, id)` index in id order for one value, not
    for a list, so a scope of two integrations would otherwise walk the primary key and skip
    every other tenant's newer rows. None when one walk does: a superuser, a scope of one
    integration or client, or more than MAX_SCOPE_BRANCHES (each branch is a LIMIT-ed walk)."""
    fields = _scope_fields(user, client_field=client_field)
    if not fields or not 2 <= sum(len(ids) for ids in fields.values()) <= MAX_SCOPE_BRANCHES:
        return None
    return fields


def _scoped(queryset: QuerySet, user: User, *, client_field: str | None) -> QuerySet:
    scope = visibility_q(user, client_field=client_field)
    return queryset if scope is None else queryset.filter(scope)


def company_list_visible_to(*, user: User) -> QuerySet[Company]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Company.objects.none()
    if user.is_superuser:
        return Company.objects.all()
    return Company.objects.filter(pk__in=user_company_ids(user))


def client_list_visible_to(*, user: User) -> QuerySet[Client]:
    """Live clients the user may see."""
    return _scoped(Client.objects.filter(remote_deleted_at__isnull=True), user, client_field="pk")


def job_list_visible_to(*, user: User) -> QuerySet[Job]:
    """Live jobs of live clients the user may see."""
    jobs = Job.objects.filter(remote_deleted_at__isnull=True).exclude(
        client__remote_deleted_at__isnull=False
    )
    return _scoped(jobs, user, client_field="client_id").select_related("client")
