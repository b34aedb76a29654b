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
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple
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
    ProviderValidationError,
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


def record(cls: type) -> type:
    """`@dataclass(frozen=True, kw_only=True)` for a normalized record, with an `__init__`
    that fills the instance in one step. The one dataclasses writes for a frozen class calls
    `object.__setattr__` once a field: ~4.4 µs for a ServiceM8 material against ~1.1, and a
    sync builds a record or two for every row it writes (~3 s of the worker's ~28 s of CPU in
    the benchmark's first full sync). The instance stays frozen (assigning to it afterwards
    raises FrozenInstanceError), with the same signature, defaults, equality, hash and repr.
    A class with a default factory, a non-init field or `__post_init__` keeps the generated
    `__init__`."""
    cls = dataclass(frozen=True, kw_only=True)(cls)
    own = fields(cls)
    if any(not f.init or f.default_factory is not MISSING for f in own) or hasattr(
        cls, "__post_init__"
    ):
        return cls  # (what the generated __init__ does for these, this one would not)
    defaults = {f"_default_{f.name}": f.default for f in own if f.default is not MISSING}
    params = ", ".join(
        f"{f.name}=_default_{f.name}" if f.default is not MISSING else f.name for f in own
    )
    filled = ", ".join(f"{f.name!r}: {f.name}" for f in own)
    namespace = {**defaults, "_set": object.__setattr__}
    source = f"def __init__(self, *, {params}):\n    _set(self, '__dict__', {{{filled}}})\n"
    # (source built above from the class's own field names)
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init
    return cls


@record
class ExternalRecord:
    """Every normalized record keeps the provider's payload whole in `raw`."""

    provider: str
    external_id: str
    raw: Mapping[str, Any] = field(repr=False)
    remote_updated_at: datetime | None = None
    deleted: bool = False


@record
class ExternalClient(ExternalRecord):
    name: str
    kind: str = "unknown"  # residential | commercial | unknown
    email: str = ""
    phone: str = ""
    address: str = ""
    # The head office of a site (a ServiceM8 child company): its client users see this client's
    # jobs too. Never a merge (ServiceTitan's `mergedToId` stays in `raw`).
    parent_external_id: str | None = None


@record
class ExternalContact(ExternalRecord):
    client_external_id: str | None = None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    mobile: str = ""
    role: str = ""
    is_primary: bool = False


@record
class ExternalStaff(ExternalRecord):
    kind: str = "technician"  # technician | employee
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    title: str = ""
    is_active: bool = True


@record
class ExternalJob(ExternalRecord):
    """`status` is one of the unified job statuses (PRODUCT.md); `provider_status` keeps the
    provider's own word. An unknown provider status maps to "pending" and is kept as is."""

    client_external_id: str | None = None
    number: str = ""
    summary: str = ""
    description: str = ""
    status: str = "pending"
    provider_status: str = ""
    priority: str = "normal"
    category: str = ""
    address: str = ""
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    completed_at: datetime | None = None
    revenue: Decimal = Decimal("0.00")


@record
class ExternalLineItem(ExternalRecord):
    quote_external_id: str
    name: str
    description: str = ""
    quantity: Decimal = Decimal("1")
    unit_price: Decimal = Decimal("0.00")
    total: Decimal = Decimal("0.00")
    is_optional: bool = False
    sort_order: int = 0


@record
class ExternalQuote(ExternalRecord):
    """`status` is a unified quote status. When the provider embeds the items in the quote
    (ServiceTitan estimates), `line_items` holds all of them, and items missing from it are
    gone; `None` means the items come as their own entity (ServiceM8 jobmaterials)."""

    client_external_id: str | None = None
    job_external_id: str | None = None
    number: str = ""
    title: str = ""
    status: str = "draft"
    provider_status: str = ""
    subtotal: Decimal = Decimal("0.00")
    tax_total: Decimal = Decimal("0.00")
    total: Decimal = Decimal("0.00")
    prices_include_tax: bool = False
    currency: str = "USD"
    valid_until: date | None = None
    sent_at: datetime | None = None
    line_items: tuple[ExternalLineItem, ...] | None = None


@record
class ExternalJobMaterial(ExternalRecord):
    """A material on a job. `quote_external_id`, when set, names the quote this material is
    also a line item of, should that quote exist (a ServiceM8 quote is the job itself)."""

    job_external_id: str
    name: str
    description: str = ""
    quantity: Decimal = Decimal("1")
    unit_price: Decimal = Decimal("0.00")
    total: Decimal = Decimal("0.00")
    sort_order: int = 0
    quote_external_id: str | None = None


