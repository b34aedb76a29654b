"""Integration admin: provider and environment, write-only credentials (with a "Replace
credentials" page), "Connect" for OAuth providers, "Test connection" with its history, the
integration's sync schedules, and open incidents. Company-scoped (portal.admin's mixin)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_celery_beat.admin import CrontabScheduleAdmin as BeatCrontabScheduleAdmin
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from integrations import registry
from integrations.encryption import DecryptionError
from integrations.exceptions import ProviderError, UnknownProvider
from integrations.models import ConnectionTest, Incident, Integration
from integrations.services import (
    integration_credential_errors,
    integration_credential_help,
    integration_credentials_replace,
    integration_oauth_supported,
    integration_test_connection,
)
from integrations.webhook_subscriptions import (
    WebhookSubscriptionsUnavailable,
    webhook_subscribe,
    webhook_subscriptions_state,
    webhook_unsubscribe,
)
from portal.admin import (
    AuditedAdminMixin,
    CompanyScopedAdminMixin,
    audit_record,
    audit_snapshot,
    request_ip,
)

SECRET_FIELD = "new_credentials"  # noqa: S105 - a form field name
# sync.beat names each integration's schedules so (`integrations` may not import `sync`).
SCHEDULE_NAME = "fieldbridge:sync:{id}:{mode}"
SCHEDULE_PREFIX = "fieldbridge:sync:"
COMING_SOON = "Coming soon (no connector yet)"


def webhooks_managed(obj: Integration) -> bool:
    """Whether the connector manages webhook subscriptions (the admin's "Webhooks" page)."""
    try:
        return bool(getattr(registry.get(obj.provider), "webhook_objects", ()))
    except UnknownProvider:
        return False


def provider_choices() -> list:
    """Providers with a connector (in integrations.registry) to choose from; the others the
    model knows, grouped and labelled "coming soon" (and refused by the form)."""
    available = {cls.key for cls in registry.all_providers()}
    ready = [(k, label) for k, label in Integration.Provider.choices if k in available]
    later = [
        (k, f"{label} (coming soon)")
        for k, label in Integration.Provider.choices
        if k not in available
    ]
    return [("", "---------"), *ready, *([(COMING_SOON, later)] if later else [])]


def parse_credentials(raw: str) -> dict:
    """JSON text to a dict; errors say where the JSON broke, never what it contained."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"Not valid JSON ({exc.msg} at character {exc.pos}).") from None
    if not isinstance(value, dict) or not value:
        raise forms.ValidationError("Enter a JSON object with at least one key.")
    return value


def credentials_field(*, required: bool, label: str) -> forms.CharField:
    # PasswordInput(render_value=False): even a form redisplayed with errors never echoes it.
    return forms.CharField(
        label=label,
        required=required,
        strip=True,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "size": 80, "spellcheck": "false"}
        ),
        help_text=lazy_help(),
    )


def _help() -> str:
    # Providers register when the apps are ready, after this module may have been imported.
    return (
        f"A JSON object, stored encrypted and never shown again. {integration_credential_help()}."
        ' Optional for webhooks: "webhook_secrets": ["path token", …]; ServiceTitan also'
        ' "hmac_key": "…" or "webhook_hmac_keys": ["current", "previous"].'
    )


lazy_help = lazy(_help, str)


class IntegrationAdminForm(forms.ModelForm):
    """Credentials are write-only: entered when the integration is added (or later through
    "Replace credentials"), checked against the provider's credential modes, never rendered
    back. OAuth providers may be added without them, then connected."""

    class Meta:
        model = Integration
        fields = [
            "company",
            "name",
            "provider",
            "environment",
            "external_account_id",
            "base_url_override",
            "config",
            "enabled",
            "status",
            "read_cache_enabled",
            "read_cache_ttl",
        ]

    new_credentials = credentials_field(required=False, label="Credentials")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "provider" in self.fields:  # (read-only once the integration exists)
            self.fields["provider"].choices = provider_choices()
        if self.instance.pk is not None:
            field = self.fields[SECRET_FIELD]
            field.label = "Replace credentials"
            field.help_text = format_lazy(
                "Leave blank to keep the stored credentials. {}", field.help_text
            )

    # Set per request by IntegrationAdmin.get_form: operators (superusers) may point an
    # integration anywhere; team admins only at the provider sandbox's hosts, since an
    # overridden base URL receives the deployment's OAuth app secrets and app keys.
    operator = True

    def clean_base_url_override(self) -> str:
        from urllib.parse import urlsplit

        from django.conf import settings

        url = (self.cleaned_data.get("base_url_override") or "").strip()
        if not url or self.operator:
            return url
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = None
        host = parts.hostname or ""
        allowed = settings.INTEGRATION_SANDBOX_HOSTS
        if f"{host}:{port}" not in allowed and f"{host}:*" not in allowed:
            where = ", ".join(allowed) or "none on this deployment"
            raise forms.ValidationError(
                "Only Fieldbridge operators can point an integration at another address. "
                f"Team admins may use the provider sandbox ({where}) or leave this blank "
                "for the provider's own API."
            )
        return url

    def clean_provider(self) -> str:
        provider = self.cleaned_data["provider"]
        try:
            registry.get(provider)
        except UnknownProvider:
            label = Integration.Provider(provider).label
            raise forms.ValidationError(
                f"{label} is coming soon: Fieldbridge has no {label} connector yet, so it "
                "cannot sync. Choose one of the available providers."
            ) from None
        return provider

    def clean_config(self):
        """The integration's settings, checked by its provider (`Provider.config_errors`):
        e.g. `unapproved_items` must be a mode the provider's writer supports, or a typo would
        only surface when a client's approval fails."""
        config = self.cleaned_data.get("config")
        provider = self.cleaned_data.get("provider") or self.instance.provider
        if not isinstance(config, dict):
            return config
        try:
            provider_class = registry.get(provider)
        except UnknownProvider:
            return config
        errors = provider_class.config_errors(config)
        if errors:
            raise forms.ValidationError(" ".join(f"{k} {v}" for k, v in errors.items()))
        return config

    def clean(self) -> dict:
        cleaned = super().clean()
        raw = cleaned.get(SECRET_FIELD)
        provider = cleaned.get("provider") or self.instance.provider
        if not raw and self.instance.pk is not None:
            return cleaned  # blank keeps what is stored
        if not raw:
            probe = Integration(provider=provider or "", environment=cleaned.get("environment"))
            if provider and not integration_oauth_supported(probe):
                self.add_error(SECRET_FIELD, "Enter the credentials for this provider.")
            return cleaned
        try:
            credentials = parse_credentials(raw)
        except forms.ValidationError as exc:
            self.add_error(SECRET_FIELD, exc)
            return cleaned
        if provider:
            for message in integration_credential_errors(
                provider=provider, credentials=credentials
            ):
                self.add_error(SECRET_FIELD, message)
        cleaned[SECRET_FIELD] = credentials
        return cleaned

    def save(self, commit: bool = True) -> Integration:
        new = self.cleaned_data.get(SECRET_FIELD)
        if new and self.instance.pk is None:
            self.instance.credentials = new
        # An existing integration's credentials are replaced by the admin's save_model,
        # through integration_credentials_replace (cache, status, incident, audit).
        return super().save(commit=commit)


class CredentialsReplaceForm(forms.Form):
    credentials = credentials_field(required=True, label="New credentials")

    def __init__(self, *args, provider: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.provider = provider

    def clean_credentials(self) -> dict:
        credentials = parse_credentials(self.cleaned_data["credentials"])
        errors = integration_credential_errors(provider=self.provider, credentials=credentials)
        if errors:
            raise forms.ValidationError(errors)
        return credentials


@admin.register(Integration)
class IntegrationAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Team admins manage their company's integrations; dispatchers only see them. The
    credentials never reach a page: the form has no field bound to them, lists show only
    whether they are set, and the audit log records key names."""

    company_field = "company"
    form = IntegrationAdminForm
    change_form_template = "admin/integrations/integration/change_form.html"
    list_display = [
        "__str__",
        "company",
        "provider",
        "environment",
        "enabled",
        "status",
        "has_credentials",
        "last_test_ok",
        "last_test_at",
    ]
    list_filter = ["provider", "environment", "status", "enabled", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "company__name", "external_account_id"]
    readonly_fields = [
        "has_credentials",
        "credential_keys",
        "last_test_ok",
        "last_test_message",
        "last_test_at",
        "last_test_latency_ms",
        "last_synced_at",
        "created_at",
        "updated_at",
    ]

    # -- form ---------------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Integration | None = None):
        main = ["company", "name", "provider", "environment"]
        if obj is not None:
            main += ["has_credentials", "credential_keys"]
        main.append(SECRET_FIELD)
        main += ["enabled", "status"]
        fieldsets = [
            (None, {"fields": main}),
            (
                "Account and settings",
                {
                    "fields": [
                        "external_account_id",
                        "base_url_override",
                        "config",
                        "read_cache_enabled",
                        "read_cache_ttl",
                    ]
                },
            ),
        ]
        if obj is not None:
            fieldsets += [
                ("Sync", {"fields": ["last_synced_at"]}),
                (
                    "Last connection test",
                    {
                        "classes": ["collapse"],
                        "fields": [
                            "last_test_ok",
                            "last_test_message",
                            "last_test_at",
                            "last_test_latency_ms",
                            "created_at",
                            "updated_at",
                        ],
                    },
                ),
            ]
        return fieldsets

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.operator = request.user.is_superuser
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Integration | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Stored credentials belong to one provider: changing it means a new integration.
            fields.append("provider")
        if not request.user.is_superuser:
            fields.append("status")  # the system's word (needs_reauth…), cleared by new creds
            # Operators only: the account id keys the shared rate-limit budget. (The base URL
            # is checked by the form: team admins may only point at an allowed sandbox host.)
            fields.append("external_account_id")
        return fields

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        companies = self.team_company_ids(request, "add")
        if not request.user.is_superuser and len(companies) == 1:
            initial.setdefault("company", companies[0])
        return initial

    @method_decorator(sensitive_post_parameters(SECRET_FIELD, "credentials"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def audit_extra(self, request: HttpRequest, obj: Integration, form, change: bool) -> dict:
        new = form.cleaned_data.get(SECRET_FIELD)
        if new and not change:
            return {"credentials": "set", "credential_keys": sorted(new)}
        return {}  # a replacement is audited by integration_credentials_replace

    def save_model(self, request: HttpRequest, obj: Integration, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        new = form.cleaned_data.get(SECRET_FIELD)
        if change and new:
            integration_credentials_replace(
                integration=obj, credentials=new, actor=request.user, ip_address=request_ip(request)
            )

    # -- read-only fields ------------------------------------------------------------------------

    @admin.display(boolean=True, description="Credentials set")
    def has_credentials(self, obj: Integration) -> bool:
        try:
            return bool(obj.credentials)
        except DecryptionError:
            return False

    @admin.display(description="Stored credential keys")
    def credential_keys(self, obj: Integration) -> str:
        try:
            keys = sorted((obj.credentials or {}).keys())
        except DecryptionError:
            return "Unreadable (encryption key missing): replace them."
        return ", ".join(keys) if keys else "None"

    def schedule_rows(self, request: HttpRequest, obj: Integration) -> list[dict]:
        """The integration's django-celery-beat schedules, with a link for those who may open
        the periodic-task admin (operators)."""
        names = [SCHEDULE_NAME.format(id=obj.pk, mode=m) for m in ("incremental", "full")]
        task_admin = self.admin_site.get_model_admin(PeriodicTask)
        can_open = task_admin.has_view_or_change_permission(request)
        rows = []
        for task in PeriodicTask.objects.filter(name__in=names).select_related("crontab"):
            rows.append(
                {
                    "mode": task.name.rsplit(":", 1)[-1].title(),
                    "name": task.name,
                    "schedule": str(task.crontab) if task.crontab else "",
                    "enabled": task.enabled,
                    "last_run_at": task.last_run_at,
                    "url": reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
                    if can_open
                    else "",
                }
            )
        return rows

    # -- views ---------------------------------------------------------------------------------

    def get_urls(self):
        opts = self.opts
        name = f"{opts.app_label}_{opts.model_name}"
        return [
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name=f"{name}_test_connection",
            ),
            path(
                "<path:object_id>/credentials/",
                self.admin_site.admin_view(self.credentials_view),
                name=f"{name}_credentials",
            ),
            path(
                "<path:object_id>/webhooks/",
                # Not in the request's transaction: subscribing makes the provider call our
                # webhook endpoint back, which must already see the committed path token.
                transaction.non_atomic_requests(self.admin_site.admin_view(self.webhooks_view)),
                name=f"{name}_webhooks",
            ),
            *super().get_urls(),
        ]

    def _get_changeable(self, request: HttpRequest, object_id: str) -> Integration:
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404("No such integration.")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def _change_url(self, obj: Integration) -> str:
        return reverse("admin:integrations_integration_change", args=[obj.pk])

    def test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._test_connection)(request, object_id)

    def _test_connection(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self._get_changeable(request, object_id)
        result = integration_test_connection(
            integration=obj, actor=request.user, ip_address=request_ip(request)
        )
        level = messages.SUCCESS if result.ok else messages.ERROR
        self.message_user(
            request, f"Test connection: {result.message} ({result.latency_ms} ms)", level
        )
        return HttpResponseRedirect(self._change_url(obj))

    @method_decorator(sensitive_post_parameters("credentials"))
    def credentials_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self._get_changeable(request, object_id)
        form = CredentialsReplaceForm(request.POST or None, provider=obj.provider)
        if request.method == "POST" and form.is_valid():
            integration_credentials_replace(
                integration=obj,
                credentials=form.cleaned_data["credentials"],
                actor=request.user,
                ip_address=request_ip(request),
            )
            self.log_change(request, obj, "Replaced the credentials.")
            self.message_user(
                request, "Credentials replaced. Press “Test connection” to check them."
            )
            return HttpResponseRedirect(self._change_url(obj))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Replace credentials: {obj}",
            "opts": self.opts,
            "original": obj,
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(
            request, "admin/integrations/integration/credentials_replace.html", context
        )

    def webhooks_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The provider's webhook subscriptions for this integration, with subscribe and
        unsubscribe buttons per object we sync (POST, audited by the services). Only for
        OAuth-connected ServiceM8 integrations; otherwise the page says why."""
        obj = self._get_changeable(request, object_id)
        if request.method == "POST":
            object_name = request.POST.get("object", "")
            operation = request.POST.get("operation", "")
            try:
                if operation == "subscribe":
                    webhook_subscribe(
                        integration=obj,
                        object_name=object_name,
                        actor=request.user,
                        ip_address=request_ip(request),
                    )
                    self.message_user(request, f"Subscribed to {object_name} changes.")
                elif operation == "unsubscribe":
                    webhook_unsubscribe(
                        integration=obj,
                        object_name=object_name,
                        actor=request.user,
                        ip_address=request_ip(request),
                    )
                    self.message_user(request, f"Unsubscribed from {object_name} changes.")
                else:
                    self.message_user(request, "Unknown operation.", messages.ERROR)
            except (WebhookSubscriptionsUnavailable, ProviderError) as exc:
                # The provider's own words (e.g. a failed callback verification) when it gave any.
                said = "; ".join(
                    str(m)
                    for msgs in (getattr(exc, "field_errors", None) or {}).values()
                    for m in (msgs if isinstance(msgs, list) else [msgs])
                )
                detail = f"{exc} ({said})" if said else str(exc)
                self.message_user(request, f"Not done: {detail}", messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:integrations_integration_webhooks", args=[obj.pk])
            )
        state, unavailable, error = None, "", ""
        try:
            state = webhook_subscriptions_state(integration=obj)
        except WebhookSubscriptionsUnavailable as exc:
            unavailable = str(exc)
        except ProviderError as exc:
            error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Webhook subscriptions: {obj}",
            "opts": self.opts,
            "original": obj,
            "state": state,
            "unavailable": unavailable,
            "error": error,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/integrations/integration/webhooks.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None:
            extra.update(
                connection_tests=ConnectionTest.objects.filter(integration=obj).select_related(
                    "tested_by"
                )[:10],
                open_incidents=Incident.objects.filter(integration=obj, closed_at__isnull=True),
                can_operate=self.has_change_permission(request, obj),
                oauth_supported=integration_oauth_supported(obj),
                webhooks_managed=webhooks_managed(obj),
                schedule_rows=self.schedule_rows(request, obj),
            )
        return super().change_view(request, object_id, form_url, extra)


@admin.register(ConnectionTest)
class ConnectionTestAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """The history of connection tests (read-only)."""

    company_field = "integration__company"
    list_display = ["created_at", "integration", "ok", "latency_ms", "message", "tested_by"]
    list_filter = ["ok", "integration"]
    list_select_related = ["integration__company", "tested_by"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(CompanyScopedAdminMixin, admin.ModelAdmin):
    """Alerts sent, one per incident; closed when the condition clears (read-only)."""

    company_field = "integration__company"
    list_display = ["opened_at", "integration", "kind", "detail", "notified_at", "closed_at"]
    list_filter = ["kind", ("closed_at", admin.EmptyFieldListFilter), "integration"]
    list_select_related = ["integration__company"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def get_integration_or_404(request: HttpRequest, pk: int) -> Integration:
    """The integration if this user may change it through the admin (the admin's own rule)."""
    model_admin = admin.site.get_model_admin(Integration)
    obj = get_object_or_404(model_admin.get_queryset(request), pk=pk)
    if not model_admin.has_change_permission(request, obj):
        raise Http404("No such integration.")
    return obj


# -- sync schedules ---------------------------------------------------------------------------
# An integration's schedules are django-celery-beat periodic tasks (sync.beat) that operators
# may edit in the admin ("Periodic tasks", linked from the integration's page). Those edits
# are configuration changes too: audited like every other, under the integration's company.


def schedule_company_id(task: PeriodicTask) -> int | None:
    """The company of the integration a schedule belongs to (by its name), if any."""
    if not task.name.startswith(SCHEDULE_PREFIX):
        return None
    integration_id = task.name.removeprefix(SCHEDULE_PREFIX).split(":", 1)[0]
    if not integration_id.isdigit():
        return None
    return (
        Integration.objects.filter(pk=int(integration_id))
        .values_list("company_id", flat=True)
        .first()
    )


class AuditedPeriodicTaskAdmin(AuditedAdminMixin, BeatPeriodicTaskAdmin):
    """django-celery-beat's admin, with every save, delete and bulk enable/disable/toggle
    written to the audit log."""

    def audit_company_id(self, obj: PeriodicTask) -> int | None:
        return schedule_company_id(obj)

    def _audited_bulk(self, request: HttpRequest, queryset, change) -> None:
        tasks = list(queryset)
        before = {t.pk: audit_snapshot(t) for t in tasks}
        change(request, queryset)
        for task in PeriodicTask.objects.filter(pk__in=list(before)):
            after = audit_snapshot(task)
            changed = {k for k in after if before[task.pk].get(k) != after[k]}
            if changed:
                audit_record(
                    request=request,
                    action="periodictask.updated",
                    obj=task,
                    company_id=schedule_company_id(task),
                    before={k: before[task.pk].get(k) for k in changed},
                    after={k: after[k] for k in changed},
                )

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request, queryset):
        self._audited_bulk(request, queryset, super().enable_tasks)

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request, queryset):
        self._audited_bulk(request, queryset, super().disable_tasks)

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request, queryset):
        self._audited_bulk(request, queryset, super().toggle_tasks)


class AuditedCrontabScheduleAdmin(AuditedAdminMixin, BeatCrontabScheduleAdmin):
    """Crontabs are shared by the schedules that use them: their edits are audited without a
    company (operators' entries)."""


for _model, _admin in (
    (PeriodicTask, AuditedPeriodicTaskAdmin),
    (CrontabSchedule, AuditedCrontabScheduleAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
