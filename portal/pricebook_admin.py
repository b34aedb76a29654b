"""Admin for the synced pricebook (categories and items), imported by portal/admin.py.

Both are synced rows: read-only, company-scoped (`SyncedAdmin`). An item's page adds
"Change in the provider": a form for its price, texts and flags and an image upload, which
queue the change through the services in portal/pricebook.py (outbox; the row itself changes
when the next sync reads the provider's answer). The item's page lists its pricebook writes
with their state and the provider's field errors. Team admins of the item's company (and
operators) may use the form; dispatchers only see.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from integrations.exceptions import UnknownProvider
from integrations.registry import get as provider_class
from portal import models
from portal.admin import SyncedAdmin, request_ip
from portal.pricebook import (
    AGGREGATE,
    IMAGE_MAX_BYTES,
    pricebook_changes_clean,
    pricebook_item_image,
    pricebook_item_update,
)
from sync.display import field_errors_html
from sync.models import OutboxEvent

ACTIVE_CHOICES = [("", "(unchanged)"), ("true", "Active"), ("false", "Inactive")]


class PricebookChangeForm(forms.Form):
    """Blank fields are left as they are. Field names are the provider's (ServiceTitan's), so
    its field errors land on the right field."""

    displayName = forms.CharField(label="Name", required=False, max_length=255)  # noqa: N815
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    price = forms.DecimalField(required=False, min_value=0, decimal_places=2, max_digits=14)
    memberPrice = forms.DecimalField(  # noqa: N815
        label="Member price", required=False, min_value=0, decimal_places=2, max_digits=14
    )
    addOnPrice = forms.DecimalField(  # noqa: N815
        label="Add-on price", required=False, min_value=0, decimal_places=2, max_digits=14
    )
    cost = forms.DecimalField(required=False, min_value=0, decimal_places=2, max_digits=14)
    active = forms.ChoiceField(choices=ACTIVE_CHOICES, required=False)
    # A FileField: Pillow is not installed; the service checks the type and magic bytes.
    image = forms.FileField(
        required=False,
        help_text=f"JPEG, PNG, GIF or WebP, at most {IMAGE_MAX_BYTES // (1024 * 1024)} MB; "
        "attached to the item in the provider.",
    )

    def __init__(self, *args, changeable: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in [n for n in self.fields if n not in changeable and n != "image"]:
            del self.fields[name]

    def changes(self) -> dict:
        out: dict = {}
        for name, value in self.cleaned_data.items():
            if name == "image" or value in (None, ""):
                continue
            out[name] = value == "true" if name == "active" else value
        return out


def _events(item: models.PricebookItem):
    return OutboxEvent.objects.filter(aggregate_type=AGGREGATE, aggregate_id=str(item.pk)).defer(
        "payload"
    )


@admin.register(models.PricebookCategory)
class PricebookCategoryAdmin(SyncedAdmin):
    list_display = ["name", "kind", "parent", "is_active", "integration"]
    list_filter = ["kind", "is_active", "integration__company", "integration"]
    list_select_related = ["parent", "integration"]
    search_fields = ["name", "external_id"]


@admin.register(models.PricebookItem)
class PricebookItemAdmin(SyncedAdmin):
    list_display = ["__str__", "kind", "unit_price", "cost", "is_active", "integration"]
    list_filter = ["kind", "is_active", "integration__company", "integration"]
    list_select_related = ["integration"]
    search_fields = ["code", "name", "external_id"]
    readonly_fields = ["pricebook_writes"]
    change_form_template = "admin/portal/pricebookitem/change_form.html"

    def can_push(self, request: HttpRequest, obj) -> bool:
        # SyncedAdmin refuses "change" on the row itself; pushing to the provider is a team
        # admin's (or an operator's) right, checked on the item's company.
        return request.user.is_superuser or self._team_allows(request, "change", obj)

    @admin.display(description="Changes sent to the provider")
    def pricebook_writes(self, obj) -> str:
        rows = [
            (
                event.created_at.strftime("%Y-%m-%d %H:%M"),
                event.action,
                event.get_status_display(),
                event.last_error[:300],
                field_errors_html(event.field_errors),
            )
            for event in _events(obj).order_by("-created_at")[:20]
        ]
        if not rows:
            return "None yet."
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>", rows)
        return format_html(
            '<table class="pricebook-writes"><thead><tr><th>Queued</th><th>Action</th>'
            "<th>State</th><th>Error</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/push/",
                self.admin_site.admin_view(self.push_view),
                name=f"{name}_push",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        extra["can_push"] = obj is not None and self.can_push(request, obj)
        return super().change_view(request, object_id, form_url, extra)

    def push_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        item = self.get_object(request, object_id)
        if item is None:
            raise Http404("No such pricebook item.")
        if not self.can_push(request, item):
            raise PermissionDenied
        try:
            provider = provider_class(item.integration.provider)
        except UnknownProvider:
            raise Http404("This provider has no connector.") from None
        changeable = (getattr(provider, "pricebook_changeable", None) or {}).get(item.kind, {})
        form = PricebookChangeForm(
            request.POST or None, request.FILES or None, changeable=changeable
        )
        if request.method == "POST" and form.is_valid():
            queued = self._queue(request, item, form)
            if queued:
                self.message_user(
                    request,
                    f"Queued {queued} change(s) for {provider.name}; the state is shown below.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:portal_pricebookitem_change", args=[item.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change in {provider.name}: {item}",
            "opts": self.opts,
            "original": item,
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/portal/pricebookitem/push.html", context)

    def _queue(self, request: HttpRequest, item, form: PricebookChangeForm) -> int:
        """Queue the form's changes and image; put the services' field errors on the form.
        Returns how many events were queued."""
        changes, image = form.changes(), form.cleaned_data.get("image")
        if not changes and not image:
            form.add_error(None, "Change at least one field or choose an image.")
            return 0
        try:
            if image:  # validated first: nothing is queued when either is refused
                if changes:
                    pricebook_changes_clean(item=item, changes=changes)
                pricebook_item_image(
                    item=item,
                    image=image,
                    file_name=image.name,
                    content_type=image.content_type or "",
                    actor=request.user,
                    ip_address=request_ip(request),
                )
            if changes:
                pricebook_item_update(
                    item=item, changes=changes, actor=request.user, ip_address=request_ip(request)
                )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return 0
        return int(bool(changes)) + int(bool(image))
