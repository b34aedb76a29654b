"""The standard sandbox accounts and their credentials.

These are fixed, public, test-only values: the sandbox is a loopback emulator and the
credentials below grant access to nothing real. Code that talks to the sandbox (client tests,
the demo, benchmarks) imports them from here instead of repeating the literals.

Each provider has a *primary* account (seeded with data by ``seed.py``) and a *secondary* one
(empty unless a test puts records in it), so that tenant isolation can be tested: a token
issued for one ServiceTitan tenant must be refused on another tenant's URLs.
"""

# The literals below are public, sandbox-only credentials (they unlock nothing real).
# ruff: noqa: S105, S106

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceM8Account:
    """One ServiceM8 account ("vendor") and the credentials that reach it.

    ServiceM8 identifies the account by the credential, not by the URL: an API key belongs to
    one account, and an OAuth access token is issued for one account when its owner approves
    the app (https://developer.servicem8.com/docs/authentication).
    """

    uuid: str
    name: str
    # The sandbox renders ``edit_date`` in this zone (NOTES.md §1: account local time [mem]).
    timezone: str
    api_key: str
    email: str


@dataclass(frozen=True)
class ServiceM8OAuthApp:
    """A registered ServiceM8 OAuth application (one client id/secret pair for all accounts).

    Real apps are registered in the ServiceM8 developer portal; in the sandbox the app is
    fixed and the authorize step auto-approves it for ``account``.
    """

    client_id: str
    client_secret: str
    account_uuid: str


@dataclass(frozen=True)
class ServiceTitanTenant:
    """One ServiceTitan tenant and the client credentials its admin issued to our app.

    Client id and secret are issued per tenant; the app key identifies the app and is the same
    for every tenant (NOTES.md §2, https://developer.servicetitan.io/docs/faqs-app-key-client-id-secret/).
    """

    tenant_id: str
    name: str
    client_id: str
    client_secret: str


# --- ServiceM8 ---------------------------------------------------------------------------------

SERVICEM8_ACCOUNT = ServiceM8Account(
    # A well-formed version-4 UUID (the spec types vendor.uuid as format "uuid").
    uuid="5a4b1c2d-0000-4000-8000-000000005e8a",
    name="Sandbox Plumbing Pty Ltd",
    timezone="Australia/Sydney",
    api_key="sm8-sandbox-api-key",
    email="office@sandbox-plumbing.example",
)
SERVICEM8_SECONDARY_ACCOUNT = ServiceM8Account(
    uuid="5a4b1c2d-0000-4000-8000-000000005e8b",
    name="Sandbox Electrical Pty Ltd",
    timezone="Australia/Perth",
    api_key="sm8-sandbox-api-key-2",
    email="office@sandbox-electrical.example",
)
SERVICEM8_ACCOUNTS: tuple[ServiceM8Account, ...] = (SERVICEM8_ACCOUNT, SERVICEM8_SECONDARY_ACCOUNT)

# The sandbox's OAuth app is installed on the primary account: authorize auto-approves there.
SERVICEM8_OAUTH_APP = ServiceM8OAuthApp(
    client_id="sm8-sandbox-client",
    client_secret="sm8-sandbox-secret",
    account_uuid=SERVICEM8_ACCOUNT.uuid,
)
SERVICEM8_OAUTH_APPS: tuple[ServiceM8OAuthApp, ...] = (SERVICEM8_OAUTH_APP,)

# --- ServiceTitan ------------------------------------------------------------------------------

# One app key for the whole app, whatever the tenant (NOTES.md §2).
SERVICETITAN_APP_KEY = "ak1.sandbox-app-key"

SERVICETITAN_TENANT = ServiceTitanTenant(
    tenant_id="1000001",
    name="Sandbox HVAC Inc.",
    client_id="cid.sandbox-client",
    client_secret="cs1.sandbox-secret",
)
SERVICETITAN_SECONDARY_TENANT = ServiceTitanTenant(
    tenant_id="1000002",
    name="Sandbox Roofing LLC",
    client_id="cid.sandbox-client-2",
    client_secret="cs1.sandbox-secret-2",
)
SERVICETITAN_TENANTS: tuple[ServiceTitanTenant, ...] = (
    SERVICETITAN_TENANT,
    SERVICETITAN_SECONDARY_TENANT,
)


def servicetitan_credentials(tenant: ServiceTitanTenant = SERVICETITAN_TENANT) -> dict[str, str]:
    """What an integration's credentials hold to reach a sandbox tenant."""
    return {
        "tenant_id": tenant.tenant_id,
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "app_key": SERVICETITAN_APP_KEY,
    }


def servicem8_account_by_uuid(account_uuid: str) -> ServiceM8Account | None:
    """Return the ServiceM8 account with this uuid, or None."""
    return next((a for a in SERVICEM8_ACCOUNTS if a.uuid == account_uuid), None)


def servicem8_account_by_api_key(api_key: str) -> ServiceM8Account | None:
    """Return the ServiceM8 account an API key belongs to, or None."""
    return next((a for a in SERVICEM8_ACCOUNTS if a.api_key == api_key), None)


def servicem8_oauth_app(client_id: str) -> ServiceM8OAuthApp | None:
    """Return the registered ServiceM8 OAuth app with this client id, or None."""
    return next((a for a in SERVICEM8_OAUTH_APPS if a.client_id == client_id), None)


def servicetitan_tenant(tenant_id: str) -> ServiceTitanTenant | None:
    """Return the ServiceTitan tenant with this id, or None."""
    return next((t for t in SERVICETITAN_TENANTS if t.tenant_id == tenant_id), None)


def servicetitan_tenant_by_client_id(client_id: str) -> ServiceTitanTenant | None:
    """Return the tenant whose admin issued this client id, or None."""
    return next((t for t in SERVICETITAN_TENANTS if t.client_id == client_id), None)


def describe_accounts() -> list[str]:
    """Human-readable lines listing every sandbox account and credential (for the CLI)."""
    lines = []
    for a in SERVICEM8_ACCOUNTS:
        lines.append(f"ServiceM8 account {a.uuid} ({a.name}, {a.timezone}): X-Api-Key {a.api_key}")
    app = SERVICEM8_OAUTH_APP
    lines.append(
        f"ServiceM8 OAuth app: client_id {app.client_id}, client_secret {app.client_secret} "
        f"(auto-approved for account {app.account_uuid})"
    )
    lines.append(f"ServiceTitan app key (ST-App-Key): {SERVICETITAN_APP_KEY}")
    for t in SERVICETITAN_TENANTS:
        lines.append(
            f"ServiceTitan tenant {t.tenant_id} ({t.name}): client_id {t.client_id}, "
            f"client_secret {t.client_secret}"
        )
    return lines
