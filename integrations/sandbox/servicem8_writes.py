"""ServiceM8 writes: request-body schemas, validation and the job status workflow (pure logic).

The HTTP handlers live in ``servicem8.py`` (``ServiceM8Api.create_record`` / ``update_record``
/ ``delete_record``); this module holds what they check, with no I/O, so it can be read against
the spec (``shared/provider-specs/servicem8/servicem8-api_1.0.openapi.json``, "the spec") and
tested without a server. ``tests/integrations/sandbox/test_servicem8_writes.py`` compares every
table below with the spec, field by field.

Operations [spec: paths ``/{object}.json`` post, ``/{object}/{uuid}.json`` post/delete]:

- **create** ``POST /{object}.json``: body = the ``<Name>Create`` schema. "UUID is optional for
  record creation. If no UUID is supplied, a UUID will be automatically generated for the new
  record and returned in the ``x-record-uuid`` response header" [spec: createJobs description].
  Answer: 200, ``Result`` body ``{"errorCode": 0, "message": "OK"}`` and ``x-record-uuid``
  (format uuid). ``Result.errorCode`` is typed number, so 0 is sent as a number although the
  spec's example shows the string "0".
- **update** ``POST /{object}/{uuid}.json``: the same ``<Name>Create`` schema; 200 ``Result``
  (no ``x-record-uuid``: the spec declares the header for create only); 404 "The record to
  update does not exist or has been deleted".
- **delete** ``DELETE /{object}/{uuid}.json``: "deleting a record sets its ``active`` field to
  ``0``. Inactive records are still accessible on the API … Inactive records can be restored by
  setting their ``active`` field to ``1``" [spec: deleteJobs description]; 404 "The record to
  delete does not exist or has already been deleted".

``note`` has only ``POST /note.json`` in the spec (no ``/note/{uuid}.json`` path), so notes can
be created, not updated or deleted (405).

Validation (400, ServiceM8's ``Error`` shape) follows the ``<Name>Create`` schema: JSON types
(``string`` / ``integer`` / ``number``; OAS 3.1 ``type`` excludes ``null``), ``format: uuid``
and ``format: email``, ``enum`` and ``maxLength``. Decisions where the spec is silent or loose:

- **Unknown fields** (in neither the Create nor the read schema) are refused. The schemas do
  not say ``additionalProperties: false``; refusing them catches client typos that the real API
  would silently drop.
- **Read-only fields** are accepted and ignored (JSON Schema 2020-12 §9.4 ``readOnly``:
  attempts to modify "are expected to be ignored or rejected"; ignoring keeps read-modify-write
  clients working). Read-only means: ``readOnly: true`` in either schema, "(Read only)" in the
  read schema's description, or a field only the read schema has (``edit_date``,
  ``generated_job_id``, ``total_invoice_amount`` …). Their declared types are still checked.
- ``uuid`` on create: optional, must be a uuid not yet used in the account (400 otherwise; the
  spec does not say what a duplicate does, so it is refused rather than silently upserted). On
  update it must equal the URL's uuid (then it is ignored).
- ``active`` is not in the Create schemas but is writable (0/1, the read schema's type): the
  delete text above says records are restored by setting it to 1.
- **Required** fields (``required`` of the Create schema: job ``status``, jobmaterial
  ``quantity``, company ``name``) are enforced on create and on update: the spec's update
  operations take the same ``<Name>Create`` schema as their request body [spec:
  ``/{object}/{uuid}.json`` post requestBody], ``required`` included, so e.g. renaming a job
  material without its ``quantity`` is an invalid request. Updates are otherwise partial (only
  the fields sent change; sending the current value of a required field changes nothing).

Documented rules beyond the JSON schema (field descriptions in the spec):

- jobmaterial ``quantity`` "is mandatory and cannot be empty"; ``job_uuid`` "is a required field"
  (required on create).
- jobcontact ``job_uuid``: "Each job contact must be linked to a valid job in the system. This
  field cannot be changed once set." (required on create, must name an existing job, immutable).
- jobactivity: ``activity_was_scheduled`` "Cannot be true if activity_was_recorded is true" and
  vice versa.
- company ``is_individual`` "cannot be set via the API" (read-only, ignored).

Derived fields kept consistent by the handlers: job status dates (``JOB_STATUS_DATES``), the
``*_stamp`` of a flag set to 1 (``JOB_FLAG_STAMPS``), ``generated_job_id`` ("automatically
assigned when a job is created"), ``date`` (creation date, when not given) and
``total_invoice_amount`` (the tax-inclusive sum of the job's active materials, as seeded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

UUID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# A subset of what the spec validators accept for ``format: email`` (they check for an "@").
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


# --- field rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One property of a ``<Name>Create`` schema.

    ``type`` None = untyped in the spec (any JSON value). ``format`` applies to strings only
    (JSON Schema). ``read_only`` fields are validated, then ignored.
    """

    type: str | None = "string"
    format: str | None = None
    enum: tuple[Any, ...] | None = None
    max_length: int | None = None
    read_only: bool = False

    def check(self, value: Any) -> str | None:
        """An error message, or None when ``value`` satisfies the schema."""
        if self.type == "string":
            if not isinstance(value, str):
                return "must be a string"
        elif self.type == "integer":
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            ):
                return "must be an integer"
        elif self.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return "must be a number"
        if isinstance(value, str):
            if self.format == "uuid" and not UUID_PATTERN.match(value):
                return "must be a UUID"
            if self.format == "email" and not _EMAIL.match(value):
                return "must be an email address"
            if self.max_length is not None and len(value) > self.max_length:
                return f"must be at most {self.max_length} characters"
        if self.enum is not None and value not in self.enum:
            return "must be one of " + ", ".join(str(v) for v in self.enum)
        return None


