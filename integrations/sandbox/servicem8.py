"""ServiceM8 emulation: REST api_1.0 reads and writes, vendor, OAuth 2.0 authorization-code flow.

Written from the official OpenAPI file (``shared/provider-specs/servicem8/
servicem8-api_1.0.openapi.json``, "the spec") and the developer docs cited inline; NOTES.md §1
summarizes both. Nothing here may import the ServiceM8 client (STYLE.md §1).

URLs (sandbox root + path; the real host is https://api.servicem8.com):

- ``GET /servicem8/api_1.0/{object}.json``  list (``cursor`` paging, ``$filter``)
- ``GET /servicem8/api_1.0/{object}/{uuid}.json``  one record
- ``POST /servicem8/api_1.0/{object}.json``  create (200 ``Result`` + ``x-record-uuid``)
- ``POST /servicem8/api_1.0/{object}/{uuid}.json``  partial update
- ``DELETE /servicem8/api_1.0/{object}/{uuid}.json``  soft delete (``active`` 0)
- ``GET /servicem8/api_1.0/attachment/{uuid}.file``  an attachment's bytes (see ``get_file``)
- ``GET /servicem8/oauth/authorize``  auto-approves, 302 to ``redirect_uri?code=…&state=…``
- ``POST /servicem8/oauth/access_token``  ``authorization_code`` / ``refresh_token`` grants
- ``GET/POST/DELETE /servicem8/webhook_subscriptions…``  the Webhooks API (``servicem8_webhooks``)

Emulated objects are listed in ``OBJECTS``: ``company``, ``companycontact``, ``staff``, ``job``
(quotes are jobs with status ``Quote``), ``jobmaterial``, ``jobactivity``, ``material``,
``category``, ``taxrate``, ``vendor``, ``note`` (one note: ``dbonote/{uuid}.json``),
``jobcontact`` and ``jobmaterialbundle``; adding one is an ``ObjectSpec``
with its read scopes and field defaults, plus seed data. Every object lists and pages through the
same generic ``{object}.json`` machinery. ``job``, ``jobmaterial``, ``note``, ``jobcontact``,
``company``, ``companycontact`` and ``jobactivity`` are also writable: their request schemas, write
scopes, validation rules and the job status workflow are in ``servicem8_writes.py``; writes share
the reads' auth, rate limits, faults and stats. Field names and types are the spec's
(``components.schemas``): flags the spec types as strings (``is_primary_contact``,
``activity_was_scheduled``, …) are ``"0"``/``"1"``, money is a 2-decimal string (``"120.00"``),
unset dates are ``0000-00-00 00:00:00`` (NOTES.md §1 "Gotchas"). Reference fields the spec declares
with ``format: uuid`` are **omitted** when they have no value, since ``""`` would not validate
against the spec (the real API may send ``""``; clients should accept both).

Time zones: ``modified`` is stored in UTC; ``edit_date`` is rendered as
``YYYY-MM-DD HH:MM:SS`` in the **account's** zone (``accounts.py``; Australia/Sydney for the
primary account), and ``$filter`` values on ``edit_date`` are read in that zone too. The spec
states no zone for ``edit_date`` ("Timestamp at which record was last modified"); account-local
time is NOTES.md §1's [mem] belief, emulated here so clients are forced to handle it. Local
times repeated at a DST fall-back are read as the first (earlier) occurrence.

Attachments: ``attachment`` is emulated too (read-only), its records also readable at
``dboattachment/{uuid}.json`` (the spec's path for one attachment), and its files at
``attachment/{uuid}.file`` (``get_file``; bytes derived from the uuid by ``attachment_file``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid as uuid_lib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.sandbox import accounts
from integrations.sandbox import servicem8_webhooks as hooks
from integrations.sandbox.app import (
    Endpoint,
    LimitRule,
    ProviderApi,
    SandboxApp,
    Setting,
    json_response,
    json_text_response,
    oauth_client_credentials,
    splice_json_raw,
    stream_json_array,
)
from integrations.sandbox.servicem8_writes import (
    COMPANY_WRITE,
    COMPANYCONTACT_WRITE,
    JOB_WRITE,
    JOBACTIVITY_WRITE,
    JOBCONTACT_WRITE,
    JOBMATERIAL_WRITE,
    NOTE_WRITE,
    WriteSchema,
    apply_job_rules,
    invoice_total,
    job_transition_error,
    parse_write,
    record_rule_error,
)
from integrations.sandbox.store import Collection, Condition, Record, RecordId, now_us

PROVIDER = "servicem8"
API_PREFIX = "/servicem8/api_1.0"
OAUTH_PREFIX = "/servicem8/oauth"
HOOKS_PREFIX = "/servicem8/webhook_subscriptions"

# Every scope the spec's oauth2 security scheme declares
# (components.securitySchemes.oauth2.flows.authorizationCode.scopes), plus the tax-rate scopes.
KNOWN_SCOPES = frozenset(
    """staff_locations staff_activity publish_sms publish_email vendor vendor_logo vendor_email
    read_locations manage_locations read_staff manage_staff read_customers manage_customers
    read_customer_contacts manage_customer_contacts read_jobs manage_jobs create_jobs
    read_job_contacts manage_job_contacts read_job_materials manage_job_materials
    read_job_categories manage_job_categories read_job_queues manage_job_queues read_tasks
    manage_tasks read_schedule manage_schedule read_inventory manage_inventory read_job_notes
    publish_job_notes read_job_photos publish_job_photos read_attachments manage_attachments
    read_inbox read_messages manage_notifications manage_templates manage_badges read_assets
    manage_assets read_knowledge_base manage_knowledge_base""".split()
    # Not declared in the scheme but required by the spec's /taxrate.json operations
    # (``security: [{oauth2: [read_tax_rates]}]``), so an app must be able to request them.
    + ["read_tax_rates", "manage_tax_rates"]
)

# The spec's error bodies (components.schemas.Error/AuthenticationError/…). The schemas type
# ``errorCode`` as a number although some spec *examples* show it as a string ("401"); the
# schema is what a validator checks, so numbers are sent.
MESSAGES = {
    400: "An error occurred completing your request",
    401: "Authentication failed. Please check your API key or OAuth token.",
    403: "Access forbidden. You don't have permission to access this resource.",
    404: "Resource not found. The requested record does not exist or has been deleted.",
    405: "Method not allowed.",
    500: "An unexpected error occurred. Please try again later.",
}
# Rate-limit texts, verbatim from the spec's info.description ("Limits and Throttling").
RATE_LIMIT_MINUTE = "Number of allowed API requests per minute exceeded"
RATE_LIMIT_DAY = "Number of allowed API requests per day exceeded"
# The 200 body of every write [spec: components.schemas.Result; errorCode is typed number].
RESULT_OK = {"errorCode": 0, "message": "OK"}

# $filter rules, https://developer.servicem8.com/docs/filtering (NOTES.md §1): eq/ne/gt/lt
# only ("ge"/"le" are "not currently supported"), conditions joined by "and" only, at most 10.
MAX_FILTER_CONDITIONS = 10
_FILTER_COND = re.compile(
    r"\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<op>[A-Za-z]+)\s+"
    r"(?P<value>'(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*"
)
_FILTER_AND = re.compile(r"and\s+")
_FILTER_WORD = re.compile(r"[A-Za-z]+")
_EDIT_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
_SECOND_US = 1_000_000
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Valid-looking uuid of the GST tax rate every sandbox company points at (the spec types
# Company.tax_rate_uuid as format "uuid", so an empty string would not validate).
GST_TAX_RATE_UUID = "7c1f3a52-6d0e-4b8a-9c21-5e2a8f0d4b17"

# Company fields from the spec (components.schemas.Company), minus uuid/active/edit_date which
# the store keeps as columns. ServiceM8 returns empty strings rather than nulls (NOTES.md §1
# "Gotchas"), so those are the defaults.
COMPANY_DEFAULTS: dict[str, Any] = {
    "name": "",
    "abn_number": "",
    "address": "",
    "billing_address": "",
    # readOnly integer enum [0, 1] in the spec; ServiceM8 derives it from the name.
    "is_individual": 0,
    # Blank = head office; a uuid = this record is a Site of that company [spec: Company].
    "parent_company_uuid": "",
    "website": "",
    "address_street": "",
    "address_city": "",
    "address_state": "",
    "address_postcode": "",
    "address_country": "",
    "fax_number": "",
    "badges": "",
    "tax_rate_uuid": GST_TAX_RATE_UUID,
    "billing_attention": "",
    "payment_terms": "",
}

# Vendor fields from the spec (components.schemas.Vendor), uuid/active/edit_date excluded.
VENDOR_DEFAULTS: dict[str, Any] = {
    "name": "",
    "abn_number": "",
    "business_number": "",
    "website": "",
    "email": "",
    "email_accounts": "",
    "billing_address": "",
    "accepted_payment_methods": "",
    "default_region": "AU",
    "currency": "AUD",
    # Minutes from midnight, as strings [spec: Vendor.opening_time_*].
    **{f"opening_time_{d}": "480" for d in ("monday", "tuesday", "wednesday", "thursday")},
    **{f"closing_time_{d}": "1020" for d in ("monday", "tuesday", "wednesday", "thursday")},
    "opening_time_friday": "480",
    "closing_time_friday": "1020",
    "opening_time_saturday": "0",
    "closing_time_saturday": "0",
    "opening_time_sunday": "0",
    "closing_time_sunday": "0",
    "timezone_name": "",
    "invoice_terms": "",
    "job_default_status": "Quote",
}


# ServiceM8's "no date" value (NOTES.md §1 "Gotchas": empty dates are 0000-00-00 00:00:00).
NO_DATE = "0000-00-00 00:00:00"

# The remaining objects' fields from the spec (components.schemas.<Name>), uuid/active/edit_date
# excluded, in the spec's order. Reference fields typed ``format: uuid`` are left out unless a
# sensible default exists (see the module docstring); the seeder fills them in.
COMPANYCONTACT_DEFAULTS: dict[str, Any] = {
    # company_uuid (uuid)
    "first": "",
    "last": "",
    "phone": "",
    "mobile": "",
    # email is format "email", so it is only sent when known.
    # 'BILLING' for billing contacts, 'JOB' for job contacts [spec: CompanyContact.type].
    "type": "",
    # A string "1"/"0" in the spec; one active primary contact per company.
    "is_primary_contact": "0",
}

STAFF_DEFAULTS: dict[str, Any] = {
    "first": "",
    "last": "",
    # email: required and format "email" in the spec; always set by the seeder.
    "mobile": "",
    "lng": 0.0,
    "lat": 0.0,
    "geo_timestamp": NO_DATE,
    "job_title": "",
    # navigating_to_job_uuid (uuid)
    "navigating_timestamp": NO_DATE,
    "navigating_expiry_timestamp": NO_DATE,
    "color": "",
    "custom_icon_url": "",  # DEPRECATED [spec]
    "status_message": "",
    "status_message_timestamp": NO_DATE,
    "hide_from_schedule": 0,
    "can_receive_push_notification": "0",
    # security_role_uuid, labour_material_uuid (uuid)
}

JOB_DEFAULTS: dict[str, Any] = {
    # created_by_staff_uuid (uuid)
    "date": "0000-00-00",
    # company_uuid (uuid)
    "billing_address": "",
    # Quote | Work Order | Unsuccessful | Completed; a quote is a job with status Quote.
    "status": "Quote",
    "lng": 0.0,
    "lat": 0.0,
    # payment_* are "Not used. Refer to JobPayment endpoint." [spec]
    "payment_date": NO_DATE,
    # payment_actioned_by_uuid (uuid)
    "payment_method": "",
    "payment_amount": "0.00",
    # category_uuid (uuid)
    "payment_note": "",
    "geo_is_valid": 0,
    "purchase_order_number": "",
    "invoice_sent": 0,
    "invoice_sent_stamp": NO_DATE,
    "ready_to_invoice": "0",  # DEPRECATED, untyped [spec]
    "ready_to_invoice_stamp": NO_DATE,  # DEPRECATED, untyped [spec]
    "geo_country": "",
    "geo_postcode": "",
    "geo_state": "",
    "geo_city": "",
    "geo_street": "",
    "geo_number": "",
    # queue_uuid (uuid)
    "queue_expiry_date": NO_DATE,
    # queue_assigned_staff_uuid (uuid)
    "badges": "[]",  # "JSON Array of Badge UUIDs" [spec]
    "quote_date": NO_DATE,
    "quote_sent": 0,
    "quote_sent_stamp": NO_DATE,
    "work_order_date": NO_DATE,
    "active_network_request_uuid": "",  # DEPRECATED, untyped [spec]
    "related_knowledge_articles": "",  # DEPRECATED, untyped [spec]
    "job_address": "",
    "job_description": "",
    "work_done_description": "",
    "generated_job_id": "",
    # Read-only; a string in the spec: the invoice total incl. tax of the active job materials.
    "total_invoice_amount": "0.00",
    "payment_processed": 0,
    "payment_processed_stamp": NO_DATE,
    "payment_received": 0,
    "payment_received_stamp": NO_DATE,
    "completion_date": NO_DATE,
    # completion_actioned_by_uuid (uuid)
    "unsuccessful_date": NO_DATE,
    "job_is_scheduled_until_stamp": NO_DATE,
}

JOBMATERIAL_DEFAULTS: dict[str, Any] = {
    # job_uuid, material_uuid (uuid)
    "name": "",
    # All strings in the spec. price/cost are ex-tax unit amounts; displayed_amount and
    # displayed_cost are the unit amounts as shown (tax-inclusive when the flag is "1").
    "quantity": "1",
    "price": "0.00",
    "displayed_amount": "0.00",
    "displayed_amount_is_tax_inclusive": "0",
    "tax_rate_uuid": GST_TAX_RATE_UUID,
    "sort_order": "0",
    "cost": "0.00",
    "displayed_cost": "0.00",
    # job_material_bundle_uuid (uuid; blank = not in a bundle [spec])
}

JOBACTIVITY_DEFAULTS: dict[str, Any] = {
    # job_uuid, staff_uuid (uuid)
    "start_date": NO_DATE,
    "end_date": NO_DATE,
    # Flags are strings in the spec; scheduled and recorded are mutually exclusive.
    "activity_was_scheduled": "0",
    "activity_was_recorded": "0",
    "activity_was_automated": "0",
    "has_been_opened": "0",
    "has_been_opened_timestamp": NO_DATE,
    "travel_time_in_seconds": 0,
    "travel_distance_in_meters": 0,
    "allocated_by_staff_uuid": "",  # DEPRECATED, untyped [spec]
    "allocated_timestamp": "",  # DEPRECATED, untyped [spec]
    # material_uuid, edit_by_staff_uuid (uuid)
}

MATERIAL_DEFAULTS: dict[str, Any] = {
    "name": "",
    "item_number": "",
    "price": "0.00",
    "cost": "0.00",
    "quantity_in_stock": 0,
    "price_includes_taxes": 0,
    "barcode": "",
    "item_is_inventoried": 0,
    "item_description": "",
    "use_description_for_invoicing": "0",
    "tax_rate_uuid": GST_TAX_RATE_UUID,
}

# Job categories (there is no material category object [NOTES.md §1 "Pricebook"]).
CATEGORY_DEFAULTS: dict[str, Any] = {"name": "", "colour": ""}

# amount: the percentage as a string, "10" for 10 % [spec: TaxRate.amount].
TAXRATE_DEFAULTS: dict[str, Any] = {"name": "", "amount": "0", "is_default_tax_rate": 0}

# Diary notes [spec: Note] on jobs and clients; seeded, and created through ``POST /note.json``.
NOTE_DEFAULTS: dict[str, Any] = {
    # related_object_uuid, action_completed_by_staff_uuid, edit_by_staff_uuid (uuid)
    "related_object": "",  # "job" for a job diary note [NOTES.md §1 "Quotes"]
    "note": "",
    "action_required": "",
    "create_date": NO_DATE,  # set to the creation time by POST /note.json
}

# Per-job contacts [spec: JobContact]; seeded on some jobs (a tenant's site contact, a property
# manager, a separate billing contact). job_uuid (uuid), email (email) when known;
# is_primary_contact is DEPRECATED [spec] and left out.
JOBCONTACT_DEFAULTS: dict[str, Any] = {
    "first": "",
    "last": "",
    "phone": "",
    "mobile": "",
    "type": "",
}

# Bundle lines on a job's quote or invoice [spec: JobMaterialBundle]; its job materials name it
# in ``job_material_bundle_uuid``. job_uuid and material_bundle_uuid (uuid) are set by the seeder
# (``materialbundle``, the pricebook bundle it came from, is referenced but not emulated).
JOBMATERIALBUNDLE_DEFAULTS: dict[str, Any] = {
    "item_number": "",
    "name": "",
    "quantity": "1",  # a string in the spec, > 0
    "sort_order": 0,  # an integer in the spec (its list example shows a string)
}


# File attachments [spec: Attachment] on a job, a client, a staff member… (``related_object``,
# lower case, and ``related_object_uuid``). related_object_uuid and created_by_staff_uuid (uuid)
# are set by the seeder. ``file_type`` is the extension with its dot (".pdf"), ``photo_*`` are
# strings, ``class_name`` (untyped, read-only) is left out. The bytes are ``attachment_file``.
ATTACHMENT_DEFAULTS: dict[str, Any] = {
    "related_object": "",
    "attachment_name": "",
    "file_type": "",
    "attachment_source": "",  # e.g. "QUOTE", "INVOICE" [spec]
    "tags": "",
    "lng": 0.0,
    "lat": 0.0,
    "photo_width": "",
    "photo_height": "",
    "extracted_info": "",
    "is_favourite": "0",
    "metadata": "",
    "timestamp": NO_DATE,
}
# file_type -> (Content-Type of the ``.file`` answer, leading "magic" bytes of such a file).
FILE_TYPES: dict[str, tuple[str, bytes]] = {
    ".pdf": ("application/pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
    ".jpg": ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    ".jpeg": ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    ".png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    ".txt": ("text/plain", b""),
}
_FILE_MIN, _FILE_SPREAD = 1024, 160 * 1024


def attachment_file(uuid: str, file_type: str) -> tuple[bytes, str]:
    """The bytes and Content-Type of an attachment's file: a pure function of its uuid and
    ``file_type`` (the type's magic bytes, then SHAKE-256 of the uuid), 1–161 KiB long, so a
    download can be compared with what the sandbox serves without storing any file."""
    unknown = ("application/octet-stream", b"")
    content_type, magic = FILE_TYPES.get(file_type.strip().lower(), unknown)
    uid = uuid.lower()
    size = _FILE_MIN + int(uid.replace("-", "")[:8], 16) % _FILE_SPREAD
    body = hashlib.shake_256(f"servicem8-attachment:{uid}".encode()).digest(size - len(magic))
    return magic + body, content_type


@dataclass(frozen=True)
class ObjectSpec:
    """An emulated ServiceM8 object: read scopes, field defaults and (if writable) its writes.

    ``writes`` None: read-only in the sandbox (the real API may accept writes; they are just not
    emulated). See ``servicem8_writes`` for the write schemas and their scopes.
    """

    name: str
    read_scopes: frozenset[str]
    defaults: dict[str, Any]
    writes: WriteSchema | None = None


# Read scopes per object come from each path's "OAuth Scope" text in the spec; a manage_*
# scope includes read access ("Full access to … Endpoint" [spec: oauth2 scopes]).
OBJECTS: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec(
            "company",
            frozenset({"read_customers", "manage_customers"}),
            COMPANY_DEFAULTS,
            COMPANY_WRITE,
        ),
        ObjectSpec(
            "companycontact",
            frozenset({"read_customer_contacts", "manage_customer_contacts"}),
            COMPANYCONTACT_DEFAULTS,
            COMPANYCONTACT_WRITE,
        ),
        ObjectSpec("staff", frozenset({"read_staff", "manage_staff"}), STAFF_DEFAULTS),
        ObjectSpec("job", frozenset({"read_jobs", "manage_jobs"}), JOB_DEFAULTS, JOB_WRITE),
        ObjectSpec(
            "jobmaterial",
            frozenset({"read_job_materials", "manage_job_materials"}),
            JOBMATERIAL_DEFAULTS,
            JOBMATERIAL_WRITE,
        ),
        ObjectSpec(
            "jobactivity",
            frozenset({"read_schedule", "manage_schedule"}),
            JOBACTIVITY_DEFAULTS,
            JOBACTIVITY_WRITE,
        ),
        # publish_job_notes only adds notes ("Ability to add new job notes"), so it does not
        # grant reading them.
        ObjectSpec("note", frozenset({"read_job_notes"}), NOTE_DEFAULTS, NOTE_WRITE),
        ObjectSpec(
            "jobcontact",
            frozenset({"read_job_contacts", "manage_job_contacts"}),
            JOBCONTACT_DEFAULTS,
            JOBCONTACT_WRITE,
        ),
        ObjectSpec(
            "material", frozenset({"read_inventory", "manage_inventory"}), MATERIAL_DEFAULTS
        ),
        ObjectSpec(
            "category",
            frozenset({"read_job_categories", "manage_job_categories"}),
            CATEGORY_DEFAULTS,
        ),
        ObjectSpec("taxrate", frozenset({"read_tax_rates", "manage_tax_rates"}), TAXRATE_DEFAULTS),
        # Read scope of /jobmaterialbundle.json is read_job_materials [spec: security].
        ObjectSpec(
            "jobmaterialbundle",
            frozenset({"read_job_materials", "manage_job_materials"}),
            JOBMATERIALBUNDLE_DEFAULTS,
        ),
        ObjectSpec("vendor", frozenset({"vendor"}), VENDOR_DEFAULTS),
        ObjectSpec(
            "attachment",
            frozenset({"read_attachments", "manage_attachments"}),
            ATTACHMENT_DEFAULTS,
        ),
    )
}
# Other names of an object in the spec's paths: one attachment is read at
# ``/dboattachment/{uuid}.json`` while the list is ``/attachment.json``; one note at
# ``/dbonote/{uuid}.json`` while the list is ``/note.json`` (there is no ``/note/{uuid}.json``).
OBJECT_ALIASES = {"dboattachment": "attachment", "dbonote": "note"}


class FilterError(ValueError):
    """A ``$filter`` the real API would refuse (answered with 400)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, the add-on (API key or OAuth client) and its scopes."""

    account: accounts.ServiceM8Account
    app: str
    scopes: frozenset[str] | None  # None: API key, which has all access

    def may_read(self, spec: ObjectSpec) -> bool:
        return self.scopes is None or bool(self.scopes & spec.read_scopes)

    def may(self, scopes: frozenset[str]) -> bool:
        """Whether the principal holds one of ``scopes`` (API keys may do anything)."""
        return self.scopes is None or bool(self.scopes & scopes)


def _zone(account_uuid: str) -> ZoneInfo:
    account = accounts.servicem8_account_by_uuid(account_uuid)
    return ZoneInfo(account.timezone if account else "UTC")


class LocalTimeFormatter:
    """Renders UTC µs as account-local ``YYYY-MM-DD HH:MM:SS`` (``edit_date``), fast.

    UTC offsets only change on 15-minute UTC boundaries (every modern zone's transitions fall
    on them), so the offset is cached per 15-minute slot, the local date text per local day,
    and the time of day comes from ``divmod``: ~8x cheaper than
    ``datetime.astimezone().strftime()``.
    """

    _SLOT = 900
    _MAX_CACHE = 200_000

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._offsets: dict[int, int] = {}
        self._days: dict[int, str] = {}

    def __call__(self, modified_us: int) -> str:
        secs = modified_us // _SECOND_US
        slot = secs // self._SLOT
        offset = self._offsets.get(slot)
        if offset is None:
            local = datetime.fromtimestamp(slot * self._SLOT, tz=self.zone)
            offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
            if len(self._offsets) >= self._MAX_CACHE:
                self._offsets.clear()
            self._offsets[slot] = offset
        day, rem = divmod(secs + offset, 86400)
        date = self._days.get(day)
        if date is None:
            if len(self._days) >= self._MAX_CACHE:
                self._days.clear()
            date = self._days[day] = "%04d-%02d-%02d " % time.gmtime(day * 86400)[:3]  # noqa: UP031
        hours, rem = divmod(rem, 3600)
        minutes, seconds = divmod(rem, 60)
        return "%s%02d:%02d:%02d" % (date, hours, minutes, seconds)  # noqa: UP031


@functools.cache
def edit_date_formatter(zone_name: str) -> LocalTimeFormatter:
    """The shared formatter for one time zone."""
    return LocalTimeFormatter(ZoneInfo(zone_name))


def render_edit_date(modified_us: int, zone: ZoneInfo) -> str:
    """``edit_date`` text: whole seconds (truncated) in the account's zone."""
    return edit_date_formatter(zone.key)(modified_us)


def parse_edit_date(text: str, zone: ZoneInfo) -> int:
    """A ``$filter`` edit_date value (account-local) as UTC µs; ``FilterError`` if unreadable."""
    for fmt in _EDIT_DATE_FORMATS:
        try:
            naive = datetime.strptime(text, fmt)  # noqa: DTZ007 - zone attached on the next line
        except ValueError:
            continue
        local = naive.replace(tzinfo=zone, fold=0)
        return int(local.timestamp()) * _SECOND_US
    raise FilterError(f"edit_date value {text!r} is not 'YYYY-MM-DD HH:MM:SS'")


def parse_filter(text: str | None, zone: ZoneInfo) -> list[Condition]:
    """Translate a ServiceM8 ``$filter`` into store conditions.

    Grammar (docs above): ``field op value [and field op value]…`` with op in eq/ne/gt/lt,
    strings in single quotes (``''`` escapes a quote, as in OData), numbers bare.

    ``edit_date`` is compared as a timestamp at the one-second precision it is rendered with:
    ``gt X`` means "renders later than X", i.e. modified ≥ X + 1 s. ``uuid`` and ``active`` map
    to store columns; any other field is read from the record JSON, numerically when the value
    is a bare number and as text when quoted. Unknown fields simply match nothing.
    """
    if text is None or not text.strip():
        return []
    conditions: list[Condition] = []
    count = 0
    pos = 0
    while True:
        match = _FILTER_COND.match(text, pos)
        if match is None:
            raise FilterError(f"cannot parse $filter at {text[pos:]!r}")
        count += 1
        if count > MAX_FILTER_CONDITIONS:
            raise FilterError(f"$filter allows at most {MAX_FILTER_CONDITIONS} conditions")
        conditions.extend(_condition(match["field"], match["op"].lower(), match["value"], zone))
        pos = match.end()
        if pos == len(text):
            return conditions
        joiner = _FILTER_AND.match(text, pos)
        if joiner is None:
            word = _FILTER_WORD.match(text, pos)
            found = word.group(0) if word else text[pos:]
            raise FilterError(f"only 'and' may join $filter conditions, not {found!r}")
        pos = joiner.end()


def _condition(field: str, op: str, raw: str, zone: ZoneInfo) -> list[Condition]:
    if op in ("ge", "le"):
        # Verbatim limitation from https://developer.servicem8.com/docs/filtering.
        raise FilterError(f"operator '{op}' is not currently supported")
    if op not in ("eq", "ne", "gt", "lt"):
        raise FilterError(f"unknown $filter operator {op!r}")
    quoted = raw.startswith("'")
    value: Any = raw[1:-1].replace("''", "'") if quoted else float(raw)
    if field == "edit_date":
        if not quoted:
            raise FilterError("edit_date must be compared with a quoted 'YYYY-MM-DD HH:MM:SS'")
        start = parse_edit_date(value, zone)
        end = start + _SECOND_US
        return {
            "gt": [Condition("modified", "ge", end)],
            "lt": [Condition("modified", "lt", start)],
            "eq": [Condition("modified", "ge", start), Condition("modified", "lt", end)],
            "ne": [Condition("modified", "outside", (start, end))],
        }[op]
    if field == "uuid":
        return [Condition("id", op, str(value) if quoted else raw)]
    if field == "active":
        try:
            return [Condition("active", op, int(float(value)))]
        except ValueError as exc:
            raise FilterError("active must be compared with 0 or 1") from exc
    return [Condition(f"data.{field}", op, value, cast="text" if quoted else "real")]


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class ServiceM8Api(ProviderApi):
    """The ServiceM8 emulator. See the module docstring."""

    provider = PROVIDER
    settings = {
        # Access-token lifetime: ≈1 h per NOTES.md §1 [mem]; clients must honour expires_in.
        "access_token_ttl": Setting(3600, 0, 10 * 365 * 86400),
        # RFC 6749 §4.1.2 recommends a code lifetime of at most 10 minutes.
        "authorization_code_ttl": Setting(600, 0, 86400),
        # "each response ≤ 5,000 records" (https://developer.servicem8.com/docs/pagination).
        "page_size": Setting(5000, 1, 5000),
        # 180/min and 20,000/day per add-on per account [spec: info.description].
        "rate_limit_per_minute": Setting(180, 0),
        "rate_limit_per_day": Setting(20000, 0),
    }

    def __init__(self, app: SandboxApp) -> None:
        super().__init__(app)
        # Serializes API writes (read-modify-write of a record plus derived totals) within this
        # server process, so concurrent updates of one record cannot lose each other's fields.
        self._write_lock = threading.Lock()

    def endpoints(self) -> list[tuple[Rule, Endpoint]]:
        p = PROVIDER
        return [
            (
                Rule(f"{API_PREFIX}/<obj>.json", methods=["GET"], endpoint="sm8.list"),
                Endpoint(p, "api", self.list_records, f"{API_PREFIX}/{{obj}}.json", ("obj",)),
            ),
            (
                Rule(f"{API_PREFIX}/<obj>/<uuid>.json", methods=["GET"], endpoint="sm8.get"),
                Endpoint(
                    p, "api", self.get_record, f"{API_PREFIX}/{{obj}}/{{uuid}}.json", ("obj",)
                ),
            ),
            (
                Rule(f"{API_PREFIX}/<obj>/<uuid>.file", methods=["GET"], endpoint="sm8.file"),
                Endpoint(p, "api", self.get_file, f"{API_PREFIX}/{{obj}}/{{uuid}}.file", ("obj",)),
            ),
            (
                Rule(f"{API_PREFIX}/<obj>.json", methods=["POST"], endpoint="sm8.create"),
                Endpoint(p, "api", self.create_record, f"{API_PREFIX}/{{obj}}.json", ("obj",)),
            ),
            (
                Rule(f"{API_PREFIX}/<obj>/<uuid>.json", methods=["POST"], endpoint="sm8.update"),
                Endpoint(
                    p, "api", self.update_record, f"{API_PREFIX}/{{obj}}/{{uuid}}.json", ("obj",)
                ),
            ),
            (
                Rule(f"{API_PREFIX}/<obj>/<uuid>.json", methods=["DELETE"], endpoint="sm8.delete"),
                Endpoint(
                    p, "api", self.delete_record, f"{API_PREFIX}/{{obj}}/{{uuid}}.json", ("obj",)
                ),
            ),
            # The Webhooks API, beside api_1.0 (servicem8_webhooks.py).
            (
                Rule(HOOKS_PREFIX, methods=["GET"], endpoint="sm8.hooks.list"),
                Endpoint(p, "api", functools.partial(hooks.list_subscriptions, self), HOOKS_PREFIX),
            ),
            (
                Rule(f"{HOOKS_PREFIX}/object", methods=["POST"], endpoint="sm8.hooks.object"),
                Endpoint(
                    p,
                    "api",
                    functools.partial(hooks.subscribe_object, self, objects=OBJECTS),
                    f"{HOOKS_PREFIX}/object",
                ),
            ),
            (
                Rule(f"{HOOKS_PREFIX}/<uuid>", methods=["DELETE"], endpoint="sm8.hooks.delete"),
                Endpoint(
                    p,
                    "api",
                    functools.partial(hooks.delete_subscription, self),
                    f"{HOOKS_PREFIX}/{{uuid}}",
                ),
            ),
            (
                Rule(f"{OAUTH_PREFIX}/authorize", methods=["GET"], endpoint="sm8.authorize"),
                Endpoint(p, "token", self.authorize, f"{OAUTH_PREFIX}/authorize"),
            ),
            (
                Rule(f"{OAUTH_PREFIX}/access_token", methods=["POST"], endpoint="sm8.token"),
                Endpoint(p, "token", self.access_token, f"{OAUTH_PREFIX}/access_token"),
            ),
        ]

    # --- errors --------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        text = message or MESSAGES.get(status) or MESSAGES[500 if status >= 500 else 400]
        return json_response({"errorCode": status, "message": text}, status, headers)

    # --- auth and limits -----------------------------------------------------------------------

    def authenticate(self, request: Request) -> Principal | Response:
        """API key (``X-Api-Key``) or OAuth bearer token [spec: components.securitySchemes]."""
        api_key = request.headers.get("X-Api-Key")
        if api_key is not None:
            account = accounts.servicem8_account_by_api_key(api_key)
            if account is None:
                return self.error_response(401)
            return Principal(account=account, app=f"api_key:{account.api_key}", scopes=None)
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return self.error_response(401)
        token = self.store.token_get(credential.strip(), kind="access", provider=PROVIDER)
        if token is None or token.expired():
            return self.error_response(401)
        account = accounts.servicem8_account_by_uuid(token.account)
        if account is None:
            return self.error_response(401)
        return Principal(account=account, app=f"oauth:{token.client_id}", scopes=token.scopes)

    def check_rate_limit(self, principal: Principal) -> Response | None:
        """Apply 180/min (sliding 60 s window) and 20,000/day (account-local calendar day).

        "Limits are per Addon per account" [spec: info.description]: the key is (account,
        add-on), the add-on being the API key or the OAuth client. The spec documents no
        Retry-After header for ServiceM8 429s, so none is sent.
        """
        self.app.stats.account_request(PROVIDER, principal.account.uuid)
        config = self.app.config
        if not config.enforce_rate_limits:
            return None
        today = datetime.now(tz=ZoneInfo(principal.account.timezone)).date()
        rules = (
            LimitRule("per_day", config.get(PROVIDER, "rate_limit_per_day"), 86400, today),
            LimitRule("per_minute", config.get(PROVIDER, "rate_limit_per_minute"), 60.0),
        )
        hit = self.app.limiter.hit((PROVIDER, principal.account.uuid, principal.app), rules)
        if hit is None:
            return None
        rule, _ = hit
        self.app.stats.rate_limited(PROVIDER, rule.name)
        message = RATE_LIMIT_DAY if rule.name == "per_day" else RATE_LIMIT_MINUTE
        # errorCode is the number 429 in both of the spec's RateLimitError examples.
        return json_response({"errorCode": 429, "message": message}, 429)

    def _begin(self, request: Request, obj: str) -> tuple[Principal, ObjectSpec] | Response:
        """Auth, rate limit, object lookup and scope check shared by list and get."""
        principal = self.authenticate(request)
        if isinstance(principal, Response):
            return principal
        limited = self.check_rate_limit(principal)
        if limited is not None:
            return limited
        spec = OBJECTS.get(OBJECT_ALIASES.get(obj, obj))
        if spec is None:
            return self.error_response(404, f"Object '{obj}' is not emulated by the sandbox.")
        if not principal.may_read(spec):
            return self.error_response(403)
        return principal, spec

    # --- REST ----------------------------------------------------------------------------------

    def render_record(self, collection: Collection, record: Record) -> str:
        return self._render(record, _zone(collection.account))

    @staticmethod
    def _render(record: Record, zone: ZoneInfo) -> str:
        # Soft-deleted records stay readable with active 0 [spec: DELETE /job/{uuid}.json].
        # uuid and edit_date never need JSON escaping (validated uuid, formatted digits).
        edit_date = edit_date_formatter(zone.key)(record.modified_us)
        return splice_json_raw(
            record.data_json,
            f'"uuid":"{record.id}","active":{1 if record.active else 0},"edit_date":"{edit_date}"',
        )

    def list_records(self, request: Request, obj: str) -> Response:
        begun = self._begin(request, obj)
        if isinstance(begun, Response):
            return begun
        principal, spec = begun
        zone = ZoneInfo(principal.account.timezone)
        collection = Collection(PROVIDER, principal.account.uuid, spec.name)
        try:
            conditions = parse_filter(request.args.get("$filter"), zone)
        except FilterError as exc:
            return self.error_response(400, f"Invalid $filter: {exc}")
        cursor = request.args.get("cursor")
        if cursor is None:
            # No cursor: the whole (filtered) collection in one response, streamed from SQL in
            # keyset batches. Paging is opt-in (https://developer.servicem8.com/docs/pagination).
            rows = self.store.iter_keyset(collection, conditions=conditions)
            return json_text_response(stream_json_array(self._render(r, zone) for r in rows))
        return self._page(collection, conditions, cursor, zone)

    def _page(
        self, collection: Collection, conditions: list[Condition], cursor: str, zone: ZoneInfo
    ) -> Response:
        """One cursor page: "-1" starts, ``x-next-cursor`` continues, absent header = done."""
        store = self.store
        after: tuple[int, RecordId] | None = None
        if cursor != "-1":
            state = store.cursor_get(cursor)
            if state is None or state.cid != store.collection_id(collection):
                return self.error_response(400, "Invalid cursor.")
            after = state.after
            if after is not None and self.app.faults.flag(PROVIDER, "mutate_during_sync"):
                self._mutate_served(collection, after)
        page_size = self.app.config.get(PROVIDER, "page_size")
        rows = store.list_keyset(
            collection, conditions=conditions, after=after, limit=page_size + 1
        )
        more = len(rows) > page_size
        rows = rows[:page_size]
        headers: dict[str, str] = {}
        if self.app.faults.flag(PROVIDER, "truncate_pages"):
            # Fault: half a page, and a "next" cursor that points where this page started, so a
            # correct client sees the same cursor twice and must stop instead of looping.
            self.app.stats.fault(PROVIDER, "truncate_pages")
            rows = rows[: len(rows) // 2]
            headers["x-next-cursor"] = (
                cursor if cursor != "-1" else store.cursor_create(collection, _new_cursor(), None)
            )
        elif more:
            last = rows[-1]
            headers["x-next-cursor"] = store.cursor_create(
                collection, _new_cursor(), (last.modified_us, last.id)
            )
        body = "[" + ",".join(self._render(r, zone) for r in rows) + "]"
        return json_text_response(body, headers=headers)

    def _mutate_served(self, collection: Collection, upto: tuple[int, RecordId]) -> None:
        """Fault: edit up to 3 already-served records so they move past the cursor.

        Paging is ordered by (edit time, uuid), so a record edited mid-walk re-appears later in
        the same walk: clients must de-duplicate by uuid.
        """
        served = self.store.last_served(collection, upto=upto, limit=3)
        if not served:
            return
        now = time.time_ns() // 1000
        self.store.touch(collection, [r.id for r in served], modified_us=now)
        self.app.stats.fault(PROVIDER, "mutate_during_sync", len(served))

    def get_record(self, request: Request, obj: str, uuid: str) -> Response:
        begun = self._begin(request, obj)
        if isinstance(begun, Response):
            return begun
        principal, spec = begun
        if not _UUID.match(uuid):
            # The spec declares the path parameter as format "uuid" and documents 400 for
            # "malformed or … invalid parameters".
            return self.error_response(400, "Invalid UUID.")
        collection = Collection(PROVIDER, principal.account.uuid, spec.name)
        record = self.store.get(collection, uuid.lower())
        if record is None:
            return self.error_response(404)
        return json_text_response(self._render(record, ZoneInfo(principal.account.timezone)))

    def get_file(self, request: Request, obj: str, uuid: str) -> Response:
        """``GET /attachment/{uuid}.file``: the attachment's bytes (``attachment_file``) with
        their Content-Type and Content-Length, under the list's auth, scopes and rate limits.

        Not in the OpenAPI file: the docs' "Attaching files to a Job Diary" guide
        (https://developer.servicem8.com/docs/attaching-files-to-a-job-diary) uploads with
        ``POST`` to this address and says files "can then be retrieved via the API". A deleted
        attachment (``active`` 0) is still served, like its record; a missing one is 404.
        """
        begun = self._begin(request, obj)
        if isinstance(begun, Response):
            return begun
        principal, spec = begun
        if spec.name != "attachment":
            return self.error_response(404, f"'{obj}' records have no files.")
        if not _UUID.match(uuid):
            return self.error_response(400, "Invalid UUID.")
        collection = Collection(PROVIDER, principal.account.uuid, spec.name)
        record = self.store.get(collection, uuid.lower())
        if record is None:
            return self.error_response(404)
        body, content_type = attachment_file(str(record.id), str(record.data.get("file_type", "")))
        return Response(body, status=200, content_type=content_type)

    # --- writes --------------------------------------------------------------------------------

    def _begin_write(
        self, request: Request, obj: str, operation: str
    ) -> tuple[Principal, ObjectSpec, WriteSchema] | Response:
        """Auth and rate limit (the same path and budget as reads), object, operation, scope.

        The scope is the operation's own [spec: ``security`` of each POST/DELETE], e.g.
        ``create_jobs`` to create a job and ``manage_jobs`` to update or delete one.
        """
        principal = self.authenticate(request)
        if isinstance(principal, Response):
            return principal
        limited = self.check_rate_limit(principal)
        if limited is not None:
            return limited
        spec = OBJECTS.get(obj)
        if spec is None:
            return self.error_response(404, f"Object '{obj}' is not emulated by the sandbox.")
        schema = spec.writes
        if schema is None:
            return self.error_response(404, f"Writes to '{obj}' are not emulated by the sandbox.")
        if operation not in schema.operations:
            # e.g. note: the spec has POST /note.json only, no /note/{uuid}.json.
            return self.error_response(405, f"'{obj}' records cannot be {operation}d.")
        scopes = schema.create_scopes if operation == "create" else schema.manage_scopes
        if not principal.may(scopes):
            return self.error_response(403)
        return principal, spec, schema

    def _json_body(self, request: Request) -> dict[str, Any] | Response:
        """The request body as a JSON object (the spec's only request content type)."""
        if request.mimetype != "application/json":
            return self.error_response(
                400, "The request body must be JSON (Content-Type: application/json)."
            )
        try:
            body = json.loads(request.get_data())
        except ValueError:
            return self.error_response(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self.error_response(400, "The request body must be a JSON object.")
        return body

    def _invalid(self, errors: list[str]) -> Response:
        return self.error_response(400, "Invalid request body: " + "; ".join(errors))

    def _rule_error(
        self,
        account: str,
        obj: str,
        old: dict[str, Any] | None,
        data: dict[str, Any],
        changes: dict[str, Any],
    ) -> str | None:
        """Documented rules beyond the schema, and the job status workflow (servicem8_writes)."""
        error = record_rule_error(obj, old, data, changes)
        if error:
            return error
        if obj == "job" and old is not None and "status" in changes:
            return job_transition_error(old.get("status"), changes["status"])
        if obj == "jobcontact" and old is None:
            # "Each job contact must be linked to a valid job in the system" [spec: JobContact].
            job = self.store.get(Collection(PROVIDER, account, "job"), data["job_uuid"].lower())
            if job is None:
                return "job_uuid: no such job"
        return None

    def _derive(
        self,
        account: accounts.ServiceM8Account,
        collection: Collection,
        old: dict[str, Any] | None,
        data: dict[str, Any],
        changes: dict[str, Any],
        now: int,
    ) -> None:
        """Fill the fields the server owns (module docstring of ``servicem8_writes``)."""
        zone = ZoneInfo(account.timezone)
        now_text = render_edit_date(now, zone)
        if collection.object == "job":
            apply_job_rules(old, data, changes, now_text=now_text, today=now_text[:10])
            if old is None:
                # "System-generated unique job identifier … automatically assigned when a job
                # is created" [spec: Job.generated_job_id]: the account's next job number.
                floor = self.store.max_data_int(collection, "generated_job_id")
                counter = f"{PROVIDER}:{account.uuid}:job_number"
                number = self.store.counter_next(counter, floor=floor)
                data["generated_job_id"] = str(number)
        elif collection.object == "note" and old is None and "create_date" not in changes:
            data["create_date"] = now_text

    def _after_write(
        self, account: str, obj: str, touched: list[dict[str, Any] | None], now: int
    ) -> None:
        """Keep ``job.total_invoice_amount`` equal to the tax-inclusive sum of its active
        materials (the seeder's invariant) when a job material changes."""
        if obj != "jobmaterial":
            return
        job_uuids = {str(d["job_uuid"]) for d in touched if d and d.get("job_uuid")}
        if not job_uuids:
            return
        rates = {
            str(r.id): r.data.get("amount", "0")
            for r in self.store.iter_keyset(Collection(PROVIDER, account, "taxrate"))
        }
        jobs = Collection(PROVIDER, account, "job")
        for job_uuid in sorted(job_uuids):
            job = self.store.get(jobs, job_uuid.lower())
            if job is None:
                continue
            lines = self.store.iter_keyset(
                Collection(PROVIDER, account, "jobmaterial"),
                conditions=[
                    Condition("data.job_uuid", "eq", job_uuid, cast="text"),
                    Condition("active", "eq", 1),
                ],
            )
            total = invoice_total((r.data for r in lines), rates)
            data = job.data
            if data.get("total_invoice_amount") != total:
                data["total_invoice_amount"] = total
                self.store.upsert(jobs, job.id, data, active=bool(job.active), modified_us=now)

    def create_record(self, request: Request, obj: str) -> Response:
        """``POST /{object}.json``: 200 ``Result`` with the new uuid in ``x-record-uuid``."""
        begun = self._begin_write(request, obj, "create")
        if isinstance(begun, Response):
            return begun
        principal, spec, schema = begun
        body = self._json_body(request)
        if isinstance(body, Response):
            return body
        parsed = parse_write(schema, body, creating=True)
        if parsed.errors:
            return self._invalid(parsed.errors)
        account = principal.account
        collection = Collection(PROVIDER, account.uuid, spec.name)
        with self._write_lock:
            record_id = parsed.uuid or str(uuid_lib.uuid4())
            if parsed.uuid is not None and self.store.get(collection, record_id) is not None:
                return self.error_response(
                    400, f"uuid: a {obj} record with uuid {record_id} already exists."
                )
            data = {**spec.defaults, **parsed.changes}
            error = self._rule_error(account.uuid, obj, None, data, parsed.changes)
            if error:
                return self._invalid([error])
            now = now_us()
            self._derive(account, collection, None, data, parsed.changes, now)
            active = parsed.active is None or bool(parsed.active)
            self.store.upsert(collection, record_id, data, active=active, modified_us=now)
            self.app.stats.write_applied(PROVIDER, f"{obj}/{record_id}")
            self._after_write(account.uuid, obj, [data], now)
            changed = hooks.changed_fields(None, data, was_active=False, active=active)
            hooks.notify_change(self, request, account.uuid, obj, record_id, changed, now)
        return json_response(RESULT_OK, 200, {"x-record-uuid": record_id})

    def update_record(self, request: Request, obj: str, uuid: str) -> Response:
        """``POST /{object}/{uuid}.json``: only the fields sent change; 404 if missing/deleted.

        A deleted (inactive) record is "deleted" for updates too [spec: 404 "does not exist or
        has been deleted"], except for the update that restores it (``"active": 1``, [spec:
        deleteJobs]). An update that changes nothing (e.g. the job's current status again) is
        answered 200 and leaves the record, its ``edit_date`` included, untouched.
        """
        begun = self._begin_write(request, obj, "update")
        if isinstance(begun, Response):
            return begun
        principal, spec, schema = begun
        if not _UUID.match(uuid):
            return self.error_response(400, "Invalid UUID.")
        body = self._json_body(request)
        if isinstance(body, Response):
            return body
        parsed = parse_write(schema, body, creating=False)
        record_id = uuid.lower()
        if parsed.uuid is not None and parsed.uuid != record_id:
            parsed.errors.append("uuid: does not match the uuid in the URL")
        if parsed.errors:
            return self._invalid(parsed.errors)
        account = principal.account
        collection = Collection(PROVIDER, account.uuid, spec.name)
        with self._write_lock:
            record = self.store.get(collection, record_id)
            if record is None or (not record.active and parsed.active != 1):
                return self.error_response(404)
            old = record.data
            data = {**old, **parsed.changes}
            error = self._rule_error(account.uuid, obj, old, data, parsed.changes)
            if error:
                return self._invalid([error])
            now = now_us()
            self._derive(account, collection, old, data, parsed.changes, now)
            active = bool(record.active) if parsed.active is None else bool(parsed.active)
            if data == old and active == bool(record.active):
                return json_response(RESULT_OK)
            self.store.upsert(collection, record_id, data, active=active, modified_us=now)
            self.app.stats.write_applied(PROVIDER, f"{obj}/{record_id}")
            self._after_write(account.uuid, obj, [old, data], now)
            changed = hooks.changed_fields(old, data, was_active=bool(record.active), active=active)
            hooks.notify_change(self, request, account.uuid, obj, record_id, changed, now)
        return json_response(RESULT_OK)

    def delete_record(self, request: Request, obj: str, uuid: str) -> Response:
        """``DELETE /{object}/{uuid}.json``: ``active`` 0 and a new ``edit_date``.

        404 when the record is missing or already inactive [spec: 404 "does not exist or has
        already been deleted"]; the record stays readable and listed with ``active`` 0.
        """
        begun = self._begin_write(request, obj, "delete")
        if isinstance(begun, Response):
            return begun
        principal, spec, _ = begun
        if not _UUID.match(uuid):
            return self.error_response(400, "Invalid UUID.")
        account = principal.account
        collection = Collection(PROVIDER, account.uuid, spec.name)
        record_id = uuid.lower()
        with self._write_lock:
            record = self.store.get(collection, record_id)
            if record is None or not record.active:
                return self.error_response(404)
            now = now_us()
            self.store.set_active(collection, record_id, False, modified_us=now)
            self.app.stats.write_applied(PROVIDER, f"{obj}/{record_id}")
            self._after_write(account.uuid, obj, [record.data], now)
            changed = ["active", "edit_date"]
            hooks.notify_change(self, request, account.uuid, obj, record_id, changed, now)
        return json_response(RESULT_OK)

    # --- OAuth 2.0 -----------------------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        """Authorization endpoint, auto-approved for the app's account (no login page).

        Errors about the client or redirect URI are shown, not redirected (RFC 6749 §4.1.2.1);
        the rest are redirected to ``redirect_uri`` with ``error`` and ``state``.
        """
        args = request.args
        app = accounts.servicem8_oauth_app(args.get("client_id", ""))
        if app is None:
            return json_response(
                {"error": "invalid_client", "error_description": "Unknown client_id."}, 400
            )
        redirect_uri = args.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.netloc:
            return json_response(
                {"error": "invalid_request", "error_description": "Invalid redirect_uri."}, 400
            )
        state = {"state": args["state"]} if "state" in args else {}
        if args.get("response_type") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **state})
        # Scopes are space-separated (RFC 6749 §3.3); commas are tolerated as well.
        requested = [s for s in re.split(r"[\s,]+", args.get("scope", "")) if s]
        if any(s not in KNOWN_SCOPES for s in requested):
            return _redirect(redirect_uri, {"error": "invalid_scope", **state})
        code = secrets.token_hex(20)
        ttl = self.app.config.get(PROVIDER, "authorization_code_ttl")
        self.store.token_create(
            code,
            kind="code",
            provider=PROVIDER,
            account=app.account_uuid,
            client_id=app.client_id,
            scope=" ".join(dict.fromkeys(requested)),
            redirect_uri=redirect_uri,
            expires_at=time.time() + ttl,
        )
        return _redirect(redirect_uri, {"code": code, **state})

    def access_token(self, request: Request) -> Response:
        """Token endpoint: ``authorization_code`` and ``refresh_token`` grants.

        Supported grant types per https://developer.servicem8.com/docs/authentication. Client
        authentication by HTTP Basic or by form fields (RFC 6749 §2.3.1). Codes are single-use;
        every refresh rotates the refresh token and the old one is refused from then on.
        """
        form = request.form
        client_id, client_secret, used_basic = oauth_client_credentials(request)
        app = accounts.servicem8_oauth_app(client_id or "")
        if app is None or not hmac.compare_digest(
            (client_secret or "").encode(), app.client_secret.encode()
        ):
            # RFC 6749 §5.2: 401 when the client tried the Authorization header, else 400.
            return self._oauth_error(
                "invalid_client", "Client authentication failed.", 401 if used_basic else 400
            )
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._grant_code(app, form.get("code", ""), form.get("redirect_uri"))
        if grant_type == "refresh_token":
            return self._grant_refresh(app, form.get("refresh_token", ""), form.get("scope"))
        if not grant_type:
            return self._oauth_error("invalid_request", "grant_type is required.")
        return self._oauth_error("unsupported_grant_type", f"{grant_type} is not supported.")

    def _grant_code(
        self, app: accounts.ServiceM8OAuthApp, code: str, redirect_uri: str | None
    ) -> Response:
        found = self.store.token_get(code, kind="code", provider=PROVIDER)
        if found is None or found.client_id != app.client_id:
            return self._oauth_error("invalid_grant", "Invalid authorization code.")
        # RFC 6749 §4.1.3: redirect_uri must repeat the one sent to the authorize endpoint.
        if found.redirect_uri and redirect_uri != found.redirect_uri:
            return self._oauth_error("invalid_grant", "redirect_uri does not match.")
        consumed = self.store.token_consume(code, kind="code", provider=PROVIDER)
        if consumed is None:
            return self._oauth_error("invalid_grant", "Authorization code already used.")
        if consumed.expired():
            return self._oauth_error("invalid_grant", "Authorization code expired.")
        self.app.stats.token_grant(PROVIDER, "authorization_code")
        return self._issue(app, consumed.account, consumed.scope)

    def _grant_refresh(
        self, app: accounts.ServiceM8OAuthApp, refresh_token: str, scope: str | None
    ) -> Response:
        found = self.store.token_get(refresh_token, kind="refresh", provider=PROVIDER)
        # Checked before consuming, so another client presenting a stolen token cannot burn it.
        if found is None or found.client_id != app.client_id:
            self.app.stats.refresh_rejected(PROVIDER)
            return self._oauth_error("invalid_grant", "Invalid refresh token.")
        granted = found.scopes
        if scope is not None:
            requested = frozenset(s for s in re.split(r"[\s,]+", scope) if s)
            # RFC 6749 §6: a refresh may narrow the scope, never widen it.
            if not requested <= granted:
                return self._oauth_error("invalid_scope", "Scope exceeds the original grant.")
            granted = requested
        consumed = self.store.token_consume(refresh_token, kind="refresh", provider=PROVIDER)
        if consumed is None:
            # Rotation: the token was already exchanged (maybe by a concurrent request).
            self.app.stats.refresh_rejected(PROVIDER)
            return self._oauth_error("invalid_grant", "Refresh token already used.")
        self.app.stats.token_grant(PROVIDER, "refresh_token")
        scope_text = " ".join(s for s in found.scope.split() if s in granted)
        return self._issue(app, consumed.account, scope_text)

    def _issue(self, app: accounts.ServiceM8OAuthApp, account: str, scope: str) -> Response:
        ttl = self.app.config.get(PROVIDER, "access_token_ttl")
        now = time.time()
        access = self.store.token_create(
            secrets.token_hex(20),
            kind="access",
            provider=PROVIDER,
            account=account,
            client_id=app.client_id,
            scope=scope,
            expires_at=now + ttl,
        )
        refresh = self.store.token_create(
            secrets.token_hex(20),
            kind="refresh",
            provider=PROVIDER,
            account=account,
            client_id=app.client_id,
            scope=scope,
        )
        body = {
            "access_token": access.token,
            "token_type": "bearer",
            "expires_in": int(ttl),
            "refresh_token": refresh.token,
            "scope": scope,
        }
        # RFC 6749 §5.1: token responses must not be cached.
        return json_response(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _oauth_error(self, error: str, description: str, status: int = 400) -> Response:
        self.app.stats.token_error(PROVIDER, error)
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="servicem8"'
        return json_response({"error": error, "error_description": description}, status, headers)

    # --- control API hooks ---------------------------------------------------------------------

    def default_account(self) -> str:
        return accounts.SERVICEM8_ACCOUNT.uuid

    def parse_record_id(self, raw: str) -> RecordId:
        if not _UUID.match(raw):
            raise ValueError("ServiceM8 record ids are uuids")
        return raw.lower()

    def new_record_id(self, collection: Collection) -> RecordId:
        return str(uuid_lib.uuid4())

    def prepare_record(
        self, obj: str, data: dict[str, Any], existing: Record | None
    ) -> tuple[dict[str, Any], bool | None]:
        data = dict(data)
        data.pop("uuid", None)
        data.pop("edit_date", None)
        active = data.pop("active", None)
        spec = OBJECTS.get(obj)
        base = existing.data if existing else dict(spec.defaults if spec else {})
        base.update(data)
        return base, None if active is None else bool(int(active))


def _new_cursor() -> str:
    return str(uuid_lib.uuid4())


def _redirect(uri: str, params: dict[str, str]) -> Response:
    return Response(status=302, headers={"Location": _add_query(uri, params)})
