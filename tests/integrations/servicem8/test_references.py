"""ServiceM8 job contacts, notes, job categories, tax rates, job material bundles and the
pricebook (`material`): mapping from spec-shaped fixtures, the provider's entity plumbing
(record types, per-kind sweeps, targeted re-fetches of "<kind>:<uuid>" ids) and the tax-rate
lookup that decides whether a material is taxable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import responses

from integrations import registry
from integrations.base import (
    ExternalJobContact,
    ExternalNote,
    ExternalPricebookItem,
    ExternalReference,
    ProviderContext,
)
from integrations.http import RetryPolicy
from integrations.providers.servicem8 import mapping

HERE = Path(__file__).resolve().parent
API = "https://api.servicem8.com/api_1.0"
SYDNEY = ZoneInfo("Australia/Sydney")
JOB = "a0e1c2d3-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
GST = "7c1f3a52-6d0e-4b8a-9c21-5e2a8f0d4b17"
GST_FREE = "7c1f3a52-6d0e-4b8a-9c21-5e2a8f0d4b18"


def fixture(name: str) -> dict:
    return json.loads((HERE / "fixtures" / f"{name}.json").read_text())


def provider():
    return registry.get("servicem8")(
        ProviderContext(
            integration_id=1,
            credentials={"api_key": "sm8-key"},
            config={"timezone": "Australia/Sydney"},
            rate_limit_enabled=False,
            retry=RetryPolicy(attempts=1),
        )
    )


def tax_rates(*records: dict) -> None:
    responses.get(f"{API}/taxrate.json", json=list(records))


# --- job contacts ------------------------------------------------------------------------------


def test_job_contact_maps_every_field():
    raw = fixture("jobcontact__property_manager")
    contact = mapping.jobcontact_to_job_contact(raw, tz=SYDNEY)
    assert isinstance(contact, ExternalJobContact)
    assert (contact.provider, contact.external_id, contact.job_external_id) == (
        "servicem8",
        raw["uuid"],
        JOB,
    )
    assert (contact.role, contact.first_name, contact.last_name) == (
        "Property Manager",
        "Priya",
        "Raman",
    )
    assert (contact.email, contact.phone, contact.mobile) == (
        "priya.raman@harbourstrata.com.au",
        "(02) 9555 0142",
        "0412 345 678",
    )
    # 09:15:42 Sydney daylight time (UTC+11) on 2 March.
    assert contact.remote_updated_at == datetime(2026, 3, 1, 22, 15, 42, tzinfo=UTC)
    assert not contact.deleted and contact.raw is raw


def test_deleted_job_contact_is_trimmed_and_deleted():
    contact = mapping.jobcontact_to_job_contact(
        fixture("jobcontact__deleted_site_contact"), tz=SYDNEY
    )
    assert contact.deleted and contact.first_name == "Tom" and contact.phone == ""
    # Winter: standard time, UTC+10.
    assert contact.remote_updated_at == datetime(2026, 7, 14, 6, 3, 9, tzinfo=UTC)


def test_job_contact_without_a_job_is_an_error():
    raw = fixture("jobcontact__property_manager") | {"job_uuid": ""}
    with pytest.raises(ValueError, match="job_uuid"):
        mapping.jobcontact_to_job_contact(raw, tz=SYDNEY)


# --- notes -------------------------------------------------------------------------------------


def test_job_note_maps_every_field():
    raw = fixture("note__job_diary")
    note = mapping.note_to_note(raw, tz=SYDNEY)
    assert isinstance(note, ExternalNote)
    assert (note.job_external_id, note.client_external_id) == (JOB, None)
    assert note.body == "Parts ordered from Reece, ETA Thursday.\nCustomer happy to wait."
    assert note.author == raw["edit_by_staff_uuid"]
    assert note.noted_at == datetime(2026, 3, 3, 3, 18, 47, tzinfo=UTC)
    assert note.remote_updated_at == datetime(2026, 3, 3, 3, 20, 5, tzinfo=UTC)
    assert not note.deleted and note.raw is raw


def test_client_note_deleted_without_a_create_date():
    raw = fixture("note__company_deleted")
    note = mapping.note_to_note(raw, tz=SYDNEY)
    assert (note.job_external_id, note.client_external_id) == (None, raw["related_object_uuid"])
    assert note.deleted and note.noted_at is None


def test_a_note_on_another_object_is_skipped_and_one_without_owner_is_an_error():
    raw = fixture("note__job_diary")
    assert mapping.note_to_note(raw | {"related_object": "staff"}, tz=SYDNEY) is None
    assert provider().map_record("notes", raw | {"related_object": "asset"}) == ()
    # ServiceM8's related_object is lower case, but be lenient with its case.
    assert mapping.note_to_note(raw | {"related_object": "Job"}, tz=SYDNEY) is not None
    with pytest.raises(ValueError, match="related_object_uuid"):
        mapping.note_to_note(raw | {"related_object_uuid": ""}, tz=SYDNEY)


# --- references --------------------------------------------------------------------------------


def test_job_category_is_a_reference_with_a_kind_prefixed_id():
    raw = fixture("category__hot_water")
    category = mapping.category_to_reference(raw, tz=SYDNEY)
    assert isinstance(category, ExternalReference)
    assert category.external_id == f"job_category:{raw['uuid']}"
    assert (category.kind, category.name, category.code) == ("job_category", "Hot Water", "")
    assert category.is_active and not category.deleted and category.raw is raw
    assert category.remote_updated_at == datetime(2026, 1, 20, 0, 2, 33, tzinfo=UTC)


def test_tax_rates_keep_the_rate_as_code():
    gst = mapping.taxrate_to_reference(fixture("taxrate__gst_default"), tz=SYDNEY)
    assert (gst.external_id, gst.kind, gst.name, gst.code) == (
        f"tax_rate:{GST}",
        "tax_rate",
        "GST",
        "10",
    )
    assert gst.is_active and not gst.deleted
    free = mapping.taxrate_to_reference(fixture("taxrate__gst_free_deleted"), tz=SYDNEY)
    assert (free.code, free.is_active, free.deleted) == ("0.000", False, True)
    with pytest.raises(ValueError, match="ten"):
        mapping.taxrate_to_reference(fixture("taxrate__gst_default") | {"amount": "ten"}, tz=SYDNEY)


def test_job_material_bundle_belongs_to_its_job():
    raw = fixture("jobmaterialbundle__hot_water_kit")
    bundle = mapping.jobmaterialbundle_to_reference(raw, tz=SYDNEY)
    assert (bundle.external_id, bundle.kind, bundle.name, bundle.code) == (
        f"material_bundle:{raw['uuid']}",
        "material_bundle",
        "Hot Water Install Kit",
        "KIT-HW",
    )
    assert bundle.parent_external_id == JOB and bundle.raw["quantity"] == "2"
    with pytest.raises(ValueError, match="job_uuid"):
        mapping.jobmaterialbundle_to_reference(raw | {"job_uuid": ""}, tz=SYDNEY)


# --- pricebook ---------------------------------------------------------------------------------


def test_material_maps_every_field_as_decimal():
    raw = fixture("material__inventoried_part")
    item = mapping.material_to_pricebook_item(raw, tz=SYDNEY, tax_rates={GST: Decimal("10")})
    assert isinstance(item, ExternalPricebookItem)
    assert (item.external_id, item.kind, item.code, item.name) == (
        raw["uuid"],
        "material",
        "TV-20",
        "Tempering Valve 20mm",
    )
    assert item.description == "Reliance Heatguard 20mm tempering valve, 50 °C outlet"
    assert item.unit_price == Decimal("276.00") and isinstance(item.unit_price, Decimal)
    assert item.cost == Decimal("118.45")
    assert item.unit == "" and item.category_external_ids == ()
    assert item.is_taxable and item.is_active and not item.deleted and item.raw is raw


def test_deleted_gst_free_material_is_inactive_and_not_taxable():
    raw = fixture("material__deleted_permit_fee_gst_free")
    rates = {GST: Decimal("10"), GST_FREE: Decimal("0")}
    item = mapping.material_to_pricebook_item(raw, tz=SYDNEY, tax_rates=rates)
    assert (item.unit_price, item.cost, item.code) == (Decimal("160.00"), None, "")
    assert (item.is_taxable, item.is_active, item.deleted) == (False, False, True)
    # Unknown rates: a material with a rate counts as taxable, one without as not.
    assert mapping.material_to_pricebook_item(raw, tz=SYDNEY).is_taxable
    untaxed = raw | {"tax_rate_uuid": ""}
    assert not mapping.material_to_pricebook_item(untaxed, tz=SYDNEY).is_taxable
    with pytest.raises(ValueError, match="cheap"):
        mapping.material_to_pricebook_item(raw | {"price": "cheap"}, tz=SYDNEY)


@responses.activate
def test_pricebook_reads_the_tax_rates_once_per_run():
    tax_rates(fixture("taxrate__gst_default"), fixture("taxrate__gst_free_deleted"))
    part, fee = (
        fixture("material__inventoried_part"),
        fixture("material__deleted_permit_fee_gst_free"),
    )
    responses.get(f"{API}/material.json", json=[part, fee])
    items = list(provider().iter_records("pricebook_items"))
    assert [(i.code, i.is_taxable) for i in items] == [("TV-20", True), ("", False)]
    paths = [c.request.path_url.split("?")[0] for c in responses.calls]
    assert sorted(paths) == ["/api_1.0/material.json", "/api_1.0/taxrate.json"]


@responses.activate
def test_pricebook_without_the_tax_rate_scope_still_reads():
    responses.get(
        f"{API}/taxrate.json", status=403, json={"errorCode": 403, "message": "Access forbidden."}
    )
    fee = fixture("material__deleted_permit_fee_gst_free")
    responses.get(f"{API}/material.json", json=[fee])
    (item,) = provider().iter_records("pricebook_items")
    assert item.is_taxable  # the rate is unknown: taxable, as it has one


# --- provider plumbing -------------------------------------------------------------------------


def test_record_types_and_per_kind_sweeps():
    sm8 = provider()
    assert sm8.record_types("job_contacts") == (ExternalJobContact,)
    assert sm8.record_types("notes") == (ExternalNote,)
    assert sm8.record_types("pricebook_items") == (ExternalPricebookItem,)
    scopes = {
        entity: sm8.sweep_scope(entity, sm8.record_types(entity)[0])
        for entity in ("job_categories", "tax_rates", "material_bundles", "pricebook_items")
    }
    assert scopes == {
        "job_categories": {"kind": "job_category"},
        "tax_rates": {"kind": "tax_rate"},
        "material_bundles": {"kind": "material_bundle"},
        "pricebook_items": {"kind": "material"},
    }
    assert sm8.sweep_scope("notes", ExternalNote) == {}


def test_oauth_scopes_cover_every_read():
    # Each list path's security requirement [spec: /jobcontact.json, /category.json, …].
    scopes = set(registry.get("servicem8").oauth_scopes.split())
    assert {
        "read_job_contacts",
        "read_job_notes",
        "read_job_categories",
        "read_tax_rates",
        "read_inventory",
        "read_job_materials",
    } <= scopes


@responses.activate
def test_fetch_record_takes_reference_ids_and_reads_notes_at_dbonote():
    rate, note = fixture("taxrate__gst_default"), fixture("note__job_diary")
    responses.get(f"{API}/taxrate/{GST}.json", json=rate)
    responses.get(f"{API}/dbonote/{note['uuid']}.json", json=note)
    bundle_id = "2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a61"
    responses.get(
        f"{API}/jobmaterialbundle/{bundle_id}.json",
        status=404,
        json={"errorCode": 404, "message": "Resource not found."},
    )
    sm8 = provider()
    assert sm8.fetch_record("tax_rates", f"tax_rate:{GST}") == rate
    assert sm8.fetch_record("tax_rates", GST) == rate
    assert sm8.fetch_record("notes", note["uuid"]) == note
    assert sm8.fetch_record("material_bundles", f"material_bundle:{bundle_id}") is None
