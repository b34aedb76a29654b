"""Quote decisions from the portal's service to each sandbox provider and back: the outbox
delivers, the provider's state changes, the next sync brings the new status home."""

import pytest

from portal.models import ClientMembership
from quotes.models import Quote
from quotes.services import quote_approve, quote_reject
from sync.engine import sync_integration
from sync.models import OutboxEvent
from sync.outbox import outbox_relay
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def awaiting_with_items(integration, at_least=2):
    quotes = [
        q
        for q in Quote.objects.filter(integration=integration, status=Quote.Status.SENT)
        .exclude(client=None)
        .order_by("pk")
        if q.line_items.filter(remote_deleted_at__isnull=True).count() >= at_least
    ]
    assert len(quotes) >= 2, "the sandbox seed has open quotes with items"
    return quotes


@pytest.mark.parametrize("provider", ["servicem8", "servicetitan"])
def test_partial_approval_and_rejection_reach_the_provider_and_come_back(
    provider,
    sm8_integration,
    st_integration,
):
    integration = sm8_integration if provider == "servicem8" else st_integration
    if provider == "servicetitan":
        integration.config = {**integration.config, "sold_by_technician_id": 7001}
        integration.save()
    sync_integration(integration_id=integration.pk, mode="full")
    first, second = awaiting_with_items(integration)[:2]
    user = factories.UserFactory()
    ClientMembership.objects.create(user=user, client=first.client)
    ClientMembership.objects.create(user=user, client=second.client)
    items = list(first.line_items.filter(remote_deleted_at__isnull=True).order_by("pk"))
    kept = [item.pk for item in items[:-1]]

    quote_approve(user=user, quote_id=first.pk, line_item_ids=kept, notes="Tuesday please")
    quote_reject(user=user, quote_id=second.pk, reason="Too dear")
    assert outbox_relay() == 2
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {"sent"}, list(
        OutboxEvent.objects.values_list("last_error", flat=True)
    )

    sync_integration(integration_id=integration.pk, mode="full")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Quote.Status.APPROVED  # the provider's own status, synced back
    assert second.status == Quote.Status.REJECTED
    live = set(first.line_items.filter(remote_deleted_at__isnull=True).values_list("pk", flat=True))
    assert live == set(kept)  # the item not approved was removed at the provider


def test_two_simultaneous_decisions_change_the_provider_once(sm8_integration, sandbox):
    """Two browsers (two threads, two connections) decide one quote at the same moment: one
    decision, one outbox event, and the ServiceM8 job is written once, even when the relay
    runs twice."""
    import threading

    from quotes.models import QuoteDecision
    from quotes.services import QuoteDecisionError
    from tests.sync.conftest import sandbox_stats

    sync_integration(integration_id=sm8_integration.pk, mode="full")
    quote = awaiting_with_items(sm8_integration)[0]
    user = factories.UserFactory()
    ClientMembership.objects.create(user=user, client=quote.client)
    barrier = threading.Barrier(2)
    outcomes = []

    def decide(kind):
        from django.db import connection

        try:
            barrier.wait()
            if kind == "approve":
                quote_approve(user=user, quote_id=quote.pk, notes="first")
            else:
                quote_reject(user=user, quote_id=quote.pk, reason="second")
            outcomes.append("decided")
        except QuoteDecisionError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(k,)) for k in ("approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["already_decided", "decided"]
    assert QuoteDecision.objects.filter(quote=quote).count() == 1
    assert OutboxEvent.objects.count() == 1
    assert outbox_relay() == 1
    assert outbox_relay() == 0  # nothing left to send
    applied = sandbox_stats(sandbox, "servicem8").get("writes_applied", {})
    assert applied.get(f"job/{quote.external_id}") == 1


def test_a_partial_approval_leaves_items_added_after_the_client_saw_the_quote(
    sm8_integration, sandbox
):
    """The decision carries the items the client was shown; a material added at ServiceM8
    between the decision and its delivery is not set aside with the ones the client refused."""
    import requests

    sync_integration(integration_id=sm8_integration.pk, mode="full")
    quote = awaiting_with_items(sm8_integration)[0]
    user = factories.UserFactory()
    ClientMembership.objects.create(user=user, client=quote.client)
    items = list(quote.line_items.filter(remote_deleted_at__isnull=True).order_by("pk"))
    kept = [item.pk for item in items[:-1]]

    decision = quote_approve(user=user, quote_id=quote.pk, line_item_ids=kept)
    payload = decision.outbox_event.payload
    assert sorted(payload["shown_line_item_ids"]) == sorted(item.external_id for item in items)
    later = requests.post(
        f"{sandbox.url}/servicem8/api_1.0/jobmaterial.json",
        json={"job_uuid": quote.external_id, "name": "Added later", "quantity": "1"},
        headers={"X-Api-Key": "sm8-sandbox-api-key"},
        timeout=10,
    ).headers["x-record-uuid"]
    assert outbox_relay() == 1
    assert OutboxEvent.objects.get().status == "sent", OutboxEvent.objects.get().last_error

    sync_integration(integration_id=sm8_integration.pk, mode="full")
    live = set(
        quote.line_items.filter(remote_deleted_at__isnull=True).values_list(
            "external_id", flat=True
        )
    )
    assert live == {item.external_id for item in items[:-1]} | {later}
