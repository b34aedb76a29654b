"""The sync engine against the provider sandbox over loopback (real HTTP, real database)."""

import threading
from datetime import datetime, timedelta

import pytest
import requests
from django.db import connection, connections
from django.utils import timezone

from integrations.exceptions import BudgetExhausted, ProviderAuthError
from integrations.models import Integration
from integrations.providers.servicem8.provider import ServiceM8Provider
from integrations.services import provider_for
from portal.models import Client, Job
from quotes.models import Quote, QuoteLineItem
from sync.engine import RunLocked, _lock_key, sync_entity, sync_runs_close_dead
from sync.models import HeldRecord, SyncCursor, SyncError, SyncRun
from tests import factories
from tests.conftest import require_service
from tests.sync.compare import differences
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
    from portal.selectors import client_list_visible_to

    assert list(client_list_visible_to(user=user)) == []


def test_only_a_complete_full_run_sweeps(sm8_integration, sandbox_clean):
    full(sm8_integration)
    ghost = factories.ClientFactory(integration=sm8_integration, external_id="not-at-provider")
    sandbox_control(sandbox_clean, "config", {"servicem8": {"page_size": 10}})
    sandbox_control(sandbox_clean, "faults", {"provider": "servicem8", "truncate_pages": True})
    cursor_before = SyncCursor.objects.get(integration=sm8_integration, entity="clients").value
    truncated = full(sm8_integration)
    assert truncated.status == "partial" and not truncated.swept
    assert "stopped paging" in truncated.error_summary.lower()
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


def test_a_webhook_refetch_leaves_the_incremental_cursor_alone(sm8_integration):
    from sync.engine import sync_record

    first = full(sm8_integration)
    row = Client.objects.filter(integration=sm8_integration).first()
    sync_record(integration_id=sm8_integration.pk, entity="clients", external_id=row.external_id)
    cursor_row = SyncCursor.objects.get(integration=sm8_integration, entity="clients")
    assert cursor_row.value["since"] == first.cursor_after["since"]
    assert incremental(sm8_integration).fetched_count < first.fetched_count


def test_a_row_swept_by_mistake_comes_back_when_the_provider_lists_it(sm8_integration):
    full(sm8_integration)
    row = Client.objects.filter(integration=sm8_integration, remote_deleted_at=None).first()
    Client.objects.filter(pk=row.pk).update(remote_deleted_at=timezone.now())
    run = full(sm8_integration)
    row.refresh_from_db()
    assert row.remote_deleted_at is None and run.updated_count == 1


def test_the_sweep_spares_rows_that_arrived_during_the_run(sm8_integration):
    full(sm8_integration)
    newcomer = factories.ClientFactory(integration=sm8_integration, external_id="from-a-webhook")
    Client.objects.filter(pk=newcomer.pk).update(created_at=timezone.now() + timedelta(hours=1))
    full(sm8_integration)
    newcomer.refresh_from_db()
    assert newcomer.remote_deleted_at is None


def test_jobs_before_their_clients_wait_and_are_resolved_by_a_later_run(sm8_integration):
    early = full(sm8_integration, "jobs")
    assert early.status == "partial" and early.held_count == early.fetched_count > 0
    assert HeldRecord.objects.filter(integration=sm8_integration, entity="jobs").exists()
    full(sm8_integration, "clients")
    later = incremental(sm8_integration, "jobs")
    assert later.status == "success"
    assert not HeldRecord.objects.filter(integration=sm8_integration).exists()
    assert Job.objects.filter(integration=sm8_integration).count() == early.fetched_count


def test_a_record_that_cannot_be_mapped_is_an_error_and_the_run_goes_on(
    sm8_integration, sandbox_clean
):
    full(sm8_integration)
    row = Client.objects.filter(integration=sm8_integration).first()
    sandbox_control(
        sandbox_clean,
        "records/servicem8/company",
        {"id": row.external_id, "data": {"name": "Renamed", "is_individual": "maybe"}},
    )
    original = ServiceM8Provider.map_record

    def fussy(self, entity, raw):
        if raw.get("is_individual") == "maybe":
            raise ValueError("is_individual must be 0 or 1")
        return original(self, entity, raw)

    ServiceM8Provider.map_record = fussy
    try:
        run = incremental(sm8_integration)
    finally:
        ServiceM8Provider.map_record = original
    assert run.status == "partial" and run.failed_count == 1
    error = SyncError.objects.get(run=run)
    assert error.external_id == row.external_id and "is_individual" in error.message
    assert run.unchanged_count + run.updated_count == run.fetched_count - 1


def test_servicetitan_full_and_incremental_leave_an_equal_copy(st_integration, sandbox_clean):
    from sync.engine import sync_integration

    runs = sync_integration(integration_id=st_integration.pk, mode="full")
    # Every entity, in the provider's dependency order (the core five among issue #5's).
    assert [r.entity for r in runs] == list(provider_for(st_integration).entities)
    assert all(SyncRun.objects.get(pk=r.pk).status == "success" for r in runs)
    assert Quote.objects.filter(integration=st_integration).exists()
    assert QuoteLineItem.objects.filter(integration=st_integration).exists()
    customer = Client.objects.filter(integration=st_integration).first()
    sandbox_control(
        sandbox_clean,
        "records/servicetitan/customers",
        {"id": customer.external_id, "data": {"name": "Renamed Co"}},
    )
    runs = sync_integration(integration_id=st_integration.pk, mode="incremental")
    assert SyncRun.objects.get(pk=runs[0].pk).updated_count == 1
    assert differences(st_integration) == []


