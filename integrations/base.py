"""The Provider interface, its capabilities, and the normalized records providers return.

Keep it narrow (STYLE.md §5): a provider is a key, a name, capabilities, an HTTP client built
from its auth strategy and URLs, and iterators that map provider records to the frozen
dataclasses below. Providers know nothing of Django models: `integrations.services` builds a
`ProviderContext` from an Integration row and hands it in. Every difference between providers
lives on the provider's class, never in an `if provider == …` elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import urlsplit

from integrations.auth import Auth, MemoryTokenStore, TokenStore
from integrations.exceptions import (
    BudgetExhausted,
    PaginationError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderMalformedResponseError,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from integrations.http import ApiClient, CachePolicy, RetryPolicy
from integrations.ratelimit import RateLimiter, RateWindow


class Capability(StrEnum):
    READ_CLIENTS = "read_clients"
    READ_CONTACTS = "read_contacts"
    READ_LOCATIONS = "read_locations"
    READ_JOBS = "read_jobs"
    READ_QUOTES = "read_quotes"
    READ_STAFF = "read_staff"
    READ_ATTACHMENTS = "read_attachments"
    READ_PRICEBOOK = "read_pricebook"
    WRITE_QUOTE_DECISION = "write_quote_decision"
    WRITE_JOB_CREATE = "write_job_create"
    WRITE_JOB_STATUS = "write_job_status"
    WRITE_PRICEBOOK = "write_pricebook"
    WEBHOOKS = "webhooks"


@dataclass(frozen=True, kw_only=True)
class ExternalRecord:
    """Every normalized record keeps the provider's payload whole in `raw`."""

    provider: str
    external_id: str
    raw: Mapping[str, Any] = field(repr=False)
    remote_updated_at: datetime | None = None
    deleted: bool = False


@dataclass(frozen=True, kw_only=True)
class ExternalClient(ExternalRecord):
    name: str
    kind: str = "unknown"  # residential | commercial | unknown
    email: str = ""
    phone: str = ""
    address: str = ""
    # A ServiceM8 site is a child company; ServiceTitan's merged customers point at the survivor.
    parent_external_id: str | None = None


@dataclass(frozen=True)
class AccountInfo:
    """What a cheap authenticated read says about the account."""

    account_id: str = ""
    name: str = ""
    timezone: str = ""


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    message: str
    latency_ms: int
    account: AccountInfo | None = None


