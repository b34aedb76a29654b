"""The sync engine against the provider sandbox over loopback (real HTTP, real database)."""

import threading
from datetime import datetime, timedelta

import pytest
import requests
from django.db import connection, connections
from django.utils import timezone

from integrations.exceptions import BudgetExhausted, ProviderAuthError
from integrations.models import Integration
from integrations.services import provider_for
from portal.models import Client
from sync.engine import RunLocked, _lock_key, sync_entity, sync_runs_close_dead
from sync.models import SyncCursor, SyncRun
from tests import factories
from tests.conftest import require_service
from tests.sync.conftest import sandbox_control, sandbox_stats

pytestmark = pytest.mark.django_db(transaction=True)


def full(integration, entity="clients"):
    return SyncRun.objects.get(
        pk=sync_entity(integration_id=integration.pk, entity=entity, mode="full").pk
    )


def incremental(integration, entity="clients"):
    return SyncRun.objects.get(
        pk=sync_entity(integration_id=integration.pk, entity=entity, mode="incremental").pk
    )


def company_count(sandbox, *, live_only=False) -> int:
    companies = requests.get(
        f"{sandbox.url}/servicem8/api_1.0/company.json",
        headers={"X-Api-Key": "sm8-sandbox-api-key"},
        timeout=10,
    ).json()
    return sum(1 for c in companies if not live_only or str(c["active"]) == "1")


def test_full_then_incremental_fetches_only_what_changed(sm8_integration, sandbox_clean):
    first = full(sm8_integration)
    total = company_count(sandbox_clean)
    assert (first.status, first.fetched_count, first.created_count) == ("success", total, total)
    assert Client.objects.filter(integration=sm8_integration).count() == total

    again = full(sm8_integration)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, total)

    quiet = incremental(sm8_integration)
    # Only the lookback window's overlap is read again, and nothing is rewritten.
    assert quiet.fetched_count < total and quiet.updated_count == 0

    changed = Client.objects.filter(integration=sm8_integration).order_by("name")[:3]
    for row in changed:
        sandbox_control(
            sandbox_clean,
            "records/servicem8/company",
            {"id": row.external_id, "data": {"name": f"{row.name} (renamed)"}},
        )
    since = SyncCursor.objects.get(integration=sm8_integration, entity="clients").value["since"]
    lookback = timedelta(seconds=provider_for(sm8_integration).cursor_lookback_seconds)
    overlap = (
        Client.objects.filter(integration=sm8_integration)
        .exclude(pk__in=[r.pk for r in changed])
        .filter(remote_updated_at__gte=datetime.fromisoformat(since) - lookback)
        .count()
    )
    run = incremental(sm8_integration)
    assert run.updated_count == 3 and run.created_count == 0
    assert run.fetched_count == 3 + overlap and run.unchanged_count == overlap
    for row in changed:
        row.refresh_from_db()
        assert row.name.endswith("(renamed)")


def test_a_cursor_in_the_future_fetches_nothing(sm8_integration, sandbox_clean):
    full(sm8_integration)
    future = (timezone.now() + timedelta(days=2)).isoformat()
    SyncCursor.objects.filter(integration=sm8_integration, entity="clients").update(
        value={"since": future}
    )
    run = incremental(sm8_integration)
    assert run.fetched_count == 0 and run.status == "success"
    # ...and the cursor heals back to the run's start, so later changes are not skipped.
    assert run.cursor_after["since"] <= run.started_at.isoformat()


def test_provider_deletes_are_soft_and_hidden(sm8_integration, sandbox_clean):
    full(sm8_integration)
    victim = Client.objects.filter(integration=sm8_integration).first()
    requests.delete(
        f"{sandbox_clean.url}/_sandbox/records/servicem8/company/{victim.external_id}", timeout=5
    ).raise_for_status()
    run = incremental(sm8_integration)
    assert run.deleted_count == 1
    victim.refresh_from_db()
    assert victim.remote_deleted_at is not None
    user = factories.UserFactory()
    factories.ClientMembershipFactory(user=user, client=victim)
    from portal.selectors import client_list_for_user

    assert list(client_list_for_user(user=user)) == []


