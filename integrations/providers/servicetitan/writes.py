"""ServiceTitan writes for the outbox: quote (estimate) decisions, job creation, job status.

Endpoints (spec: servicetitan/tenant-salestech-v2.yml, tenant-jpm-v2.yml, tenant-settings-v2.yml):
- approve: `PUT /sales/v2/tenant/{t}/estimates/{id}/sell` with `SellRequest {"soldBy": int64}`
  (required; a technician, NOTES.md §2). `soldBy` is the integration's
  `config["sold_by_technician_id"]`; it is checked with `GET /settings/v2/tenant/{t}/
  technicians/{id}` (exists and active) before anything is written;
- reject: `PUT /sales/v2/tenant/{t}/estimates/{id}/dismiss` (no body);
- partial approval: the Sales API can delete an estimate's items
  (`DELETE …/estimates/{id}/items/{itemId}`, Estimates_DeleteItem), so the items the client did
  not approve are deleted before the sale (the payload's `approved_line_item_ids` are
  ServiceTitan estimate item ids; an empty list is refused). Only items the client was shown
  (`shown_line_item_ids`) and did not approve are deleted; an item added to the estimate since
  is left (events queued before that key existed: every item not approved). ServiceTitan
  sells every item of an estimate, so ServiceM8's "mark" mode (keep and rename) would sell what
  the client refused: it is refused here (field_errors["unapproved_items"]);
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

Jobs (outbox actions `job.create` and `job.status`; spec: tenant-crm-v2.yml, tenant-jpm-v2.yml):
- `job.create` (a booking, payload of portal/bookings.py): the customer is the synced one
  (`customer.external_id`, `GET crm/…/customers/{id}`) or found with Customers_GetList's
  `name` + `street` + `zip` filters, then `name` + `phone` ("by phone number of contacts"),
  each match checked here; else created (`POST crm/…/customers`, CreateCustomerRequest: `name`,
  `address` (bill-to) and `locations` are required, so the service address is both; e-mail and
  phone go in `contacts` as Email / Phone). The location is the customer's one at that address
  (Locations_GetList `customerId` + `street` + `zip`) or created (`POST crm/…/locations`,
  CreateLocationRequest {name, address, customerId}). Then `POST jpm/…/jobs`
  (Crm.V2.JobCreateRequest requires customerId, locationId, businessUnitId, jobTypeId,
  priority, campaignId and appointments[]): the three references come from the payload's
  options (`business_unit_id`, `job_type_id`, `campaign_id`) or the integration config
  (`default_business_unit_id`, `default_job_type_id`, `default_campaign_id`); one missing is a
  ProviderValidationError whose field_errors name it. Before anything is created the business
  unit (`GET settings/…/business-units/{id}`) and job type (`GET jpm/…/job-types/{id}`) are
  read; one missing or inactive is a ProviderValidationError naming `business_unit_id` /
  `job_type_id`, and no customer or location is created. The campaign cannot be checked
  first: the specs we hold have no campaigns GET (no marketing module). Priority
  low/normal/high/urgent maps to Crm.V2.Priority Low/Normal/High/Urgent. One appointment
  (AppointmentInformation {start, end} required, UTC): the booking's scheduled start/end,
  also its arrival window; without a start, tomorrow 08:00 in the integration's `timezone`
  (UTC if unset); without an end, start +
  `default_appointment_minutes` (120). `options.technician_ids` become its technicianIds.
- Exactly once: the job carries `externalData` {applicationGuid: ours, externalData:
  [{key: "fieldbridge_booking", value: <booking reference>}]} (ExternalDataUpdateRequest).
  Jobs_GetList has no filter on externalData values, only `externalDataApplicationGuid`
  ("external data corresponding to this application guid will be returned"), so before
  creating, the customer's jobs are listed with it and one carrying our key and reference is
  the job (created=False). The 2022 CreateCustomerRequest has no externalData, so a customer
  created by a delivery whose acknowledgement was lost is found again by the same name and
  address search (and the location by customerId + address). The applicationGuid is config
  `application_guid`, else SERVICETITAN_APPLICATION_GUID, else DEFAULT_APPLICATION_GUID. The
  job is read back (`GET jpm/…/jobs/{id}?externalDataApplicationGuid=…`) to confirm it.
- `job.status` {job_external_id, change, reason_id, memo}: `PUT jpm/…/jobs/{id}/hold`
  (HoldJobRequest {reasonId, memo}, both required; reason from job-hold-reasons), `/complete`
  (CompleteJobRequest {completedOn}), `/cancel` (CancelJobRequest {reasonId, memo}; reason from
  job-cancel-reasons), `/remove-cancellation` (no body). jobStatus is read first ("Scheduled",
  "InProgress", "Hold", "Completed", "Canceled" [spec: Jobs_GetList jobStatus]): a change in
  effect is not sent again (remove-cancellation is in effect when the job is not Canceled);
  hold, complete or cancel of a Completed or Canceled job is a ProviderConflictError (Jobs_
  Complete documents 409 "Job already completed or cancelled"). A refused PUT is re-read and
  counts as done when the job is in the target state; the status is read back after writing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.conf import integration_setting
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
    if decision not in TARGET or not (estimate_id.isascii() and estimate_id.isdigit()):
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
            _check_sold_items(provider, estimate, approved, payload)
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
    if isinstance(raw, bool) or not (str(raw).strip().isascii() and str(raw).strip().isdigit()):
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


# Integration.config["unapproved_items"]: only "remove" (a sale sells every item; see above).
UNAPPROVED_ITEMS_MODES = ("remove",)


def _approved_ids(provider: ServiceTitanProvider, payload: dict) -> set[str]:
    mode = payload.get("unapproved_items") or provider.context.config.get(
        "unapproved_items", "remove"
    )
    if mode not in UNAPPROVED_ITEMS_MODES:
        message = (
            f"servicetitan: unapproved_items {mode!r} is not supported: selling an estimate "
            "sells every item on it, so items the client did not approve are removed"
        )
        raise ProviderValidationError(
            message, provider=provider.key, field_errors={"unapproved_items": [message]}
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
    refused = _refused(payload, approved)
    return [i for i in present if i not in approved and (refused is None or i in refused)]


def _refused(payload: dict, approved) -> set[str] | None:
    """The items the client saw and did not approve (`shown_line_item_ids` minus the approved
    ones): only those are deleted; an item added to the estimate after the client saw it is
    left. None for events queued before the payload carried `shown_line_item_ids` (then every
    item not approved, as before)."""
    shown = payload.get("shown_line_item_ids")
    if shown is None:
        return None
    return {str(i) for i in shown} - {str(a) for a in approved or []}


def _check_sold_items(
    provider: ServiceTitanProvider, estimate: dict, approved: list, payload: dict
) -> None:
    """An estimate already sold (a re-delivery, or sold in ServiceTitan meanwhile) must not
    carry items the client did not approve: we delete them before selling, so if some are
    there it was sold by someone else, and a person must look."""
    refused = _refused(payload, approved)
    extra = [
        i
        for i in _item_ids(estimate)
        if i not in {str(a) for a in approved or []} and (refused is None or i in refused)
    ]
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


# --- job.create -------------------------------------------------------------------------------

BOOKING_KEY = "fieldbridge_booking"
APPLICATION_GUID_SETTING = "application_guid"
# Our app's externalData applicationGuid when neither the integration config nor the
# SERVICETITAN_APPLICATION_GUID setting names one: a fixed, documented value (uuid5 of our URL),
# so every delivery of every worker finds what an earlier one marked.
DEFAULT_APPLICATION_GUID = str(
    uuid.uuid5(uuid.NAMESPACE_URL, "https://fieldbridge.app/servicetitan")
)
# Job.Priority -> Crm.V2.Priority (tenant-crm-v2.yml: Low | Normal | High | Urgent); the jpm
# JobCreateRequest types `priority` as a plain string.
PRIORITIES = {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}
# (payload option, integration config default, JobCreateRequest field): required references.
JOB_REFERENCES = (
    ("business_unit_id", "default_business_unit_id", "businessUnitId"),
    ("job_type_id", "default_job_type_id", "jobTypeId"),
    ("campaign_id", "default_campaign_id", "campaignId"),
)
DEFAULT_APPOINTMENT_MINUTES = 120
DEFAULT_APPOINTMENT_HOUR = 8
CUSTOMER_TYPES = ("Residential", "Commercial")  # Crm.V2.CustomerType


def job_create(provider: ServiceTitanProvider, payload: dict, *, idempotency_key: str) -> dict:
    """Create the booking's job (find or create its customer and location first); see the
    module docstring. Returns {"job_id", "customer_id", "location_id", "created", …}."""
    request = _job_request(provider, payload)
    customer_id = _find_customer(provider, request)
    location_id = None
    if customer_id is not None:
        existing = _find_booked_job(provider, customer_id, request)
        if existing is not None:
            return _confirm_job(provider, existing["id"], request, created=False)
    # After looking for the job an earlier delivery created (a reference deactivated since
    # must not dead-letter a booking that is done), before anything is created.
    _check_job_references(provider, request["references"])
    if customer_id is not None:
        location_id = _find_location(provider, customer_id, request["address"])
    if customer_id is None:
        customer_id, location_id = _create_customer(provider, request)
    if location_id is None:
        location_id = _create_location(provider, customer_id, request)
    body = {
        "customerId": customer_id,
        "locationId": location_id,
        **request["references"],
        "priority": request["priority"],
        "appointments": [request["appointment"]],
        "summary": request["summary"],
        "externalData": {
            "applicationGuid": request["guid"],
            "externalData": [{"key": BOOKING_KEY, "value": request["reference"]}],
        },
    }
    created = (
        provider.get_client()
        .request("POST", provider.path("jpm", "jobs"), json_body=body, idempotent=False)
        .json()
    )
    if not isinstance(created, dict) or not created.get("id"):
        raise ProviderError("servicetitan: the job create answer has no id", provider=provider.key)
    return _confirm_job(provider, created["id"], request, created=True)


# Job reference -> (module, path, our option name, label) of its GET by id. Campaigns have
# none: the specs we hold have no marketing module, so a wrong campaignId is only caught by
# the job POST itself (whose 400 names it), after the customer and location exist.
REFERENCE_LOOKUPS = {
    "businessUnitId": ("settings", "business-units", "business_unit_id", "Business unit"),
    "jobTypeId": ("jpm", "job-types", "job_type_id", "Job type"),
}


def _check_job_references(provider: ServiceTitanProvider, references: dict[str, int]) -> None:
    """Read the business unit (`GET settings/…/business-units/{id}`, BusinessUnits_Get in
    tenant-settings-v2.yml) and the job type (`GET jpm/…/job-types/{id}`, JobTypes_Get in
    tenant-jpm-v2.yml) before anything is created: one that does not exist or is inactive is
    a ProviderValidationError naming its option, so a bad reference never leaves an orphan
    customer and location behind. Every reference is checked, and all failures reported."""
    errors: dict[str, list[str]] = {}
    for field, (module, path, option, label) in REFERENCE_LOOKUPS.items():
        reference_id = references.get(field)
        if reference_id is None:
            continue
        try:
            record = provider.get_client().get_record(
                provider.path(module, f"{path}/{reference_id}")
            )
        except ProviderNotFoundError:
            record = None
        if not isinstance(record, dict) or record.get("active") is False:
            state = "does not exist" if not isinstance(record, dict) else "is inactive"
            errors[option] = [f"{label} {reference_id} {state} in ServiceTitan."]
    if errors:
        raise ProviderValidationError(
            f"servicetitan: the job cannot be created: check {', '.join(sorted(errors))}",
            provider=provider.key,
            field_errors=errors,
        )


def application_guid(provider: ServiceTitanProvider) -> str:
    raw = provider.context.config.get(APPLICATION_GUID_SETTING) or integration_setting(
        provider.key, "APPLICATION_GUID", DEFAULT_APPLICATION_GUID
    )
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        message = f"servicetitan: {APPLICATION_GUID_SETTING} must be a GUID"
        raise ProviderValidationError(
            message, provider=provider.key, field_errors={APPLICATION_GUID_SETTING: [message]}
        ) from None


def _int_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    text = str(value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def _text(value) -> str:
    return str(value).strip() if value is not None else ""


def _job_request(provider: ServiceTitanProvider, payload: dict) -> dict:
    """Everything the job needs, checked before the first request: a missing or malformed
    reference is a ProviderValidationError naming every field at once."""
    config = provider.context.config
    errors: dict[str, list[str]] = {}
    reference = _text(payload.get("reference"))
    if not reference:
        errors["reference"] = ["The booking reference is required."]
    customer = payload.get("customer") or {}
    address = payload.get("address") or {}
    job = payload.get("job") or {}
    options = payload.get("options") or {}
    if not all(isinstance(x, dict) for x in (customer, address, job, options)):
        raise ProviderValidationError(
            "servicetitan: customer, address, job and options must be objects",
            provider=provider.key,
        )
    name = _text(customer.get("name"))
    if not name:
        errors["customer_name"] = ["The customer's name is required."]
    references: dict[str, int] = {}
    for option, default, field in JOB_REFERENCES:
        raw = options.get(option)
        source = option
        if raw in (None, ""):
            raw, source = config.get(default), default
        if raw in (None, ""):
            errors[option] = [
                f"ServiceTitan requires {field} to create a job: give options.{option} or set "
                f"the integration setting {default!r}."
            ]
        elif _int_id(raw) is None:
            errors[option] = [f"{source} must be a ServiceTitan id (a positive integer)."]
        else:
            references[field] = _int_id(raw)
    # Crm.V2.Customers.CustomerAddress: street, city, state, zip and country are required.
    st_address = {
        "street": _text(address.get("street")),
        "unit": _text(address.get("street2")) or None,
        "city": _text(address.get("city")),
        "state": _text(address.get("region")),
        "zip": _text(address.get("postal_code")),
        "country": _text(address.get("country")) or _text(config.get("default_country")) or "US",
    }
    for field, ours in (
        ("street", "street"),
        ("city", "city"),
        ("state", "region"),
        ("zip", "postal_code"),
    ):
        if not st_address[field]:
            errors[ours] = [f"ServiceTitan requires the address's {field} ({ours})."]
    priority = PRIORITIES.get(_text(job.get("priority")).lower() or "normal")
    if priority is None:
        errors["priority"] = [f"Choose one of {', '.join(PRIORITIES)}."]
    customer_type = _text(options.get("customer_type")) or "Residential"
    if customer_type not in CUSTOMER_TYPES:
        errors["customer_type"] = [f"Choose one of {', '.join(CUSTOMER_TYPES)}."]
    technicians = options.get("technician_ids") or []
    if not isinstance(technicians, list) or any(_int_id(t) is None for t in technicians):
        errors["technician_ids"] = ["Give a list of ServiceTitan technician ids."]
        technicians = []
    appointment = _appointment(provider, job, errors)
    if technicians and appointment:
        appointment["technicianIds"] = [_int_id(t) for t in technicians]
    if errors:
        fields = ", ".join(sorted(errors))
        raise ProviderValidationError(
            f"servicetitan: the job cannot be created: check {fields}",
            provider=provider.key,
            field_errors=errors,
        )
    summary = _text(job.get("summary"))
    description = _text(job.get("description"))
    contacts = []
    if _text(customer.get("email")):
        contacts.append({"type": "Email", "value": _text(customer.get("email"))})
    if _text(customer.get("phone")):
        contacts.append({"type": "Phone", "value": _text(customer.get("phone"))})
    return {
        "reference": reference,
        "guid": application_guid(provider),
        "customer_external_id": _text(customer.get("external_id")),
        "name": name,
        "phone": _text(customer.get("phone")),
        "contacts": contacts,
        "customer_type": customer_type,
        "address": {k: v for k, v in st_address.items() if v is not None},
        "references": references,
        "priority": priority,
        "appointment": appointment,
        "summary": f"{summary}\n\n{description}" if description else summary,
    }


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _appointment(provider: ServiceTitanProvider, job: dict, errors: dict) -> dict:
    """Crm.V2.AppointmentInformation: start and end (UTC) required; the arrival window is the
    booking's requested time. Without a scheduled start: tomorrow at 08:00 in the
    integration's `timezone` (UTC when unset); without an end: start + `default_appointment_
    minutes` (120)."""
    config = provider.context.config
    minutes = _int_id(config.get("default_appointment_minutes")) or DEFAULT_APPOINTMENT_MINUTES
    parsed: dict[str, datetime | None] = {}
    for name in ("scheduled_start", "scheduled_end"):
        raw = job.get(name)
        if raw in (None, ""):
            parsed[name] = None
            continue
        try:
            value = datetime.fromisoformat(str(raw))
        except ValueError:
            errors[name] = ["Enter an ISO 8601 date and time."]
            continue
        if value.tzinfo is None:
            errors[name] = ["Include the time zone offset."]
            continue
        parsed[name] = value
    if set(errors) & {"scheduled_start", "scheduled_end"}:
        return {}
    start, end = parsed["scheduled_start"], parsed["scheduled_end"]
    if start is None:
        try:
            zone = ZoneInfo(str(config.get("timezone") or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        tomorrow = datetime.now(zone).date() + timedelta(days=1)
        start = datetime.combine(tomorrow, time(DEFAULT_APPOINTMENT_HOUR), tzinfo=zone)
        end = None
    if end is None:
        end = start + timedelta(minutes=minutes)
    if end <= start:
        errors["scheduled_end"] = ["The appointment must end after it starts."]
        return {}
    return {
        "start": _utc(start),
        "end": _utc(end),
        "arrivalWindowStart": _utc(start),
        "arrivalWindowEnd": _utc(end),
    }


def _same(a, b) -> bool:
    def norm(value) -> str:
        return " ".join(str(value or "").replace(",", " ").replace(".", " ").split()).casefold()

    return norm(a) == norm(b)


def _address_matches(found: dict | None, wanted: dict) -> bool:
    found = found or {}
    return all(_same(found.get(k), wanted.get(k)) for k in ("street", "city", "zip")) and (
        _same(found.get("unit"), wanted.get("unit"))
    )


def _find_customer(provider: ServiceTitanProvider, request: dict) -> int | None:
    """The booking's customer: its synced id when given (it must exist and be active), else an
    active customer with the same name and bill-to address (`name`, `street`, `zip` filters,
    Customers_GetList), else one with the same name and phone (`phone` filter: "by phone number
    of contacts"). The filters narrow the search; the match is checked here. The oldest
    match wins, so every delivery picks the same one."""
    client = provider.get_client()
    if request["customer_external_id"]:
        customer_id = _int_id(request["customer_external_id"])
        found = None
        if customer_id is not None:
            try:
                found = client.get_record(provider.path("crm", f"customers/{customer_id}"))
            except ProviderNotFoundError:
                found = None
        if customer_id is None or found is None or found.get("active") is False:
            state = "does not exist" if not found else "is inactive"
            message = f"servicetitan: customer {request['customer_external_id']} {state}"
            raise ProviderValidationError(
                message, provider=provider.key, field_errors={"customer": [message]}
            )
        return customer_id
    address = request["address"]
    searches = [{"name": request["name"], "street": address["street"], "zip": address["zip"]}]
    if request["phone"]:
        searches.append({"name": request["name"], "phone": request["phone"]})
    for params in searches:
        matches = []
        for page in client.iter_pages(
            provider.path("crm", "customers"), params=params, max_pages=provider.max_pages
        ):
            for customer in page:
                if not _same(customer.get("name"), request["name"]):
                    continue
                if "street" in params and not _address_matches(customer.get("address"), address):
                    continue
                matches.append(int(customer["id"]))
        if matches:
            return min(matches)
    return None


def _find_location(provider: ServiceTitanProvider, customer_id: int, address: dict) -> int | None:
    """The customer's active location at the booking's address (Locations_GetList filters
    `customerId`, `street`, `zip`; the match is checked here)."""
    params = {"customerId": customer_id, "street": address["street"], "zip": address["zip"]}
    matches = [
        int(location["id"])
        for page in provider.get_client().iter_pages(
            provider.path("crm", "locations"), params=params, max_pages=provider.max_pages
        )
        for location in page
        if location.get("customerId") == customer_id
        and _address_matches(location.get("address"), address)
    ]
    return min(matches) if matches else None


def _marked(job: dict, request: dict) -> bool:
    return any(
        item.get("key") == BOOKING_KEY and item.get("value") == request["reference"]
        for item in job.get("externalData") or ()
    )


def _find_booked_job(
    provider: ServiceTitanProvider, customer_id: int, request: dict
) -> dict | None:
    """A job of this customer that carries our booking's externalData. Jobs_GetList has no
    filter on externalData values: `externalDataApplicationGuid` makes each job carry our
    app's externalData, and the customer narrows the list (the job is created for it)."""
    for page in provider.get_client().iter_pages(
        provider.path("jpm", "jobs"),
        params={"customerId": customer_id, "externalDataApplicationGuid": request["guid"]},
        max_pages=provider.max_pages,
    ):
        for job in page:
            if _marked(job, request):
                return job
    return None


def _create_customer(provider: ServiceTitanProvider, request: dict) -> tuple[int, int | None]:
    """Customers_Create with the service address as bill-to and as the first location (the
    request requires `locations`), and the e-mail/phone as contacts. Returns the customer's id
    and its new location's id (CreatedCustomerResponse.locations)."""
    location: dict = {"name": request["name"], "address": request["address"]}
    body: dict = {
        "name": request["name"],
        "type": request["customer_type"],
        "address": request["address"],
        "locations": [location],
    }
    if request["contacts"]:
        body["contacts"] = request["contacts"]
    created = (
        provider.get_client()
        .request("POST", provider.path("crm", "customers"), json_body=body, idempotent=False)
        .json()
    )
    if not isinstance(created, dict) or not created.get("id"):
        raise ProviderError(
            "servicetitan: the customer create answer has no id", provider=provider.key
        )
    locations = [
        loc
        for loc in created.get("locations") or ()
        if _address_matches(loc.get("address"), request["address"])
    ]
    return int(created["id"]), (int(locations[0]["id"]) if locations else None)


def _create_location(provider: ServiceTitanProvider, customer_id: int, request: dict) -> int:
    body = {"name": request["name"], "address": request["address"], "customerId": customer_id}
    created = (
        provider.get_client()
        .request("POST", provider.path("crm", "locations"), json_body=body, idempotent=False)
        .json()
    )
    if not isinstance(created, dict) or not created.get("id"):
        raise ProviderError(
            "servicetitan: the location create answer has no id", provider=provider.key
        )
    return int(created["id"])


def _confirm_job(provider: ServiceTitanProvider, job_id, request: dict, *, created: bool) -> dict:
    """Read the job back (with our externalData) and check it is the booking's."""
    job = (
        provider.get_client()
        .get(
            provider.path("jpm", f"jobs/{int(job_id)}"),
            params={"externalDataApplicationGuid": request["guid"]},
            use_cache=False,
        )
        .json()
    )
    if not isinstance(job, dict) or not _marked(job, request):
        raise ProviderError(
            f"servicetitan: job {job_id} does not read back as booking {request['reference']}",
            provider=provider.key,
        )
    return {
        "job_id": str(job["id"]),
        "job_number": str(job.get("jobNumber") or ""),
        "customer_id": str(job.get("customerId")),
        "location_id": str(job.get("locationId")),
        "status": job.get("jobStatus"),
        "created": created,
    }


# --- job.status -------------------------------------------------------------------------------

JOB_CHANGES = {
    # change: (PUT …/jobs/{id}/<operation>, the status it leads to)
    "hold": ("hold", "Hold"),
    "complete": ("complete", "Completed"),
    "cancel": ("cancel", "Canceled"),
    "remove_cancellation": ("remove-cancellation", None),
}
TERMINAL = ("Completed", "Canceled")


def job_status_done(change: str, status: str) -> bool:
    """Whether the change is already in effect for a job with this jobStatus."""
    if change == "remove_cancellation":
        return status != "Canceled"
    return status == JOB_CHANGES[change][1]


def job_status_refusal(change: str, status: str) -> str | None:
    """Why a change cannot apply to a job in this status (None: it can, or it is done)."""
    if job_status_done(change, status):
        return None
    if change in ("hold", "complete", "cancel") and status in TERMINAL:
        return f"the job is {status}"
    return None


def job_status(provider: ServiceTitanProvider, payload: dict, *, idempotency_key: str) -> dict:
    """Hold, complete, cancel or un-cancel a job (Jobs_Hold, Jobs_Complete, Jobs_Cancel,
    Jobs_RemoveCancellation). Reads jobStatus first: a change in effect is not sent again,
    an impossible one (e.g. completing a cancelled job) is a ProviderConflictError."""
    job_id = _int_id(payload.get("job_external_id"))
    change = payload.get("change")
    errors: dict[str, list[str]] = {}
    if job_id is None:
        errors["job_external_id"] = ["The ServiceTitan job id (an integer) is required."]
    if change not in JOB_CHANGES:
        errors["change"] = [f"Choose one of {', '.join(JOB_CHANGES)}."]
    reason_id = _int_id(payload.get("reason_id"))
    if change in ("hold", "cancel") and reason_id is None:
        kind = "hold" if change == "hold" else "cancel"
        errors["reason_id"] = [f"A job {kind} reason id (job-{kind}-reasons) is required."]
    if errors:
        raise ProviderValidationError(
            f"servicetitan: the job status change is invalid: check {', '.join(sorted(errors))}",
            provider=provider.key,
            field_errors=errors,
        )
    path = provider.path("jpm", f"jobs/{job_id}")
    status = _job_status_name(provider, path)
    done = job_status_done(change, status)
    refusal = job_status_refusal(change, status)
    if refusal:
        raise ProviderConflictError(
            f"servicetitan: job {job_id} cannot {change.replace('_', ' ')}: {refusal}",
            provider=provider.key,
        )
    if not done:
        operation, _ = JOB_CHANGES[change]
        memo = _text(payload.get("memo")) or f"Changed in Fieldbridge [{idempotency_key}]"
        body: dict | None = None
        if change in ("hold", "cancel"):
            body = {"reasonId": reason_id, "memo": memo}
        elif change == "complete":
            body = {"completedOn": _utc(datetime.now(UTC))}
        try:
            provider.get_client().request(
                "PUT", f"{path}/{operation}", json_body=body, idempotent=False
            )
        except (ProviderValidationError, ProviderConflictError):
            # Refused: fine if it is refused because it is done (an earlier send landed).
            if not job_status_done(change, _job_status_name(provider, path)):
                raise
    confirmed = _job_status_name(provider, path)
    if not job_status_done(change, confirmed):
        raise ProviderError(
            f"servicetitan: job {job_id} reads back as {confirmed!r} after {change}",
            provider=provider.key,
        )
    return {"job_id": str(job_id), "change": change, "status": confirmed, "already_done": done}


def _job_status_name(provider: ServiceTitanProvider, path: str) -> str:
    return str(provider.get_client().get_record(path).get("jobStatus") or "")
