"""ServiceM8 writes for the outbox: quote decisions and job creation from bookings.

A ServiceM8 quote is a job with status "Quote" (NOTES.md §1):
- approve: `POST /job/{uuid}.json {"status": "Work Order"}`, plus a job note listing the
  approved items and the client's notes (`POST /note.json`, related_object "job");
  a partial approval first removes (`DELETE /jobmaterial/{uuid}.json`, a soft delete) or marks
  (`POST /jobmaterial/{uuid}.json`, renamed "[Not approved] …") the materials the client did
  not approve, as the business configures (`Integration.config["unapproved_items"]`: "remove",
  the default, or "mark"; any other value is refused with field_errors["unapproved_items"]).
  The update body is the JobMaterialCreate schema [spec: `/jobmaterial/{uuid}.json` post
  requestBody], whose `required` is ["quantity"] ("This field is mandatory and cannot be
  empty" [spec: JobMaterialCreate.quantity]): a mark therefore sends the name together with the
  material's current quantity and job_uuid (read from the list just before), changing neither;
  the name is cut at 500 characters [spec: JobMaterialCreate.name maxLength].
  Which materials: the payload's `approved_line_item_ids` (jobmaterial uuids; an empty list is
  refused) and `shown_line_item_ids` (the quote's live line items when the client decided,
  quotes/services.py). Only shown-but-not-approved materials are set aside: one shown but gone
  since is already gone, one added at ServiceM8 after the client saw the quote is left alone.
  An event queued before `shown_line_item_ids` existed sets aside every active material not
  approved, as it did then;
- reject: `{"status": "Unsuccessful"}`, plus a note with the reason.

Exactly once: the outbox may deliver an event again after a crash in which the write landed
but its acknowledgement did not. Every step therefore reads first and skips what is done: the
status is only set from "Quote"; a note carries the event's idempotency key as a marker and is
not added when a note with that marker exists; a material already removed or marked is left.
After writing, the job is read back to confirm the status (issue #4: read after write).

job.create (a booking becomes a job; payload in portal/bookings.py):
- client: the payload's `customer.external_id` (a synced company uuid; it must exist), else an
  active company whose name is exactly the customer's (`GET /company.json?$filter=name eq
  '…' and active eq 1`, quotes doubled as in OData; NOTES.md §1 filtering), else a new
  company (`POST /company.json`, CompanyCreate: name ≤ 100, address ≤ 500, address_* parts);
- job: `POST /job.json` (JobCreate) with company_uuid, status from `options.status` ("Quote"
  or "Work Order", default "Work Order" [spec: JobCreate.status enum]), job_address and
  billing_address (one line, ≤ 500), job_description (summary and description) and
  `options.category_uuid`; creating jobs needs the OAuth scope `create_jobs` [spec];
- contact: `POST /jobcontact.json` (first/last split from the customer's name at the first
  space, email, phone, type "JOB" [spec: JobContactCreate.type]);
- visit, when `job.scheduled_start` is given: `POST /jobactivity.json` with start_date/end_date
  in the account's local time ("YYYY-MM-DD HH:MM:SS" [spec: JobActivityCreate]; the zone is
  the integration's `timezone` config, else `vendor.json`'s timezone_name), end = start + 1 h
  when none is given, activity_was_scheduled "1", `options.staff_uuid` if given.
Exactly once: "UUID is optional for record creation" [spec: createJobs description], so each
record gets a uuid derived from the booking reference (uuid5, `record_uuid`); every step
first reads `GET /{object}/{uuid}.json` and skips a record that exists, and a create is
confirmed by its `x-record-uuid`. A re-delivery after a lost acknowledgement therefore finds
the job (and its client) and creates nothing twice. The job is read back at the end.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.exceptions import (
    ProviderConflictError,
    ProviderError,
    ProviderMalformedResponseError,
    ProviderNotFoundError,
    ProviderValidationError,
)

if TYPE_CHECKING:
    from integrations.providers.servicem8.provider import ServiceM8Provider

NOT_APPROVED_PREFIX = "[Not approved] "
# Integration.config["unapproved_items"]: what a partial approval does with the rest.
UNAPPROVED_ITEMS_MODES = ("remove", "mark")
DEFAULT_UNAPPROVED_ITEMS = "remove"
# JobMaterialCreate.name maxLength [spec].
MATERIAL_NAME_MAX = 500
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


def unapproved_items_errors(value) -> dict[str, list[str]]:
    """Field errors for an `unapproved_items` setting (empty when it is usable); None = unset."""
    if value is None or value in UNAPPROVED_ITEMS_MODES:
        return {}
    return {
        "unapproved_items": [
            f"Choose one of {', '.join(UNAPPROVED_ITEMS_MODES)} (not {value!r}): what a partial "
            "approval does with the items the client did not approve."
        ]
    }


def unapproved_items_mode(provider: ServiceM8Provider, payload: dict) -> str:
    """The payload's `unapproved_items`, else the integration's, else "remove"; anything but
    "remove" or "mark" is refused (never silently taken to mean "remove")."""
    mode = payload.get("unapproved_items")
    if mode in (None, ""):
        mode = provider.context.config.get("unapproved_items")
    if mode in (None, ""):
        return DEFAULT_UNAPPROVED_ITEMS
    errors = unapproved_items_errors(mode)
    if errors:
        raise ProviderValidationError(
            f"servicem8: unapproved_items {mode!r} is not supported; set the integration's "
            f"unapproved_items to one of {', '.join(UNAPPROVED_ITEMS_MODES)}",
            provider=provider.key,
            field_errors=errors,
        )
    return mode


def _records(provider: ServiceM8Provider, path: str, params: dict) -> list[dict]:
    """A list endpoint's answer, which must be a JSON array (of objects)."""
    records = provider.get_client().get(path, params=params, use_cache=False).json()
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProviderMalformedResponseError(
            f"servicem8: {path} did not return a list of records",
            provider=provider.key,
        )
    return records


