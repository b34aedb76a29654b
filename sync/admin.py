"""Sync admin: runs, cursors, and the error review (sync errors, dead-lettered outbox events,
webhook deliveries with their verification result), company-scoped. Errors and dead letters
have a "Retry selected" action (sync.retries); everything else here is read-only, being the
system's record of what happened."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from portal.admin import ADMIN, CompanyScopedAdminMixin, request_ip, team_roles
from sync import models
from sync.display import field_errors_html, field_errors_text
from sync.retries import outbox_events_retry, sync_errors_retry


class ReadOnlyScopedAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Company-scoped and read-only for everyone. `has_retry_permission` gates the retry
    actions: operators and the row's company's team admins."""

    company_field = "integration__company"

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return True
        return ADMIN in team_roles(request).values()


def _retryable_by(request: HttpRequest, queryset: QuerySet) -> QuerySet:
    """Only rows of companies where the user is a team admin (superusers: all): an admin in
    one company who is a dispatcher in another may view, not retry, the other's rows."""
    if request.user.is_superuser:
        return queryset
    companies = [cid for cid, role in team_roles(request).items() if role == ADMIN]
    return queryset.filter(integration__company_id__in=companies)


@admin.register(models.SyncRun)
class SyncRunAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "integration",
        "entity",
        "mode",
        "status",
        "started_at",
        "finished_at",
        "fetched_count",
        "created_count",
        "updated_count",
        "deleted_count",
        "failed_count",
    ]
    list_filter = ["status", "mode", "entity", "integration"]
    list_select_related = ["integration__company"]
    date_hierarchy = "started_at"


@admin.register(models.SyncCursor)
class SyncCursorAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Operators may edit a cursor (to re-read from an earlier time); teams only see them."""

    company_field = "integration__company"
    list_display = ["integration", "entity", "updated_at"]
    list_select_related = ["integration__company"]
    team_permissions = {ADMIN: frozenset({"view"})}


class ResolvedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(models.SyncError)
class SyncErrorAdmin(ReadOnlyScopedAdmin):
    """Each failed record with the provider's id and the reason. The payload excerpt is shown
    on the detail page only (list views stay light)."""

    list_display = [
        "created_at",
        "integration",
        "entity",
        "external_id",
        "message",
        "retry_count",
        "resolved_at",
    ]
    list_filter = [ResolvedFilter, "entity", "integration"]
    list_select_related = ["integration__company"]
    search_fields = ["external_id", "message"]
    date_hierarchy = "created_at"
    actions = ["retry_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("payload_excerpt")

    @admin.action(description="Retry selected", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        queryset = _retryable_by(request, queryset)
        outcome = sync_errors_retry(
            errors=list(queryset.select_related("integration")),
            actor=request.user,
            ip_address=request_ip(request),
        )
        self.message_user(
            request,
            f"Queued {outcome.queued} record(s) to fetch again"
            + (f"; {outcome.skipped} already resolved." if outcome.skipped else "."),
            messages.SUCCESS if outcome.queued else messages.WARNING,
        )


class DeadLetterFilter(admin.SimpleListFilter):
    title = "dead letters"
    parameter_name = "dead"

    def lookups(self, request, model_admin):
        return [("yes", "Dead letters only")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=models.OutboxEvent.Status.DEAD)
        return queryset


@admin.register(models.OutboxEvent)
class OutboxEventAdmin(ReadOnlyScopedAdmin):
    """Writes to providers. Dead ones (the reason in `last_error`) are retried with "Retry
    selected" (sync.outbox.outbox_dead_replay)."""

    list_display = [
        "created_at",
        "integration",
        "action",
        "aggregate_type",
        "aggregate_id",
        "status",
        "attempts",
        "last_error",
        "field_errors_summary",
        "next_attempt_at",
    ]
    list_filter = [DeadLetterFilter, "status", "action", "integration"]
    list_select_related = ["integration__company"]
    search_fields = ["aggregate_id", "idempotency_key", "last_error"]
    date_hierarchy = "created_at"
    actions = ["retry_selected"]
    # The provider's refusal by field next to the error; the payload without file contents
    # (a pricebook image travels base64 in it: never rendered).
    exclude = ["payload", "field_errors"]
    readonly_fields = ["payload_display", "field_errors_display"]

    def get_queryset(self, request):
        """The payload is deferred: it may hold an image (up to 2 MB) and lists never show it."""
        return super().get_queryset(request).defer("payload")

    @admin.display(description="Field errors")
    def field_errors_summary(self, obj) -> str:
        return field_errors_text(obj.field_errors)[:300]

    @admin.display(description="Field errors")
    def field_errors_display(self, obj) -> str:
        return field_errors_html(obj.field_errors) or "-"

    @admin.display(description="Payload")
    def payload_display(self, obj) -> str:
        payload = {
            key: f"({len(value)} base64 characters, not shown)"
            if key.endswith("_base64") and isinstance(value, str)
            else value
            for key, value in (obj.payload or {}).items()
        }
        return format_html("<pre>{}</pre>", json.dumps(payload, indent=2, default=str))

    @admin.action(description="Retry selected", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        queryset = _retryable_by(request, queryset)
        outcome = outbox_events_retry(
            events=list(queryset.select_related("integration")),
            actor=request.user,
            ip_address=request_ip(request),
        )
        self.message_user(
            request,
            f"Queued {outcome.queued} dead event(s) for delivery again"
            + (f"; {outcome.skipped} skipped (not dead)." if outcome.skipped else "."),
            messages.SUCCESS if outcome.queued else messages.WARNING,
        )


@admin.register(models.WebhookEvent)
class WebhookEventAdmin(ReadOnlyScopedAdmin):
    """Every delivery, refused ones included (verification result and reason; a refused one
    keeps only a short excerpt of its body)."""

    list_display = [
        "created_at",
        "provider",
        "integration",
        "event_type",
        "external_event_id",
        "verification",
        "verification_reason",
        "status",
        "error",
    ]
    list_filter = ["verification", "status", "provider", "integration"]
    list_select_related = ["integration__company"]
    search_fields = ["external_event_id", "event_type"]
    date_hierarchy = "created_at"
