"""Admin for portal models, and the tenancy rule every company-data admin follows
(`CompanyScopedAdminMixin`)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ImproperlyConfigured
from django.db import models as db_models
from django.http import HttpRequest

from portal import models
from portal.job_admin import JobStatusAdminMixin

ADMIN = models.TeamMembership.Role.ADMIN
DISPATCHER = models.TeamMembership.Role.DISPATCHER
# Never copied into an AuditLog entry, whatever the model.
AUDIT_EXCLUDED_FIELDS = frozenset({"credentials", "password", "raw", "content_hash"})


def request_ip(request: HttpRequest) -> str | None:
    """The client address for audit entries: the portal's rule (`portal.views.client_ip`):
    behind PORTAL_NUM_PROXIES trusted proxies, the address the outermost of them saw in
    X-Forwarded-For; with none configured, REMOTE_ADDR (a client-sent X-Forwarded-For is then
    ignored)."""
    from portal.views import client_ip  # the views import models and services, not the admin

    return client_ip(request)


def team_roles(request: HttpRequest) -> dict[int, str]:
    """company id -> the user's TeamMembership role there; cached on the request."""
    cached = getattr(request, "_team_roles", None)
    if cached is None:
        user = request.user
        cached = {}
        if user.is_active and user.is_staff:
            cached = dict(
                models.TeamMembership.objects.filter(user_id=user.pk).values_list(
                    "company_id", "role"
                )
            )
        request._team_roles = cached
    return cached


def find_company_path(model: type[db_models.Model], depth: int = 3) -> str | None:
    """The shortest chain of forward foreign keys from `model` to portal.Company, as a
    lookup ("integration__company"); "" for Company itself; None when there is none."""
    if model is models.Company:
        return ""
    frontier: list[tuple[type[db_models.Model], str]] = [(model, "")]
    for _ in range(depth):
        following = []
        for current, prefix in frontier:
            for field in current._meta.get_fields():
                if not (field.many_to_one or field.one_to_one) or not field.concrete:
                    continue
                path = f"{prefix}__{field.name}" if prefix else field.name
                if field.related_model is models.Company:
                    return path
                if field.related_model is not models.User:
                    following.append((field.related_model, path))
        frontier = following
    return None


def company_id_of(obj: db_models.Model, path: str) -> int | None:
    """Follow `path` (a company lookup) from an object to its company's id."""
    if path == "":
        return obj.pk
    *through, last = path.split("__")
    for name in through:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


def audit_snapshot(obj: db_models.Model) -> dict[str, Any]:
    """The object's concrete, non-secret field values, JSON-friendly."""
    snapshot = {}
    for field in obj._meta.concrete_fields:
        if field.name in AUDIT_EXCLUDED_FIELDS or field.name in ("created_at", "updated_at"):
            continue
        if getattr(field, "auto_now", False):  # a save's own timestamp, not a change
            continue
        value = field.value_from_object(obj)
        snapshot[field.attname] = (
            value
            if value is None or isinstance(value, bool | int | float | str | dict | list)
            else str(value)
        )
    return snapshot


def audit_record(
    *,
    request: HttpRequest,
    action: str,
    obj: db_models.Model,
    company_id: int | None,
    before: dict | None = None,
    after: dict | None = None,
    target_id: Any = None,
) -> models.AuditLog:
    """`target_id` names an object already deleted (whose pk Django has set to None)."""
    return models.AuditLog.objects.create(
        company_id=company_id,
        actor=request.user if request.user.is_authenticated else None,
        action=action,
        target_type=obj._meta.label,
        target_id=str(obj.pk if target_id is None else target_id),
        target_repr=str(obj)[:255],
        before=before,
        after=after,
        ip_address=request_ip(request),
    )


def _changes(before: dict, after: dict) -> tuple[dict, dict]:
    changed = {k for k in after.keys() | before.keys() if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed}


