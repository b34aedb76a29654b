from django.contrib import admin

from portal.admin import SyncedAdmin
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
class QuoteDecisionAdmin(admin.ModelAdmin):
    list_display = ["quote", "decision", "decided_by", "decided_at", "writeback_status"]
    list_filter = ["decision", "writeback_status"]
    readonly_fields = [
        "quote",
        "decided_by",
        "decided_at",
        "decision",
        "approved_line_items",
        "notes",
        "rejection_reason",
        "writeback_status",
        "writeback_error",
        "writeback_at",
        "voided_at",
    ]

    def has_add_permission(self, request):
        return False
