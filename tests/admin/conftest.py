"""Two companies, each with an integration holding a recognisable secret, a team admin, a
dispatcher, and an operator (superuser). Nobody but the operator has Django permissions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.conf import settings

from integrations.models import Integration
from portal.models import Company, TeamMembership, User
from tests import factories

PASSWORD = "correct-horse-battery"  # noqa: S105 - the factories' test password
SECRET_A = "sm8-secret-key-of-company-a-7f3a"  # noqa: S105
SECRET_B = "sm8-secret-key-of-company-b-9c1d"  # noqa: S105
ADMIN_URL = "/" + settings.ADMIN_URL


@dataclass
class Tenant:
    company: Company
    integration: Integration
    admin: User
    dispatcher: User


def make_tenant(name: str, secret: str) -> Tenant:
    company = factories.CompanyFactory(name=name)
    integration = factories.IntegrationFactory(
        company=company, name=f"{name} ServiceM8", credentials={"api_key": secret}
    )
    admin = factories.TeamMembershipFactory(company=company, role=TeamMembership.Role.ADMIN).user
    dispatcher = factories.TeamMembershipFactory(
        company=company, role=TeamMembership.Role.DISPATCHER
    ).user
    return Tenant(company, integration, admin, dispatcher)


@pytest.fixture
def tenant_a(db) -> Tenant:
    return make_tenant("Acme Plumbing", SECRET_A)


@pytest.fixture
def tenant_b(db) -> Tenant:
    return make_tenant("Bravo Heating", SECRET_B)


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_superuser(email="ops@fieldbridge.test", password=PASSWORD)


@pytest.fixture
def admin_a(client, tenant_a):
    client.force_login(tenant_a.admin)
    return client


def admin_url(path: str) -> str:
    return f"{ADMIN_URL}{path}"


def change_url(obj) -> str:
    return admin_url(f"{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/change/")


def changelist_url(model) -> str:
    return admin_url(f"{model._meta.app_label}/{model._meta.model_name}/")
