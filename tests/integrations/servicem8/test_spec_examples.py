"""Every object ServiceM8Provider reads, mapped from the official spec's own example record
(issue #4, "Fixtures taken from the spec's examples parse without losing a field").

For each object in `ServiceM8Provider.objects` the record is read straight from the spec file:
`paths["/{object}.json"].get.responses["200"]` → `application/json` → `examples.success.value[0]`
[spec: servicem8/servicem8-api_1.0.openapi.json]. Its values are partly placeholders; only
those are replaced, by what the schema (`components.schemas.<Object>.properties[key]`) declares
for that key. Every key is kept and none is added. The rules, in order:

1. "YYYY-MM-DD" (Job.date: `example: YYYY-MM-DD`) → "2026-03-01", the day of the spec's own
   stamp example "2026-03-01 12:00:00".
2. A key whose schema is `type: string` (or untyped) but whose description makes it a number,
   a boolean, a choice or a stamp (ServiceM8 sends those as strings: NOTES.md §1 "Gotchas")
   takes the value from STRING_ENCODED below, e.g. JobMaterial.price "The unit price of the
   material excluding tax" → "40.00"; JobActivity.activity_was_scheduled "Boolean flag" → "1".
3. `type: integer` with `enum: [0, 1]` → 1 (a set flag: is_individual, hide_from_schedule,
   quote_sent…); another `type: integer` → 3 (sort_order, travel_time_in_seconds…).
4. Another `enum` → its first value (Job.status → "Quote", so a job maps with its quote).
5. `type: number` ("number" placeholders: lat, lng, quantity_in_stock) → 12.5.
6. `format: email` → "<key>@example.com".
7. Any other "string" is text: "<Object> <key>" (e.g. "Staff first"), distinct per key so a
   field mapped to the wrong attribute shows.

Values that are already legal are kept as the spec gives them: uuids, `active` 1 and the
"2026-03-01 12:00:00" stamps (`edit_date` is account-local time, here Australia/Sydney).

Each mapped record must carry the example exactly in `raw`, its uuid as external id
("<kind>:<uuid>" for ReferenceRecords), `edit_date` converted from the account zone to UTC,
`active` as `deleted`, and the object's key fields (KEY_FIELDS). The hand-written fixtures
(fixtures/<object>__*.json) must have every key of the example, so they are the spec's records.
No sandbox or database: the one HTTP call (materials read the tax rates once) is a `responses`
mock answering with the spec's own TaxRate example.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import responses

from integrations import registry
from integrations.base import ProviderContext
from integrations.http import RetryPolicy
from integrations.providers.servicem8.provider import ServiceM8Provider
from tests.integrations.sandbox.test_spec_conformance import IN_CI, SPECS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPEC_FILE = SPECS / "servicem8" / "servicem8-api_1.0.openapi.json"
API = "https://api.servicem8.com/api_1.0"
SYDNEY = ZoneInfo("Australia/Sydney")
OBJECTS = sorted(ServiceM8Provider.objects.items())

# Rule 2: keys the spec types as strings (or leaves untyped) whose description gives them a
# numeric, boolean, enumerated or date meaning; quoted from components.schemas.
STRING_ENCODED: dict[str, object] = {
    # Job.total_invoice_amount "The total amount to be invoiced"; payment_amount (not used).
    "total_invoice_amount": "1234.50",
    "payment_amount": "0.00",
    # Job.generated_job_id "unique job identifier… automatically assigned".
    "generated_job_id": "1042",
    # Job.ready_to_invoice / ready_to_invoice_stamp (untyped, DEPRECATED): a flag and a stamp.
    "ready_to_invoice": "0",
    "ready_to_invoice_stamp": "0000-00-00 00:00:00",
    # Company.parent_company_uuid (untyped) "the UUID of this Site's parent Company".
    "parent_company_uuid": "0c8e5a3d-7f21-4b6e-9a4d-3e2b1c0d9f8e",
    # Company/Job.badges "JSON Array of Badge UUIDs".
    "badges": "[]",
    # CompanyContact.is_primary_contact "Value of 1 means this is the primary contact".
    "is_primary_contact": "1",
    # CompanyContact/JobContact.type "Common values include 'BILLING'…".
    "type": "BILLING",
    # Staff.can_receive_push_notification (flag); Material.use_description_for_invoicing (flag).
    "can_receive_push_notification": "1",
    "use_description_for_invoicing": "1",
    # TaxRate.amount "The tax rate percentage value… 10 for a 10% tax rate".
    "amount": "10",
    # Material.price/cost "The selling price / The purchase cost of the material".
    # JobMaterial.price "unit price… excluding tax", displayed_amount (tax-inclusive here, as
    # displayed_amount_is_tax_inclusive says), cost/displayed_cost, sort_order "Integer value".
    "price": "40.00",
    "cost": "25.00",
    "displayed_amount": "44.00",
    "displayed_amount_is_tax_inclusive": "1",
    "displayed_cost": "27.50",
    "sort_order": "3",
    # JobMaterial.quantity "The quantity of this material used on the job" (JobMaterialBundle's
    # "Must be greater than zero").
    "quantity": "2.5",
    # JobActivity flags: "activity_was_scheduled… Cannot be true if activity_was_recorded".
    "activity_was_scheduled": "1",
    "activity_was_recorded": "0",
    "activity_was_automated": "0",
    "has_been_opened": "1",
    # Attachment/Note.related_object "The type of object… (e.g., 'job', 'company', 'staff')".
    "related_object": "job",
    # Attachment.file_type: the file's extension (mapping.py, attachment_to_attachment).
    "file_type": ".pdf",
    # Attachment.photo_width/height "Width/Height of the image in pixels"; is_favourite "Flag";
    # metadata "structured data… in JSON format"; timestamp (untyped): a stamp.
    "photo_width": "1024",
    "photo_height": "768",
    "is_favourite": "0",
    "metadata": "{}",
    "timestamp": "2026-03-01 12:00:00",
    # Note.action_required: a flag.
    "action_required": "0",
}
PLACEHOLDERS = {"string", "number", "YYYY-MM-DD"}
NUMBER = 12.5
INTEGER = 3


def _spec() -> dict:
    if not SPEC_FILE.is_file():
        message = f"provider spec not found: {SPEC_FILE}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(SPEC_FILE.read_text())


@pytest.fixture(scope="module")
def spec() -> dict:
    return _spec()


def list_response(spec: dict, obj: str) -> dict:
    return spec["paths"][f"/{obj}.json"]["get"]["responses"]["200"]["content"]["application/json"]


def example_and_schema(spec: dict, obj: str) -> tuple[dict, str, dict]:
    """The spec's example record for `GET /{obj}.json`, its schema's name and properties."""
    content = list_response(spec, obj)
    (record,) = content["examples"]["success"]["value"]
    name = content["schema"]["items"]["$ref"].rsplit("/", 1)[-1]
    return record, name, spec["components"]["schemas"][name]["properties"]


def typed_value(schema_name: str, key: str, value: object, prop: dict) -> object:
    """The value of `key`: the example's own unless it is a placeholder (module docstring)."""
    if value not in PLACEHOLDERS:
        return value
    if value == "YYYY-MM-DD":
        return "2026-03-01"
    if key in STRING_ENCODED and prop.get("type", "string") == "string":
        return STRING_ENCODED[key]
    kind = prop.get("type")
    if kind == "integer":
        return 1 if prop.get("enum") == [0, 1] else INTEGER
    if "enum" in prop:
        return prop["enum"][0]
    if kind == "number":
        return NUMBER
    if prop.get("format") == "email":
        return f"{key}@example.com"
    if key in STRING_ENCODED:
        return STRING_ENCODED[key]
    return f"{schema_name} {key}"


