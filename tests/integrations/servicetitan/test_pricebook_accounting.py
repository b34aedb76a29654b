"""ServiceTitan pricebook, accounting and inventory reads (issue #5): fixtures that are complete
records of the official schemas (inventory: of the documented INVENTORY_SCHEMAS, there being no
spec file), mapping (the category tree, money, item kinds, payment splits, reference ids),
the query each entity sends, targeted re-fetches, and a run against a live sandbox whose
requests and responses are checked against the specs."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import yaml
from openapi_core import Config, OpenAPI
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from integrations import registry
from integrations.auth import MemoryTokenStore
from integrations.base import (
    Capability,
    ExternalInvoice,
    ExternalInvoiceItem,
    ExternalPayment,
    ExternalPricebookCategory,
    ExternalPricebookItem,
    ExternalReference,
    ProviderContext,
)
from integrations.http import RetryPolicy
from integrations.providers.servicetitan import mapping_accounting, mapping_pricebook
from integrations.sandbox import accounts
from integrations.sandbox.seed import seed
from integrations.sandbox.server import SandboxServer
from integrations.sandbox.servicetitan_resources import (
    INVENTORY_SCHEMAS,
    RESOURCES,
    UNSPECIFIED_MODULES,
)
from tests.integrations.provider_specs import SPECS, spec_path
from tests.integrations.sandbox.test_spec_conformance import _as_spec
from tests.integrations.spec_query import assert_query_declared

HERE = Path(__file__).resolve().parent
ST_API = "https://api.servicetitan.io"
ST_TOKEN = "https://auth.servicetitan.io/connect/token"
ST_BASE = f"{ST_API}/{{module}}/v2/tenant/42/{{path}}"
MODULE_SPECS = {
    "pricebook": "tenant-pricebook-v2.yml",
    "accounting": "tenant-accounting-v2.yml",
}
OUR_ENTITIES = (
    "pricebook_categories",
    "pricebook_materials",
    "pricebook_services",
    "pricebook_equipment",
    "pricebook_discounts_fees",
    "invoices",
    "payments",
    "inventory_vendors",
    "inventory_warehouses",
    "inventory_purchase_orders",
    "inventory_adjustments",
)
# entity -> (URL module, resource, takes active, takes modifiedOnOrAfter)
QUERIES = {
    "pricebook_categories": ("pricebook", "categories", False, False),
    "pricebook_materials": ("pricebook", "materials", True, True),
    "pricebook_services": ("pricebook", "services", True, True),
    "pricebook_equipment": ("pricebook", "equipment", True, True),
    "pricebook_discounts_fees": ("pricebook", "discounts-and-fees", True, True),
    "invoices": ("accounting", "invoices", False, True),
    "payments": ("accounting", "payments", False, True),
    "inventory_vendors": ("inventory", "vendors", True, True),
    "inventory_warehouses": ("inventory", "warehouses", True, True),
    "inventory_purchase_orders": ("inventory", "purchase-orders", False, True),
    "inventory_adjustments": ("inventory", "adjustments", True, True),
}
# fixture -> (URL module, schema)
FIXTURES = {
    "category__heating_tree": ("pricebook", "Pricebook.V2.CategoryResponse"),
    "material__inventory_part": ("pricebook", "Pricebook.V2.MaterialResponse"),
    "service__with_category_objects": ("pricebook", "Pricebook.V2.ServiceResponse"),
    "equipment__condenser": ("pricebook", "Pricebook.V2.EquipmentResponse"),
    "discount_fee__percentage_inactive": ("pricebook", "Pricebook.V2.DiscountAndFeesResponse"),
    "invoice__partially_paid": ("accounting", "Accounting.V2.InvoiceResponse"),
    "payment__split_two_invoices": ("accounting", "Accounting.V2.DetailedPaymentResponse"),
    "vendor__active": ("inventory", "Inventory.V2.VendorResponse"),
    "warehouse__retired": ("inventory", "Inventory.V2.WarehouseResponse"),
    "purchase_order__received": ("inventory", "Inventory.V2.PurchaseOrderResponse"),
    "adjustment__voided": ("inventory", "Inventory.V2.InventoryAdjustmentResponse"),
}

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


def fixture(name: str) -> dict:
    return json.loads((HERE / "fixtures" / f"{name}.json").read_text())


def st(**kwargs):
    context = ProviderContext(
        integration_id=2,
        credentials=kwargs.pop(
            "credentials",
            {"tenant_id": "42", "client_id": "cid", "client_secret": "cs", "app_key": "ak1"},
        ),
        token_store=MemoryTokenStore(),
        rate_limit_enabled=False,
        retry=RetryPolicy(attempts=1),
        **kwargs,
    )
    return registry.get("servicetitan")(context)


def st_page(data: list[dict], *, more: bool = False, size: int = 5000) -> dict:
    return {"page": 1, "pageSize": size, "hasMore": more, "totalCount": None, "data": data}


def st_token() -> None:
    responses.post(ST_TOKEN, json={"access_token": "st-token", "expires_in": 900})


def _spec_path(name: str) -> Path:
    return spec_path(SPECS / "servicetitan" / name)


@pytest.fixture(scope="module")
def raw_specs() -> dict[str, dict]:
    loaded = {m: yaml.safe_load(_spec_path(n).read_text()) for m, n in MODULE_SPECS.items()}
    # The documented inventory schemas stand in for the missing inventory spec (SPEC GAP).
    loaded["inventory"] = {"components": {"schemas": INVENTORY_SCHEMAS}}
    return loaded


def validator(raw_specs: dict, module: str, schema: str) -> OAS30Validator:
    root = {"$ref": f"#/components/schemas/{schema}", "components": raw_specs[module]["components"]}
    return OAS30Validator(root, format_checker=oas30_format_checker)


# --- fixtures are complete schema records ---------------------------------------------------


@pytest.mark.parametrize(("name", "where"), sorted(FIXTURES.items()))
def test_servicetitan_issue5_fixtures_are_complete_spec_records(raw_specs, name, where):
    module, schema = where
    record = fixture(name)
    properties = raw_specs[module]["components"]["schemas"][schema]["properties"]
    assert set(properties) <= set(record), set(properties) - set(record)
    errors = list(validator(raw_specs, module, schema).iter_errors(record))
    assert not errors, errors[0].message


# --- the provider's table -------------------------------------------------------------------


def test_entities_follow_the_core_ones_categories_before_items():
    provider = registry.get("servicetitan")
    entities = provider.entities
    assert entities[-len(OUR_ENTITIES) :] == OUR_ENTITIES
    assert entities.index("quotes") < entities.index("pricebook_categories")
    assert Capability.READ_PRICEBOOK in provider.capabilities
    p = st()
    assert p.record_types("invoices") == (ExternalInvoice, ExternalInvoiceItem)
    assert p.record_types("pricebook_categories") == (ExternalPricebookCategory,)
    assert p.sweep_scope("pricebook_materials", ExternalPricebookItem) == {"kind": "material"}
    assert p.sweep_scope("pricebook_discounts_fees", ExternalPricebookItem) == {
        "kind": "discount_fee"
    }
    assert p.sweep_scope("inventory_purchase_orders", ExternalReference) == {
        "kind": "purchase_order"
    }
    assert p.sweep_scope("invoices", ExternalInvoice) == {}
    assert p.record_id("pricebook_equipment", {"id": 7}) == "equipment:7"
    assert p.record_id("inventory_adjustments", {"id": 7}) == "inventory_adjustment:7"
    assert p.record_id("invoices", {"id": 7}) == "7"


# --- mapping --------------------------------------------------------------------------------


def test_category_tree_is_flattened_once_parents_first():
    heating = fixture("category__heating_tree")
    furnace_listed = {**heating["subcategories"][0], "name": "Furnace (renamed)"}
    furnace_listed["subcategories"] = []
    # The subcategory comes first on its own, then again nested in its parent.
    flat = mapping_pricebook.flatten_categories([furnace_listed, heating])
    ids = [c["id"] for c in flat]
    assert sorted(ids) == [30001, 30011, 30012, 30091]
    assert len(ids) == len(set(ids))
    assert ids.index(30001) < ids.index(30011) < ids.index(30091)
    records = {c.external_id: c for c in map(mapping_pricebook.category_to_category, flat)}
    # Its own listing wins over the nested copy.
    assert records["30011"].name == "Furnace (renamed)"
    assert records["30001"].parent_external_id is None
    assert records["30011"].parent_external_id == "30001"
    # Nested only, without parentId: the parent is the one it is nested in.
    controls = records["30091"]
    assert controls.parent_external_id == "30011"
    assert (controls.is_active, controls.deleted) == (False, True)
    assert (records["30012"].kind, records["30012"].sort_order) == ("Services", 2)
    assert records["30001"].remote_updated_at is None  # CategoryResponse has no modifiedOn


def test_item_kinds_prices_and_categories():
    material = mapping_pricebook.material_to_item(fixture("material__inventory_part"))
    raw = fixture("material__inventory_part")
    assert material.external_id == f"material:{raw['id']}"
    assert material.kind == "material" and material.code == raw["code"]
    assert material.name == raw["displayName"]
    assert material.unit_price == Decimal(str(raw["price"]))
    assert material.cost == Decimal(str(raw["cost"]))
    assert material.unit == raw["unitOfMeasure"]
    assert material.category_external_ids == tuple(str(c) for c in raw["categories"])
    assert material.is_taxable is True and material.is_active is True

    service_raw = fixture("service__with_category_objects")
    service = mapping_pricebook.service_to_item(service_raw)
    assert service.external_id == f"service:{service_raw['id']}"
    assert service.cost is None and service.unit == ""
    # Services carry {id, name, active} objects, the others bare ids.
    assert service.category_external_ids == tuple(str(c["id"]) for c in service_raw["categories"])
    assert service.is_taxable is False

    equipment = mapping_pricebook.equipment_to_item(fixture("equipment__condenser"))
    assert equipment.kind == "equipment" and equipment.external_id.startswith("equipment:")

    fee_raw = fixture("discount_fee__percentage_inactive")
    discount = mapping_pricebook.discount_fee_to_item(fee_raw)
    assert discount.external_id == "discount_fee:70001"
    assert (discount.unit_price, discount.unit) == (Decimal("-15.0"), "%")
    assert (discount.is_active, discount.deleted) == (False, True)
    assert discount.remote_updated_at is None
    fee = mapping_pricebook.discount_fee_to_item(
        {**fee_raw, "type": "Fee", "amountType": "Fixed", "amount": 79.0, "active": True}
    )
    assert (fee.unit_price, fee.unit, fee.deleted) == (Decimal("79.0"), "Fixed", False)
    # The same provider id in two kinds gives two external ids.
    assert mapping_pricebook.item_id("material", {"id": 5}) != mapping_pricebook.item_id(
        "service", {"id": 5}
    )


def test_invoice_with_items_money_as_decimal_text():
    raw = fixture("invoice__partially_paid")
    invoice, *items = mapping_accounting.invoice_to_records(raw)
    assert isinstance(invoice, ExternalInvoice)
    assert invoice.external_id == str(raw["id"])
    assert invoice.client_external_id == str(raw["customer"]["id"])
    assert invoice.job_external_id == str(raw["job"]["id"])
    assert invoice.number == raw["referenceNumber"]
    assert invoice.subtotal == Decimal(raw["subTotal"])
    assert invoice.tax_total == Decimal(raw["salesTax"])
    assert invoice.total == Decimal(raw["total"]) == invoice.subtotal + invoice.tax_total
    assert invoice.balance == Decimal(raw["balance"])
    assert invoice.status == "partially_paid"
    assert invoice.issued_on == date.fromisoformat(raw["invoiceDate"][:10])
    assert invoice.due_on == date.fromisoformat(raw["dueDate"][:10])
    assert invoice.remote_updated_at == datetime.fromisoformat(raw["modifiedOn"])
    assert not invoice.deleted
    # Items in `order` (the fixture lists them reversed), each a Decimal from decimal text.
    assert [i.raw["order"] for i in items] == sorted(i["order"] for i in raw["items"])
    assert all(isinstance(i, ExternalInvoiceItem) for i in items)
    assert {i.invoice_external_id for i in items} == {invoice.external_id}
    first = next(i for i in raw["items"] if i["order"] == 1)
    assert items[0].quantity == Decimal(first["quantity"])
    assert items[0].unit_price == Decimal(first["price"])
    assert items[0].total == Decimal(first["total"])
    assert items[0].name == first["displayName"]
    assert sum(i.total for i in items) == invoice.subtotal


@pytest.mark.parametrize(
    ("total", "balance", "status"),
    [
        ("100.00", "0.00", "paid"),
        ("100.00", "40.00", "partially_paid"),
        ("100.00", "100.00", "unpaid"),
        ("-25.00", "-25.00", "credit"),
        ("0.00", "0.00", "zero"),
    ],
)
def test_invoice_status_table(total, balance, status):
    raw = {**fixture("invoice__partially_paid"), "total": total, "balance": balance}
    assert mapping_accounting.invoice_to_records(raw)[0].status == status


def test_invoice_without_money_or_bad_money():
    bare = {"id": 9, "items": None}
    invoice, *items = mapping_accounting.invoice_to_records(bare)
    assert (invoice.total, invoice.balance, invoice.client_external_id, items) == (
        Decimal("0"),
        Decimal("0"),
        None,
        [],
    )
    with pytest.raises(ValueError, match="not a number"):
        mapping_accounting.invoice_to_records({"id": 9, "total": "12,50"})


def test_payment_split_keeps_every_split_and_names_no_invoice():
    raw = fixture("payment__split_two_invoices")
    payment = mapping_accounting.payment_to_payment(raw)
    assert isinstance(payment, ExternalPayment)
    assert payment.invoice_external_id is None
    assert [s["appliedTo"] for s in payment.raw["appliedTo"]] == [700000016, 700000099]
    assert payment.amount == Decimal("150.00")
    assert payment.client_external_id == str(raw["customer"]["id"])
    assert payment.paid_on == date.fromisoformat(raw["date"][:10])
    assert (payment.method, payment.payment_reference) == (raw["type"], raw["referenceNumber"])
    assert payment.status == raw["syncStatus"]
    single = copy.deepcopy(raw)
    single["appliedTo"] = single["appliedTo"][:1] * 2  # two entries, one invoice
    single["referenceNumber"] = None
    one = mapping_accounting.payment_to_payment(single)
    assert one.invoice_external_id == "700000016"
    assert one.payment_reference == raw["checkNumber"]
    assert mapping_accounting.payment_to_payment({"id": 1}).invoice_external_id is None


def test_inventory_references_are_kind_prefixed_with_parents():
    vendor = mapping_accounting.vendor_to_reference(fixture("vendor__active"))
    assert (vendor.external_id, vendor.kind, vendor.name) == (
        f"vendor:{fixture('vendor__active')['id']}",
        "vendor",
        fixture("vendor__active")["name"],
    )
    warehouse = mapping_accounting.warehouse_to_reference(fixture("warehouse__retired"))
    assert (warehouse.is_active, warehouse.deleted) == (False, True)
    po_raw = fixture("purchase_order__received")
    po = mapping_accounting.purchase_order_to_reference(po_raw)
    assert po.external_id == f"purchase_order:{po_raw['id']}"
    assert po.parent_external_id == f"vendor:{po_raw['vendorId']}"
    assert (po.code, po.name) == (po_raw["number"], f"{po_raw['number']} (Received)")
    assert po.is_active and not po.deleted
    adj_raw = fixture("adjustment__voided")
    adjustment = mapping_accounting.adjustment_to_reference(adj_raw)
    assert adjustment.external_id == f"inventory_adjustment:{adj_raw['id']}"
    assert adjustment.parent_external_id == f"warehouse:{adj_raw['inventoryLocationId']}"
    assert adjustment.code == adj_raw["referenceNumber"] and adjustment.deleted


# --- what each entity asks for --------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize("entity", OUR_ENTITIES)
def test_incremental_params_per_entity(entity):
    module, path, active, modified = QUERIES[entity]
    st_token()
    responses.get(ST_BASE.format(module=module, path=path), json=st_page([]))
    list(st().iter_records(entity, updated_since=datetime(2026, 3, 1, 10, 30, tzinfo=UTC)))
    list(st().iter_records(entity))
    incremental, full = (c for c in responses.calls if c.request.url.startswith(ST_API))
    paging = {"page": ["1"], "pageSize": ["5000"]}
    activity = {"active": ["Any"]} if active else {}
    since = {"modifiedOnOrAfter": ["2026-03-01T10:30:00+00:00"]} if modified else {}
    assert parse_qs(urlsplit(incremental.request.url).query) == {**paging, **activity, **since}
    assert parse_qs(urlsplit(full.request.url).query) == {**paging, **activity}


@responses.activate
def test_categories_read_as_one_tree_page():
    st_token()
    heating = fixture("category__heating_tree")
    furnace = {**heating["subcategories"][0], "subcategories": []}
    responses.get(
        ST_BASE.format(module="pricebook", path="categories"),
        json=st_page([heating, furnace]),
    )
    pages = list(st().pages("pricebook_categories"))
    assert len(pages) == 1
    assert [c["id"] for c in pages[0]] == [30001, 30011, 30012, 30091]
    records = list(st().iter_records("pricebook_categories"))
    assert [r.external_id for r in records] == ["30001", "30011", "30012", "30091"]


@responses.activate
def test_fetch_record_by_get_or_by_ids():
    st_token()
    material = fixture("material__inventory_part")
    invoice = fixture("invoice__partially_paid")
    vendor = fixture("vendor__active")
    responses.get(
        ST_BASE.format(module="pricebook", path=f"materials/{material['id']}"), json=material
    )
    not_found = {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.4",
        "title": "Material not found",
        "status": 404,
        "traceId": "00-1-2-00",
        "errors": {},
        "data": {},
    }
    responses.get(
        ST_BASE.format(module="pricebook", path="materials/1"), status=404, json=not_found
    )
    invoices = ST_BASE.format(module="accounting", path="invoices")
    responses.get(invoices, json=st_page([invoice]), match=[_ids(invoice["id"])])
    responses.get(invoices, json=st_page([]), match=[_ids(1)])
    vendors = ST_BASE.format(module="inventory", path="vendors")
    responses.get(vendors, json=st_page([vendor]), match=[_ids(vendor["id"], active=True)])
    provider = st()
    assert provider.fetch_record("pricebook_materials", f"material:{material['id']}") == material
    assert provider.fetch_record("pricebook_materials", "material:1") is None
    assert provider.fetch_record("invoices", str(invoice["id"])) == invoice
    assert provider.fetch_record("invoices", "1") is None
    assert provider.fetch_record("inventory_vendors", f"vendor:{vendor['id']}") == vendor
    with pytest.raises(ValueError):
        provider.fetch_record("payments", "vendor:1")


def _ids(record_id: int, *, active: bool = False):
    params = {"ids": str(record_id), "page": "1", "pageSize": "50"}
    if active:
        params["active"] = "Any"
    return responses.matchers.query_param_matcher(params)


# --- the sandbox ----------------------------------------------------------------------------


def test_inventory_resources_match_the_documented_schemas(raw_specs, tmp_path):
    """No spec file for inventory: the sandbox's table and every seeded record are checked
    against INVENTORY_SCHEMAS instead (SPEC GAP)."""
    from integrations.sandbox.app import SandboxApp
    from integrations.sandbox.store import Collection, Store

    inventory = [s for s in RESOURCES.values() if s.module in UNSPECIFIED_MODULES]
    assert {s.path for s in inventory} == {
        "vendors",
        "warehouses",
        "purchase-orders",
        "adjustments",
    }
    db = tmp_path / "inventory.sqlite3"
    seed(db, records=20)
    store = Store(db)
    try:
        api = SandboxApp(store).providers["servicetitan"]
        ours = [s for s in RESOURCES.values() if s.module in {"inventory", "accounting"}]
        ours += [RESOURCES[("pricebook", "discounts-and-fees")]]
        for spec in ours:
            schema = raw_specs[spec.module]["components"]["schemas"][spec.schema]
            properties = schema["properties"]
            assert ("active" in properties) == spec.active_field, spec.path
            assert ("modifiedOn" in properties) == spec.modified_field, spec.path
            assert set(spec.defaults()) <= set(properties), spec.path
            check = validator(raw_specs, spec.module, spec.schema)
            collection = Collection(
                "servicetitan", accounts.SERVICETITAN_TENANT.tenant_id, spec.object
            )
            records = list(store.iter_keyset(collection))
            assert records, spec.object
            for record in records:
                rendered = json.loads(api.render_record(collection, record))
                errors = list(check.iter_errors(rendered))
                assert not errors, (spec.object, errors[0].message)
    finally:
        store.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    db = tmp_path_factory.mktemp("issue5") / "sandbox.sqlite3"
    counts = seed(db, records=12, seed=11)
    with SandboxServer(db) as server:
        yield server, counts["servicetitan"]


def _control(server, method: str, path: str, payload: dict | None = None) -> dict:
    response = requests.request(method, f"{server.url}/_sandbox/{path}", json=payload, timeout=10)
    response.raise_for_status()
    return response.json()


def test_reads_every_issue5_entity_from_the_live_sandbox(live, raw_specs):
    server, counts = live
    _control(server, "POST", "reset")
    # Dozens of calls in well under a second: the 60/s limit is not what this test is about.
    _control(server, "POST", "config", {"servicetitan": {"rate_limit_per_second": 100_000}})
    provider = st(
        base_url_override=server.url,
        credentials=accounts.servicetitan_credentials(),
        config={"page_size": 7},
    )
    # A deactivation the reads must see (active=Any).
    _control(server, "DELETE", "records/servicetitan/materials/40001")
    exchanges: list[requests.Response] = []
    provider.get_client().session.hooks["response"].append(lambda r, *a, **k: exchanges.append(r))

    read = {entity: list(provider.iter_records(entity)) for entity in OUR_ENTITIES}

    assert len(read["pricebook_categories"]) == counts["categories"]
    expected = {
        "pricebook_materials": counts["materials"],
        "pricebook_services": counts["services"],
        "pricebook_equipment": counts["equipment"],
        "pricebook_discounts_fees": counts["discounts-and-fees"],
        "payments": counts["payments"],
        "inventory_vendors": counts["vendors"],
        "inventory_warehouses": counts["warehouses"],
        "inventory_purchase_orders": counts["purchase-orders"],
        "inventory_adjustments": counts["adjustments"],
    }
    for entity, count in expected.items():
        assert len(read[entity]) == count > 0, entity
        assert len({r.external_id for r in read[entity]}) == count, entity
    invoices = [r for r in read["invoices"] if isinstance(r, ExternalInvoice)]
    items = [r for r in read["invoices"] if isinstance(r, ExternalInvoiceItem)]
    assert len(invoices) == counts["invoices"] > 0
    assert len(items) == sum(len(i.raw["items"]) for i in invoices)
    for invoice in invoices:
        mine = [i for i in items if i.invoice_external_id == invoice.external_id]
        assert sum(i.total for i in mine) == invoice.subtotal
        assert invoice.total == invoice.subtotal + invoice.tax_total
    paid = {i.external_id: i.total - i.balance for i in invoices}
    applied: dict[str, Decimal] = {}
    for payment in read["payments"]:
        splits = payment.raw["appliedTo"]
        assert payment.amount == sum(Decimal(s["appliedAmount"]) for s in splits)
        assert payment.invoice_external_id == (
            str(splits[0]["appliedTo"]) if len(splits) == 1 else None
        )
        for split in splits:
            key = str(split["appliedTo"])
            applied[key] = applied.get(key, Decimal(0)) + Decimal(split["appliedAmount"])
    assert applied == {k: v for k, v in paid.items() if v}
    # Every item's categories are synced categories; the tree has roots and children.
    categories = {c.external_id: c for c in read["pricebook_categories"]}
    assert {c.parent_external_id for c in categories.values()} - {None} <= set(categories)
    assert any(c.parent_external_id is None for c in categories.values())
    for entity in ("pricebook_materials", "pricebook_services", "pricebook_equipment"):
        assert all(set(i.category_external_ids) <= set(categories) for i in read[entity])
    gone = [m for m in read["pricebook_materials"] if m.external_id == "material:40001"]
    assert [(m.deleted, m.is_active) for m in gone] == [(True, False)]
    kinds = {e: {r.kind for r in read[e]} for e in expected if e.startswith("inventory")}
    assert kinds == {
        "inventory_vendors": {"vendor"},
        "inventory_warehouses": {"warehouse"},
        "inventory_purchase_orders": {"purchase_order"},
        "inventory_adjustments": {"inventory_adjustment"},
    }
    refs = {r.external_id for e in kinds for r in read[e]}
    assert {r.parent_external_id for e in kinds for r in read[e]} - {""} <= refs

    # Incremental reads are inclusive: exactly the records changed at or after `since`.
    stamps = sorted({m.remote_updated_at for m in read["pricebook_materials"]})
    since = stamps[len(stamps) // 2]
    changed = list(provider.iter_records("pricebook_materials", updated_since=since))
    assert {r.external_id for r in changed} == {
        m.external_id for m in read["pricebook_materials"] if m.remote_updated_at >= since
    }

    for entity in OUR_ENTITIES:
        main = [r for r in read[entity] if type(r) is type(read[entity][0])]
        for record in (main[0], main[-1]):
            assert provider.fetch_record(entity, record.external_id) == record.raw, entity
        assert provider.fetch_record(entity, "1") is None, entity

    specs = {
        module: OpenAPI.from_dict(
            yaml.safe_load(_spec_path(name).read_text()), config=Config(spec_validator_cls=None)
        )
        for module, name in MODULE_SPECS.items()
    }
    api = [r for r in exchanges if urlsplit(r.url).path.startswith("/servicetitan/")]
    assert {r.status_code for r in api} == {200, 404}
    checked = set()
    for response in api:
        module = urlsplit(response.url).path.split("/")[2]
        if module in specs:
            request, spec_response = _as_spec(response, ST_API, "/servicetitan")
            specs[module].validate_request(request)
            assert_query_declared(specs[module], request)
            if response.status_code == 200:
                specs[module].validate_response(request, spec_response)
        else:
            # SPEC GAP: inventory pages are checked against the documented schemas.
            assert module == "inventory" and response.status_code == 200
            resource = urlsplit(response.url).path.split("/")[-1]
            spec = RESOURCES[("inventory", resource)]
            body = response.json()
            assert set(body) == {"page", "pageSize", "hasMore", "totalCount", "data"}
            check = validator(raw_specs, "inventory", spec.schema)
            for record in body["data"]:
                errors = list(check.iter_errors(record))
                assert not errors, errors[0].message
        checked.add(module)
    assert checked == {"pricebook", "accounting", "inventory"}
