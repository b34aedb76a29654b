"""Show times in the business's time zone: a 09:00 Sydney visit reads 09:00, not 23:00 UTC the
day before, and the jobs list's date filters cut days where the business is. The API keeps
UTC (its timestamps carry their offset anyway)."""

from django.utils import timezone

from portal.models import ClientMembership, TeamMembership, zone_named


def user_timezone_name(user) -> str | None:
    """The time zone of the company the user works for, or whose client they belong to."""
    if not getattr(user, "is_authenticated", False):
        return None
    name = (
        TeamMembership.objects.filter(user=user)
        .order_by("pk")
        .values_list("company__timezone", flat=True)
        .first()
    )
    return name or (
        ClientMembership.objects.filter(user=user)
        .order_by("pk")
        .values_list("client__integration__company__timezone", flat=True)
        .first()
    )


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
