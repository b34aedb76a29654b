"""Pure functions from ServiceTitan pricebook JSON (tenant-pricebook-v2.yml) to normalized
records.

- Categories (`GET /pricebook/v2/tenant/{t}/categories`, Pricebook.V2.CategoryResponse): a tree
  through `parentId` and nested `subcategories` (each a CategoryResponse itself). The list
  takes neither `active` nor a modified filter, and the schema has no `modifiedOn`: every read
  is a full read, inactive categories included. A category may come both on its own and nested
  in its parent: `flatten_categories` keeps one copy of each (its own listing wins over a
  nested copy), parents before children, so the tree is written top-down.
- SKUs: materials (MaterialResponse), services (ServiceResponse), equipment (EquipmentResponse)
  and discounts and fees (DiscountAndFeesResponse) are four resources with their own int64 ids,
  so an item's external id is "<kind>:<id>" ("material:40001"). `categories` is a list of bare
  category ids on materials, equipment and discounts/fees, and of {id, name, active} objects on
  services [spec]. Money is a JSON number (`format: decimal`), read through Decimal.
- Units: materials and equipment have `unitOfMeasure`; services are sold by the job (no unit);
  a discount or fee is a flat amount or a percentage (`amountType`), kept as the unit.
- DiscountAndFeesResponse has no `modifiedOn` in the 2022 schema (the list still filters on
  `modifiedOnOrAfter`): its records carry no remote time, so the sync cursor of that entity
  does not advance and each run reads them all; `_base` picks `modifiedOn` up when a newer API
  sends it.
"""

from __future__ import annotations

from collections.abc import Iterable

from integrations.base import ExternalPricebookCategory, ExternalPricebookItem
from integrations.providers.servicetitan.mapping import PROVIDER, _base, _text, as_decimal

# PricebookItem.kind -> the prefix of its external ids.
ITEM_KINDS = ("material", "service", "equipment", "discount_fee")
ITEM_PREFIXES = {kind: f"{kind}:" for kind in ITEM_KINDS}


def item_id(kind: str, raw: dict) -> str:
    return f"{ITEM_PREFIXES[kind]}{raw['id']}"


def flatten_categories(records: Iterable[dict]) -> list[dict]:
    """Every category of a categories listing once, parents before their subcategories. A
    category listed on its own is taken as listed; one known only nested in its parent is taken
    from there, with `parentId` filled in from the nesting when the copy lacks it."""
    listed: dict[int, dict] = {}
    order: list[int] = []

    def visit(raw: dict, parent_id: int | None, own: bool) -> None:
        if raw.get("id") is None:
            raise ValueError("servicetitan: a pricebook category without id")
        cid = int(raw["id"])
        if parent_id is not None and raw.get("parentId") is None:
            raw = {**raw, "parentId": parent_id}
        if cid not in listed:
            order.append(cid)
            listed[cid] = raw
        elif own:
            listed[cid] = raw
        for sub in raw.get("subcategories") or ():
            visit(sub, cid, False)

    records = list(records)
    for raw in records:
        visit(raw, None, True)
    for raw in records:  # own listings win over nested copies met before them
        listed[int(raw["id"])] = raw

    # Parents first: depth in the tree, then the order met.
    def depth(cid: int, seen: frozenset[int] = frozenset()) -> int:
        parent = listed[cid].get("parentId")
        if parent is None or int(parent) not in listed or cid in seen:
            return 0
        return 1 + depth(int(parent), seen | {cid})

    rank = {cid: n for n, cid in enumerate(order)}
    return [listed[cid] for cid in sorted(order, key=lambda c: (depth(c), rank[c]))]


def category_to_category(raw: dict) -> ExternalPricebookCategory:
    """Pricebook.V2.CategoryResponse (one node; its subcategories are records of their own)."""
    parent = raw.get("parentId")
    return ExternalPricebookCategory(
        **_base(raw),
        name=_text(raw, "name") or "(no name)",
        parent_external_id=None if parent is None else str(parent),
        kind=_text(raw, "categoryType"),
        is_active=raw.get("active") is not False,
        sort_order=int(raw.get("position") or 0),
    )


def _category_ids(raw: dict) -> tuple[str, ...]:
    ids: list[str] = []
    for entry in raw.get("categories") or ():
        value = entry.get("id") if isinstance(entry, dict) else entry
        if value is not None and str(value) not in ids:
            ids.append(str(value))
    return tuple(ids)


def _item(kind: str, raw: dict, **fields) -> ExternalPricebookItem:
    code = _text(raw, "code")
    description = _text(raw, "description")
    name = _text(raw, "displayName") or description.split("\n", 1)[0].strip() or code
    taxable = raw.get("taxable")
    return ExternalPricebookItem(
        **_base(raw, external_id=item_id(kind, raw)),
        kind=kind,
        code=code,
        name=name[:255],
        description=description,
        # taxable is nullable on materials: unknown counts as taxable (the model's default).
        is_taxable=taxable is not False,
        is_active=raw.get("active") is not False,
        category_external_ids=_category_ids(raw),
        **fields,
    )


def material_to_item(raw: dict) -> ExternalPricebookItem:
    """Pricebook.V2.MaterialResponse: `price` sells, `cost` is what it costs us."""
    return _item(
        "material",
        raw,
        unit_price=as_decimal(raw.get("price")),
        cost=as_decimal(raw.get("cost")),
        unit=_text(raw, "unitOfMeasure")[:40],
    )


def equipment_to_item(raw: dict) -> ExternalPricebookItem:
    """Pricebook.V2.EquipmentResponse."""
    return _item(
        "equipment",
        raw,
        unit_price=as_decimal(raw.get("price")),
        cost=as_decimal(raw.get("cost")),
        unit=_text(raw, "unitOfMeasure")[:40],
    )


def service_to_item(raw: dict) -> ExternalPricebookItem:
    """Pricebook.V2.ServiceResponse: no cost field (labour is costed through payroll)."""
    return _item("service", raw, unit_price=as_decimal(raw.get("price")), cost=None)


def discount_fee_to_item(raw: dict) -> ExternalPricebookItem:
    """Pricebook.V2.DiscountAndFeesResponse: `type` Discount | Fee, `amountType` Percentage |
    Fixed [spec: PriceModifierType, PriceModifierAmountType]. A discount's amount is kept
    negative (it lowers a total); a percentage's unit is "%" and its price the percentage."""
    amount = as_decimal(raw.get("amount"))
    if _text(raw, "type").lower() == "discount" and amount > 0:
        amount = -amount
    amount_type = _text(raw, "amountType")
    return _item(
        "discount_fee",
        raw,
        unit_price=amount,
        cost=None,
        unit="%" if amount_type.lower() == "percentage" else amount_type[:40],
    )


ITEM_MAPPERS = {
    "material": material_to_item,
    "service": service_to_item,
    "equipment": equipment_to_item,
    "discount_fee": discount_fee_to_item,
}

__all__ = [
    "ITEM_KINDS",
    "ITEM_MAPPERS",
    "PROVIDER",
    "category_to_category",
    "flatten_categories",
    "item_id",
]