@dataclass(frozen=True)
class ProviderContext:
    """Everything a provider needs about one integration, with no ORM in sight."""

    integration_id: int | str | None
    environment: str = "production"
    base_url_override: str = ""
    credentials: Mapping[str, Any] = field(default_factory=dict, repr=False)
    config: Mapping[str, Any] = field(default_factory=dict)
    token_store: TokenStore = field(default_factory=MemoryTokenStore, repr=False)
    cache_enabled: bool = False
    cache_ttl: int = 300
    rate_limit_enabled: bool = True
    # Whose budget the calls spend: providers limit per account (ServiceM8 per add-on and
    # account, ServiceTitan per app and tenant), so integrations on one account share it.
    rate_limit_key: str = ""
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class Provider:
    """Base class. Subclasses set the ClassVars and implement `build_auth`, `override_urls`
    and `probe`, plus an `iter_*` method for each READ_* capability they declare."""

    key: ClassVar[str]
    name: ClassVar[str]
    docs_url: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    client_class: ClassVar[type[ApiClient]] = ApiClient
    rate_limits: ClassVar[tuple[RateWindow, ...]] = ()
    # environment -> named URLs ("api", "token", "authorize"); see `urls()`.
    environments: ClassVar[dict[str, dict[str, str]]] = {}
    # Required credential keys per auth mode; the first mode whose keys are present is used.
    credential_modes: ClassVar[dict[str, tuple[str, ...]]] = {}
    # What a person should check when the account lacks a permission (scopes, plan…).
    permission_hint: ClassVar[str] = "Check the API user's permissions."
    max_pages: ClassVar[int] = 10_000

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        self._client: ApiClient | None = None

    # -- configuration ----------------------------------------------------------------------

    @classmethod
    def override_urls(cls, root: str) -> dict[str, str]:
        """Subclasses must implement: the provider's URLs under a base-URL override, a server
        (the sandbox, a proxy) that mounts each provider host under a path prefix."""
        raise NotImplementedError(f"{cls.__qualname__} must implement override_urls")

    def urls(self) -> dict[str, str]:
        """Shouldn't need overriding."""
        if self.context.base_url_override:
            return self.override_urls(self.context.base_url_override.rstrip("/"))
        try:
            return self.environments[self.context.environment]
        except KeyError:
            raise ProviderError(
                f"{self.name} has no {self.context.environment!r} environment", provider=self.key
            ) from None

    @classmethod
    def credential_mode(cls, credentials: Mapping[str, Any]) -> str | None:
        for mode, keys in cls.credential_modes.items():
            if all(credentials.get(k) for k in keys):
                return mode
        return None

    @classmethod
    def credential_errors(cls, credentials: Mapping[str, Any]) -> dict[str, str]:
        """Shape check for saving credentials: {} when they fit one of the modes."""
        if cls.credential_mode(credentials):
            return {}
        options = " or ".join("{" + ", ".join(keys) + "}" for keys in cls.credential_modes.values())
        return {"credentials": f"{cls.name} needs {options}."}

    def build_auth(self) -> Auth:
        """Subclasses must implement: the Auth strategy for these credentials."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement build_auth")

    def get_client(self) -> ApiClient:
        """Shouldn't need overriding: one client (one requests session) per provider object."""
        if self._client is None:
            limiter = None
            if self.context.rate_limit_enabled and self.rate_limits:
                limiter = RateLimiter(
                    key=self.context.rate_limit_key or f"{self.key}:{self.context.integration_id}",
                    windows=self.rate_limits,
                    provider=self.key,
                )
            self._client = self.client_class(
                base_url=self.urls()["api"],
                auth=self.build_auth(),
                integration_id=self.context.integration_id,
                limiter=limiter,
                retry=self.context.retry,
                cache_policy=CachePolicy(
                    enabled=self.context.cache_enabled, ttl=self.context.cache_ttl
                ),
                token_store=self.context.token_store,
            )
        return self._client

    # -- operations -------------------------------------------------------------------------

    def probe(self) -> AccountInfo:
        """Subclasses must implement: one cheap authenticated read proving the credentials
        work, returning what it learns about the account. Raises ProviderError subclasses."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement probe")

    def test_connection(self) -> ConnectionTestResult:
        """Shouldn't need overriding. Never raises for ordinary failures: each becomes a
        message a person can act on."""
        started = time.perf_counter()
        try:
            account = self.probe()
        except ProviderError as exc:
            return ConnectionTestResult(
                ok=False, message=self.explain(exc), latency_ms=_ms_since(started)
            )
        label = f" to {account.name}" if account.name else ""
        return ConnectionTestResult(
            ok=True,
            message=f"Connected{label}.",
            latency_ms=_ms_since(started),
            account=account,
        )

    def explain(self, exc: ProviderError) -> str:
        """A message a person can act on, for each kind of failure."""
        try:
            host = urlsplit(self.urls().get("api", "")).netloc
        except ProviderError:
            host = "its API"
        match exc:
            case ProviderAuthError():
                return (
                    f"{self.name} refused the credentials. Check them, or reconnect the "
                    f"integration. ({exc.message})"
                )
            case ProviderPermissionError():
                return (
                    f"Connected to {self.name}, but the account may not do this: "
                    f"{self.permission_hint} ({exc.message})"
                )
            case ProviderTimeoutError() | ProviderConnectionError():
                return f"Could not reach {self.name} at {host}: network error. ({exc.message})"
            case BudgetExhausted():
                return f"{self.name}'s API budget for this account is spent. ({exc.message})"
            case ProviderRateLimitError():
                wait = f" Try again in {exc.retry_after:.0f} s." if exc.retry_after else ""
                return f"{self.name} is rate-limiting this account right now.{wait}"
            case ProviderServerError():
                return f"{self.name} is having problems (HTTP {exc.status}). Try again later."
            case ProviderNotFoundError():
                return (
                    f"{self.name} did not recognise the account or endpoint: check the account "
                    f"or tenant id and the environment. ({exc.message})"
                )
            case ProviderMalformedResponseError() | PaginationError():
                return f"{self.name} gave an unexpected response. ({exc.message})"
            case _:
                return f"{self.name} refused the request. ({exc.message})"

    # Entities this provider reads, in dependency order ("clients", "jobs", "quotes"…).
    entities: ClassVar[tuple[str, ...]] = ()

    def pages(self, entity: str, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        """Subclasses must implement for each of `entities`: the provider's raw records,
        page by page (memory stays bounded), every record or those changed at or after
        `updated_since` (inclusive), deleted ones included. Raises PaginationError when
        paging does not end properly."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement pages")

    def map_record(self, entity: str, raw: dict) -> ExternalRecord:
        """Subclasses must implement: one raw record to its normalized dataclass. Raises
        (KeyError, ValueError…) on a record it cannot map; the sync engine records that as a
        SyncError and goes on."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement map_record")

    def iter_records(
        self, entity: str, *, updated_since: datetime | None = None
    ) -> Iterator[ExternalRecord]:
        """Shouldn't need overriding: `pages` mapped record by record."""
        if entity not in self.entities:
            raise ProviderError(f"{self.name} does not read {entity}", provider=self.key)
        for page in self.pages(entity, updated_since=updated_since):
            for raw in page:
                yield self.map_record(entity, raw)

    def iter_clients(self, *, updated_since: datetime | None = None) -> Iterator[ExternalClient]:
        yield from self.iter_records("clients", updated_since=updated_since)  # type: ignore[misc]


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