def test_only_a_complete_full_run_sweeps(sm8_integration, sandbox_clean):
    full(sm8_integration)
    ghost = factories.ClientFactory(integration=sm8_integration, external_id="not-at-provider")
    sandbox_control(sandbox_clean, "config", {"servicem8": {"page_size": 10}})
    sandbox_control(sandbox_clean, "faults", {"provider": "servicem8", "truncate_pages": True})
    cursor_before = SyncCursor.objects.get(integration=sm8_integration, entity="clients").value
    truncated = full(sm8_integration)
    assert truncated.status == "partial" and not truncated.swept
    assert "cursor" in truncated.error_summary.lower()
    ghost.refresh_from_db()
    assert ghost.remote_deleted_at is None
    assert (
        SyncCursor.objects.get(integration=sm8_integration, entity="clients").value["since"]
        == cursor_before["since"]
    )

    requests.delete(f"{sandbox_clean.url}/_sandbox/faults", timeout=5)
    complete = full(sm8_integration)
    assert complete.status == "success" and complete.swept and complete.deleted_count == 1
    ghost.refresh_from_db()
    assert ghost.remote_deleted_at is not None
    live = Client.objects.filter(remote_deleted_at__isnull=True).count()
    assert live == company_count(sandbox_clean, live_only=True)


def test_an_auth_error_stops_the_run_and_needs_reauth(sm8_integration):
    sm8_integration.credentials = {"api_key": "wrong-key"}
    sm8_integration.save()
    with pytest.raises(ProviderAuthError):
        sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="full")
    run = SyncRun.objects.get(integration=sm8_integration)
    assert run.status == "failed" and "credentials" in run.error_summary
    sm8_integration.refresh_from_db()
    assert sm8_integration.status == Integration.Status.NEEDS_REAUTH


def test_a_spent_budget_defers_the_run(sm8_integration, sandbox_clean):
    sandbox_control(
        sandbox_clean, "config", {"servicem8": {"rate_limit_per_day": 1, "page_size": 10}}
    )
    with pytest.raises(BudgetExhausted) as caught:
        sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="full")
    run = SyncRun.objects.get(integration=sm8_integration)
    assert run.status == "deferred" and run.retry_at == caught.value.retry_at
    assert sandbox_stats(sandbox_clean, "servicem8")["requests_total"] == 2  # no hammering


def test_a_run_left_by_a_dead_worker_is_closed(sm8_integration):
    dead = SyncRun.objects.create(
        integration=sm8_integration,
        entity="clients",
        mode="full",
        started_at=timezone.now() - timedelta(hours=1),
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    assert sync_runs_close_dead() == 1
    dead.refresh_from_db()
    assert dead.status == "failed" and "stopped" in dead.error_summary
    # A new run also closes a leftover one before starting (its worker cannot hold the lock).
    SyncRun.objects.filter(pk=dead.pk).update(status="running")
    run = full(sm8_integration)
    dead.refresh_from_db()
    assert dead.status == "failed" and run.status == "success"


def test_two_runs_never_overlap(sm8_integration):
    require_service(
        None
        if connection.vendor == "postgresql"
        else "session advisory locks are PostgreSQL's (SQLite relies on heartbeats)"
    )
    held, release = threading.Event(), threading.Event()

    def other_worker():
        with connections["default"].cursor() as cur:
            key = _lock_key(f"sync:{sm8_integration.pk}:clients")
            cur.execute("SELECT pg_advisory_lock(%s)", [key])
            held.set()
            release.wait(10)
            cur.execute("SELECT pg_advisory_unlock_all()")
        connections["default"].close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert held.wait(10)
    try:
        with pytest.raises(RunLocked):
            sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="full")
    finally:
        release.set()
        thread.join()
    assert full(sm8_integration).status == "success"
