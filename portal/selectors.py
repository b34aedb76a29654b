"""Who may see what. Every page and API endpoint starts from one of these querysets, so the
tenancy rule lives in one place:

- a client user sees the Clients they belong to (ClientMembership), and those clients' jobs;
- a company's team members (TeamMembership) see everything of their company's integrations;
- superusers (Fieldbridge operators) see everything.

Scopes use `IN (subquery)` rather than joins, so a user who is both a client user and a team
member never gets duplicate rows and no `DISTINCT` is needed. Records the provider deleted
(`remote_deleted_at`) are hidden, and so is everything of a deleted client.
"""

from dataclasses import dataclass

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


def user_scope(user: User) -> Scope:
    """The ids a non-superuser may see, read once per request (cached on the user object):
    plain id lists let PostgreSQL walk an index in page order instead of filtering 100,000
    rows through subqueries."""
    cached = getattr(user, "_fieldbridge_scope", None)
    if cached is None:
        from integrations.models import Integration

        cached = Scope(
            client_ids=tuple(user_client_ids(user).values_list("client_id", flat=True)),
            integration_ids=tuple(
                Integration.objects.filter(company_id__in=user_company_ids(user)).values_list(
                    "id", flat=True
                )
            ),
        )
        user._fieldbridge_scope = cached
    return cached


def visibility_q(user: User, *, client_field: str | None) -> Q | None:
    """The scope of a row with a `client` (through `client_field`) and an `integration`.
    None means "everything" (a superuser); a Q that matches nothing for anonymous users."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Q(pk__in=[])
    if user.is_superuser:
        return None
    scope = user_scope(user)
    parts = []
    if scope.integration_ids:
        parts.append(Q(integration_id__in=scope.integration_ids))
    if client_field is not None and scope.client_ids:
        parts.append(Q(**{f"{client_field}__in": scope.client_ids}))
    if not parts:
        return Q(pk__in=[])
    combined = parts[0]
    for part in parts[1:]:
        combined |= part
    return combined


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


def client_list_for_user(*, user: User) -> QuerySet[Client]:
    """The clients a client user belongs to, live ones only (the portal's client switcher)."""
    return Client.objects.filter(
        pk__in=user_client_ids(user), remote_deleted_at__isnull=True
    ).order_by("name")


def job_list_for_user(*, user: User) -> QuerySet[Job]:
    return job_list_visible_to(user=user)
