from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from portal import models


@admin.register(models.User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class ServiceAreaInline(admin.TabularInline):
    model = models.ServiceArea
    extra = 0


class CompanySkillInline(admin.TabularInline):
    model = models.CompanySkill
    extra = 0
    autocomplete_fields = ["skill"]


class TeamMembershipInline(admin.TabularInline):
    model = models.TeamMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    inlines = [ServiceAreaInline, CompanySkillInline, TeamMembershipInline]


@admin.register(models.Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ("name",)}


class SyncedAdmin(admin.ModelAdmin):
    """Synced rows are the provider's: shown read-only (edits would be overwritten by the next
    sync). The raw payload is deferred in lists: it can be large."""

    list_filter = ["integration__company", "integration"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("raw")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ClientMembershipInline(admin.TabularInline):
    model = models.ClientMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Client)
class ClientAdmin(SyncedAdmin):
    list_display = ["name", "integration", "kind", "email", "phone", "remote_deleted_at"]
    search_fields = ["name", "email", "external_id"]
    inlines = [ClientMembershipInline]


@admin.register(models.Contact)
class ContactAdmin(SyncedAdmin):
    list_display = ["__str__", "client", "email", "phone", "is_primary"]
    search_fields = ["first_name", "last_name", "email", "external_id"]


@admin.register(models.Location)
class LocationAdmin(SyncedAdmin):
    list_display = ["__str__", "client", "city", "postal_code"]
    search_fields = ["street", "city", "postal_code", "external_id"]


@admin.register(models.Staff)
class StaffAdmin(SyncedAdmin):
    list_display = ["__str__", "kind", "email", "is_active", "integration"]
    search_fields = ["first_name", "last_name", "email", "external_id"]


class JobActivityInline(admin.TabularInline):
    model = models.JobActivity
    extra = 0
    fields = ["external_id", "starts_at", "ends_at", "status"]
    readonly_fields = fields
    can_delete = False


class JobMaterialInline(admin.TabularInline):
    model = models.JobMaterial
    extra = 0
    fields = ["name", "quantity", "unit_price", "total"]
    readonly_fields = fields
    can_delete = False


@admin.register(models.Job)
class JobAdmin(SyncedAdmin):
    list_display = ["__str__", "client", "status", "scheduled_start", "revenue", "integration"]
    list_filter = ["status", "integration__company", "integration"]
    search_fields = ["number", "summary", "external_id"]
    inlines = [JobActivityInline, JobMaterialInline]


@admin.register(models.JobActivity)
class JobActivityAdmin(SyncedAdmin):
    list_display = ["job", "starts_at", "ends_at", "status"]


@admin.register(models.Attachment)
class AttachmentAdmin(SyncedAdmin):
    list_display = ["file_name", "job", "content_type", "size_bytes"]
    search_fields = ["file_name", "external_id"]


@admin.register(models.JobMaterial)
class JobMaterialAdmin(SyncedAdmin):
    list_display = ["name", "job", "quantity", "unit_price", "total"]


@admin.register(models.ClientMembership)
class ClientMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "client", "created_at"]
    autocomplete_fields = ["user", "client"]


@admin.register(models.TeamMembership)
class TeamMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "company", "role"]
    list_filter = ["role", "company"]
    autocomplete_fields = ["user", "company"]


@admin.register(models.AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id", "ip_address"]
    list_filter = ["action", "target_type"]
    search_fields = ["target_id", "target_repr", "actor__email"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
