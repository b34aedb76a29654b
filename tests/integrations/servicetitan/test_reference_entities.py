"""ServiceTitan locations, contact methods and reference entities (issue #5): fixtures that are
complete spec records, mapping, the query each entity sends (full and incremental), the
location-contact customer lookup, targeted re-fetches through the "<kind>:" prefix, and one
read of every entity from a live sandbox with each exchange checked against the official
OpenAPI files."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import yaml
from openapi_core import Config, OpenAPI
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from integrations import registry
from integrations.base import Capability, ExternalContact, ExternalLocation, ExternalReference
from integrations.providers.servicetitan import mapping_reference as refs
from integrations.providers.servicetitan.provider import FULL_READ_SINCE
from integrations.sandbox import accounts
from tests.integrations.sandbox.test_spec_conformance import SPECS, ST_MODULE_SPECS
from tests.integrations.test_provider_entities import (
    ST_API,
    ST_BASE,
    _check_against_spec,
    _control,
    _record_exchanges,
    _spec_file,
    fixture,
    live,  # noqa: F401 - the live sandbox fixture
    query,
    st,
    st_page,
    st_token,
)

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")

OURS = (
    "locations",
    "contacts",
    "business_units",
    "job_types",
    "tag_types",
    "zones",
    "cancel_reasons",
    "hold_reasons",
    "projects",
    "technician_shifts",
)
FIXTURE_SCHEMAS = {
    "location__commercial": ("crm", "Crm.V2.Locations.LocationResponse"),
    "customer_contact__mobile": (
        "crm",
        "Crm.V2.Customers.CustomerContactWithModifiedOnAndCustomerIdResponse",
    ),
    "customer_contact__email": (
        "crm",
        "Crm.V2.Customers.CustomerContactWithModifiedOnAndCustomerIdResponse",
    ),
    "location_contact__phone": ("crm", "Crm.V2.LocationsContactResponse"),
    "business_unit__active": ("settings", "TenantSettings.V2.BusinessUnitResponse"),
    "job_type__plain": ("jpm", "Crm.V2.JobTypeResponse"),
    "tag_type__inactive": ("settings", "TenantSettings.V2.TagTypeResponse"),
    "zone__service_days": ("dispatch", "Dispatch.V2.ZoneResponse"),
    "cancel_reason__active": ("jpm", "Crm.V2.JobCancelReasonResponse"),
    "hold_reason__inactive": ("jpm", "Crm.V2.JobHoldReasonResponse"),
    "project__completed": ("jpm", "Crm.V2.ProjectResponse"),
    "technician_shift__on_call": ("dispatch", "Dispatch.V2.TechnicianShiftResponse"),
}
# entity -> (module, path, takes active, takes modifiedOnOrAfter, requires it)
LISTS = {
    "locations": [("crm", "locations", True, True, False)],
    "contacts": [
        ("crm", "customers/contacts", False, True, True),
        ("crm", "locations/contacts", False, True, True),
    ],
    "business_units": [("settings", "business-units", True, True, False)],
    # JobTypeResponse has no `active`: the default (active only) is kept on purpose.
    "job_types": [("jpm", "job-types", False, True, False)],
    "tag_types": [("settings", "tag-types", True, False, False)],
    "zones": [("dispatch", "zones", False, False, False)],
    "cancel_reasons": [("jpm", "job-cancel-reasons", True, False, False)],
    "hold_reasons": [("jpm", "job-hold-reasons", True, False, False)],
    "projects": [("jpm", "projects", False, True, False)],
    "technician_shifts": [("dispatch", "technician-shifts", False, False, False)],
}


@pytest.fixture(scope="module")
def raw_specs() -> dict[str, dict]:
    return {
        module: yaml.safe_load(
            _spec_file(SPECS / "servicetitan" / ST_MODULE_SPECS[module]).read_text()
        )
        for module in ("crm", "jpm", "settings", "dispatch")
    }


@pytest.mark.parametrize(("name", "where"), sorted(FIXTURE_SCHEMAS.items()))
def test_fixtures_are_complete_spec_records(raw_specs, name, where):
    module, schema = where
    raw = raw_specs[module]
    record = fixture("servicetitan", name)
    assert set(raw["components"]["schemas"][schema]["properties"]) <= set(record)
    root = {"$ref": f"#/components/schemas/{schema}", "components": raw["components"]}
    errors = list(OAS30Validator(root, format_checker=oas30_format_checker).iter_errors(record))
    assert not errors, errors[0].message


def test_entities_in_dependency_order_and_capabilities():
    provider = registry.get("servicetitan")
    entities = provider.entities
    core = [e for e in entities if e in {"clients", "staff", "jobs", "appointments", "quotes"}]
    assert core == ["clients", "staff", "jobs", "appointments", "quotes"]
    ours = [e for e in entities if e in OURS or e in core]
    assert ours == [
        "clients",
        "locations",
        "contacts",
        "business_units",
        "job_types",
        "tag_types",
        "zones",
        "cancel_reasons",
        "hold_reasons",
        "projects",
        "staff",
        "technician_shifts",
        "jobs",
        "appointments",
        "quotes",
    ]
    assert {Capability.READ_CONTACTS, Capability.READ_LOCATIONS} <= provider.capabilities
    # SPEC GAP: teams are read from the documented endpoint (tests in test_dispatch_teams.py).
    assert entities.index("zones") < entities.index("teams") < entities.index("staff")


# --- mapping --------------------------------------------------------------------------------


def test_location_maps_every_address_field():
    raw = fixture("servicetitan", "location__commercial")
    location = st().map_record("locations", copy.deepcopy(raw))
    assert isinstance(location, ExternalLocation) and location.raw == raw
    assert (location.external_id, location.client_external_id) == (str(raw["id"]), "11000490")
    assert location.name == "Thompson Office Park Group - Sacramento"
    assert (location.street, location.street2) == ("7450 Lincoln Ave", "Suite 124")
    assert (location.city, location.region, location.postal_code) == (
        "Sacramento",
        "CA",
        "95801",
    )
    assert location.country == "US"  # ISO 3166-1 from ServiceTitan's "USA"
    assert location.latitude == Decimal("38.609446")
    assert location.longitude == Decimal("-121.464393")
    assert location.remote_updated_at.tzinfo is not None and not location.deleted


def test_a_deactivated_location_with_bad_coordinates():
    raw = fixture("servicetitan", "location__commercial")
    raw.update(active=False, mergedToId=100000099)
    raw["address"].update(latitude=123.0, longitude=None, country="Canada")
    location = st().map_record("locations", raw)
    assert location.deleted
    assert (location.latitude, location.longitude, location.country) == (None, None, "CA")


def test_customer_contact_methods_become_one_contact_each():
    provider = st()
    mobile = provider.map_record("contacts", fixture("servicetitan", "customer_contact__mobile"))
    assert isinstance(mobile, ExternalContact)
    assert (mobile.external_id, mobile.client_external_id) == ("150000040", "11000272")
    assert (mobile.mobile, mobile.phone, mobile.email) == ("6147268739", "", "")
    assert mobile.role == "MobilePhone: Cell"
    assert (mobile.first_name, mobile.last_name, mobile.is_primary) == ("", "", False)
    assert mobile.remote_updated_at == datetime(2026, 1, 15, 14, 56, 46, 636390, tzinfo=UTC)
    email = provider.map_record("contacts", fixture("servicetitan", "customer_contact__email"))
    assert (email.email, email.phone, email.mobile, email.role) == (
        "harper.roberts97@outlook.com",
        "",
        "",
        "Email",
    )


@pytest.mark.parametrize(
    ("kind", "field"),
    [("Phone", "phone"), ("MobilePhone", "mobile"), ("Email", "email"), ("Fax", "phone")],
)
def test_contact_type_table(kind, field):
    raw = fixture("servicetitan", "customer_contact__mobile")
    raw.update(type=kind, value="x@y.example", memo=None, phoneSettings=None)
    contact = st().map_record("contacts", raw)
    values = {"phone": contact.phone, "mobile": contact.mobile, "email": contact.email}
    assert values.pop(field) == "x@y.example" and set(values.values()) == {""}
    assert contact.role == kind


def test_location_contact_belongs_to_the_locations_customer():
    raw = fixture("servicetitan", "location_contact__phone")
    provider = st()
    assert provider.record_id("contacts", raw) == "location-contact:170000002"
    contact = provider.map_record("contacts", {**raw, refs.LOCATION_CUSTOMER_KEY: 11000062})
    assert contact.external_id == "location-contact:170000002"
    assert contact.client_external_id == "11000062"
    assert (contact.phone, contact.role) == ("8138671142", "Phone: Front desk")
    orphan = provider.map_record("contacts", {**raw, refs.LOCATION_CUSTOMER_KEY: None})
    assert orphan.client_external_id is None


REFERENCE_CASES = [
    # fixture, entity, external id, name, code, active, parent, has a time stamp
    (
        "business_unit__active",
        "business_units",
        "business_unit:1005",
        "Maintenance Agreements",
        "BU1005",
        True,
        "",
        True,
    ),
    ("job_type__plain", "job_types", "job_type:2006", "System Install", "", True, "", True),
    ("tag_type__inactive", "tag_types", "tag_type:9308", "Legacy Import", "", False, "", False),
    ("zone__service_days", "zones", "zone:9401", "Phoenix Metro", "", True, "", True),
    (
        "cancel_reason__active",
        "cancel_reasons",
        "cancel_reason:9101",
        "Customer canceled",
        "",
        True,
        "",
        False,
    ),
    (
        "hold_reason__inactive",
        "hold_reasons",
        "hold_reason:9205",
        "Weather delay",
        "",
        False,
        "",
        False,
    ),
    (
        "project__completed",
        "projects",
        "project:180000012",
        "Restroom plumbing remodel",
        "180000012",
        True,
        "11000490",
        True,
    ),
    (
        "technician_shift__on_call",
        "technician_shifts",
        "technician_shift:9500234",
        "Weekend on-call",
        "OnCall",
        True,
        "7017",
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "entity", "external_id", "title", "code", "active", "parent", "stamped"),
    REFERENCE_CASES,
)
def test_reference_mapping(name, entity, external_id, title, code, active, parent, stamped):
    raw = fixture("servicetitan", name)
    provider = st()
    record = provider.map_record(entity, copy.deepcopy(raw))
    assert isinstance(record, ExternalReference) and record.raw == raw
    assert record.kind == refs.REFERENCE_KINDS[entity]
    assert record.external_id == external_id == provider.record_id(entity, raw)
    assert (record.name, record.code, record.parent_external_id) == (title, code, parent)
    assert record.is_active is active and record.deleted is (not active)
    assert (record.remote_updated_at is not None) is stamped
    assert provider.sweep_scope(entity, ExternalReference) == {"kind": record.kind}
    assert provider.record_types(entity) == (ExternalReference,)


def test_a_project_without_a_name_is_named_by_its_number():
    raw = fixture("servicetitan", "project__completed")
    raw.update(name=None, modifiedOn=None)
    record = st().map_record("projects", raw)
    assert (record.name, record.code, record.remote_updated_at) == ("180000012", "180000012", None)


# --- queries --------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize("entity", OURS)
def test_incremental_and_full_params_per_entity(entity):
    st_token()
    for module, path, *_ in LISTS[entity]:
        responses.get(ST_BASE.format(module=module, path=path), json=st_page([]))
    since = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    list(st().iter_records(entity, updated_since=since))
    list(st().iter_records(entity))
    calls = [c for c in responses.calls if c.request.url.startswith(ST_API)]
    n = len(LISTS[entity])
    incremental, full = calls[:n], calls[n:]
    assert len(full) == n
    paging = {"page": ["1"], "pageSize": ["5000"]}
    for (module, path, active, modified, required), inc, whole in zip(
        LISTS[entity], incremental, full, strict=True
    ):
        assert urlsplit(inc.request.url).path.endswith(f"/{module}/v2/tenant/42/{path}")
        activity = {"active": ["Any"]} if active else {}
        inc_filter = {"modifiedOnOrAfter": ["2026-03-01T10:30:00+00:00"]} if modified else {}
        # A list that requires a modified filter gets FULL_READ_SINCE on a full read; one
        # without the filter is read whole every time.
        full_filter = {"modifiedOnOrAfter": [FULL_READ_SINCE.isoformat()]} if required else {}
        assert query(inc) == {**paging, **activity, **inc_filter}
        assert query(whole) == {**paging, **activity, **full_filter}


@responses.activate
def test_location_contacts_look_up_their_customers_50_locations_a_call():
    st_token()
    contact = fixture("servicetitan", "location_contact__phone")
    contacts = [{**contact, "id": 170000100 + n, "locationId": 100000000 + n} for n in range(60)]
    responses.get(ST_BASE.format(module="crm", path="customers/contacts"), json=st_page([]))
    responses.get(ST_BASE.format(module="crm", path="locations/contacts"), json=st_page(contacts))
    location = fixture("servicetitan", "location__commercial")

    def locations(request):
        ids = [int(i) for i in query_of(request)["ids"][0].split(",")]
        # Location 100000059 is gone: its contact keeps no customer.
        found = [{**location, "id": i, "customerId": 11000000 + i % 7} for i in ids]
        return 200, {}, json.dumps(st_page([r for r in found if r["id"] != 100000059]))

    responses.add_callback(
        responses.GET, ST_BASE.format(module="crm", path="locations"), callback=locations
    )
    records = list(st().iter_records("contacts"))
    lookups = [c for c in responses.calls if urlsplit(c.request.url).path.endswith("/locations")]
    assert [len(query(c)["ids"][0].split(",")) for c in lookups] == [50, 10]
    assert all(query(c)["active"] == ["Any"] for c in lookups)
    assert [r.client_external_id for r in records[:3]] == [
        str(11000000 + (100000000 + n) % 7) for n in range(3)
    ]
    assert records[-1].client_external_id is None
    assert all(r.external_id.startswith("location-contact:") for r in records)


@responses.activate
def test_one_non_numeric_location_id_does_not_fail_the_contact_page():
    """A bad `locationId` (spec: int64) used to raise ValueError for the whole page; now that
    contact alone keeps no customer and the others are looked up and mapped."""
    st_token()
    contact = fixture("servicetitan", "location_contact__phone")
    contacts = [
        {**contact, "id": 170000201, "locationId": 100000001},
        {**contact, "id": 170000202, "locationId": "not-a-number"},
        {**contact, "id": 170000203, "locationId": 100000003},
    ]
    responses.get(ST_BASE.format(module="crm", path="customers/contacts"), json=st_page([]))
    responses.get(ST_BASE.format(module="crm", path="locations/contacts"), json=st_page(contacts))
    location = fixture("servicetitan", "location__commercial")
    responses.get(
        ST_BASE.format(module="crm", path="locations"),
        json=st_page(
            [{**location, "id": i, "customerId": 11000000 + i % 7} for i in (100000001, 100000003)]
        ),
    )
    records = list(st().iter_records("contacts"))
    lookups = [c for c in responses.calls if urlsplit(c.request.url).path.endswith("/locations")]
    assert [query(c)["ids"] for c in lookups] == [["100000001,100000003"]]
    assert [(r.external_id, r.client_external_id) for r in records] == [
        ("location-contact:170000201", str(11000000 + 100000001 % 7)),
        ("location-contact:170000202", None),
        ("location-contact:170000203", str(11000000 + 100000003 % 7)),
    ]


def query_of(request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


@responses.activate
def test_fetch_record_round_trips_the_kind_prefix():
    st_token()
    project = fixture("servicetitan", "project__completed")
    shift = fixture("servicetitan", "technician_shift__on_call")
    location = fixture("servicetitan", "location__commercial")
    responses.get(ST_BASE.format(module="jpm", path="projects/180000012"), json=project)
    responses.get(ST_BASE.format(module="dispatch", path="technician-shifts/9500234"), json=shift)
    responses.get(ST_BASE.format(module="crm", path=f"locations/{location['id']}"), json=location)
    not_found = {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.4",
        "title": "Zone not found",
        "status": 404,
        "traceId": "00-1-2-00",
        "errors": {},
        "data": {},
    }
    responses.get(ST_BASE.format(module="dispatch", path="zones/1"), status=404, json=not_found)
    provider = st()
    record = provider.map_record("projects", provider.fetch_record("projects", "project:180000012"))
    assert record.external_id == "project:180000012"
    assert provider.fetch_record("technician_shifts", "technician_shift:9500234") == shift
    assert provider.fetch_record("locations", str(location["id"])) == location
    assert provider.fetch_record("zones", "zone:1") is None
    with pytest.raises(ValueError, match="project:<id>"):
        provider.fetch_record("projects", "180000012")  # a bare id is some other record's
    with pytest.raises(ValueError, match="project:<id>"):
        provider.fetch_record("projects", "zone:1")
    for entity, external_id in (
        ("tag_types", "tag_type:9308"),
        ("cancel_reasons", "cancel_reason:9101"),
        ("hold_reasons", "hold_reason:9205"),
        ("contacts", "150000040"),
        ("contacts", "location-contact:170000002"),
    ):
        with pytest.raises(ValueError, match="neither a GET by id nor"):
            provider.fetch_record(entity, external_id)
    assert len([c for c in responses.calls if c.request.url.startswith(ST_API)]) == 4


# --- the live sandbox -----------------------------------------------------------------------

SEEDED_OBJECTS = {
    "locations": ("locations",),
    "contacts": ("contacts", "location-contacts"),
    "business_units": ("business-units",),
    "job_types": ("job-types",),
    "tag_types": ("tag-types",),
    "zones": ("zones",),
    "cancel_reasons": ("job-cancel-reasons",),
    "hold_reasons": ("job-hold-reasons",),
    "projects": ("projects",),
    "technician_shifts": ("technician-shifts",),
}


def test_every_entity_from_the_live_sandbox_matches_the_spec(live):  # noqa: F811
    server, seeded = live
    counts = seeded["servicetitan"]
    _control(server, "POST", "reset")
    # Pages of 7 make ~150 calls in a few seconds; this helper's provider has its own rate
    # limiter off (st()), so the sandbox's 60/s limit is lifted rather than retried.
    _control(server, "POST", "config", {"enforce_rate_limits": False})
    provider = st(
        base_url_override=server.url,
        credentials=accounts.servicetitan_credentials(),
        config={"page_size": 7},
    )
    exchanges = _record_exchanges(provider)
    read = {entity: list(provider.iter_records(entity)) for entity in OURS}

    for entity, objects in SEEDED_OBJECTS.items():
        expected = sum(counts[o] for o in objects)
        # Job types keep the default `active` filter: all seeded job types are active.
        assert len(read[entity]) == expected > 0, entity
        assert len({r.external_id for r in read[entity]}) == expected, entity
    kinds = {e: {r.kind for r in read[e]} for e in OURS if e in refs.REFERENCE_KINDS}
    # Teams (SPEC GAP: no spec file to check them against) are read in test_dispatch_teams.py.
    assert kinds == {e: {k} for e, k in refs.REFERENCE_KINDS.items() if e != "teams"}
    # Deactivated references come through (active=Any) as deleted rows.
    for entity in ("tag_types", "cancel_reasons", "hold_reasons", "zones"):
        assert any(r.deleted and not r.is_active for r in read[entity]), entity
    contacts = read["contacts"]
    by_location = [c for c in contacts if c.external_id.startswith("location-contact:")]
    assert len(by_location) == counts["location-contacts"]
    assert all(c.client_external_id for c in contacts)
    locations = {r.external_id: r for r in read["locations"]}
    for contact in by_location:
        location = locations[str(contact.raw["locationId"])]
        assert contact.client_external_id == location.client_external_id
    staff = {str(r["id"]) for p in provider.pages("staff") for r in p}
    assert {r.parent_external_id for r in read["technician_shifts"]} <= staff

    # Incremental reads are inclusive where the list takes modifiedOnOrAfter.
    for entity in ("locations", "contacts", "business_units", "projects"):
        stamps = sorted({r.remote_updated_at for r in read[entity]})
        since = stamps[len(stamps) // 2]
        changed = list(provider.iter_records(entity, updated_since=since))
        assert {r.external_id for r in changed} == {
            r.external_id for r in read[entity] if r.remote_updated_at >= since
        }, entity
    # Lists without the filter are read whole.
    assert len(list(provider.iter_records("zones", updated_since=datetime.now(UTC)))) == len(
        read["zones"]
    )

    for entity in ("locations", "business_units", "job_types", "zones", "projects"):
        for record in (read[entity][0], read[entity][-1]):
            fetched = provider.fetch_record(entity, record.external_id)
            assert provider.map_record(entity, fetched).external_id == record.external_id
            assert fetched == record.raw, entity
        prefix = provider.resources[entity][0].id_prefix
        assert provider.fetch_record(entity, f"{prefix}1") is None
    shift = read["technician_shifts"][0]
    assert provider.fetch_record("technician_shifts", shift.external_id) == shift.raw

    specs = {
        module: OpenAPI.from_dict(
            yaml.safe_load(
                _spec_file(SPECS / "servicetitan" / ST_MODULE_SPECS[module]).read_text()
            ),
            config=Config(spec_validator_cls=None),
        )
        for module in ("crm", "jpm", "settings", "dispatch")
    }
    api = [r for r in exchanges if urlsplit(r.url).path.startswith("/servicetitan/")]
    assert {r.status_code for r in api} == {200, 404}
    paths = {urlsplit(r.url).path.split("/v2/tenant/")[1].split("/", 1)[1] for r in api}
    assert {"customers/contacts", "locations/contacts", "projects", "zones"} <= paths
    for response in api:
        module = urlsplit(response.url).path.split("/")[2]
        _check_against_spec(specs[module], response, "https://api.servicetitan.io", "/servicetitan")
