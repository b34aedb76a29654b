"""Every entity the ServiceM8 and ServiceTitan providers read: mapping from fixtures built on the
official specs' schemas, status tables, time zones, incremental filters, deleted records,
targeted re-fetches, and one run per provider against a live sandbox whose requests and
responses are checked against the official OpenAPI files."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import yaml
from openapi_core import Config, OpenAPI
from openapi_schema_validator import (
    OAS30Validator,
    OAS31Validator,
    oas30_format_checker,
    oas31_format_checker,
)

from integrations import registry
from integrations.auth import MemoryTokenStore
from integrations.base import (
    Capability,
    ExternalClient,
    ExternalContact,
    ExternalJob,
    ExternalJobContact,
    ExternalJobMaterial,
    ExternalLineItem,
    ExternalPricebookItem,
    ExternalQuote,
    ExternalStaff,
    ProviderContext,
)
from integrations.exceptions import PaginationError
from integrations.http import RetryPolicy
from integrations.sandbox import accounts
from integrations.sandbox.seed import seed
from integrations.sandbox.seed_servicem8 import _GST_FREE as GST_FREE
from integrations.sandbox.server import SandboxServer
from tests.integrations.sandbox.test_spec_conformance import (
    IN_CI,
    SPECS,
    ST_MODULE_SPECS,
    _as_spec,
)
from tests.integrations.spec_query import assert_query_declared

HERE = Path(__file__).resolve().parent
SM8 = "https://api.servicem8.com/api_1.0"
ST_API = "https://api.servicetitan.io"
ST_TOKEN = "https://auth.servicetitan.io/connect/token"
ST_BASE = f"{ST_API}/{{module}}/v2/tenant/42/{{path}}"
SYDNEY = "Australia/Sydney"
NO_RETRY = RetryPolicy(attempts=1)
MISSING_UUID = "00000000-0000-4000-8000-000000000000"
SM8_SPEC = SPECS / "servicem8" / "servicem8-api_1.0.openapi.json"
REFS = ("job_categories", "tax_rates", "material_bundles")
# ServiceTitan's original entities (the others are tested in tests/integrations/servicetitan/).
ST_CORE = ("clients", "staff", "jobs", "appointments", "quotes")

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


def fixture(provider: str, name: str) -> dict:
    return json.loads((HERE / provider / "fixtures" / f"{name}.json").read_text())


def sm8(**kwargs):
    context = ProviderContext(
        integration_id=1,
        credentials=kwargs.pop("credentials", {"api_key": "sm8-key"}),
        config=kwargs.pop("config", {"timezone": SYDNEY}),
        rate_limit_enabled=False,
        retry=NO_RETRY,
        **kwargs,
    )
    return registry.get("servicem8")(context)


def st(**kwargs):
    context = ProviderContext(
        integration_id=2,
        credentials=kwargs.pop(
            "credentials",
            {"tenant_id": "42", "client_id": "cid", "client_secret": "cs", "app_key": "ak1"},
        ),
        token_store=MemoryTokenStore(),
        rate_limit_enabled=False,
        retry=NO_RETRY,
        **kwargs,
    )
    return registry.get("servicetitan")(context)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def st_page(data: list[dict], *, more: bool = False, size: int = 5000) -> dict:
    return {"page": 1, "pageSize": size, "hasMore": more, "totalCount": None, "data": data}


def st_token() -> None:
    responses.post(ST_TOKEN, json={"access_token": "st-token", "expires_in": 900})


# --- the fixtures are the specs' records ----------------------------------------------------

SM8_FIXTURE_SCHEMAS = {
    "company__head_office": "Company",
    "attachment__job_quote_pdf": "Attachment",
    "companycontact__primary_billing": "CompanyContact",
    "staff__field_technician": "Staff",
    "staff__deactivated_office": "Staff",
    "job__quote_sent": "Job",
    "job__work_order_scheduled": "Job",
    "job__completed_never_quoted": "Job",
    "job__unsuccessful_quote_deleted": "Job",
    "jobmaterial__tax_inclusive": "JobMaterial",
    "jobmaterial__tax_exclusive_deleted": "JobMaterial",
    "jobcontact__property_manager": "JobContact",
    "jobcontact__deleted_site_contact": "JobContact",
    "note__job_diary": "Note",
    "note__company_deleted": "Note",
    "category__hot_water": "Category",
    "taxrate__gst_default": "TaxRate",
    "taxrate__gst_free_deleted": "TaxRate",
    "jobmaterialbundle__hot_water_kit": "JobMaterialBundle",
    "material__inventoried_part": "Material",
    "material__deleted_permit_fee_gst_free": "Material",
}
ST_FIXTURE_SCHEMAS = {
    "technician__active": ("settings", "TenantSettings.V2.TechnicianResponse"),
    "employee__inactive": ("settings", "TenantSettings.V2.EmployeeResponse"),
    "job__in_progress": ("jpm", "Crm.V2.JobResponse"),
    "estimate__sold": ("sales", "Estimates.V2.EstimateResponse"),
    "estimate__dismissed_inactive": ("sales", "Estimates.V2.EstimateResponse"),
}


def _spec_file(path: Path) -> Path:
    if not path.is_file():
        message = f"provider spec not found: {path}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def sm8_raw_spec() -> dict:
    return json.loads(
        _spec_file(SPECS / "servicem8" / "servicem8-api_1.0.openapi.json").read_text()
    )


@pytest.fixture(scope="module")
def st_raw_specs() -> dict[str, dict]:
    return {
        module: yaml.safe_load(_spec_file(SPECS / "servicetitan" / name).read_text())
        for module, name in ST_MODULE_SPECS.items()
    }


@pytest.mark.parametrize(("name", "schema"), sorted(SM8_FIXTURE_SCHEMAS.items()))
def test_servicem8_fixtures_are_complete_spec_records(sm8_raw_spec, name, schema):
    record = fixture("servicem8", name)
    definition = sm8_raw_spec["components"]["schemas"][schema]
    # Every field the spec's schema declares is in the fixture, so mapping is tested on all.
    assert set(definition["properties"]) <= set(record)
    root = {"$ref": f"#/components/schemas/{schema}", "components": sm8_raw_spec["components"]}
    errors = [
        e
        for e in OAS31Validator(root, format_checker=oas31_format_checker).iter_errors(record)
        # Unset references are "" on the real API (NOTES.md §1 "Gotchas") although the spec
        # types them `format: uuid`; the mapping must accept them.
        if not (e.validator == "format" and e.instance == "")
    ]
    assert not errors, errors[0].message


@pytest.mark.parametrize(("name", "where"), sorted(ST_FIXTURE_SCHEMAS.items()))
def test_servicetitan_fixtures_are_complete_spec_records(st_raw_specs, name, where):
    module, schema = where
    raw = st_raw_specs[module]
    record = fixture("servicetitan", name)
    assert set(raw["components"]["schemas"][schema]["properties"]) <= set(record)
    root = {"$ref": f"#/components/schemas/{schema}", "components": raw["components"]}
    errors = list(OAS30Validator(root, format_checker=oas30_format_checker).iter_errors(record))
    assert not errors, errors[0].message


# --- ServiceM8 ------------------------------------------------------------------------------


def test_servicem8_entities_capabilities_and_lookback():
    provider = registry.get("servicem8")
    assert provider.entities == (
        "clients",
        "contacts",
        "staff",
        "tax_rates",
        "job_categories",
        "pricebook_items",
        "jobs",
        "job_contacts",
        "activities",
        "material_bundles",
        "materials",
        "attachments",
        "notes",
    )
    assert {
        Capability.READ_CLIENTS,
        Capability.READ_CONTACTS,
        Capability.READ_STAFF,
        Capability.READ_JOBS,
        Capability.READ_QUOTES,
        Capability.READ_PRICEBOOK,
    } <= provider.capabilities
    # One repeated local hour when DST ends, plus five minutes for late-visible writes.
    assert provider.cursor_lookback_seconds == 3900


def test_servicem8_jobs_entity_covers_jobs_and_quotes():
    # A full run's sweep and a 404 re-fetch must reach the quote a job also is.
    provider = sm8()
    assert provider.record_types("jobs") == (ExternalJob, ExternalQuote)
    assert ExternalJobMaterial in provider.record_types("materials")
    assert provider.record_types("contacts") == (ExternalContact,)


def test_servicem8_contact_maps_every_field():
    raw = fixture("servicem8", "companycontact__primary_billing")
    contact = sm8().map_record("contacts", copy.deepcopy(raw))
    assert isinstance(contact, ExternalContact)
    assert contact.raw == raw
    assert contact.provider == "servicem8" and contact.external_id == raw["uuid"]
    assert contact.client_external_id == raw["company_uuid"]
    assert (contact.first_name, contact.last_name) == ("Olivia", "Nguyen")
    assert contact.email == "olivia.nguyen@example.com.au"
    assert (contact.phone, contact.mobile) == ("02 9351 2211", "0412 555 019")
    assert contact.role == "BILLING" and contact.is_primary is True
    # 09:30 in Sydney in January (AEDT, UTC+11) is 22:30 UTC the day before.
    assert contact.remote_updated_at == utc(2026, 1, 9, 22, 30)
    assert contact.deleted is False


def test_servicem8_staff_active_and_deactivated():
    provider = sm8()
    tech = provider.map_record("staff", fixture("servicem8", "staff__field_technician"))
    office = provider.map_record("staff", fixture("servicem8", "staff__deactivated_office"))
    assert isinstance(tech, ExternalStaff) and isinstance(office, ExternalStaff)
    assert tech.kind == "technician" and tech.is_active and not tech.deleted
    assert (tech.first_name, tech.last_name, tech.title) == ("Matthew", "Evans", "Gasfitter")
    assert tech.email == "matthew.evans@sandbox-plumbing.example"
    assert tech.phone == "0429 761 861"
    assert tech.remote_updated_at == utc(2026, 1, 5, 17, 33, 8)
    # active 0 is ServiceM8's delete; hidden from the schedule = not a field technician.
    assert office.deleted and not office.is_active and office.kind == "employee"
    assert office.title == "Office Manager"


def test_servicem8_quote_job_yields_the_job_and_its_quote():
    raw = fixture("servicem8", "job__quote_sent")
    job, quote = sm8(config={"timezone": SYDNEY, "currency": "AUD"}).map_record(
        "jobs", copy.deepcopy(raw)
    )
    assert isinstance(job, ExternalJob) and isinstance(quote, ExternalQuote)
    assert job.raw == raw and quote.raw == raw
    assert job.external_id == quote.external_id == quote.job_external_id == raw["uuid"]
    assert job.client_external_id == quote.client_external_id == raw["company_uuid"]
    assert job.number == quote.number == "1030"
    assert job.summary == quote.title == "Install gas cooktop."
    assert job.description == raw["job_description"]
    assert job.address == "369 Pitt Rd\nRandwick NSW 2031"
    assert (job.status, job.provider_status) == ("pending", "Quote")
    assert (quote.status, quote.provider_status) == ("sent", "Quote")
    assert job.revenue == quote.total == Decimal("615.45")
    assert isinstance(job.revenue, Decimal) and isinstance(quote.total, Decimal)
    # No subtotal/tax split on a ServiceM8 job: nothing is invented.
    assert quote.subtotal == quote.tax_total == Decimal("0")
    assert quote.currency == "AUD" and quote.line_items is None
    # 11:35:30 AEDT is 00:35:30 UTC.
    assert quote.sent_at == utc(2026, 2, 15, 0, 35, 30)
    assert job.remote_updated_at == quote.remote_updated_at == utc(2026, 2, 15, 0, 35, 30)
    assert job.completed_at is None and job.scheduled_end is None


def test_servicem8_accepted_quote_is_a_scheduled_job_and_an_approved_quote():
    job, quote = sm8().map_record("jobs", fixture("servicem8", "job__work_order_scheduled"))
    assert (job.status, job.provider_status) == ("scheduled", "Work Order")
    assert job.scheduled_end == utc(2026, 3, 4, 2, 30)
    assert quote.status == "approved"


def test_servicem8_job_that_never_was_a_quote_has_no_quote():
    records = sm8().map_record("jobs", fixture("servicem8", "job__completed_never_quoted"))
    assert len(records) == 1
    (job,) = records
    assert job.status == "completed" and job.revenue == Decimal("148.23")
    assert job.completed_at == utc(2026, 1, 20, 15, 55, 55)


def test_servicem8_deleted_rejected_quote():
    raw = fixture("servicem8", "job__unsuccessful_quote_deleted")
    job, quote = sm8().map_record("jobs", raw)
    assert job.deleted and quote.deleted
    assert (job.status, quote.status) == ("cancelled", "rejected")
    assert job.summary == "" and job.revenue == Decimal("0.00")


def test_servicem8_winter_dates_use_standard_time():
    raw = fixture("servicem8", "job__completed_never_quoted")
    raw.update(edit_date="2026-07-01 10:00:00", completion_date="2026-06-30 23:30:00")
    (job,) = sm8().map_record("jobs", raw)
    # AEST (UTC+10) from April to October.
    assert job.remote_updated_at == utc(2026, 7, 1, 0, 0)
    assert job.completed_at == utc(2026, 6, 30, 13, 30)


NO_DATE = "0000-00-00 00:00:00"


@pytest.mark.parametrize(
    ("status", "scheduled_until", "expected"),
    [
        ("Quote", NO_DATE, "pending"),
        ("Work Order", "2026-03-04 13:30:00", "scheduled"),
        ("Work Order", NO_DATE, "unscheduled"),
        ("Work Order", "", "unscheduled"),
        ("Completed", "2026-03-04 13:30:00", "completed"),
        ("Unsuccessful", NO_DATE, "cancelled"),
        ("Archived", NO_DATE, "pending"),
        ("", NO_DATE, "pending"),
    ],
)
def test_servicem8_job_status_table(status, scheduled_until, expected):
    raw = fixture("servicem8", "job__completed_never_quoted")
    raw.update(status=status, job_is_scheduled_until_stamp=scheduled_until)
    job = sm8().map_record("jobs", raw)[0]
    assert job.status == expected and job.provider_status == status


@pytest.mark.parametrize(
    ("status", "quote_sent", "quote_date", "expected"),
    [
        ("Quote", 1, NO_DATE, "sent"),
        ("Quote", "1", NO_DATE, "sent"),
        ("Quote", 0, NO_DATE, "draft"),
        ("Quote", "0", "2026-02-11 15:49:45", "draft"),
        ("Work Order", 1, "2026-02-11 15:49:45", "approved"),
        ("Completed", 0, "2026-02-11 15:49:45", "approved"),
        ("Unsuccessful", 1, "2026-02-11 15:49:45", "rejected"),
        ("Archived", 1, "2026-02-11 15:49:45", "draft"),
        ("Work Order", 0, NO_DATE, None),
        ("Completed", 0, NO_DATE, None),
        ("Unsuccessful", 0, NO_DATE, None),
    ],
)
def test_servicem8_quote_status_table(status, quote_sent, quote_date, expected):
    raw = fixture("servicem8", "job__quote_sent")
    raw.update(status=status, quote_sent=quote_sent, quote_date=quote_date)
    records = sm8().map_record("jobs", raw)
    quotes = [r for r in records if isinstance(r, ExternalQuote)]
    if expected is None:
        assert quotes == []
    else:
        assert [(q.status, q.provider_status) for q in quotes] == [(expected, status)]


def test_servicem8_materials_are_ex_tax():
    provider = sm8()
    inclusive = fixture("servicem8", "jobmaterial__tax_inclusive")
    line = provider.map_record("materials", copy.deepcopy(inclusive))
    assert isinstance(line, ExternalJobMaterial) and line.raw == inclusive
    assert line.job_external_id == line.quote_external_id == inclusive["job_uuid"]
    assert line.name == "Standard Labour (per hour)" and line.sort_order == 1
    # Shown GST-inclusive ($132.00, kept in raw), mapped ex-tax: 1.5 h x the `price`, $120.00.
    assert (line.quantity, line.unit_price, line.total) == (
        Decimal("1.5"),
        Decimal("120.00"),
        Decimal("180.00"),
    )
    assert not line.deleted and line.remote_updated_at == utc(2026, 2, 11, 22, 57, 10)

    exclusive = provider.map_record(
        "materials", fixture("servicem8", "jobmaterial__tax_exclusive_deleted")
    )
    assert exclusive.deleted and exclusive.sort_order == 4
    assert (exclusive.quantity, exclusive.unit_price, exclusive.total) == (
        Decimal("3"),
        Decimal("12.35"),
        Decimal("37.05"),
    )
    for amount in (exclusive.quantity, exclusive.unit_price, exclusive.total):
        assert isinstance(amount, Decimal)


def test_servicem8_material_without_a_displayed_amount_uses_the_price():
    raw = fixture("servicem8", "jobmaterial__tax_exclusive_deleted")
    raw.update(displayed_amount="", quantity="2", price="10.005")
    line = sm8().map_record("materials", raw)
    assert line.unit_price == Decimal("10.005") and line.total == Decimal("20.01")


def test_servicem8_material_without_a_price_uses_the_displayed_amount():
    raw = fixture("servicem8", "jobmaterial__tax_exclusive_deleted")
    raw.update(price="", quantity="2", displayed_amount="10.50")
    assert sm8().map_record("materials", raw).total == Decimal("21.00")


def test_servicem8_unmappable_record_raises_and_keeps_its_id():
    provider = sm8()
    raw = fixture("servicem8", "jobmaterial__tax_inclusive")
    raw["quantity"] = "lots"
    with pytest.raises(ValueError, match="lots"):
        provider.map_record("materials", raw)
    assert provider.record_id("materials", raw) == raw["uuid"]


@responses.activate
@pytest.mark.parametrize(
    ("entity", "obj"),
    [
        ("clients", "company"),
        ("contacts", "companycontact"),
        ("staff", "staff"),
        ("jobs", "job"),
        ("materials", "jobmaterial"),
        ("activities", "jobactivity"),
        ("attachments", "attachment"),
        ("job_contacts", "jobcontact"),
        ("notes", "note"),
        ("job_categories", "category"),
        ("tax_rates", "taxrate"),
        ("material_bundles", "jobmaterialbundle"),
        ("pricebook_items", "material"),
    ],
)
def test_servicem8_incremental_filter_per_entity(entity, obj):
    responses.get(f"{SM8}/{obj}.json", json=[])
    # 2026-07-01 00:00:00 UTC is 10:00 AEST; `gt` one second earlier is inclusive.
    list(sm8().iter_records(entity, updated_since=utc(2026, 7, 1)))
    list(sm8().iter_records(entity))
    incremental, full = (query(c) for c in responses.calls)
    assert incremental == {"cursor": ["-1"], "$filter": ["edit_date gt '2026-07-01 09:59:59'"]}
    assert full == {"cursor": ["-1"]}


@responses.activate
def test_servicem8_lists_pages_and_maps_a_quote_into_two_records():
    quote = fixture("servicem8", "job__quote_sent")
    done = fixture("servicem8", "job__completed_never_quoted")
    responses.get(f"{SM8}/job.json", json=[quote], headers={"x-next-cursor": "c2"})
    responses.get(f"{SM8}/job.json", json=[done])
    records = list(sm8().iter_records("jobs"))
    assert [type(r).__name__ for r in records] == ["ExternalJob", "ExternalQuote", "ExternalJob"]
    assert [query(c)["cursor"] for c in responses.calls] == [["-1"], ["c2"]]


@responses.activate
def test_servicem8_fetch_record_200_and_404():
    raw = fixture("servicem8", "job__quote_sent")
    responses.get(f"{SM8}/job/{raw['uuid']}.json", json=raw)
    responses.get(
        f"{SM8}/companycontact/{MISSING_UUID}.json",
        status=404,
        json={"errorCode": 404, "message": "Resource not found."},
    )
    provider = sm8()
    assert provider.fetch_record("jobs", raw["uuid"]) == raw
    assert provider.fetch_record("contacts", MISSING_UUID) is None
    assert responses.calls[0].request.headers["X-Api-Key"] == "sm8-key"
    with pytest.raises(ValueError):
        provider.fetch_record("invoices", MISSING_UUID)


# --- ServiceTitan ---------------------------------------------------------------------------


def test_servicetitan_entities_capabilities_and_lookback():
    provider = registry.get("servicetitan")
    # The core five in dependency order; issue #5's entities (locations, contacts, references,
    # pricebook, accounting…) sit between and after them (tests/integrations/servicetitan/).
    assert [e for e in provider.entities if e in ST_CORE] == list(ST_CORE)
    assert {
        Capability.READ_CLIENTS,
        Capability.READ_STAFF,
        Capability.READ_JOBS,
        Capability.READ_QUOTES,
    } <= provider.capabilities
    assert provider.cursor_lookback_seconds == 300


@responses.activate
def test_servicetitan_staff_reads_technicians_then_employees_with_distinct_ids():
    st_token()
    tech = fixture("servicetitan", "technician__active")
    employee = fixture("servicetitan", "employee__inactive")
    assert tech["id"] == employee["id"]  # the two id ranges may overlap
    technicians = ST_BASE.format(module="settings", path="technicians")
    employees = ST_BASE.format(module="settings", path="employees")
    responses.get(technicians, json=st_page([copy.deepcopy(tech)]))
    responses.get(employees, json=st_page([copy.deepcopy(employee)]))
    provider = st()
    first, second = provider.iter_records("staff", updated_since=utc(2026, 1, 1))

    calls = [c for c in responses.calls if c.request.url.startswith(ST_API)]
    assert [urlsplit(c.request.url).path.rsplit("/", 1)[1] for c in calls] == [
        "technicians",
        "employees",
    ]
    for call in calls:
        assert query(call) == {
            "active": ["Any"],
            "modifiedOnOrAfter": ["2026-01-01T00:00:00+00:00"],
            "page": ["1"],
            "pageSize": ["5000"],
        }
    assert isinstance(first, ExternalStaff) and first.raw == tech
    assert (first.external_id, first.kind, first.first_name, first.last_name) == (
        "7001",
        "technician",
        "Emily",
        "Khan",
    )
    assert first.email == "emily.khan0@sandbox-hvac.example" and first.phone == "6025555552"
    assert first.is_active and not first.deleted
    assert first.remote_updated_at == datetime(2026, 1, 17, 10, 28, 14, 369502, tzinfo=UTC)
    assert second.raw == employee
    assert (second.external_id, second.kind, second.title) == (
        "employee:7001",
        "employee",
        "Dispatch",
    )
    assert (second.first_name, second.last_name, second.phone) == ("Ryan", "van der King", "")
    assert second.deleted and not second.is_active
    assert provider.record_id("staff", employee) == "employee:7001"
    assert provider.record_id("staff", tech) == "7001"


def test_servicetitan_job_maps_every_field():
    raw = fixture("servicetitan", "job__in_progress")
    job = st().map_record("jobs", copy.deepcopy(raw))
    assert isinstance(job, ExternalJob) and job.raw == raw
    assert (job.external_id, job.client_external_id, job.number) == (
        "200000003",
        "11000011",
        "200000003",
    )
    assert job.summary == "Heat pump iced over." and job.description == raw["summary"]
    assert (job.status, job.provider_status, job.priority) == ("in_progress", "InProgress", "high")
    assert job.completed_at is None and job.revenue == Decimal("0")
    assert job.remote_updated_at == datetime(2026, 2, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert not job.deleted


def test_servicetitan_job_revenue_from_a_newer_api_total():
    raw = fixture("servicetitan", "job__in_progress")
    raw.update(total=1234.1, completedOn="2026-02-02T12:00:00Z", jobStatus="Completed")
    job = st().map_record("jobs", raw)
    assert job.revenue == Decimal("1234.1") and isinstance(job.revenue, Decimal)
    assert job.completed_at == utc(2026, 2, 2, 12) and job.status == "completed"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Scheduled", "scheduled"),
        ("Dispatched", "dispatched"),
        ("InProgress", "in_progress"),
        ("Working", "in_progress"),
        ("Hold", "on_hold"),
        ("Completed", "completed"),
        ("Canceled", "cancelled"),
        ("Unused", "pending"),
        ("", "pending"),
    ],
)
def test_servicetitan_job_status_table(status, expected):
    raw = fixture("servicetitan", "job__in_progress")
    raw["jobStatus"] = status
    job = st().map_record("jobs", raw)
    assert (job.status, job.provider_status) == (expected, status)


def test_servicetitan_sold_estimate_maps_with_its_items():
    raw = fixture("servicetitan", "estimate__sold")
    quote = st().map_record("quotes", copy.deepcopy(raw))
    assert isinstance(quote, ExternalQuote) and quote.raw == raw
    assert (quote.external_id, quote.number, quote.job_external_id) == (
        "400000007",
        "400000007",
        "200000003",
    )
    # The 2022 EstimateResponse has no customerId: the client comes through the job.
    assert quote.client_external_id is None
    assert quote.title == "Recommended Repair"
    assert (quote.status, quote.provider_status) == ("approved", "Sold")
    # 595.1 + 0.3 exactly: amounts are read through str(), never added as floats.
    assert (quote.subtotal, quote.tax_total, quote.total) == (
        Decimal("595.4"),
        Decimal("0"),
        Decimal("595.4"),
    )
    assert quote.remote_updated_at == datetime(2026, 2, 3, 18, 45, 0, 125000, tzinfo=UTC)
    assert not quote.deleted
    first, second = quote.line_items
    assert isinstance(first, ExternalLineItem) and first.raw == raw["items"][0]
    assert (first.external_id, first.quote_external_id, first.sort_order) == (
        "500000003",
        "400000007",
        0,
    )
    assert first.name == "Replace Defrost Board"
    assert first.description == "Replace defrost control board, test defrost cycle."
    assert (first.quantity, first.unit_price, first.total) == (
        Decimal("1.0"),
        Decimal("595.1"),
        Decimal("595.1"),
    )
    # An empty displayName falls back to the SKU's name.
    assert second.name == "MAT-0002" and second.sort_order == 1
    assert (second.quantity, second.unit_price, second.total) == (
        Decimal("3.0"),
        Decimal("0.1"),
        Decimal("0.3"),
    )
    for item in quote.line_items:
        assert all(isinstance(v, Decimal) for v in (item.quantity, item.unit_price, item.total))


def test_servicetitan_dismissed_inactive_estimate_is_deleted_and_rejected():
    quote = st().map_record("quotes", fixture("servicetitan", "estimate__dismissed_inactive"))
    assert quote.deleted and quote.status == "rejected" and quote.provider_status == "Dismissed"
    assert quote.job_external_id is None and quote.line_items == ()
    assert quote.total == Decimal("0") and quote.title == ""


def test_servicetitan_estimate_uses_newer_api_customer_subtotal_and_tax():
    raw = fixture("servicetitan", "estimate__sold")
    raw.update(customerId=11000011, subtotal=595.4, tax=47.63)
    quote = st().map_record("quotes", raw)
    assert quote.client_external_id == "11000011"
    assert (quote.subtotal, quote.tax_total, quote.total) == (
        Decimal("595.4"),
        Decimal("47.63"),
        Decimal("643.03"),
    )


@pytest.mark.parametrize(
    ("status", "expected", "provider_status"),
    [
        ({"value": 0, "name": "Open"}, "sent", "Open"),
        ({"value": 1, "name": "Sold"}, "approved", "Sold"),
        ({"value": 2, "name": "Dismissed"}, "rejected", "Dismissed"),
        ({"value": 9, "name": "Expired"}, "draft", "Expired"),
        (None, "draft", ""),
    ],
)
def test_servicetitan_estimate_status_table(status, expected, provider_status):
    raw = fixture("servicetitan", "estimate__sold")
    raw["status"] = status
    quote = st().map_record("quotes", raw)
    assert (quote.status, quote.provider_status) == (expected, provider_status)


@responses.activate
@pytest.mark.parametrize(
    ("entity", "module", "path", "active"),
    [
        ("clients", "crm", "customers", True),
        ("jobs", "jpm", "jobs", False),
        ("quotes", "sales", "estimates", True),
    ],
)
def test_servicetitan_incremental_params_per_entity(entity, module, path, active):
    st_token()
    responses.get(ST_BASE.format(module=module, path=path), json=st_page([]))
    list(st().iter_records(entity, updated_since=datetime(2026, 3, 1, 10, 30, tzinfo=UTC)))
    list(st().iter_records(entity))
    incremental, full = (c for c in responses.calls if c.request.url.startswith(ST_API))
    paging = {"page": ["1"], "pageSize": ["5000"]}
    # Jobs take no `active` (JobResponse has none; spec: jpm Jobs_GetList).
    activity = {"active": ["Any"]} if active else {}
    assert query(incremental) == {
        **paging,
        **activity,
        "modifiedOnOrAfter": ["2026-03-01T10:30:00+00:00"],
    }
    assert query(full) == {**paging, **activity}


@responses.activate
def test_servicetitan_short_page_that_claims_more_stops_the_read():
    st_token()
    path = ST_BASE.format(module="jpm", path="jobs")
    responses.get(path, json=st_page([fixture("servicetitan", "job__in_progress")], more=True))
    with pytest.raises(PaginationError, match="claims more"):
        list(st().iter_records("jobs"))


@responses.activate
def test_servicetitan_fetch_record_200_and_404():
    st_token()
    estimate = fixture("servicetitan", "estimate__sold")
    employee = fixture("servicetitan", "employee__inactive")
    responses.get(ST_BASE.format(module="sales", path="estimates/400000007"), json=estimate)
    responses.get(ST_BASE.format(module="settings", path="employees/7001"), json=employee)
    not_found = {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.4",
        "title": "Technician not found",
        "status": 404,
        "traceId": "00-1-2-00",
        "errors": {},
        "data": {},
    }
    responses.get(
        ST_BASE.format(module="settings", path="technicians/7001"), status=404, json=not_found
    )
    provider = st()
    assert provider.fetch_record("quotes", "400000007") == estimate
    assert provider.fetch_record("staff", "employee:7001") == employee
    assert provider.fetch_record("staff", "7001") is None
    with pytest.raises(ValueError):
        provider.fetch_record("jobs", "abc")


# --- end to end against a live sandbox ------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    db = tmp_path_factory.mktemp("entities") / "sandbox.sqlite3"
    counts = seed(db, records=12, seed=11)
    with SandboxServer(db) as server:
        yield server, counts


def _control(server: SandboxServer, method: str, path: str, payload: dict | None = None) -> dict:
    response = requests.request(method, f"{server.url}/_sandbox/{path}", json=payload, timeout=10)
    response.raise_for_status()
    return response.json()


def _record_exchanges(provider) -> list[requests.Response]:
    """Every HTTP response the provider's session receives (its request included)."""
    seen: list[requests.Response] = []
    provider.get_client().session.hooks["response"].append(lambda r, *a, **k: seen.append(r))
    return seen