def typed_example(spec: dict, obj: str) -> dict:
    record, name, properties = example_and_schema(spec, obj)
    return {
        key: typed_value(name, key, value, properties.get(key, {})) for key, value in record.items()
    }


def provider() -> ServiceM8Provider:
    context = ProviderContext(
        integration_id=1,
        credentials={"api_key": "sm8-key"},
        config={"timezone": "Australia/Sydney", "currency": "AUD"},
        rate_limit_enabled=False,
        retry=RetryPolicy(attempts=1),
    )
    return registry.get("servicem8")(context)


def local_utc(stamp: str) -> datetime:
    """An account-local "YYYY-MM-DD HH:MM:SS" (Sydney) as aware UTC, computed independently."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SYDNEY).astimezone(UTC)


def map_example(spec: dict, entity: str, raw: dict) -> tuple:
    with responses.RequestsMock() as mock:
        # Materials read the tax rates once (provider._tax_rate_amounts): the spec's example.
        mock.get(f"{API}/taxrate.json", json=[typed_example(spec, "taxrate")])
        mock.assert_all_requests_are_fired = entity == "pricebook_items"
        mapped = provider().map_record(entity, raw)
    return mapped if isinstance(mapped, tuple) else (mapped,)


# --- the key fields of each object -----------------------------------------------------------


def _people(record, raw: dict) -> None:
    assert (record.first_name, record.last_name) == (raw["first"], raw["last"])
    assert (record.email, record.phone, record.mobile) == (
        raw["email"],
        raw["phone"],
        raw["mobile"],
    )


def _clients(records, raw):
    (client,) = records
    assert client.name == raw["name"]
    assert client.kind == "residential"  # is_individual 1
    assert client.parent_external_id == raw["parent_company_uuid"]
    parts = ("street", "city", "state", "postcode", "country")
    assert client.address == ", ".join(raw[f"address_{p}"] for p in parts)


def _contacts(records, raw):
    (contact,) = records
    _people(contact, raw)
    assert contact.client_external_id == raw["company_uuid"]
    assert contact.role == raw["type"] == "BILLING"
    assert contact.is_primary is True


def _staff(records, raw):
    (staff,) = records
    assert (staff.first_name, staff.last_name, staff.email) == (
        raw["first"],
        raw["last"],
        raw["email"],
    )
    assert staff.phone == raw["mobile"]
    assert staff.title == raw["job_title"]
    assert staff.kind == "employee"  # hide_from_schedule 1
    assert staff.is_active is True


def _tax_rates(records, raw):
    (rate,) = records
    assert (rate.kind, rate.name, rate.code) == ("tax_rate", raw["name"], "10")
    assert rate.is_active is True


def _job_categories(records, raw):
    (category,) = records
    assert (category.kind, category.name) == ("job_category", raw["name"])


def _pricebook_items(records, raw):
    (item,) = records
    assert (item.kind, item.code, item.name) == ("material", raw["item_number"], raw["name"])
    assert item.description == raw["item_description"]
    assert item.unit_price == Decimal("40.00")
    assert item.cost == Decimal("25.00")
    assert item.is_taxable is True  # its tax rate is the spec's TaxRate example, 10 %


def _jobs(records, raw):
    job, quote = records  # status Quote: a job and its quote
    assert job.client_external_id == quote.client_external_id == raw["company_uuid"]
    assert job.number == quote.number == "1042"
    assert (job.description, job.summary) == (raw["job_description"], raw["job_description"])
    assert (job.status, job.provider_status) == ("pending", "Quote")
    assert job.address == raw["job_address"]
    assert job.revenue == quote.total == Decimal("1234.50")
    assert job.scheduled_end == local_utc(raw["job_is_scheduled_until_stamp"])
    assert job.completed_at == local_utc(raw["completion_date"])
    assert quote.job_external_id == raw["uuid"]
    assert (quote.status, quote.provider_status, quote.currency) == ("sent", "Quote", "AUD")
    assert quote.sent_at == local_utc(raw["quote_sent_stamp"])


def _job_contacts(records, raw):
    (contact,) = records
    _people(contact, raw)
    assert contact.job_external_id == raw["job_uuid"]
    assert contact.role == raw["type"]


def _activities(records, raw):
    (activity,) = records
    assert activity.job_external_id == raw["job_uuid"]
    assert activity.staff_external_ids == (raw["staff_uuid"],)
    assert activity.starts_at == local_utc(raw["start_date"])
    assert activity.ends_at == local_utc(raw["end_date"])
    assert activity.status == "Scheduled"


def _material_bundles(records, raw):
    (bundle,) = records
    assert (bundle.kind, bundle.name, bundle.code) == (
        "material_bundle",
        raw["name"],
        raw["item_number"],
    )
    assert bundle.parent_external_id == raw["job_uuid"]


def _materials(records, raw):
    (line,) = records
    assert line.job_external_id == line.quote_external_id == raw["job_uuid"]
    assert line.name == raw["name"]
    assert (line.quantity, line.unit_price) == (Decimal("2.5"), Decimal("40.00"))
    assert line.total == Decimal("100.00")
    assert line.sort_order == 3


def _attachments(records, raw):
    (attachment,) = records
    assert attachment.job_external_id == raw["related_object_uuid"]
    assert attachment.file_name == f"{raw['attachment_name']}.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.provider_reference == raw["uuid"]


def _notes(records, raw):
    (note,) = records
    assert (note.job_external_id, note.client_external_id) == (raw["related_object_uuid"], None)
    assert note.body == raw["note"]
    assert note.author == raw["edit_by_staff_uuid"]
    assert note.noted_at == local_utc(raw["create_date"])


KEY_FIELDS: dict[str, Callable[[tuple, dict], None]] = {
    "clients": _clients,
    "contacts": _contacts,
    "staff": _staff,
    "tax_rates": _tax_rates,
    "job_categories": _job_categories,
    "pricebook_items": _pricebook_items,
    "jobs": _jobs,
    "job_contacts": _job_contacts,
    "activities": _activities,
    "material_bundles": _material_bundles,
    "materials": _materials,
    "attachments": _attachments,
    "notes": _notes,
}


# --- the tests ---------------------------------------------------------------------------------


def test_every_object_read_has_its_key_fields_checked():
    # A new entity in ServiceM8Provider.objects is parametrized below automatically and must
    # name its key fields here.
    assert set(KEY_FIELDS) == set(ServiceM8Provider.objects)


def test_the_placeholder_rules_are_all_used(spec):
    """Every STRING_ENCODED entry replaces a placeholder of a string-typed key somewhere."""
    used = set()
    for _entity, obj in OBJECTS:
        record, _name, properties = example_and_schema(spec, obj)
        for key, value in record.items():
            kind = properties.get(key, {}).get("type", "string")
            if key in STRING_ENCODED and value in PLACEHOLDERS and kind == "string":
                used.add(key)
    assert used == set(STRING_ENCODED)


@pytest.mark.parametrize(("entity", "obj"), OBJECTS)
def test_the_example_keeps_every_key_and_only_replaces_placeholders(spec, entity, obj):
    record, _name, _properties = example_and_schema(spec, obj)
    typed = typed_example(spec, obj)
    assert list(typed) == list(record)
    for key, value in record.items():
        if value not in PLACEHOLDERS:
            assert typed[key] == value, key
        else:
            assert typed[key] not in PLACEHOLDERS, key


@pytest.mark.parametrize(("entity", "obj"), OBJECTS)
def test_the_spec_example_maps_without_losing_a_field(spec, entity, obj):
    raw = typed_example(spec, obj)
    pristine = copy.deepcopy(raw)
    records = map_example(spec, entity, raw)

    assert records, f"{obj}: the spec's example mapped to nothing"
    kind = ServiceM8Provider.reference_kinds.get(entity)
    for record in records:
        assert record.raw == pristine  # every key, every value, nothing added
        assert record.external_id == (f"{kind}:{raw['uuid']}" if kind else raw["uuid"])
        assert record.provider == "servicem8"
        assert record.remote_updated_at == local_utc(raw["edit_date"])
        assert record.remote_updated_at == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # AEDT +11
        assert record.deleted is False
    assert raw == pristine  # the mapper did not alter its input
    KEY_FIELDS[entity](records, raw)


@pytest.mark.parametrize(("entity", "obj"), OBJECTS)
def test_the_spec_example_with_active_0_maps_deleted(spec, entity, obj):
    raw = {**typed_example(spec, obj), "active": 0}
    records = map_example(spec, entity, raw)
    assert records
    assert all(record.deleted and record.raw == raw for record in records)


@pytest.mark.parametrize(("entity", "obj"), OBJECTS)
def test_the_hand_written_fixtures_have_every_key_of_the_spec_example(spec, entity, obj):
    fixtures = sorted(FIXTURES.glob(f"{obj}__*.json"))
    assert fixtures, f"no hand-written fixture for {obj} in {FIXTURES}"
    record, _name, _properties = example_and_schema(spec, obj)
    for path in fixtures:
        missing = set(record) - set(json.loads(path.read_text()))
        assert not missing, f"{path.name} lacks {sorted(missing)}"
