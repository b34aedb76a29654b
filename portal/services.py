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
            SERVICETITAN_TENANT,
            servicetitan_credentials,
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
        titan.credentials = servicetitan_credentials()
        # Estimates are sold "by" a technician (issue #5); the sandbox's first active one.
        titan.config = {**(titan.config or {}), "sold_by_technician_id": 7001}
        titan.save(update_fields=["base_url_override", "credentials", "config", "updated_at"])
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


def invitation_user(uidb64: str) -> User | None:
    """The user an invitation or password-reset link names, or None."""
    from django.utils.http import urlsafe_base64_decode

    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    return User.objects.filter(pk=pk, is_active=True).first()


def client_user_invite(
    *, client: Client, email: str, invited_by: User | None, base_url: str
) -> tuple[User, str]:
    """Give `email` access to `client` and email them a one-time link to choose a password.
    An existing user is added to the client (and still gets the link, so they can sign in).
    Returns the user and the link. Recorded in the AuditLog."""
    from django.contrib.auth.tokens import default_token_generator
    from django.core.exceptions import ValidationError
    from django.core.mail import send_mail
    from django.core.validators import validate_email
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from portal.models import AuditLog

    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address."}) from None
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        created = user is None
        if created:
            user = User.objects.create_user(email=email, password=None)
        _, added = ClientMembership.objects.get_or_create(user=user, client=client)
        AuditLog.objects.create(
            company=client.integration.company,
            actor=invited_by,
            action="client_user.invite",
            target_type="client",
            target_id=str(client.pk),
            target_repr=client.name[:255],
            after={"email": email, "new_user": created, "membership_added": added},
        )
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = base_url.rstrip("/") + reverse(
        "portal:invitation-accept", kwargs={"uidb64": uid, "token": token}
    )
    company = client.integration.company.name
    transaction.on_commit(
        lambda: send_mail(
            subject=f"{company} invited you to see your jobs and quotes",
            message=(
                f"{company} uses Fieldbridge to share jobs and quotes with {client.name}.\n\n"
                f"Choose a password to sign in (this link works once):\n{link}\n"
            ),
            from_email=None,
            recipient_list=[email],
        )
    )
    return user, link
