"""The transactional outbox: every write to a provider, delivered at least once, applied once.

- `outbox_event_enqueue` records the event in the caller's transaction (the same one as the
  local change), and kicks delivery when that transaction commits. The kick is best effort:
  with the broker down the event simply waits for the relay's periodic sweep.
- `outbox_claim` takes due events with `SELECT … FOR UPDATE SKIP LOCKED`, so relays never
  deliver one event twice at once. A claim is a lease: an event stuck in "sending" because
  its relay died is claimable again once `OUTBOX_CLAIM_TIMEOUT` has passed.
- `outbox_deliver` calls the provider outside any transaction. The provider's write reads the
  record's state first and skips what is already done, so a re-delivery after a crash (the
  write landed, the acknowledgement did not) changes the provider once.
- Failures retry with exponential backoff and jitter; after `OUTBOX_MAX_ATTEMPTS`, or at once
  for an error that cannot succeed on retry (a 4xx validation error), the event is *dead*,
  with its error kept, until a person replays it (`outbox_dead_replay`, the admin, or
  `manage.py outbox_replay`).
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from config.celery import app as celery_app
from integrations.exceptions import (
    BudgetExhausted,
    ProviderAuthError,
    ProviderConflictError,
    ProviderError,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderValidationError,
)
from integrations.models import Integration
from integrations.services import integration_mark_needs_reauth, provider_for
from sync import alerts
from sync.models import OutboxEvent

logger = logging.getLogger("sync.outbox")

DELIVER_TASK = "sync.outbox_deliver"
# aggregate type -> callable(event_id=, status=, response=) told when an event of that
# aggregate is sent, goes dead or is replayed (the aggregate keeps its own state in step).
RESULT_HANDLERS = {"booking": "portal.bookings.booking_outbox_result"}
# Errors that a retry cannot fix: the event goes straight to the dead letters for a person.
PERMANENT_ERRORS = (
    ProviderValidationError,
    ProviderPermissionError,
    ProviderNotFoundError,
    ProviderConflictError,
)


def outbox_event_enqueue(
    *,
    integration: Integration,
    action: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict,
    idempotency_key: str,
) -> OutboxEvent:
    """Record a provider write in the current transaction; returns the existing event when
    the idempotency key was used before (the caller asked for the same effect twice)."""
    event, created = OutboxEvent.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "integration": integration,
            "action": action,
            "aggregate_type": aggregate_type,
            "aggregate_id": str(aggregate_id),
            "payload": payload,
            "next_attempt_at": timezone.now(),
        },
    )
    if created:
        transaction.on_commit(lambda: outbox_kick(event.pk), robust=True)
    return event


def outbox_kick(event_id: int) -> None:
    """Ask a worker to deliver now. Never raises: the sweep is the safety net."""
    try:
        celery_app.send_task(DELIVER_TASK, args=[event_id], retry=False)
    except Exception:
        logger.warning("outbox kick failed; the relay sweep will deliver", exc_info=True)


def _backoff(attempts: int) -> timedelta:
    ceiling = min(settings.OUTBOX_BACKOFF_MAX, settings.OUTBOX_BACKOFF_BASE * 2 ** (attempts - 1))
    return timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311


def _claimable(now) -> Q:
    due = Q(status__in=[OutboxEvent.Status.PENDING, OutboxEvent.Status.FAILED]) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    lease_expired = Q(status=OutboxEvent.Status.SENDING, next_attempt_at__lte=now)
    return due | lease_expired


def outbox_claim(*, limit: int = 50, event_id: int | None = None) -> list[OutboxEvent]:
    """Claim due events for this relay: status "sending", one more attempt, a lease."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT)
    with transaction.atomic():
        due = OutboxEvent.objects.filter(_claimable(now))
        if event_id is not None:
            due = due.filter(pk=event_id)
        events = list(
            due.select_for_update(skip_locked=True).order_by("next_attempt_at", "id")[:limit]
        )
        for event in events:
            event.status = OutboxEvent.Status.SENDING
            event.attempts += 1
            event.next_attempt_at = lease
            event.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    return events


def outbox_deliver(*, event_id: int) -> OutboxEvent | None:
    """Deliver one event if it is due and no other relay holds it."""
    claimed = outbox_claim(limit=1, event_id=event_id)
    return _send(claimed[0]) if claimed else None


