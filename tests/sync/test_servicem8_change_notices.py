"""End to end: an admin subscribes to job changes (integrations.webhook_subscriptions, as the
admin page does), a job is changed in the ServiceM8 sandbox, the sandbox POSTs its change
notice to our live webhook endpoint, which records the event; processing it re-fetches the
job from the sandbox."""

from __future__ import annotations

import time

import pytest
import requests

from integrations.sandbox import accounts
from integrations.webhook_subscriptions import webhook_subscribe
from portal.models import Job
from sync.models import SyncRun, WebhookEvent
from sync.webhooks import webhook_event_process
from tests.integrations.sandbox import sm8_oauth_tokens
from tests.sync.conftest import sandbox_stats, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
API_KEY = {"X-Api-Key": accounts.SERVICEM8_ACCOUNT.api_key}


@pytest.fixture
def oauth_integration(sm8_integration, sandbox_clean, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    tokens = sm8_oauth_tokens(sandbox_clean.url, "vendor read_jobs read_customers read_staff")
    app = accounts.SERVICEM8_OAUTH_APP
    sm8_integration.credentials = {
        "refresh_token": tokens["refresh_token"],
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    sm8_integration.save()
    return sm8_integration


def _job(sandbox) -> dict:
    url = f"{sandbox.url}/servicem8/api_1.0/job.json"
    return requests.get(url, headers=API_KEY, timeout=10).json()[0]


def test_a_job_changed_in_the_sandbox_is_notified_recorded_and_refetched(
    oauth_integration, sandbox_clean
):
    subscription = webhook_subscribe(integration=oauth_integration, object_name="job")
    assert "job_description" in subscription.fields or "edit_date" in subscription.fields
    job = _job(sandbox_clean)
    assert not WebhookEvent.objects.exists()  # the subscription's challenge is no event

    changed = requests.post(
        f"{sandbox_clean.url}/servicem8/api_1.0/job/{job['uuid']}.json",
        # (`status` is required on every job write, spec: Job)
        json={"status": job["status"], "job_description": "Replace the hot water unit (changed)"},
        headers=API_KEY,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text

    def recorded():
        """the sandbox's change notice reached the endpoint"""
        return WebhookEvent.objects.filter(payload__external_id=job["uuid"]).first()

    event = wait_for(recorded, timeout=30)
    assert event.integration_id == oauth_integration.pk
    assert event.payload["entity"] == "jobs"
    raw = event.payload["raw"]
    assert "job_description" in str(raw), raw
    assert job["uuid"] in str(raw)

    requests.post(f"{sandbox_clean.url}/_sandbox/stats/reset", timeout=5)
    assert webhook_event_process(event_id=event.pk) == "processed"
    run = SyncRun.objects.get(mode="webhook")
    assert run.entity == "jobs"
    path = "GET /servicem8/api_1.0/job/{uuid}.json"
    assert sandbox_stats(sandbox_clean, "servicem8")["requests_by_path"].get(path) == 1
    # The job's client is not synced here, so the re-fetched job is held (not dropped) …
    assert run.held_count == 1 and not Job.objects.filter(external_id=job["uuid"]).exists()


def test_a_write_to_another_object_sends_nothing(oauth_integration, sandbox_clean):
    webhook_subscribe(integration=oauth_integration, object_name="job")
    job = _job(sandbox_clean)
    # Another object than the one subscribed: no notice.
    client_uuid = job["company_uuid"]
    response = requests.post(
        f"{sandbox_clean.url}/servicem8/api_1.0/company/{client_uuid}.json",
        json={"name": "Renamed Pty Ltd"},
        headers=API_KEY,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    time.sleep(1.5)
    assert not WebhookEvent.objects.exists()
