from django.contrib import admin

from sync import models


@admin.register(models.SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
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
    list_filter = ["status", "mode", "entity"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False


@admin.register(models.SyncCursor)
class SyncCursorAdmin(admin.ModelAdmin):
    list_display = ["integration", "entity", "updated_at"]


@admin.register(models.SyncError)
class SyncErrorAdmin(admin.ModelAdmin):
    list_display = ["created_at", "integration", "entity", "external_id", "message", "resolved_at"]
    list_filter = ["entity", "resolved_at"]
    search_fields = ["external_id", "message"]


@admin.register(models.OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "integration",
        "action",
        "aggregate_type",
        "aggregate_id",
        "status",
        "attempts",
        "next_attempt_at",
    ]
    list_filter = ["status", "action"]
    search_fields = ["aggregate_id", "idempotency_key"]


@admin.register(models.WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "provider",
        "event_type",
        "external_event_id",
        "verification",
        "status",
    ]
    list_filter = ["provider", "verification", "status"]
    search_fields = ["external_event_id"]
