from dataclasses import dataclass
from typing import Any

from django.db import transaction

from portal.models import Client, ClientMembership, Company, TeamMembership, User


def user_upsert(*, email: str, password: str, **attrs: Any) -> User:
    """Create the user, or reset an existing one's password and attributes."""
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        return User.objects.create_user(email=email, password=password, **attrs)
    for name, value in attrs.items():
        setattr(user, name, value)
    user.set_password(password)
    user.save()
    return user


@dataclass(frozen=True)
class DemoAccounts:
    company: Company
    admin: User
    client_user: User
    client: Client
    password: str


@transaction.atomic
def demo_seed(*, password: str, sandbox_url: str = "") -> DemoAccounts:
    """The demo company for `make run`: a team admin (who is also an operator, so the whole admin
    is open to them), a ServiceM8 integration (pointed at the provider sandbox when
    `sandbox_url` is given, with the sandbox account's API key), one client and a client user.
    Running it again resets the demo passwords and creates nothing twice."""
    from integrations.models import Integration

    company, _ = Company.objects.get_or_create(
        slug="demo-plumbing",
        defaults={"name": "Demo Plumbing & Heating", "timezone": "Australia/Sydney"},
    )
    admin = user_upsert(
        email="admin@demo.fieldbridge.test",
        password=password,
        first_name="Dana",
        last_name="Admin",
        is_staff=True,
        is_superuser=True,
    )
    TeamMembership.objects.update_or_create(
        user=admin, company=company, defaults={"role": TeamMembership.Role.ADMIN}
    )
    integration, _ = Integration.objects.get_or_create(
        company=company,
        provider=Integration.Provider.SERVICEM8,
        environment=Integration.Environment.SANDBOX,
        external_account_id="demo",
        defaults={"name": "ServiceM8 sandbox"},
    )
    if sandbox_url:
        from integrations.sandbox.accounts import (
            SERVICEM8_ACCOUNT,
            SERVICETITAN_APP_KEY,
            SERVICETITAN_TENANT,
        )

        integration.base_url_override = sandbox_url
        integration.credentials = {"api_key": SERVICEM8_ACCOUNT.api_key}
        integration.config = {**(integration.config or {}), "timezone": SERVICEM8_ACCOUNT.timezone}
        integration.save(update_fields=["base_url_override", "credentials", "config", "updated_at"])
        titan, _ = Integration.objects.get_or_create(
            company=company,
            provider=Integration.Provider.SERVICETITAN,
            environment=Integration.Environment.SANDBOX,
            external_account_id=SERVICETITAN_TENANT.tenant_id,
            defaults={"name": "ServiceTitan sandbox"},
        )
        titan.base_url_override = sandbox_url
        titan.credentials = {
            "tenant_id": SERVICETITAN_TENANT.tenant_id,
            "client_id": SERVICETITAN_TENANT.client_id,
            "client_secret": SERVICETITAN_TENANT.client_secret,
            "app_key": SERVICETITAN_APP_KEY,
        }
        titan.save(update_fields=["base_url_override", "credentials", "updated_at"])
    client, _ = Client.objects.get_or_create(
        integration=integration,
        external_id="demo-client-0001",
        defaults={
            "name": "Harbour View Apartments",
            "kind": Client.Kind.COMMERCIAL,
        },
    )
    client_user = user_upsert(
        email="client@demo.fieldbridge.test",
        password=password,
        first_name="Casey",
        last_name="Client",
    )
    ClientMembership.objects.get_or_create(user=client_user, client=client)
    return DemoAccounts(
        company=company, admin=admin, client_user=client_user, client=client, password=password
    )
