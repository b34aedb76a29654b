"""Client portal pages outside quotes: sign-in (throttled), password reset, invitations, jobs."""

from __future__ import annotations

import hashlib
from datetime import datetime, time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.dateparse import parse_date

from portal.exports import csv_response
from portal.models import Job, JobActivity
from portal.paging import keyset_page
from portal.search import text_search
from portal.selectors import client_list_visible_to, job_list_visible_to
from portal.services import invitation_user


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address. Behind PORTAL_NUM_PROXIES trusted proxies, the address the
    outermost of them saw: that many hops from the right of X-Forwarded-For (hops further left
    are whatever the client claimed). With no proxies configured, REMOTE_ADDR."""
    proxies = settings.PORTAL_NUM_PROXIES
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            return hops[-proxies][:45]
    return request.META.get("REMOTE_ADDR") or None


# -- sign in, with throttling -------------------------------------------------------------------


def _throttle_keys(request: HttpRequest) -> list[tuple[str, int]]:
    email = (request.POST.get("username") or "").strip().lower()
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return [
        (f"login-fail:account:{digest}", settings.LOGIN_FAILURES_PER_ACCOUNT),
        (f"login-fail:ip:{client_ip(request)}", settings.LOGIN_FAILURES_PER_IP),
    ]


def login_throttled(request: HttpRequest) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _throttle_keys(request))


def login_failed(request: HttpRequest) -> None:
    for key, _limit in _throttle_keys(request):
        cache.add(key, 0, settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.LOGIN_LOCKOUT_SECONDS)


class LoginView(auth_views.LoginView):
    """Email and password. After LOGIN_FAILURES_PER_ACCOUNT failures for one address, or
    LOGIN_FAILURES_PER_IP from one address, sign-in is refused for LOGIN_LOCKOUT_SECONDS with a
    clear message (429), even with the right password."""

    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if login_throttled(request):
            minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
            form = self.get_form()
            form.errors.clear()
            context = self.get_context_data(
                form=form,
                throttled=(
                    "Too many sign-in attempts. For your security, please wait "
                    f"{minutes} minutes and try again, or reset your password."
                ),
            )
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        login_failed(self.request)
        return super().form_invalid(form)

    def form_valid(self, form):
        cache.delete(_throttle_keys(self.request)[0][0])
        return super().form_valid(form)


class LogoutView(auth_views.LogoutView):
    pass


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "portal/password_reset.html"
    email_template_name = "portal/email/password_reset.txt"
    subject_template_name = "portal/email/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password-reset-done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/password_set.html"
    success_url = reverse_lazy("portal:password-reset-complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "portal/password_reset_complete.html"


class InvitationAcceptView(auth_views.PasswordResetConfirmView):
    """The one-time link an admin's invitation sends: the invited user chooses a password and is
    signed in. The token is Django's password-reset token, so it stops working once used (the
    password changes) and after PASSWORD_RESET_TIMEOUT."""

    template_name = "portal/invitation_accept.html"
    post_reset_login = True
    success_url = reverse_lazy("dashboard")
    reset_url_token = "set-password"  # noqa: S105 (a URL segment, not a secret)

    def get_user(self, uidb64):
        return invitation_user(uidb64)


# -- jobs ---------------------------------------------------------------------------------------

JOB_STATUSES = Job.Status.choices
PAGE_SIZE = 50


def _local_day_start(day, *, end: bool = False):
    moment = datetime.combine(day, time.max if end else time.min)
    return timezone.make_aware(moment, timezone.get_current_timezone())


def _date_param(request: HttpRequest, name: str):
    """A YYYY-MM-DD query parameter, or None when absent or not a real date (2026-02-30)."""
    value = (request.GET.get(name) or "").strip()
    if not value:
        return None
    try:
        return parse_date(value)
    except ValueError:
        return None


def _filtered_jobs(request: HttpRequest):
    """The jobs list's rows (shown or exported) and the filters as understood."""
    jobs = job_list_visible_to(user=request.user)
    status = request.GET.get("status", "")
    if status and status in dict(JOB_STATUSES):
        jobs = jobs.filter(status=status)
    else:
        status = ""
    errors = {}
    start = _date_param(request, "from")
    end = _date_param(request, "to")
    if request.GET.get("from") and start is None:
        errors["from"] = "Enter a date like 2026-01-31."
    if request.GET.get("to") and end is None:
        errors["to"] = "Enter a date like 2026-01-31."
    if start:
        jobs = jobs.filter(scheduled_start__gte=_local_day_start(start))
    if end:
        jobs = jobs.filter(scheduled_start__lte=_local_day_start(end, end=True))
    query = (request.GET.get("q") or "").replace("\x00", "").strip()[:100]
    if query:
        jobs = text_search(
            jobs,
            query,
            columns=("number", "summary", "address"),
            clients=client_list_visible_to(user=request.user),
        )
    return jobs, status, query, errors


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs, status, query, errors = _filtered_jobs(request)
    page = keyset_page(
        jobs, request.GET.get("after"), size=PAGE_SIZE, field="scheduled_start", descending=True
    )
    context = {
        "page": page,
        "statuses": JOB_STATUSES,
        "status": status,
        "q": query,
        "date_from": request.GET.get("from", ""),
        "date_to": request.GET.get("to", ""),
        "errors": errors,
    }
    return render(request, "portal/job_list.html", context, status=400 if errors else 200)


@login_required
def job_export(request: HttpRequest) -> HttpResponse:
    """The jobs list, as filtered, as CSV."""
    jobs, _status, _query, errors = _filtered_jobs(request)
    if errors:
        return job_list(request)
    # The rows stream after this view returns (and the time-zone middleware resets the zone),
    # so take the business's zone now.
    zone = timezone.get_current_timezone()
    rows = (
        [
            j.number,
            j.summary,
            j.client.name if j.client else "",
            j.get_status_display(),
            j.address,
            j.scheduled_start.astimezone(zone).isoformat() if j.scheduled_start else "",
            j.completed_at.astimezone(zone).isoformat() if j.completed_at else "",
        ]
        for j in jobs.order_by("-scheduled_start", "-id").iterator(chunk_size=2000)
    )
    header = ["number", "summary", "client", "status", "address", "scheduled_start", "completed"]
    return csv_response("jobs.csv", header, rows)


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    from quotes.selectors import quote_list_visible_to

    activities = JobActivity.objects.filter(remote_deleted_at__isnull=True).prefetch_related(
        "staff"
    )
    try:
        job = (
            job_list_visible_to(user=request.user)
            .select_related("location")
            .prefetch_related(
                Prefetch("activities", queryset=activities, to_attr="live_activities"),
                Prefetch(
                    "materials",
                    queryset=job_materials_live(),
                    to_attr="live_materials",
                ),
                Prefetch(
                    "attachments",
                    queryset=job_attachments_live(),
                    to_attr="live_attachments",
                ),
                Prefetch(
                    "quotes",
                    queryset=quote_list_visible_to(user=request.user),
                    to_attr="live_quotes",
                ),
            )
            .get(pk=pk)
        )
    except Job.DoesNotExist:
        raise Http404("No such job") from None
    technicians = []
    for activity in job.live_activities:
        for person in activity.staff.all():
            if person not in technicians:
                technicians.append(person)
    return render(request, "portal/job_detail.html", {"job": job, "technicians": technicians})


def job_materials_live():
    from portal.models import JobMaterial

    return JobMaterial.objects.filter(remote_deleted_at__isnull=True)


def job_attachments_live():
    from portal.models import Attachment

    return Attachment.objects.filter(remote_deleted_at__isnull=True)
