"""Syncs on real Celery workers (Redis broker, PostgreSQL) against the sandbox, with faults."""

import pytest
import requests

from config.celery import app
from integrations.services import provider_for
from portal.models import Client
from sync.models import SyncCursor, SyncRun
from tests.sync.compare import differences
from tests.sync.conftest import sandbox_control, sandbox_stats, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def all_finished(integration, count):
    """`count` runs of the integration finished"""
    done = SyncRun.objects.filter(integration=integration).exclude(status="running")
    return (
        done.count() >= count
        and not SyncRun.objects.filter(integration=integration, status="running").exists()
    )


def test_faults_and_a_killed_worker_lose_and_duplicate_nothing(
    sm8_integration, sandbox_clean, workers
):
    sandbox = sandbox_clean
    entities = len(provider_for(sm8_integration).entities)
    sandbox_control(sandbox, "config", {"servicem8": {"page_size": 15}})
    faults = {
        "provider": "servicem8",
        "error_rate": 0.1,
        "error_statuses": [429, 500, 502, 503],
        "latency_ms": 10,
        "seed": 5,
    }
    sandbox_control(sandbox, "faults", faults)
    first = workers("sync-a")
    app.send_task(
        "sync.sync_integration", kwargs={"integration_id": sm8_integration.pk, "mode": "full"}
    )

    def mid_run():
        """a run is a few pages in"""
        return SyncRun.objects.filter(
            integration=sm8_integration, status="running", pages_count__gte=3
        ).first()

    victim = wait_for(mid_run)
    first.kill()

    # The provider changes while no worker runs (the test's own calls go unfaulted).
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    companies = requests.get(
        f"{sandbox.url}/servicem8/api_1.0/company.json",
        headers={"X-Api-Key": "sm8-sandbox-api-key"},
        timeout=10,
    ).json()
    sandbox_control(
        sandbox,
        "records/servicem8/company",
        {"id": companies[0]["uuid"], "data": {"name": "Renamed"}},
    )
    requests.delete(
        f"{sandbox.url}/_sandbox/records/servicem8/company/{companies[1]['uuid']}", timeout=5
    ).raise_for_status()
    sandbox_control(sandbox, "records/servicem8/company", {"data": {"name": "Brand new"}})
    sandbox_control(sandbox, "faults", faults)

    workers("sync-b")
    app.send_task(
        "sync.sync_integration", kwargs={"integration_id": sm8_integration.pk, "mode": "full"}
    )
    wait_for(lambda: all_finished(sm8_integration, 1 + entities))
    victim.refresh_from_db()
    assert victim.status == "failed"  # closed by the next run: its worker was gone
    app.send_task(
        "sync.sync_integration",
        kwargs={"integration_id": sm8_integration.pk, "mode": "incremental"},
    )
    wait_for(lambda: all_finished(sm8_integration, 1 + 2 * entities))

    assert sandbox_stats(sandbox, "servicem8")["faults_injected"]  # faults really happened
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    assert differences(sm8_integration) == []


def test_incremental_syncs_on_a_worker_fetch_only_what_changed(
    sm8_integration, sandbox_clean, workers
):
    workers("sync-inc", queues=("sync",))

    def run(mode):
        before = SyncRun.objects.filter(integration=sm8_integration).count()
        app.send_task(
            "sync.sync_integration",
            kwargs={"integration_id": sm8_integration.pk, "mode": mode, "entities": ["clients"]},
        )
        wait_for(lambda: all_finished(sm8_integration, before + 1), timeout=60)
        return SyncRun.objects.filter(integration=sm8_integration).latest("started_at")

    assert run("full").created_count > 0
    first = run("incremental")
    row = Client.objects.filter(integration=sm8_integration).order_by("remote_updated_at").first()
    sandbox_control(
        sandbox_clean, "records/servicem8/company", {"id": row.external_id, "data": {"name": "X"}}
    )
    second = run("incremental")
    # The second run reads the one change plus the lookback overlap the first run also read,
    # and writes only the change.
    assert (second.updated_count, second.created_count) == (1, 0)
    assert second.fetched_count == first.fetched_count + 1
    assert second.unchanged_count == first.fetched_count

    SyncCursor.objects.filter(integration=sm8_integration, entity="clients").update(
        value={"since": "2099-01-01T00:00:00+00:00"}
    )
    assert run("incremental").fetched_count == 0  # a cursor in the future fetches nothing
