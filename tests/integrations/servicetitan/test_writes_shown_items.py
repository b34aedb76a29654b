"""ServiceTitan `quote.decide`, partial approvals and the items the client was shown
(`shown_line_item_ids`): only shown items not approved are deleted before the sale; an item
added to the estimate after the client saw it is left. Uses test_writes.py's fake (every
request checked against the spec)."""

from __future__ import annotations

import pytest

from integrations.exceptions import ProviderValidationError
from tests.integrations.servicetitan.test_writes import (
    TECH,
    fake,
    item_ids,
    payload,
    provider,
    specs,
    writes_sent,
)

__all__ = ["fake", "specs"]  # the fixtures, shared with test_writes


def test_only_shown_items_not_approved_are_deleted(fake):
    keep, refused, *later = item_ids(fake)
    assert later, "the fixture estimate has at least three items"
    result = provider().perform(
        "quote.decide",
        payload(approved_line_item_ids=[keep], shown_line_item_ids=[keep, refused, "999"]),
        idempotency_key="evt-shown-1",
    )
    assert result["removed_items"] == [refused]  # "999": shown, gone since; nothing to do
    assert item_ids(fake) == [keep, *later] and fake.status == "Sold"
    assert writes_sent(fake) == [f"DELETE {refused}", "PUT sell", "POST notes"]


def test_an_estimate_sold_with_items_added_later_is_not_a_conflict(fake):
    keep, refused, *later = item_ids(fake)
    fake.estimate["items"] = [i for i in fake.estimate["items"] if str(i["id"]) != refused]
    fake.estimate.update(status={"value": 1, "name": "Sold"}, soldBy=TECH)
    result = provider().perform(
        "quote.decide",
        payload(approved_line_item_ids=[keep], shown_line_item_ids=[keep, refused]),
        idempotency_key="evt-shown-2",
    )
    assert result["already_done"] is True and result["removed_items"] == []
    assert item_ids(fake) == [keep, *later]


def test_an_unsupported_mode_names_the_setting(fake):
    keep = item_ids(fake)[0]
    with pytest.raises(ProviderValidationError) as refused:
        provider(config={"sold_by_technician_id": TECH, "unapproved_items": "mark"}).perform(
            "quote.decide", payload(approved_line_item_ids=[keep]), idempotency_key="evt-shown-3"
        )
    assert list(refused.value.field_errors) == ["unapproved_items"]
    assert writes_sent(fake) == []
