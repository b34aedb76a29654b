"""Fixtures for the API tests: two tenants with one of everything, users of each role, and
API tokens. Everything that belongs to another tenant than the callers' carries FOREIGN in
its names, so a test can tell whether a response leaked any of it (SIBLING: another client of the
callers' company, which its staff see and its other clients' users do not)."""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portal.api.tokens import api_token_create
from portal.models import Attachment, Contact, JobActivity, JobMaterial, Staff
from quotes.models import Quote
from tests import factories

FOREIGN = "FOREIGN"  # another company's
SIBLING = "SIBLING"  # another client's of the same company


@pytest.fixture(autouse=True)
def _api_throttle(settings):
    """Generous limits and counters of this test's own (the cache is shared with other runs);
    throttling tests lower the rates themselves."""
    settings.API_THROTTLE_RATE = "100000/minute"
    settings.API_THROTTLE_WRITE_RATE = "100000/minute"
    settings.API_THROTTLE_CACHE_PREFIX = f"api-throttle-test-{uuid.uuid4().hex}"


@dataclass
class Tenant:
    """One company's world: an integration, a client with a job and a quote, and so on."""

    company: object
    integration: object
    client: object
    job: object
    quote: object
    contact: object
    staff: object
    line_items: list = field(default_factory=list)


def make_tenant(label: str, *, company=None, integration=None) -> Tenant:
    company = company or factories.CompanyFactory(name=f"{label} company")
    integration = integration or factories.IntegrationFactory(company=company, name=f"{label} int")
    client = factories.ClientFactory(integration=integration, name=f"{label} client")
    job = factories.JobFactory(
        integration=integration,
        client=client,
        summary=f"{label} job",
        scheduled_start=timezone.now() + timedelta(days=1),
    )
    quote = factories.QuoteFactory(
        integration=integration,
        client=client,
        job=job,
        title=f"{label} quote",
        valid_until=timezone.now().date() + timedelta(days=30),
        sent_at=timezone.now(),
    )
    items = [
        factories.QuoteLineItemFactory(
            integration=integration, quote=quote, name=f"{label} item {n}", total=Decimal("50")
        )
        for n in range(2)
    ]
    contact = Contact.objects.create(
        integration=integration,
        external_id=f"c-{uuid.uuid4().hex}",
        client=client,
        first_name=f"{label} contact",
    )
    staff = Staff.objects.create(
        integration=integration, external_id=f"s-{uuid.uuid4().hex}", first_name=f"{label} tech"
    )
    activity = JobActivity.objects.create(
        integration=integration,
        external_id=f"a-{uuid.uuid4().hex}",
        job=job,
        notes=f"{label} visit",
    )
    activity.staff.add(staff)
    JobMaterial.objects.create(
        integration=integration,
        external_id=f"m-{uuid.uuid4().hex}",
        job=job,
        name=f"{label} pipe",
    )
    Attachment.objects.create(
        integration=integration,
        external_id=f"f-{uuid.uuid4().hex}",
        job=job,
        file_name=f"{label}.pdf",
    )
    return Tenant(company, integration, client, job, quote, contact, staff, items)


@dataclass
class World:
    home: Tenant  # the callers' company, and the client user's client
    sibling: Tenant  # another client of the same company: staff see it, the client user not
    foreign: Tenant  # another company altogether
    client_user: object
    staff_user: object


@pytest.fixture
def world() -> World:
    home = make_tenant("home")
    sibling = make_tenant(f"{SIBLING}-client", company=home.company, integration=home.integration)
    foreign = make_tenant(f"{FOREIGN}-other")
    client_user = factories.ClientMembershipFactory(client=home.client).user
    staff_user = factories.TeamMembershipFactory(company=home.company).user
    # Someone in the other tenant too, so the data is not trivially unreachable.
    factories.ClientMembershipFactory(client=foreign.client)
    factories.TeamMembershipFactory(company=foreign.company)
    return World(home, sibling, foreign, client_user, staff_user)


def token_client(user) -> APIClient:
    _token, raw = api_token_create(user=user, name="tests")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


@pytest.fixture
def client_api(world) -> APIClient:
    return token_client(world.client_user)


@pytest.fixture
def staff_api(world) -> APIClient:
    return token_client(world.staff_user)


def quote_awaiting(tenant: Tenant) -> Quote:
    return factories.QuoteFactory(
        integration=tenant.integration,
        client=tenant.client,
        valid_until=timezone.now().date() + timedelta(days=30),
    )