@record
class ExternalJobActivity(ExternalRecord):
    """A visit on a job: when it is scheduled and who works it. `staff_external_ids` are the
    external ids of the ExternalStaff assigned (all of them: ones not synced are ignored when
    writing). `status` is the provider's own word for the visit ("Scheduled", "Done"…)."""

    job_external_id: str
    staff_external_ids: tuple[str, ...] = ()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: str = ""
    notes: str = ""


@record
class ExternalAttachment(ExternalRecord):
    """A file's metadata on a job (never its bytes). `provider_reference` is what
    `Provider.attachment_download` takes to fetch the file through the provider's API: an id,
    never a URL (a provider's file URLs can carry credentials). `size_bytes` is None when the
    provider does not say."""

    job_external_id: str
    file_name: str
    content_type: str = ""
    size_bytes: int | None = None
    provider_reference: str = ""


@record
class ExternalLocation(ExternalRecord):
    """A service address of a client (ServiceTitan location; a ServiceM8 site is a client)."""

    client_external_id: str | None = None
    name: str = ""
    street: str = ""
    street2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    latitude: Decimal | None = None
    longitude: Decimal | None = None


@record
class ExternalJobContact(ExternalRecord):
    """A person named on one job (ServiceM8 jobcontact); `role` is the provider's type word."""

    job_external_id: str
    role: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    mobile: str = ""


@record
class ExternalNote(ExternalRecord):
    """A note on a job or on a client (at least one of the two ids is set)."""

    job_external_id: str | None = None
    client_external_id: str | None = None
    body: str = ""
    author: str = ""
    noted_at: datetime | None = None


@record
class ExternalReference(ExternalRecord):
    """A lookup or configuration object (ReferenceRecord): `kind` names it (job_type,
    business_unit, tax_rate…), and `external_id` must be "<kind>:<provider id>"."""

    kind: str
    name: str = ""
    code: str = ""
    is_active: bool = True
    parent_external_id: str = ""


@record
class ExternalPricebookCategory(ExternalRecord):
    """A pricebook category; `parent_external_id` is its parent category's, for subcategories."""

    name: str
    parent_external_id: str | None = None
    kind: str = ""
    is_active: bool = True
    sort_order: int = 0


@record
class ExternalPricebookItem(ExternalRecord):
    """`kind` is material | service | equipment | discount_fee; `category_external_ids` are its
    categories' external ids (ones not synced are ignored when writing)."""

    kind: str
    code: str = ""
    name: str = ""
    description: str = ""
    unit_price: Decimal = Decimal("0.00")
    cost: Decimal | None = None
    unit: str = ""
    is_taxable: bool = True
    is_active: bool = True
    category_external_ids: tuple[str, ...] = ()


@record
class ExternalInvoiceItem(ExternalRecord):
    invoice_external_id: str
    name: str = ""
    description: str = ""
    quantity: Decimal = Decimal("1")
    unit_price: Decimal = Decimal("0.00")
    total: Decimal = Decimal("0.00")
    sort_order: int = 0


@record
class ExternalInvoice(ExternalRecord):
    """An invoice; its items come as separate ExternalInvoiceItem records in the same mapped
    tuple (items an invoice no longer has are swept by the next full run)."""

    client_external_id: str | None = None
    job_external_id: str | None = None
    number: str = ""
    status: str = ""
    issued_on: date | None = None
    due_on: date | None = None
    subtotal: Decimal = Decimal("0.00")
    tax_total: Decimal = Decimal("0.00")
    total: Decimal = Decimal("0.00")
    balance: Decimal = Decimal("0.00")


@record
class ExternalPayment(ExternalRecord):
    client_external_id: str | None = None
    invoice_external_id: str | None = None
    amount: Decimal = Decimal("0.00")
    paid_on: date | None = None
    method: str = ""
    payment_reference: str = ""
    status: str = ""


class AttachmentContent(NamedTuple):
    """A file being downloaded: `chunks` streams the bytes (close it, or read it to the end,
    to release the connection); `size` is None when the provider does not say."""

    content_type: str
    chunks: Iterator[bytes]
    size: int | None