class AuditedAdminMixin:
    """Writes every save and delete made through a ModelAdmin to portal.AuditLog (who, which
    company, before/after without secret fields, ip), inline rows included: each object an
    inline formset creates, changes or deletes is an entry of its own (its model's name:
    "teammembership.updated" whether it was changed on its own page or through the
    company's). A subclass says which company an object belongs to (`audit_company_id`)."""

    def audit_company_id(self, obj) -> int | None:
        return None

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        before = None
        if change and obj.pk:
            old = type(obj)._base_manager.filter(pk=obj.pk).first()
            before = audit_snapshot(old) if old is not None else None
        super().save_model(request, obj, form, change)
        after = audit_snapshot(obj)
        if before is not None:
            before, after = _changes(before, after)
        extra = self.audit_extra(request, obj, form, change)
        if change and not after and not extra:
            return
        audit_record(
            request=request,
            action=f"{obj._meta.model_name}.{'updated' if change else 'created'}",
            obj=obj,
            company_id=self.audit_company_id(obj),
            before=before,
            after={**after, **extra},
        )

    def audit_extra(self, request: HttpRequest, obj, form, change: bool) -> dict:
        """What else a save changed that fields don't show (a subclass says "credentials
        replaced", never the credentials)."""
        return {}

    def delete_model(self, request: HttpRequest, obj) -> None:
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in queryset:
            self._audit_delete(request, obj)
        super().delete_queryset(request, queryset)

    def _audit_delete(self, request: HttpRequest, obj) -> None:
        audit_record(
            request=request,
            action=f"{obj._meta.model_name}.deleted",
            obj=obj,
            company_id=self.audit_company_id(obj),
            before=audit_snapshot(obj),
        )

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        """Save an inline formset, auditing each row it created, changed or deleted. The rows'
        stored values are read before the save (the forms have already written the new ones
        into their instances)."""
        pks = {id(f.instance): f.instance.pk for f in formset.initial_forms if f.instance.pk}
        stored = {
            obj.pk: audit_snapshot(obj)
            for obj in formset.model._base_manager.filter(pk__in=list(pks.values()))
        }
        super().save_formset(request, form, formset, change)
        path = find_company_path(formset.model)
        parent_company = self.audit_company_id(form.instance)

        def company(obj) -> int | None:
            found = company_id_of(obj, path) if path is not None else None
            return found if found is not None else parent_company

        name = formset.model._meta.model_name
        for obj in formset.new_objects:
            audit_record(
                request=request,
                action=f"{name}.created",
                obj=obj,
                company_id=company(obj),
                after=audit_snapshot(obj),
            )
        for obj, _fields in formset.changed_objects:
            before, after = _changes(stored.get(obj.pk, {}), audit_snapshot(obj))
            if after:
                audit_record(
                    request=request,
                    action=f"{name}.updated",
                    obj=obj,
                    company_id=company(obj),
                    before=before,
                    after=after,
                )
        for obj in formset.deleted_objects:
            pk = pks.get(id(obj), obj.pk)
            audit_record(
                request=request,
                action=f"{name}.deleted",
                obj=obj,
                company_id=company(obj),
                before=stored.get(pk) or audit_snapshot(obj),
                target_id=pk,
            )


