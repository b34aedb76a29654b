"""Show times in the business's time zone: a 09:00 Sydney visit reads 09:00, not 23:00 UTC the
day before, and the jobs list's date filters cut days where the business is. The API keeps
UTC (its timestamps carry their offset anyway)."""

from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from portal.models import ClientMembership, TeamMembership, User, zone_named


def user_timezone_name(user) -> str | None:
    """The time zone of the company the user works for, or whose client they belong to: one
    query on every portal page (the first team membership's company, else the first client
    membership's)."""
    if not getattr(user, "is_authenticated", False):
        return None
    team = (
        TeamMembership.objects.filter(user=OuterRef("pk"))
        .order_by("pk")
        .values("company__timezone")[:1]
    )
    client = (
        ClientMembership.objects.filter(user=OuterRef("pk"))
        .order_by("pk")
        .values("client__integration__company__timezone")[:1]
    )
    zone = Coalesce(NullIf(Subquery(team), Value("")), Subquery(client), output_field=CharField())
    return User.objects.filter(pk=user.pk).values_list(zone, flat=True).first()


class CompanyTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = None
        if not request.path.startswith(("/api/", "/webhooks/", "/health", "/metrics")):
            zone = zone_named(user_timezone_name(getattr(request, "user", None)))
        if zone is None:
            return self.get_response(request)
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
