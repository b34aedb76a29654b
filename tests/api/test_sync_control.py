"""Sync control API: test connection, start syncs (real run ids, run by a real worker),
sync status, self-test; who may use it."""

import pytest
from rest_framework.test import APIClient

from integrations import registry
from integrations.models import ConnectionTest
from portal.models import TeamMembership
from sync import control
from sync.engine import (
    IntegrationUnavailable,
    sync_integration,
    sync_runs_close_dead,
    sync_runs_queue,
)
from sync.models import OutboxEvent, SyncError, SyncRun
from tests import factories
from tests.sync import conftest as sandbox_fixtures
from tests.sync.conftest import wait_for

# The sync tests' sandbox (a local emulator of the providers) and its integrations.
sandbox = sandbox_fixtures.sandbox
sandbox_clean = sandbox_fixtures.sandbox_clean
sm8_integration = sandbox_fixtures.sm8_integration

pytestmark = pytest.mark.django_db

API = "/api/v1/integrations"
ACTIONS = ("sync_companies", "sync_jobs", "sync_quotes", "full_sync")


@pytest.fixture(autouse=True)
def _rates(settings):
    # The throttles count per IP in the shared cache: other tests' requests must not spill over.
    settings.API_THROTTLE_RATE = settings.API_THROTTLE_WRITE_RATE = "100000/minute"


@pytest.fixture
def queued(monkeypatch):
    """The messages sync_start sends (instead of a broker)."""
    sent = []
    monkeypatch.setattr(
        control.celery_app, "send_task", lambda name, kwargs: sent.append((name, kwargs))
    )
    return sent


def staff_client(company, role=TeamMembership.Role.ADMIN) -> APIClient:
    membership = factories.TeamMembershipFactory(company=company, role=role)
    api = APIClient()
    api.force_login(membership.user)
    return api


def test_start_returns_real_run_ids_and_queues_them(
    integration, queued, django_capture_on_commit_callbacks
):
    api = staff_client(integration.company)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"{API}/{integration.pk}/sync_companies", {"mode": "full"}, format="json"
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["entities"] == ["clients", "contacts"]
    runs = SyncRun.objects.filter(pk__in=body["run_ids"])
    assert {(r.entity, r.mode, r.status, r.heartbeat_at) for r in runs} == {
        ("clients", "full", "running", None),
        ("contacts", "full", "running", None),
    }
    assert [r["started"] for r in body["runs"]] == [False, False]
    assert queued == [
        (
            "sync.sync_integration",
            {
                "integration_id": integration.pk,
                "mode": "full",
                "entities": ["clients", "contacts"],
                "run_ids": dict(zip(body["entities"], body["run_ids"], strict=True)),
            },
        )
    ]


def test_each_action_maps_to_the_providers_entities(integration):
    st = factories.IntegrationFactory(company=integration.company, provider="servicetitan")
    expected = {
        ("servicem8", "sync_companies"): ["clients", "contacts"],
        ("servicem8", "sync_jobs"): [
            "staff",
            "jobs",
            "job_contacts",
            "activities",
            "materials",
            "attachments",
            "notes",
        ],
        ("servicem8", "sync_quotes"): ["jobs", "materials"],  # a ServiceM8 quote is a job
        # contact methods
        ("servicetitan", "sync_companies"): ["clients", "locations", "contacts"],
        ("servicetitan", "sync_jobs"): ["staff", "jobs", "appointments"],
        ("servicetitan", "sync_quotes"): ["quotes"],
    }
    for (provider, action), entities in expected.items():
        target = integration if provider == "servicem8" else st
        assert control.sync_action_entities(integration=target, action=action) == entities
    for target in (integration, st):  # a full sync: every entity, in the provider's order
        everything = list(registry.get(target.provider).entities)
        assert control.sync_action_entities(integration=target, action="full_sync") == everything
        assert everything[0] == "clients"


def test_a_second_start_while_one_runs_is_409(integration, queued):
    api = staff_client(integration.company)
    first = api.post(f"{API}/{integration.pk}/sync_jobs")
    assert first.status_code == 202
    for action in ("sync_jobs", "sync_quotes", "full_sync"):  # all overlap jobs
        response = api.post(f"{API}/{integration.pk}/{action}")
        assert response.status_code == 409, action
        assert response.json()["error"]["code"] == "sync_running"
    assert api.post(f"{API}/{integration.pk}/sync_companies").status_code == 202  # no overlap
    expected = len(control.sync_action_entities(integration=integration, action="sync_jobs")) + len(
        control.sync_action_entities(integration=integration, action="sync_companies")
    )
    assert SyncRun.objects.filter(integration=integration).count() == expected


def test_a_disabled_integration_cannot_start(integration, queued):
    integration.enabled = False
    integration.save()
    response = staff_client(integration.company).post(f"{API}/{integration.pk}/full_sync")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "integration_unavailable"
    assert not SyncRun.objects.exists() and not queued