STRING = Field()
UUID = Field(format="uuid")
EMAIL = Field(format="email")
INTEGER = Field("integer")
FLAG = Field("integer", enum=(0, 1))  # "Valid values are [0,1]"
ANY = Field(None)  # untyped, e.g. the DEPRECATED fields
ANY_READ_ONLY = Field(None, read_only=True)
UUID_READ_ONLY = Field(None, format="uuid", read_only=True)  # edit_by_staff_uuid: no type
# Not in any Create schema; the read schemas' ``active`` (see the module docstring).
ACTIVE = Field("integer", enum=(0, 1))


def text(max_length: int) -> Field:
    return Field(max_length=max_length)


@dataclass(frozen=True)
class WriteSchema:
    """What an object accepts on create/update.

    ``fields`` is the spec's ``<schema>`` (components.schemas), in its order; ``read_only_extra``
    are the read schema's properties missing from it (ignored when sent), ``active`` excluded.
    ``create_scopes`` / ``manage_scopes``: the OAuth scopes of the create operation and of the
    update/delete operations [spec: ``security`` of each operation].
    """

    schema: str
    fields: Mapping[str, Field]
    create_scopes: frozenset[str]
    manage_scopes: frozenset[str]
    required: tuple[str, ...] = ()
    read_only_extra: frozenset[str] = frozenset({"edit_date"})
    operations: frozenset[str] = frozenset({"create", "update", "delete"})


JOB_STATUSES = ("Quote", "Work Order", "Unsuccessful", "Completed")

JOB_WRITE = WriteSchema(
    "JobCreate",
    {
        "created_by_staff_uuid": UUID,
        "date": STRING,
        "company_uuid": UUID,
        "billing_address": text(500),
        "status": Field(enum=JOB_STATUSES, max_length=20),
        # lng/lat/geo_*: untyped here, "(Read only)" in the Job schema (derived by geocoding).
        "lng": ANY_READ_ONLY,
        "lat": ANY_READ_ONLY,
        "payment_date": STRING,
        "payment_actioned_by_uuid": UUID,
        "payment_method": STRING,
        "payment_amount": STRING,
        "category_uuid": UUID,
        "payment_note": STRING,
        "geo_is_valid": ANY_READ_ONLY,
        "purchase_order_number": text(100),
        "invoice_sent": FLAG,
        "invoice_sent_stamp": ANY_READ_ONLY,
        "ready_to_invoice": ANY,
        "ready_to_invoice_stamp": ANY,
        "geo_country": ANY_READ_ONLY,
        "geo_postcode": ANY_READ_ONLY,
        "geo_state": ANY_READ_ONLY,
        "geo_city": ANY_READ_ONLY,
        "geo_street": ANY_READ_ONLY,
        "geo_number": ANY_READ_ONLY,
        "queue_uuid": UUID,
        "queue_expiry_date": STRING,
        "queue_assigned_staff_uuid": UUID,
        "badges": STRING,
        "quote_date": STRING,
        "quote_sent": FLAG,
        "quote_sent_stamp": ANY_READ_ONLY,
        "work_order_date": STRING,
        "active_network_request_uuid": ANY,
        "related_knowledge_articles": ANY,
        "uuid": UUID,
        "job_address": text(500),
        "job_description": STRING,
        "work_done_description": STRING,
        "payment_processed": FLAG,
        "payment_received": FLAG,
        "completion_date": STRING,
        "unsuccessful_date": STRING,
    },
    # "create_jobs: Ability to create jobs on behalf of account. Note creating jobs may incur
    # account charges." It is a consent of its own, so manage_jobs does not stand in for it.
    create_scopes=frozenset({"create_jobs"}),
    manage_scopes=frozenset({"manage_jobs"}),
    required=("status",),
    read_only_extra=frozenset(
        {
            "edit_date",
            "generated_job_id",
            "total_invoice_amount",
            "payment_processed_stamp",
            "payment_received_stamp",
            "completion_actioned_by_uuid",
            "job_is_scheduled_until_stamp",
        }
    ),
)