def _set_aside_unapproved(provider: ServiceM8Provider, job_uuid: str, payload: dict) -> list[str]:
    approved = set(payload.get("approved_line_item_ids") or [])
    if not approved:
        # A partial approval of nothing would remove every material: refuse, don't guess.
        raise ProviderValidationError(
            "servicem8: a partial approval needs the uuids of the approved jobmaterials",
            provider=provider.key,
        )
    mode = unapproved_items_mode(provider, payload)
    shown = payload.get("shown_line_item_ids")
    # Events queued before shown_line_item_ids existed: every material not approved, as then.
    targets = None if shown is None else {str(i) for i in shown} - {str(i) for i in approved}
    client = provider.get_client()
    materials = _records(provider, "jobmaterial.json", {"$filter": f"job_uuid eq '{job_uuid}'"})
    set_aside = []
    for material in materials:
        uuid = material.get("uuid")
        if not uuid or uuid in approved or str(material.get("active", 1)) == "0":
            continue
        if targets is not None and uuid not in targets:
            continue  # added after the client saw the quote: not theirs to refuse
        if mode == "mark":
            name = material.get("name") or ""
            if not name.startswith(NOT_APPROVED_PREFIX):
                client.request(
                    "POST",
                    f"jobmaterial/{uuid}.json",
                    json_body=_mark_body(provider, material),
                    idempotent=True,
                )
        else:
            try:
                client.request("DELETE", f"jobmaterial/{uuid}.json")
            except ProviderNotFoundError:
                pass  # removed already (a previous delivery)
        set_aside.append(uuid)
    return set_aside