def test_bad_mode_is_400(integration, queued):
    response = staff_client(integration.company).post(
        f"{API}/{integration.pk}/sync_jobs", {"mode": "sometimes"}, format="json"
    )
    assert response.status_code == 400
    assert "mode" in response.json()["error"]["fields"]


ENDPOINTS = [
    ("post", "test-connection"),
    *(("post", action) for action in ACTIONS),
    ("get", "sync-status"),
    ("post", "self-test"),
]


@pytest.mark.parametrize(("method", "endpoint"), ENDPOINTS)
def test_staff_of_another_company_get_404(integration, queued, method, endpoint):
    api = staff_client(factories.CompanyFactory())
    response = getattr(api, method)(f"{API}/{integration.pk}/{endpoint}")
    assert response.status_code == 404
    assert not SyncRun.objects.exists() and not queued


@pytest.mark.parametrize(("method", "endpoint"), ENDPOINTS)
def test_client_users_get_404(integration, queued, method, endpoint):
    client = factories.ClientFactory(integration=integration)
    membership = factories.ClientMembershipFactory(client=client)
    api = APIClient()
    api.force_login(membership.user)
    response = getattr(api, method)(f"{API}/{integration.pk}/{endpoint}")
    assert response.status_code == 404
    assert not SyncRun.objects.exists() and not queued


OPERATIONS = [(method, endpoint) for method, endpoint in ENDPOINTS if endpoint != "sync-status"]