def _check_against_spec(openapi: OpenAPI, response: requests.Response, host: str, strip: str):
    request, spec_response = _as_spec(response, host, strip)
    openapi.validate_request(request)
    if "servicetitan" in host:  # ServiceM8's spec lacks its paging/filter parameters
        assert_query_declared(openapi, request)
    if response.status_code == 200:
        openapi.validate_response(request, spec_response)


def _by_type(records) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for record in records:
        grouped.setdefault(type(record).__name__, []).append(record)
    return grouped


def test_servicem8_reads_every_entity_from_the_live_sandbox(live):
    server, seeded = live
    counts = seeded["servicem8"]
    _control(server, "POST", "reset")
    _control(server, "POST", "config", {"servicem8": {"page_size": 7}})
    provider = sm8(
        base_url_override=server.url,
        credentials={"api_key": accounts.SERVICEM8_ACCOUNT.api_key},
        config={"timezone": accounts.SERVICEM8_ACCOUNT.timezone},
    )
    jobs_raw = [r for page in provider.pages("jobs") for r in page]
    gone = jobs_raw[0]["uuid"]
    _control(server, "DELETE", f"records/servicem8/job/{gone}")
    exchanges = _record_exchanges(provider)

    read = {entity: list(provider.iter_records(entity)) for entity in provider.entities}

    expected = {
        "clients": counts["company"],
        "contacts": counts["companycontact"],
        "staff": counts["staff"],
        "materials": counts["jobmaterial"],
        "job_contacts": counts["jobcontact"],
        "job_categories": counts["category"],
        "tax_rates": counts["taxrate"],
        "material_bundles": counts["jobmaterialbundle"],
        "pricebook_items": counts["material"],
    }
    assert all(expected.values())  # the seed has records of every object
    for entity, count in expected.items():
        assert len(read[entity]) == count, entity
        assert len({r.external_id for r in read[entity]}) == count, entity
    # Notes on jobs and clients only: every seeded note is on one of those.
    assert len(read["notes"]) == counts["note"] > 0
    assert {
        (n.job_external_id is None) != (n.client_external_id is None) for n in read["notes"]
    } == {True}
    assert all(isinstance(r, ExternalJobContact) for r in read["job_contacts"])
    assert {r.kind for r in read["job_categories"]} == {"job_category"}
    assert {r.kind for r in read["tax_rates"]} == {"tax_rate"}
    assert {r.kind for r in read["material_bundles"]} == {"material_bundle"}
    assert all(r.external_id.startswith(f"{r.kind}:") for e in REFS for r in read[e])
    items = read["pricebook_items"]
    assert all(isinstance(r, ExternalPricebookItem) and r.kind == "material" for r in items)
    # The seeded permit fees are GST Free (0 %): not taxable; everything else is.
    assert {r.is_taxable for r in items} == {True, False}
    assert all(r.is_taxable == (r.raw["tax_rate_uuid"] != GST_FREE) for r in items)
    assert all(isinstance(r, ExternalClient) for r in read["clients"])
    assert all(isinstance(r, ExternalContact) for r in read["contacts"])
    assert all(isinstance(r, ExternalStaff) for r in read["staff"])
    assert all(isinstance(r, ExternalJobMaterial) for r in read["materials"])
    jobs = _by_type(read["jobs"])
    quoted = [
        r for r in jobs_raw if r["status"] == "Quote" or not r["quote_date"].startswith("0000")
    ]
    assert len(jobs["ExternalJob"]) == counts["job"]
    assert len(jobs["ExternalQuote"]) == len(quoted) > 0
    assert {q.status for q in jobs["ExternalQuote"]} <= {"draft", "sent", "approved", "rejected"}
    assert [j.deleted for j in jobs["ExternalJob"] if j.external_id == gone] == [True]
    assert all(isinstance(m.total, Decimal) for m in read["materials"])
    # Every listed record has a UTC time stamp from its local edit_date.
    for records in read.values():
        assert all(r.remote_updated_at and r.remote_updated_at.tzinfo for r in records)

    # Incremental reads are inclusive: exactly the records changed at or after `since`.
    stamps = sorted({j.remote_updated_at for j in jobs["ExternalJob"]})
    since = stamps[len(stamps) // 2]
    changed = list(provider.iter_records("jobs", updated_since=since))
    assert {r.external_id for r in changed if isinstance(r, ExternalJob)} == {
        j.external_id for j in jobs["ExternalJob"] if j.remote_updated_at >= since
    }

    for entity in provider.entities:
        first = read[entity][0]
        fetched = provider.fetch_record(entity, first.external_id)
        assert fetched is not None and fetched["uuid"] == first.raw["uuid"], entity
        assert fetched == dict(first.raw), entity
        assert provider.fetch_record(entity, MISSING_UUID) is None

    openapi = OpenAPI.from_file_path(
        str(_spec_file(SM8_SPEC)),
        config=Config(spec_validator_cls=None),
    )
    assert {r.status_code for r in exchanges} == {200, 404}
    for response in exchanges:
        _check_against_spec(openapi, response, "https://api.servicem8.com", "/servicem8")


def test_servicetitan_reads_every_entity_from_the_live_sandbox(live):
    server, seeded = live
    counts = seeded["servicetitan"]
    _control(server, "POST", "reset")
    provider = st(
        base_url_override=server.url,
        credentials=accounts.servicetitan_credentials(),
        config={"page_size": 7},
    )
    estimates_raw = [r for page in provider.pages("quotes") for r in page]
    gone = estimates_raw[0]["id"]
    _control(server, "DELETE", f"records/servicetitan/estimates/{gone}")
    exchanges = _record_exchanges(provider)

    read = {entity: list(provider.iter_records(entity)) for entity in ST_CORE}

    expected = {
        "clients": counts["customers"],
        "staff": counts["technicians"] + counts["employees"],
        "jobs": counts["jobs"],
        "quotes": counts["estimates"],
    }
    for entity, count in expected.items():
        assert len(read[entity]) == count, entity
        assert len({r.external_id for r in read[entity]}) == count, entity
    assert sum(s.kind == "employee" for s in read["staff"]) == counts["employees"]
    assert all(isinstance(r, ExternalJob) for r in read["jobs"])
    quotes = read["quotes"]
    assert all(isinstance(q, ExternalQuote) for q in quotes)
    assert sum(len(q.line_items) for q in quotes) == sum(len(r["items"]) for r in estimates_raw)
    assert [q.deleted for q in quotes if q.external_id == str(gone)] == [True]
    assert {q.status for q in quotes} <= {"sent", "approved", "rejected"}
    assert all(q.total == sum(i.total for i in q.line_items) for q in quotes)

    stamps = sorted({j.remote_updated_at for j in read["jobs"]})
    since = stamps[len(stamps) // 2]
    changed = list(provider.iter_records("jobs", updated_since=since))
    assert {r.external_id for r in changed} == {
        j.external_id for j in read["jobs"] if j.remote_updated_at >= since
    }

    for entity in ST_CORE:
        for record in (read[entity][0], read[entity][-1]):
            fetched = provider.fetch_record(entity, record.external_id)
            assert fetched == record.raw, entity
        assert provider.fetch_record(entity, "1") is None
    assert provider.fetch_record("staff", "employee:1") is None

    specs = {
        module: OpenAPI.from_dict(
            yaml.safe_load(_spec_file(SPECS / "servicetitan" / name).read_text()),
            config=Config(spec_validator_cls=None),
        )
        for module, name in ST_MODULE_SPECS.items()
    }
    api = [r for r in exchanges if urlsplit(r.url).path.startswith("/servicetitan/")]
    assert {r.status_code for r in api} == {200, 404}
    for response in api:
        module = urlsplit(response.url).path.split("/")[2]
        _check_against_spec(specs[module], response, "https://api.servicetitan.io", "/servicetitan")
