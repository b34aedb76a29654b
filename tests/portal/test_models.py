from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.models import Client, CompanySkill, Job, Skill
from quotes.models import Quote, QuoteDecision
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "factory", [factories.ClientFactory, factories.JobFactory, factories.QuoteFactory]
)
def test_database_rejects_duplicate_external_id_within_an_integration(factory, integration):
    factory(integration=integration, external_id="abc-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(integration=integration, external_id="abc-1")


def test_same_external_id_in_two_integrations_is_two_rows(company):
    first = factories.IntegrationFactory(company=company)
    second = factories.IntegrationFactory(company=company)
    factories.ClientFactory(integration=first, external_id="same")
    factories.ClientFactory(integration=second, external_id="same")
    assert Client.objects.filter(external_id="same").count() == 2


def test_empty_external_id_is_rejected(integration):
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.create(integration=integration, external_id="", name="x")


def test_money_round_trips_as_exact_decimal(integration):
    job = factories.JobFactory(integration=integration, revenue=Decimal("1234567.89"))
    quote = factories.QuoteFactory(
        integration=integration,
        subtotal=Decimal("0.10"),
        tax_total=Decimal("0.20"),
        total=Decimal("0.30"),
    )
    item = factories.QuoteLineItemFactory(
        quote=quote,
        integration=integration,
        quantity=Decimal("2.5"),
        unit_price=Decimal("19.99"),
        total=Decimal("49.98"),
    )
    job.refresh_from_db()
    quote.refresh_from_db()
    item.refresh_from_db()
    assert isinstance(job.revenue, Decimal) and job.revenue == Decimal("1234567.89")
    assert isinstance(quote.total, Decimal)
    assert quote.subtotal + quote.tax_total == quote.total  # 0.1 + 0.2 == 0.3, unlike float
    assert item.quantity * item.unit_price == Decimal("49.975")
    assert Job.objects.values_list("revenue", flat=True).get(pk=job.pk) == Decimal("1234567.89")


def test_job_schedule_must_end_after_it_starts(integration):
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.JobFactory(
            integration=integration, scheduled_start=now, scheduled_end=now - timedelta(hours=1)
        )


def test_job_status_outside_the_unified_set_is_rejected(integration):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.JobFactory(integration=integration, status="Work Order")


def test_quote_currency_must_be_an_iso_code(integration):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.QuoteFactory(integration=integration, currency="usd")


def test_company_skill_level_is_constrained(company):
    skill = Skill.objects.create(name="Water heaters", slug="water-heaters")
    CompanySkill.objects.create(company=company, skill=skill, level=CompanySkill.Level.EXPERT)
    with pytest.raises(IntegrityError), transaction.atomic():
        CompanySkill.objects.create(company=company, skill=skill, level="basic")
    other = factories.CompanyFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        CompanySkill.objects.create(company=other, skill=skill, level="guru")


def _decision(quote, user, **kwargs):
    return QuoteDecision.objects.create(
        quote=quote, decided_by=user, decided_at=timezone.now(), **kwargs
    )


def test_a_quote_has_at_most_one_decision_in_force(integration):
    quote = factories.QuoteFactory(integration=integration)
    user = factories.UserFactory()
    first = _decision(quote, user, decision="approve")
    with pytest.raises(IntegrityError), transaction.atomic():
        _decision(quote, user, decision="reject", rejection_reason="Too dear")
    first.voided_at = timezone.now()
    first.save()
    _decision(quote, user, decision="reject", rejection_reason="Too dear")
    assert quote.decisions.count() == 2


def test_a_rejection_needs_a_reason_and_an_approval_has_none(integration):
    quote = factories.QuoteFactory(integration=integration)
    user = factories.UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        _decision(quote, user, decision="reject", rejection_reason="")
    with pytest.raises(IntegrityError), transaction.atomic():
        _decision(quote, user, decision="approve", rejection_reason="why not")


def test_email_is_unique_whatever_its_case():
    factories.UserFactory(email="Pat@Example.test")
    from portal.models import User

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="pat@example.TEST")


def test_quote_status_choices_match_the_product_design():
    assert [s.value for s in Quote.Status] == [
        "draft",
        "sent",
        "approved",
        "partially_approved",
        "rejected",
        "expired",
        "cancelled",
    ]
