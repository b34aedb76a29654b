"""Retrying what failed, from the admin: sync errors (re-fetch the record) and dead-lettered
outbox events (a fresh set of attempts). Each retry is audited.

- A SyncError with the record's id is re-fetched through the engine's `sync_record`, in a
  Celery task (`sync.sync_error_retry`); a record that now maps and writes resolves its error,
  one the provider no longer has is marked deleted and its error resolved. An error without a
  record id (the provider sent something unmappable) can only be reached by re-reading the
  entity: a full sync of that entity is queued instead.
- Dead OutboxEvents go back to pending through `sync.outbox.outbox_dead_replay`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.celery import app as celery_app
from portal.models import AuditLog, User
from sync import alerts
from sync.models import OutboxEvent, SyncError, SyncRun
from sync.outbox import outbox_dead_replay

logger = logging.getLogger("sync.retries")

RETRY_TASK = "sync.sync_error_retry"
SYNC_TASK = "sync.sync_integration"


@dataclass(frozen=True)
class RetryOutcome:
    queued: int
    skipped: int


def _audit(*, action: str, obj, company_id, actor, ip_address, after: dict) -> None:
    AuditLog.objects.create(
        company_id=company_id,
        actor=actor,
        action=action,
        target_type=obj._meta.label,
        target_id=str(obj.pk),
        target_repr=str(obj)[:255],
        after=after,
        ip_address=ip_address,
    )


def sync_errors_retry(
    *, errors: list[SyncError], actor: User | None = None, ip_address: str | None = None
) -> RetryOutcome:
    """Queue a re-fetch of each unresolved error's record (a full entity sync for those with
    no record id, once per integration and entity)."""
    queued = skipped = 0
    resyncs: set[tuple[int, str]] = set()
    with transaction.atomic():
        for error in errors:
            if error.resolved_at is not None:
                skipped += 1
                continue
            SyncError.objects.filter(pk=error.pk).update(
                retry_count=F("retry_count") + 1, updated_at=timezone.now()
            )
            company_id = error.integration.company_id
            if error.external_id:
                transaction.on_commit(
                    lambda pk=error.pk: celery_app.send_task(RETRY_TASK, args=[pk]), robust=True
                )
                how = "re-fetch"
            else:
                key = (error.integration_id, error.entity)
                if key not in resyncs:
                    resyncs.add(key)
                    transaction.on_commit(
                        lambda key=key: celery_app.send_task(
                            SYNC_TASK,
                            kwargs={
                                "integration_id": key[0],
                                "mode": SyncRun.Mode.FULL,
                                "entities": [key[1]],
                            },
                        ),
                        robust=True,
                    )
                how = "entity re-sync"
            _audit(
                action="sync_error.retry",
                obj=error,
                company_id=company_id,
                actor=actor,
                ip_address=ip_address,
                after={"entity": error.entity, "external_id": error.external_id, "how": how},
            )
            queued += 1
    return RetryOutcome(queued=queued, skipped=skipped)


def sync_error_retry_execute(*, error_id: int) -> str:
    """The task's body: re-fetch the error's record; resolve the error when that settles it."""
    from sync.engine import sync_record

    error = SyncError.objects.filter(pk=error_id).first()
    if error is None or error.resolved_at is not None:
        return "resolved"
    run = sync_record(
        integration_id=error.integration_id, entity=error.entity, external_id=error.external_id
    )
    if run.status == SyncRun.Status.SUCCESS:
        # Written (the engine resolves it) or gone at the provider (marked deleted): settled.
        SyncError.objects.filter(pk=error_id, resolved_at__isnull=True).update(
            resolved_at=timezone.now()
        )
        return "resolved"
    return run.status


def outbox_events_retry(
    *, events: list[OutboxEvent], actor: User | None = None, ip_address: str | None = None
) -> RetryOutcome:
    """Replay the dead ones among `events` (others are skipped: they are on their way)."""
    dead = [e for e in events if e.status == OutboxEvent.Status.DEAD]
    with transaction.atomic():
        replayed = outbox_dead_replay(event_ids=[e.pk for e in dead]) if dead else 0
        for event in dead:
            _audit(
                action="outbox_event.retry",
                obj=event,
                company_id=event.integration.company_id,
                actor=actor,
                ip_address=ip_address,
                after={
                    "status": OutboxEvent.Status.PENDING,
                    "previous_error": event.last_error[:300],
                },
            )
    for integration_id in {e.integration_id for e in dead}:
        alerts.on_outbox_dead_changed(integration_id)
    return RetryOutcome(queued=replayed, skipped=len(events) - replayed)
