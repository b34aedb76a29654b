"""Bookings in the admin: staff create a booking for an integration (through
`portal.bookings.booking_create`, so the same validation, outbox event and audit entry as
everywhere else, with its field errors shown on the form), and follow it: its status, the
provider's job id, its outbox event's state, error and per-field errors. Failed (dead)
deliveries can be retried (`sync.retries.outbox_events_retry`, audited).

Company-scoped like every company-data admin (`CompanyScopedAdminMixin`): team admins create
and retry bookings of their own companies' integrations, dispatchers only see them. A booking
is never edited here: what was sent to the provider is the record."""

from __future__ import annotations

import json
from typing import ClassVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from integrations.models import Integration
from portal import models
from portal.admin import CompanyScopedAdminMixin, request_ip
from portal.bookings import CUSTOMER_FIELDS, INPUT_FIELDS, booking_create
from sync.display import field_errors_html

# The booking's own input, shown read-only on its page: customer and address, then the job.
JOB_FIELDS = (*(name for name in INPUT_FIELDS if name not in CUSTOMER_FIELDS), "options")


class BookingCreateForm(forms.Form):
    """The booking's input. Only shapes are checked here; `booking_create` validates it (and
    its errors are put back on these fields)."""

    integration = forms.ModelChoiceField(queryset=Integration.objects.none())
    client = forms.ModelChoiceField(
        queryset=models.Client.objects.none(),
        required=False,
        help_text="Optional: a synced client of this integration (its id is sent to the "
        "provider instead of a new customer).",
    )
    customer_name = forms.CharField(required=False, strip=False)
    email = forms.CharField(required=False, strip=False)
    phone = forms.CharField(required=False, strip=False)
    street = forms.CharField(required=False, strip=False)
    street2 = forms.CharField(required=False, strip=False)
    city = forms.CharField(required=False, strip=False)
    region = forms.CharField(required=False, strip=False)
    postal_code = forms.CharField(required=False, strip=False)
    country = forms.CharField(required=False, strip=False, help_text="Two-letter ISO code.")
    summary = forms.CharField(required=False, strip=False)
    description = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    priority = forms.ChoiceField(
        choices=models.Job.Priority.choices, initial=models.Job.Priority.NORMAL
    )
    scheduled_start = forms.CharField(
        required=False, help_text="ISO 8601 with offset, e.g. 2026-05-01T09:00:00+10:00."
    )
    scheduled_end = forms.CharField(required=False, help_text="ISO 8601 with offset.")
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Provider references as a JSON object, e.g. {"status": "Quote"} for '
        "ServiceM8, or its category_uuid / staff_uuid.",
    )

    def __init__(self, *args, company_ids: list[int] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        integrations = Integration.objects.select_related("company")
        clients = models.Client.objects.select_related("integration")
        if company_ids is not None:  # None: an operator, who may use any
            integrations = integrations.filter(company_id__in=company_ids)
            clients = clients.filter(integration__company_id__in=company_ids)
        self.fields["integration"].queryset = integrations
        self.fields["client"].queryset = clients.defer("raw")

    def clean_options(self) -> dict:
        raw = (self.cleaned_data.get("options") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON ({exc.msg} at character {exc.pos}).") from None
        if not isinstance(value, dict):
            raise ValidationError("Enter a JSON object.")
        return value

    def add_service_errors(self, error: ValidationError) -> None:
        """Put `booking_create`'s field errors on the matching fields (others on the form)."""
        details = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
        for name, messages_ in details.items():
            target = name if name in self.fields else None
            if target is None and name.startswith("options"):
                target = "options"
                messages_ = [f"{name}: {m}" for m in messages_]
            for message in messages_:
                self.add_error(target, message)


class BookingAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """See the module docstring. The add page is `add_view` (a form that calls the service);
    the change page is read-only."""

    company_field = "integration__company"
    list_display = [
        "reference",
        "integration",
        "customer_name",
        "summary",
        "status",
        "external_job_id",
        "outbox_state",
        "created_at",
    ]
    list_filter = ["status", "integration__company", "integration"]
    list_select_related = ["integration", "outbox_event"]
    search_fields = ["reference", "customer_name", "email", "summary", "external_job_id"]
    actions = ["retry_failed"]
    readonly_fields = [
        "reference",
        "integration",
        "client",
        "status",
        "external_job_id",
        "outbox_state",
        "outbox_attempts",
        "outbox_error",
        "outbox_field_errors",
        *CUSTOMER_FIELDS,
        *JOB_FIELDS,
        "created_by",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["reference", "integration", "client", "status", "external_job_id"]}),
        (
            "Delivery to the provider",
            {"fields": ["outbox_state", "outbox_attempts", "outbox_error", "outbox_field_errors"]},
        ),
        ("Customer and address", {"fields": list(CUSTOMER_FIELDS)}),
        ("Job", {"fields": list(JOB_FIELDS)}),
        (None, {"fields": ["created_by", "created_at", "updated_at"]}),
    ]
    team_permissions: ClassVar[dict[str, frozenset[str]]] = {
        models.TeamMembership.Role.ADMIN: frozenset({"view", "add", "change"}),
        models.TeamMembership.Role.DISPATCHER: frozenset({"view"}),
    }

    # A booking is the record of what was asked of the provider: never deleted or edited here.
    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # No object: the list's "retry" action (a change of its delivery). A booking's own
        # page is read-only.
        return obj is None and super().has_change_permission(request)

    # -- delivery state ------------------------------------------------------------------------

    @admin.display(description="Outbox", ordering="outbox_event__status")
    def outbox_state(self, obj: models.Booking) -> str:
        event = obj.outbox_event
        return event.get_status_display() if event is not None else "—"

    @admin.display(description="Attempts")
    def outbox_attempts(self, obj: models.Booking) -> int | str:
        return obj.outbox_event.attempts if obj.outbox_event is not None else "—"

    @admin.display(description="Error")
    def outbox_error(self, obj: models.Booking) -> str:
        event = obj.outbox_event
        return (event.last_error if event is not None else "") or "—"

    @admin.display(description="Errors by field")
    def outbox_field_errors(self, obj: models.Booking) -> str:
        event = obj.outbox_event
        errors = event.field_errors if event is not None else None
        return field_errors_html(errors if isinstance(errors, dict) else None) or "—"

    # -- retry ---------------------------------------------------------------------------------

    @admin.action(description="Retry failed deliveries", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset) -> None:
        from sync.retries import outbox_events_retry  # sync depends on portal, not the reverse

        # Only bookings of companies where the user may change them (an admin of one company
        # may be a dispatcher of another: the list shows both).
        if not request.user.is_superuser:
            queryset = queryset.filter(
                integration__company_id__in=self.team_company_ids(request, "change")
            )
        events = [b.outbox_event for b in queryset.select_related("outbox_event__integration")]
        events = [e for e in events if e is not None]
        outcome = outbox_events_retry(
            events=events, actor=request.user, ip_address=request_ip(request)
        )
        if outcome.queued:
            self.message_user(request, f"{outcome.queued} booking(s) queued for another try.")
        if outcome.skipped or not events:
            self.message_user(
                request,
                f"{outcome.skipped + len(queryset) - len(events)} booking(s) skipped: only "
                "failed deliveries (dead letters) are retried; the others are on their way "
                "or done.",
                messages.WARNING,
            )

    # -- create through the service ------------------------------------------------------------

    def _company_ids(self, request: HttpRequest) -> list[int] | None:
        return None if request.user.is_superuser else self.team_company_ids(request, "add")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        company_ids = self._company_ids(request)
        form = BookingCreateForm(request.POST or None, company_ids=company_ids)
        if request.method == "POST" and form.is_valid():
            data = {name: form.cleaned_data.get(name) for name in INPUT_FIELDS}
            data["options"] = form.cleaned_data.get("options") or {}
            try:
                booking = booking_create(
                    integration=form.cleaned_data["integration"],
                    data=data,
                    actor=request.user,
                    client=form.cleaned_data.get("client"),
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                self.message_user(
                    request,
                    f"Booking {booking.reference} created; its job is being created at the "
                    "provider.",
                )
                return HttpResponseRedirect(
                    reverse("admin:portal_booking_change", args=[booking.pk])
                )
        return self._render_add(request, form)

    def _render_add(self, request: HttpRequest, form: BookingCreateForm) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Add booking",
            "opts": self.opts,
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/portal/booking/add_form.html", context)


admin.site.register(models.Booking, BookingAdmin)
