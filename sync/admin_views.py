"""Admin operations pages: the import screen (start, watch, cancel a full import) and the sync
status dashboard. Plain views wrapped in `admin.site.admin_view` (staff sign-in, admin look),
routed in config/urls.py ahead of the admin's own URLs.

Tenancy: `sync.imports.integrations_for_user`: superusers see every integration, staff their
companies' (portal.TeamMembership); anyone else, and any integration or import outside that
scope, gets a 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from integrations.models import Integration
from portal.admin import request_ip
from sync.dashboard import sync_dashboard
from sync.imports import (
    active_import,
    import_cancel,
    import_for_user_or_404,
    import_progress,
    import_start,
    integration_for_user_or_404,
    integrations_for_user,
    provider_entities,
    recent_imports,
)

app_name = "sync_admin"


def _scoped(request: HttpRequest):
    integrations = integrations_for_user(user=request.user)
    if not integrations.exists():
        raise Http404("No integrations to show.")
    return integrations


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {
        **admin.site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": Integration._meta,
        **extra,
    }


class ImportForm(forms.Form):
    entities = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        label="Entities to import",
        help_text="A full import of each, in the provider's order (parents before children).",
    )

    def __init__(self, *args, integration: Integration, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(e, e.replace("_", " ").capitalize()) for e in provider_entities(integration)]
        self.fields["entities"].choices = choices
        self.fields["entities"].initial = [value for value, _ in choices]


@require_http_methods(["GET", "POST"])
def import_start_view(request: HttpRequest) -> HttpResponse:
    integrations = _scoped(request)
    integration = None
    form = None
    chosen = request.POST.get("integration") or request.GET.get("integration")
    if chosen:
        try:
            integration = integration_for_user_or_404(
                user=request.user,
                integration_id=int(chosen),
                operate=request.method == "POST",  # dispatchers may look, not start
            )
        except ValueError:
            raise Http404("No such integration.") from None
    if integration is not None:
        form = ImportForm(
            request.POST if request.method == "POST" else None, integration=integration
        )
        if request.method == "POST" and form.is_valid():
            running = active_import(integration=integration)
            if running is not None:
                messages.warning(request, "An import of this integration is already running.")
                return redirect("sync_admin:import-detail", import_id=running.pk)
            try:
                entry = import_start(
                    integration=integration,
                    entities=form.cleaned_data["entities"],
                    actor=request.user,
                    ip_address=request_ip(request),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Import of {integration} started.")
                return redirect("sync_admin:import-detail", import_id=entry.pk)
    elif request.method == "POST":
        raise Http404("Choose an integration.")
    return TemplateResponse(
        request,
        "admin/sync/import_start.html",
        _context(
            request,
            "Import",
            integrations=integrations.order_by("company__name", "pk"),
            integration=integration,
            form=form,
            imports=recent_imports(integrations=integrations),
        ),
    )


@require_GET
def import_detail_view(request: HttpRequest, import_id: int) -> HttpResponse:
    entry = import_for_user_or_404(user=request.user, import_id=import_id)
    progress = import_progress(entry=entry)
    return TemplateResponse(
        request,
        "admin/sync/import_detail.html",
        _context(
            request,
            f"Import of {progress.integration}",
            progress=progress,
            integration=progress.integration,
            progress_url=reverse("sync_admin:import-progress", args=[entry.pk]),
        ),
    )


@require_GET
def import_progress_view(request: HttpRequest, import_id: int) -> JsonResponse:
    entry = import_for_user_or_404(user=request.user, import_id=import_id)
    return JsonResponse(import_progress(entry=entry).as_json())


@require_POST
def import_cancel_view(request: HttpRequest, import_id: int) -> HttpResponse:
    entry = import_for_user_or_404(user=request.user, import_id=import_id, operate=True)
    cancelled = import_cancel(entry=entry, actor=request.user, ip_address=request_ip(request))
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"cancelled": cancelled})
    if cancelled:
        messages.info(request, "Cancelling: the import stops at the next page boundary.")
    else:
        messages.warning(request, "The import had already ended.")
    return redirect("sync_admin:import-detail", import_id=entry.pk)


@require_GET
def dashboard_view(request: HttpRequest) -> HttpResponse:
    integrations = _scoped(request)
    only = request.GET.get("integration")
    if only:
        try:
            integrations = integrations.filter(pk=int(only))
        except ValueError:
            raise Http404("No such integration.") from None
        if not integrations.exists():
            raise Http404("No such integration.")
    statuses = sync_dashboard(integrations=integrations)
    statuses.sort(key=lambda s: s.healthy)  # unhealthy first
    return TemplateResponse(
        request,
        "admin/sync/dashboard.html",
        _context(
            request,
            "Sync status",
            statuses=statuses,
            unhealthy=sum(1 for s in statuses if not s.healthy),
            filtered=bool(only),
        ),
    )


def _wrap(view):
    return admin.site.admin_view(view)


urlpatterns = [
    path("import/", _wrap(import_start_view), name="import"),
    path("import/<int:import_id>/", _wrap(import_detail_view), name="import-detail"),
    path("import/<int:import_id>/progress/", _wrap(import_progress_view), name="import-progress"),
    path("import/<int:import_id>/cancel/", _wrap(import_cancel_view), name="import-cancel"),
    path("dashboard/", _wrap(dashboard_view), name="dashboard"),
]


def _link_from_the_admin() -> None:
    """Link these pages from the admin index and the integration change page through
    templates that extend the ones in use (so nothing of theirs is lost), and only where
    nothing else has claimed those templates. (A change form of the integration admin's own
    could instead include "admin/sync/_links.html" in its object tools.)"""
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template

    if admin.site.index_template is None:
        admin.site.index_template = "admin/sync/index.html"
    integration_admin = admin.site._registry.get(Integration)
    default = "admin/integrations/integration/change_form.html"
    if integration_admin is None or integration_admin.change_form_template not in (None, default):
        return
    try:
        get_template(default)
    except TemplateDoesNotExist:
        return
    integration_admin.change_form_template = "admin/sync/integration_change_form.html"


_link_from_the_admin()
