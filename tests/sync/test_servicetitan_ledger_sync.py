"""Issue #5, ServiceTitan pricebook, accounting and inventory: a full sync of those entities,
then changes at the sandbox (an edit per kind, deactivations, a new payment split over two
invoices) and an incremental sync interrupted by an injected fault, then a retried incremental
sync: the local data equals the sandbox's record by record, the category tree (parent links),
the items' categories (M2M), invoice items, and payments' invoices included.

Runs against the sandbox over loopback with the real engine and database."""

from __future__ import annotations

from collections import defaultdict

import pytest
import requests

from integrations.base import ExternalInvoice, ExternalPayment
from integrations.exceptions import ProviderError
from integrations.sandbox import accounts
from integrations.services import provider_for
from portal.models import Invoice, Payment, PricebookCategory, PricebookItem, ReferenceRecord
from sync.engine import sync_entity
from sync.models import SyncCursor, SyncRun
from sync.writers import SINKS, model_for
from tests.sync.conftest import sandbox_control, sandbox_stats

pytestmark = pytest.mark.django_db(transaction=True)

TENANT = accounts.SERVICETITAN_TENANT.tenant_id
# The entities whose rows ours point at (invoices and payments name clients and jobs).
PARENTS = ("clients", "jobs")
OURS = (
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


def run(integration, entity: str, mode: str) -> SyncRun:
    return SyncRun.objects.get(
        pk=sync_entity(integration_id=integration.pk, entity=entity, mode=mode).pk
    )


def upsert(sandbox, obj: str, record_id: int | None, data: dict, active: bool | None = None):
    payload: dict = {"data": data}
    if record_id is not None:
        payload["id"] = record_id
    if active is not None:
        payload["active"] = active
    response = requests.post(
        f"{sandbox.url}/_sandbox/records/servicetitan/{obj}", json=payload, timeout=10
    )
    response.raise_for_status()
    return response.json()


def deactivate(sandbox, obj: str, record_id: int) -> None:
    requests.delete(
        f"{sandbox.url}/_sandbox/records/servicetitan/{obj}/{record_id}", timeout=10
    ).raise_for_status()


def stored(sandbox, obj: str, record_id: int) -> dict:
    response = requests.get(
        f"{sandbox.url}/_sandbox/records/servicetitan/{obj}/{record_id}", timeout=10
    )
    response.raise_for_status()
    return response.json()


def differences(integration) -> list[str]:
    """Every way the local rows of our entities differ from what the sandbox serves now."""
    provider = provider_for(integration)
    problems: list[str] = []
    for entity in OURS:
        truth: dict = defaultdict(dict)
        for record in provider.iter_records(entity):
            truth[type(record)][record.external_id] = record
        for record_type in provider.record_types(entity):
            model = model_for(record_type)
            sink = next(s for s in SINKS if s.model is model)
            rows = {
                row.external_id: row
                for row in model.objects.filter(
                    integration=integration, **provider.sweep_scope(entity, record_type)
                )
            }
            records = truth[record_type]
            for external_id, record in records.items():
                label = f"{entity} {model.__name__} {external_id}"
                row = rows.get(external_id)
                if row is None:
                    problems.append(f"{label}: missing locally")
                    continue
                if (row.remote_deleted_at is not None) != record.deleted:
                    problems.append(f"{label}: deleted locally={row.remote_deleted_at}")
                if row.remote_updated_at != record.remote_updated_at:
                    problems.append(f"{label}: updated {row.remote_updated_at}")
                for name in sink.fields:
                    if getattr(row, name) != getattr(record, name):
                        problems.append(f"{label}: {name} {getattr(row, name)!r}")
                if row.raw != dict(record.raw):
                    problems.append(f"{label}: raw differs")
                for parent in sink.parents:
                    want = getattr(record, parent.attr) or None
                    pk = getattr(row, parent.fk)
                    have = parent.model.objects.get(pk=pk).external_id if pk is not None else None
                    if have != want:
                        problems.append(f"{label}: {parent.fk} -> {have!r} != {want!r}")
                for m2m in sink.m2m:
                    want = set(getattr(record, m2m.attr))
                    have = set(getattr(row, m2m.field).values_list("external_id", flat=True))
                    if have != want:
                        problems.append(f"{label}: {m2m.field} {sorted(have)} != {sorted(want)}")
            for external_id, row in rows.items():
                if external_id not in records and row.remote_deleted_at is None:
                    problems.append(f"{entity} {external_id}: live locally, gone at provider")
    return problems


def test_full_then_incremental_with_changes_and_a_fault_equals_the_sandbox(
    st_integration, sandbox_clean
):
    sandbox = sandbox_clean
    sandbox_control(sandbox, "config", {"servicetitan": {"rate_limit_per_second": 100_000}})
    integration = st_integration
    provider = provider_for(integration)
    assert provider.entities[-len(OURS) :] == OURS

    # 1. Full syncs: the parents first, then ours in their order.
    for entity in (*PARENTS, *OURS):
        full = run(integration, entity, "full")
        assert (full.status, full.failed_count, full.held_count) == ("success", 0, 0), entity
    assert differences(integration) == []
    categories = PricebookCategory.objects.filter(integration=integration)
    assert categories.filter(parent__isnull=False).exists()
    assert categories.filter(parent__isnull=True).exists()
    for kind in ("material", "service", "equipment", "discount_fee"):
        items = PricebookItem.objects.filter(integration=integration, kind=kind)
        assert items.exists(), kind
    assert PricebookItem.objects.filter(
        integration=integration, kind="material", categories__isnull=False
    ).exists()
    assert set(
        ReferenceRecord.objects.filter(integration=integration).values_list("kind", flat=True)
    ) >= {"vendor", "warehouse", "purchase_order", "inventory_adjustment"}
    invoice = Invoice.objects.filter(integration=integration, balance=0, total__gt=0).first()
    assert invoice is not None and invoice.items.exists() and invoice.job_id and invoice.client_id
    assert Payment.objects.filter(integration=integration, invoice__isnull=False).exists()

    # 2. Changes at the sandbox.
    # A subcategory renamed and moved under another root; a root category deactivated.
    upsert(sandbox, "categories", 30012, {"name": "Heat Pumps & Mini-Splits", "parentId": 30002})
    deactivate(sandbox, "categories", 30004)
    # A price change and a deactivation per item kind.
    upsert(sandbox, "materials", 40002, {"price": 21.5, "categories": [30111, 30112]})
    deactivate(sandbox, "services", 50002)
    deactivate(sandbox, "equipment", 60001)
    upsert(sandbox, "discounts-and-fees", 70004, {"amount": 89.0})
    deactivate(sandbox, "discounts-and-fees", 70005)
    # Two unpaid invoices (made so here) paid by one new payment split over both.
    unpaid = list(
        Invoice.objects.filter(integration=integration, total__gt=0)
        .exclude(pk=invoice.pk)
        .order_by("external_id")[:2]
    )
    assert len(unpaid) == 2
    for row in unpaid:
        upsert(
            sandbox,
            "invoices",
            int(row.external_id),
            {"balance": "0.00", "summary": "Paid by check 5150"},
        )
    split = upsert(
        sandbox,
        "payments",
        None,
        {
            "syncStatus": "Pending",
            "referenceNumber": "P900001",
            "date": "2026-11-20T17:00:00Z",
            "type": "Check",
            "typeId": "12",
            "total": str(sum(r.total for r in unpaid)),
            "unappliedAmount": "0.00",
            "customer": {"id": int(unpaid[0].client.external_id), "name": unpaid[0].client.name},
            "appliedTo": [
                {"appliedTo": int(r.external_id), "appliedAmount": str(r.total)} for r in unpaid
            ],
            "checkNumber": "5150",
        },
    )
    # A vendor closed, a purchase order received, an adjustment voided.
    deactivate(sandbox, "vendors", 8002)
    upsert(sandbox, "purchase-orders", 92005, {"status": "Received"})
    deactivate(sandbox, "adjustments", 93001)

    # 3. An incremental invoices run that fails on an injected fault: nothing moves.
    cursor_before = SyncCursor.objects.get(integration=integration, entity="invoices").value
    sandbox_control(
        sandbox,
        "faults",
        {"queue": [{"status": 500, "path": "/servicetitan/accounting/*/invoices"}] * 3},
    )
    with pytest.raises(ProviderError):
        run(integration, "invoices", "incremental")
    failed = SyncRun.objects.filter(integration=integration, entity="invoices").latest("id")
    assert failed.status == "failed"
    assert SyncCursor.objects.get(integration=integration, entity="invoices").value == (
        cursor_before
    )
    assert sandbox_stats(sandbox, "servicetitan")["faults_injected"]
    stale = differences(integration)
    assert {f"invoices Invoice {r.external_id}: raw differs" for r in unpaid} <= set(stale)
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10).raise_for_status()

    # 4. Incremental syncs of every entity of ours: equal again.
    for entity in OURS:
        incremental = run(integration, entity, "incremental")
        assert (incremental.status, incremental.failed_count, incremental.held_count) == (
            "success",
            0,
            0,
        ), entity
    assert differences(integration) == []

    # The changes arrived as they should.
    moved = PricebookCategory.objects.get(integration=integration, external_id="30012")
    assert (moved.name, moved.parent.external_id) == ("Heat Pumps & Mini-Splits", "30002")
    retired = PricebookCategory.objects.get(integration=integration, external_id="30004")
    assert retired.remote_deleted_at is not None and not retired.is_active
    material = PricebookItem.objects.get(integration=integration, external_id="material:40002")
    assert str(material.unit_price) == "21.50"
    assert set(material.categories.values_list("external_id", flat=True)) == {"30111", "30112"}
    for external_id in ("service:50002", "equipment:60001", "discount_fee:70005"):
        row = PricebookItem.objects.get(integration=integration, external_id=external_id)
        assert row.remote_deleted_at is not None and not row.is_active, external_id
    payment = Payment.objects.get(integration=integration, external_id=str(split["id"]))
    assert payment.invoice_id is None and len(payment.raw["appliedTo"]) == 2
    assert payment.client.external_id == unpaid[0].client.external_id
    assert all(Invoice.objects.get(pk=r.pk).status == "paid" for r in unpaid), "balances paid off"
    vendor = ReferenceRecord.objects.get(integration=integration, external_id="vendor:8002")
    assert vendor.remote_deleted_at is not None and not vendor.is_active
    order = ReferenceRecord.objects.get(integration=integration, external_id="purchase_order:92005")
    assert order.name.endswith("(Received)") and order.parent_external_id.startswith("vendor:")
    assert stored(sandbox, "payments", split["id"])  # still there: nothing was swept

    # 5. A second full run of the payments sweeps only payments, keeps them all.
    full = run(integration, "payments", "full")
    assert full.status == "success"
    assert differences(integration) == []
    assert isinstance(provider.map_record("payments", payment.raw), ExternalPayment)
    assert isinstance(provider.map_record("invoices", invoice.raw)[0], ExternalInvoice)