JOBMATERIAL_WRITE = WriteSchema(
    "JobMaterialCreate",
    {
        "job_uuid": UUID,
        "material_uuid": UUID,
        "name": text(500),
        "quantity": text(100),
        "price": STRING,
        "displayed_amount": STRING,
        "displayed_amount_is_tax_inclusive": STRING,
        "tax_rate_uuid": UUID,
        "sort_order": STRING,
        "cost": STRING,
        "displayed_cost": STRING,
        "uuid": UUID,
        "job_material_bundle_uuid": UUID,
    },
    create_scopes=frozenset({"manage_job_materials"}),
    manage_scopes=frozenset({"manage_job_materials"}),
    required=("quantity",),
)

NOTE_WRITE = WriteSchema(
    "NoteCreate",
    {
        "uuid": UUID,
        "related_object": STRING,
        "related_object_uuid": UUID,
        "note": STRING,
        "action_required": STRING,
        "action_completed_by_staff_uuid": UUID,
        "edit_by_staff_uuid": UUID_READ_ONLY,
        "create_date": ANY,
    },
    # "publish_job_notes: Ability to add new job notes".
    create_scopes=frozenset({"publish_job_notes"}),
    manage_scopes=frozenset(),
    operations=frozenset({"create"}),
)

JOBCONTACT_WRITE = WriteSchema(
    "JobContactCreate",
    {
        "job_uuid": UUID,
        "first": STRING,
        "last": STRING,
        "phone": STRING,
        "mobile": STRING,
        "email": EMAIL,
        "type": STRING,
        "is_primary_contact": ANY,  # DEPRECATED [spec]
        "uuid": UUID,
    },
    create_scopes=frozenset({"manage_job_contacts"}),
    manage_scopes=frozenset({"manage_job_contacts"}),
)

COMPANY_WRITE = WriteSchema(
    "CompanyCreate",
    {
        "name": text(100),
        "abn_number": STRING,
        "address": text(500),
        "billing_address": text(500),
        "is_individual": Field("integer", enum=(0, 1), read_only=True),
        "parent_company_uuid": ANY,
        "uuid": UUID,
        "website": STRING,
        "address_street": text(500),
        "address_city": STRING,
        "address_state": STRING,
        "address_postcode": STRING,
        "address_country": STRING,
        "fax_number": STRING,
        "badges": STRING,
        "tax_rate_uuid": UUID,
        "billing_attention": STRING,
        "payment_terms": STRING,
    },
    create_scopes=frozenset({"manage_customers"}),
    manage_scopes=frozenset({"manage_customers"}),
    required=("name",),
)

COMPANYCONTACT_WRITE = WriteSchema(
    "CompanyContactCreate",
    {
        "company_uuid": UUID,
        "first": STRING,
        "last": STRING,
        "phone": STRING,
        "mobile": STRING,
        "email": EMAIL,
        "type": STRING,
        "is_primary_contact": STRING,
        "uuid": UUID,
    },
    create_scopes=frozenset({"manage_customer_contacts"}),
    manage_scopes=frozenset({"manage_customer_contacts"}),
)

