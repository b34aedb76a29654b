"""Alerts, once per incident (integrations.models.Incident): a sync failing
ALERT_SYNC_FAILURES_IN_A_ROW runs in a row, and dead letters piling up
(ALERT_DEAD_LETTERS_THRESHOLD per integration). "Needs reauthorization" is opened by
`integrations.services.integration_mark_needs_reauth` itself.

Checks run where the state changes (the end of a sync run, an outbox event going dead, a
replay) and every few minutes (`sync.alerts_check`), which also closes incidents whose
condition cleared some other way (a run closed as dead, a person's fix). A check never
raises into its caller: an alert must not break a sync or a delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from integrations.models import Incident, Integration
from integrations.services import integration_incident_close, integration_incident_open
from sync.models import OutboxEvent, SyncRun

logger = logging.getLogger("sync.alerts")

# Runs that say nothing about whether the sync works: skipped, not counted.
NEUTRAL_STATUSES = (SyncRun.Status.RUNNING, SyncRun.Status.DEFERRED, SyncRun.Status.CANCELLED)


@dataclass(frozen=True)
class FailureStreak:
    """An entity's latest finished runs (full or incremental; running, deferred and cancelled
    runs skipped), newest first: how many of them failed in a row, counting at most
    ALERT_SYNC_FAILURES_IN_A_ROW, and the latest one's error summary."""

    failed: int
    summary: str = ""

    @property
    def failing(self) -> bool:
        """The rule for "failing repeatedly", for the alert and the dashboard alike."""
        return self.failed >= settings.ALERT_SYNC_FAILURES_IN_A_ROW


def failure_streaks(*, integration_ids: Iterable[int]) -> dict[tuple[int, str], FailureStreak]:
    """(integration id, entity) -> its FailureStreak, for every entity with a finished run.
    One query for any number of integrations."""
    threshold = max(settings.ALERT_SYNC_FAILURES_IN_A_ROW, 1)
    rows = (
        SyncRun.objects.filter(integration_id__in=list(integration_ids))
        .exclude(mode=SyncRun.Mode.WEBHOOK)
        .exclude(status__in=NEUTRAL_STATUSES)
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("integration_id"), F("entity")],
                order_by=[F("started_at").desc(), F("id").desc()],
            )
        )
        .filter(position__lte=threshold)
        .order_by("integration_id", "entity", "position")
        .values_list("integration_id", "entity", "status", "error_summary")
    )
    streaks: dict[tuple[int, str], FailureStreak] = {}
    broken: set[tuple[int, str]] = set()
    for integration_id, entity, status, summary in rows:
        key = (integration_id, entity)
        current = streaks.setdefault(key, FailureStreak(failed=0, summary=summary or ""))
        if key in broken:
            continue
        if status == SyncRun.Status.FAILED:
            streaks[key] = FailureStreak(failed=current.failed + 1, summary=current.summary)
        else:
            broken.add(key)
    return streaks


def failing_entities(*, integration_id: int) -> dict[str, str]:
    """Entities whose last ALERT_SYNC_FAILURES_IN_A_ROW finished runs (full or incremental)
    all failed -> the latest run's error summary."""
    return {
        entity: streak.summary
        for (_, entity), streak in failure_streaks(integration_ids=[integration_id]).items()
        if streak.failing
    }


def sync_failures_check(*, integration_id: int) -> None:
    failing = failing_entities(integration_id=integration_id)
    if not failing:
        integration_incident_close(integration_id=integration_id, kind=Incident.Kind.SYNC_FAILING)
        return
    n = settings.ALERT_SYNC_FAILURES_IN_A_ROW
    detail = "\n".join(
        f"{entity}: the last {n} runs failed. Latest: {summary or 'no detail'}"
        for entity, summary in sorted(failing.items())
    )
    integration_incident_open(
        integration_id=integration_id, kind=Incident.Kind.SYNC_FAILING, detail=detail
    )


def dead_letters_check(*, integration_id: int) -> None:
    dead = OutboxEvent.objects.filter(
        integration_id=integration_id, status=OutboxEvent.Status.DEAD
    ).count()
    if dead < settings.ALERT_DEAD_LETTERS_THRESHOLD:
        integration_incident_close(integration_id=integration_id, kind=Incident.Kind.DEAD_LETTERS)
        return
    integration_incident_open(
        integration_id=integration_id,
        kind=Incident.Kind.DEAD_LETTERS,
        detail=f"{dead} outbox events are dead (writes to the provider that need a person).",
    )


def needs_reauth_check(*, integration: Integration) -> None:
    if integration.status == Integration.Status.NEEDS_REAUTH:
        integration_incident_open(
            integration_id=integration.pk,
            kind=Incident.Kind.NEEDS_REAUTH,
            detail="The provider refused the stored credentials.",
        )
    else:
        integration_incident_close(integration_id=integration.pk, kind=Incident.Kind.NEEDS_REAUTH)


def _guarded(check, **kwargs) -> None:
    """Run a check in its own savepoint; log, never raise (the caller's work comes first)."""
    try:
        with transaction.atomic():
            check(**kwargs)
    except Exception:
        logger.exception("alert check failed", extra={"check": check.__name__})


def on_sync_run_finished(run: SyncRun) -> None:
    """Called by the engine when a run ends (any status)."""
    if run.mode == SyncRun.Mode.WEBHOOK or run.status in NEUTRAL_STATUSES:
        return
    _guarded(sync_failures_check, integration_id=run.integration_id)


def on_outbox_dead_changed(integration_id: int) -> None:
    """Called when events go dead or are replayed."""
    _guarded(dead_letters_check, integration_id=integration_id)


def alerts_check() -> int:
    """The periodic sweep: every integration's conditions, opening and closing incidents.
    Returns how many integrations were checked."""
    checked = 0
    for integration in Integration.objects.only("id", "status").iterator():
        _guarded(needs_reauth_check, integration=integration)
        _guarded(sync_failures_check, integration_id=integration.pk)
        _guarded(dead_letters_check, integration_id=integration.pk)
        checked += 1
    from integrations.services import incidents_notify_pending

    _guarded(incidents_notify_pending)
    return checked
