"""The outbox against the sandbox: delivered at least once, applied exactly once."""

import contextlib
import threading
import time

import pytest
import requests
from django.db import connection, connections, transaction

from config.celery import app
from integrations.services import provider_for
from sync.engine import sync_entity
from sync.models import OutboxEvent
from sync.outbox import outbox_claim, outbox_dead_replay, outbox_deliver, outbox_event_enqueue
from tests.conftest import require_service
from tests.integrations.sandbox import test_spec_conformance as conformance
from tests.sync.conftest import sandbox_control, sandbox_stats, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
API = "/servicem8/api_1.0"


def open_quote(sandbox) -> dict:
    jobs = requests.get(
        f"{sandbox.url}{API}/job.json",
        params={"$filter": "status eq 'Quote'"},
        headers={"X-Api-Key": "sm8-sandbox-api-key"},
        timeout=10,
    ).json()
    return next(j for j in jobs if str(j["active"]) == "1")


def job_status(sandbox, uuid: str) -> str:
    return requests.get(
        f"{sandbox.url}{API}/job/{uuid}.json",
        headers={"X-Api-Key": "sm8-sandbox-api-key"},
        timeout=10,
    ).json()["status"]


def notes_for(sandbox, uuid: str) -> list[str]:
    notes = requests.get(
        f"{sandbox.url}{API}/note.json",
        params={"$filter": f"related_object_uuid eq '{uuid}'"},
        headers={"X-Api-Key": "sm8-sandbox-api-key"},
        timeout=10,
    ).json()
    # Only our own notes (they carry the event's marker): the sandbox seeds diary notes too.
    return [n["note"] for n in notes if "[fieldbridge:" in n["note"]]


def enqueue(integration, quote, decision="approve", key=None) -> OutboxEvent:
    with transaction.atomic():
        return outbox_event_enqueue(
            integration=integration,
            action="quote.decide",
            aggregate_type="quotes.QuoteDecision",
            aggregate_id="1",
            payload={
                "decision": decision,
                "quote_external_id": quote["uuid"],
                "notes": "Please start Monday",
                "rejection_reason": "Too dear" if decision == "reject" else "",
                "decided_by": "client@example.com",
            },
            idempotency_key=key or f"decision-{quote['uuid']}-{decision}",
        )


def applied(sandbox, uuid) -> int:
    return sandbox_stats(sandbox, "servicem8").get("writes_applied", {}).get(f"job/{uuid}", 0)


def test_a_decision_is_written_once_and_read_back(sm8_integration, sandbox_clean):
    quote = open_quote(sandbox_clean)
    event = enqueue(sm8_integration, quote)
    assert event.status == "pending"
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "sent" and event.response["status"] == "Work Order"
    assert job_status(sandbox_clean, quote["uuid"]) == "Work Order"
    assert applied(sandbox_clean, quote["uuid"]) == 1
    assert len(notes_for(sandbox_clean, quote["uuid"])) == 1
    # The same decision again (same key) is the same event: nothing new to deliver.
    assert enqueue(sm8_integration, quote).pk == event.pk
    assert outbox_deliver(event_id=event.pk) is None


def test_a_retry_after_a_lost_acknowledgement_changes_nothing_twice(sm8_integration, sandbox_clean):
    quote = open_quote(sandbox_clean)
    # The status write lands but answers 500, and so do the retries of the HTTP layer.
    sandbox_control(
        sandbox_clean,
        "faults",
        {
            "provider": "servicem8",
            "queue": [
                {"apply_then_error": True, "status": 500, "method": "POST", "path": f"{API}/job/*"},
                {"status": 500, "method": "POST", "path": f"{API}/job/*"},
                {"status": 500, "method": "POST", "path": f"{API}/job/*"},
            ],
        },
    )
    event = enqueue(sm8_integration, quote, decision="reject")
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "failed" and event.attempts == 1 and event.last_error
    OutboxEvent.objects.filter(pk=event.pk).update(next_attempt_at=None)  # due now
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "sent" and event.attempts == 2
    assert job_status(sandbox_clean, quote["uuid"]) == "Unsuccessful"
    assert applied(sandbox_clean, quote["uuid"]) == 1
    notes = notes_for(sandbox_clean, quote["uuid"])
    assert len(notes) == 1 and "Too dear" in notes[0]


def test_dead_letters_keep_their_error_and_can_be_replayed(
    sm8_integration, sandbox_clean, settings
):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    quote = open_quote(sandbox_clean)
    sandbox_control(
        sandbox_clean,
        "faults",
        {"provider": "servicem8", "queue": [{"status": 503, "method": "GET"}] * 6},
    )
    event = enqueue(sm8_integration, quote)
    for _ in range(2):
        OutboxEvent.objects.filter(pk=event.pk).update(next_attempt_at=None)
        event = outbox_deliver(event_id=event.pk)
    assert event.status == "dead" and "503" in event.last_error
    assert outbox_deliver(event_id=event.pk) is None  # dead stays dead
    assert outbox_dead_replay(event_ids=[event.pk]) == 1
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "sent" and job_status(sandbox_clean, quote["uuid"]) == "Work Order"


