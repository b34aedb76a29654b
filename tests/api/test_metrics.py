"""/metrics: Prometheus text, for a bearer token or a superuser only."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from sync.models import OutboxEvent, SyncRun, WebhookEvent
from tests import factories

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token"  # noqa: S105


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_TOKEN = TOKEN


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
    assert (
        sample(
            families, "fieldbridge_sync_runs", provider="servicem8", mode="full", status="success"
        )
        == 1
    )
    assert (
        sample(families, "fieldbridge_sync_runs_in_progress", provider="servicem8", state="queued")
        == 1
    )
    assert (
        sample(families, "fieldbridge_sync_records", provider="servicem8", outcome="fetched") == 40
    )
    assert (
        sample(families, "fieldbridge_sync_records", provider="servicem8", outcome="created") == 30
    )
    assert sample(families, "fieldbridge_outbox_events", status="dead") == 1
    assert sample(families, "fieldbridge_outbox_depth") == 3  # pending, pending, failed
    assert (
        10 * 60 + 2 * 60 - 5 < sample(families, "fieldbridge_outbox_oldest_age_seconds") < 15 * 60
    )
    assert (
        sample(families, "fieldbridge_webhook_events", provider="servicem8", status="processed")
        == 1
    )
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
