"""ServiceM8 `quote.decide` with `responses`: the mark body the spec requires, which materials a
partial approval sets aside, the unapproved_items setting, and malformed list answers."""

from __future__ import annotations

import json

import pytest
import responses

from integrations.exceptions import ProviderMalformedResponseError, ProviderValidationError
from tests.integrations.servicem8.test_job_create import API, OK, provider, schemas, valid

__all__ = ["schemas"]  # the module fixture, shared with test_job_create

JOB = "0f8e2a10-5c3d-4b7e-9a61-2d4c6e8f0a12"
KEEP = "1a2b3c4d-0000-4000-8000-000000000001"
REFUSED = "1a2b3c4d-0000-4000-8000-000000000002"
GONE = "1a2b3c4d-0000-4000-8000-000000000003"
LATER = "1a2b3c4d-0000-4000-8000-000000000004"


def material(uid: str, name: str, quantity: str = "2", active: int = 1) -> dict:
    return {
        "uuid": uid,
        "job_uuid": JOB,
        "name": name,
        "quantity": quantity,
        "price": "10.00",
        "active": active,
    }


def decision(**overrides) -> dict:
    return {
        "decision": "approve",
        "quote_external_id": JOB,
        "approved_line_item_ids": [KEEP],
        "approved_line_item_names": ["Labour"],
        "shown_line_item_ids": [KEEP, REFUSED, GONE],
        "notes": "",
        "decided_by": "client@example.com",
        **overrides,
    }


def quote_answers(materials: list | dict | str, notes: list | dict | str = ()) -> None:
    responses.get(f"{API}/job/{JOB}.json", json={"uuid": JOB, "status": "Quote", "active": 1})
    responses.get(f"{API}/job/{JOB}.json", json={"uuid": JOB, "status": "Work Order"})
    responses.get(f"{API}/jobmaterial.json", json=materials)
    responses.get(f"{API}/note.json", json=list(notes) if isinstance(notes, tuple) else notes)
    responses.post(f"{API}/job/{JOB}.json", json=OK)
    responses.post(f"{API}/note.json", json=OK, headers={"x-record-uuid": KEEP})


def writes() -> list[tuple[str, str, dict | None]]:
    return [
        (
            c.request.method,
            c.request.url.removeprefix(f"{API}/"),
            json.loads(c.request.body) if c.request.body else None,
        )
        for c in responses.calls
        if c.request.method in ("POST", "DELETE")
    ]


LIVE = [
    material(KEEP, "Labour"),
    material(REFUSED, "Premium tap", quantity="1.5"),
    material(LATER, "Added at ServiceM8 after the client saw the quote"),
]


@responses.activate
def test_mark_mode_sends_the_quantity_the_spec_requires(schemas):
    quote_answers(LIVE)
    responses.post(f"{API}/jobmaterial/{REFUSED}.json", json=OK)

    result = provider(unapproved_items="mark").perform(
        "quote.decide", decision(), idempotency_key="evt-1"
    )

    assert result["set_aside"] == [REFUSED]
    (mark,) = [w for w in writes() if w[1].startswith("jobmaterial/")]
    assert mark == (
        "POST",
        f"jobmaterial/{REFUSED}.json",
        {"name": "[Not approved] Premium tap", "quantity": "1.5", "job_uuid": JOB},
    )
    valid(schemas, "JobMaterialCreate", mark[2])  # `required: [quantity]` included


@responses.activate
def test_only_shown_items_not_approved_are_removed(schemas):
    quote_answers(LIVE)  # GONE (shown) is no longer listed; LATER was never shown
    responses.delete(f"{API}/jobmaterial/{REFUSED}.json", json=OK)

    result = provider().perform("quote.decide", decision(), idempotency_key="evt-2")

    assert result["set_aside"] == [REFUSED]
    assert [w[:2] for w in writes()] == [
        ("DELETE", f"jobmaterial/{REFUSED}.json"),
        ("POST", f"job/{JOB}.json"),
        ("POST", "note.json"),
    ]


@responses.activate
def test_events_queued_without_shown_items_act_as_before():
    quote_answers(LIVE)
    responses.delete(f"{API}/jobmaterial/{REFUSED}.json", json=OK)
    responses.delete(f"{API}/jobmaterial/{LATER}.json", json=OK)
    payload = decision()
    del payload["shown_line_item_ids"]

    result = provider().perform("quote.decide", payload, idempotency_key="evt-3")

    assert result["set_aside"] == [REFUSED, LATER]


@pytest.mark.parametrize("mode", ["delete", "Mark", "keep", 1])
@responses.activate
def test_an_unknown_unapproved_items_mode_is_refused_before_any_write(mode):
    quote_answers(LIVE)
    with pytest.raises(ProviderValidationError) as refused:
        provider(unapproved_items=mode).perform("quote.decide", decision(), idempotency_key="e")
    assert list(refused.value.field_errors) == ["unapproved_items"]
    assert "remove, mark" in refused.value.field_errors["unapproved_items"][0]
    assert writes() == []


@responses.activate
def test_the_payloads_mode_wins_and_is_checked_too():
    quote_answers(LIVE)
    with pytest.raises(ProviderValidationError) as refused:
        provider(unapproved_items="mark").perform(
            "quote.decide", decision(unapproved_items="hide"), idempotency_key="e"
        )
    assert "unapproved_items" in refused.value.field_errors
    assert writes() == []


@pytest.mark.parametrize("answer", [{"uuid": REFUSED}, "jobmaterials", [["not", "a", "record"]]])
@responses.activate
def test_a_material_list_that_is_not_a_list_is_malformed(answer):
    quote_answers(answer)
    with pytest.raises(ProviderMalformedResponseError, match="jobmaterial.json"):
        provider().perform("quote.decide", decision(), idempotency_key="e")
    assert writes() == []


@pytest.mark.parametrize("answer", [{"note": "x"}, "notes"])
@responses.activate
def test_a_note_list_that_is_not_a_list_is_malformed(answer):
    quote_answers(LIVE, notes=answer)
    with pytest.raises(ProviderMalformedResponseError, match="note.json"):
        provider().perform(
            "quote.decide", decision(approved_line_item_ids=None), idempotency_key="e"
        )
    assert [w[1] for w in writes()] == [f"job/{JOB}.json"]  # the status, then the note read


@responses.activate
def test_a_material_without_quantity_cannot_be_marked():
    quote_answers([material(KEEP, "Labour"), {**material(REFUSED, "Tap"), "quantity": ""}])
    with pytest.raises(ProviderMalformedResponseError, match="quantity"):
        provider(unapproved_items="mark").perform("quote.decide", decision(), idempotency_key="e")
    assert writes() == []
