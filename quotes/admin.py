from django.contrib import admin

from portal.admin import CompanyScopedAdminMixin, SyncedAdmin
from quotes import models


class QuoteLineItemInline(admin.TabularInline):
    model = models.QuoteLineItem
    extra = 0
    fields = ["sort_order", "name", "quantity", "unit_price", "total", "is_optional"]
    readonly_fields = fields
    can_delete = False


@admin.register(models.Quote)
class QuoteAdmin(SyncedAdmin):
    list_display = [
        "__str__",
        "client",
        "status",
        "total",
        "currency",
        "valid_until",
        "integration",
    ]
    list_filter = ["status", "integration__company", "integration"]
    search_fields = ["number", "title", "external_id"]
    inlines = [QuoteLineItemInline]


@admin.register(models.QuoteLineItem)
class QuoteLineItemAdmin(SyncedAdmin):
    list_display = ["name", "quote", "quantity", "unit_price", "total", "is_optional"]


@admin.register(models.QuoteDecision)
class QuoteDecisionAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    list_display = ["quote", "decision", "decided_by", "decided_at", "writeback"]
    list_filter = ["decision", "outbox_event__status"]
    list_select_related = ["quote", "decided_by", "outbox_event"]
    readonly_fields = [
        "quote",
        "decided_by",
        "decided_at",
        "decision",
        "is_partial",
        "approved_line_items",
        "notes",
        "rejection_reason",
        "ip_address",
        "outbox_event",
        "voided_at",
    ]

    @admin.display(description="write-back", ordering="outbox_event__status")
    def writeback(self, obj):
        return obj.outbox_event.get_status_display() if obj.outbox_event else "—"

    def has_add_permission(self, request):
        return False
