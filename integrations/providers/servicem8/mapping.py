"""Pure functions from ServiceM8 JSON to normalized records.

ServiceM8 quirks handled here (NOTES.md §1, Gotchas):
- booleans arrive as 1/0 or "1"/"0" (the spec types several as strings: `is_primary_contact`,
  `displayed_amount_is_tax_inclusive`);
- money and quantities are strings ("120.00", "1.5"): parsed straight into Decimal;
- empty dates are "0000-00-00 00:00:00" rather than null;
- `edit_date` and the other "YYYY-MM-DD HH:MM:SS" stamps carry no zone: they are the
  account's local time (the vendor's `timezone_name`), converted here to aware UTC;
- a deleted record is still returned, with `active` = 0
  (spec: DELETE /job/{uuid}.json, "Deleting a record sets its active field to 0");
- a quote is not an object of its own: it is a `job` in status Quote, so a job that is or was
  a quote maps to both an ExternalJob and an ExternalQuote with the same id, and its line items
  are the job's `jobmaterial`s;
- a `jobactivity` is either a scheduled visit (`activity_was_scheduled` "1") or time recorded
  after the fact (`activity_was_recorded` "1"; the two are exclusive, spec: JobActivity): only
  scheduled visits are kept, with `start_date`/`end_date` in local time like `edit_date`;
- an `attachment` belongs to any object (`related_object`: "job", "company", "staff"…); only
  job attachments are kept, and `file_type` is the file's extension (".pdf").
"""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from integrations.base import (
    ExternalAttachment,
    ExternalClient,
    ExternalContact,
    ExternalJob,
    ExternalJobActivity,
    ExternalJobContact,
    ExternalJobMaterial,
    ExternalNote,
    ExternalPricebookItem,
    ExternalQuote,
    ExternalReference,
    ExternalStaff,
)

PROVIDER = "servicem8"
EDIT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"
# EDIT_DATE_FORMAT or DATE_FORMAT with every field at its full width (ASCII digits only).
_STAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?: [0-9]{2}:[0-9]{2}:[0-9]{2})?")
CENT = Decimal("0.01")
SUMMARY_MAX = 255

# Job.status, "Valid values are [Quote,Work Order,Unsuccessful,Completed]" (spec:
# components.schemas.Job.status). "Work Order" depends on the schedule, see job_status().
JOB_STATUSES = {"quote": "pending", "completed": "completed", "unsuccessful": "cancelled"}
# Quote statuses for a job that is or was a quote (PRODUCT.md, "How each provider maps"):
# approving a quote moves the job to Work Order, rejecting it to Unsuccessful.
QUOTE_STATUSES = {"work order": "approved", "completed": "approved", "unsuccessful": "rejected"}


