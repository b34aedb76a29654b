"""Per-integration beat schedules, and the lock that lets only one beat schedule."""

import json

import pytest
from django.core.cache import cache
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.celery import app
from integrations.models import Integration
from sync.beat import (
    BEAT_LOCK_KEY,
    LockedDatabaseScheduler,
    integration_schedules_reconcile,
    schedule_name,
)
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def schedules(integration):
    return {
        t.name.rsplit(":", 1)[1]: t
        for t in PeriodicTask.objects.filter(name__startswith=f"fieldbridge:sync:{integration.pk}:")
    }


def test_an_integration_gets_its_schedules_and_they_follow_it(company):
    company.timezone = "Australia/Sydney"
    company.save()
    integration = factories.IntegrationFactory(company=company)
    tasks = schedules(integration)
    assert set(tasks) == {"incremental", "full"}
    incremental, nightly = tasks["incremental"], tasks["full"]
    assert incremental.task == "sync.sync_integration" and incremental.enabled
    assert json.loads(incremental.kwargs) == {
        "integration_id": integration.pk,
        "mode": "incremental",
    }
    assert incremental.crontab.minute == "*/15" and incremental.queue == "sync"
    assert (nightly.crontab.hour, nightly.crontab.minute) == ("2", "0")
    assert str(nightly.crontab.timezone) == "Australia/Sydney"

    integration.enabled = False
    integration.save()
    assert not any(t.enabled for t in schedules(integration).values())
    integration.enabled = True
    integration.save()
    assert all(t.enabled for t in schedules(integration).values())

    # A schedule edited in the admin keeps its timing.
    edited = schedules(integration)["incremental"]
    edited.crontab = CrontabSchedule.objects.create(minute="*/5", hour="*")
    edited.save()
    integration.save()
    assert schedules(integration)["incremental"].crontab.minute == "*/5"

    # A bulk update (needs_reauth) bypasses save(); the reconcile task catches it.
    Integration.objects.filter(pk=integration.pk).update(status="needs_reauth")
    integration_schedules_reconcile()
    assert not any(t.enabled for t in schedules(integration).values())

    integration_id = integration.pk
    integration.delete()
    assert not PeriodicTask.objects.filter(name=schedule_name(integration_id, "full")).exists()


def test_only_one_beat_schedules(settings):
    cache.delete(BEAT_LOCK_KEY)
    first = LockedDatabaseScheduler(app=app, lazy=True)
    second = LockedDatabaseScheduler(app=app, lazy=True)
    assert first.holds_lock() is True
    assert second.holds_lock() is False
    assert second.tick() == second.standby_interval  # stands by, schedules nothing
    assert first.holds_lock() is True  # renewed
    first.close()
    assert second.holds_lock() is True  # takes over once the first one is gone
    second.close()
    assert cache.get(BEAT_LOCK_KEY) is None
