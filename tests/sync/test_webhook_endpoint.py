"""The webhook endpoint: verify, store once, answer fast, re-fetch in a task."""

import json
import logging
import time

import pytest
import requests

from sync.models import SyncRun, WebhookEvent
from sync.webhooks import webhook_event_process
from tests import factories
from tests.sync.conftest import sandbox_stats, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "whk-0123456789abcdef"  # noqa: S105 - a test token


def sm8_job_notice(uuid: str, when: str = "2026-11-21 10:00:00") -> bytes:
    return json.dumps(
        {
            "object": "job",
            "entry": [{"uuid": uuid, "changed_fields": ["status"], "time": when}],
            "resource_url": f"https://api.servicem8.com/api_1.0/job/{uuid}.json",
        }
    ).encode()


@pytest.fixture
def sm8_hooked(sm8_integration):
    sm8_integration.credentials = {**sm8_integration.credentials, "webhook_secrets": [TOKEN]}
    sm8_integration.save()
    return sm8_integration


def url(integration, token=TOKEN):
    return f"/webhooks/servicem8/{integration.pk}/{token}/"


def a_job(sandbox) -> dict:
    return requests.get(
        f"{sandbox.url}/servicem8/api_1.0/job.json",
        headers={"X-Api-Key": "sm8-sandbox-api-key"},
        timeout=10,
    ).json()[0]


def test_the_subscription_challenge_is_answered_only_with_the_token(client, sm8_hooked):
    form = "application/x-www-form-urlencoded"
    body = "mode=subscribe&challenge=c-123"
    answered = client.post(url(sm8_hooked), body, content_type=form)
    assert answered.status_code == 200 and answered.content == b"c-123"
    assert client.post(url(sm8_hooked, "wrong-token"), body, content_type=form).status_code == 400
    # Only the refusal is kept (for the admin's webhook list), never as an event to process.
    assert not WebhookEvent.objects.exclude(status="rejected").exists()


def test_a_bad_token_gets_400_and_is_logged(client, sm8_hooked, caplog):
    with caplog.at_level(logging.WARNING, logger="sync.webhooks"):
        response = client.post(
            url(sm8_hooked, "forged"), sm8_job_notice("x"), content_type="application/json"
        )
    assert response.status_code == 400
    ours = [r for r in caplog.records if r.name == "sync.webhooks"]
    assert [r.message for r in ours] == ["webhook refused"]
    assert all(TOKEN not in str(r.__dict__) for r in caplog.records)
    refused = WebhookEvent.objects.get()
    assert refused.status == "rejected" and refused.verification == "invalid"
    assert refused.payload == {} and TOKEN not in refused.verification_reason


def test_a_rotated_token_is_still_accepted(client, sm8_hooked):
    sm8_hooked.credentials = {**sm8_hooked.credentials, "webhook_secrets": ["new-token", TOKEN]}
    sm8_hooked.save()
    for token in ("new-token", TOKEN):
        response = client.post(
            url(sm8_hooked, token), sm8_job_notice(token), content_type="application/json"
        )
        assert response.status_code == 200


def test_unknown_events_are_stored_and_acknowledged(client, sm8_hooked):
    body = json.dumps({"object": "vendor", "entry": [{"uuid": "a1", "time": "x"}]})
    response = client.post(url(sm8_hooked), body, content_type="application/json")
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == "ignored" and event.integration == sm8_hooked


def test_a_nul_character_in_a_verified_body_is_stored_not_a_500(client, sm8_hooked):
    body = json.dumps({"object": "job", "entry": [{"uuid": "j\u00001", "time": "t\u0000"}]})
    response = client.post(url(sm8_hooked), body, content_type="application/json")
    assert response.status_code == 200 and WebhookEvent.objects.count() == 1


def test_malformed_credentials_do_not_break_the_endpoint(client, sm8_hooked):
    sm8_hooked.credentials = {**sm8_hooked.credentials, "webhook_secrets": {"not": "a list"}}
    sm8_hooked.save()
    response = client.post(url(sm8_hooked), sm8_job_notice("x"), content_type="application/json")
    assert response.status_code == 400  # no usable token: refused, not a 500