def _mark_body(provider: ServiceM8Provider, material: dict) -> dict:
    """The JobMaterialCreate body renaming `material`: its quantity is required [spec]."""
    quantity = material.get("quantity")
    if not isinstance(quantity, str) or not quantity.strip():
        raise ProviderMalformedResponseError(
            f"servicem8: jobmaterial {material.get('uuid')} has no quantity to send back",
            provider=provider.key,
        )
    body = {
        "name": (NOT_APPROVED_PREFIX + (material.get("name") or ""))[:MATERIAL_NAME_MAX],
        "quantity": quantity,
    }
    if material.get("job_uuid"):
        body["job_uuid"] = str(material["job_uuid"])
    return body


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
    notes = _records(provider, "note.json", {"$filter": f"related_object_uuid eq '{job_uuid}'"})
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


# --- job.create (bookings) ----------------------------------------------------------------------

# uuid5 namespace of the records a booking creates: each record's uuid is
# uuid5(JOB_CREATE_NAMESPACE, "<booking reference>:<role>"), so every delivery of one booking
# names the same company, job, jobcontact and jobactivity.
JOB_CREATE_NAMESPACE = uuid.UUID("6f1d8c1e-3b0a-5c8e-9a57-2f64e1b0c4d1")
JOB_CREATE_STATUSES = ("Quote", "Work Order")
DEFAULT_JOB_STATUS = "Work Order"
# A visit without an end is booked for this long (JobActivity needs an end_date).
DEFAULT_VISIT = timedelta(hours=1)
_UUID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.IGNORECASE)
# CompanyCreate.name maxLength 100; job_address/billing_address maxLength 500 [spec].
COMPANY_NAME_MAX = 100
ADDRESS_MAX = 500


def record_uuid(reference: str, role: str) -> str:
    """The deterministic uuid of one record a booking creates (see JOB_CREATE_NAMESPACE)."""
    return str(uuid.uuid5(JOB_CREATE_NAMESPACE, f"{reference}:{role}"))


def job_options_errors(options: dict) -> dict[str, list[str]]:
    """Field errors for a booking's ServiceM8 `options` (empty when they are usable)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(options, dict):
        return {"options": ["Must be an object."]}
    status = options.get("status")
    if status not in (None, "") and status not in JOB_CREATE_STATUSES:
        errors["options.status"] = [f"Choose one of {', '.join(JOB_CREATE_STATUSES)}."]
    for name in ("category_uuid", "staff_uuid"):
        value = options.get(name)
        if value not in (None, "") and not (isinstance(value, str) and _UUID.match(value)):
            errors[f"options.{name}"] = ["Must be a ServiceM8 uuid."]
    return errors


def _payload_errors(payload: dict) -> dict[str, list[str]]:
    errors = job_options_errors(payload.get("options") or {})
    customer = payload.get("customer") or {}
    address = payload.get("address") or {}
    job = payload.get("job") or {}
    if not isinstance(payload.get("reference"), str) or not payload.get("reference"):
        errors["reference"] = ["This field is required."]
    external_id = customer.get("external_id") or ""
    if external_id and not _UUID.match(str(external_id)):
        errors["customer.external_id"] = ["Must be a ServiceM8 company uuid."]
    if not external_id and not str(customer.get("name") or "").strip():
        errors["customer.name"] = ["This field is required."]
    if len(str(customer.get("name") or "").strip()) > COMPANY_NAME_MAX and not external_id:
        errors["customer.name"] = [f"At most {COMPANY_NAME_MAX} characters (ServiceM8)."]
    if not str(address.get("street") or "").strip():
        errors["address.street"] = ["This field is required."]
    if len(format_address(address)) > ADDRESS_MAX:
        errors["address"] = [f"The address is longer than {ADDRESS_MAX} characters (ServiceM8)."]
    if not str(job.get("summary") or job.get("description") or "").strip():
        errors["job.summary"] = ["This field is required."]
    for name in ("scheduled_start", "scheduled_end"):
        value = job.get(name)
        if value in (None, ""):
            continue
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            errors[f"job.{name}"] = ["Enter an ISO 8601 date and time."]
            continue
        if parsed.tzinfo is None:
            errors[f"job.{name}"] = ["Include the time zone offset."]
    return errors


def format_address(address: dict) -> str:
    """One line, as ServiceM8 keeps a job's address: "street, street2, city region postcode,
    country" (empty parts left out)."""
    text = {k: str(address.get(k) or "").strip() for k in address}
    locality = " ".join(p for p in (text.get("region", ""), text.get("postal_code", "")) if p)
    parts = [
        text.get("street", ""),
        text.get("street2", ""),
        " ".join(p for p in (text.get("city", ""), locality) if p),
        text.get("country", ""),
    ]
    return ", ".join(p for p in parts if p)


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def _find(provider: ServiceM8Provider, obj: str, uuid_: str) -> dict | None:
    """`GET /{obj}/{uuid}.json`, None on 404 (a deleted record is returned, active 0)."""
    try:
        return _get(provider, obj, uuid_)
    except ProviderNotFoundError:
        return None


