"""ServiceTitan seed data for accounting, pricebook discounts/fees and inventory (issue #5).

Called from ``seed_servicetitan.py``; every generator here draws from its own ``Dice`` and id
range, so adding these records changed no record seeded before them.

- ``discounts-and-fees`` (fixed): Pricebook.V2.DiscountAndFeesResponse; discounts and fees,
  flat or percentage, in the services' categories; one is deactivated.
- Per completed job, one ``invoices`` record (Accounting.V2.InvoiceResponse) with items for a
  service and the materials it used, priced from the pricebook; money is decimal *text*
  (the schema types it ``string``), ``total = subTotal + salesTax``, and ``balance`` is what its
  payments leave unpaid.
- ``payments`` (Accounting.V2.DetailedPaymentResponse): most invoices are paid in full, some
  partly, some not at all; when a customer has two invoices, some payments are split over
  both (``appliedTo`` with two entries). ``unappliedAmount`` is 0; payments carry no
  ``modifiedOn`` in the 2022 schema (the store's column still orders and filters them).
- Inventory (SPEC GAP, fields per ``servicetitan_resources.INVENTORY_SCHEMAS``): the three
  pricebook vendors as ``vendors`` (a fourth deactivated), ``warehouses`` (the main warehouse
  and two trucks' stock locations, one retired), ``purchase-orders`` of materials from those
  vendors into a warehouse (Pending … Received, one Canceled) and ``adjustments`` of stock
  counts in the warehouses (one voided: inactive).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from integrations.sandbox.seed_base import DAY_US, YEAR_US, Dice, RowSink
from integrations.sandbox.servicetitan_resources import (
    adjustment_defaults,
    discount_fee_defaults,
    invoice_defaults,
    payment_defaults,
    purchase_order_defaults,
    vendor_defaults,
    warehouse_defaults,
)
from integrations.sandbox.store import dumps, iso_utc, to_us

OBJECTS = (
    "discounts-and-fees",
    "invoices",
    "payments",
    "vendors",
    "warehouses",
    "purchase-orders",
    "adjustments",
)
_INVOICE_FIRST_ID = 700_000_000
_INVOICE_ITEM_FIRST_ID = 750_000_000
_PAYMENT_FIRST_ID = 800_000_000
# Sales tax on materials and equipment (services are not taxed in the seeded states).
_TAX_RATE_PERCENT = 8.6
_SALES_TAX = {"id": 9001, "name": "Maricopa County", "taxRate": _TAX_RATE_PERCENT}
_GL_SALES = {
    "Service": {"name": "Service Income", "number": "4001", "type": "Income"},
    "Material": {"name": "Materials Income", "number": "4002", "type": "Income"},
    "Equipment": {"name": "Equipment Income", "number": "4003", "type": "Income"},
}
_UNDEPOSITED = {
    "name": "Undeposited Funds",
    "number": "1200",
    "type": "Asset",
    "detailType": "Cash",
}
# (payment type id, name)
_PAYMENT_TYPES = (("11", "Credit Card"), ("12", "Check"), ("13", "Cash"), ("14", "ACH"))
_OFFICE = "Dana Whitfield"  # the accounting clerk who posts payments

# (id, type, code, name, amount type, amount, limit, category ids, active)
_DISCOUNTS_FEES = (
    (70001, "Discount", "DISC-MEMBER", "Member Discount 15%", "Percentage", 15, 500, [30004], 1),
    (70002, "Discount", "DISC-SENIOR", "Senior Discount", "Percentage", 10, 250, [], 1),
    (70003, "Discount", "DISC-50OFF", "$50 Off Repair Coupon", "Fixed", 50, 50, [30021], 1),
    (70004, "Fee", "FEE-TRIP", "Trip Charge", "Fixed", 79, 0, [], 1),
    (70005, "Fee", "FEE-AFTERHRS", "After-Hours Fee", "Fixed", 150, 0, [30001, 30002], 1),
    (70006, "Fee", "FEE-PERMIT", "Permit Fee", "Fixed", 125, 0, [30022], 1),
    (70007, "Discount", "DISC-SPRING", "Spring Tune-Up Special", "Fixed", 30, 30, [30004], 0),
)
# (id, name, city, state, zip, active)
_WAREHOUSES = (
    (91001, "Main Warehouse", "Phoenix", "AZ", "85007", True),
    (91002, "Truck Stock - East Valley", "Mesa", "AZ", "85201", True),
    (91003, "Truck Stock - Old Van 12", "Scottsdale", "AZ", "85251", False),
)
_PO_STATUSES = ("Received", "Received", "PartiallyReceived", "Sent", "Pending", "Canceled")
_ADJUSTMENT_TYPES = ("Recount", "Damaged", "Adjustment", "Recount")


def _text(cents: int) -> str:
    return f"{cents / 100:.2f}"


def _address(street: str, city: str, state: str, zip_code: str) -> dict[str, Any]:
    return {
        "street": street,
        "unit": None,
        "city": city,
        "state": state,
        "zip": zip_code,
        "country": "USA",
    }


def seed_catalogue(sink: RowSink, d: Dice, now_us: int, skus: dict[str, list[Any]]) -> None:
    """Discounts and fees and the inventory records (fixed; times and flags from ``d``)."""
    founded = now_us - 5 * YEAR_US
    rows = sink.buffer("discounts-and-fees")
    for fid, kind, code, name, amount_type, amount, limit, categories, active in _DISCOUNTS_FEES:
        data = discount_fee_defaults()
        data.update(
            type=kind,
            code=code,
            displayName=name,
            description=f"{name} (applied on the invoice)",
            amountType=amount_type,
            amount=float(amount),
            limit=float(limit),
            taxable=kind == "Fee",
            categories=categories,
            account="Discounts" if kind == "Discount" else "Fee Income",
            paysCommission=kind == "Fee",
        )
        rows.append((fid, d.modified_us(now_us, founded), bool(active), dumps(data)))

    vendors = sink.buffer("vendors")
    vendor_rows = ((8001, "Ferguson"), (8002, "Johnstone Supply"), (8003, "Carrier Enterprise"))
    for n, (vendor_id, name) in enumerate((*vendor_rows, (8004, "Valley Plumbing Supply"))):
        data = vendor_defaults()
        slug = "".join(c for c in name.lower() if c.isalnum())
        data.update(
            name=name,
            memo="Net 30 account" if n < 3 else "Closed: account moved to Ferguson",
            deliveryOption="Delivery" if n % 2 == 0 else "Will Call",
            defaultTaxRate=_TAX_RATE_PERCENT,
            contactInfo={
                "firstName": "Sales",
                "lastName": "Desk",
                "phone": f"602555{2100 + n}",
                "email": f"orders@{slug}.example",
                "fax": None,
            },
            address=_address(f"{400 + 25 * n} S 7th St", "Phoenix", "AZ", "85034"),
            createdOn=iso_utc(founded + n * DAY_US),
        )
        vendors.append((vendor_id, d.modified_us(now_us, founded), n < 3, dumps(data)))

    warehouses = sink.buffer("warehouses")
    for wid, name, city, state, zip_code, active in _WAREHOUSES:
        data = warehouse_defaults()
        data.update(
            name=name,
            address=_address(f"{d.int(100, 4999)} W Broadway Rd", city, state, zip_code),
            createdOn=iso_utc(founded + d.int(0, 300) * DAY_US),
        )
        warehouses.append((wid, d.modified_us(now_us, founded), active, dumps(data)))

    materials = skus.get("Material") or []
    orders = sink.buffer("purchase-orders")
    for n in range(12):
        po_id = 92001 + n
        vendor_id, _ = vendor_rows[n % 3]
        created = now_us - d.int(3, 200) * DAY_US
        status = _PO_STATUSES[n % len(_PO_STATUSES)]
        items = []
        total_c = 0
        for k in range(d.int(1, 4) if materials else 0):
            sku = d.pick(materials)
            qty = d.pick((5, 10, 12, 20, 24, 50))
            cost_c = max(50, sku.price_c * 4 // 10)
            received = qty if status == "Received" else qty // 2 if status[0] == "P" else 0
            items.append(
                {
                    "id": po_id * 100 + k + 1,
                    "skuId": sku.id,
                    "skuCode": sku.sku["name"],
                    "skuName": sku.description,
                    "skuType": "Material",
                    "description": sku.description,
                    "quantity": float(qty),
                    "quantityReceived": float(received if status != "Pending" else 0),
                    "cost": cost_c / 100,
                    "total": qty * cost_c / 100,
                }
            )
            total_c += qty * cost_c
        tax_c = round(total_c * _TAX_RATE_PERCENT / 100)
        shipping_c = 0 if total_c > 50_000 else 2500
        data = purchase_order_defaults()
        data.update(
            number=f"PO-{po_id - 92000:05d}",
            status=status,
            typeId=1,
            vendorId=vendor_id,
            businessUnitId=1001 if n % 2 == 0 else 1003,
            inventoryLocationId=_WAREHOUSES[n % 2][0],
            vendorDocumentNumber=f"SO{d.int(100000, 999999)}" if status != "Pending" else None,
            date=iso_utc(created),
            requiredOn=iso_utc(created + 7 * DAY_US),
            sentOn=iso_utc(created + DAY_US) if status != "Pending" else None,
            receivedOn=iso_utc(created + 5 * DAY_US) if status == "Received" else None,
            total=(total_c + tax_c + shipping_c) / 100,
            tax=tax_c / 100,
            shipping=shipping_c / 100,
            summary=f"Stock replenishment for {_WAREHOUSES[n % 2][1]}",
            shipTo={
                "description": _WAREHOUSES[n % 2][1],
                "address": _address("1200 W Washington St", "Phoenix", "AZ", "85007"),
            },
            items=items,
            createdOn=iso_utc(created),
        )
        orders.append((po_id, d.modified_us(now_us, created), True, dumps(data)))

    adjustments = sink.buffer("adjustments")
    for n in range(8):
        adj_id = 93001 + n
        created = now_us - d.int(1, 150) * DAY_US
        items = []
        for k in range(d.int(1, 3) if materials else 0):
            sku = d.pick(materials)
            items.append(
                {
                    "id": adj_id * 100 + k + 1,
                    "skuId": sku.id,
                    "skuCode": sku.sku["name"],
                    "skuName": sku.description,
                    "skuType": "Material",
                    "description": sku.description,
                    "quantity": float(d.pick((-3, -2, -1, 1, 2, 4))),
                    "cost": max(50, sku.price_c * 4 // 10) / 100,
                }
            )
        data = adjustment_defaults()
        data.update(
            number=f"ADJ-{adj_id - 93000:05d}",
            referenceNumber=f"CNT-{d.int(1000, 9999)}",
            type=_ADJUSTMENT_TYPES[n % len(_ADJUSTMENT_TYPES)],
            inventoryLocationId=_WAREHOUSES[n % 2][0],
            businessUnitId=1001,
            syncStatus="Posted" if n % 3 else "Pending",
            memo="Cycle count" if n % 2 == 0 else "Damaged in transit",
            date=iso_utc(created),
            createdById=5019,
            items=items,
            createdOn=iso_utc(created),
        )
        adjustments.append((adj_id, d.modified_us(now_us, created), n != 5, dumps(data)))


class Ledger:
    """Invoices for a customer's completed jobs and the payments against them."""

    def __init__(
        self,
        seed: int,
        now_us: int,
        sink: RowSink,
        skus: dict[str, list[Any]],
        business_units: dict[int, str],
    ) -> None:
        self.business_units = business_units
        self.d = Dice(random.Random(f"{seed}:servicetitan:ledger"))  # noqa: S311 - test data
        self.now_us = now_us
        self.skus = skus
        self.invoices = sink.buffer("invoices")
        self.payments = sink.buffer("payments")
        self.invoice_id = _INVOICE_FIRST_ID
        self.item_id = _INVOICE_ITEM_FIRST_ID
        self.payment_id = _PAYMENT_FIRST_ID

    def _next(self, name: str) -> int:
        value = getattr(self, name) + 1 + int(self.d.random() * 3)
        setattr(self, name, value)
        return value

    def invoice_jobs(
        self, customer_id: int, customer: dict[str, Any], jobs: list[tuple[int, str, str, tuple]]
    ) -> None:
        """``jobs``: (job id, job status, completedOn as JSON text or "null", job type)."""
        d, now = self.d, self.now_us
        jobs_done = [
            (job_id, status, to_us(datetime.fromisoformat(done.strip('"'))), job_type)
            for job_id, status, done, job_type in jobs
            if status == "Completed" and done != "null"
        ]
        ref = {"id": customer_id, "name": customer["name"]}
        address = {k: customer["address"].get(k) for k in ("street", "unit", "city", "state")}
        address |= {"zip": customer["address"].get("zip"), "country": "USA"}
        open_invoices: list[tuple[int, int, int]] = []  # (id, total c, issued µs)
        for job_id, _, completed, job_type in jobs_done:
            invoice_id = self._next("invoice_id")
            items, subtotal_c, tax_c = self._items(job_type, completed)
            total_c = subtotal_c + tax_c
            issued = completed // DAY_US * DAY_US
            residential = customer.get("type") == "Residential"
            due = issued + (0 if residential else 30 * DAY_US)
            # What gets paid: in full (most), a deposit only, or nothing yet.
            roll = d.random()
            paid_c = total_c if roll < 0.75 else total_c // 2 if roll < 0.87 else 0
            if issued < now - 120 * DAY_US and paid_c < total_c and d.chance(0.8):
                paid_c = total_c  # old invoices are settled
            data = invoice_defaults()
            data.update(
                syncStatus="Exported" if issued < now - 30 * DAY_US else "Pending",
                summary=f"{job_type[1]} - completed",
                referenceNumber=str(job_id),
                invoiceDate=iso_utc(issued),
                dueDate=iso_utc(due),
                subTotal=_text(subtotal_c),
                salesTax=_text(tax_c),
                salesTaxCode=_SALES_TAX,
                total=_text(total_c),
                balance=_text(total_c - paid_c),
                customer=ref,
                customerAddress=address,
                locationAddress=address,
                businessUnit={"id": job_type[2], "name": self.business_units.get(job_type[2])},
                termName="Due Upon Receipt" if residential else "Net 30",
                createdBy="Dispatch",
                job={"id": job_id, "number": str(job_id), "type": job_type[1]},
                items=items,
            )
            modified = max(completed, d.modified_us(now, completed))
            self.invoices.append((invoice_id, modified, True, dumps(data)))
            if paid_c:
                open_invoices.append((invoice_id, paid_c, issued))
        # A customer with two paid invoices sometimes pays both with one check.
        if len(open_invoices) >= 2 and d.chance(0.3):
            first, second = open_invoices[-2:]
            self._payment(ref, [first, second], max(first[2], second[2]))
            open_invoices = open_invoices[:-2]
        for invoice in open_invoices:
            self._payment(ref, [invoice], invoice[2])

    def _items(self, job_type: tuple, completed: int) -> tuple[list[dict], int, int]:
        d = self.d
        trade = job_type[3]
        services = [s for s in self.skus["Service"] if trade in s.trades] or self.skus["Service"]
        materials = [s for s in self.skus["Material"] if trade in s.trades]
        chosen = [d.pick(services)]
        for _ in range(d.int(0, 3) if materials else 0):
            chosen.append(d.pick(materials))
        items, subtotal_c, taxable_c = [], 0, 0
        for order, sku in enumerate(chosen, 1):
            qty = 1 if sku.kind != "Material" else d.pick((1, 1, 2, 3, 5))
            total_c = qty * sku.price_c
            cost_c = sku.price_c * 4 // 10 if sku.kind == "Material" else 0
            taxable = sku.kind != "Service"
            items.append(
                {
                    "id": self._next("item_id"),
                    "description": sku.description,
                    "quantity": f"{qty:.2f}",
                    "cost": _text(cost_c),
                    "totalCost": _text(cost_c * qty),
                    "inventoryLocation": "Main Warehouse" if sku.kind == "Material" else None,
                    "price": _text(sku.price_c),
                    "type": sku.kind,
                    "skuName": sku.sku["name"],
                    "skuId": sku.id,
                    "total": _text(total_c),
                    "inventory": sku.kind == "Material",
                    "taxable": taxable,
                    "generalLedgerAccount": {**_GL_SALES[sku.kind], "detailType": None},
                    "membershipTypeId": 0,
                    "displayName": sku.description,
                    "soldHours": sku.sku.get("soldHours"),
                    "modifiedOn": iso_utc(completed),
                    "serviceDate": iso_utc(completed),
                    "order": order,
                }
            )
            subtotal_c += total_c
            taxable_c += total_c if taxable else 0
        return items, subtotal_c, round(taxable_c * _TAX_RATE_PERCENT / 100)

    def _payment(self, ref: dict, invoices: list[tuple[int, int, int]], issued: int) -> None:
        d, now = self.d, self.now_us
        paid = min(now - 60_000_000, issued + int(d.random() * 20) * DAY_US + 16 * 3600 * 10**6)
        type_id, type_name = d.pick(_PAYMENT_TYPES)
        total_c = sum(amount for _, amount, _ in invoices)
        data = payment_defaults()
        data.update(
            syncStatus="Exported" if paid < now - 30 * DAY_US else "Pending",
            referenceNumber=f"P{d.int(100000, 999999)}",
            date=iso_utc(paid),
            type=type_name,
            typeId=type_id,
            total=_text(total_c),
            unappliedAmount="0.00",
            memo="Paid in full" if len(invoices) == 1 else "One check for two invoices",
            customer=ref,
            createdBy=_OFFICE,
            generalLedgerAccount=_UNDEPOSITED,
            appliedTo=[
                {
                    "appliedTo": invoice_id,
                    "appliedAmount": _text(amount),
                    "appliedOn": iso_utc(paid),
                    "appliedBy": _OFFICE,
                }
                for invoice_id, amount, _ in invoices
            ],
            authCode=f"{d.int(100000, 999999)}" if type_name == "Credit Card" else None,
            checkNumber=str(d.int(1001, 9999)) if type_name == "Check" else None,
        )
        self.payments.append((self._next("payment_id"), paid, True, dumps(data)))
