"""ServiceTitan writes: estimate sell/dismiss, estimate item delete, job notes; customer,
location and job creation and job status changes (``ServiceTitanJobWrites``, described in the
section comment before it, with the customer/location searches and job externalData).

Written from the official specs (``shared/provider-specs/servicetitan/tenant-salestech-v2.yml``
and ``tenant-jpm-v2.yml``, "the spec"); nothing here may import the ServiceTitan client
(STYLE.md §1). ``ServiceTitanApi`` (``servicetitan.py``) mixes ``ServiceTitanWrites`` in.

Routes (sandbox root + ``/servicetitan``):

- ``PUT  /sales/v2/tenant/{t}/estimates/{id}/sell``  body ``Estimates.V2.SellRequest``
  ``{"soldBy": int64}`` (required, ``additionalProperties: false``). 200 with the sold
  ``EstimateResponse``: status ``{"value": 1, "name": "Sold"}``, ``soldOn`` now, ``soldBy``; the
  estimate's job gets ``soldById`` (the seeder's invariant) [spec: Estimates_Sell].
- ``PUT  /sales/v2/tenant/{t}/estimates/{id}/dismiss``  no body; 200 with no content; status
  ``{"value": 2, "name": "Dismissed"}`` (the record stays, active) [spec: Estimates_Dismiss;
  NOTES.md §2 "Dismissed estimates keep their record with a status"].
- ``DELETE /sales/v2/tenant/{t}/estimates/{id}/items/{itemId}``  200 with no content; the item
  leaves the estimate's ``items`` [spec: Estimates_DeleteItem].
- ``GET|POST /jpm/v2/tenant/{t}/jobs/{id}/notes``  page/pageSize list of ``Crm.V2.NoteResponse``
  (oldest first) and create from ``Crm.V2.JobNoteCreateRequest`` ``{text, pinToTop?}``; 404 for
  an unknown job [spec: Jobs_GetNotes, Jobs_CreateNote].

Errors are ``ApiErrorResponse`` problem details (the spec's 400). Business rules the spec does
not spell out, chosen so a client that does not read before it writes is caught [mem: the
real API's exact wording and status are unknown]:

- sell: ``soldBy`` must be an active technician (400, ``errors.soldBy``); an estimate that is
  Sold already, Dismissed, or inactive is refused (400, the reason in ``title``);
- dismiss: a Sold or already Dismissed or inactive estimate is refused (400, ``title``);
- item delete: only on an Open estimate (400, ``title``); an unknown item is 404;
- an unknown estimate is 404 (undocumented for these operations, as for Estimates_Get);
- request bodies must be JSON objects with the schema's fields only (400 ``errors`` per field;
  unknown fields are refused to catch client typos, although ASP.NET would ignore them).

Stats: writes are counted by ``app.Stats`` (``writes_total``, ``writes_by_path``); a write that
changed the store counts in ``writes_applied`` under ``estimates/{id}`` (sell, dismiss),
``estimate-items/{itemId}`` (delete) or ``job-notes/{noteId}`` (create). Refused writes count
in neither ``writes_applied`` key, so "sold exactly once" is ``writes_applied["estimates/<id>"]
== 1``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import MultiDict
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.sandbox.app import Endpoint, json_text_response
from integrations.sandbox.store import Collection, Condition, dumps, iso_utc, now_us, to_us

if TYPE_CHECKING:
    from integrations.sandbox.servicetitan import ServiceTitanApi

PROVIDER = "servicetitan"
_INT64_MAX = 2**63 - 1
# EstimateStatusModel {value, name}; the seeder's values (Dismissed = 2 [3p], others [mem]).
STATUS_OPEN = {"value": 0, "name": "Open"}
STATUS_SOLD = {"value": 1, "name": "Sold"}
STATUS_DISMISSED = {"value": 2, "name": "Dismissed"}
NOTES_OBJECT = "job-notes"
# Crm.V2.NoteResponse.createdById: the API user that wrote the note; an app has no user id in
# the sandbox, so 0 [mem].
APP_USER_ID = 0
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 5000


def _is_int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT64_MAX


def check_sell_request(body: Any) -> dict[str, list[str]]:
    """``Estimates.V2.SellRequest``: required int64 ``soldBy``, nothing else."""
    if body is None:
        return {"soldBy": ["The soldBy field is required."]}
    if not isinstance(body, dict):
        return {"request": ["The request body must be a JSON object."]}
    errors: dict[str, list[str]] = {}
    for name in sorted(set(body) - {"soldBy"}):
        errors[name] = [f"Could not find member '{name}' on object of type 'SellRequest'."]
    if "soldBy" not in body or body["soldBy"] is None:
        errors["soldBy"] = ["The soldBy field is required."]
    elif not _is_int64(body["soldBy"]):
        errors["soldBy"] = ["The JSON value could not be converted to System.Int64."]
    return errors


def check_note_request(body: Any) -> dict[str, list[str]]:
    """``Crm.V2.JobNoteCreateRequest``: required string ``text``, optional boolean ``pinToTop``."""
    if body is None:
        return {"text": ["The text field is required."]}
    if not isinstance(body, dict):
        return {"request": ["The request body must be a JSON object."]}
    errors: dict[str, list[str]] = {}
    for name in sorted(set(body) - {"text", "pinToTop"}):
        errors[name] = [f"Could not find member '{name}' on object of type 'JobNoteCreateRequest'."]
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        errors["text"] = ["The text field is required."]
    if body.get("pinToTop") is not None and not isinstance(body["pinToTop"], bool):
        errors["pinToTop"] = ["The JSON value could not be converted to System.Boolean."]
    return errors


def sell_refusal(status_name: str, active: bool) -> str | None:
    if not active:
        return "The estimate is inactive and cannot be sold."
    if status_name == "Sold":
        return "The estimate is already sold."
    if status_name == "Dismissed":
        return "A dismissed estimate cannot be sold."
    return None


def dismiss_refusal(status_name: str, active: bool) -> str | None:
    if not active:
        return "The estimate is inactive and cannot be dismissed."
    if status_name == "Sold":
        return "A sold estimate cannot be dismissed."
    if status_name == "Dismissed":
        return "The estimate is already dismissed."
    return None


def _status_name(data: dict[str, Any]) -> str:
    status = data.get("status")
    return str(status.get("name") or "") if isinstance(status, dict) else ""


class ServiceTitanWrites:
    """Write handlers; see the module docstring. Mixed into ``ServiceTitanApi``."""

    _write_lock = threading.Lock()

    # --- helpers -------------------------------------------------------------------------------

    def _begin_estimate(
        self: ServiceTitanApi, request: Request, tenant: str, module: str, resource: str, rid: str
    ) -> tuple[Collection, int] | Response:
        begun = self._begin(request, module, tenant, resource)
        if isinstance(begun, Response):
            return begun
        if not rid.isdigit() or int(rid) > _INT64_MAX:
            return self.problem(404)  # {id} is int64 in the spec: no route matches
        return Collection(PROVIDER, tenant, resource), int(rid)

    def _json_object(self: ServiceTitanApi, request: Request) -> Any:
        """The JSON body (None when there is none), or a 400 Response."""
        raw = request.get_data()
        if not raw.strip():
            return None
        if request.mimetype not in ("application/json", "text/json") and not (
            request.mimetype.endswith("+json")
        ):
            return self.problem(415, "Unsupported Media Type")
        try:
            return json.loads(raw)
        except ValueError:
            return self.problem(400, errors={"request": ["The request body is not valid JSON."]})

    # --- estimates -----------------------------------------------------------------------------

    def sell_estimate(self: ServiceTitanApi, request: Request, tenant: str, rid: str) -> Response:
        begun = self._begin_estimate(request, tenant, "sales", "estimates", rid)
        if isinstance(begun, Response):
            return begun
        collection, estimate_id = begun
        body = self._json_object(request)
        if isinstance(body, Response):
            return body
        errors = check_sell_request(body)
        if errors:
            return self.problem(400, errors=errors)
        sold_by = body["soldBy"]
        with self._write_lock:
            record = self.store.get(collection, estimate_id)
            if record is None:
                return self.problem(404, "Estimate not found")
            technician = self.store.get(Collection(PROVIDER, tenant, "technicians"), sold_by)
            if technician is None or not technician.active:
                state = "does not exist" if technician is None else "is not active"
                return self.problem(
                    400, errors={"soldBy": [f"Technician with id {sold_by} {state}."]}
                )
            data = record.data
            refusal = sell_refusal(_status_name(data), bool(record.active))
            if refusal:
                return self.problem(400, refusal)
            now = now_us()
            data.update(status=dict(STATUS_SOLD), soldOn=iso_utc(now), soldBy=sold_by)
            record = self.store.upsert(collection, estimate_id, data, active=True, modified_us=now)
            self.app.stats.write_applied(PROVIDER, f"estimates/{estimate_id}")
            self._mark_job_sold(tenant, data.get("jobId"), sold_by, now)
        return json_text_response(self.render_record(collection, record))

    def _mark_job_sold(
        self: ServiceTitanApi, tenant: str, job_id: Any, sold_by: int, now: int
    ) -> None:
        """A sold estimate's technician is its job's ``soldById`` (derived, not counted)."""
        if not _is_int64(job_id):
            return
        jobs = Collection(PROVIDER, tenant, "jobs")
        job = self.store.get(jobs, job_id)
        if job is None or job.data.get("soldById") == sold_by:
            return
        data = job.data
        data["soldById"] = sold_by
        self.store.upsert(jobs, job_id, data, active=bool(job.active), modified_us=now)

    def dismiss_estimate(
        self: ServiceTitanApi, request: Request, tenant: str, rid: str
    ) -> Response:
        begun = self._begin_estimate(request, tenant, "sales", "estimates", rid)
        if isinstance(begun, Response):
            return begun
        collection, estimate_id = begun
        with self._write_lock:
            record = self.store.get(collection, estimate_id)
            if record is None:
                return self.problem(404, "Estimate not found")
            data = record.data
            refusal = dismiss_refusal(_status_name(data), bool(record.active))
            if refusal:
                return self.problem(400, refusal)
            data["status"] = dict(STATUS_DISMISSED)
            self.store.upsert(collection, estimate_id, data, active=True)
            self.app.stats.write_applied(PROVIDER, f"estimates/{estimate_id}")
        return Response(status=200)

    def delete_estimate_item(
        self: ServiceTitanApi, request: Request, tenant: str, rid: str, item_id: str
    ) -> Response:
        begun = self._begin_estimate(request, tenant, "sales", "estimates", rid)
        if isinstance(begun, Response):
            return begun
        collection, estimate_id = begun
        if not item_id.isdigit() or int(item_id) > _INT64_MAX:
            return self.problem(404)
        with self._write_lock:
            record = self.store.get(collection, estimate_id)
            if record is None:
                return self.problem(404, "Estimate not found")
            data = record.data
            items = data.get("items") or []
            kept = [item for item in items if item.get("id") != int(item_id)]
            if len(kept) == len(items):
                return self.problem(404, "Estimate item not found")
            status = _status_name(data)
            if status != "Open" or not record.active:
                state = status.lower() if record.active else "inactive"
                return self.problem(400, f"Items of a {state} estimate cannot be changed.")
            data["items"] = kept
            self.store.upsert(collection, estimate_id, data, active=True)
            self.app.stats.write_applied(PROVIDER, f"estimate-items/{item_id}")
        return Response(status=200)

    # --- job notes -----------------------------------------------------------------------------

    def _job_for_notes(
        self: ServiceTitanApi, request: Request, tenant: str, rid: str
    ) -> tuple[Collection, int] | Response:
        begun = self._begin_estimate(request, tenant, "jpm", "jobs", rid)
        if isinstance(begun, Response):
            return begun
        jobs, job_id = begun
        if self.store.get(jobs, job_id) is None:
            return self.problem(404, "Job not found")
        return Collection(PROVIDER, tenant, NOTES_OBJECT), job_id

    def list_job_notes(self: ServiceTitanApi, request: Request, tenant: str, rid: str) -> Response:
        begun = self._job_for_notes(request, tenant, rid)
        if isinstance(begun, Response):
            return begun
        notes, job_id = begun
        errors: dict[str, list[str]] = {}
        page = _int_param(request, "page", 1, 1, 2**31 - 1, errors)
        page_size = _int_param(request, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE, errors)
        include_total = (request.args.get("includeTotal") or "").strip().lower()
        if include_total not in ("", "true", "false"):
            errors["includeTotal"] = [f"The value '{include_total}' is not valid."]
        if errors:
            return self.problem(400, errors=errors)
        conditions = [Condition("data.jobId", "eq", job_id)]
        rows = self.store.list_offset(
            notes, conditions=conditions, offset=(page - 1) * page_size, limit=page_size + 1
        )
        has_more = len(rows) > page_size
        total = self.store.count(notes, conditions=conditions) if include_total == "true" else None
        data = ",".join(_render_note(r.data, r.modified_us) for r in rows[:page_size])
        body = (
            f'{{"page":{page},"pageSize":{page_size},'
            f'"hasMore":{"true" if has_more else "false"},'
            f'"totalCount":{"null" if total is None else total},"data":[{data}]}}'
        )
        return json_text_response(body)

    def create_job_note(self: ServiceTitanApi, request: Request, tenant: str, rid: str) -> Response:
        begun = self._job_for_notes(request, tenant, rid)
        if isinstance(begun, Response):
            return begun
        notes, job_id = begun
        body = self._json_object(request)
        if isinstance(body, Response):
            return body
        errors = check_note_request(body)
        if errors:
            return self.problem(400, errors=errors)
        now = now_us()
        data = {
            "jobId": job_id,
            "text": body["text"],
            "isPinned": bool(body.get("pinToTop")),
            "createdById": APP_USER_ID,
            "createdOn": iso_utc(now),
        }
        note_id = self.new_record_id(notes)
        self.store.upsert(notes, note_id, data, modified_us=now)
        self.app.stats.write_applied(PROVIDER, f"{NOTES_OBJECT}/{note_id}")
        return json_text_response(_render_note(data, now))


def _render_note(data: dict[str, Any], modified_us: int) -> str:
    """``Crm.V2.NoteResponse``: no id (the schema forbids additional properties)."""
    return dumps(
        {
            "text": data.get("text") or "",
            "isPinned": bool(data.get("isPinned")),
            "createdById": int(data.get("createdById") or 0),
            "createdOn": data.get("createdOn") or iso_utc(modified_us),
            "modifiedOn": iso_utc(modified_us),
        }
    )


def _int_param(
    request: Request, name: str, default: int, lo: int, hi: int, errors: dict[str, list[str]]
) -> int:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = [f"The value '{raw}' is not valid."]
        return default
    if not lo <= value <= hi:
        errors[name] = [f"The field {name} must be between {lo} and {hi}."]
        return default
    return value


# --- customers, locations, jobs (job creation and status) ---------------------------------------
#
# Routes (sandbox root + ``/servicetitan``; spec: tenant-crm-v2.yml, tenant-jpm-v2.yml):
#
# - ``POST /crm/v2/tenant/{t}/customers``  CreateCustomerRequest {name, address, locations[]
#   required; type, doNotMail, doNotService, contacts, customFields}: stores the customer, its
#   locations and contacts; 200 CreatedCustomerResponse (the customer with ``locations`` as
#   CreateLocationResponse and ``contacts`` as CustomerContact) [spec: Customers_Create].
# - ``POST /crm/v2/tenant/{t}/locations``  CreateLocationRequest {name, address, customerId}:
#   the customer must exist (400 ``errors.customerId``); 200 CreateLocationResponse.
# - ``GET …/customers`` with ``name street unit city state zip country phone`` and
#   ``GET …/locations`` with ``name street unit city state zip country``: case-insensitive
#   "contains" matches [mem: the real matching rule is not documented]; ``phone`` matches a
#   customer whose Phone/MobilePhone/Fax contact has the same digits.
# - ``POST /jpm/v2/tenant/{t}/jobs``  Crm.V2.JobCreateRequest: every required reference must
#   exist (customer active, location of that customer, business unit active, job type,
#   campaign, technicians active) and ``priority`` be a Crm.V2.Priority, else 400 with
#   ``errors{field: [...]}``. Creates the job ("Scheduled", jobNumber = id), one
#   ``appointments`` record per AppointmentInformation and an ``appointment-assignments``
#   record per technician. ``externalData`` (ExternalDataUpdateRequest) is kept per
#   applicationGuid and rendered only when a job is read with that
#   ``externalDataApplicationGuid`` (Jobs_Get, Jobs_GetList) [spec: "external data
#   corresponding to this application guid will be returned"]; otherwise ``externalData`` is [].
#   Campaigns (marketing module) have no spec file here: the seeded campaign ids plus any record
#   stored under the ``campaigns`` object (control API) exist.
# - ``PUT /jpm/v2/tenant/{t}/jobs/{id}/hold``  HoldJobRequest {reasonId, memo} (a reason stored
#   under ``job-hold-reasons``, active), ``/cancel`` CancelJobRequest {reasonId, memo}
#   (``job-cancel-reasons``), ``/complete`` CompleteJobRequest {completedOn},
#   ``/remove-cancellation`` (no body). Status rules [mem, except 409 for complete, which the
#   spec documents as "Job already completed or cancelled or has no assigned technicians"]:
#   hold from Scheduled/InProgress only (a held job is refused: "already on hold"); complete
#   from Scheduled/InProgress/Hold, with at least one assigned technician; cancel from any
#   status but Completed and Canceled; remove-cancellation only from Canceled (the job goes
#   back to Scheduled). Refusals are 400 with the reason in ``title`` (409 for complete). The
#   job's appointments follow (Hold, Done, Canceled, back to Scheduled).
#
# Stats: ``writes_applied`` counts ``customers/{id}``, ``locations/{id}``, ``jobs/{id}`` (the
# create and every status change that changed the job).

JOB_PRIORITIES = ("Low", "Normal", "High", "Urgent")  # Crm.V2.Priority
CONTACT_TYPES = ("Phone", "Email", "Fax", "MobilePhone")  # Crm.V2.ContactType
CUSTOMER_TYPES = ("Residential", "Commercial")  # Crm.V2.CustomerType
EXTERNAL_DATA_OBJECT = "job-external-data"
GUID_PARAM = "externalDataApplicationGuid"


class _Errors(dict):
    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)


def _unknown(body: dict, allowed: set[str], type_name: str, prefix: str, errors: _Errors) -> None:
    for name in sorted(set(body) - allowed):
        errors.add(
            f"{prefix}{name}", f"Could not find member '{name}' on object of type '{type_name}'."
        )


def _string(body: dict, name: str, prefix: str, errors: _Errors, *, required: bool) -> None:
    value = body.get(name)
    if value is None:
        if required:
            errors.add(f"{prefix}{name}", f"The {name} field is required.")
    elif not isinstance(value, str):
        errors.add(f"{prefix}{name}", "The JSON value could not be converted to System.String.")
    elif required and not value.strip():
        errors.add(f"{prefix}{name}", f"The {name} field is required.")


def _int64_field(body: dict, name: str, prefix: str, errors: _Errors, *, required: bool) -> None:
    value = body.get(name)
    if value is None:
        if required:
            errors.add(f"{prefix}{name}", f"The {name} field is required.")
    elif not _is_int64(value):
        errors.add(f"{prefix}{name}", "The JSON value could not be converted to System.Int64.")


def _date_time(
    body: dict, name: str, prefix: str, errors: _Errors, *, required: bool
) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            errors.add(f"{prefix}{name}", f"The {name} field is required.")
        return None
    try:
        parsed = datetime.fromisoformat(str(value)) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        errors.add(f"{prefix}{name}", "The JSON value could not be converted to System.DateTime.")
        return None
    return to_us(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def check_address(address: Any, prefix: str, errors: _Errors) -> None:
    """Crm.V2.Customers.CustomerAddress."""
    if not isinstance(address, dict):
        errors.add(prefix.rstrip("."), "The address field is required.")
        return
    allowed = {"street", "unit", "city", "state", "zip", "country", "latitude", "longitude"}
    _unknown(address, allowed, "CustomerAddress", prefix, errors)
    for name in ("street", "city", "state", "zip", "country"):
        _string(address, name, prefix, errors, required=True)
    _string(address, "unit", prefix, errors, required=False)
    for name in ("latitude", "longitude"):
        value = address.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            errors.add(f"{prefix}{name}", "The JSON value could not be converted to System.Double.")


def check_contacts(contacts: Any, prefix: str, errors: _Errors) -> None:
    """A nullable array of Crm.V2.Customers.NewCustomerContact {type, value, memo?}."""
    if contacts is None:
        return
    if not isinstance(contacts, list):
        errors.add(prefix, "The JSON value could not be converted to a list.")
        return
    for i, contact in enumerate(contacts):
        at = f"{prefix}[{i}]."
        if not isinstance(contact, dict):
            errors.add(at.rstrip("."), "The contact must be an object.")
            continue
        _unknown(contact, {"type", "value", "memo"}, "NewCustomerContact", at, errors)
        if contact.get("type") not in CONTACT_TYPES:
            errors.add(f"{at}type", f"The type field must be one of {', '.join(CONTACT_TYPES)}.")
        _string(contact, "value", at, errors, required=True)
        _string(contact, "memo", at, errors, required=False)


def check_custom_fields(fields: Any, prefix: str, errors: _Errors) -> None:
    """A nullable array of Crm.V2.Customers.CustomFieldUpdateModel {typeId, value}."""
    if fields is None:
        return
    if not isinstance(fields, list):
        errors.add(prefix, "The JSON value could not be converted to a list.")
        return
    for i, item in enumerate(fields):
        at = f"{prefix}[{i}]."
        if not isinstance(item, dict):
            errors.add(at.rstrip("."), "The custom field must be an object.")
            continue
        _unknown(item, {"typeId", "value"}, "CustomFieldUpdateModel", at, errors)
        _int64_field(item, "typeId", at, errors, required=True)
        _string(item, "value", at, errors, required=False)
        if item.get("value") is None:
            errors.add(f"{at}value", "The value field is required.")


def check_customer_request(body: Any) -> dict[str, list[str]]:
    """Crm.V2.Customers.CreateCustomerRequest."""
    errors = _Errors()
    if not isinstance(body, dict):
        errors.add("request", "The request body must be a JSON object.")
        return errors
    allowed = {
        "name", "type", "doNotMail", "doNotService", "locations", "address", "contacts",
        "customFields",
    }  # fmt: skip
    _unknown(body, allowed, "CreateCustomerRequest", "", errors)
    _string(body, "name", "", errors, required=True)
    if body.get("type") is not None and body["type"] not in CUSTOMER_TYPES:
        errors.add("type", f"The type field must be one of {', '.join(CUSTOMER_TYPES)}.")
    for name in ("doNotMail", "doNotService"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            errors.add(name, "The JSON value could not be converted to System.Boolean.")
    check_address(body.get("address"), "address.", errors)
    locations = body.get("locations")
    if not isinstance(locations, list) or not locations:
        errors.add("locations", "The locations field is required (at least one location).")
    else:
        for i, location in enumerate(locations):
            at = f"locations[{i}]."
            if not isinstance(location, dict):
                errors.add(at.rstrip("."), "The location must be an object.")
                continue
            _unknown(
                location, {"name", "address", "contacts", "customFields"}, "NewLocation", at, errors
            )
            _string(location, "name", at, errors, required=True)
            check_address(location.get("address"), f"{at}address.", errors)
            check_contacts(location.get("contacts"), f"{at}contacts", errors)
            check_custom_fields(location.get("customFields"), f"{at}customFields", errors)
    check_contacts(body.get("contacts"), "contacts", errors)
    check_custom_fields(body.get("customFields"), "customFields", errors)
    return dict(errors)


def check_location_request(body: Any) -> dict[str, list[str]]:
    """Crm.V2.Locations.CreateLocationRequest."""
    errors = _Errors()
    if not isinstance(body, dict):
        errors.add("request", "The request body must be a JSON object.")
        return errors
    allowed = {"name", "address", "contacts", "customFields", "customerId"}
    _unknown(body, allowed, "CreateLocationRequest", "", errors)
    _string(body, "name", "", errors, required=True)
    check_address(body.get("address"), "address.", errors)
    check_contacts(body.get("contacts"), "contacts", errors)
    check_custom_fields(body.get("customFields"), "customFields", errors)
    _int64_field(body, "customerId", "", errors, required=True)
    return dict(errors)


def check_job_request(
    body: Any,
) -> tuple[dict[str, list[str]], list[tuple[int, int, int | None, int | None]]]:
    """Crm.V2.JobCreateRequest; also returns the appointments as µs (start, end, window…)."""
    errors = _Errors()
    if not isinstance(body, dict):
        errors.add("request", "The request body must be a JSON object.")
        return errors, []
    allowed = {
        "customerId", "locationId", "businessUnitId", "jobTypeId", "priority", "campaignId",
        "appointments", "summary", "customFields", "tagTypeIds", "externalData",
    }  # fmt: skip
    _unknown(body, allowed, "JobCreateRequest", "", errors)
    for name in ("customerId", "locationId", "businessUnitId", "jobTypeId", "campaignId"):
        _int64_field(body, name, "", errors, required=True)
    priority = body.get("priority")
    if priority is None:
        errors.add("priority", "The priority field is required.")
    elif priority not in JOB_PRIORITIES:
        errors.add("priority", f"The priority must be one of {', '.join(JOB_PRIORITIES)}.")
    _string(body, "summary", "", errors, required=False)
    appointments: list[tuple[int, int, int | None, int | None]] = []
    raw = body.get("appointments")
    if not isinstance(raw, list) or not raw:
        errors.add("appointments", "The appointments field is required (at least one).")
        raw = []
    allowed_appointment = {
        "start",
        "end",
        "arrivalWindowStart",
        "arrivalWindowEnd",
        "technicianIds",
    }
    for i, item in enumerate(raw):
        at = f"appointments[{i}]."
        if not isinstance(item, dict):
            errors.add(at.rstrip("."), "The appointment must be an object.")
            continue
        _unknown(item, allowed_appointment, "AppointmentInformation", at, errors)
        times = [
            _date_time(item, name, at, errors, required=name in ("start", "end"))
            for name in ("start", "end", "arrivalWindowStart", "arrivalWindowEnd")
        ]
        start, end, window_start, window_end = times
        if start is not None and end is not None:
            if end <= start:
                errors.add(f"{at}end", "The end must be after the start.")
            appointments.append((start, end, window_start, window_end))
        if window_start is not None and window_end is not None and window_end < window_start:
            errors.add(f"{at}arrivalWindowEnd", "The arrival window must end after it starts.")
        technicians = item.get("technicianIds")
        if technicians is not None and (
            not isinstance(technicians, list) or not all(_is_int64(t) for t in technicians)
        ):
            errors.add(f"{at}technicianIds", "The technicianIds must be a list of ids.")
    for name in ("tagTypeIds",):
        value = body.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(_is_int64(v) for v in value)
        ):
            errors.add(name, f"The {name} must be a list of ids.")
    check_custom_fields(body.get("customFields"), "customFields", errors)
    external = body.get("externalData")
    if external is not None:
        check_external_data(external, "externalData.", errors)
    return dict(errors), appointments


def check_external_data(external: Any, prefix: str, errors: _Errors) -> None:
    """Crm.V2.ExternalDataUpdateRequest {applicationGuid (guid), externalData[{key, value}]}."""
    if not isinstance(external, dict):
        errors.add(prefix.rstrip("."), "The externalData must be an object.")
        return
    _unknown(
        external, {"applicationGuid", "externalData"}, "ExternalDataUpdateRequest", prefix, errors
    )
    if _guid(external.get("applicationGuid")) is None:
        errors.add(f"{prefix}applicationGuid", "The applicationGuid must be a GUID.")
    items = external.get("externalData")
    if not isinstance(items, list):
        errors.add(f"{prefix}externalData", "The externalData field is required.")
        return
    for i, item in enumerate(items):
        at = f"{prefix}externalData[{i}]."
        if not isinstance(item, dict):
            errors.add(at.rstrip("."), "The item must be an object.")
            continue
        _unknown(item, {"key", "value"}, "ExternalDataModel", at, errors)
        _string(item, "key", at, errors, required=True)
        if not isinstance(item.get("value"), str):
            errors.add(f"{at}value", "The value field is required.")


def check_reason_request(body: Any, type_name: str) -> dict[str, list[str]]:
    """Crm.V2.HoldJobRequest / CancelJobRequest: {reasonId, memo}, both required."""
    errors = _Errors()
    if body is None:
        body = {}
    if not isinstance(body, dict):
        errors.add("request", "The request body must be a JSON object.")
        return errors
    _unknown(body, {"reasonId", "memo"}, type_name, "", errors)
    _int64_field(body, "reasonId", "", errors, required=True)
    if not isinstance(body.get("memo"), str):
        errors.add("memo", "The memo field is required.")
    return dict(errors)


def _guid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else None
    except ValueError:
        return None


def hold_refusal(status: str) -> str | None:
    if status == "Hold":
        return "The job is already on hold."
    if status in ("Completed", "Canceled"):
        return f"A {status.lower()} job cannot be put on hold."
    return None


def cancel_refusal(status: str) -> str | None:
    if status == "Canceled":
        return "The job is already canceled."
    if status == "Completed":
        return "A completed job cannot be canceled."
    return None


def complete_refusal(status: str) -> str | None:
    if status in ("Completed", "Canceled"):
        return f"The job is already {status.lower()}."
    return None


# appointment status a job change leaves its open appointments in
_APPOINTMENT_AFTER = {
    "Hold": "Hold",
    "Completed": "Done",
    "Canceled": "Canceled",
    "Scheduled": "Scheduled",
}
_OPEN_APPOINTMENTS = {
    "Hold": ("Scheduled", "Dispatched", "Working"),
    "Completed": ("Scheduled", "Dispatched", "Working", "Hold"),
    "Canceled": ("Scheduled", "Dispatched", "Working", "Hold"),
    "Scheduled": ("Canceled", "Hold"),
}


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


class ServiceTitanJobWrites:
    """Customer, location and job writes; see the section comment. Mixed into
    ``ServiceTitanApi`` through ``ServiceTitanWrites``."""

    # --- helpers -------------------------------------------------------------------------------

    def _st(self: ServiceTitanApi, tenant: str, obj: str) -> Collection:
        return Collection(PROVIDER, tenant, obj)

    def _create_begin(
        self: ServiceTitanApi, request: Request, tenant: str, module: str, resource: str
    ) -> Any:
        begun = self._begin(request, module, tenant, resource)
        if isinstance(begun, Response):
            return begun
        body = self._json_object(request)
        return body

    def _new_address(self: ServiceTitanApi, address: dict) -> dict[str, Any]:
        return {
            "street": address["street"],
            "unit": address.get("unit"),
            "city": address["city"],
            "state": address["state"],
            "zip": address["zip"],
            "country": address["country"],
            "latitude": address.get("latitude"),
            "longitude": address.get("longitude"),
        }

    def _store_contacts(
        self: ServiceTitanApi,
        tenant: str,
        obj: str,
        owner: str,
        owner_id: int,
        contacts: Any,
        now: int,
    ) -> list[dict[str, Any]]:
        """Contacts as stored (the bulk lists' shapes: ``contacts`` and ``location-contacts``,
        see servicetitan_resources) and answered (CustomerContact / LocationContact: {id, type,
        value, memo})."""
        from integrations.sandbox.servicetitan_resources import (
            contact_defaults,
            location_contact_defaults,
        )

        answered = []
        collection = self._st(tenant, obj)
        for contact in contacts or ():
            contact_id = self.new_record_id(collection)
            data = contact_defaults() if obj == "contacts" else location_contact_defaults()
            data.pop("customerId" if obj != "contacts" else "locationId", None)
            data.update(type=contact["type"], value=contact["value"], memo=contact.get("memo"))
            data[owner] = owner_id
            if contact["type"] in ("Phone", "MobilePhone"):
                data["phoneSettings"] = {"phoneNumber": contact["value"], "doNotText": False}
            self.store.upsert(collection, contact_id, data, active=True, modified_us=now)
            answered.append(
                {
                    "id": contact_id,
                    "type": contact["type"],
                    "value": contact["value"],
                    "memo": contact.get("memo"),
                }
            )
        return answered

    def _store_location(
        self: ServiceTitanApi, tenant: str, customer_id: int, location: dict, now: int
    ) -> dict[str, Any]:
        from integrations.sandbox.servicetitan_resources import location_defaults

        collection = self._st(tenant, "locations")
        location_id = self.new_record_id(collection)
        data = location_defaults()
        data.update(
            customerId=customer_id,
            name=location["name"],
            address=self._new_address(location["address"]),
            customFields=_custom_fields(location.get("customFields")),
            createdOn=iso_utc(now),
            createdById=APP_USER_ID,
        )
        record = self.store.upsert(collection, location_id, data, active=True, modified_us=now)
        self.app.stats.write_applied(PROVIDER, f"locations/{location_id}")
        rendered = json.loads(self.render_record(collection, record))
        rendered["contacts"] = self._store_contacts(
            tenant, "location-contacts", "locationId", location_id, location.get("contacts"), now
        )
        return rendered

    # --- creates -------------------------------------------------------------------------------

    def create_customer(self: ServiceTitanApi, request: Request, tenant: str) -> Response:
        from integrations.sandbox.servicetitan_resources import customer_defaults

        body = self._create_begin(request, tenant, "crm", "customers")
        if isinstance(body, Response):
            return body
        errors = check_customer_request(body)
        if errors:
            return self.problem(400, errors=errors)
        now = now_us()
        collection = self._st(tenant, "customers")
        with self._write_lock:
            customer_id = self.new_record_id(collection)
            data = customer_defaults()
            data.update(
                name=body["name"].strip(),
                type=body.get("type") or "Residential",
                address=self._new_address(body["address"]),
                doNotMail=bool(body.get("doNotMail")),
                doNotService=bool(body.get("doNotService")),
                customFields=_custom_fields(body.get("customFields")),
                createdOn=iso_utc(now),
                createdById=APP_USER_ID,
            )
            record = self.store.upsert(collection, customer_id, data, active=True, modified_us=now)
            self.app.stats.write_applied(PROVIDER, f"customers/{customer_id}")
            answer = json.loads(self.render_record(collection, record))
            answer["locations"] = [
                self._store_location(tenant, customer_id, location, now)
                for location in body["locations"]
            ]
            answer["contacts"] = self._store_contacts(
                tenant, "contacts", "customerId", customer_id, body.get("contacts"), now
            )
        return json_text_response(dumps(answer))

    def create_location(self: ServiceTitanApi, request: Request, tenant: str) -> Response:
        body = self._create_begin(request, tenant, "crm", "locations")
        if isinstance(body, Response):
            return body
        errors = check_location_request(body)
        if errors:
            return self.problem(400, errors=errors)
        with self._write_lock:
            customer = self.store.get(self._st(tenant, "customers"), body["customerId"])
            if customer is None or not customer.active:
                state = "does not exist" if customer is None else "is inactive"
                return self.problem(
                    400, errors={"customerId": [f"Customer {body['customerId']} {state}."]}
                )
            answer = self._store_location(tenant, body["customerId"], body, now_us())
        return json_text_response(dumps(answer))

    def _reference_errors(self: ServiceTitanApi, tenant: str, body: dict) -> dict[str, list[str]]:
        from integrations.sandbox.seed_servicetitan import _CAMPAIGN_IDS as SEEDED_CAMPAIGNS

        errors = _Errors()

        def active(obj: str, rid: int) -> bool | None:
            record = self.store.get(self._st(tenant, obj), rid)
            return None if record is None else bool(record.active)

        customer = active("customers", body["customerId"])
        if not customer:
            state = "does not exist" if customer is None else "is inactive"
            errors.add("customerId", f"Customer {body['customerId']} {state}.")
        location = self.store.get(self._st(tenant, "locations"), body["locationId"])
        if location is None or not location.active:
            state = "does not exist" if location is None else "is inactive"
            errors.add("locationId", f"Location {body['locationId']} {state}.")
        elif location.data.get("customerId") != body["customerId"]:
            errors.add("locationId", f"Location {body['locationId']} is not the customer's.")
        for field, obj, label in (
            ("businessUnitId", "business-units", "Business unit"),
            ("jobTypeId", "job-types", "Job type"),
        ):
            state = active(obj, body[field])
            if not state:
                why = "is inactive" if state is False else "does not exist"
                errors.add(field, f"{label} {body[field]} {why}.")
        campaign = body["campaignId"]
        stored = active("campaigns", campaign)
        if not (stored or (stored is None and campaign in SEEDED_CAMPAIGNS)):
            errors.add("campaignId", f"Campaign {campaign} does not exist.")
        for i, item in enumerate(body["appointments"]):
            for tech in item.get("technicianIds") or ():
                if not active("technicians", tech):
                    errors.add(
                        f"appointments[{i}].technicianIds",
                        f"Technician {tech} does not exist or is inactive.",
                    )
        return dict(errors)

    def create_job(self: ServiceTitanApi, request: Request, tenant: str) -> Response:
        from integrations.sandbox.servicetitan_resources import (
            appointment_assignment_defaults,
            appointment_defaults,
            job_defaults,
        )

        body = self._create_begin(request, tenant, "jpm", "jobs")
        if isinstance(body, Response):
            return body
        errors, appointments = check_job_request(body)
        if errors:
            return self.problem(400, errors=errors)
        jobs = self._st(tenant, "jobs")
        with self._write_lock:
            errors = self._reference_errors(tenant, body)
            if errors:
                return self.problem(400, errors=errors)
            now = now_us()
            job_id = self.new_record_id(jobs)
            appointment_ids = []
            appointments_collection = self._st(tenant, "appointments")
            assignments = self._st(tenant, "appointment-assignments")
            for n, (item, times) in enumerate(zip(body["appointments"], appointments, strict=True)):
                start, end, window_start, window_end = times
                appointment_id = self.new_record_id(appointments_collection)
                data = appointment_defaults()
                data.update(
                    jobId=job_id,
                    appointmentNumber=f"{job_id}-{n + 1}",
                    start=iso_utc(start),
                    end=iso_utc(end),
                    arrivalWindowStart=None if window_start is None else iso_utc(window_start),
                    arrivalWindowEnd=None if window_end is None else iso_utc(window_end),
                    status="Scheduled",
                    createdOn=iso_utc(now),
                )
                self.store.upsert(appointments_collection, appointment_id, data, modified_us=now)
                appointment_ids.append(appointment_id)
                for tech in item.get("technicianIds") or ():
                    technician = self.store.get(self._st(tenant, "technicians"), tech)
                    assignment = appointment_assignment_defaults()
                    assignment.update(
                        technicianId=tech,
                        technicianName=(technician.data.get("name") if technician else "") or "",
                        assignedById=APP_USER_ID,
                        assignedOn=iso_utc(now),
                        jobId=job_id,
                        appointmentId=appointment_id,
                    )
                    self.store.upsert(
                        assignments, self.new_record_id(assignments), assignment, modified_us=now
                    )
            data = job_defaults()
            data.update(
                jobNumber=str(job_id),
                customerId=body["customerId"],
                locationId=body["locationId"],
                jobStatus="Scheduled",
                businessUnitId=body["businessUnitId"],
                jobTypeId=body["jobTypeId"],
                priority=body["priority"],
                campaignId=body["campaignId"],
                summary=body.get("summary"),
                customFields=_custom_fields(body.get("customFields")),
                appointmentCount=len(appointment_ids),
                firstAppointmentId=appointment_ids[0],
                lastAppointmentId=appointment_ids[-1],
                createdOn=iso_utc(now),
                createdById=APP_USER_ID,
                tagTypeIds=list(body.get("tagTypeIds") or []),
                externalData=[],
            )
            record = self.store.upsert(jobs, job_id, data, active=True, modified_us=now)
            external = body.get("externalData")
            if external:
                self.store.upsert(
                    self._st(tenant, EXTERNAL_DATA_OBJECT),
                    job_id,
                    {
                        "applications": {
                            _guid(external["applicationGuid"]): external["externalData"]
                        }
                    },
                    modified_us=now,
                )
            self.app.stats.write_applied(PROVIDER, f"jobs/{job_id}")
            guid = _guid(external["applicationGuid"]) if external else None
            answer = self._render_job(jobs, record, guid)
        return json_text_response(answer)

    # --- reading jobs with external data, searching customers and locations ----------------

    def _render_job(
        self: ServiceTitanApi, collection: Collection, record: Any, guid: str | None
    ) -> str:
        rendered = json.loads(self.render_record(collection, record))
        items: list = []
        if guid is not None:
            stored = self.store.get(self._st(collection.account, EXTERNAL_DATA_OBJECT), record.id)
            if stored is not None:
                items = stored.data.get("applications", {}).get(guid) or []
        rendered["externalData"] = items
        return dumps(rendered)

    def get_with_external_data(
        self: ServiceTitanApi, request: Request, collection: Collection, record: Any
    ) -> Response | None:
        """Jobs_Get with ``externalDataApplicationGuid``; None when the request has none."""
        if collection.object != "jobs" or GUID_PARAM not in request.args:
            return None
        raw = request.args.get(GUID_PARAM) or ""
        guid = _guid(raw.strip()) if raw.strip() else None
        if raw.strip() and guid is None:
            return self.problem(400, errors={GUID_PARAM: [f"The value '{raw}' is not valid."]})
        return json_text_response(self._render_job(collection, record, guid))

    def search_list(
        self: ServiceTitanApi, request: Request, collection: Collection, spec: Any
    ) -> Response | None:
        """Lists the generic listing cannot do (see the section comment), or None."""
        from integrations.sandbox.servicetitan import _ListQuery

        names = sorted(spec.search_params - {GUID_PARAM})
        text = {n: request.args[n].strip() for n in names if (request.args.get(n) or "").strip()}
        has_guid = GUID_PARAM in spec.search_params and GUID_PARAM in request.args
        if not text and not has_guid:
            return None
        guid = None
        if has_guid and (request.args.get(GUID_PARAM) or "").strip():
            guid = _guid(request.args[GUID_PARAM].strip())
            if guid is None:
                raw = request.args[GUID_PARAM]
                return self.problem(400, errors={GUID_PARAM: [f"The value '{raw}' is not valid."]})
        skip = set(names) | {GUID_PARAM}
        args = MultiDict([(k, v) for k, v in request.args.items(multi=True) if k not in skip])
        query = _ListQuery.parse(args, spec)
        if query.errors:
            return self.problem(400, errors=query.errors)
        offset = (query.page - 1) * query.page_size
        if text:
            rows = self.store.list_offset(
                collection, conditions=query.conditions, order=query.order, limit=2**62
            )
            rows = [r for r in rows if self._matches(collection, r, text)]
            total = len(rows)
            rows = rows[offset : offset + query.page_size + 1]
        else:
            rows = self.store.list_offset(
                collection,
                conditions=query.conditions,
                order=query.order,
                offset=offset,
                limit=query.page_size + 1,
            )
            total = (
                self.store.count(collection, conditions=query.conditions)
                if query.include_total
                else None
            )
        has_more = len(rows) > query.page_size
        rows = rows[: query.page_size]
        if spec.object == "jobs":
            data = ",".join(self._render_job(collection, r, guid) for r in rows)
        else:
            data = ",".join(self.render_record(collection, r) for r in rows)
        shown = total if query.include_total else None
        body = (
            f'{{"page":{query.page},"pageSize":{query.page_size},'
            f'"hasMore":{"true" if has_more else "false"},'
            f'"totalCount":{"null" if shown is None else shown},"data":[{data}]}}'
        )
        return json_text_response(body)

    def _matches(self: ServiceTitanApi, collection: Collection, record: Any, text: dict) -> bool:
        data = record.data
        address = data.get("address") or {}
        for name, wanted in text.items():
            if name == "phone":
                if not self._has_phone(collection.account, record.id, _digits(wanted)):
                    return False
                continue
            value = data.get("name") if name == "name" else address.get(name)
            if wanted.casefold() not in str(value or "").casefold():
                return False
        return True

    def _has_phone(self: ServiceTitanApi, tenant: str, customer_id: Any, digits: str) -> bool:
        if not digits:
            return False
        contacts = self.store.list_offset(
            self._st(tenant, "contacts"),
            conditions=[Condition("data.customerId", "eq", customer_id)],
            limit=1000,
        )
        return any(
            c.data.get("type") != "Email" and _digits(c.data.get("value")) == digits
            for c in contacts
        )

    # --- job status ----------------------------------------------------------------------------

    def _job_change(
        self: ServiceTitanApi, request: Request, tenant: str, rid: str
    ) -> tuple[Collection, int, Any] | Response:
        begun = self._begin_estimate(request, tenant, "jpm", "jobs", rid)
        if isinstance(begun, Response):
            return begun
        jobs, job_id = begun
        body = self._json_object(request)
        if isinstance(body, Response):
            return body
        return jobs, job_id, body

    def _set_job_status(
        self: ServiceTitanApi, jobs: Collection, record: Any, status: str, **extra: Any
    ) -> None:
        now = now_us()
        data = record.data
        data.update(jobStatus=status, **extra)
        self.store.upsert(jobs, record.id, data, active=True, modified_us=now)
        appointments = self._st(jobs.account, "appointments")
        rows = self.store.list_offset(
            appointments, conditions=[Condition("data.jobId", "eq", record.id)], limit=10_000
        )
        for appointment in rows:
            if appointment.data.get("status") in _OPEN_APPOINTMENTS[status]:
                changed = appointment.data
                changed["status"] = _APPOINTMENT_AFTER[status]
                self.store.upsert(appointments, appointment.id, changed, modified_us=now)
        self.app.stats.write_applied(PROVIDER, f"jobs/{record.id}")

    def _reason_change(
        self: ServiceTitanApi,
        request: Request,
        tenant: str,
        rid: str,
        *,
        type_name: str,
        reasons: str,
        refusal: Callable[[str], str | None],
        status: str,
    ) -> Response:
        begun = self._job_change(request, tenant, rid)
        if isinstance(begun, Response):
            return begun
        jobs, job_id, body = begun
        errors = check_reason_request(body, type_name)
        if errors:
            return self.problem(400, errors=errors)
        with self._write_lock:
            record = self.store.get(jobs, job_id)
            if record is None:
                return self.problem(404, "Job not found")
            reason = self.store.get(self._st(tenant, reasons), body["reasonId"])
            if reason is None or not reason.active:
                state = "does not exist" if reason is None else "is inactive"
                return self.problem(
                    400, errors={"reasonId": [f"Reason {body['reasonId']} {state}."]}
                )
            refused = refusal(str(record.data.get("jobStatus") or ""))
            if refused:
                return self.problem(400, refused)
            self._set_job_status(jobs, record, status)
        return Response(status=200)

    def hold_job(self: ServiceTitanApi, request: Request, tenant: str, rid: str) -> Response:
        return self._reason_change(
            request, tenant, rid, type_name="HoldJobRequest", reasons="job-hold-reasons",
            refusal=hold_refusal, status="Hold",
        )  # fmt: skip

    def cancel_job(self: ServiceTitanApi, request: Request, tenant: str, rid: str) -> Response:
        return self._reason_change(
            request, tenant, rid, type_name="CancelJobRequest", reasons="job-cancel-reasons",
            refusal=cancel_refusal, status="Canceled",
        )  # fmt: skip

    def complete_job(self: ServiceTitanApi, request: Request, tenant: str, rid: str) -> Response:
        begun = self._job_change(request, tenant, rid)
        if isinstance(begun, Response):
            return begun
        jobs, job_id, body = begun
        errors = _Errors()
        if not isinstance(body, dict):
            errors.add("completedOn", "The completedOn field is required.")
            completed = None
        else:
            _unknown(body, {"completedOn"}, "CompleteJobRequest", "", errors)
            completed = _date_time(body, "completedOn", "", errors, required=True)
        if errors:
            return self.problem(400, errors=dict(errors))
        with self._write_lock:
            record = self.store.get(jobs, job_id)
            if record is None:
                return self.problem(404, "Job not found")
            refused = complete_refusal(str(record.data.get("jobStatus") or ""))
            if refused is None and not self.store.count(
                self._st(tenant, "appointment-assignments"),
                conditions=[Condition("data.jobId", "eq", job_id)],
            ):
                refused = "The job has no assigned technicians."
            if refused:
                return self.problem(409, refused)
            self._set_job_status(jobs, record, "Completed", completedOn=iso_utc(completed))
        return Response(status=200)

    def remove_job_cancellation(
        self: ServiceTitanApi, request: Request, tenant: str, rid: str
    ) -> Response:
        begun = self._job_change(request, tenant, rid)
        if isinstance(begun, Response):
            return begun
        jobs, job_id, _ = begun
        with self._write_lock:
            record = self.store.get(jobs, job_id)
            if record is None:
                return self.problem(404, "Job not found")
            if record.data.get("jobStatus") != "Canceled":
                return self.problem(400, "The job is not canceled.")
            self._set_job_status(jobs, record, "Scheduled")
        return Response(status=200)

    # --- routes --------------------------------------------------------------------------------

    def job_write_endpoints(self: ServiceTitanApi) -> list[tuple[Rule, Endpoint]]:
        prefix = "/servicetitan"
        crm = f"{prefix}/crm/v2/tenant/<tenant>"
        jpm = f"{prefix}/jpm/v2/tenant/<tenant>"
        crm_t = f"{prefix}/crm/v2/tenant/{{tenant}}"
        jpm_t = f"{prefix}/jpm/v2/tenant/{{tenant}}"
        routes = [
            (
                f"{crm}/customers",
                "POST",
                "st.customer_create",
                self.create_customer,
                f"{crm_t}/customers",
            ),
            (
                f"{crm}/locations",
                "POST",
                "st.location_create",
                self.create_location,
                f"{crm_t}/locations",
            ),
            (f"{jpm}/jobs", "POST", "st.job_create", self.create_job, f"{jpm_t}/jobs"),
        ]
        for operation, handler in (
            ("hold", self.hold_job),
            ("complete", self.complete_job),
            ("cancel", self.cancel_job),
            ("remove-cancellation", self.remove_job_cancellation),
        ):
            routes.append(
                (
                    f"{jpm}/jobs/<rid>/{operation}",
                    "PUT",
                    f"st.job_{operation.replace('-', '_')}",
                    handler,
                    f"{jpm_t}/jobs/{{id}}/{operation}",
                )
            )
        return [
            (
                Rule(rule, methods=[method], endpoint=name),
                Endpoint(PROVIDER, "api", handler, template),
            )
            for rule, method, name, handler, template in routes
        ]


def _custom_fields(fields: Any) -> list[dict[str, Any]]:
    """CustomFieldUpdateModel → CustomFieldModel {typeId, name, value}; the sandbox has no
    custom field types, so the name is generic."""
    return [
        {"typeId": f["typeId"], "name": f"Custom field {f['typeId']}", "value": f["value"]}
        for f in fields or ()
    ]