def _create(provider: ServiceM8Provider, obj: str, uuid_: str, body: dict) -> bool:
    """Create `obj` with the supplied `uuid_` unless it exists; True when this call created it.

    `POST /{obj}.json` with `uuid` [spec: createJobs "UUID is optional for record creation"];
    the answer's `x-record-uuid` must name it. Sent once (not retried by the HTTP layer: a
    retry after a lost answer would be refused as a duplicate uuid); a refusal is checked
    against a fresh read, so a create that landed on an earlier attempt counts as done.
    """
    if _find(provider, obj, uuid_) is not None:
        return False
    try:
        response = provider.get_client().request(
            "POST", f"{obj}.json", json_body={**body, "uuid": uuid_}
        )
    except ProviderValidationError:
        if _find(provider, obj, uuid_) is not None:
            return False
        raise
    confirmed = (response.header("x-record-uuid") or "").lower()
    if confirmed != uuid_:
        raise ProviderError(
            f"servicem8: creating a {obj} answered x-record-uuid {confirmed!r}, not {uuid_}",
            provider=provider.key,
        )
    return True


def _company_by_name(provider: ServiceM8Provider, name: str) -> str | None:
    """An active company named exactly `name` (`$filter=name eq '…'`, quotes doubled)."""
    quoted = name.replace("'", "''")
    companies = (
        provider.get_client()
        .get(
            "company.json",
            params={"$filter": f"name eq '{quoted}' and active eq 1"},
            use_cache=False,
        )
        .json()
    )
    if not isinstance(companies, list):
        raise ProviderError("servicem8: company.json did not return a list", provider=provider.key)
    matches = sorted(
        str(c["uuid"]).lower()
        for c in companies
        if isinstance(c, dict) and c.get("uuid") and c.get("name") == name
    )
    return matches[0] if matches else None


def _account_zone(provider: ServiceM8Provider) -> ZoneInfo:
    """The account's zone: ServiceM8 times are local wall-clock times with no offset. From the
    integration's config, else the account itself (`vendor.json` timezone_name)."""
    zone = provider.account_zone
    if zone is not None:
        return zone
    name = provider.probe().timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProviderError(
            f"servicem8: the account's time zone {name!r} is unknown; set the integration's "
            "timezone to schedule visits",
            provider=provider.key,
        ) from None


