"""/metrics: Prometheus text, for a bearer token or a superuser only; the database figures
(bounded, cached gauges); provider calls counted in-process; multiprocess mode's set-up."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from config import gunicorn as gunicorn_config
from config import metrics
from sync.models import OutboxEvent, SyncRun, WebhookEvent
from tests import factories
from tests.sync import conftest as sandbox_fixtures

sandbox = sandbox_fixtures.sandbox
sandbox_clean = sandbox_fixtures.sandbox_clean
sm8_integration = sandbox_fixtures.sm8_integration

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token"  # noqa: S105
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_TOKEN = TOKEN
    metrics.DATABASE_COLLECTOR.cache_clear()  # figures of this test's rows, not a cached scrape
    yield
    metrics.DATABASE_COLLECTOR.cache_clear()


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def sample(families: dict, family: str, name: str | None = None, **labels) -> float:
    for s in families[family].samples:
        if (name is None or s.name == name) and all(
            s.labels.get(k) == v for k, v in labels.items()
        ):
            return s.value
    raise AssertionError(f"no {family} sample with {labels}")


def sample_or_zero(families: dict, family: str, name: str | None = None, **labels) -> float:
    try:
        return sample(families, family, name, **labels)
    except (AssertionError, KeyError):
        return 0.0


def test_anonymous_and_wrong_tokens_are_refused(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_company_staff_and_client_users_are_refused(client, company):
    staff = factories.TeamMembershipFactory(company=company).user
    client.force_login(staff)
    assert client.get("/metrics").status_code == 401


def test_no_token_configured_means_no_token_works(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_a_superuser_session_may_scrape(client):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    assert "fieldbridge_outbox_depth" in scrape(client)


def test_the_metric_families(client, integration):
    now = timezone.now()
    SyncRun.objects.create(
        integration=integration,
        entity="clients",
        mode="full",
        status="success",
        started_at=now,
        finished_at=now,
        fetched_count=40,
        created_count=30,
        updated_count=5,
    )
    SyncRun.objects.create(
        integration=integration, entity="jobs", mode="incremental", started_at=now
    )
    SyncRun.objects.create(  # outside the 24-hour window
        integration=integration,
        entity="clients",
        mode="full",
        status="success",
        started_at=now - timedelta(days=2),
        finished_at=now - timedelta(days=2),
        fetched_count=1000,
    )
    for n, status in enumerate(["pending", "pending", "failed", "dead", "sent"]):
        event = OutboxEvent.objects.create(
            integration=integration,
            action="quote.decide",
            aggregate_type="quotes.Quote",
            aggregate_id=str(n),
            idempotency_key=f"k-{n}",
            status=status,
        )
        OutboxEvent.objects.filter(pk=event.pk).update(created_at=now - timedelta(minutes=10 + n))
    WebhookEvent.objects.create(
        provider="servicem8",
        integration=integration,
        external_event_id="e-1",
        verification="valid",
        status="processed",
    )
    old = WebhookEvent.objects.create(
        provider="servicem8",
        integration=integration,
        external_event_id="e-0",
        verification="valid",
        status="processed",
    )
    WebhookEvent.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=2))
    client.get("/health")  # a request for the middleware to count

    families = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert (
        sample(families, "fieldbridge_http_requests", route="health", method="GET", status="2xx")
        >= 1
    )
    assert (
        sample(
            families,
            "fieldbridge_http_request_duration_seconds",
            "fieldbridge_http_request_duration_seconds_count",
            route="health",
        )
        >= 1
    )
    runs = families["fieldbridge_sync_runs_recent"]
    assert runs.type == "gauge"  # a running run moves to another status: not a counter
    assert sample(families, runs.name, provider="servicem8", mode="full", status="success") == 1
    assert (
        sample(families, runs.name, provider="servicem8", mode="incremental", status="running") == 1
    )
    assert (
        sample(families, "fieldbridge_sync_runs_in_progress", provider="servicem8", state="queued")
        == 1
    )
    assert (
        sample(families, "fieldbridge_sync_records_recent", provider="servicem8", outcome="fetched")
        == 40  # not the 1,000 of the run two days ago
    )
    assert (
        sample(families, "fieldbridge_sync_records_recent", provider="servicem8", outcome="created")
        == 30
    )
    assert sample(families, "fieldbridge_outbox_events", status="dead") == 1
    assert sample(families, "fieldbridge_outbox_depth") == 3  # pending, pending, failed
    assert (
        10 * 60 + 2 * 60 - 5 < sample(families, "fieldbridge_outbox_oldest_age_seconds") < 15 * 60
    )
    assert (
        sample(
            families, "fieldbridge_webhook_events_recent", provider="servicem8", status="processed"
        )
        == 1  # the one of two days ago is outside the window
    )
    for name in ("fieldbridge_sync_records_recent", "fieldbridge_webhook_events_recent"):
        assert families[name].type == "gauge"
    assert sample(families, "fieldbridge_metrics_database_up") == 1
    for provider_family in (
        "fieldbridge_provider_calls",
        "fieldbridge_provider_call_seconds",
        "fieldbridge_provider_budget_exhausted",
    ):
        assert provider_family in families


def test_unmatched_paths_share_one_series(client):
    for n in range(3):
        client.get(f"/no/such/page/{n}")
    families = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    routes = {s.labels["route"] for s in families["fieldbridge_http_requests"].samples}
    assert "unmatched" in routes
    assert not any("/no/such" in route for route in routes)


def test_the_database_figures_are_cached_between_scrapes(integration, django_assert_num_queries):
    collector = metrics.DatabaseCollector()
    list(collector.collect())
    SyncRun.objects.create(
        integration=integration, entity="jobs", mode="incremental", started_at=timezone.now()
    )
    with django_assert_num_queries(0):
        families = {f.name: f for f in collector.collect()}
    assert not families["fieldbridge_sync_runs_in_progress"].samples  # still the cached figures
    collector.cache_clear()
    families = {f.name: f for f in collector.collect()}
    assert families["fieldbridge_sync_runs_in_progress"].samples


def test_a_provider_call_in_process_is_counted_at_metrics(client, sm8_integration):
    labels = {"provider": "servicem8", "method": "GET", "status_class": "2xx"}
    name = "fieldbridge_provider_calls_total"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    before = sample_or_zero(scrape(client, **auth), "fieldbridge_provider_calls", name, **labels)
    api = APIClient()
    api.force_login(factories.TeamMembershipFactory(company=sm8_integration.company).user)
    response = api.post(f"/api/v1/integrations/{sm8_integration.pk}/test-connection")
    assert response.json()["ok"] is True
    after = sample(scrape(client, **auth), "fieldbridge_provider_calls", name, **labels)
    assert after >= before + 1


def _count_in(directory: Path, amount: int) -> None:
    """Increment a counter in a separate process in multiprocess mode, writing `directory`."""
    code = (
        "from prometheus_client import Counter; "
        f"Counter('fb_test_calls', 'Calls.', ['provider']).labels('servicem8').inc({amount})"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)  # noqa: S603


def test_multiprocess_mode_adds_up_every_process_groups_directory(tmp_path):
    web, worker = tmp_path / "web", tmp_path / "worker"
    web.mkdir(), worker.mkdir()
    _count_in(web, 2)
    _count_in(web, 3)  # another gunicorn worker
    _count_in(worker, 5)  # a Celery process, in its own directory
    (worker / "notes.db").write_text("not a metrics file")
    collector = metrics.SiblingsMultiProcessCollector(str(web))
    [family] = [f for f in collector.collect() if f.name == "fb_test_calls"]
    assert sum(s.value for s in family.samples if s.name == "fb_test_calls_total") == 10


def test_gunicorn_empties_the_metrics_directory_and_marks_dead_workers(tmp_path, monkeypatch):
    directory = tmp_path / "web"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "gauge_livesum_77.db").write_bytes(b"live")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    gunicorn_config.on_starting(server=None)
    assert directory.is_dir() and not list(directory.iterdir())
    (directory / "gauge_livesum_77.db").write_bytes(b"live")
    gunicorn_config.child_exit(server=None, worker=type("Worker", (), {"pid": 77}))
    assert not (directory / "gauge_livesum_77.db").exists()


def test_web_and_worker_run_in_multiprocess_mode_with_their_own_directories():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    dirs = {
        name: compose[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        for name in ("web", "worker", "beat")
    }
    assert dirs["web"] == "/app/var/prometheus/web"
    assert dirs["worker"] == "/app/var/prometheus/worker"
    assert len({dirs["web"], dirs["worker"], dirs["beat"]}) == 3
    for name in ("web", "worker", "beat"):
        assert "prometheus-multiproc:/app/var/prometheus" in compose[name]["volumes"]
    assert "--config config/gunicorn.py" in compose["web"]["command"]
    assert 'rm -rf "$$PROMETHEUS_MULTIPROC_DIR"' in compose["worker"]["command"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ENV PROMETHEUS_MULTIPROC_DIR=/app/var/prometheus/web" in dockerfile
    assert '"--config", "config/gunicorn.py"' in dockerfile
    procfile = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile.dev").read_text().splitlines() if line
    )
    assert "export PROMETHEUS_MULTIPROC_DIR=var/prometheus/web && rm -rf" in procfile["web"]
    assert "export PROMETHEUS_MULTIPROC_DIR=var/prometheus/worker && rm -rf" in procfile["worker"]