def test_a_decision_the_provider_state_forbids_goes_dead_at_once(sm8_integration, sandbox_clean):
    quote = open_quote(sandbox_clean)
    outbox_deliver(event_id=enqueue(sm8_integration, quote, decision="reject").pk)
    late = outbox_deliver(event_id=enqueue(sm8_integration, quote, decision="approve").pk)
    assert late.status == "dead" and "no longer a Quote" in late.last_error
    assert job_status(sandbox_clean, quote["uuid"]) == "Unsuccessful"


def test_claims_skip_rows_locked_by_another_relay(sm8_integration, sandbox_clean):
    require_service(
        None if connection.vendor == "postgresql" else "SKIP LOCKED needs PostgreSQL here"
    )
    quote = open_quote(sandbox_clean)
    event = enqueue(sm8_integration, quote)
    locked, release = threading.Event(), threading.Event()

    def other_relay():
        with transaction.atomic():
            OutboxEvent.objects.select_for_update().get(pk=event.pk)
            locked.set()
            release.wait(10)
        connections["default"].close()

    thread = threading.Thread(target=other_relay)
    thread.start()
    assert locked.wait(10)
    started = time.monotonic()
    try:
        assert outbox_claim(limit=10) == []
        assert time.monotonic() - started < 2  # skipped, not waited for
    finally:
        release.set()
        thread.join()
    assert [e.pk for e in outbox_claim(limit=10)] == [event.pk]


@contextlib.contextmanager
def broker_down():
    """Point this process's Celery publisher at a port where nothing listens."""

    saved = (app.conf.broker_url, app._pool, app.amqp._producer_pool)
    app._pool = app.amqp._producer_pool = None
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        yield
    finally:
        app.conf.broker_url, app._pool, app.amqp._producer_pool = saved


def test_an_event_survives_a_broker_outage_and_a_worker_kill(
    sm8_integration,
    sandbox_clean,
    workers,
):
    sandbox = sandbox_clean
    sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="full")
    quote = open_quote(sandbox)
    with broker_down():
        event = enqueue(sm8_integration, quote)  # the on-commit kick fails, quietly
    assert OutboxEvent.objects.get(pk=event.pk).status == "pending"

    # The status write lands, but the provider is slow to answer it: the worker dies waiting,
    # so the write happened and its acknowledgement never came.
    sandbox_control(
        sandbox,
        "faults",
        {
            "provider": "servicem8",
            "queue": [
                {
                    "apply_then_error": True,
                    "delay_seconds": 30,
                    "status": 504,
                    "method": "POST",
                    "path": f"{API}/job/*",
                }
            ],
        },
    )
    # A short lease for the test (and time limits below it, as the settings demand).
    lease = {
        "OUTBOX_CLAIM_TIMEOUT": "3",
        "OUTBOX_TASK_TIME_LIMIT": "2",
        "OUTBOX_TASK_SOFT_TIME_LIMIT": "1",
    }
    first = workers("outbox-a", env=lease)
    app.send_task("sync.outbox_relay")  # the beat's sweep, now that the broker is back
    wait_for(lambda: job_status(sandbox, quote["uuid"]) == "Work Order", timeout=60)
    first.kill()
    assert OutboxEvent.objects.get(pk=event.pk).status == "sending"  # acknowledgement lost

    workers("outbox-b", env=lease)
    time.sleep(3)  # the dead worker's lease runs out

    def sent():
        """the event was delivered"""
        app.send_task("sync.outbox_relay")
        return OutboxEvent.objects.get(pk=event.pk).status == "sent"

    wait_for(sent, timeout=60, interval=1)
    event.refresh_from_db()
    assert event.attempts == 2
    assert applied(sandbox, quote["uuid"]) == 1  # the provider changed exactly once
    assert len(notes_for(sandbox, quote["uuid"])) == 1


# --- every request of a decision is valid against the spec (quote.decide end to end) ------------

KEY = {"X-Api-Key": "sm8-sandbox-api-key"}
TARGETS = {"approve": "Work Order", "reject": "Unsuccessful"}
specs = conformance.specs  # the module-scoped OpenAPI fixture


def quote_with_materials(sandbox, at_least: int = 2) -> tuple[dict, list[dict]]:
    """An open quote with `at_least` active materials (the seed has such quotes)."""
    materials = requests.get(
        f"{sandbox.url}{API}/jobmaterial.json",
        params={"$filter": "active eq 1"},
        headers=KEY,
        timeout=10,
    ).json()
    jobs = requests.get(
        f"{sandbox.url}{API}/job.json",
        params={"$filter": "status eq 'Quote' and active eq 1"},
        headers=KEY,
        timeout=10,
    ).json()
    for job in jobs:
        lines = [m for m in materials if m["job_uuid"] == job["uuid"]]
        if len(lines) >= at_least:
            return job, lines
    raise AssertionError(f"the sandbox seed has no open quote with {at_least} materials")


