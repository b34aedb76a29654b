"""ServiceTitan quote decisions (`quote.decide`) against a stateful `responses` fake.

Every request the provider sends is validated against the official OpenAPI files
(tenant-salestech/jpm/settings-v2.yml) with openapi-core, and every 200 answer the fake gives
is validated too, so the fake cannot drift from the spec either. The fake applies writes to
its own state and counts them, so "the estimate changed once" is asserted on the state, not on
the calls.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import MultiDict

from integrations import registry
from integrations.auth import MemoryTokenStore
from integrations.base import Capability, ProviderContext
from integrations.exceptions import (
    ProviderConflictError,
    ProviderServerError,
    ProviderValidationError,
)
from integrations.http import RetryPolicy
from integrations.providers.servicetitan import writes
from tests.integrations.provider_specs import load_st_specs
from tests.integrations.spec_query import assert_query_declared

HERE = Path(__file__).resolve().parent
API = "https://api.servicetitan.io"
TOKEN_URL = "https://auth.servicetitan.io/connect/token"
TENANT = "42"
SALES = f"{API}/sales/v2/tenant/{TENANT}"
JPM = f"{API}/jpm/v2/tenant/{TENANT}"
SETTINGS = f"{API}/settings/v2/tenant/{TENANT}"
TECH = 7001
ESTIMATE = 400000007
JOB = 200000003
MODULE_SPECS = {
    "sales": "tenant-salestech-v2.yml",
    "jpm": "tenant-jpm-v2.yml",
    "settings": "tenant-settings-v2.yml",
}

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


def fixture(name: str) -> dict:
    return json.loads((HERE / "fixtures" / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def specs() -> dict[str, OpenAPI]:
    return {module: openapi for module, (openapi, _) in load_st_specs(MODULE_SPECS).items()}


def open_estimate() -> dict:
    """The sold fixture turned back into an Open estimate, with a third item."""
    raw = fixture("estimate__sold")
    raw.update(status={"value": 0, "name": "Open"}, soldOn=None, soldBy=None)
    extra = copy.deepcopy(raw["items"][-1])
    extra.update(id=500000009, qty=2.0, total=2 * extra["unitRate"])
    raw["items"].append(extra)
    return raw


@dataclass
class FakeTitan:
    """The ServiceTitan endpoints a decision uses, with state. `fail` maps "METHOD suffix" to
    a list of statuses to answer with, in order; `apply_then` lists the ones that apply the
    write first (a lost acknowledgement)."""

    specs: dict[str, OpenAPI]
    estimate: dict
    technicians: dict[int, bool] = field(default_factory=lambda: {TECH: True})
    notes: list[dict] = field(default_factory=list)
    applied: dict[str, int] = field(default_factory=dict)
    fail: dict[str, list[int]] = field(default_factory=dict)
    apply_then: set[str] = field(default_factory=set)
    problems: dict[str, dict] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)

    def install(self, mock: responses.RequestsMock) -> None:
        mock.post(TOKEN_URL, json={"access_token": "st-token", "expires_in": 900})
        estimate = re.escape(f"{SALES}/estimates/{ESTIMATE}")
        notes = re.escape(f"{JPM}/jobs/{JOB}/notes")
        routes = [
            ("GET", f"{estimate}$", self.get_estimate),
            ("PUT", f"{estimate}/sell$", self.sell),
            ("PUT", f"{estimate}/dismiss$", self.dismiss),
            ("DELETE", rf"{estimate}/items/\d+$", self.delete_item),
            ("GET", rf"{notes}(\?.*)?$", self.list_notes),
            ("POST", f"{notes}$", self.create_note),
            ("GET", re.escape(f"{SETTINGS}/technicians/") + r"\d+$", self.technician),
        ]
        for method, pattern, handler in routes:
            mock.add_callback(method, re.compile(pattern), callback=self._wrap(handler))

    # -- plumbing ---------------------------------------------------------------------------

    def _wrap(self, handler):
        def callback(request):
            module = urlsplit(request.url).path.split("/")[1]
            mock = self._mock_request(request)
            self.specs[module].validate_request(mock)  # every request is valid
            assert_query_declared(self.specs[module], mock)
            key = f"{request.method} {urlsplit(request.url).path.rsplit('/', 1)[-1]}"
            self.seen.append((request.method, urlsplit(request.url).path))
            statuses = self.fail.get(key) or []
            if statuses:
                status = statuses.pop(0)
                if key in self.apply_then:
                    handler(request)
                return status, {}, json.dumps(self._problem(status))
            status, body = handler(request)
            content = b"" if body is None else json.dumps(body).encode()
            if status == 200:
                self.specs[module].validate_response(
                    mock,
                    MockResponse(
                        content, status_code=200, content_type="application/json" if body else ""
                    ),
                )
            elif status == 400:
                assert set(body) == {"type", "title", "status", "traceId", "errors", "data"}
            return status, {"Content-Type": "application/json"}, content

        return callback

    @staticmethod
    def _mock_request(request) -> MockRequest:
        url = urlsplit(request.url)
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        return MockRequest(
            host_url=API,
            method=request.method.lower(),
            path=url.path,
            args=MultiDict(parse_qsl(url.query, keep_blank_values=True)),
            headers=dict(request.headers),
            data=body,
            content_type=request.headers.get("Content-Type", "application/json"),
        )

    @staticmethod
    def _problem(status: int, title: str = "Error", errors: dict | None = None) -> dict:
        return {
            "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
            "title": title,
            "status": status,
            "traceId": "00-abc-def-00",
            "errors": errors or {},
            "data": {},
        }

    def _count(self, key: str) -> None:
        self.applied[key] = self.applied.get(key, 0) + 1

    @property
    def status(self) -> str:
        return self.estimate["status"]["name"]

    # -- endpoints --------------------------------------------------------------------------

    def get_estimate(self, request):
        return 200, copy.deepcopy(self.estimate)

    def technician(self, request):
        tech_id = int(urlsplit(request.url).path.rsplit("/", 1)[1])
        if tech_id not in self.technicians:
            return 404, self._problem(404, "Technician not found")
        tech = fixture("technician__active")
        tech.update(id=tech_id, active=self.technicians[tech_id])
        return 200, tech

    def sell(self, request):
        body = json.loads(request.body)
        if self.status != "Open":
            return 400, self._problem(400, f"The estimate is {self.status}.")
        if not self.technicians.get(body["soldBy"]):
            return 400, self._problem(400, errors={"soldBy": ["Technician not found."]})
        self.estimate.update(
            status={"value": 1, "name": "Sold"},
            soldOn="2026-03-01T10:00:00Z",
            soldBy=body["soldBy"],
        )
        self._count("sell")
        return 200, copy.deepcopy(self.estimate)

    def dismiss(self, request):
        assert not request.body  # Estimates_Dismiss has no request body
        if self.status != "Open":
            return 400, self._problem(400, f"The estimate is {self.status}.")
        self.estimate["status"] = {"value": 2, "name": "Dismissed"}
        self._count("dismiss")
        return 200, None

    def delete_item(self, request):
        item_id = int(urlsplit(request.url).path.rsplit("/", 1)[1])
        items = self.estimate["items"]
        if not any(i["id"] == item_id for i in items):
            return 404, self._problem(404, "Estimate item not found")
        if self.status != "Open":
            return 400, self._problem(400, "Items of a sold estimate cannot be changed.")
        self.estimate["items"] = [i for i in items if i["id"] != item_id]
        self._count(f"delete {item_id}")
        return 200, None

    def list_notes(self, request):
        data = [
            {
                "text": n["text"],
                "isPinned": False,
                "createdById": 0,
                "createdOn": "2026-03-01T10:00:00Z",
                "modifiedOn": "2026-03-01T10:00:00Z",
            }
            for n in self.notes
        ]
        page = {"page": 1, "pageSize": 5000, "hasMore": False, "totalCount": None}
        return 200, {**page, "data": data}

    def create_note(self, request):
        body = json.loads(request.body)
        self.notes.append(body)
        self._count("note")
        return 200, {
            "text": body["text"],
            "isPinned": bool(body.get("pinToTop")),
            "createdById": 0,
            "createdOn": "2026-03-01T10:00:00Z",
            "modifiedOn": "2026-03-01T10:00:00Z",
        }


@pytest.fixture
def fake(specs):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeTitan(specs=specs, estimate=open_estimate())
        fake.install(mock)
        yield fake


def provider(config: dict | None = None, *, attempts: int = 3):
    context = ProviderContext(
        integration_id=2,
        credentials={
            "tenant_id": TENANT,
            "client_id": "cid",
            "client_secret": "cs",
            "app_key": "ak1",
        },
        config={"sold_by_technician_id": TECH} if config is None else config,
        token_store=MemoryTokenStore(),
        rate_limit_enabled=False,
        retry=RetryPolicy(attempts=attempts, base=0, max_delay=0),
    )
    return registry.get("servicetitan")(context)


def payload(decision: str = "approve", **extra) -> dict:
    return {
        "decision": decision,
        "quote_external_id": str(ESTIMATE),
        "approved_line_item_ids": None,
        "approved_line_item_names": [],
        "notes": "Please start Monday",
        "rejection_reason": "Too dear" if decision == "reject" else "",
        "decided_by": "client@example.com",
        **extra,
    }


def writes_sent(fake: FakeTitan) -> list[str]:
    return [f"{m} {p.rsplit('/', 1)[-1]}" for m, p in fake.seen if m != "GET"]


# --- the action is declared ------------------------------------------------------------------


def test_servicetitan_declares_the_quote_decision_action():
    cls = registry.get("servicetitan")
    assert Capability.WRITE_QUOTE_DECISION in cls.capabilities
    # Other actions (pricebook, jobs) are declared beside it and tested in their own modules.
    assert cls.actions["quote.decide"] == "quote_decide"


# --- whole approval, rejection ---------------------------------------------------------------


def test_a_whole_approval_sells_with_the_configured_technician_and_notes_the_job(fake):
    result = provider().perform("quote.decide", payload(), idempotency_key="evt-1")
    assert fake.status == "Sold" and fake.estimate["soldBy"] == TECH
    assert fake.applied == {"sell": 1, "note": 1}
    assert writes_sent(fake) == ["PUT sell", "POST notes"]
    assert result == {
        "estimate": str(ESTIMATE),
        "status": "Sold",
        "sold_by": TECH,
        "removed_items": [],
        "already_done": False,
        "job_note": str(JOB),
    }
    (note,) = fake.notes
    assert note["text"].endswith("[fieldbridge:evt-1]")
    assert "approved in the client portal by client@example.com" in note["text"]
    assert "Client's notes: Please start Monday" in note["text"]
    # Read first (estimate), check the technician, then read back.
    gets = [p.rsplit("/", 2)[-2:] for m, p in fake.seen if m == "GET"]
    assert gets[0] == ["estimates", str(ESTIMATE)] and gets[1] == ["technicians", str(TECH)]
    assert gets[-1] == ["estimates", str(ESTIMATE)]


def test_a_rejection_dismisses_and_notes_the_reason(fake):
    result = provider().perform("quote.decide", payload("reject"), idempotency_key="evt-2")
    assert fake.status == "Dismissed" and fake.applied == {"dismiss": 1, "note": 1}
    assert writes_sent(fake) == ["PUT dismiss", "POST notes"]
    assert result["status"] == "Dismissed" and result["sold_by"] is None
    assert "Reason: Too dear" in fake.notes[0]["text"]


def test_a_rejection_needs_no_sold_by_setting(fake):
    provider(config={}).perform("quote.decide", payload("reject"), idempotency_key="evt-3")
    assert fake.status == "Dismissed"


# --- exactly once ----------------------------------------------------------------------------


def test_a_redelivery_after_a_lost_sell_acknowledgement_sells_once(fake):
    # The sale lands but the answer is a 500: the HTTP layer must not resend the PUT (a
    # second sell is refused, not a no-op) and the event fails, to be delivered again.
    fake.fail["PUT sell"] = [500]
    fake.apply_then.add("PUT sell")
    with pytest.raises(ProviderServerError):
        provider().perform("quote.decide", payload(), idempotency_key="evt-4")
    assert fake.status == "Sold" and writes_sent(fake) == ["PUT sell"]
    result = provider().perform("quote.decide", payload(), idempotency_key="evt-4")
    assert result["already_done"] is True and result["status"] == "Sold"
    assert fake.applied == {"sell": 1, "note": 1}
    assert writes_sent(fake) == ["PUT sell", "POST notes"]


def test_a_redelivery_after_a_lost_note_acknowledgement_adds_no_second_note(fake):
    fake.fail["POST notes"] = [502]
    fake.apply_then.add("POST notes")
    with pytest.raises(ProviderServerError):
        provider().perform("quote.decide", payload("reject"), idempotency_key="evt-5")
    provider().perform("quote.decide", payload("reject"), idempotency_key="evt-5")
    assert fake.applied == {"dismiss": 1, "note": 1} and len(fake.notes) == 1


def test_a_dismiss_refused_because_it_already_landed_counts_as_done(fake):
    # Between our read and our PUT the estimate is dismissed (an earlier send whose answer was
    # lost, landing late): ServiceTitan refuses the second dismiss; read again, and it is done.
    p = provider()
    original = p.get_client().request

    def landed_meanwhile(method, path, **kwargs):
        if path.endswith("/dismiss"):
            fake.estimate["status"] = {"value": 2, "name": "Dismissed"}
        return original(method, path, **kwargs)

    p.get_client().request = landed_meanwhile
    result = p.perform("quote.decide", payload("reject"), idempotency_key="evt-6")
    assert result["status"] == "Dismissed" and result["already_done"] is False
    assert "dismiss" not in fake.applied and writes_sent(fake) == ["PUT dismiss", "POST notes"]


def test_a_decision_already_in_effect_writes_nothing_but_the_note(fake):
    fake.estimate.update(status={"value": 1, "name": "Sold"}, soldBy=7002)
    result = provider(config={}).perform("quote.decide", payload(), idempotency_key="evt-7")
    assert result["already_done"] is True and result["sold_by"] == 7002
    assert writes_sent(fake) == ["POST notes"]


@pytest.mark.parametrize(
    ("decision", "state"), [("approve", "Dismissed"), ("reject", "Sold")], ids=["sell", "dismiss"]
)
def test_the_other_terminal_state_is_a_conflict(fake, decision, state):
    fake.estimate["status"] = {"value": 2 if state == "Dismissed" else 1, "name": state}
    with pytest.raises(ProviderConflictError, match=f"already {state}"):
        provider().perform("quote.decide", payload(decision), idempotency_key="evt-8")
    assert writes_sent(fake) == []


def test_an_inactive_open_estimate_is_a_conflict(fake):
    fake.estimate["active"] = False
    with pytest.raises(ProviderConflictError, match="inactive"):
        provider().perform("quote.decide", payload(), idempotency_key="evt-9")
    assert writes_sent(fake) == []


# --- partial approval ------------------------------------------------------------------------


def item_ids(fake: FakeTitan) -> list[str]:
    return [str(i["id"]) for i in fake.estimate["items"]]


def test_a_partial_approval_deletes_the_unapproved_items_then_sells(fake):
    keep, *drop = item_ids(fake)
    result = provider().perform(
        "quote.decide",
        payload(approved_line_item_ids=[keep], approved_line_item_names=["Replace Defrost Board"]),
        idempotency_key="evt-10",
    )
    assert item_ids(fake) == [keep] and fake.status == "Sold"
    assert result["removed_items"] == drop
    assert writes_sent(fake) == [*(["DELETE " + i for i in drop]), "PUT sell", "POST notes"]
    text = fake.notes[0]["text"]
    assert "Approved items: Replace Defrost Board" in text
    assert "Partial approval: the items not approved were removed before the sale." in text


def test_a_partial_approval_interrupted_before_the_sale_resumes_without_repeating(fake):
    keep, first, *rest = item_ids(fake)
    fake.fail["PUT sell"] = [503]  # the delivery fails after the deletes (never resent)
    with pytest.raises(ProviderServerError):
        provider().perform(
            "quote.decide", payload(approved_line_item_ids=[keep]), idempotency_key="evt-11"
        )
    assert item_ids(fake) == [keep] and fake.status == "Open"
    result = provider().perform(
        "quote.decide", payload(approved_line_item_ids=[keep]), idempotency_key="evt-11"
    )
    assert result["removed_items"] == [] and fake.status == "Sold"
    assert sum(v for k, v in fake.applied.items() if k.startswith("delete")) == 1 + len(rest)
    assert fake.applied["sell"] == 1
    # ...and once sold, a third delivery finds nothing left to do.
    again = provider().perform(
        "quote.decide", payload(approved_line_item_ids=[keep]), idempotency_key="evt-11"
    )
    assert again["already_done"] is True and fake.applied["note"] == 1


def test_a_partial_approval_of_nothing_is_refused_before_any_write(fake):
    with pytest.raises(ProviderValidationError, match="ids of the approved estimate items"):
        provider().perform(
            "quote.decide", payload(approved_line_item_ids=[]), idempotency_key="evt-12"
        )
    assert writes_sent(fake) == [] and fake.status == "Open"


def test_a_partial_approval_naming_a_missing_item_is_a_conflict(fake):
    with pytest.raises(ProviderConflictError, match="no longer has the approved item"):
        provider().perform(
            "quote.decide", payload(approved_line_item_ids=["999"]), idempotency_key="evt-13"
        )
    assert writes_sent(fake) == []


def test_marking_unapproved_items_is_refused_because_a_sale_sells_every_item(fake):
    keep = item_ids(fake)[0]
    with pytest.raises(ProviderValidationError, match="sells every item"):
        provider(config={"sold_by_technician_id": TECH, "unapproved_items": "mark"}).perform(
            "quote.decide", payload(approved_line_item_ids=[keep]), idempotency_key="evt-14"
        )
    assert writes_sent(fake) == []


def test_an_estimate_sold_elsewhere_with_unapproved_items_is_a_conflict(fake):
    keep = item_ids(fake)[0]
    fake.estimate.update(status={"value": 1, "name": "Sold"}, soldBy=7002)
    with pytest.raises(ProviderConflictError, match="did not approve"):
        provider().perform(
            "quote.decide", payload(approved_line_item_ids=[keep]), idempotency_key="evt-15"
        )
    assert writes_sent(fake) == []


# --- soldBy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{}, {"sold_by_technician_id": ""}], ids=["absent", "empty"])
def test_an_approval_without_a_sold_by_technician_is_refused_before_any_write(fake, config):
    keep = item_ids(fake)[0]
    with pytest.raises(ProviderValidationError) as caught:
        provider(config=config).perform(
            "quote.decide", payload(approved_line_item_ids=[keep]), idempotency_key="evt-16"
        )
    assert "sold_by_technician_id" in str(caught.value)
    assert list(caught.value.field_errors) == ["sold_by_technician_id"]
    assert writes_sent(fake) == [] and len(fake.estimate["items"]) >= 3


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"sold_by_technician_id": "seven"}, "must be a technician id"),
        ({"sold_by_technician_id": 7999}, "7999 .* does not exist"),
        ({"sold_by_technician_id": 7012}, "7012 .* is not active"),
    ],
    ids=["not-a-number", "unknown", "inactive"],
)
def test_a_sold_by_technician_that_cannot_sell_is_refused_before_any_write(fake, config, message):
    fake.technicians[7012] = False
    with pytest.raises(ProviderValidationError, match=message) as caught:
        provider(config=config).perform("quote.decide", payload(), idempotency_key="evt-17")
    assert "sold_by_technician_id" in caught.value.field_errors
    assert writes_sent(fake) == []


# --- problem+json ----------------------------------------------------------------------------


def test_a_refused_sale_carries_servicetitans_field_errors(fake, monkeypatch):
    # The technician passes our check, then ServiceTitan refuses it (e.g. deactivated since).
    monkeypatch.setattr(writes, "_sold_by", lambda provider: 7055)
    with pytest.raises(ProviderValidationError) as caught:
        provider().perform("quote.decide", payload(), idempotency_key="evt-18")
    assert caught.value.status == 400
    assert caught.value.field_errors == {"soldBy": ["Technician not found."]}
    assert caught.value.details["problem"]["traceId"] == "00-abc-def-00"
    assert "Technician" not in str(caught.value)  # messages carry no body
    assert fake.status == "Open"


@responses.activate
@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            {
                "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
                "title": "One or more validation errors occurred.",
                "status": 400,
                "traceId": "00-1-2-00",
                "errors": {"$.soldBy": ["The JSON value could not be converted to System.Int64."]},
                "data": {},
            },
            "application/problem+json; charset=utf-8",
            {"soldBy": ["The JSON value could not be converted to System.Int64."]},
        ),
        (
            {
                "type": "about:blank",
                "title": "The estimate is already sold.",
                "status": 400,
                "detail": "Estimate 400000007 was sold on 2026-03-01.",
                "errors": {},
            },
            "application/problem+json",
            {"__all__": ["Estimate 400000007 was sold on 2026-03-01."]},
        ),
        (
            {"type": "x", "title": "Bad", "status": 400, "errors": {"Name": "too long"}},
            "application/json",
            {"Name": ["too long"]},
        ),
    ],
    ids=["field", "detail", "string-message"],
)
def test_problem_json_becomes_field_errors(body, content_type, expected):
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 900})
    responses.put(
        f"{SALES}/estimates/{ESTIMATE}/sell",
        status=400,
        body=json.dumps(body),
        content_type=content_type,
    )
    client = provider().get_client()
    with pytest.raises(ProviderValidationError) as caught:
        client.request("PUT", f"sales/v2/tenant/{TENANT}/estimates/{ESTIMATE}/sell", json_body={})
    assert caught.value.field_errors == expected
    assert caught.value.details["problem"]["status"] == 400
    assert caught.value.details["problem"]["title"] == body["title"]
    assert len(responses.calls) == 2  # token + one PUT: a 400 is never retried


def test_an_estimate_without_a_job_gets_no_note(fake):
    fake.estimate["jobId"] = None
    result = provider().perform("quote.decide", payload(), idempotency_key="evt-19")
    assert result["job_note"] is None and writes_sent(fake) == ["PUT sell"]


@pytest.mark.parametrize(
    "bad", [{"decision": "maybe"}, {"quote_external_id": "abc"}, {"quote_external_id": ""}]
)
def test_a_malformed_payload_is_refused_without_a_call(fake, bad):
    with pytest.raises(ProviderValidationError, match="approve\\|reject"):
        provider().perform("quote.decide", {**payload(), **bad}, idempotency_key="evt-20")
    assert fake.seen == []
