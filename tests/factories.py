from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from integrations.models import Integration
from portal.models import Client, ClientMembership, Company, Job, TeamMembership, User
from quotes.models import Quote, QuoteLineItem


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password = factory.django.Password("correct-horse-battery")


class CompanyFactory(DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n}")
    slug = factory.Sequence(lambda n: f"company-{n}")


class TeamMembershipFactory(DjangoModelFactory):
    class Meta:
        model = TeamMembership

    user = factory.SubFactory(UserFactory, is_staff=True)
    company = factory.SubFactory(CompanyFactory)
    role = TeamMembership.Role.ADMIN


class IntegrationFactory(DjangoModelFactory):
    class Meta:
        model = Integration

    company = factory.SubFactory(CompanyFactory)
    provider = Integration.Provider.SERVICEM8
    environment = Integration.Environment.SANDBOX
    external_account_id = factory.Sequence(lambda n: f"account-{n}")
    credentials = factory.LazyFunction(lambda: {"api_key": "smk-test-0000"})


class SyncedFactory(DjangoModelFactory):
    class Meta:
        abstract = True

    integration = factory.SubFactory(IntegrationFactory)
    external_id = factory.Sequence(lambda n: f"ext-{n}")


class ClientFactory(SyncedFactory):
    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Client {n}")


class ClientMembershipFactory(DjangoModelFactory):
    class Meta:
        model = ClientMembership

    user = factory.SubFactory(UserFactory)
    client = factory.SubFactory(ClientFactory)


class JobFactory(SyncedFactory):
    class Meta:
        model = Job

    client = factory.SubFactory(ClientFactory, integration=factory.SelfAttribute("..integration"))
    number = factory.Sequence(lambda n: f"J-{n}")
    summary = "Replace hot water system"
    revenue = Decimal("0.00")


class QuoteFactory(SyncedFactory):
    class Meta:
        model = Quote

    client = factory.SubFactory(ClientFactory, integration=factory.SelfAttribute("..integration"))
    number = factory.Sequence(lambda n: f"Q-{n}")
    status = Quote.Status.SENT
    total = Decimal("100.00")


class QuoteLineItemFactory(SyncedFactory):
    class Meta:
        model = QuoteLineItem

    quote = factory.SubFactory(QuoteFactory, integration=factory.SelfAttribute("..integration"))
    name = "Tempering valve"