def outbox_relay(*, limit: int = 100) -> int:
    """The sweep: deliver every due event (and reclaim abandoned ones). Returns how many."""
    delivered = 0
    while delivered < limit:
        claimed = outbox_claim(limit=min(10, limit - delivered))
        if not claimed:
            break
        for event in claimed:
            _send(event)
            delivered += 1
    return delivered


def _send(event: OutboxEvent) -> OutboxEvent:
    integration = Integration.objects.select_related("company").get(pk=event.integration_id)
    try:
        if not integration.enabled:
            raise ProviderError("the integration is disabled", provider=integration.provider)
        provider = provider_for(integration)
        response = provider.perform(
            event.action, dict(event.payload), idempotency_key=event.idempotency_key
        )
    except ProviderAuthError as exc:
        integration_mark_needs_reauth(integration_id=integration.pk, reason=str(exc))
        return _failed(event, exc, retryable=True)
    except BudgetExhausted as exc:
        return _failed(event, exc, retryable=True, not_before=exc.retry_at)
    except ProviderError as exc:
        return _failed(event, exc, retryable=not isinstance(exc, PERMANENT_ERRORS))
    except Exception as exc:  # a bug must not lose the event: keep it, with the error
        logger.exception("outbox delivery crashed", extra={"event_id": event.pk})
        return _failed(event, exc, retryable=True)
    now = timezone.now()
    updated = OutboxEvent.objects.filter(pk=event.pk, status=OutboxEvent.Status.SENDING).update(
        status=OutboxEvent.Status.SENT,
        sent_at=now,
        response=response or {},
        last_error="",
        field_errors={},
        next_attempt_at=None,
        updated_at=now,
    )
    if updated:
        logger.info(
            "outbox event sent",
            extra={"event_id": event.pk, "action": event.action, "attempts": event.attempts},
        )
        _tell_aggregate(event, "sent", response or {})
    event.refresh_from_db()
    return event


def _tell_aggregate(event: OutboxEvent, status: str, response: dict | None = None) -> None:
    handler = RESULT_HANDLERS.get(event.aggregate_type)
    if handler is None:
        return
    try:
        import_string(handler)(event_id=event.pk, status=status, response=response)
    except Exception:  # the event's own state is already right; the aggregate catches up
        logger.exception("outbox result handler failed", extra={"event_id": event.pk})


def _failed(
    event: OutboxEvent, exc: BaseException, *, retryable: bool, not_before=None
) -> OutboxEvent:
    now = timezone.now()
    dead = not retryable or event.attempts >= settings.OUTBOX_MAX_ATTEMPTS
    next_at = now + _backoff(event.attempts)
    if not_before is not None:
        next_at = max(next_at, not_before)
    message = f"{type(exc).__name__}: {exc}"[:4000]
    OutboxEvent.objects.filter(pk=event.pk, status=OutboxEvent.Status.SENDING).update(
        status=OutboxEvent.Status.DEAD if dead else OutboxEvent.Status.FAILED,
        last_error=message,
        # A provider's refusal by field (ServiceTitan problem+json `errors`), for the admin
        # and the API to show next to the error.
        field_errors=getattr(exc, "field_errors", None) or {},
        next_attempt_at=None if dead else next_at,
        updated_at=now,
    )
    logger.warning(
        "outbox delivery failed",
        extra={
            "event_id": event.pk,
            "action": event.action,
            "attempts": event.attempts,
            "dead": dead,
        },
    )
    if dead:
        alerts.on_outbox_dead_changed(event.integration_id)
        _tell_aggregate(event, "dead")
    event.refresh_from_db()
    return event


def outbox_dead_replay(*, event_ids: list[int] | None = None) -> int:
    """Give dead events a fresh set of attempts (all of them when no ids are given)."""
    now = timezone.now()
    with transaction.atomic():
        dead = OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD)
        if event_ids is not None:
            dead = dead.filter(pk__in=event_ids)
        ids = list(dead.select_for_update().values_list("id", flat=True))
        OutboxEvent.objects.filter(pk__in=ids).update(
            status=OutboxEvent.Status.PENDING, attempts=0, next_attempt_at=now, updated_at=now
        )
        for event in OutboxEvent.objects.filter(pk__in=ids):
            _tell_aggregate(event, "pending")
        for event_id in ids:
            transaction.on_commit(lambda event_id=event_id: outbox_kick(event_id), robust=True)
    return len(ids)
