"""ServiceM8 writes for the outbox: quote decisions.

A ServiceM8 quote is a job with status "Quote" (NOTES.md §1):
- approve: `POST /job/{uuid}.json {"status": "Work Order"}`, plus a job note listing the
  approved items and the client's notes (`POST /note.json`, related_object "job");
  a partial approval first removes (`DELETE /jobmaterial/{uuid}.json`, a soft delete) or marks
  (renames "[Not approved] …") the materials the client did not approve (the payload's
  `approved_line_item_ids` are ServiceM8 jobmaterial uuids; an empty list is refused), as
  the business configures (`Integration.config["unapproved_items"]`: "remove", the default,
  or "mark");
- reject: `{"status": "Unsuccessful"}`, plus a note with the reason.

Exactly once: the outbox may deliver an event again after a crash in which the write landed
but its acknowledgement did not. Every step therefore reads first and skips what is done: the
status is only set from "Quote"; a note carries the event's idempotency key as a marker and is
not added when a note with that marker exists; a material already removed or marked is left.
After writing, the job is read back to confirm the status (issue #4: read after write).
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
    from integrations.providers.servicem8.provider import ServiceM8Provider

NOT_APPROVED_PREFIX = "[Not approved] "
TARGET = {"approve": "Work Order", "reject": "Unsuccessful"}
# Statuses in which a decision already took effect (ServiceM8 moves on from Work Order).
DONE = {"approve": {"Work Order", "Completed"}, "reject": {"Unsuccessful"}}


def marker(idempotency_key: str) -> str:
    return f"[fieldbridge:{idempotency_key}]"


def quote_decide(provider: ServiceM8Provider, payload: dict, *, idempotency_key: str) -> dict:
    decision = payload.get("decision")
    job_uuid = payload.get("quote_external_id") or ""
    if decision not in TARGET or not job_uuid:
        raise ProviderValidationError(
            "servicem8: a quote decision needs decision approve|reject and quote_external_id",
            provider=provider.key,
        )
    client = provider.get_client()
    job = _get(provider, "job", job_uuid)
    status = job.get("status")
    done = status in DONE[decision]
    if not done and status != "Quote":
        raise ProviderConflictError(
            f"servicem8: job {job_uuid} is {status!r}, no longer a Quote; the decision was not "
            "applied",
            provider=provider.key,
        )
    removed = []
    if decision == "approve" and payload.get("approved_line_item_ids") is not None:
        removed = _set_aside_unapproved(provider, job_uuid, payload)
    if not done:
        client.request(
            "POST", f"job/{job_uuid}.json", json_body={"status": TARGET[decision]}, idempotent=True
        )
    _add_note_once(provider, job_uuid, _note_text(payload, removed), idempotency_key)
    confirmed = _get(provider, "job", job_uuid).get("status")
    if confirmed not in DONE[decision]:
        raise ProviderError(
            f"servicem8: job {job_uuid} reads back as {confirmed!r} after the decision",
            provider=provider.key,
        )
    return {"job": job_uuid, "status": confirmed, "set_aside": removed, "already_done": done}


def _get(provider: ServiceM8Provider, obj: str, uuid: str) -> dict:
    record = provider.get_client().get(f"{obj}/{uuid}.json", use_cache=False).json()
    if not isinstance(record, dict):
        raise ProviderError(f"servicem8: {obj}/{uuid}.json is not a record", provider=provider.key)
    return record


def _set_aside_unapproved(provider: ServiceM8Provider, job_uuid: str, payload: dict) -> list[str]:
    approved = set(payload.get("approved_line_item_ids") or [])
    if not approved:
        # A partial approval of nothing would remove every material: refuse, don't guess.
        raise ProviderValidationError(
            "servicem8: a partial approval needs the uuids of the approved jobmaterials",
            provider=provider.key,
        )
    mode = payload.get("unapproved_items") or provider.context.config.get(
        "unapproved_items", "remove"
    )
    client = provider.get_client()
    materials = client.get(
        "jobmaterial.json",
        params={"$filter": f"job_uuid eq '{job_uuid}'"},
        use_cache=False,
    ).json()
    set_aside = []
    for material in materials:
        uuid = material.get("uuid")
        if not uuid or uuid in approved or str(material.get("active", 1)) == "0":
            continue
        if mode == "mark":
            name = material.get("name") or ""
            if not name.startswith(NOT_APPROVED_PREFIX):
                client.request(
                    "POST",
                    f"jobmaterial/{uuid}.json",
                    json_body={"name": (NOT_APPROVED_PREFIX + name)[:255]},
                    idempotent=True,
                )
        else:
            try:
                client.request("DELETE", f"jobmaterial/{uuid}.json")
            except ProviderNotFoundError:
                pass  # removed already (a previous delivery)
        set_aside.append(uuid)
    return set_aside


def _note_text(payload: dict, set_aside: list[str]) -> str:
    who = payload.get("decided_by") or "the client"
    if payload["decision"] == "approve":
        lines = [f"Quote approved in the client portal by {who}."]
        items = payload.get("approved_line_item_names") or []
        if items:
            lines.append("Approved items: " + "; ".join(items))
        if set_aside:
            lines.append(f"{len(set_aside)} item(s) not approved were set aside.")
        if payload.get("notes"):
            lines.append(f"Client's notes: {payload['notes']}")
    else:
        lines = [f"Quote rejected in the client portal by {who}."]
        lines.append(f"Reason: {payload.get('rejection_reason') or '(none given)'}")
    return "\n".join(lines)


def _add_note_once(
    provider: ServiceM8Provider, job_uuid: str, text: str, idempotency_key: str
) -> None:
    client = provider.get_client()
    tag = marker(idempotency_key)
    notes = client.get(
        "note.json",
        params={"$filter": f"related_object_uuid eq '{job_uuid}'"},
        use_cache=False,
    ).json()
    if any(tag in (note.get("note") or "") for note in notes):
        return
    client.request(
        "POST",
        "note.json",
        json_body={
            "related_object": "job",
            "related_object_uuid": job_uuid,
            "note": f"{text}\n{tag}",
        },
    )