class AttachmentDownloadUnsupported(ProviderError):
    """The provider has no way to download attachments."""


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

    # What a partial quote approval may do with the items the client did not approve
    # (Integration.config["unapproved_items"]); empty when the provider takes no decisions.
    unapproved_items_modes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def config_errors(cls, config: Mapping[str, Any]) -> dict[str, str]:
        """Check the integration's settings (Integration.config) when they are edited:
        {setting: message} for each bad one."""
        modes = cls.unapproved_items_modes
        if not modes or "unapproved_items" not in config:
            return {}
        mode = config["unapproved_items"]
        if mode in modes:
            return {}
        return {
            "unapproved_items": f"must be one of: {', '.join(modes)} (got {mode!r}): what a "
            "partial approval does with the items the client did not approve."
        }

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

    def estimated_total(self, entity: str) -> int | None:
        """Optional: how many raw records a full read of `entity` (`pages` without
        `updated_since`) will return, when the provider's API says so cheaply (a call or two);
        None when it does not (the default). Only progress bars and ETAs use it: it may be
        slightly off (records change while a sync runs) and may raise provider errors."""
        return None

    def map_record(self, entity: str, raw: dict) -> ExternalRecord | tuple[ExternalRecord, ...]:
        """Subclasses must implement: one raw record to its normalized dataclass, or to several
        (a ServiceM8 quote is a job: it yields an ExternalJob and an ExternalQuote). Raises
        (KeyError, ValueError…) on a record it cannot map; the sync engine records that as a
        SyncError and goes on."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement map_record")

    def record_types(self, entity: str) -> tuple[type[ExternalRecord], ...]:
        """The normalized types an entity's raw records map to. After a complete full run the
        sync engine marks as deleted every local row of these types it did not see. Override
        when an entity maps to more (a ServiceM8 job is also a quote)."""
        return DEFAULT_RECORD_TYPES[entity]

    def sweep_scope(self, entity: str, record_type: type[ExternalRecord]) -> dict[str, Any]:
        """Extra filters limiting a full run's sweep of `record_type`'s table to this entity's
        rows, for a table that several entities write (ReferenceRecord: one entity per kind;
        PricebookItem: one entity per kind). Default: the whole table is the entity's."""
        return {}

    def record_id(self, entity: str, raw: dict) -> str:
        """The provider's id of a raw record, even one `map_record` cannot map (for the
        SyncError). Override when the id is not under "uuid" or "id"."""
        return str(raw.get("uuid") or raw.get("id") or "")

    def fetch_record(self, entity: str, external_id: str) -> dict | None:
        """Subclasses with webhooks must implement: one raw record by id, for a targeted
        re-fetch; None when the provider no longer has it (then it is deleted)."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement fetch_record")

    # Outbox actions this provider performs: action name -> method name. Each method takes
    # the event's payload and idempotency key, and must read the provider's state first and
    # skip what is already done, so that a re-delivered event changes the provider once.
    actions: ClassVar[dict[str, str]] = {}

    def perform(self, action: str, payload: dict, *, idempotency_key: str) -> dict:
        """Shouldn't need overriding: run one outbox action; returns what to keep as the
        event's response. Raises ProviderError subclasses (validation errors are final)."""
        method = self.actions.get(action)
        if method is None:
            raise ProviderValidationError(
                f"{self.name} cannot perform {action!r}", provider=self.key
            )
        return getattr(self, method)(payload, idempotency_key=idempotency_key)

    # Seconds re-read before the cursor on each incremental run, for writes that become
    # visible late and clocks that disagree (providers override with their own figure).
    cursor_lookback_seconds: ClassVar[int] = 300

    def iter_records(
        self, entity: str, *, updated_since: datetime | None = None
    ) -> Iterator[ExternalRecord]:
        """Shouldn't need overriding: `pages` mapped record by record."""
        if entity not in self.entities:
            raise ProviderError(f"{self.name} does not read {entity}", provider=self.key)
        for page in self.pages(entity, updated_since=updated_since):
            for raw in page:
                mapped = self.map_record(entity, raw)
                yield from mapped if isinstance(mapped, tuple) else (mapped,)

    def attachment_download(self, reference: str) -> AttachmentContent:
        """Subclasses with READ_ATTACHMENTS implement: the file an ExternalAttachment's
        `provider_reference` names, streamed through the provider's API (credentials stay in
        the request headers, never in a URL anyone else sees). Raises ProviderError
        subclasses: ProviderNotFoundError when the provider no longer has it."""
        raise AttachmentDownloadUnsupported(
            f"{self.name} cannot download attachments", provider=self.key
        )

    def iter_clients(self, *, updated_since: datetime | None = None) -> Iterator[ExternalClient]:
        yield from self.iter_records("clients", updated_since=updated_since)  # type: ignore[misc]


DEFAULT_RECORD_TYPES: dict[str, tuple[type[ExternalRecord], ...]] = {
    "clients": (ExternalClient,),
    "contacts": (ExternalContact,),
    "staff": (ExternalStaff,),
    "jobs": (ExternalJob,),
    "quotes": (ExternalQuote, ExternalLineItem),
    "line_items": (ExternalLineItem,),
    "materials": (ExternalJobMaterial, ExternalLineItem),
    "attachments": (ExternalAttachment,),
    "activities": (ExternalJobActivity,),
    "appointments": (ExternalJobActivity,),
}


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
