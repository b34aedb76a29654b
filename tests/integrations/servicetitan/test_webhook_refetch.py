"""A ServiceTitan webhook notice re-fetches exactly the record it names (issue #5 entities):
the handler's (entity, external id) goes through the provider's `fetch_record` to the right
URL, the id prefix stripped ("zone:12" -> `dispatch/…/zones/12`) or read with `?ids=` where
the list has no GET by id. Provider HTTP is mocked with `responses`."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import responses

from integrations.providers.servicetitan.webhooks import ServiceTitanWebhookHandler
from integrations.webhooks import WebhookRequest
from tests.integrations.test_provider_entities import ST_API, ST_BASE, query, st, st_page, st_token

# eventType, payload id, (module, path), GET by id
CASES = [
    ("Location.Updated", 11, ("crm", "locations"), True),
    ("BusinessUnit.Updated", 1005, ("settings", "business-units"), True),
    ("JobType.Updated", 2006, ("jpm", "job-types"), True),
    ("Zone.Updated", 12, ("dispatch", "zones"), True),
    ("Team.Updated", 9451, ("dispatch", "teams"), True),
    ("Project.Updated", 180000012, ("jpm", "projects"), True),
    ("TechnicianShift.Updated", 9500234, ("dispatch", "technician-shifts"), True),
    ("Category.Updated", 31, ("pricebook", "categories"), True),
    ("Material.Updated", 40001, ("pricebook", "materials"), True),
    ("Service.Updated", 50002, ("pricebook", "services"), True),
    ("Equipment.Updated", 60003, ("pricebook", "equipment"), True),
    ("DiscountAndFee.Updated", 7, ("pricebook", "discounts-and-fees"), True),
    ("Invoice.Updated", 5, ("accounting", "invoices"), False),
    ("Payment.Updated", 8, ("accounting", "payments"), False),
    ("Vendor.Updated", 3, ("inventory", "vendors"), False),
    ("Warehouse.Updated", 4, ("inventory", "warehouses"), False),
    ("PurchaseOrder.Updated", 6, ("inventory", "purchase-orders"), False),
    ("InventoryAdjustment.Updated", 9, ("inventory", "adjustments"), False),
]


def _notice(event_type: str, record_id: int):
    body = json.dumps({"eventId": "e-1", "eventType": event_type, "id": record_id}).encode()
    request = WebhookRequest(
        method="POST",
        url="https://app.example.com/webhooks/servicetitan/1/token",
        headers={"Content-Type": "application/json"},
        body=body,
        content_type="application/json",
        path_token="token",
    )
    (notice,) = ServiceTitanWebhookHandler().parse(request)
    return notice


@responses.activate
@pytest.mark.parametrize(("event_type", "record_id", "where", "has_get"), CASES)
def test_a_notice_refetches_the_record_it_names(event_type, record_id, where, has_get):
    st_token()
    module, path = where
    record = {"id": record_id, "active": True, "name": "x"}
    if has_get:
        responses.get(ST_BASE.format(module=module, path=f"{path}/{record_id}"), json=record)
    else:
        responses.get(ST_BASE.format(module=module, path=path), json=st_page([record]))
    notice = _notice(event_type, record_id)
    provider = st()
    assert provider.fetch_record(notice.entity, notice.external_id) == record
    # The mapped record's external id is the notice's: the webhook run updates that row.
    mapped = provider.map_record(notice.entity, record)
    mapped = mapped[0] if isinstance(mapped, tuple) else mapped
    assert mapped.external_id == notice.external_id
    (call,) = [c for c in responses.calls if c.request.url.startswith(ST_API)]
    assert urlsplit(call.request.url).path.endswith(
        f"/{module}/v2/tenant/42/{path}/{record_id}"
        if has_get
        else f"/{module}/v2/tenant/42/{path}"
    )
    if not has_get:
        assert query(call)["ids"] == [str(record_id)]