JOBACTIVITY_WRITE = WriteSchema(
    "JobActivityCreate",
    {
        "job_uuid": UUID,
        "staff_uuid": UUID,
        "start_date": STRING,
        "end_date": STRING,
        "activity_was_scheduled": STRING,
        "activity_was_recorded": STRING,
        "activity_was_automated": STRING,
        "has_been_opened": STRING,
        "has_been_opened_timestamp": STRING,
        "travel_time_in_seconds": INTEGER,
        "travel_distance_in_meters": INTEGER,
        "allocated_by_staff_uuid": ANY,  # DEPRECATED [spec]
        "allocated_timestamp": ANY,  # DEPRECATED [spec]
        "material_uuid": UUID,
        "uuid": UUID,
        "edit_by_staff_uuid": UUID_READ_ONLY,
    },
    create_scopes=frozenset({"manage_schedule"}),
    manage_scopes=frozenset({"manage_schedule"}),
)

WRITE_SCHEMAS: dict[str, WriteSchema] = {
    "job": JOB_WRITE,
    "jobmaterial": JOBMATERIAL_WRITE,
    "note": NOTE_WRITE,
    "jobcontact": JOBCONTACT_WRITE,
    "company": COMPANY_WRITE,
    "companycontact": COMPANYCONTACT_WRITE,
    "jobactivity": JOBACTIVITY_WRITE,
}


# --- request parsing -----------------------------------------------------------------------------


@dataclass
class WriteRequest:
    """A parsed body: the writable ``changes``, the supplied ``uuid`` and ``active``, errors."""

    changes: dict[str, Any] = field(default_factory=dict)
    uuid: str | None = None
    active: int | None = None
    ignored: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_write(schema: WriteSchema, body: Mapping[str, Any], *, creating: bool) -> WriteRequest:
    """Check ``body`` against ``schema`` (see the module docstring for the rules)."""
    out = WriteRequest()
    for key, value in body.items():
        rule = ACTIVE if key == "active" else schema.fields.get(key)
        if rule is None:
            if key in schema.read_only_extra:
                out.ignored.append(key)
            else:
                out.errors.append(f"{key}: unknown field for {schema.schema}")
            continue
        error = rule.check(value)
        if error:
            out.errors.append(f"{key}: {error}")
        elif key == "active":
            out.active = int(value)
        elif key == "uuid":
            out.uuid = value.lower()
        elif rule.read_only:
            out.ignored.append(key)
        else:
            out.changes[key] = int(value) if rule.type == "integer" else value
    # On update too: the spec's update body is the same Create schema (module docstring).
    out.errors.extend(f"{name}: required" for name in schema.required if name not in body)
    return out


def record_rule_error(
    obj: str, old: Mapping[str, Any] | None, new: Mapping[str, Any], changes: Mapping[str, Any]
) -> str | None:
    """The documented per-object rules (module docstring); ``old`` None on create."""
    if obj == "jobmaterial":
        if old is None and "job_uuid" not in changes:
            return "job_uuid: required"
        if not str(new.get("quantity", "")).strip():
            return "quantity: cannot be empty"
    elif obj == "jobcontact":
        if old is None and "job_uuid" not in changes:
            return "job_uuid: required"
        if old is not None and "job_uuid" in changes and changes["job_uuid"] != old.get("job_uuid"):
            return "job_uuid: cannot be changed once set"
    elif obj == "jobactivity":
        if new.get("activity_was_scheduled") == "1" and new.get("activity_was_recorded") == "1":
            return "activity_was_scheduled and activity_was_recorded cannot both be 1"
    return None


# --- job status workflow -------------------------------------------------------------------------

# Status → the date field stamped when a job changes to it: "The date and time that the job status
# was changed to Quote / Work Order / Completed / Unsuccessful" [spec: Job.quote_date,
# work_order_date, completion_date, unsuccessful_date].
JOB_STATUS_DATES = {
    "Quote": "quote_date",
    "Work Order": "work_order_date",
    "Completed": "completion_date",
    "Unsuccessful": "unsuccessful_date",
}
# Flag → its timestamp, stamped when the flag changes to 1 [spec: Job.quote_sent_stamp
# "Timestamp when the quote was sent", invoice_sent_stamp, payment_processed_stamp "The date and
# time the job has been exported", payment_received_stamp "when full payment was received"].
JOB_FLAG_STAMPS = {
    "quote_sent": "quote_sent_stamp",
    "invoice_sent": "invoice_sent_stamp",
    "payment_processed": "payment_processed_stamp",
    "payment_received": "payment_received_stamp",
}