def job_create(provider: ServiceM8Provider, payload: dict, *, idempotency_key: str) -> dict:
    """Create a booking's job: client, job, job contact and visit, each once (module
    docstring). Returns {"job_id", "customer_id", "created"}; `created` is False when the job
    existed already (an earlier delivery made it)."""
    errors = _payload_errors(payload)
    if errors:
        raise ProviderValidationError(
            "servicem8: the booking cannot become a job: "
            + "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(errors.items())),
            provider=provider.key,
            field_errors=errors,
        )
    reference = payload["reference"]
    customer = payload.get("customer") or {}
    address = payload.get("address") or {}
    job = payload.get("job") or {}
    options = payload.get("options") or {}
    job_uuid = record_uuid(reference, "job")

    existing = _find(provider, "job", job_uuid)
    if existing is not None and str(existing.get("active", 1)) == "0":
        # Made by an earlier delivery, then deleted at ServiceM8: someone decided; no retry.
        raise ProviderConflictError(
            f"servicem8: job {job_uuid} of this booking was created and has since been deleted",
            provider=provider.key,
        )
    if existing is not None and existing.get("company_uuid"):
        company_uuid = str(existing["company_uuid"]).lower()
    else:
        company_uuid = _resolve_company(provider, reference, customer, address)

    where = format_address(address)
    summary = str(job.get("summary") or "").strip()
    description = str(job.get("description") or "").strip()
    body = {
        "company_uuid": company_uuid,
        "status": options.get("status") or DEFAULT_JOB_STATUS,
        "job_address": where,
        "billing_address": where,
        "job_description": "\n\n".join(p for p in (summary, description) if p),
    }
    if options.get("category_uuid"):
        body["category_uuid"] = str(options["category_uuid"]).lower()
    created = existing is None and _create(provider, "job", job_uuid, body)

    name = str(customer.get("name") or "").strip()
    if name or customer.get("email") or customer.get("phone"):
        first, last = _split_name(name)
        contact = {"job_uuid": job_uuid, "first": first, "last": last, "type": "JOB"}
        if customer.get("email"):
            contact["email"] = str(customer["email"])
        if customer.get("phone"):
            contact["phone"] = str(customer["phone"])
        _create(provider, "jobcontact", record_uuid(reference, "jobcontact"), contact)

    if job.get("scheduled_start"):
        zone = _account_zone(provider)
        start = datetime.fromisoformat(str(job["scheduled_start"]))
        end = (
            datetime.fromisoformat(str(job["scheduled_end"]))
            if job.get("scheduled_end")
            else start + DEFAULT_VISIT
        )
        visit = {
            "job_uuid": job_uuid,
            "start_date": start.astimezone(zone).strftime(VISIT_FORMAT),
            "end_date": end.astimezone(zone).strftime(VISIT_FORMAT),
            "activity_was_scheduled": "1",
        }
        if options.get("staff_uuid"):
            visit["staff_uuid"] = str(options["staff_uuid"]).lower()
        _create(provider, "jobactivity", record_uuid(reference, "jobactivity"), visit)

    confirmed = _get(provider, "job", job_uuid)
    if (
        str(confirmed.get("company_uuid") or "").lower() != company_uuid
        or str(confirmed.get("active", 1)) != "1"
    ):
        raise ProviderError(
            f"servicem8: job {job_uuid} does not read back as an active job of {company_uuid}",
            provider=provider.key,
        )
    return {"job_id": job_uuid, "customer_id": company_uuid, "created": bool(created)}


VISIT_FORMAT = "%Y-%m-%d %H:%M:%S"


def _resolve_company(
    provider: ServiceM8Provider, reference: str, customer: dict, address: dict
) -> str:
    """The job's client: the payload's external_id (which must exist), else the company this
    booking created on an earlier delivery, else one named exactly like the customer, else a
    new one (with the booking's deterministic uuid)."""
    external_id = str(customer.get("external_id") or "").lower()
    if external_id:
        if _find(provider, "company", external_id) is None:
            raise ProviderValidationError(
                f"servicem8: company {external_id} does not exist",
                provider=provider.key,
                field_errors={"customer.external_id": ["No such ServiceM8 company."]},
            )
        return external_id
    own = record_uuid(reference, "company")
    if _find(provider, "company", own) is not None:
        return own
    name = str(customer.get("name") or "").strip()
    found = _company_by_name(provider, name)
    if found is not None:
        return found
    text = {k: str(address.get(k) or "").strip() for k in address}
    street = ", ".join(p for p in (text.get("street", ""), text.get("street2", "")) if p)
    body = {
        "name": name,
        "address": format_address(address),
        "billing_address": format_address(address),
        "address_street": street,
        "address_city": text.get("city", ""),
        "address_state": text.get("region", ""),
        "address_postcode": text.get("postal_code", ""),
        "address_country": text.get("country", ""),
    }
    _create(provider, "company", own, {k: v for k, v in body.items() if v})
    return own
