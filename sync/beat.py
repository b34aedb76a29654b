"""Beat: per-integration sync schedules, and a lock so that only one beat schedules.

Schedules: every enabled integration gets two django-celery-beat periodic tasks, an
incremental sync every SYNC_INCREMENTAL_EVERY_MINUTES and a full reconciliation nightly at
SYNC_FULL_HOUR in the company's time zone. They are created when the integration is saved,
kept enabled only while the integration is enabled and active, removed with it, and
reconciled every 10 minutes (`sync.schedules_reconcile`) for changes made by bulk updates.
A person may edit a schedule's timing in the admin (Periodic tasks): it is never overwritten.
(`sync` listens to Integration saves, because `integrations` may not import `sync`.)

One beat: two beats would queue every sync twice. `LockedDatabaseScheduler` (the configured
CELERY_BEAT_SCHEDULER) holds a lock in the shared cache (Redis in production), renewed on
every tick; a second beat stands by without scheduling and takes over if the first one dies
and its lock expires (BEAT_LOCK_TTL seconds).
"""

from __future__ import annotations

import json
import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from integrations.models import Integration

logger = logging.getLogger("sync.beat")

TASK = "sync.sync_integration"
NAME_PREFIX = "fieldbridge:sync:"
BEAT_LOCK_KEY = "fieldbridge:beat:lock"
BEAT_LOCK_TTL = 60


def schedule_name(integration_id: int, mode: str) -> str:
    return f"{NAME_PREFIX}{integration_id}:{mode}"


def _crontab(mode: str, company_timezone: str) -> CrontabSchedule:
    if mode == "incremental":
        fields = {"minute": f"*/{settings.SYNC_INCREMENTAL_EVERY_MINUTES}", "hour": "*"}
        zone = "UTC"
    else:
        fields = {"minute": "0", "hour": str(settings.SYNC_FULL_HOUR)}
        zone = company_timezone or "UTC"
    schedule, _ = CrontabSchedule.objects.get_or_create(
        **fields, day_of_week="*", day_of_month="*", month_of_year="*", timezone=zone
    )
    return schedule


def integration_schedules_sync(*, integration: Integration) -> list[PeriodicTask]:
    """Create the integration's schedules if missing; enable them only while it can sync."""
    active = integration.enabled and integration.status == Integration.Status.ACTIVE
    tasks = []
    with transaction.atomic():
        for mode, expires in (
            ("incremental", 90 * settings.SYNC_INCREMENTAL_EVERY_MINUTES),
            ("full", 36 * 60 * 60),
        ):
            name = schedule_name(integration.pk, mode)
            task = PeriodicTask.objects.filter(name=name).first()
            if task is None:
                task = PeriodicTask.objects.create(
                    name=name,
                    task=TASK,
                    kwargs=json.dumps({"integration_id": integration.pk, "mode": mode}),
                    crontab=_crontab(mode, integration.company.timezone),
                    queue="sync",
                    expire_seconds=expires,
                    enabled=active,
                    description=f"{mode.title()} sync of {integration}",
                )
            elif task.enabled != active:
                task.enabled = active
                task.save(update_fields=["enabled"])
            tasks.append(task)
    return tasks


def integration_schedules_remove(*, integration_id: int) -> int:
    deleted, _ = PeriodicTask.objects.filter(
        name__in=[schedule_name(integration_id, m) for m in ("incremental", "full")]
    ).delete()
    return deleted


def integration_schedules_reconcile() -> int:
    """Every integration's schedules in step; orphans (deleted integrations) removed."""
    ids = set()
    for integration in Integration.objects.select_related("company"):
        integration_schedules_sync(integration=integration)
        ids.add(integration.pk)
    orphans = [
        task.pk
        for task in PeriodicTask.objects.filter(name__startswith=NAME_PREFIX)
        if int(task.name.removeprefix(NAME_PREFIX).split(":")[0]) not in ids
    ]
    PeriodicTask.objects.filter(pk__in=orphans).delete()
    return len(ids)


def on_integration_saved(sender, instance: Integration, **kwargs) -> None:
    def sync_schedules() -> None:
        integration = Integration.objects.select_related("company").filter(pk=instance.pk).first()
        if integration is not None:  # not deleted before the commit
            integration_schedules_sync(integration=integration)

    transaction.on_commit(sync_schedules)


def on_integration_deleted(sender, instance: Integration, **kwargs) -> None:
    integration_schedules_remove(integration_id=instance.pk)


class LockedDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, scheduling only while it holds the beat lock."""

    standby_interval = 15.0

    def __init__(self, *args, **kwargs) -> None:
        self._token = uuid.uuid4().hex
        self._holding = False
        self._warned = False
        super().__init__(*args, **kwargs)

    def holds_lock(self) -> bool:
        if cache.add(BEAT_LOCK_KEY, self._token, BEAT_LOCK_TTL):
            self._holding = True
            logger.info("beat lock acquired: this beat schedules")
        elif cache.get(BEAT_LOCK_KEY) == self._token:
            cache.touch(BEAT_LOCK_KEY, BEAT_LOCK_TTL)
            self._holding = True
        else:
            if self._holding or not self._warned:
                logger.warning("another beat holds the beat lock: standing by, not scheduling")
                self._warned = True
            self._holding = False
        return self._holding

    def tick(self, *args, **kwargs) -> float:
        if not self.holds_lock():
            return self.standby_interval
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        if self._holding and cache.get(BEAT_LOCK_KEY) == self._token:
            cache.delete(BEAT_LOCK_KEY)
        super().close()