class CompanyScopedAdminMixin(AuditedAdminMixin):
    """Tenancy for the admin. Put it first in the bases of every ModelAdmin that shows company
    data.

    The rule:
    - Superusers (operators) see and manage everything; Django's own permission checks apply.
    - Any other user sees only rows of the companies they hold a TeamMembership in (and must be
      active and is_staff to sign into the admin at all). They need no Django model
      permissions: what they may do comes from their role in the row's company,
      `team_permissions` (by default a team *admin* may view, add, change and delete, a
      *dispatcher* may only view). A subclass may narrow that per model.
    - A staff user without any TeamMembership (and not a superuser) sees no company data.
    - Rows of another company are absent from lists, filters and choices, and their pages
      answer like a missing object (the admin redirects with "doesn't exist").
    - Class-level overrides still win: an admin that returns False from
      `has_change_permission` is read-only for everyone, superusers included.
    - Every save and delete made through the admin, inline rows included, is written to
      portal.AuditLog (who, which company, before/after without secret fields, ip):
      `AuditedAdminMixin`.

    `company_field` is the lookup from the model to portal.Company ("integration__company");
    left as None it is found by following foreign keys (at most three hops)."""

    company_field: ClassVar[str | None] = None
    team_permissions: ClassVar[dict[str, frozenset[str]]] = {
        ADMIN: frozenset({"view", "add", "change", "delete"}),
        DISPATCHER: frozenset({"view"}),
    }

    def __init__(self, model, admin_site) -> None:
        super().__init__(model, admin_site)
        if self.company_field is None:
            path = find_company_path(model)
            if path is None:
                raise ImproperlyConfigured(
                    f"{type(self).__name__}: no path from {model.__name__} to Company; "
                    "set company_field"
                )
            self.company_field = path

    # -- which companies ------------------------------------------------------------------

    def team_company_ids(self, request: HttpRequest, perm: str = "view") -> list[int]:
        """Companies whose rows the (non-superuser) user may `perm`."""
        return [
            company_id
            for company_id, role in team_roles(request).items()
            if perm in self.team_permissions.get(role, frozenset())
        ]

    def _company_lookup(self) -> str:
        return f"{self.company_field}__in" if self.company_field else "pk__in"

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self._company_lookup(): self.team_company_ids(request)})

    def _team_allows(self, request: HttpRequest, perm: str, obj=None) -> bool:
        allowed = self.team_company_ids(request, perm)
        if obj is None:
            return bool(allowed)
        return company_id_of(obj, self.company_field) in allowed

    # -- permissions -------------------------------------------------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return super().has_module_permission(request)
        return self._team_allows(request, "view")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self._team_allows(request, "view", obj) or self._team_allows(request, "change", obj)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        if request.user.is_superuser:
            return super().has_add_permission(request, *args)
        return self._team_allows(request, "add")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self._team_allows(request, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self._team_allows(request, "delete", obj)

    # -- choices and filters -------------------------------------------------------------------

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        """Company and integration choices are limited to the user's own (where they may add
        or change rows)."""
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if request.user.is_superuser or field is None:
            return field
        editable = set(self.team_company_ids(request, "add")) | set(
            self.team_company_ids(request, "change")
        )
        related = db_field.related_model
        path = "" if related is models.Company else find_company_path(related, depth=2)
        if path is not None and hasattr(field, "queryset"):
            lookup = f"{path}__in" if path else "pk__in"
            field.queryset = field.queryset.filter(**{lookup: editable})
        return field

    def get_list_filter(self, request: HttpRequest):
        """Related-object filters list only objects present in the user's rows (Django's
        default lists every row of the related table: other companies' names)."""
        filters = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str):
                try:
                    last = get_fields_from_path(self.model, entry)[-1]
                except Exception:  # not a field path: leave it to Django
                    last = None
                if last is not None and last.is_relation:
                    tenant = last.related_model._meta.label in TENANT_MODELS
                    related = TenantListFilter if tenant else admin.RelatedOnlyFieldListFilter
                    entry = (entry, related)
            filters.append(entry)
        return filters

    # -- audit -------------------------------------------------------------------------------

    def audit_company_id(self, obj) -> int | None:
        return company_id_of(obj, self.company_field)


TENANT_MODELS = ("portal.Company", "integrations.Integration")


