"""Who may see what. Every page and API endpoint starts from one of these querysets, so the
tenancy rule lives in one place:

- a client user sees the Clients they belong to (ClientMembership), and those clients' jobs;
- a company's team members (TeamMembership) see everything of their company's integrations;
- superusers (Fieldbridge operators) see everything.

Scopes use `IN (subquery)` rather than joins, so a user who is both a client user and a team
member never gets duplicate rows and no `DISTINCT` is needed. Records the provider deleted
(`remote_deleted_at`) are hidden, and so is everything of a deleted client.
"""

from django.db.models import Q, QuerySet

from portal.models import Client, ClientMembership, Company, Job, TeamMembership, User


def user_client_ids(user: User):
    return ClientMembership.objects.filter(user=user).values("client_id")


def user_company_ids(user: User):
    return TeamMembership.objects.filter(user=user).values("company_id")


def visibility_q(user: User, *, client_field: str | None) -> Q | None:
    """The scope of a row with a `client` (through `client_field`) and an `integration`.
    None means "everything" (a superuser); a Q that matches nothing for anonymous users."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Q(pk__in=[])
    if user.is_superuser:
        return None
    scope = Q(integration__company_id__in=user_company_ids(user))
    if client_field is not None:
        scope |= Q(**{f"{client_field}__in": user_client_ids(user)})
    return scope


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
