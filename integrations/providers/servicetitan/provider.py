"""ServiceTitan provider.

- API docs: https://developer.servicetitan.io/ ; OpenAPI: shared/provider-specs/servicetitan.
- Auth: OAuth2 client credentials (client id and secret issued per tenant) from
  https://auth.servicetitan.io/connect/token, plus the app's `ST-App-Key` header on every call
  (https://developer.servicetitan.io/docs/get-going-first-api-call). The app key identifies
  our app for every tenant: it comes from the credentials or SERVICETITAN_APP_KEY.
- Environments: production (api/auth.servicetitan.io) and ServiceTitan's integration
  environment (api-integration/auth-integration), chosen by Integration.environment.
- Rate limit: 60 requests a second per app per tenant; 429 with Retry-After.
- Incremental reads: `modifiedOnOrAfter` (inclusive), with `active=Any` so deactivations come
  through (the default, `True`, hides them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar

from integrations.auth import Auth, ClientCredentialsAuth
from integrations.base import AccountInfo, Capability, ExternalRecord, Provider
from integrations.conf import integration_setting
from integrations.exceptions import ProviderAuthError
from integrations.providers.servicetitan import mapping
from integrations.providers.servicetitan.client import MAX_PAGE_SIZE, ServiceTitanClient
from integrations.ratelimit import RateWindow


class ServiceTitanProvider(Provider):
    key = "servicetitan"
    name = "ServiceTitan"
    docs_url = "https://developer.servicetitan.io/"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.READ_CLIENTS})
    client_class = ServiceTitanClient
    rate_limits = (RateWindow(60, 1),)
    environments: ClassVar[dict[str, dict[str, str]]] = {
        "production": {
            "api": "https://api.servicetitan.io",
            "token": "https://auth.servicetitan.io/connect/token",
        },
        "sandbox": {
            "api": "https://api-integration.servicetitan.io",
            "token": "https://auth-integration.servicetitan.io/connect/token",
        },
    }
    credential_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "client_credentials": ("tenant_id", "client_id", "client_secret"),
    }
    permission_hint = (
        "the app is not enabled for this tenant's API scope (CRM, Job Planning, Sales…), or the "
        "tenant's plan does not include it; ask the tenant's admin to grant the app access."
    )
    # entity -> (module, resource)
    resources: ClassVar[dict[str, tuple[str, str]]] = {"clients": ("crm", "customers")}
    entities = tuple(resources)

    @classmethod
    def override_urls(cls, root: str) -> dict[str, str]:
        return {"api": f"{root}/servicetitan", "token": f"{root}/servicetitan-auth/connect/token"}

    @property
    def tenant(self) -> str:
        return str(self.context.credentials.get("tenant_id", ""))

    def build_auth(self) -> Auth:
        credentials = self.context.credentials
        app_key = credentials.get("app_key") or integration_setting(self.key, "APP_KEY", "")
        if not app_key:
            raise ProviderAuthError(
                "servicetitan: no ST-App-Key: set SERVICETITAN_APP_KEY or the app_key credential",
                provider=self.key,
            )
        return ClientCredentialsAuth(
            provider=self.key,
            store=self.context.token_store,
            token_url=self.urls()["token"],
            client_id=credentials.get("client_id", ""),
            client_secret=credentials.get("client_secret", ""),
            extra_headers={"ST-App-Key": app_key},
        )

    def path(self, module: str, resource: str) -> str:
        return f"{module}/v2/tenant/{self.tenant}/{resource}"

    def probe(self) -> AccountInfo:
        # One customer: the cheapest authenticated read of a scope every integration needs.
        self.get_client().get(
            self.path("crm", "customers"), params={"pageSize": 1}, use_cache=False
        ).json()
        return AccountInfo(account_id=self.tenant, name=f"tenant {self.tenant}")

    def pages(self, entity: str, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        params: dict = {"active": "Any"}
        if updated_since is not None:
            params["modifiedOnOrAfter"] = updated_since.astimezone(UTC).isoformat()
        return self.get_client().iter_pages(
            self.path(*self.resources[entity]),
            params=params,
            page_size=int(self.context.config.get("page_size") or MAX_PAGE_SIZE),
            max_pages=self.max_pages,
        )

    def map_record(self, entity: str, raw: dict) -> ExternalRecord:
        match entity:
            case "clients":
                return mapping.customer_to_client(raw)
        raise ValueError(f"servicetitan cannot map {entity}")
