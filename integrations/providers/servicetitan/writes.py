"""ServiceTitan writes for the outbox: quote (estimate) decisions.

Endpoints (spec: servicetitan/tenant-salestech-v2.yml, tenant-jpm-v2.yml, tenant-settings-v2.yml):
- approve: `PUT /sales/v2/tenant/{t}/estimates/{id}/sell` with `SellRequest {"soldBy": int64}`
  (required; a technician, NOTES.md §2). `soldBy` is the integration's
  `config["sold_by_technician_id"]`; it is checked with `GET /settings/v2/tenant/{t}/
  technicians/{id}` (exists and active) before anything is written;
- reject: `PUT /sales/v2/tenant/{t}/estimates/{id}/dismiss` (no body);
- partial approval: the Sales API can delete an estimate's items
  (`DELETE …/estimates/{id}/items/{itemId}`, Estimates_DeleteItem), so the items the client did
  not approve are deleted before the sale (the payload's `approved_line_item_ids` are
  ServiceTitan estimate item ids; an empty list is refused). ServiceTitan sells every item of
  an estimate, so ServiceM8's "mark" mode (keep and rename) would sell what the client refused:
  it is refused here;
- the client's notes / rejection reason: a note on the estimate's job
  (`POST /jpm/v2/tenant/{t}/jobs/{jobId}/notes`, `JobNoteCreateRequest {text}`). The 2022 sales
  spec has no note or comment on an estimate itself; an estimate without a job gets no note
  (the response says so).

Exactly once: the outbox may deliver an event again after a crash in which a write landed but
its acknowledgement did not. Every step reads first and skips what is done: the estimate is
only sold or dismissed from "Open" (already in the target state = done; in the other terminal
state = ProviderConflictError); an item is only deleted while it is on the estimate; a note
carries the event's idempotency key as a marker and is not added when a note with it exists.
Sell and dismiss are sent as non-idempotent (the HTTP layer does not resend them blindly: a
second sell of a sold estimate is an error, not a no-op); when one is refused, the estimate is
read again and a refusal because it is already in the target state counts as done. After
writing, the estimate is read back to confirm the status (issue #4: read after write).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.exceptions import (
    ProviderConflictError,
    ProviderError,
    ProviderNotFoundError,
    ProviderValidationError,
)

if TYPE_CHECKING:
    from integrations.providers.servicetitan.provider import ServiceTitanProvider

SOLD_BY_SETTING = "sold_by_technician_id"
OPEN = "Open"
TARGET = {"approve": "Sold", "reject": "Dismissed"}
OPPOSITE = {"approve": "Dismissed", "reject": "Sold"}
ACTION = {"approve": "sell", "reject": "dismiss"}


def marker(idempotency_key: str) -> str:
    return f"[fieldbridge:{idempotency_key}]"


def quote_decide(provider: ServiceTitanProvider, payload: dict, *, idempotency_key: str) -> dict:
    decision = payload.get("decision")
    estimate_id = str(payload.get("quote_external_id") or "")
    if decision not in TARGET or not estimate_id.isdigit():
        raise ProviderValidationError(
            "servicetitan: a quote decision needs decision approve|reject and the estimate id "
            "(an integer) as quote_external_id",
            provider=provider.key,
        )
    estimate = _estimate(provider, estimate_id)
    status = status_name(estimate)
    done = status == TARGET[decision]
    if status == OPPOSITE[decision]:
        raise ProviderConflictError(
            f"servicetitan: estimate {estimate_id} is already {status}; the decision to "
            f"{decision} it was not applied",
            provider=provider.key,
        )
    if not done and (status != OPEN or estimate.get("active") is False):
        state = status if estimate.get("active") is not False else f"{status} and inactive"
        raise ProviderConflictError(
            f"servicetitan: estimate {estimate_id} is {state!r}, not Open; the decision was "
            "not applied",
            provider=provider.key,
        )
    approved = payload.get("approved_line_item_ids")
    partial = decision == "approve" and approved is not None
    removed: list[str] = []
    sold_by = None
    if done:
        if partial:
            _check_sold_items(provider, estimate, approved)
    else:
        # Everything that can refuse the decision is checked before the first write.
        if decision == "approve":
            sold_by = _sold_by(provider)
        unapproved = _unapproved_items(provider, estimate, payload) if partial else []
        for item_id in unapproved:
            _delete_item(provider, estimate_id, item_id)
            removed.append(item_id)
        _transition(provider, estimate_id, decision, sold_by)
    note = _add_note_once(provider, estimate, _note_text(payload, partial=partial), idempotency_key)
    confirmed = _estimate(provider, estimate_id)
    confirmed_status = status_name(confirmed)
    if confirmed_status != TARGET[decision]:
        raise ProviderError(
            f"servicetitan: estimate {estimate_id} reads back as {confirmed_status!r} after the "
            "decision",
            provider=provider.key,
        )
    return {
        "estimate": estimate_id,
        "status": confirmed_status,
        "sold_by": confirmed.get("soldBy"),
        "removed_items": removed,
        "already_done": done,
        "job_note": note,
    }


def status_name(estimate: dict) -> str:
    """EstimateResponse.status is an EstimateStatusModel {value, name} (nullable)."""
    status = estimate.get("status")
    return str(status.get("name") or "") if isinstance(status, dict) else str(status or "")


def _estimate(provider: ServiceTitanProvider, estimate_id: str) -> dict:
    return provider.get_client().get_record(provider.path("sales", f"estimates/{estimate_id}"))


def _sold_by(provider: ServiceTitanProvider) -> int:
    """The configured technician, checked to exist and be active (a sale needs one)."""
    raw = provider.context.config.get(SOLD_BY_SETTING)
    if raw in (None, ""):
        message = (
            f"servicetitan: set the integration setting {SOLD_BY_SETTING!r} (the id of the "
            "ServiceTitan technician recorded as the seller) to approve estimates: ServiceTitan "
            "requires soldBy to sell an estimate"
        )
        raise ProviderValidationError(
            message, provider=provider.key, field_errors={SOLD_BY_SETTING: [message]}
        )
    if isinstance(raw, bool) or not str(raw).strip().isdigit():
        message = f"servicetitan: {SOLD_BY_SETTING} must be a technician id (an integer)"
        raise ProviderValidationError(
            message, provider=provider.key, field_errors={SOLD_BY_SETTING: [message]}
        )
    technician_id = int(str(raw).strip())
    try:
        technician = provider.get_client().get_record(
            provider.path("settings", f"technicians/{technician_id}")
        )
    except ProviderNotFoundError:
        technician = None
    if technician is None or technician.get("active") is False:
        state = "does not exist" if technician is None else "is not active"
        message = (
            f"servicetitan: technician {technician_id} ({SOLD_BY_SETTING}) {state}; choose an "
            "active technician to record as the seller"
        )
        raise ProviderValidationError(
            message, provider=provider.key, field_errors={SOLD_BY_SETTING: [message]}
        )
    return technician_id


def _approved_ids(provider: ServiceTitanProvider, payload: dict) -> set[str]:
    mode = payload.get("unapproved_items") or provider.context.config.get(
        "unapproved_items", "remove"
    )
    if mode != "remove":
        raise ProviderValidationError(
            f"servicetitan: unapproved_items {mode!r} is not supported: selling an estimate "
            "sells every item on it, so items the client did not approve are removed",
            provider=provider.key,
        )
    approved = {str(i) for i in payload.get("approved_line_item_ids") or []}
    if not approved:
        # A partial approval of nothing would delete every item: refuse, don't guess.
        raise ProviderValidationError(
            "servicetitan: a partial approval needs the ids of the approved estimate items",
            provider=provider.key,
        )
    return approved


def _item_ids(estimate: dict) -> list[str]:
    return [str(item["id"]) for item in estimate.get("items") or () if item.get("id") is not None]


def _unapproved_items(provider: ServiceTitanProvider, estimate: dict, payload: dict) -> list[str]:
    """The items to delete before selling. An approved id missing from the estimate means
    the estimate changed since the client saw it (a re-delivery never deletes approved ones)."""
    approved = _approved_ids(provider, payload)
    present = _item_ids(estimate)
    missing = approved - set(present)
    if missing:
        raise ProviderConflictError(
            f"servicetitan: estimate {estimate['id']} no longer has the approved item(s) "
            f"{', '.join(sorted(missing))}; it changed since the client decided",
            provider=provider.key,
        )
    return [item_id for item_id in present if item_id not in approved]


def _check_sold_items(provider: ServiceTitanProvider, estimate: dict, approved: list) -> None:
    """An estimate already sold (a re-delivery, or sold in ServiceTitan meanwhile) must not
    carry items the client did not approve: we delete them before selling, so if some are
    there it was sold by someone else, and a person must look."""
    extra = [i for i in _item_ids(estimate) if i not in {str(a) for a in approved or []}]
    if extra:
        raise ProviderConflictError(
            f"servicetitan: estimate {estimate['id']} was sold with item(s) the client did not "
            f"approve ({', '.join(extra)}); the partial approval was not applied",
            provider=provider.key,
        )


def _delete_item(provider: ServiceTitanProvider, estimate_id: str, item_id: str) -> None:
    path = provider.path("sales", f"estimates/{estimate_id}/items/{item_id}")
    try:
        provider.get_client().request("DELETE", path)
    except ProviderNotFoundError:
        return  # deleted already (a previous attempt)
    except ProviderValidationError:
        # The spec documents 400 only; an item deleted by a resent DELETE may be refused so.
        if item_id in _item_ids(_estimate(provider, estimate_id)):
            raise


def _transition(
    provider: ServiceTitanProvider, estimate_id: str, decision: str, sold_by: int | None
) -> None:
    path = provider.path("sales", f"estimates/{estimate_id}/{ACTION[decision]}")
    body = {"soldBy": sold_by} if decision == "approve" else None
    try:
        provider.get_client().request("PUT", path, json_body=body, idempotent=False)
    except (ProviderValidationError, ProviderConflictError):
        # Refused: fine if it is refused because it is done (a concurrent or earlier send).
        if status_name(_estimate(provider, estimate_id)) != TARGET[decision]:
            raise


def _note_text(payload: dict, *, partial: bool) -> str:
    who = payload.get("decided_by") or "the client"
    if payload["decision"] == "approve":
        lines = [f"Estimate approved in the client portal by {who}."]
        items = payload.get("approved_line_item_names") or []
        if items:
            lines.append("Approved items: " + "; ".join(items))
        if partial:
            # Not a count: a re-delivery does not see what an earlier delivery removed.
            lines.append("Partial approval: the items not approved were removed before the sale.")
        if payload.get("notes"):
            lines.append(f"Client's notes: {payload['notes']}")
    else:
        lines = [f"Estimate rejected in the client portal by {who}."]
        lines.append(f"Reason: {payload.get('rejection_reason') or '(none given)'}")
    return "\n".join(lines)


def _add_note_once(
    provider: ServiceTitanProvider, estimate: dict, text: str, idempotency_key: str
) -> str | None:
    """A job note with the marker, unless one exists; returns the job id, None without a job."""
    job_id = estimate.get("jobId")
    if not job_id:
        return None
    client = provider.get_client()
    path = provider.path("jpm", f"jobs/{job_id}/notes")
    tag = marker(idempotency_key)
    for page in client.iter_pages(path, max_pages=provider.max_pages):
        if any(tag in (note.get("text") or "") for note in page):
            return str(job_id)
    client.request("POST", path, json_body={"text": f"{text}\n{tag}"})
    return str(job_id)
