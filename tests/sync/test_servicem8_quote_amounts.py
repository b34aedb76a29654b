"""A ServiceM8 quote's figures: its line items (jobmaterials) are ex-tax and its total (the
job's `total_invoice_amount`) tax-inclusive, on tax-inclusive and tax-exclusive accounts
alike, so subtotal + tax = total with the tax derived in Decimal (quotes.selectors)."""

import copy
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from integrations.base import ExternalClient
from integrations.providers.servicem8 import mapping
from quotes.models import Quote
from quotes.selectors import quote_amounts
from sync.writers import write_records

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parents[1] / "integrations" / "servicem8" / "fixtures"
TZ = ZoneInfo("Australia/Sydney")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _materials(inclusive: bool) -> list[dict]:
    """Two lines of the fixture job, GST 10 %: $559.50 ex-tax, $615.45 with tax (the job's
    total_invoice_amount). Shown inclusive or exclusive, as the account displays prices."""
    first = fixture("jobmaterial__tax_inclusive")  # 1.5 x $120.00 ex-tax ($132.00 with GST)
    second = copy.deepcopy(first)
    second.update(uuid="be0b41d8-0000-4850-84e3-ffc18ea78ea1", name="Hot water unit")
    second.update(quantity="1", price="379.50", displayed_amount="417.45", sort_order="2")
    if not inclusive:
        for line in (first, second):
            line.update(displayed_amount=line["price"], displayed_amount_is_tax_inclusive="0")
    return [first, second]


@pytest.mark.parametrize("inclusive", [True, False], ids=["tax_inclusive", "tax_exclusive"])
def test_a_quote_adds_up_on_either_kind_of_account(integration, inclusive):
    job_raw = fixture("job__quote_sent")
    assert job_raw["total_invoice_amount"] == "615.45"
    records = [
        ExternalClient(
            provider="servicem8",
            external_id=job_raw["company_uuid"],
            raw={"uuid": job_raw["company_uuid"]},
            name="Client",
        ),
        *mapping.job_to_records(job_raw, tz=TZ),
        *(mapping.jobmaterial_to_material(raw, tz=TZ) for raw in _materials(inclusive)),
    ]
    with transaction.atomic():
        result = write_records(integration.pk, records)
    assert not result.held
    quote = Quote.objects.get(integration=integration, external_id=job_raw["uuid"])
    assert quote.prices_include_tax is False
    items = list(quote.line_items.order_by("sort_order"))
    assert [(i.unit_price, i.total) for i in items] == [
        (Decimal("120.00"), Decimal("180.00")),
        (Decimal("379.50"), Decimal("379.50")),
    ]
    amounts = quote_amounts(quote, items)
    assert amounts["subtotal"] == Decimal("559.50")
    assert amounts["tax"] == Decimal("55.95")
    assert amounts["total"] == Decimal("615.45")
    assert amounts["subtotal"] + amounts["tax"] == amounts["total"]
    assert amounts["tax_rate"].quantize(Decimal("0.001")) == Decimal("0.100")
    assert all(isinstance(v, Decimal) for v in amounts.values())
