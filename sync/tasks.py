"""Celery tasks for the sync, outbox and webhook queues.

Tasks are thin (STYLE.md §6): they take ids, import the service inside the body, call it,
and decide about retries. Every task here uses one of the base classes below, so its time
limits stay below the broker's visibility timeout (checked when the settings load) and its
delivery is at-least-once: acknowledged late, given back if the worker dies. Routing by name
(config/settings/components/celery.py): `sync.outbox_*` to "outbox",
`sync.process_webhook_event` to "webhooks", every other `sync.*` to "sync".
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger("sync.tasks")
# A deferred sync comes back within this, well inside the broker's visibility timeout.
MAX_DEFER_SECONDS = min(3600, settings.CELERY_VISIBILITY_TIMEOUT // 2)


class SyncTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    soft_time_limit = settings.SYNC_TASK_SOFT_TIME_LIMIT
    time_limit = settings.SYNC_TASK_TIME_LIMIT


class OutboxTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    soft_time_limit = settings.OUTBOX_TASK_SOFT_TIME_LIMIT
    time_limit = settings.OUTBOX_TASK_TIME_LIMIT


@shared_task(bind=True, base=SyncTask, name="sync.sync_integration", max_retries=3)
def sync_integration(
    self,
    integration_id: int,
    mode: str,
    entities: list[str] | None = None,
    run_ids: dict[str, int] | None = None,
) -> dict:
    """Sync every entity of one integration. Auth errors never retry (the integration is
    marked needs_reauth); a spent budget re-queues the remaining entities for when it
    refills; other provider errors retry with backoff. `run_ids`: runs queued by the API
    (`sync.engine.sync_runs_queue`), entity -> run id; a retry or re-queue starts new runs."""
    from integrations.exceptions import BudgetExhausted, ProviderAuthError, ProviderError
    from sync.engine import IntegrationUnavailable
    from sync.engine import sync_integration as sync_integration_service

    try:
        runs = sync_integration_service(
            integration_id=integration_id,
            mode=mode,
            entities=entities,
            run_ids=None if self.request.retries else run_ids,
        )
    except IntegrationUnavailable as exc:
        logger.info("sync skipped", extra={"integration_id": integration_id, "reason": str(exc)})
        return {"skipped": str(exc)}
    except ProviderAuthError:
        return {"stopped": "needs_reauth"}
    except BudgetExhausted as exc:
        # Come back when the budget refills, but within the broker's visibility timeout (an
        # ETA beyond it would be delivered twice); once per integration and mode.
        remaining = getattr(exc, "remaining_entities", entities)
        wait = (exc.retry_at - timezone.now()).total_seconds() if exc.retry_at else 3600
        countdown = max(60, min(wait, MAX_DEFER_SECONDS))
        if cache.add(f"sync:deferred:{integration_id}:{mode}", 1, int(countdown)):
            self.apply_async(
                kwargs={"integration_id": integration_id, "mode": mode, "entities": remaining},
                countdown=countdown,
            )
        return {"deferred_for_seconds": countdown}
    except ProviderError as exc:
        raise self.retry(exc=exc, countdown=60 * 2**self.request.retries) from exc
    return {"runs": {run.entity: run.status for run in runs}}


@shared_task(bind=True, base=SyncTask, name="sync.import_integration")
def import_integration(self, import_id: int) -> dict:
    """A full import started from the admin (`sync.imports`): never retried as a whole; each
    entity's run records its own outcome, and a person may start another import."""
    from sync.imports import import_execute

    return import_execute(import_id=import_id)


@shared_task(bind=True, base=SyncTask, name="sync.sync_runs_close_dead")
def sync_runs_close_dead(self) -> int:
    from sync.engine import sync_runs_close_dead as service

    return service()


@shared_task(bind=True, base=SyncTask, name="sync.schedules_reconcile")
def schedules_reconcile(self) -> int:
    from sync.beat import integration_schedules_reconcile

    return integration_schedules_reconcile()


@shared_task(bind=True, base=OutboxTask, name="sync.outbox_deliver")
def outbox_deliver(self, event_id: int) -> str | None:
    from sync.outbox import outbox_deliver as service

    event = service(event_id=event_id)
    return event.status if event else None


@shared_task(bind=True, base=OutboxTask, name="sync.outbox_relay")
def outbox_relay(self) -> int:
    from sync.outbox import outbox_relay as service

    return service()


@shared_task(bind=True, base=SyncTask, name="sync.webhook_events_requeue")
def webhook_events_requeue(self) -> int:
    from sync.webhooks import webhook_events_requeue as service

    return service()


@shared_task(bind=True, base=SyncTask, name="sync.process_webhook_event", max_retries=5)
def process_webhook_event(self, event_id: int) -> str:
    """Re-fetch the record a webhook named; provider errors retry with backoff."""
    from integrations.exceptions import ProviderAuthError, ProviderError, ProviderValidationError
    from sync.webhooks import webhook_event_process

    try:
        return webhook_event_process(event_id=event_id)
    except (ProviderAuthError, ProviderValidationError) as exc:
        return f"not retried: {type(exc).__name__}"
    except ProviderError as exc:
        raise self.retry(exc=exc, countdown=30 * 2**self.request.retries) from exc


@shared_task(bind=True, base=SyncTask, name="sync.sync_error_retry", max_retries=3)
def sync_error_retry(self, error_id: int) -> str:
    """Re-fetch the record of a SyncError a person retried from the admin (sync.retries)."""
    from integrations.exceptions import ProviderAuthError, ProviderError, ProviderValidationError
    from sync.engine import IntegrationUnavailable
    from sync.retries import sync_error_retry_execute

    try:
        return sync_error_retry_execute(error_id=error_id)
    except (IntegrationUnavailable, ValueError, ProviderAuthError, ProviderValidationError) as exc:
        return f"not retried: {type(exc).__name__}"
    except ProviderError as exc:
        raise self.retry(exc=exc, countdown=30 * 2**self.request.retries) from exc


@shared_task(bind=True, base=SyncTask, name="sync.alerts_check")
def alerts_check(self) -> int:
    from sync.alerts import alerts_check as service

    return service()