@pytest.mark.parametrize(("method", "endpoint"), OPERATIONS)
def test_dispatchers_may_not_operate(integration, queued, method, endpoint):
    """As in the admin: dispatchers view, only team admins test, self-test and start syncs."""
    api = staff_client(integration.company, role=TeamMembership.Role.DISPATCHER)
    response = getattr(api, method)(f"{API}/{integration.pk}/{endpoint}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not SyncRun.objects.exists() and not queued
    assert not ConnectionTest.objects.exists()
    integration.refresh_from_db()
    assert integration.last_test_at is None


def test_dispatchers_view_the_sync_status(integration):
    api = staff_client(integration.company, role=TeamMembership.Role.DISPATCHER)
    response = api.get(f"{API}/{integration.pk}/sync-status")
    assert response.status_code == 200
    assert response.json()["integration_id"] == integration.pk


def test_an_admin_elsewhere_is_a_dispatcher_here(integration, queued):
    """The role that counts is the one in the integration's company."""
    membership = factories.TeamMembershipFactory(role=TeamMembership.Role.ADMIN)
    factories.TeamMembershipFactory(
        user=membership.user, company=integration.company, role=TeamMembership.Role.DISPATCHER
    )
    api = APIClient()
    api.force_login(membership.user)
    assert api.post(f"{API}/{integration.pk}/full_sync").status_code == 404
    assert api.get(f"{API}/{integration.pk}/sync-status").status_code == 200
    own = factories.IntegrationFactory(company=membership.company)
    assert api.post(f"{API}/{own.pk}/full_sync").status_code == 202


def test_test_connection_without_a_connector_says_so(queued):
    """A provider Fieldbridge has no connector for is a failed test, not a 500."""
    integration = factories.IntegrationFactory(provider="jobber")
    response = staff_client(integration.company).post(f"{API}/{integration.pk}/test-connection")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["result"] == "failed" and body["ok"] is False
    assert "no Jobber connector" in body["message"]
    integration.refresh_from_db()
    assert integration.last_test_ok is False


def test_anonymous_is_refused(integration):
    response = APIClient().get(f"{API}/{integration.pk}/sync-status")
    assert response.status_code in (401, 403)


def test_superusers_control_every_integration(integration, queued):
    admin = factories.UserFactory(is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_login(admin)
    assert api.post(f"{API}/{integration.pk}/full_sync").status_code == 202
    assert api.get(f"{API}/{integration.pk}/sync-status").status_code == 200


def test_sync_status_reports_runs_counts_and_errors(integration, queued):
    api = staff_client(integration.company)
    run_ids = api.post(f"{API}/{integration.pk}/sync_companies").json()["run_ids"]
    SyncError.objects.create(
        run_id=run_ids[0],
        integration=integration,
        entity="clients",
        external_id="c-9",
        message="Could not map: KeyError 'name'",
    )
    body = api.get(f"{API}/{integration.pk}/sync-status").json()
    assert body["running"] is True
    assert sorted(r["id"] for r in body["runs"]) == sorted(run_ids)
    assert body["counts"]["runs_by_status"]["running"] == 2
    assert body["counts"]["open_errors"] == 1
    assert body["errors"][0]["external_id"] == "c-9" and body["errors"][0]["run_id"] == run_ids[0]
    clients = next(e for e in body["entities"] if e["entity"] == "clients")
    assert clients["last_run"]["id"] == run_ids[0] and clients["open_errors"] == 1


def test_a_queued_run_becomes_the_engines_run(sm8_integration):
    runs = sync_runs_queue(
        integration=sm8_integration, entities=["clients", "contacts"], mode="full"
    )
    ids = {run.entity: run.pk for run in runs}
    done = sync_integration(
        integration_id=sm8_integration.pk,
        mode="full",
        entities=["clients", "contacts"],
        run_ids=ids,
    )
    assert {run.entity: run.pk for run in done} == ids
    finished = SyncRun.objects.filter(integration=sm8_integration)
    assert finished.count() == 2
    assert all(r.status == "success" and r.fetched_count > 0 for r in finished)


def test_queued_runs_not_started_are_closed_saying_why(integration):
    integration.enabled = False
    integration.save()
    runs = sync_runs_queue(integration=integration, entities=["clients"], mode="incremental")
    with pytest.raises(IntegrationUnavailable):
        sync_integration(
            integration_id=integration.pk,
            mode="incremental",
            entities=["clients"],
            run_ids={"clients": runs[0].pk},
        )
    runs[0].refresh_from_db()
    assert runs[0].status == "failed" and "Not started" in runs[0].error_summary


def test_a_lost_queued_run_is_closed_after_the_stale_period(integration, settings):
    from datetime import timedelta

    from django.utils import timezone

    [run] = sync_runs_queue(integration=integration, entities=["clients"], mode="incremental")
    assert sync_runs_close_dead() == 0
    later = timezone.now() + timedelta(seconds=settings.SYNC_RUN_STALE_AFTER + 1)
    assert sync_runs_close_dead(now=later) == 1
    run.refresh_from_db()
    assert run.status == "failed"


def test_test_connection_reports_result_message_and_latency(sm8_integration):
    api = staff_client(sm8_integration.company)
    body = api.post(f"{API}/{sm8_integration.pk}/test-connection").json()
    assert body["result"] == "ok" and body["ok"] is True
    assert body["message"] and body["latency_ms"] >= 0


def test_self_test_checks_the_whole_integration(sm8_integration):
    OutboxEvent.objects.create(
        integration=sm8_integration,
        action="quote.decide",
        aggregate_type="quotes.Quote",
        aggregate_id="1",
        idempotency_key="k-1",
        status=OutboxEvent.Status.DEAD,
    )
    api = staff_client(sm8_integration.company)
    body = api.post(f"{API}/{sm8_integration.pk}/self-test").json()
    checks = {c["name"]: c for c in body["checks"]}
    assert list(checks) == [
        "credentials",
        "connection",
        "api_budget",
        "last_sync",
        "webhooks",
        "outbox",
    ]
    assert checks["credentials"]["status"] == "pass"
    assert checks["connection"]["status"] == "pass"
    assert checks["last_sync"]["status"] == "fail"  # never synced
    assert checks["outbox"]["status"] == "fail" and "dead letter" in checks["outbox"]["message"]
    assert body["ok"] is False
    assert all(c["message"] for c in body["checks"])


def test_self_test_without_credentials_skips_the_call(integration):
    integration.credentials = None
    integration.save()
    body = staff_client(integration.company).post(f"{API}/{integration.pk}/self-test").json()
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["credentials"]["status"] == "fail"
    assert checks["connection"]["status"] == "fail"
    assert "Not tried" in checks["connection"]["message"]


@pytest.mark.django_db(transaction=True)
def test_started_runs_are_run_by_a_real_worker(sm8_integration, celery_worker_queue, monkeypatch):
    send = control.celery_app.send_task
    # The worker of this test consumes a private queue (a stray worker never takes the message).
    monkeypatch.setattr(
        control.celery_app,
        "send_task",
        lambda name, kwargs: send(name, kwargs=kwargs, queue=celery_worker_queue),
    )
    api = staff_client(sm8_integration.company)
    response = api.post(f"{API}/{sm8_integration.pk}/sync_companies")
    assert response.status_code == 202, response.content
    run_ids = response.json()["run_ids"]

    def finished():
        """the queued runs finished"""
        return not SyncRun.objects.filter(pk__in=run_ids, status="running").exists()

    wait_for(finished, timeout=60)
    runs = SyncRun.objects.filter(integration=sm8_integration)
    assert sorted(runs.values_list("pk", flat=True)) == sorted(run_ids)  # no other runs
    assert {r.status for r in runs} == {"success"}
    assert all(r.heartbeat_at and r.fetched_count for r in runs)
    status = api.get(f"{API}/{sm8_integration.pk}/sync-status").json()
    assert status["running"] is False
    assert {r["id"]: r["status"] for r in status["runs"]} == dict.fromkeys(run_ids, "success")
