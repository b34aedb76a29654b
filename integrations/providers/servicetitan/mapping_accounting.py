"""Pure functions from ServiceTitan accounting and inventory JSON to normalized records.

Accounting (tenant-accounting-v2.yml):
- Invoices (`GET /accounting/v2/tenant/{t}/invoices`, Accounting.V2.InvoiceResponse): money
  (`subTotal`, `salesTax`, `total`, `balance`, and the items' `quantity`, `price`, `total`) is
  typed *string* in this schema (decimal text), read through Decimal. The customer is
  `customer.id`, the job `job.id` (NamedFieldResponse / Accounting.V2.JobResponse). The schema
  has no status: an invoice's status here is its payment state from `total` and `balance`
  (paid / partially_paid / unpaid / credit / zero); its accounting `syncStatus` stays in raw.
  Invoices have no `active` (an invoice is corrected by an adjustment invoice,
  `adjustmentToId`, not deleted), and `invoiceDate`/`dueDate` are date-times whose UTC date is
  the date. Items (Accounting.V2.InvoiceItemResponse) come in the same mapped tuple, ordered by
  `order`.
- Payments (`GET /accounting/v2/tenant/{t}/payments`, Accounting.V2.DetailedPaymentResponse):
  `total` (string), `date`, `type` (the payment type's name), `referenceNumber` (else the
  check number or card auth code), `syncStatus`, `customer.id`, and `appliedTo[]`
  ({appliedTo: invoice id, appliedAmount, appliedOn, appliedBy}): the payment's invoice is set
  when it applies to exactly one invoice; a split payment keeps every split in raw. The 2022
  schema has no `modifiedOn` (the list still filters on `modifiedOnOrAfter`): without a remote
  time the entity's cursor does not advance and each run reads every payment.

Inventory: there is no inventory spec in shared/provider-specs/servicetitan. SPEC GAP: the
paths (`/inventory/v2/tenant/{t}/vendors`, `/warehouses`, `/purchase-orders`, `/adjustments`)
and the fields below follow ServiceTitan's documented Inventory API
([doc: https://developer.servicetitan.io/docs/api-resources-inventory]: a purchase order
records items ordered from a vendor for an inventory location, has a type, a business unit,
optionally a job, project and technician, starts Pending and moves through statuses the API
cannot set; a vendor has its address, a primary contact, a default tax rate and a delivery
option; the same paths and `modifiedOn` replication are in the Meltano tap-servicetitan
streams [3p]); exact field names are [mem]/[3p], not checked against an official spec file.
Each maps to an ExternalReference whose external id is
"<kind>:<id>": vendor (`name`, `active`), warehouse (`name`, `active`), purchase_order
(`number`, `status`, `vendorId` as parent "vendor:<id>"; no `active`: a cancelled order keeps
its record with status Canceled) and inventory_adjustment (`number`, `referenceNumber`,
`active`, `inventoryLocationId` as parent "warehouse:<id>").
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from integrations.base import (
    ExternalInvoice,
    ExternalInvoiceItem,
    ExternalPayment,
    ExternalReference,
)
from integrations.providers.servicetitan.mapping import (
    PROVIDER,
    _base,
    _id,
    _text,
    as_decimal,
    parse_datetime,
)

ZERO = Decimal("0")


def _date(value: str | None) -> date | None:
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


def _ref_id(raw: dict, key: str) -> str | None:
    ref = raw.get(key)
    return _id(ref.get("id")) if isinstance(ref, dict) else None


def invoice_status(total: Decimal, balance: Decimal) -> str:
    """The invoice's payment state (the 2022 InvoiceResponse has no status of its own)."""
    if total < ZERO:
        return "credit"
    if total == ZERO:
        return "zero"
    if balance <= ZERO:
        return "paid"
    if balance < total:
        return "partially_paid"
    return "unpaid"


def invoice_item_to_item(raw: dict, *, invoice_id: str, index: int) -> ExternalInvoiceItem:
    """Accounting.V2.InvoiceItemResponse: the name is the SKU's display name (its code-like
    `skuName` when that is empty, else the description's first line)."""
    description = _text(raw, "description")
    name = (
        _text(raw, "displayName")
        or _text(raw, "skuName")
        or description.split("\n", 1)[0].strip()
        or "(no name)"
    )
    order = raw.get("order")
    return ExternalInvoiceItem(
        provider=PROVIDER,
        external_id=str(raw["id"]),
        raw=raw,
        remote_updated_at=parse_datetime(raw.get("modifiedOn")),
        invoice_external_id=invoice_id,
        name=name[:255],
        description=description,
        quantity=as_decimal(raw.get("quantity")),
        unit_price=as_decimal(raw.get("price")),
        total=as_decimal(raw.get("total")),
        sort_order=int(order) if isinstance(order, int) and order >= 0 else index,
    )


