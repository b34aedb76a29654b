"""The Job admin's status action: hold, complete, cancel or un-cancel the selected jobs at
their provider (`portal.jobs_write.job_status_change`: audit entry + outbox event).

The action form (next to the action menu) takes the change, the reason id (hold and cancel:
the provider's job-hold-reasons / job-cancel-reasons id) and a memo. Team admins and
dispatchers may use it on their company's jobs; the job rows themselves stay read-only.
"""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from portal import models
from portal.jobs_write import CHANGES, job_status_change

ADMIN = models.TeamMembership.Role.ADMIN
DISPATCHER = models.TeamMembership.Role.DISPATCHER


class JobStatusActionForm(ActionForm):
    change = forms.ChoiceField(
        choices=[("", "— status change —"), *CHANGES.items()], required=False
    )
    reason_id = forms.CharField(required=False, label="Reason id", max_length=20)
    memo = forms.CharField(required=False, max_length=500)


class JobStatusAdminMixin:
    """Mixed into JobAdmin (a SyncedAdmin, company-scoped)."""

    action_form = JobStatusActionForm
    actions: ClassVar[list[str]] = ["change_status"]
    team_permissions: ClassVar[dict[str, frozenset[str]]] = {
        ADMIN: frozenset({"view", "job_status"}),
        DISPATCHER: frozenset({"view", "job_status"}),
    }

    def has_job_status_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return True
        return bool(self.team_company_ids(request, "job_status"))

    @admin.action(description="Change status at the provider", permissions=["job_status"])
    def change_status(self, request: HttpRequest, queryset) -> None:
        change = request.POST.get("change", "")
        if not change:
            self.message_user(request, "Choose the status change.", messages.ERROR)
            return
        if not request.user.is_superuser:
            queryset = queryset.filter(
                integration__company_id__in=self.team_company_ids(request, "job_status")
            )
        queued = 0
        for job in queryset.select_related("integration"):
            try:
                job_status_change(
                    job=job,
                    change=change,
                    reason_id=request.POST.get("reason_id", ""),
                    memo=request.POST.get("memo", ""),
                    actor=request.user,
                )
            except ValidationError as exc:
                details = "; ".join(
                    f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()
                )
                self.message_user(request, f"{job}: {details}", messages.ERROR)
            else:
                queued += 1
        if queued:
            self.message_user(
                request,
                f"{CHANGES.get(change, change)}: queued for {queued} job(s); the provider is "
                "updated by the outbox relay.",
                messages.SUCCESS,
            )
