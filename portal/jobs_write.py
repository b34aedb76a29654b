"""Job status changes pushed to the provider: hold, complete, cancel with a reason, remove a
cancellation.

`job_status_change` validates the request, then writes the AuditLog entry and the outbox event
(action `job.status`) in one transaction, as `quotes.services` does for quote decisions. The
relay delivers it (`Provider.perform("job.status", payload)`); the provider reads the job's
status first and skips a change already in effect, so a re-delivery changes nothing twice. The
local Job row is the provider's (synced): it is not edited here, the next sync brings the new
status.

Payload: `{"job_external_id", "change", "reason_id", "memo"}`. Cancel and hold need a reason
id from the provider's own lists (ServiceTitan job-cancel-reasons / job-hold-reasons, synced as
ReferenceRecord kinds `cancel_reason` / `hold_reason`): when that list has been synced, the id
must be an active one of it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from integrations.base import Capability
from integrations.services import integration_write_refusal
from portal.models import AuditLog, Job, ReferenceRecord, User
from sync.models import OutboxEvent
from sync.outbox import outbox_event_enqueue

JOB_STATUS = "job.status"
CHANGES = {
    "hold": "Put on hold",
    "complete": "Complete",
    "cancel": "Cancel",
    "remove_cancellation": "Remove the cancellation",
}
# change -> the ReferenceRecord kind its reason comes from
REASON_KINDS = {"hold": "hold_reason", "cancel": "cancel_reason"}
MEMO_LIMIT = 500


def _reason_errors(job: Job, change: str, reason_id) -> tuple[int | None, list[str]]:
    kind = REASON_KINDS.get(change)
    if kind is None:
        return None, []
    text = str(reason_id if reason_id is not None else "").strip()
    if not text:
        return None, [f"A {kind.replace('_', ' ')} is required to {change} a job."]
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        return None, ["Give the reason's id (a positive integer)."]
    reasons = ReferenceRecord.objects.filter(
        integration_id=job.integration_id, kind=kind, remote_deleted_at__isnull=True
    )
    if (
        reasons.exists()
        and not reasons.filter(external_id=f"{kind}:{int(text)}", is_active=True).exists()
    ):
        return None, [f"{text} is not an active {kind.replace('_', ' ')} of this integration."]
    return int(text), []


def job_status_change(
    *, job: Job, change: str, reason_id=None, memo: str = "", actor: User | None = None
) -> OutboxEvent:
    """Queue a status change of a synced job at its provider. Raises ValidationError with
    field details for bad input, a job the provider does not know, or an integration that
    cannot change job statuses."""
    errors: dict[str, list[str]] = {}
    if change not in CHANGES:
        errors["change"] = [f"Choose one of {', '.join(CHANGES)}."]
    integration = job.integration
    provider, refusal = integration_write_refusal(
        integration, Capability.WRITE_JOB_STATUS, "changing job statuses"
    )
    if provider is None:
        raise ValidationError({"integration": [refusal]})
    if refusal:
        errors["integration"] = [refusal]
    if not job.external_id:
        errors["job"] = ["The job has no provider id yet."]
    elif job.remote_deleted_at is not None:
        errors["job"] = ["The job was deleted at the provider."]
    if not isinstance(memo, str):
        errors["memo"] = ["Must be text."]
        memo = ""
    memo = memo.strip()
    if len(memo) > MEMO_LIMIT:
        errors["memo"] = [f"At most {MEMO_LIMIT} characters."]
    reason = None
    if "change" not in errors:
        reason, reason_errors = _reason_errors(job, change, reason_id)
        if reason_errors:
            errors["reason_id"] = reason_errors
    if errors:
        raise ValidationError(errors)
    payload = {
        "job_external_id": job.external_id,
        "change": change,
        "reason_id": reason,
        "memo": memo,
    }
    with transaction.atomic():
        entry = AuditLog.objects.create(
            company_id=integration.company_id,
            actor=actor,
            action=f"job.{change}",
            target_type="job",
            target_id=str(job.pk),
            target_repr=str(job)[:255],
            before={"status": job.status, "provider_status": job.provider_status},
            after={"change": change, "reason_id": reason, "memo": memo},
        )
        event = outbox_event_enqueue(
            integration=integration,
            action=JOB_STATUS,
            aggregate_type="job",
            aggregate_id=str(job.pk),
            payload=payload,
            # One event per request (the audit entry); the provider skips a change already in
            # effect, so two requests for the same change still change the job once.
            idempotency_key=f"job-status:{entry.pk}",
        )
        entry.after = {**entry.after, "outbox_event_id": event.pk}
        entry.save(update_fields=["after"])
    return event