def material(sandbox, uuid: str) -> dict:
    return requests.get(
        f"{sandbox.url}{API}/jobmaterial/{uuid}.json", headers=KEY, timeout=10
    ).json()


@pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")
@pytest.mark.parametrize(
    ("decision", "partial", "mode"),
    [
        ("approve", False, None),
        ("approve", True, "remove"),
        ("approve", True, "mark"),
        ("reject", False, None),
    ],
)
def test_every_decision_request_is_valid_against_the_spec(
    sm8_integration, sandbox_clean, specs, decision, partial, mode
):
    openapi = specs[0]
    if mode:
        sm8_integration.config = {**sm8_integration.config, "unapproved_items": mode}
        sm8_integration.save(update_fields=["config"])
    quote, lines = quote_with_materials(sandbox_clean, at_least=3 if partial else 1)
    kept, refused = lines[0], lines[1:]
    payload = {
        "decision": decision,
        "quote_external_id": quote["uuid"],
        "approved_line_item_ids": [kept["uuid"]] if partial else None,
        "approved_line_item_names": [kept["name"]],
        "shown_line_item_ids": [line["uuid"] for line in lines],
        "notes": "Tuesday please",
        "rejection_reason": "Too dear" if decision == "reject" else "",
        "decided_by": "client@example.com",
    }
    # A material added at ServiceM8 after the client saw the quote: not theirs to refuse.
    later = requests.post(
        f"{sandbox_clean.url}{API}/jobmaterial.json",
        json={"job_uuid": quote["uuid"], "name": "Added later", "quantity": "1", "price": "5"},
        headers=KEY,
        timeout=10,
    ).headers["x-record-uuid"]
    provider = provider_for(sm8_integration)
    seen: list[requests.Response] = []
    provider.get_client().session.hooks["response"].append(lambda r, *a, **k: seen.append(r))

    result = provider.perform("quote.decide", payload, idempotency_key=f"spec-{decision}")
    again = provider.perform("quote.decide", payload, idempotency_key=f"spec-{decision}")

    assert result["status"] == TARGETS[decision] and again["already_done"] is True
    writes = [(r.request.method, r.request.path_url.split("?")[0]) for r in seen]
    assert ("POST", f"{API}/job/{quote['uuid']}.json") in writes
    assert ("POST", f"{API}/note.json") in writes
    if partial:
        assert result["set_aside"] == [line["uuid"] for line in refused]
        method = "DELETE" if mode == "remove" else "POST"
        for line in refused:
            assert writes.count((method, f"{API}/jobmaterial/{line['uuid']}.json")) == 1
            after = material(sandbox_clean, line["uuid"])
            if mode == "remove":
                assert str(after["active"]) == "0"
            else:
                assert after["name"] == "[Not approved] " + line["name"]
                assert after["quantity"] == line["quantity"] and str(after["active"]) == "1"
        assert material(sandbox_clean, kept["uuid"])["name"] == kept["name"]
    untouched = material(sandbox_clean, later)
    assert untouched["name"] == "Added later" and str(untouched["active"]) == "1"
    for response in seen:
        request, spec_response = conformance._as_spec(
            response, "https://api.servicem8.com", "/servicem8"
        )
        body = response.request.body or b""
        request.body = body.encode() if isinstance(body, str) else body
        request.content_type = response.request.headers.get("Content-Type", "application/json")
        openapi.validate_request(request)
        openapi.validate_response(request, spec_response)


def test_an_unknown_unapproved_items_setting_dead_letters_with_its_field_error(
    sm8_integration, sandbox_clean
):
    sm8_integration.config = {**sm8_integration.config, "unapproved_items": "hide"}
    sm8_integration.save(update_fields=["config"])
    quote, lines = quote_with_materials(sandbox_clean, at_least=2)
    with transaction.atomic():
        event = outbox_event_enqueue(
            integration=sm8_integration,
            action="quote.decide",
            aggregate_type="quotes.QuoteDecision",
            aggregate_id="2",
            payload={
                "decision": "approve",
                "quote_external_id": quote["uuid"],
                "approved_line_item_ids": [lines[0]["uuid"]],
                "shown_line_item_ids": [line["uuid"] for line in lines],
            },
            idempotency_key=f"decision-{quote['uuid']}-hide",
        )
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "dead" and event.attempts == 1
    assert list(event.field_errors) == ["unapproved_items"]
    assert "remove, mark" in event.field_errors["unapproved_items"][0]
    assert job_status(sandbox_clean, quote["uuid"]) == "Quote"
    assert all(str(material(sandbox_clean, m["uuid"])["active"]) == "1" for m in lines)
