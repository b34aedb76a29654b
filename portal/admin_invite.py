"""The admin's "Invite a client user" action on Clients: an intermediate page asks for the
email address, then `portal.services.client_user_invite` adds the membership and emails a
one-time link to choose a password. Imported at the end of portal/admin.py."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from portal.services import client_user_invite


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address of the client user")


@admin.action(description="Invite a client user to the selected client", permissions=["invite"])
def invite_client_user(modeladmin, request, queryset):
    if queryset.count() != 1:
        modeladmin.message_user(
            request, "Select exactly one client to invite a user to.", messages.ERROR
        )
        return None
    client = queryset.get()
    from portal.models import TeamMembership

    if (
        not request.user.is_superuser
        and not TeamMembership.objects.filter(
            user=request.user,
            company_id=client.integration.company_id,
            role=TeamMembership.Role.ADMIN,
        ).exists()
    ):
        modeladmin.message_user(
            request, "Only the company's team admins may invite client users.", messages.ERROR
        )
        return None
    form = InviteForm(request.POST if "email" in request.POST else None)
    if form.is_bound and form.is_valid():
        try:
            user, _link = client_user_invite(
                client=client,
                email=form.cleaned_data["email"],
                invited_by=request.user,
                base_url=request.build_absolute_uri("/"),
            )
        except ValidationError as exc:
            form.add_error("email", exc.message_dict.get("email", exc.messages))
        else:
            modeladmin.message_user(
                request,
                f"Invitation sent to {user.email}: a one-time link to see {client.name}.",
                messages.SUCCESS,
            )
            return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Invite a client user to {client.name}",
        "form": form,
        "client": client,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/portal/client/invite.html", context)


def has_invite_permission(modeladmin, request) -> bool:
    """Superusers, and team admins of some company (the client must still be in their view
    scope to be selected); dispatchers may not give anyone portal access."""
    from portal.models import TeamMembership

    user = request.user
    return (
        user.is_superuser
        or TeamMembership.objects.filter(user=user, role=TeamMembership.Role.ADMIN).exists()
    )


def install(client_admin_class) -> None:
    client_admin_class.has_invite_permission = has_invite_permission
    actions = list(client_admin_class.actions or [])
    if invite_client_user not in actions:
        client_admin_class.actions = [*actions, invite_client_user]
