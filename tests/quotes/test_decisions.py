"""The quote decision service: one decision, its audit entry and its outbox event in one
transaction; every way a decision can be refused."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from portal.models import AuditLog, TeamMembership
from quotes.models import Quote, QuoteDecision
from quotes.services import (
    QuoteDecisionError,
    quote_approve,
    quote_decision_notify,
    quote_decision_retry_writeback,
    quote_reject,
)
from sync.models import OutboxEvent
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def quote_with_items():
    membership = factories.ClientMembershipFactory()
    client = membership.client
    quote = factories.QuoteFactory(
        integration=client.integration,
        client=client,
        subtotal=Decimal("300.00"),
        tax_total=Decimal("30.00"),
        total=Decimal("330.00"),
        valid_until=timezone.now().date() + timedelta(days=10),
    )
    items = [
        factories.QuoteLineItemFactory(
            integration=client.integration,
            quote=quote,
            name=name,
            total=Decimal(total),
            external_id=f"mat-{n}",
            is_optional=n == 2,
        )
        for n, (name, total) in enumerate(
            [("Valve", "100.00"), ("Labour", "150.00"), ("Tray", "50.00")]
        )
    ]
    return membership.user, quote, items


def test_partial_approval_writes_decision_audit_and_outbox_event_together(quote_with_items):
    user, quote, items = quote_with_items
    decision = quote_approve(
        user=user, quote_id=quote.pk, line_item_ids=[items[0].pk, items[1].pk], notes=" Tuesday "
    )
    quote.refresh_from_db()
    assert quote.status == Quote.Status.PARTIALLY_APPROVED
    assert decision.is_partial and decision.notes == "Tuesday"
    assert set(decision.approved_line_items.all()) == {items[0], items[1]}
    event = decision.outbox_event
    assert event.action == "quote.decide" and event.status == OutboxEvent.Status.PENDING
    assert event.idempotency_key == f"quote-decision:{decision.pk}"
    assert event.payload["approved_line_item_ids"] == ["mat-0", "mat-1"]
    assert event.payload["quote_external_id"] == quote.external_id
    assert event.payload["notes"] == "Tuesday"
    audit = AuditLog.objects.get(action="quote.approve", target_id=str(quote.pk))
    assert audit.actor == user and audit.after["partial"] is True
    assert audit.after["approved_total"] == "250.00"


def test_choosing_every_item_is_a_whole_approval(quote_with_items):
    user, quote, items = quote_with_items
    decision = quote_approve(user=user, quote_id=quote.pk, line_item_ids=[i.pk for i in items])
    assert not decision.is_partial
    assert decision.outbox_event.payload["approved_line_item_ids"] is None
    quote.refresh_from_db()
    assert quote.status == Quote.Status.APPROVED


def test_reject_needs_a_reason_and_records_it(quote_with_items):
    user, quote, _ = quote_with_items
    with pytest.raises(QuoteDecisionError) as refused:
        quote_reject(user=user, quote_id=quote.pk, reason="   ")
    assert refused.value.code == "reason_required" and refused.value.field == "reason"
    assert not QuoteDecision.objects.exists() and not OutboxEvent.objects.exists()
    decision = quote_reject(user=user, quote_id=quote.pk, reason="Too expensive")
    assert decision.outbox_event.payload["rejection_reason"] == "Too expensive"
    quote.refresh_from_db()
    assert quote.status == Quote.Status.REJECTED


def test_a_quote_is_decided_once(quote_with_items):
    user, quote, _ = quote_with_items
    quote_approve(user=user, quote_id=quote.pk)
    Quote.objects.filter(pk=quote.pk).update(status=Quote.Status.SENT)  # even if a sync reopened
    with pytest.raises(QuoteDecisionError) as refused:
        quote_reject(user=user, quote_id=quote.pk, reason="changed my mind")
    assert refused.value.code == "already_decided"
    assert QuoteDecision.objects.count() == 1 and OutboxEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"valid_until": timezone.now().date() - timedelta(days=1)}, "expired"),
        ({"status": Quote.Status.DRAFT}, "not_open"),
        ({"status": Quote.Status.APPROVED}, "not_open"),
    ],
)
def test_expired_or_closed_quotes_cannot_be_decided(quote_with_items, change, code):
    user, quote, _ = quote_with_items
    Quote.objects.filter(pk=quote.pk).update(**change)
    with pytest.raises(QuoteDecisionError) as refused:
        quote_approve(user=user, quote_id=quote.pk)
    assert refused.value.code == code
    assert not QuoteDecision.objects.exists()


@pytest.mark.parametrize(
    ("ids", "code"), [([], "no_items"), (["x"], "unknown_items"), ([999999], "unknown_items")]
)
def test_bad_line_item_choices_are_refused_with_the_field(quote_with_items, ids, code):
    user, quote, _ = quote_with_items
    with pytest.raises(QuoteDecisionError) as refused:
        quote_approve(user=user, quote_id=quote.pk, line_item_ids=ids)
    assert refused.value.code == code and refused.value.field == "line_items"


def test_another_quotes_line_item_is_refused(quote_with_items):
    user, quote, _ = quote_with_items
    other = factories.QuoteLineItemFactory(integration=quote.integration)
    with pytest.raises(QuoteDecisionError):
        quote_approve(user=user, quote_id=quote.pk, line_item_ids=[other.pk])


def test_someone_elses_quote_does_not_exist_for_the_user(quote_with_items):
    _, quote, _ = quote_with_items
    stranger = factories.ClientMembershipFactory().user
    with pytest.raises(Quote.DoesNotExist):
        quote_approve(user=stranger, quote_id=quote.pk)


def test_company_staff_may_decide_for_their_clients_but_not_others(quote_with_items):
    _, quote, _ = quote_with_items
    staff = factories.UserFactory()
    other_company_staff = factories.UserFactory()
    TeamMembership.objects.create(
        user=staff, company=quote.integration.company, role=TeamMembership.Role.DISPATCHER
    )
    TeamMembership.objects.create(
        user=other_company_staff, company=factories.CompanyFactory(), role="admin"
    )
    with pytest.raises(Quote.DoesNotExist):
        quote_approve(user=other_company_staff, quote_id=quote.pk)
    assert quote_approve(user=staff, quote_id=quote.pk).decided_by == staff


def test_the_team_is_emailed_about_the_decision(quote_with_items):
    user, quote, items = quote_with_items
    admin = factories.UserFactory(email="ops@business.test")
    TeamMembership.objects.create(user=admin, company=quote.integration.company, role="admin")
    decision = quote_approve(user=user, quote_id=quote.pk, line_item_ids=[items[1].pk], notes="Hi")
    mail.outbox.clear()
    assert quote_decision_notify(decision_id=decision.pk) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@business.test"]
    assert "partly approved" in message.subject
    assert "Labour" in message.body and "Notes: Hi" in message.body


def test_staff_retry_replays_a_dead_writeback(quote_with_items):
    user, quote, _ = quote_with_items
    decision = quote_approve(user=user, quote_id=quote.pk)
    OutboxEvent.objects.filter(pk=decision.outbox_event_id).update(
        status=OutboxEvent.Status.DEAD, attempts=8, last_error="ProviderError: boom"
    )
    staff = factories.UserFactory()
    TeamMembership.objects.create(user=staff, company=quote.integration.company, role="admin")
    assert quote_decision_retry_writeback(user=staff, decision_id=decision.pk) is True
    event = OutboxEvent.objects.get(pk=decision.outbox_event_id)
    assert event.status == OutboxEvent.Status.PENDING and event.attempts == 0
    assert AuditLog.objects.filter(action="outbox.retry", target_id=str(event.pk)).exists()
    assert quote_decision_retry_writeback(user=staff, decision_id=decision.pk) is False


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_decisions_make_one_decision_and_one_event(quote_with_items):
    """Two threads (two database connections) decide the same quote at the same moment."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    user, quote, items = quote_with_items
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(kind: str) -> None:
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            if kind == "approve":
                quote_approve(user=user, quote_id=quote.pk, line_item_ids=[items[0].pk])
            else:
                quote_reject(user=user, quote_id=quote.pk, reason="no")
            outcomes.append("decided")
        except QuoteDecisionError as exc:
            outcomes.append(exc.code)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=decide, args=(k,)) for k in ("approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["already_decided", "decided"]
    assert QuoteDecision.objects.filter(quote=quote).count() == 1
    assert OutboxEvent.objects.filter(aggregate_id=str(quote.pk)).count() == 1