def test_servicetitan_incremental_under_faults_leaves_an_equal_copy(st_integration, sandbox_clean):
    """Issue #5 review: between the full and the incremental run, a 500 and records edited
    mid-read (`mutate_during_sync`, with pages of 5 so that it fires), an estimate item deleted
    (through the API's DELETE), an appointment rescheduled and a customer deactivated. The
    incremental runs, a failed one retried as the engine would, end equal to the sandbox, both
    through the provider (`differences`) and on raw key fields (`servicetitan_raw_differences`)."""
    from portal.models import JobActivity
    from sync.engine import sync_integration
    from tests.sync.compare import servicetitan_raw_differences

    st_integration.config = {**st_integration.config, "page_size": 5}
    st_integration.save(update_fields=["config"])
    runs = sync_integration(integration_id=st_integration.pk, mode="full")
    assert all(SyncRun.objects.get(pk=r.pk).status == "success" for r in runs)
    assert servicetitan_raw_differences(st_integration, sandbox_clean.url) == []

    provider = provider_for(st_integration)
    quote = next(
        q
        for q in Quote.objects.filter(
            integration=st_integration, remote_deleted_at__isnull=True, provider_status="Open"
        )
        if len(q.raw.get("items") or ()) >= 2  # only an open estimate's items can go
    )
    item = quote.raw["items"][0]["id"]
    provider.get_client().request(
        "DELETE", provider.path("sales", f"estimates/{quote.external_id}/items/{item}")
    )
    activity = JobActivity.objects.filter(integration=st_integration).first()
    new_start = activity.starts_at + timedelta(days=3, hours=2)
    new_end = new_start + timedelta(hours=2)
    sandbox_control(
        sandbox_clean,
        "records/servicetitan/appointments",
        {
            "id": activity.external_id,
            "data": {
                "start": new_start.isoformat().replace("+00:00", "Z"),
                "end": new_end.isoformat().replace("+00:00", "Z"),
            },
        },
    )
    customer = Client.objects.filter(
        integration=st_integration, remote_deleted_at__isnull=True
    ).first()
    requests.delete(
        f"{sandbox_clean.url}/_sandbox/records/servicetitan/customers/{customer.external_id}",
        timeout=10,
    ).raise_for_status()
    sandbox_control(
        sandbox_clean,
        "faults",
        {
            "mutate_during_sync": True,
            # As many 500s as the HTTP layer's tries (RetryPolicy.attempts): the jobs run fails.
            "queue": [{"status": 500, "method": "GET", "path": "*/jpm/v2/tenant/*/jobs"}] * 3,
        },
    )

    entities = list(provider.entities)
    statuses = []
    for _attempt in range(3):  # the engine's beat runs again after a failed run
        started = timezone.now()
        sync_integration(integration_id=st_integration.pk, mode="incremental")
        this_pass = {
            run.entity: run.status
            for run in SyncRun.objects.filter(
                integration=st_integration, mode="incremental", started_at__gte=started
            )
        }
        statuses.append([this_pass.get(e, "missing") for e in entities])
        if all(s == "success" for s in statuses[-1]):
            break
    faults = sandbox_stats(sandbox_clean, "servicetitan").get("faults_injected", {})
    assert faults.get("mutate_during_sync") and faults.get("queue") == 3, faults
    assert statuses[0][entities.index("jobs")] == "failed", statuses  # the 500s failed it
    assert len(statuses) >= 2, statuses  # and the next pass retried it
    assert all(s == "success" for s in statuses[-1]), statuses
    # Records edited during the last read are caught by the next poll, once the edits stop.
    requests.delete(f"{sandbox_clean.url}/_sandbox/faults", timeout=10).raise_for_status()
    runs = sync_integration(integration_id=st_integration.pk, mode="incremental")
    assert all(SyncRun.objects.get(pk=r.pk).status == "success" for r in runs)

    assert differences(st_integration) == []
    assert servicetitan_raw_differences(st_integration, sandbox_clean.url) == []
    quote.refresh_from_db()
    assert item not in [i["id"] for i in quote.raw["items"]]
    assert not QuoteLineItem.objects.filter(
        quote=quote, external_id=str(item), remote_deleted_at__isnull=True
    ).exists()
    activity.refresh_from_db()
    assert activity.starts_at == new_start
    customer.refresh_from_db()
    assert customer.remote_deleted_at is not None


def test_each_run_starts_without_the_last_runs_write_hints(
    sm8_integration, sandbox_clean, monkeypatch
):
    """A first sync leaves the writers expecting new rows; the next run (a worker runs many)
    checks the stored digests first instead of COPYing stored rows straight into the table
    and having the database refuse them. A webhook's re-fetch starts afresh the same way."""
    from sync import engine, writers

    first = full(sm8_integration)
    assert first.created_count > 0
    if connection.vendor == "postgresql":
        assert writers._EXPECT_STORED[(sm8_integration.pk, Client)] is False
    copies = []
    original = writers._copy_new
    monkeypatch.setattr(writers, "_copy_new", lambda *args: copies.append(args) or original(*args))
    again = full(sm8_integration)
    assert (again.created_count, again.updated_count) == (0, 0)
    assert copies == []  # nothing stored was offered to a straight COPY

    writers._EXPECT_STORED[(sm8_integration.pk, Client)] = False  # as a first sync leaves it
    stored = Client.objects.filter(integration=sm8_integration).first()
    engine.sync_record(
        integration_id=sm8_integration.pk, entity="clients", external_id=stored.external_id
    )
    assert copies == []
