"""ServiceTitan writes: estimate sell/dismiss, estimate item delete, job notes.

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
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from integrations.sandbox.app import json_text_response
from integrations.sandbox.store import Collection, Condition, dumps, iso_utc, now_us

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
