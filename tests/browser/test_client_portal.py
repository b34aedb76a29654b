"""The client portal in a real browser (Playwright on Debian's Chromium), against data synced
from the provider sandbox, with decisions written back through the outbox to the sandbox."""

from __future__ import annotations

import pytest
import requests
from django.db.models import Count, Q

from portal.models import ClientMembership
from quotes.models import Quote
from sync.engine import sync_integration
from sync.outbox import outbox_relay
from tests import factories
from tests.browser.support import screenshot, sign_in
from tests.sync.conftest import sandbox, sandbox_clean, sm8_integration  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "correct-horse-battery"
SM8_API = "/servicem8/api_1.0"
SM8_HEADERS = {"X-Api-Key": "sm8-sandbox-api-key"}


def sm8_get(sandbox, path: str, **params):  # noqa: F811
    response = requests.get(
        f"{sandbox.url}{SM8_API}/{path}", params=params, headers=SM8_HEADERS, timeout=10
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture
def portal_world(sm8_integration):  # noqa: F811
    """A synced ServiceM8 account; a client user on the client with the most open quotes that
    have line items, and another client with open quotes that is not theirs."""
    sync_integration(integration_id=sm8_integration.pk, mode="full")
    open_quotes = Q(
        quotes__status=Quote.Status.SENT,
        quotes__remote_deleted_at__isnull=True,
        quotes__line_items__isnull=False,
    )
    clients = list(
        sm8_integration_clients(sm8_integration)
        .annotate(n=Count("quotes", filter=open_quotes, distinct=True))
        .filter(n__gte=1)
        .order_by("-n", "pk")[:2]
    )
    assert len(clients) == 2 and clients[0].n >= 2, "the sandbox seed has open quotes"
    user = factories.UserFactory(first_name="Casey")
    ClientMembership.objects.create(user=user, client=clients[0])
    return {"user": user, "mine": clients[0], "theirs": clients[1]}


def sm8_integration_clients(integration):
    from portal.models import Client

    return Client.objects.filter(integration=integration, remote_deleted_at__isnull=True)


def open_quotes_of(client):
    return list(
        Quote.objects.filter(
            client=client,
            status=Quote.Status.SENT,
            remote_deleted_at__isnull=True,  # a job deleted at ServiceM8 (active 0) is gone
            line_items__isnull=False,
        )
        .distinct()
        .order_by("pk")
    )


def test_sign_in_and_see_only_ones_own_quotes(page, portal_world):
    user, mine, theirs = portal_world["user"], portal_world["mine"], portal_world["theirs"]
    sign_in(page, user.email, PASSWORD)
    page.get_by_role("heading", name="Quotes awaiting your decision").wait_for()
    screenshot(page, "dashboard")
    body = page.content()
    for quote in open_quotes_of(mine):
        assert quote.number in body
    for quote in open_quotes_of(theirs):
        assert quote.number not in body
    page.goto("/quotes/?show=all")
    listed = page.content()
    assert all(q.number not in listed for q in Quote.objects.filter(client=theirs))


def test_partially_approve_with_a_note_and_the_provider_receives_it(
    page,
    portal_world,
    sandbox,  # noqa: F811
):
    user, mine = portal_world["user"], portal_world["mine"]
    quote = open_quotes_of(mine)[0]
    items = list(quote.line_items.filter(remote_deleted_at__isnull=True).order_by("sort_order"))
    assert len(items) >= 2
    sign_in(page, user.email, PASSWORD)
    page.goto(f"/quotes/{quote.pk}/")
    screenshot(page, "quote-before-decision")
    page.get_by_label(items[-1].name, exact=True).uncheck()  # approve all but the last item
    assert f"{len(items) - 1} of {len(items)} items" in page.locator("#selected-total").inner_text()
    page.get_by_label("Notes for").fill("Please come on Tuesday morning")
    page.get_by_role("button", name="Approve selected items…").click()
    page.get_by_role("heading", name=f"Approve {len(items) - 1} of {len(items)} items").wait_for()
    screenshot(page, "quote-confirm")
    page.get_by_role("button", name="Yes, approve").click()
    page.get_by_text("You approved the chosen items").wait_for()
    assert page.locator("[data-writeback]").get_attribute("data-writeback") == "pending"

    assert outbox_relay() == 1  # the relay the outbox task runs, delivering to the sandbox
    page.reload()
    page.get_by_text("Sent to ServiceM8").wait_for()
    screenshot(page, "quote-decided")

    job = sm8_get(sandbox, f"job/{quote.external_id}.json")
    assert job["status"] == "Work Order"
    notes = [
        n["note"]
        for n in sm8_get(
            sandbox, "note.json", **{"$filter": f"related_object_uuid eq '{quote.external_id}'"}
        )
    ]
    assert any("Please come on Tuesday morning" in note for note in notes)
    materials = sm8_get(
        sandbox, "jobmaterial.json", **{"$filter": f"job_uuid eq '{quote.external_id}'"}
    )
    live = {m["uuid"] for m in materials if str(m.get("active", 1)) == "1"}
    assert items[-1].external_id not in live  # the item not approved was set aside
    assert {i.external_id for i in items[:-1]} <= live


def test_reject_a_quote_with_a_reason(page, portal_world, sandbox):  # noqa: F811
    user, mine = portal_world["user"], portal_world["mine"]
    quote = open_quotes_of(mine)[1]
    sign_in(page, user.email, PASSWORD)
    page.goto(f"/quotes/{quote.pk}/")
    page.get_by_role("button", name="Reject the quote…").click()
    # The reason is required: the browser keeps the form until one is given.
    assert page.url.endswith(f"/quotes/{quote.pk}/")
    page.get_by_label("Reason").fill("We found another plumber")
    page.get_by_role("button", name="Reject the quote…").click()
    page.get_by_role("heading", name=f"Reject quote {quote.number}?").wait_for()
    page.get_by_role("button", name="Yes, reject the quote").click()
    page.get_by_text("You rejected the quote").wait_for()
    assert "We found another plumber" in page.content()
    assert outbox_relay() == 1
    assert sm8_get(sandbox, f"job/{quote.external_id}.json")["status"] == "Unsuccessful"


def test_another_clients_quote_is_not_found(page, portal_world):
    user, theirs = portal_world["user"], portal_world["theirs"]
    quote = open_quotes_of(theirs)[0]
    sign_in(page, user.email, PASSWORD)
    response = page.goto(f"/quotes/{quote.pk}/")
    assert response.status == 404
    page.get_by_role("heading", name="Page not found").wait_for()
    assert quote.number not in page.content()
