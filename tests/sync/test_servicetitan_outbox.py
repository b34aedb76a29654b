"""ServiceTitan quote decisions through the outbox, against the sandbox: delivered at least
once (a lost acknowledgement makes the relay deliver again), applied exactly once."""

import pytest
import requests
from django.db import transaction

from integrations.sandbox import accounts
from sync.models import OutboxEvent
from sync.outbox import outbox_deliver, outbox_event_enqueue
from tests.integrations.sandbox import st_headers, st_token
from tests.sync.conftest import sandbox_control, sandbox_stats

pytestmark = pytest.mark.django_db(transaction=True)
TENANT = accounts.SERVICETITAN_TENANT.tenant_id
API = f"/servicetitan/sales/v2/tenant/{TENANT}"
# The first seeded technician (7001–7018 are seeded; 7012 has left).
SOLD_BY = 7001


@pytest.fixture
def titan(st_integration):
    st_integration.config = {**st_integration.config, "sold_by_technician_id": SOLD_BY}
    st_integration.save(update_fields=["config"])
    return st_integration


class Titan:
    """Reads the sandbox's ServiceTitan state as a test (not through the provider code)."""

    def __init__(self, sandbox):
        self.root = f"{sandbox.url}/servicetitan"
        self.headers = st_headers(st_token(sandbox.url))

    def get(self, module: str, tail: str, **params) -> dict:
        response = requests.get(
            f"{self.root}/{module}/v2/tenant/{TENANT}/{tail}",
            params=params,
            headers=self.headers,
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def open_estimate(self, skip: int = 0) -> dict:
        found = [
            e
            for e in self.get("sales", "estimates", status="Open", pageSize=200)["data"]
            if e["jobId"] and len(e["items"]) >= 3
        ]
        return found[skip]

    def estimate(self, estimate_id) -> dict:
        return self.get("sales", f"estimates/{estimate_id}")

    def notes(self, job_id) -> list[str]:
        return [n["text"] for n in self.get("jpm", f"jobs/{job_id}/notes", pageSize=500)["data"]]


def enqueue(integration, estimate, decision="approve", **extra) -> OutboxEvent:
    with transaction.atomic():
        return outbox_event_enqueue(
            integration=integration,
            action="quote.decide",
            aggregate_type="quotes.QuoteDecision",
            aggregate_id=str(estimate["id"]),
            payload={
                "decision": decision,
                "quote_external_id": str(estimate["id"]),
                "approved_line_item_ids": None,
                "approved_line_item_names": [],
                "notes": "Please start Monday",
                "rejection_reason": "Too dear" if decision == "reject" else "",
                "decided_by": "client@example.com",
                **extra,
            },
            idempotency_key=f"decision-{estimate['id']}-{decision}",
        )


def applied(sandbox, key: str) -> int:
    return sandbox_stats(sandbox, "servicetitan").get("writes_applied", {}).get(key, 0)


def deliver_again(event: OutboxEvent) -> OutboxEvent:
    OutboxEvent.objects.filter(pk=event.pk).update(next_attempt_at=None)  # due now
    return outbox_deliver(event_id=event.pk)


@pytest.mark.parametrize(
    ("decision", "operation", "status"),
    [("approve", "sell", "Sold"), ("reject", "dismiss", "Dismissed")],
)
def test_a_decision_whose_acknowledgement_is_lost_takes_effect_once(
    titan, sandbox_clean, decision, operation, status
):
    st = Titan(sandbox_clean)
    estimate = st.open_estimate()
    # The write lands but answers 500; the HTTP layer does not resend it (not idempotent).
    sandbox_control(
        sandbox_clean,
        "faults",
        {
            "provider": "servicetitan",
            "queue": [
                {
                    "apply_then_error": True,
                    "status": 500,
                    "method": "PUT",
                    "path": f"{API}/estimates/{estimate['id']}/{operation}",
                }
            ],
        },
    )
    event = outbox_deliver(event_id=enqueue(titan, estimate, decision).pk)
    assert event.status == "failed" and event.attempts == 1 and "500" in event.last_error
    assert st.estimate(estimate["id"])["status"]["name"] == status  # it landed
    event = deliver_again(event)
    assert event.status == "sent" and event.attempts == 2, event.last_error
    assert event.response["status"] == status and event.response["already_done"] is True
    after = st.estimate(estimate["id"])
    assert after["status"]["name"] == status
    if decision == "approve":
        assert after["soldBy"] == SOLD_BY and event.response["sold_by"] == SOLD_BY
    assert applied(sandbox_clean, f"estimates/{estimate['id']}") == 1  # changed exactly once
    writes = sandbox_stats(sandbox_clean, "servicetitan")["writes_by_path"]
    assert writes[f"PUT {API}/estimates/{estimate['id']}/{operation}"] == 1
    notes = st.notes(estimate["jobId"])
    assert len([n for n in notes if f"[fieldbridge:{event.idempotency_key}]" in n]) == 1
    # A third delivery (e.g. a replay by a person) changes nothing either.
    OutboxEvent.objects.filter(pk=event.pk).update(status="pending")
    assert deliver_again(event).status == "sent"
    assert applied(sandbox_clean, f"estimates/{estimate['id']}") == 1
    assert len(st.notes(estimate["jobId"])) == len(notes)


def test_a_partial_approval_removes_the_unapproved_items_once(titan, sandbox_clean):
    st = Titan(sandbox_clean)
    estimate = st.open_estimate(skip=1)
    keep = [str(i["id"]) for i in estimate["items"][:1]]
    dropped = [str(i["id"]) for i in estimate["items"][1:]]
    # The deletes land, then the sale fails before it reaches ServiceTitan (a 503 up front,
    # and the HTTP layer does not resend a sale): the relay delivers again.
    sandbox_control(
        sandbox_clean,
        "faults",
        {
            "provider": "servicetitan",
            "queue": [{"status": 503, "method": "PUT", "path": f"{API}/estimates/*/sell"}],
        },
    )
    event = enqueue(
        titan, estimate, approved_line_item_ids=keep, approved_line_item_names=["the first one"]
    )
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "failed" and "503" in event.last_error
    assert [str(i["id"]) for i in st.estimate(estimate["id"])["items"]] == keep
    event = deliver_again(event)
    assert event.status == "sent", event.last_error
    after = st.estimate(estimate["id"])
    assert after["status"]["name"] == "Sold" and [str(i["id"]) for i in after["items"]] == keep
    for item_id in dropped:
        assert applied(sandbox_clean, f"estimate-items/{item_id}") == 1
    assert applied(sandbox_clean, f"estimates/{estimate['id']}") == 1
    (note,) = [n for n in st.notes(estimate["jobId"]) if "[fieldbridge:" in n]
    assert "Approved items: the first one" in note and "Partial approval" in note


def test_an_approval_without_a_sold_by_technician_goes_dead_at_once(st_integration, sandbox_clean):
    st = Titan(sandbox_clean)
    estimate = st.open_estimate(skip=2)
    event = outbox_deliver(event_id=enqueue(st_integration, estimate).pk)
    assert event.status == "dead" and event.attempts == 1
    assert "sold_by_technician_id" in event.last_error
    assert st.estimate(estimate["id"])["status"]["name"] == "Open"
    assert sandbox_stats(sandbox_clean, "servicetitan")["writes_total"] == 0


def test_an_approval_of_a_dismissed_estimate_goes_dead_as_a_conflict(titan, sandbox_clean):
    st = Titan(sandbox_clean)
    estimate = st.open_estimate(skip=3)
    assert outbox_deliver(event_id=enqueue(titan, estimate, "reject").pk).status == "sent"
    late = outbox_deliver(event_id=enqueue(titan, estimate, "approve").pk)
    assert late.status == "dead" and "already Dismissed" in late.last_error
    assert st.estimate(estimate["id"])["status"]["name"] == "Dismissed"
    assert applied(sandbox_clean, f"estimates/{estimate['id']}") == 1
