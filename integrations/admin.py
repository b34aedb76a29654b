import json

from django import forms
from django.contrib import admin

from integrations.models import Integration


class IntegrationAdminForm(forms.ModelForm):
    """Credentials are write-only: the field starts empty every time, a blank submission keeps
    what is stored, and nothing stored is ever rendered back."""

    new_credentials = forms.CharField(
        label="Credentials",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "size": 80}),
        help_text='JSON object, e.g. {"api_key": "…"}. Stored encrypted and never shown again; '
        "leave blank to keep the current credentials, or enter new ones to replace them.",
    )

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

    def clean_new_credentials(self) -> dict | None:
        raw = self.cleaned_data["new_credentials"]
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON ({exc.msg} at character {exc.pos})."
            ) from None
        if not isinstance(value, dict) or not value:
            raise forms.ValidationError("Enter a JSON object with at least one key.")
        if not all(isinstance(v, str | int | bool) for v in value.values()):
            raise forms.ValidationError("Each credential must be a string, number or boolean.")
        return value

    def save(self, commit: bool = True) -> Integration:
        new = self.cleaned_data.get("new_credentials")
        if new is not None:
            self.instance.credentials = new
        return super().save(commit=commit)


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationAdminForm
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
    list_filter = ["provider", "environment", "status", "enabled"]
    search_fields = ["name", "company__name", "external_account_id"]
    readonly_fields = [
        "has_credentials",
        "last_test_ok",
        "last_test_message",
        "last_test_at",
        "last_test_latency_ms",
        "last_synced_at",
        "created_at",
        "updated_at",
    ]

    @admin.display(boolean=True, description="Credentials set")
    def has_credentials(self, obj: Integration) -> bool:
        return bool(obj.credentials)
