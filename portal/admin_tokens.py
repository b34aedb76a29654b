"""API tokens in the admin: create one (the plain token is shown once, in the message after
saving), see when it was last used, revoke it. Only the digest is stored."""

from django.contrib import admin, messages
from django.utils import timezone

from portal.api.tokens import api_token_create, api_token_revoke
from portal.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "state"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__email"]
    raw_id_fields = ["user"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # A token's owner and secret never change; revoke it and create another instead.
        return ["user", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_changeform_initial_data(self, request):
        from datetime import timedelta

        from django.conf import settings

        return {"expires_at": timezone.now() + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)}

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, raw = api_token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
        )
        obj.pk = token.pk
        obj.__dict__.update(token.__dict__)
        messages.warning(
            request,
            f"The API token for {token.user} is: {raw} — copy it now; it will not be shown again.",
        )

    @admin.display(description="State")
    def state(self, obj: ApiToken) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)