def invoice_to_records(raw: dict) -> tuple[ExternalInvoice | ExternalInvoiceItem, ...]:
    """Accounting.V2.InvoiceResponse: the invoice, then its items."""
    invoice_id = str(raw["id"])
    items = tuple(
        invoice_item_to_item(item, invoice_id=invoice_id, index=index)
        for index, item in enumerate(
            sorted(raw.get("items") or (), key=lambda i: (i.get("order") or 0, i.get("id") or 0))
        )
    )
    subtotal = as_decimal(raw.get("subTotal"))
    tax = as_decimal(raw.get("salesTax"))
    total = as_decimal(raw["total"]) if raw.get("total") not in (None, "") else subtotal + tax
    balance = as_decimal(raw.get("balance"))
    invoice = ExternalInvoice(
        **_base(raw),
        client_external_id=_ref_id(raw, "customer"),
        job_external_id=_ref_id(raw, "job"),
        number=(_text(raw, "referenceNumber") or invoice_id)[:64],
        status=invoice_status(total, balance),
        issued_on=_date(raw.get("invoiceDate")),
        due_on=_date(raw.get("dueDate")),
        subtotal=subtotal,
        tax_total=tax,
        total=total,
        balance=balance,
    )
    return (invoice, *items)


def payment_to_payment(raw: dict) -> ExternalPayment:
    """Accounting.V2.DetailedPaymentResponse (see the module docstring)."""
    invoices = {
        str(split["appliedTo"])
        for split in raw.get("appliedTo") or ()
        if isinstance(split, dict) and split.get("appliedTo") is not None
    }
    reference = _text(raw, "referenceNumber") or _text(raw, "checkNumber") or _text(raw, "authCode")
    return ExternalPayment(
        **_base(raw),
        client_external_id=_ref_id(raw, "customer"),
        invoice_external_id=invoices.pop() if len(invoices) == 1 else None,
        amount=as_decimal(raw.get("total")),
        paid_on=_date(raw.get("date")),
        method=_text(raw, "type")[:120],
        payment_reference=reference[:255],
        status=_text(raw, "syncStatus")[:64],
    )


# --- inventory ---------------------------------------------------------------------------------
# SPEC GAP: no inventory spec file; paths and fields as documented (see the module docstring).

INVENTORY_KINDS = ("vendor", "warehouse", "purchase_order", "inventory_adjustment")


def reference_id(kind: str, raw: dict) -> str:
    return f"{kind}:{raw['id']}"


def _reference(kind: str, raw: dict, **fields) -> ExternalReference:
    return ExternalReference(
        **_base(raw, external_id=reference_id(kind, raw)),
        kind=kind,
        is_active=raw.get("active") is not False,
        **fields,
    )


def vendor_to_reference(raw: dict) -> ExternalReference:
    # SPEC GAP: Inventory.V2.VendorResponse [3p/mem]: id, name, active, memo, contactInfo…
    return _reference("vendor", raw, name=_text(raw, "name")[:255])


def warehouse_to_reference(raw: dict) -> ExternalReference:
    # SPEC GAP: Inventory.V2.WarehouseResponse [3p/mem]: id, name, active, address…
    return _reference("warehouse", raw, name=_text(raw, "name")[:255])


def purchase_order_to_reference(raw: dict) -> ExternalReference:
    """SPEC GAP: Inventory.V2.PurchaseOrderResponse [3p/mem]: `number`, `status` (Pending, Sent,
    PartiallyReceived, Received, Exported, Canceled), `vendorId`, `total`. No `active`."""
    number = _text(raw, "number")
    status = _text(raw, "status")
    vendor = _id(raw.get("vendorId"))
    return _reference(
        "purchase_order",
        raw,
        name=" ".join(p for p in (number or str(raw["id"]), status and f"({status})") if p)[:255],
        code=number[:120],
        parent_external_id=f"vendor:{vendor}" if vendor else "",
    )


def adjustment_to_reference(raw: dict) -> ExternalReference:
    """SPEC GAP: Inventory.V2.InventoryAdjustmentResponse [3p/mem]: `number`, `referenceNumber`,
    `type` (the adjustment type), `inventoryLocationId` (the warehouse), `active`."""
    number = _text(raw, "number")
    kind = _text(raw, "type")
    warehouse = _id(raw.get("inventoryLocationId"))
    return _reference(
        "inventory_adjustment",
        raw,
        name=" ".join(p for p in (number or str(raw["id"]), kind and f"({kind})") if p)[:255],
        code=(_text(raw, "referenceNumber") or number)[:120],
        parent_external_id=f"warehouse:{warehouse}" if warehouse else "",
    )


INVENTORY_MAPPERS = {
    "vendor": vendor_to_reference,
    "warehouse": warehouse_to_reference,
    "purchase_order": purchase_order_to_reference,
    "inventory_adjustment": adjustment_to_reference,
}