class TenantListFilter(admin.RelatedFieldListFilter):
    """A filter by company or integration lists the user's own (every one for a superuser),
    read from those small tables. RelatedOnlyFieldListFilter would find them with a SELECT
    DISTINCT over every row of the listed table: a full scan of a synced table of millions."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        if request.user.is_superuser:
            return field.get_choices(include_blank=False, ordering=ordering)
        companies = model_admin.team_company_ids(request)
        lookup = "pk__in" if field.related_model is models.Company else "company_id__in"
        return field.get_choices(
            include_blank=False, limit_choices_to={lookup: companies}, ordering=ordering
        )


class CompanyScopedInlineMixin:
    """The same rule for inlines: the user's role in the parent object's company decides
    (`team_permissions`, view-only for everyone by default: inlines of synced rows are the
    provider's); superusers keep Django's checks. The inline's rows all belong to the parent,
    whose page the parent admin has already scoped."""

    team_permissions: ClassVar[dict[str, frozenset[str]]] = {
        ADMIN: frozenset({"view"}),
        DISPATCHER: frozenset({"view"}),
    }

    def _team_allows(self, request, perm: str, obj=None) -> bool:
        roles = team_roles(request)
        if obj is None:
            return any(perm in self.team_permissions.get(r, ()) for r in roles.values())
        path = find_company_path(type(obj))
        company_id = company_id_of(obj, path) if path is not None else None
        return perm in self.team_permissions.get(roles.get(company_id, ""), frozenset())

    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self._team_allows(request, "view", obj) or self._team_allows(request, "change", obj)

    def has_add_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_add_permission(request, obj)
        return self._team_allows(request, "add", obj)

    def has_change_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self._team_allows(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self._team_allows(request, "delete", obj)


COMPANY_CONFIG_PERMISSIONS: dict[str, frozenset[str]] = {
    ADMIN: frozenset({"view", "add", "change", "delete"}),
    DISPATCHER: frozenset({"view"}),
}


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


class ServiceAreaInline(CompanyScopedInlineMixin, admin.TabularInline):
    model = models.ServiceArea
    team_permissions = COMPANY_CONFIG_PERMISSIONS
    extra = 0


class CompanySkillInline(CompanyScopedInlineMixin, admin.TabularInline):
    model = models.CompanySkill
    team_permissions = COMPANY_CONFIG_PERMISSIONS
    extra = 0
    autocomplete_fields = ["skill"]


class TeamMembershipInline(CompanyScopedInlineMixin, admin.TabularInline):
    """Team admins see their team here and may change roles; adding people means choosing among
    every user of the deployment, so only operators do it."""

    model = models.TeamMembership
    extra = 0
    autocomplete_fields = ["user"]
    team_permissions: ClassVar[dict[str, frozenset[str]]] = {
        ADMIN: frozenset({"view", "change", "delete"}),
        DISPATCHER: frozenset({"view"}),
    }

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["user"]


@admin.register(models.Company)
class CompanyAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Team admins edit their own company (not its slug); only operators add or delete one."""

    list_display = ["name", "slug", "timezone"]
    search_fields = ["name", "slug"]
    inlines = [ServiceAreaInline, CompanySkillInline, TeamMembershipInline]
    team_permissions: ClassVar[dict[str, frozenset[str]]] = {
        ADMIN: frozenset({"view", "change"}),
        DISPATCHER: frozenset({"view"}),
    }

    def get_prepopulated_fields(self, request, obj=None):
        return {"slug": ("name",)} if request.user.is_superuser else {}

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["slug"]


@admin.register(models.Skill)
class SkillAdmin(admin.ModelAdmin):
    """Skills are shared reference data: team members may look them up (the company skills
    inline's autocomplete needs it); only operators edit them."""

    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ("name",)}

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or bool(team_roles(request))


class SyncedAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Synced rows are the provider's: shown read-only (edits would be overwritten by the next
    sync), to each company's team only. The raw payload is deferred in lists: it can be
    large."""

    company_field = "integration__company"

    list_filter = ["integration__company", "integration"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("raw")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ClientMembershipInline(CompanyScopedInlineMixin, admin.TabularInline):
    """Shown on the (read-only) client page; operators manage it here."""

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


class JobActivityInline(CompanyScopedInlineMixin, admin.TabularInline):
    model = models.JobActivity
    extra = 0
    fields = ["external_id", "starts_at", "ends_at", "status"]
    readonly_fields = fields
    can_delete = False


class JobMaterialInline(CompanyScopedInlineMixin, admin.TabularInline):
    model = models.JobMaterial
    extra = 0
    fields = ["name", "quantity", "unit_price", "total"]
    readonly_fields = fields
    can_delete = False


@admin.register(models.Job)
class JobAdmin(JobStatusAdminMixin, SyncedAdmin):
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


@admin.register(models.JobContact)
class JobContactAdmin(SyncedAdmin):
    list_display = ["__str__", "job", "role", "email", "phone"]
    search_fields = ["first_name", "last_name", "email", "external_id"]


@admin.register(models.Note)
class NoteAdmin(SyncedAdmin):
    list_display = ["__str__", "job", "client", "author", "noted_at"]
    search_fields = ["body", "external_id"]


@admin.register(models.ReferenceRecord)
class ReferenceRecordAdmin(SyncedAdmin):
    """Job types, business units, zones, tax rates, inventory records…: one table, by kind."""

    list_display = ["name", "kind", "code", "is_active", "integration"]
    list_filter = ["kind", "is_active", "integration__company", "integration"]
    search_fields = ["name", "code", "external_id"]


class InvoiceItemInline(CompanyScopedInlineMixin, admin.TabularInline):
    model = models.InvoiceItem
    extra = 0
    fields = ["name", "quantity", "unit_price", "total"]
    readonly_fields = fields
    can_delete = False


@admin.register(models.Invoice)
class InvoiceAdmin(SyncedAdmin):
    list_display = ["__str__", "client", "job", "status", "issued_on", "total", "balance"]
    list_filter = ["status", "integration__company", "integration"]
    search_fields = ["number", "external_id"]
    inlines = [InvoiceItemInline]


@admin.register(models.Payment)
class PaymentAdmin(SyncedAdmin):
    list_display = ["__str__", "client", "invoice", "method", "paid_on", "amount"]
    search_fields = ["payment_reference", "external_id"]


@admin.register(models.ClientMembership)
class ClientMembershipAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Team admins see and remove their clients' users; choosing a user among every user of the
    deployment (add, change) is for operators."""

    company_field = "client__integration__company"
    list_display = ["user", "client", "created_at"]
    list_select_related = ["user", "client"]
    autocomplete_fields = ["user", "client"]
    team_permissions: ClassVar[dict[str, frozenset[str]]] = {
        ADMIN: frozenset({"view", "delete"}),
        DISPATCHER: frozenset({"view"}),
    }


@admin.register(models.TeamMembership)
class TeamMembershipAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Team admins see their team, change roles and remove people; adding people (choosing
    among every user of the deployment) is for operators."""

    company_field = "company"
    list_display = ["user", "company", "role"]
    list_filter = ["role", "company"]
    list_select_related = ["user", "company"]
    autocomplete_fields = ["user", "company"]
    team_permissions: ClassVar[dict[str, frozenset[str]]] = {
        ADMIN: frozenset({"view", "change", "delete"}),
        DISPATCHER: frozenset({"view"}),
    }

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["user", "company"]


@admin.register(models.AuditLog)
class AuditLogAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Read-only, for operators and each company's team admins (their company's entries).
    Entries never hold secrets: writers leave credentials out (see AUDIT_EXCLUDED_FIELDS)."""

    company_field = "company"
    list_display = [
        "created_at",
        "company",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "ip_address",
    ]
    list_filter = ["action", "target_type", "company", "actor"]
    list_select_related = ["company", "actor"]
    search_fields = ["target_id", "target_repr", "actor__email", "action"]
    date_hierarchy = "created_at"
    team_permissions: ClassVar[dict[str, frozenset[str]]] = {ADMIN: frozenset({"view"})}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Registered last, once the classes above exist: API tokens (ApiTokenAdmin) and the Clients'
# "invite a client user" action.
from portal import admin_invite, admin_tokens  # noqa: E402,F401

admin_invite.install(ClientAdmin)
# Pricebook categories and items; bookings (created through the service, retried).
from portal import booking_admin, pricebook_admin  # noqa: E402,F401