# Allowed changes of ``job.status`` (current → new). Setting the current status again is always
# allowed and changes nothing (no date is re-stamped).
#
# Sources. The four values are the spec's enum (JobCreate.status). Their meaning is ServiceM8's
# help article "What does Job Status mean?"
# (https://support.servicem8.com/hc/en-us/articles/115005715723-What-does-Job-Status-mean):
# Quote = "needs to be quoted, or is waiting for the quote to be approved"; Work Order = "You
# have received approval from the client for work to start"; Completed = "All work on the job
# has been completed"; Unsuccessful = "Either the quote was not accepted or the job has been
# cancelled"; "finished jobs or unsuccessful client interactions should either be marked as
# Completed or Unsuccessful". Approve = Quote → Work Order, reject = Quote → Unsuccessful
# (NOTES.md §1 "Quotes", PRODUCT.md provider table).
#
# Neither the spec nor the docs say which changes the API *refuses*; the sandbox enforces the
# project's reading of the workflow (NOTES.md §1 marks it [mem]) so that clients cannot rely on
# stale writes going through:
#
# - only a Quote can become a Work Order (approval);
# - Completed and Unsuccessful are final: such a job cannot go back to Quote (nor anywhere else);
# - Unsuccessful is reached by rejecting a Quote or by cancelling a Work Order (the help article's
#   "or the job has been cancelled");
# - a Work Order may go back to Quote or on to Completed.
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    "Quote": frozenset({"Work Order", "Unsuccessful", "Completed"}),
    "Work Order": frozenset({"Quote", "Completed", "Unsuccessful"}),
    "Completed": frozenset(),
    "Unsuccessful": frozenset(),
}


def job_transition_error(current: str | None, new: str) -> str | None:
    """Why ``current`` → ``new`` is refused, or None when it is allowed (see JOB_TRANSITIONS)."""
    if current == new or current not in JOB_TRANSITIONS:
        return None
    if new in JOB_TRANSITIONS[current]:
        return None
    if current in ("Completed", "Unsuccessful"):
        reason = f"{current} is a final status"
    elif new == "Work Order":
        reason = "only a Quote can be approved to a Work Order"
    else:  # pragma: no cover - every other pair is allowed by the table
        reason = "this status change is not allowed"
    return f"Job status cannot change from '{current}' to '{new}': {reason}."


def apply_job_rules(
    old: Mapping[str, Any] | None,
    data: dict[str, Any],
    changes: Mapping[str, Any],
    *,
    now_text: str,
    today: str,
) -> None:
    """Stamp the derived job dates in ``data`` (the merged record) for this write.

    A date the client sends explicitly wins over the stamp.
    """
    old_status = old.get("status") if old is not None else None
    status = data.get("status")
    if status != old_status and status in JOB_STATUS_DATES:
        date_field = JOB_STATUS_DATES[status]
        if date_field not in changes:
            data[date_field] = now_text
    for flag, stamp in JOB_FLAG_STAMPS.items():
        was = old.get(flag) if old is not None else 0
        if data.get(flag) == 1 and was != 1 and stamp not in changes:
            data[stamp] = now_text
    if old is None and "date" not in changes:
        data["date"] = today


# --- derived totals ------------------------------------------------------------------------------

_CENT = Decimal("0.01")


def _decimal(value: Any) -> Decimal:
    try:
        number = Decimal(str(value).strip() or "0")
    except InvalidOperation:
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)


def invoice_total(lines: Iterable[Mapping[str, Any]], tax_rates: Mapping[str, Any]) -> str:
    """A job's ``total_invoice_amount``: Σ quantity × price × (1 + tax %), 2-decimal string.

    ``lines`` are its *active* job materials; ``tax_rates`` maps a taxrate uuid to its ``amount``
    (the percentage as a string, "10" for 10 % [spec: TaxRate.amount]); an unknown rate is 0 %.
    Each line is rounded to the cent, as the seeder computes it.
    """
    total = Decimal(0)
    for line in lines:
        rate = _decimal(tax_rates.get(str(line.get("tax_rate_uuid", "")), 0))
        amount = _decimal(line.get("quantity")) * _decimal(line.get("price")) * (100 + rate) / 100
        total += amount.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    return str(total.quantize(_CENT))
