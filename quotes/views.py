from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from portal.selectors import client_list_for_user, job_list_for_user
from quotes.selectors import quote_list_awaiting_decision


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Quotes awaiting a decision first, then upcoming and recent jobs."""
    now = timezone.now()
    jobs = job_list_for_user(user=request.user)
    context = {
        "clients": client_list_for_user(user=request.user),
        "awaiting_quotes": quote_list_awaiting_decision(user=request.user)[:20],
        "upcoming_jobs": jobs.filter(scheduled_start__gte=now).order_by("scheduled_start")[:10],
        "recent_jobs": jobs.filter(scheduled_start__lt=now).order_by("-scheduled_start")[:10],
    }
    return render(request, "portal/dashboard.html", context)
