"""The seeded entity mix: determinism, referential consistency, money, dates, soft deletes.

One database of 400 clients per provider is seeded for the module and read back through the
store (and the providers' renderers, where the API shape matters).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from integrations.sandbox import accounts
from integrations.sandbox.seed import CLIENTS_ONLY, Mix, seed
from integrations.sandbox.servicem8 import NO_DATE, edit_date_formatter
from integrations.sandbox.store import Collection, Record, Store, to_us

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SM8_ACCOUNT = accounts.SERVICEM8_ACCOUNT.uuid
TENANT = accounts.SERVICETITAN_TENANT.tenant_id
SM8_OBJECTS = (
    "company companycontact staff job jobmaterial jobactivity attachment material category taxrate "
    "jobcontact note jobmaterialbundle"
).split()
ST_OBJECTS = (
    "customers locations contacts jobs appointments appointment-assignments estimates "
    "technicians employees "
    "business-units job-types categories services materials equipment"
).split()
# Issue #5 accounting, discounts and fees, inventory (seed_servicetitan_ledger).
ST_OBJECTS += (
    "discounts-and-fees invoices payments vendors warehouses purchase-orders adjustments"
).split()
# Issue #5 CRM extras and references (seed_servicetitan: _Maker extras, _references).
ST_OBJECTS += (
    "location-contacts projects job-cancel-reasons job-hold-reasons tag-types zones "
    "technician-shifts"
).split()
ST_OBJECTS += ["teams"]  # SPEC GAP: documented dispatch teams
MONEY = re.compile(r"^\d+\.\d{2}$")
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _all(store: Store, provider: str, obj: str) -> list[Record]:
    account = SM8_ACCOUNT if provider == "servicem8" else TENANT
    return list(store.iter_keyset(Collection(provider, account, obj)))


class Seeded:
    """Every seeded record, by provider and object, as {id: (record, data)}."""

    def __init__(self, store: Store) -> None:
        self.records: dict[str, dict[str, dict[Any, Record]]] = {}
        self.data: dict[str, dict[str, dict[Any, dict[str, Any]]]] = {}
        for provider, objects in (("servicem8", SM8_OBJECTS), ("servicetitan", ST_OBJECTS)):
            self.records[provider] = {}
            self.data[provider] = {}
            for obj in objects:
                rows = _all(store, provider, obj)
                self.records[provider][obj] = {r.id: r for r in rows}
                self.data[provider][obj] = {r.id: r.data for r in rows}

    def sm8(self, obj: str) -> dict[Any, dict[str, Any]]:
        return self.data["servicem8"][obj]

    def st(self, obj: str) -> dict[Any, dict[str, Any]]:
        return self.data["servicetitan"][obj]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[dict[str, Any], Seeded]:
    db = tmp_path_factory.mktemp("entities") / "seed.sqlite3"
    result = seed(db, records=400, now=NOW)
    store = Store(db)
    try:
        return result, Seeded(store)
    finally:
        store.close()


# --- counts and determinism --------------------------------------------------------------------


def test_counts_scale_with_clients_and_catalogues_are_fixed(seeded):
    result, s = seeded
    sm8, st = result["servicem8"], result["servicetitan"]
    assert set(sm8) == set(SM8_OBJECTS) and set(st) == set(ST_OBJECTS)
    for provider, objects in (("servicem8", SM8_OBJECTS), ("servicetitan", ST_OBJECTS)):
        for obj in objects:
            assert len(s.data[provider][obj]) == result[provider][obj], (provider, obj)
    assert sm8["company"] == st["customers"] == st["locations"] == 400
    assert 1.4 * 400 <= sm8["companycontact"] <= 1.6 * 400
    assert 1.8 * 400 <= sm8["job"] <= 2.2 * 400
    assert 3.6 <= sm8["jobmaterial"] / sm8["job"] <= 4.4  # 2–6 per job
    assert 1.8 * 400 <= st["jobs"] <= 2.3 * 400 and st["appointments"] == st["jobs"]
    assert 0.4 * 400 <= st["estimates"] <= 0.6 * 400
    assert 0.1 * 400 <= st["location-contacts"] <= 0.35 * 400  # most commercial sites
    assert 0.08 * 400 <= st["projects"] <= 0.22 * 400
    assert (st["job-cancel-reasons"], st["job-hold-reasons"], st["tag-types"]) == (6, 5, 8)
    assert st["zones"] == 5 and 100 <= st["technician-shifts"] <= 250
    assert st["teams"] == 5
    assert 10 <= sm8["staff"] <= 25 and 10 <= st["technicians"] <= 25
    assert 50 <= sm8["material"] <= 200 and 1 <= sm8["taxrate"] <= 3
    assert 0.15 * sm8["job"] <= sm8["jobcontact"] <= 0.4 * sm8["job"]
    assert 0.9 * sm8["job"] <= sm8["note"] <= 1.3 * sm8["job"]  # 0–2 per job, some on clients
    assert 0.05 * sm8["job"] <= sm8["jobmaterialbundle"] <= 0.2 * sm8["job"]
    quotes = sum(1 for j in s.sm8("job").values() if j["status"] == "Quote")
    assert 0.28 <= quotes / sm8["job"] <= 0.39  # about one in three


def _digest(db: Path) -> str:
    store = Store(db)
    try:
        digest = hashlib.sha256()
        for provider, objects in (("servicem8", SM8_OBJECTS), ("servicetitan", ST_OBJECTS)):
            for obj in objects:
                for record in _all(store, provider, obj):
                    digest.update(repr(tuple(record)).encode())
        return digest.hexdigest()
    finally:
        store.close()


def test_every_object_is_deterministic_and_concerns_are_independent(tmp_path):
    seed(tmp_path / "a.sqlite3", records=60, seed=7, now=NOW)
    seed(tmp_path / "b.sqlite3", records=60, seed=7, now=NOW)
    seed(tmp_path / "c.sqlite3", records=60, seed=8, now=NOW)
    assert _digest(tmp_path / "a.sqlite3") == _digest(tmp_path / "b.sqlite3")
    assert _digest(tmp_path / "a.sqlite3") != _digest(tmp_path / "c.sqlite3")
    # Changing the mix changes neither the clients nor the catalogues.
    seed(tmp_path / "d.sqlite3", records=60, seed=7, now=NOW, mix=CLIENTS_ONLY)
    full, lean = Store(tmp_path / "a.sqlite3"), Store(tmp_path / "d.sqlite3")
    try:
        for provider, obj in (
            ("servicem8", "company"),
            ("servicem8", "material"),
            ("servicetitan", "customers"),
            ("servicetitan", "services"),
        ):
            assert _all(full, provider, obj) == _all(lean, provider, obj)
        for provider, obj in (("servicem8", "job"), ("servicetitan", "jobs")):
            assert _all(lean, provider, obj) == []
    finally:
        full.close()
        lean.close()


def test_ratios_are_configurable(tmp_path):
    result = seed(
        tmp_path / "m.sqlite3",
        records=200,
        now=NOW,
        mix=Mix(contacts_per_client=1, jobs_per_client=0.5, estimates_per_client=0),
    )
    assert result["servicem8"]["companycontact"] == result["servicetitan"]["contacts"] == 200
    assert 70 <= result["servicem8"]["job"] <= 130
    assert result["servicetitan"]["estimates"] == 0
    with pytest.raises(ValueError, match="jobs_per_client"):
        Mix(jobs_per_client=-1)


# --- referential consistency -------------------------------------------------------------------


def test_servicem8_references_resolve(seeded):
    _, s = seeded
    companies, staff, jobs = s.sm8("company"), s.sm8("staff"), s.sm8("job")
    materials, categories, taxrates = s.sm8("material"), s.sm8("category"), s.sm8("taxrate")
    for contact in s.sm8("companycontact").values():
        assert contact["company_uuid"] in companies
    for company in companies.values():
        assert company["tax_rate_uuid"] in taxrates
        assert company["parent_company_uuid"] in ("", *companies)
    for job in jobs.values():
        assert job["company_uuid"] in companies
        assert job["category_uuid"] in categories
        assert job["created_by_staff_uuid"] in staff
        if job["status"] == "Completed":
            assert job["completion_actioned_by_uuid"] in staff
        company = companies[job["company_uuid"]]
        assert job["job_address"] == company["address"]
        assert job["geo_city"] == company["address_city"]
    for line in s.sm8("jobmaterial").values():
        assert line["job_uuid"] in jobs
        assert line["material_uuid"] in materials
        assert line["tax_rate_uuid"] in taxrates
        assert line["name"] == materials[line["material_uuid"]]["name"]
    for visit in s.sm8("jobactivity").values():
        assert jobs[visit["job_uuid"]]["status"] != "Quote"
        assert staff[visit["staff_uuid"]]["hide_from_schedule"] == 0  # field staff
        assert visit["material_uuid"] in materials
        assert visit["edit_by_staff_uuid"] in staff
    for member in staff.values():
        assert member["labour_material_uuid"] in materials
    for material in materials.values():
        assert material["tax_rate_uuid"] in taxrates
    contacts = s.sm8("companycontact").values()
    primaries = Counter(c["company_uuid"] for c in contacts if c["is_primary_contact"] == "1")
    assert set(primaries.values()) == {1}


def test_servicetitan_references_resolve(seeded):
    _, s = seeded
    customers, locations, jobs = s.st("customers"), s.st("locations"), s.st("jobs")
    appointments, technicians = s.st("appointments"), s.st("technicians")
    employees, units, job_types = s.st("employees"), s.st("business-units"), s.st("job-types")
    for customer in customers.values():
        assert customer["createdById"] in employees
        assert customer["mergedToId"] in (None, *customers)
    assert {loc["customerId"] for loc in locations.values()} == set(customers)
    for contact in s.st("contacts").values():
        assert contact["customerId"] in customers
    for job_id, job in jobs.items():
        assert job["customerId"] in customers
        assert locations[job["locationId"]]["customerId"] == job["customerId"]
        assert job["businessUnitId"] in units and job["jobTypeId"] in job_types
        assert job["createdById"] in employees
        assert job["jobNumber"] == str(job_id)
        appointment = appointments[job["firstAppointmentId"]]
        assert job["lastAppointmentId"] == job["firstAppointmentId"]
        assert appointment["jobId"] == job_id
        if job["completedOn"]:
            assert job["completedOn"] >= appointment["end"] >= appointment["start"]
    assert {a["jobId"] for a in appointments.values()} == set(jobs)
    assigned: dict[int, list[int]] = {}
    for assignment in s.st("appointment-assignments").values():
        appointment = appointments[assignment["appointmentId"]]
        assert assignment["jobId"] == appointment["jobId"]
        assert appointment["status"] != "Canceled"
        technician = technicians[assignment["technicianId"]]
        assert assignment["technicianName"] == technician["name"]
        assert assignment["assignedById"] in employees
        assert assignment["assignedOn"] <= appointment["start"]
        assigned.setdefault(assignment["appointmentId"], []).append(assignment["technicianId"])
    live = {i for i, a in appointments.items() if a["status"] != "Canceled"}
    assert set(assigned) == live
    assert all(len(set(techs)) == len(techs) <= 2 for techs in assigned.values())
    skus = {
        "Service": s.st("services"),
        "Material": s.st("materials"),
        "Equipment": s.st("equipment"),
    }
    for estimate in s.st("estimates").values():
        job = jobs[estimate["jobId"]]  # and through it the customer and location
        assert job["customerId"] in customers and job["locationId"] in locations
        assert estimate["jobNumber"] == job["jobNumber"]
        if estimate["status"]["name"] == "Sold":
            assert estimate["soldBy"] in technicians
            assert job["soldById"] == estimate["soldBy"]
            assert job["createdOn"] <= estimate["soldOn"]
        else:
            assert estimate["soldBy"] is None and estimate["soldOn"] is None
        for item in estimate["items"]:
            assert item["sku"]["id"] in skus[item["sku"]["type"]]
    for tech in technicians.values():
        assert tech["businessUnitId"] in units
    categories = s.st("categories")
    for cat_id, category in categories.items():
        assert category["parentId"] in (None, *categories)
        children = {c for c, d in categories.items() if d["parentId"] == cat_id}
        assert {sub["id"] for sub in category["subcategories"]} == children
    for material in (*s.st("materials").values(), *s.st("equipment").values()):
        assert set(material["categories"]) <= set(categories)
    for service in s.st("services").values():
        assert {c["id"] for c in service["categories"]} <= set(categories)
        assert {m["skuId"] for m in service["serviceMaterials"]} <= set(s.st("materials"))


# --- money, dates, soft deletes ----------------------------------------------------------------


def test_servicem8_money_is_2_decimal_strings_and_totals_add_up(seeded):
    _, s = seeded
    rates = {uid: float(t["amount"]) for uid, t in s.sm8("taxrate").items()}
    expected: Counter[str] = Counter()
    lines = s.records["servicem8"]["jobmaterial"]
    for line_id, line in s.sm8("jobmaterial").items():
        for field in ("price", "displayed_amount", "cost", "displayed_cost"):
            assert MONEY.match(line[field]), (field, line[field])
        qty = float(line["quantity"])
        assert qty > 0 and line["sort_order"].isdigit()
        rate = rates[line["tax_rate_uuid"]]
        if line["displayed_amount_is_tax_inclusive"] == "1":
            shown = round(float(line["price"]) * (100 + rate))
            assert abs(shown - round(float(line["displayed_amount"]) * 100)) <= 1
        else:
            assert line["displayed_amount"] == line["price"]
        if lines[line_id].active:
            price_c = round(float(line["price"]) * 100)
            expected[line["job_uuid"]] += round(qty * price_c * (100 + rate) / 100)
    for job_id, job in s.sm8("job").items():
        assert MONEY.match(job["total_invoice_amount"])
        assert round(float(job["total_invoice_amount"]) * 100) == expected[job_id]
    for material in s.sm8("material").values():
        assert MONEY.match(material["price"]) and MONEY.match(material["cost"])
        assert float(material["cost"]) < float(material["price"])


def _is_cents(value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and round(value, 2) == value


def test_servicetitan_money_is_2_decimal_numbers_and_totals_add_up(seeded):
    _, s = seeded
    for estimate in s.st("estimates").values():
        assert 2 <= len(estimate["items"]) <= 6
        for item in estimate["items"]:
            for field in ("qty", "unitRate", "total"):
                assert _is_cents(item[field]), (field, item[field])
            assert item["total"] == round(item["qty"] * item["unitRate"], 2)
    for obj in ("services", "materials", "equipment"):
        for sku in s.st(obj).values():
            for field in ("price", "memberPrice", "addOnPrice", "addOnMemberPrice"):
                assert _is_cents(sku[field]) and sku[field] > 0
    assert all(_is_cents(c["balance"]) for c in s.st("customers").values())


def test_servicem8_dates_precede_the_edit_date(seeded):
    _, s = seeded
    fmt = edit_date_formatter(accounts.SERVICEM8_ACCOUNT.timezone)
    date_fields = [
        "quote_date",
        "quote_sent_stamp",
        "work_order_date",
        "completion_date",
        "unsuccessful_date",
        "invoice_sent_stamp",
        "payment_received_stamp",
        "payment_processed_stamp",
    ]
    for job_id, record in s.records["servicem8"]["job"].items():
        job = s.sm8("job")[job_id]
        edited = fmt(record.modified_us)
        for field in date_fields:
            value = job[field]
            assert value == NO_DATE or (LOCAL_TIME.match(value) and value <= edited), field
        status = job["status"]
        if status == "Quote":
            assert job["quote_date"] != NO_DATE and job["work_order_date"] == NO_DATE
        elif status in ("Work Order", "Completed"):
            assert job["work_order_date"] != NO_DATE
        else:
            assert job["unsuccessful_date"] != NO_DATE
            # A turned-down quote, or a work order that fell through (possibly quoted first).
            assert (job["quote_date"], job["work_order_date"]) != (NO_DATE, NO_DATE)
        assert (job["completion_date"] != NO_DATE) == (status == "Completed")
        assert (job["unsuccessful_date"] != NO_DATE) == (status == "Unsuccessful")
        if job["quote_sent"]:
            assert job["quote_date"] <= job["quote_sent_stamp"]
    visits: dict[str, list[dict[str, Any]]] = {}
    for visit in s.sm8("jobactivity").values():
        assert visit["start_date"] < visit["end_date"]
        assert visit["activity_was_scheduled"] == "1" and visit["activity_was_recorded"] == "0"
        visits.setdefault(visit["job_uuid"], []).append(visit)
    for job_id, job_visits in visits.items():
        job = s.sm8("job")[job_id]
        assert job["job_is_scheduled_until_stamp"] == max(v["end_date"] for v in job_visits)
        if job["status"] == "Completed":
            assert job["completion_date"] >= job["job_is_scheduled_until_stamp"]


def test_soft_deleted_share_and_times(seeded):
    _, s = seeded
    now = to_us(NOW)
    for provider, obj in (
        ("servicem8", "companycontact"),
        ("servicem8", "job"),
        ("servicem8", "jobmaterial"),
        ("servicem8", "jobactivity"),
        ("servicetitan", "locations"),
        ("servicetitan", "estimates"),
    ):
        records = list(s.records[provider][obj].values())
        share = sum(1 for r in records if not r.active) / len(records)
        assert 0.005 <= share <= 0.045, (obj, share)
        assert all(r.modified_us <= now for r in records)
    # Objects whose schema has no ``active`` are never deactivated.
    for obj in ("jobs", "appointments", "contacts"):
        assert all(r.active for r in s.records["servicetitan"][obj].values())
    for obj in ("jobs", "appointments", "locations"):
        for record in s.records["servicetitan"][obj].values():
            assert to_us(datetime.fromisoformat(record.data["createdOn"])) <= record.modified_us


def test_templated_records_are_exact_json(seeded):
    """Records built from string templates parse back and carry the same keys as the ones
    built from dicts (one key set per object)."""
    _, s = seeded
    for provider in ("servicem8", "servicetitan"):
        for obj, records in s.records[provider].items():
            for record in list(records.values())[:200]:
                assert json.loads(record.data_json) == record.data
            shapes = {tuple(d) for d in s.data[provider][obj].values()}
            # Unset uuid references are left out (see servicem8.py's module docstring).
            optional = {"completion_actioned_by_uuid", "action_completed_by_staff_uuid"}
            assert len({tuple(k for k in shape if k not in optional) for shape in shapes}) == 1, (
                provider,
                obj,
            )


def test_worker_processes_produce_the_same_database(tmp_path):
    """The parallel path (generation in two worker processes) is used for big seeds only;
    forced here on a small one, it must write exactly what the in-process path writes."""
    serial = seed(tmp_path / "serial.sqlite3", records=150, seed=5, now=NOW, workers=False)
    parallel = seed(tmp_path / "parallel.sqlite3", records=150, seed=5, now=NOW, workers=True)
    for provider in ("servicem8", "servicetitan"):
        assert list(serial[provider].items()) == list(parallel[provider].items())
    assert _digest(tmp_path / "serial.sqlite3") == _digest(tmp_path / "parallel.sqlite3")


def test_seeded_records_carry_every_default_field(seeded):
    """Records built from templates have the same fields as the objects' defaults (which the
    control API uses to create records); extras are the references the defaults leave out."""
    from integrations.sandbox.servicem8 import OBJECTS
    from integrations.sandbox.servicetitan_resources import RESOURCES_BY_OBJECT

    _, s = seeded
    for obj in SM8_OBJECTS:
        defaults = set(OBJECTS[obj].defaults)
        for data in s.sm8(obj).values():
            extras = set(data) - defaults
            assert defaults <= set(data), (obj, defaults - set(data))
            assert all(k.endswith("_uuid") or k == "email" for k in extras), (obj, extras)
    for obj in ST_OBJECTS:
        defaults = set(RESOURCES_BY_OBJECT[obj].defaults())
        for data in s.st(obj).values():
            assert defaults <= set(data), (obj, defaults - set(data))


def test_servicem8_job_contacts_notes_and_bundles_resolve(seeded):
    """Per-job people, diary notes and bundle lines point at seeded jobs (notes also at
    clients), are dated between their job's start and its edit, and use the spec's values."""
    _, s = seeded
    companies, jobs, staff = s.sm8("company"), s.sm8("job"), s.sm8("staff")
    job_edits = {i: r.modified_us for i, r in s.records["servicem8"]["job"].items()}
    for uid, contact in s.sm8("jobcontact").items():
        assert contact["job_uuid"] in jobs
        assert contact["type"] in ("JOB", "BILLING", "Property Manager")
        assert "@" in contact["email"] and contact["first"] and contact["last"]
        assert (
            s.records["servicem8"]["jobcontact"][uid].modified_us <= job_edits[contact["job_uuid"]]
        )
    owners = Counter()
    for uid, note in s.sm8("note").items():
        owner = note["related_object"]
        owners[owner] += 1
        assert note["related_object_uuid"] in (jobs if owner == "job" else companies)
        assert note["note"] and note["edit_by_staff_uuid"] in staff
        assert note.get("action_completed_by_staff_uuid", "") in ("", *staff)
        edited = edit_date_formatter(accounts.SERVICEM8_ACCOUNT.timezone)(
            s.records["servicem8"]["note"][uid].modified_us
        )
        assert LOCAL_TIME.match(note["create_date"]) and note["create_date"] <= edited
    assert set(owners) == {"job", "company"}
    for bundle in s.sm8("jobmaterialbundle").values():
        assert bundle["job_uuid"] in jobs
        assert bundle["name"] and bundle["item_number"].startswith("KIT-")
        assert int(bundle["quantity"]) > 0 and isinstance(bundle["sort_order"], int)


def test_servicetitan_invoices_payments_and_inventory_are_consistent(seeded):
    """Issue #5: an invoice per completed job, for the job's customer, whose money adds up
    (items → subTotal, + salesTax → total, − its payments' splits → balance); payments apply
    to seeded invoices of their customer; purchase orders and adjustments name seeded vendors
    and warehouses; discounts and fees name seeded categories."""
    _, s = seeded
    jobs, invoices, payments = s.st("jobs"), s.st("invoices"), s.st("payments")
    completed = {i for i, j in jobs.items() if j["jobStatus"] == "Completed"}
    assert {inv["job"]["id"] for inv in invoices.values()} == completed
    applied: Counter = Counter()
    for payment in payments.values():
        splits = payment["appliedTo"]
        assert 1 <= len(splits) <= 2 and MONEY.match(payment["total"])
        assert sum(int(x["appliedAmount"].replace(".", "")) for x in splits) == int(
            payment["total"].replace(".", "")
        )
        for split in splits:
            invoice = invoices[split["appliedTo"]]
            assert invoice["customer"]["id"] == payment["customer"]["id"]
            applied[split["appliedTo"]] += int(split["appliedAmount"].replace(".", ""))
    assert any(len(p["appliedTo"]) == 2 for p in payments.values())
    cents = lambda text: int(text.replace(".", ""))  # noqa: E731 - "12.34" -> 1234
    for invoice_id, invoice in invoices.items():
        job = jobs[invoice["job"]["id"]]
        assert invoice["customer"]["id"] == job["customerId"]
        assert sum(cents(i["total"]) for i in invoice["items"]) == cents(invoice["subTotal"])
        assert cents(invoice["subTotal"]) + cents(invoice["salesTax"]) == cents(invoice["total"])
        assert cents(invoice["total"]) - applied[invoice_id] == cents(invoice["balance"])
        assert invoice["invoiceDate"] <= invoice["dueDate"]
    assert any(cents(i["balance"]) > 0 for i in invoices.values())
    vendors, warehouses = s.st("vendors"), s.st("warehouses")
    for order in s.st("purchase-orders").values():
        assert order["vendorId"] in vendors and order["inventoryLocationId"] in warehouses
    for adjustment in s.st("adjustments").values():
        assert adjustment["inventoryLocationId"] in warehouses
    categories = s.st("categories")
    for fee in s.st("discounts-and-fees").values():
        assert set(fee["categories"]) <= set(categories)
        assert fee["type"] in {"Discount", "Fee"} and fee["amountType"] in {"Percentage", "Fixed"}