def test_malformed_bodies_and_unknown_places_are_refused(client, sm8_hooked):
    assert (
        client.post(url(sm8_hooked), b"{not json", content_type="application/json").status_code
        == 400
    )
    json_type = "application/json"
    assert client.post("/webhooks/nosuch/1/x/", b"{}", content_type=json_type).status_code == 404
    other = factories.IntegrationFactory(provider="servicetitan")
    response = client.post(
        f"/webhooks/servicem8/{other.pk}/{TOKEN}/", b"{}", content_type=json_type
    )
    assert response.status_code == 404


def test_processing_refetches_the_record(client, sm8_hooked, sandbox_clean):
    job = a_job(sandbox_clean)
    client.post(url(sm8_hooked), sm8_job_notice(job["uuid"]), content_type="application/json")
    event = WebhookEvent.objects.get()
    # The job's client is not here yet: the job is held, not dropped, and the event is done.
    assert webhook_event_process(event_id=event.pk) == "processed"
    run = SyncRun.objects.get(mode="webhook")
    assert run.entity == "jobs" and run.held_count == 1
    assert webhook_event_process(event_id=event.pk) == "processed"  # at-least-once: no-op
    assert SyncRun.objects.filter(mode="webhook").count() == 1


def test_the_same_webhook_three_times_makes_one_event_and_one_refetch(
    client,
    sm8_hooked,
    sandbox_clean,
    workers,
):
    workers("hooks", queues=("webhooks",))
    job = a_job(sandbox_clean)
    requests.post(f"{sandbox_clean.url}/_sandbox/stats/reset", timeout=5)
    body = sm8_job_notice(job["uuid"])
    for _ in range(3):
        started = time.monotonic()
        response = client.post(url(sm8_hooked), body, content_type="application/json")
        assert response.status_code == 200
        assert time.monotonic() - started < 1.0  # answered at once; the work is queued
    assert [r.json()["new"] for r in [response]] == [0]
    assert WebhookEvent.objects.count() == 1

    def processed():
        """the event was processed by the worker"""
        return WebhookEvent.objects.get().status == "processed"

    wait_for(processed, timeout=60)
    time.sleep(1)  # would a second re-fetch come?
    path = "GET /servicem8/api_1.0/job/{uuid}.json"
    assert sandbox_stats(sandbox_clean, "servicem8")["requests_by_path"].get(path) == 1
    assert SyncRun.objects.filter(mode="webhook").count() == 1


def test_a_valid_token_never_reaches_a_log_line(client, sm8_hooked, caplog):
    """A 400 after the token checked out (a malformed body) makes Django log the request's
    path, which holds the token: the logging filter redacts it, in text and in JSON lines,
    and gunicorn's access log line too."""
    from types import SimpleNamespace

    from pythonjsonlogger.json import JsonFormatter

    from config.gunicorn_logging import RedactingLogger

    with caplog.at_level(logging.INFO):
        response = client.post(url(sm8_hooked), b"{not json", content_type="application/json")
    assert response.status_code == 400
    django_lines = [r for r in caplog.records if r.name == "django.request"]
    assert django_lines, "Django logs a 4xx with its path"
    formatter = JsonFormatter("%(message)s")
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in formatter.format(record)
    assert "[redacted]" in django_lines[0].getMessage()

    cfg = SimpleNamespace(
        access_log_format='%(h)s "%(r)s" %(s)s %(U)s',
        errorlog="-",
        loglevel="info",
        accesslog=None,
        syslog=False,
        capture_output=False,
        logconfig=None,
        logconfig_dict={},
        logconfig_json=None,
        disable_redirect_access_to_syslog=False,
        user=0,
        group=0,
        umask=0,
        syslog_addr=None,
        syslog_prefix=None,
        syslog_facility="user",
        dogstatsd_tags="",
        statsd_prefix="",
    )
    path = url(sm8_hooked)
    atoms = RedactingLogger(cfg).atoms(
        SimpleNamespace(status="400 Bad Request", response_length=0, headers=[], sent=0),
        SimpleNamespace(method="POST", uri=path, path=path, query="", version=(1, 1), headers=[]),
        {
            "REQUEST_METHOD": "POST",
            "RAW_URI": path,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
        },
        SimpleNamespace(seconds=0, microseconds=1000, total_seconds=lambda: 0.001),
    )
    assert TOKEN not in atoms["r"] and TOKEN not in atoms["U"]
    assert "[redacted]" in atoms["r"]
