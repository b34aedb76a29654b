"""Pure functions from ServiceTitan JSON to normalized records.

Times are ISO 8601 in UTC (spec: "Modified on (UTC)"); deactivated records come back with
`active: false` when listed with `active=Any`; merged customers carry `mergedToId`. Money and
quantities are JSON numbers (`format: decimal` in the spec): they are read into Decimal through
their shortest text form, never used as floats.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from integrations.base import (
    ExternalClient,
    ExternalJob,
    ExternalJobActivity,
    ExternalLineItem,
    ExternalQuote,
    ExternalStaff,
)

PROVIDER = "servicetitan"
SUMMARY_MAX = 255
# Employees and technicians are separate resources whose int64 ids may coincide, so an
# employee's external_id carries this prefix ("employee:123"); a technician's is the bare id.
EMPLOYEE_PREFIX = "employee:"

# JobResponse.jobStatus is a plain string; the list filter documents "Scheduled",
# "InProgress", "Hold", "Completed" and "Canceled" (spec: jpm Jobs_GetList jobStatus).
# Dispatched and Working are appointment statuses (AppointmentStatus) some tenants see on
# jobs too. Keys are lower-cased; anything else maps to "pending" and keeps its raw word.
JOB_STATUSES = {
    "scheduled": "scheduled",
    "dispatched": "dispatched",
    "inprogress": "in_progress",
    "working": "in_progress",
    "hold": "on_hold",
    "onhold": "on_hold",
    "completed": "completed",
    "canceled": "cancelled",
    "cancelled": "cancelled",
}
# EstimateResponse.status is {value, name} (Estimates.V2.EstimateStatusModel); the names are
# Open, Sold and Dismissed (PRODUCT.md "How each provider maps"). Unknown ones stay "draft".
QUOTE_STATUSES = {"open": "sent", "sold": "approved", "dismissed": "rejected"}
# Where the provider puts an appointment's technician assignments (dispatch
# `appointment-assignments`, read alongside) in the appointment's payload.
ASSIGNMENTS_KEY = "_assignments"
PRIORITIES = {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"}


def parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def as_decimal(value: object) -> Decimal:
    """A JSON number (already parsed: int, float) or numeric string as Decimal, via str(): the
    shortest repr of a float is the number as the JSON spelled it (12.3 → "12.3")."""
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool):
        raise ValueError(f"servicetitan: {value!r} is not a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"servicetitan: {value!r} is not a number") from None


def _id(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _text(raw: dict, key: str) -> str:
    value = raw.get(key)
    return "" if value is None else str(value).strip()


def _base(raw: dict, *, external_id: str | None = None) -> dict:
    return {
        "provider": PROVIDER,
        "external_id": external_id or str(raw["id"]),
        "raw": raw,
        "remote_updated_at": parse_datetime(raw.get("modifiedOn")),
        # Only records whose schema has `active` can be deactivated (jobs cannot).
        "deleted": raw.get("active") is False,
    }


def _address(address: dict | None) -> str:
    if not address:
        return ""
    street = " ".join(p for p in (address.get("street"), address.get("unit")) if p)
    parts = (
        street,
        address.get("city"),
        address.get("state"),
        address.get("zip"),
        address.get("country"),
    )
    return ", ".join(p.strip() for p in parts if p and str(p).strip())


def _first_line(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line[:SUMMARY_MAX]


def customer_to_client(raw: dict) -> ExternalClient:
    kind = {"residential": "residential", "commercial": "commercial"}.get(
        str(raw.get("type") or "").lower(), "unknown"
    )
    # A merged customer's `mergedToId` (the survivor) is NOT a head office: it stays in `raw`
    # only. `parent_external_id` means "this client is a site of that one", which gives the
    # parent's client users this client's jobs and quotes (portal.selectors.user_scope).
    return ExternalClient(
        **_base(raw),
        name=(raw.get("name") or "").strip() or "(no name)",
        kind=kind,
        address=_address(raw.get("address")),
    )


def _split_name(name: str) -> tuple[str, str]:
    """ServiceTitan keeps one `name`; the first word is taken as the first name."""
    first, _, last = " ".join(name.split()).partition(" ")
    return first, last


def technician_to_staff(raw: dict) -> ExternalStaff:
    """TenantSettings.V2.TechnicianResponse. Inactive technicians are deleted."""
    first, last = _split_name(_text(raw, "name"))
    return ExternalStaff(
        **_base(raw),
        kind="technician",
        first_name=first,
        last_name=last,
        email=_text(raw, "email"),
        phone=_text(raw, "phoneNumber"),
        is_active=raw.get("active") is not False,
    )


def is_employee(raw: dict) -> bool:
    """An EmployeeResponse rather than a TechnicianResponse: `role` is required in the first
    and absent from the second (both say additionalProperties: false; spec: settings)."""
    return "role" in raw


def employee_id(raw: dict) -> str:
    return f"{EMPLOYEE_PREFIX}{raw['id']}"


def employee_to_staff(raw: dict) -> ExternalStaff:
    """TenantSettings.V2.EmployeeResponse (office users); the role (Dispatch, CSR, Admin…)
    is the title, except the placeholder "Unspecified"."""
    first, last = _split_name(_text(raw, "name"))
    role = _text(raw, "role")
    return ExternalStaff(
        **_base(raw, external_id=employee_id(raw)),
        kind="employee",
        first_name=first,
        last_name=last,
        email=_text(raw, "email"),
        phone=_text(raw, "phoneNumber"),
        title="" if role == "Unspecified" else role,
        is_active=raw.get("active") is not False,
    )


def job_status(provider_status: str) -> str:
    return JOB_STATUSES.get(provider_status.replace(" ", "").lower(), "pending")


def job_to_job(raw: dict) -> ExternalJob:
    """Crm.V2.JobResponse (jpm). The 2022 schema has no money on a job; a `total` sent by a
    newer API version becomes the revenue. Appointments (the schedule) are their own resource."""
    summary = (raw.get("summary") or "").strip()
    status = _text(raw, "jobStatus")
    priority = _text(raw, "priority")
    return ExternalJob(
        **_base(raw),
        client_external_id=_id(raw.get("customerId")),
        number=_text(raw, "jobNumber"),
        summary=_first_line(summary),
        description=summary,
        status=job_status(status),
        provider_status=status,
        priority=PRIORITIES.get(priority.lower(), "normal"),
        completed_at=parse_datetime(raw.get("completedOn")),
        revenue=as_decimal(raw.get("total")),
    )


def estimate_status(raw: dict) -> tuple[str, str]:
    """(unified status, ServiceTitan's status name) of an estimate."""
    status = raw.get("status")
    name = str(status.get("name") or "") if isinstance(status, dict) else str(status or "")
    return QUOTE_STATUSES.get(name.strip().lower(), "draft"), name


def estimate_item_to_line_item(raw: dict, *, estimate_id: str, index: int) -> ExternalLineItem:
    """Estimates.V2.EstimateItemResponse: `qty`, `unitRate` and `total` are decimals; the name
    is the SKU's display name (its code-like `name` when that is empty)."""
    sku = raw.get("sku") or {}
    name = _text(sku, "displayName") or _text(sku, "name") or _text(raw, "description")
    return ExternalLineItem(
        provider=PROVIDER,
        external_id=str(raw["id"]),
        raw=raw,
        remote_updated_at=parse_datetime(raw.get("modifiedOn")),
        quote_external_id=estimate_id,
        name=name or "(no name)",
        description=_text(raw, "description"),
        quantity=as_decimal(raw.get("qty")),
        unit_price=as_decimal(raw.get("unitRate")),
        total=as_decimal(raw.get("total")),
        sort_order=index,
    )


def estimate_to_quote(raw: dict) -> ExternalQuote:
    """Estimates.V2.EstimateResponse (sales). The 2022 schema has no `customerId`, `subtotal`
    nor `tax` (newer versions add them): without them the client is reached through `jobId`
    (client_external_id stays None), the subtotal is the sum of the items' totals and the tax
    is 0. The estimate has no number of its own, so its id is the number."""
    estimate_id = str(raw["id"])
    items = tuple(
        estimate_item_to_line_item(item, estimate_id=estimate_id, index=index)
        for index, item in enumerate(raw.get("items") or ())
    )
    subtotal = (
        as_decimal(raw["subtotal"])
        if raw.get("subtotal") is not None
        else sum((item.total for item in items), Decimal("0"))
    )
    tax = as_decimal(raw.get("tax"))
    status, provider_status = estimate_status(raw)
    return ExternalQuote(
        **_base(raw),
        client_external_id=_id(raw.get("customerId")),
        job_external_id=_id(raw.get("jobId")),
        number=estimate_id,
        title=_text(raw, "name"),
        status=status,
        provider_status=provider_status,
        subtotal=subtotal,
        tax_total=tax,
        total=subtotal + tax,
        line_items=items,
    )


def appointment_to_activity(raw: dict) -> ExternalJobActivity:
    """Crm.V2.AppointmentResponse (jpm), with its Crm.V2.AppointmentAssignmentResponse list
    under `_assignments` (added by the provider): a visit from `start` to `end` (UTC), the
    technicians assigned to it as staff (technician ids are the bare staff external ids), the
    status as ServiceTitan says it (Scheduled, Dispatched, Working, Hold, Done, Canceled) and
    the special instructions as notes. Appointments have no `active`: a cancelled one keeps its
    record with status Canceled."""
    staff: list[str] = []
    for assignment in raw.get(ASSIGNMENTS_KEY) or ():
        technician = _id(assignment.get("technicianId"))
        if technician and technician not in staff:
            staff.append(technician)
    job = _id(raw.get("jobId"))
    if job is None:
        raise ValueError("servicetitan: an appointment without jobId")
    starts_at = parse_datetime(raw.get("start"))
    ends_at = parse_datetime(raw.get("end"))
    if starts_at and ends_at and ends_at < starts_at:
        ends_at = None  # an end before the start is no end we can show (raw keeps it)
    return ExternalJobActivity(
        **_base(raw),
        job_external_id=job,
        staff_external_ids=tuple(staff),
        starts_at=starts_at,
        ends_at=ends_at,
        status=_text(raw, "status"),
        notes=_text(raw, "specialInstructions"),
    )