def as_bool(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes"}


def as_decimal(value: object) -> Decimal:
    """A ServiceM8 amount ("120.00", 120, "") as Decimal; never through float."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return Decimal("0")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"servicem8: {text!r} is not a number") from None


def parse_local_datetime(value: str | None, tz: ZoneInfo) -> datetime | None:
    """An account-local stamp as aware UTC; None for ServiceM8's empty "0000-00-00…" dates.
    A local time repeated when DST ends reads as its first occurrence (fold=0)."""
    if not value or value.startswith("0000-00-00"):
        return None
    if _STAMP_RE.fullmatch(value):
        # The shapes ServiceM8 sends: `fromisoformat` reads them ~15 times faster than
        # `strptime` (a sync parses several stamps a record). Anything else, or an impossible
        # date, goes through `strptime`, which accepts or refuses it as it always did.
        try:
            return datetime.fromisoformat(value).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            pass
    fmt = EDIT_DATE_FORMAT if len(value) > len("YYYY-MM-DD") else DATE_FORMAT
    return datetime.strptime(value, fmt).replace(tzinfo=tz).astimezone(UTC)


def format_local_datetime(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime(EDIT_DATE_FORMAT)


def _text(raw: dict, key: str) -> str:
    value = raw.get(key)
    return "" if value is None else str(value).strip()


def _ref(raw: dict, key: str) -> str | None:
    """A uuid reference; ServiceM8 sends "" (or omits the field) when it is unset."""
    return _text(raw, key) or None


def _base(raw: dict, tz: ZoneInfo) -> dict:
    return {
        "provider": PROVIDER,
        "external_id": raw["uuid"],
        "raw": raw,
        "remote_updated_at": parse_local_datetime(raw.get("edit_date"), tz),
        "deleted": not as_bool(raw.get("active", 1)),
    }


def _address(raw: dict) -> str:
    parts = [raw.get(f"address_{k}") for k in ("street", "city", "state", "postcode", "country")]
    joined = ", ".join(p.strip() for p in parts if p and p.strip())
    return joined or (raw.get("address") or "").strip()


def company_to_client(raw: dict, *, tz: ZoneInfo) -> ExternalClient:
    """A ServiceM8 `company` (what ServiceM8 calls a client)."""
    return ExternalClient(
        **_base(raw, tz),
        name=(raw.get("name") or "").strip() or "(no name)",
        kind="residential" if as_bool(raw.get("is_individual")) else "commercial",
        address=_address(raw),
        parent_external_id=_ref(raw, "parent_company_uuid"),
    )


def companycontact_to_contact(raw: dict, *, tz: ZoneInfo) -> ExternalContact:
    """A `companycontact`: a person at a client. `type` is "BILLING", "JOB"… (spec:
    CompanyContact.type) and becomes the role as is."""
    return ExternalContact(
        **_base(raw, tz),
        client_external_id=_ref(raw, "company_uuid"),
        first_name=_text(raw, "first"),
        last_name=_text(raw, "last"),
        email=_text(raw, "email"),
        phone=_text(raw, "phone"),
        mobile=_text(raw, "mobile"),
        role=_text(raw, "type"),
        is_primary=as_bool(raw.get("is_primary_contact")),
    )


def staff_to_staff(raw: dict, *, tz: ZoneInfo) -> ExternalStaff:
    """A `staff` member. ServiceM8 has one kind of staff; those hidden from the schedule
    (`hide_from_schedule` = 1, spec: Staff) are not dispatched to jobs, so they map to
    "employee" and everyone else to "technician". A deactivated member (active 0) is deleted."""
    active = as_bool(raw.get("active", 1))
    return ExternalStaff(
        **_base(raw, tz),
        kind="employee" if as_bool(raw.get("hide_from_schedule")) else "technician",
        first_name=_text(raw, "first"),
        last_name=_text(raw, "last"),
        email=_text(raw, "email"),
        phone=_text(raw, "mobile"),
        title=_text(raw, "job_title"),
        is_active=active,
    )


def _status_key(raw: dict) -> str:
    return " ".join(_text(raw, "status").lower().split())


def job_status(raw: dict, *, tz: ZoneInfo) -> str:
    """The unified job status. A Work Order is "scheduled" while it has a scheduled activity
    (`job_is_scheduled_until_stamp`, "the end date/time of the last scheduled activity", is a
    real date), else "unscheduled". ServiceM8 calls a job whose stamp has passed Unscheduled
    too, but that changes with the clock and not with `edit_date`, so it is left to readers
    of `scheduled_end`. Unknown statuses become "pending" (the raw status is kept)."""
    key = _status_key(raw)
    if key == "work order":
        scheduled = parse_local_datetime(raw.get("job_is_scheduled_until_stamp"), tz)
        return "scheduled" if scheduled else "unscheduled"
    return JOB_STATUSES.get(key, "pending")


def is_quote(raw: dict, *, tz: ZoneInfo) -> bool:
    """A job is or was a quote when its status is Quote or it has a real `quote_date` ("the
    date and time that the job status was changed to Quote", spec: Job.quote_date)."""
    quoted_at = parse_local_datetime(raw.get("quote_date"), tz)
    return _status_key(raw) == "quote" or quoted_at is not None


def quote_status(raw: dict) -> str:
    """The unified quote status of a job that is or was a quote: Quote is "sent" once
    `quote_sent` is set, else "draft"; Work Order and Completed mean it was accepted;
    Unsuccessful that it was turned down. Anything else is a "draft" (nothing to decide)."""
    key = _status_key(raw)
    if key == "quote":
        return "sent" if as_bool(raw.get("quote_sent")) else "draft"
    return QUOTE_STATUSES.get(key, "draft")


def _summary(description: str) -> str:
    first_line = next((line.strip() for line in description.splitlines() if line.strip()), "")
    return first_line[:SUMMARY_MAX]


def job_to_records(
    raw: dict, *, tz: ZoneInfo, currency: str = ""
) -> tuple[ExternalJob] | tuple[ExternalJob, ExternalQuote]:
    """A `job`: always an ExternalJob; when it is or was a quote, also its ExternalQuote
    (same external_id). `total_invoice_amount` ("the total amount to be invoiced", read only;
    tax included) is the job's revenue and the quote's total. ServiceM8 gives no ex-tax
    subtotal or tax on the job, so the quote's `subtotal`/`tax_total` stay 0 rather than being
    guessed: its line items (the job's `jobmaterial`s) are ex-tax (jobmaterial_to_material),
    so `prices_include_tax` is False and quotes.selectors.quote_amounts derives
    subtotal = the items' sum and tax = total - subtotal, whether the account shows its
    prices tax-inclusive or not (the total is tax-inclusive either way)."""
    base = _base(raw, tz)
    description = (raw.get("job_description") or "").strip()
    status_text = _text(raw, "status")
    total = as_decimal(raw.get("total_invoice_amount"))
    client = _ref(raw, "company_uuid")
    number = _text(raw, "generated_job_id")
    job = ExternalJob(
        **base,
        client_external_id=client,
        number=number,
        summary=_summary(description),
        description=description,
        status=job_status(raw, tz=tz),
        provider_status=status_text,
        address=(raw.get("job_address") or "").strip(),
        scheduled_end=parse_local_datetime(raw.get("job_is_scheduled_until_stamp"), tz),
        completed_at=parse_local_datetime(raw.get("completion_date"), tz),
        revenue=total,
    )
    if not is_quote(raw, tz=tz):
        return (job,)
    extra = {"currency": currency} if currency else {}
    quote = ExternalQuote(
        **base,
        client_external_id=client,
        job_external_id=raw["uuid"],
        number=number,
        title=job.summary,
        status=quote_status(raw),
        provider_status=status_text,
        total=total,
        prices_include_tax=False,  # the line items are ex-tax, the total tax-inclusive
        sent_at=parse_local_datetime(raw.get("quote_sent_stamp"), tz),
        **extra,
    )
    return job, quote


def jobmaterial_to_material(raw: dict, *, tz: ZoneInfo) -> ExternalJobMaterial:
    """A `jobmaterial`: a line of a job and, the job being the quote, of its quote.

    Amounts are ex-tax, on every account. `price` is "the unit price of the material excluding
    tax" (kept consistent with tax-inclusive pricing by ServiceM8 itself), while
    `displayed_amount` is "the unit price amount as displayed", tax-inclusive when
    `displayed_amount_is_tax_inclusive` is "1" and ex-tax otherwise (spec: JobMaterial). Mixing
    the two made a quote's subtotal part inclusive, part not, and its tax 0: so `unit_price` is
    `price` (falling back to `displayed_amount` only when `price` is empty, which ServiceM8
    does not send: it keeps `price` in step) and `total` is quantity × that, rounded to the
    cent. The displayed
    amount, its flag and `tax_rate_uuid` stay in `raw`; the quote's tax is its tax-inclusive
    total minus the sum of these lines (quotes.selectors.quote_amounts).
    """
    quantity = as_decimal(raw.get("quantity") or "1")
    price = raw.get("price")
    shown = raw.get("displayed_amount")
    unit_price = as_decimal(price if str(price or "").strip() else shown)
    sort_order = _text(raw, "sort_order")
    job_uuid = raw["job_uuid"]
    return ExternalJobMaterial(
        **_base(raw, tz),
        job_external_id=job_uuid,
        quote_external_id=job_uuid,
        name=_text(raw, "name") or "(no name)",
        quantity=quantity,
        unit_price=unit_price,
        total=(quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP),
        sort_order=int(as_decimal(sort_order)),
    )


def _extension(file_type: str) -> str:
    """`file_type` as ".ext" ("pdf", ".PDF" → ".pdf"); "" when it is not an extension."""
    text = file_type.strip().lower()
    if not text or "/" in text:
        return ""
    text = text if text.startswith(".") else f".{text}"
    return text if text[1:].isalnum() and len(text) <= 16 else ""


def attachment_content_type(file_type: str) -> str:
    """The MIME type of a `file_type` (".jpg" → "image/jpeg"; a value that already is a MIME
    type is kept); "application/octet-stream" when unknown."""
    text = file_type.strip().lower()
    if "/" in text:
        return text
    guessed, _ = mimetypes.guess_type(f"file{_extension(text)}", strict=False)
    return guessed or "application/octet-stream"


def attachment_to_attachment(raw: dict, *, tz: ZoneInfo) -> ExternalAttachment | None:
    """An `attachment` on a job; None for one of another object (a client's or staff member's
    file: not shown in the portal, skipped rather than an error). `attachment_name` may lack
    the extension that `file_type` gives: it is added so a download gets a usable name.
    ServiceM8 does not say how big a file is (spec: Attachment), so `size_bytes` stays None."""
    if _text(raw, "related_object").lower() != "job":
        return None
    job_uuid = _ref(raw, "related_object_uuid")
    if job_uuid is None:
        raise ValueError("servicem8: a job attachment without related_object_uuid")
    file_type = _text(raw, "file_type")
    extension = _extension(file_type)
    name = _text(raw, "attachment_name")
    if extension and not name.lower().endswith(extension):
        name = f"{name}{extension}" if name else f"attachment{extension}"
    return ExternalAttachment(
        **_base(raw, tz),
        job_external_id=job_uuid,
        file_name=name or "attachment",
        content_type=attachment_content_type(file_type),
        provider_reference=raw["uuid"],
    )


def jobactivity_to_activity(raw: dict, *, tz: ZoneInfo) -> ExternalJobActivity | None:
    """A `jobactivity` that is a scheduled visit: one staff member (`staff_uuid`) on a job from
    `start_date` to `end_date` (account-local, like `edit_date`). None for an activity that
    was not scheduled (`activity_was_scheduled` not "1": time recorded or automated after the
    fact, not a visit the client expects), skipped rather than an error. ServiceM8 has no
    status or notes on an activity: the status is "Scheduled" and the notes stay empty."""
    if not as_bool(raw.get("activity_was_scheduled")):
        return None
    job_uuid = _ref(raw, "job_uuid")
    if job_uuid is None:
        raise ValueError("servicem8: a job activity without job_uuid")
    staff = _ref(raw, "staff_uuid")
    starts_at = parse_local_datetime(raw.get("start_date"), tz)
    ends_at = parse_local_datetime(raw.get("end_date"), tz)
    if starts_at and ends_at and ends_at < starts_at:
        ends_at = None  # an end before the start is no end we can show (raw keeps it)
    return ExternalJobActivity(
        **_base(raw, tz),
        job_external_id=job_uuid,
        staff_external_ids=(staff,) if staff else (),
        starts_at=starts_at,
        ends_at=ends_at,
        status="Scheduled",
    )


# --- job contacts, notes, references and the pricebook ---------------------------------------
#
# - `jobcontact`: a person named on one job [spec: JobContact]; `type` is "JOB" (or "Job
#   Contact"), "BILLING" (or "Billing Contact") or "Property Manager" and becomes the role as is.
# - `note`: a diary note on any object [spec: Note]; `related_object` names the object
#   ("job" for a job diary note, NOTES.md §1 "Quotes"; "company" for a client's), and
#   `create_date` is account-local like `edit_date`. Notes on other objects are skipped.
# - `category` (job categories, `name`, `colour`), `taxrate` (`name`, `amount`: the percentage
#   as a string, "10" for 10 %) and `jobmaterialbundle` (a bundle line on a job's quote or
#   invoice: `item_number`, `name`, `quantity`, `sort_order`, `job_uuid`) are lookup objects:
#   ReferenceRecords whose external id is "<kind>:<uuid>" [spec: Category, TaxRate,
#   JobMaterialBundle]. A bundle has no price of its own (its job materials, which name it in
#   `job_material_bundle_uuid`, carry the amounts), so it is not a line item.
# - `material`: the pricebook [spec: Material]; `price` and `cost` are strings that include tax
#   when `price_includes_taxes` is 1 (kept in raw), `tax_rate_uuid` names its tax rate. There is
#   no unit and no material category object (NOTES.md §1 "Pricebook").

# Reference kinds per ServiceM8 object (ReferenceRecord.kind).
REFERENCE_KINDS = {
    "category": "job_category",
    "taxrate": "tax_rate",
    "jobmaterialbundle": "material_bundle",
}


def reference_id(kind: str, uuid: str) -> str:
    """A ReferenceRecord's external id: "<kind>:<uuid>" (portal.models.ReferenceRecord)."""
    return f"{kind}:{uuid}"


def jobcontact_to_job_contact(raw: dict, *, tz: ZoneInfo) -> ExternalJobContact:
    """A `jobcontact`: a person on one job (site contact, billing contact, property manager).
    `is_primary_contact` is DEPRECATED [spec] and only kept in raw."""
    job_uuid = _ref(raw, "job_uuid")
    if job_uuid is None:
        raise ValueError("servicem8: a job contact without job_uuid")
    return ExternalJobContact(
        **_base(raw, tz),
        job_external_id=job_uuid,
        role=_text(raw, "type"),
        first_name=_text(raw, "first"),
        last_name=_text(raw, "last"),
        email=_text(raw, "email"),
        phone=_text(raw, "phone"),
        mobile=_text(raw, "mobile"),
    )


def note_to_note(raw: dict, *, tz: ZoneInfo) -> ExternalNote | None:
    """A `note` on a job or a client (`related_object` "job" / "company"); None for a note on
    another object, skipped rather than an error. The author is the staff member who last
    edited it (`edit_by_staff_uuid`: ServiceM8 records no other author), `noted_at` its
    `create_date` (account-local)."""
    related = _text(raw, "related_object").lower()
    if related not in ("job", "company"):
        return None
    owner = _ref(raw, "related_object_uuid")
    if owner is None:
        raise ValueError(f"servicem8: a {related} note without related_object_uuid")
    return ExternalNote(
        **_base(raw, tz),
        job_external_id=owner if related == "job" else None,
        client_external_id=owner if related == "company" else None,
        body=_text(raw, "note"),
        author=_text(raw, "edit_by_staff_uuid"),
        noted_at=parse_local_datetime(raw.get("create_date"), tz),
    )


def _reference(raw: dict, tz: ZoneInfo, kind: str, **fields: str) -> ExternalReference:
    base = _base(raw, tz)
    return ExternalReference(
        **{**base, "external_id": reference_id(kind, raw["uuid"])},
        kind=kind,
        is_active=not base["deleted"],
        **fields,
    )


def category_to_reference(raw: dict, *, tz: ZoneInfo) -> ExternalReference:
    """A job `category`; its `colour` (hex, for the dispatch board) stays in raw."""
    return _reference(raw, tz, REFERENCE_KINDS["category"], name=_text(raw, "name"))


def taxrate_to_reference(raw: dict, *, tz: ZoneInfo) -> ExternalReference:
    """A `taxrate`: `code` is its rate in percent as ServiceM8 sends it ("10"), checked to be
    a number; `is_default_tax_rate` stays in raw."""
    amount = _text(raw, "amount")
    as_decimal(amount)  # a rate that is not a number is an error, not a silent ""
    return _reference(raw, tz, REFERENCE_KINDS["taxrate"], name=_text(raw, "name"), code=amount)


def jobmaterialbundle_to_reference(raw: dict, *, tz: ZoneInfo) -> ExternalReference:
    """A `jobmaterialbundle`: `code` is its `item_number`, `parent_external_id` its job's
    uuid; `quantity`, `sort_order` and `material_bundle_uuid` stay in raw."""
    job_uuid = _ref(raw, "job_uuid")
    if job_uuid is None:
        raise ValueError("servicem8: a job material bundle without job_uuid")
    return _reference(
        raw,
        tz,
        REFERENCE_KINDS["jobmaterialbundle"],
        name=_text(raw, "name"),
        code=_text(raw, "item_number"),
        parent_external_id=job_uuid,
    )


def material_to_pricebook_item(
    raw: dict, *, tz: ZoneInfo, tax_rates: dict[str, Decimal] | None = None
) -> ExternalPricebookItem:
    """A `material` (kind "material"): `item_number` is the code, `price`/`cost` the unit price
    and cost (Decimal, to the cent as stored). `is_taxable` says whether its tax rate
    (`tax_rate_uuid`) charges anything: with `tax_rates` ({uuid: percent}) a 0 % rate ("GST
    Free") is not taxable; a rate not in `tax_rates`, or none given, counts as taxable when set."""
    tax_uuid = _ref(raw, "tax_rate_uuid")
    if tax_uuid is None:
        taxable = False
    elif tax_rates is not None and tax_uuid in tax_rates:
        taxable = tax_rates[tax_uuid] != 0
    else:
        taxable = True
    cost = _text(raw, "cost")
    base = _base(raw, tz)
    return ExternalPricebookItem(
        **base,
        kind="material",
        code=_text(raw, "item_number"),
        name=_text(raw, "name") or "(no name)",
        description=_text(raw, "item_description"),
        unit_price=as_decimal(raw.get("price")).quantize(CENT, rounding=ROUND_HALF_UP),
        cost=as_decimal(cost).quantize(CENT, rounding=ROUND_HALF_UP) if cost else None,
        is_taxable=taxable,
        is_active=not base["deleted"],
    )
