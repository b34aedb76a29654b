"""Provider webhooks, framework-free: verify a delivery, then parse it into notices.

After anymail's `webhooks/base.py`, without the view (STYLE.md §5). This module knows nothing of
Django requests, models or Celery: the view in `sync/` turns the HTTP request into a
`WebhookRequest`, calls a provider's `WebhookHandler`, stores each `WebhookNotice` as a
`WebhookEvent` and enqueues the processing. Each provider's handler lives in
`providers/<key>/webhooks.py`, whose docstring names the header, the algorithm and the docs.

How the view uses it:

    handler = webhook_handler(key)()                  # UnknownProvider -> 404
    try:
        notices = handler.receive(request, secrets)   # verify(), then parse()
    except WebhookChallenge as challenge:             # ServiceM8's subscribe check
        return 200 with challenge.response_body, text/plain, and store nothing
    except WebhookVerificationError as exc:           # exc.code, exc.reason: safe to log
        return 400
    except ValueError:                                # WebhookPayloadError: a malformed body
        return 400
    store the notices (UniqueConstraint(provider, external_event_id): a redelivery is a no-op),
    enqueue on commit, return 200

Error semantics, the same for every provider:
- a bad, missing or stale signature or path token -> `WebhookVerificationError` -> 400;
- no secret configured -> `WebhookVerificationError` (code "not_configured") -> 400. It never
  passes: a webhook that verifies nothing would let anyone trigger syncs;
- a body that cannot be parsed -> `WebhookPayloadError` (a `ValueError`) -> 400;
- an event type we do not sync (or do not know) -> a notice with `entity=""`: stored and
  acknowledged with 200, never refused (a refusal only makes the provider retry, then give up
  or disable the subscription);
- a challenge -> `WebhookChallenge` -> 200 with exactly `response_body`;
- anything else (a bug, the database down) -> 500, so the provider retries.

Secrets are a list so they can be rotated: verification passes when any one matches. Every
comparison is constant-time (`hmac.compare_digest`) and runs over the raw body bytes, never a
re-serialized JSON. No error message contains a secret, a signature or the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from integrations.conf import integration_setting
from integrations.exceptions import UnknownProvider

# Our entity names, as Provider.entities uses them; "" means "not one we sync".
ENTITIES = frozenset({"clients", "contacts", "jobs", "quotes", "line_items", "materials", "staff"})


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive view of request headers (HTTP header names are
    case-insensitive, RFC 9110 §5.1; HubSpot itself writes both `-v3` and `-V3`)."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self._items = {str(k).lower(): (str(k), str(v)) for k, v in (headers or {}).items()}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        # Names only: values may carry signatures or tokens.
        return f"Headers({sorted(self)!r})"


@dataclass(frozen=True)
class WebhookRequest:
    """One delivery as received, before any parsing.

    - `url`: the absolute URL the provider called, scheme, host, path and query string as
      sent (HubSpot signs it). Behind a proxy the view must rebuild the public one
      (`SECURE_PROXY_SSL_HEADER`, `USE_X_FORWARDED_HOST`), or HubSpot signatures fail.
    - `headers`: any mapping; stored as a case-insensitive `Headers`.
    - `body`: the raw bytes (`request.body`), never a re-encoded form.
    - `path_token`: the secret token from our callback URL's path, "" when the URL has none.
    - `received_at`: aware; "now" for timestamp windows, so tests need no clock.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    content_type: str = ""
    path_token: str = field(default="", repr=False)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))
        if self.received_at.tzinfo is None:
            raise ValueError("WebhookRequest.received_at must be timezone-aware")


@dataclass(frozen=True)
class WebhookNotice:
    """One provider event from a delivery (a delivery may carry several).

    - `event_id`: stable across redeliveries of the same event and unique across the
      provider's accounts (WebhookEvent is unique on (provider, external_event_id), not per
      integration). The provider's own id where it is unique; otherwise the sha256 hex of the
      fields that identify the event (see `stable_id`).
    - `event_type`: the provider's own name ("contact.deletion", "CLIENT_UPDATE", "job").
    - `entity`: one of ENTITIES, or "" when we do not sync that kind of record.
    - `external_id`: the provider's id of the record, "" if the event names none.
    - `account_id`: the provider account it came from (HubSpot portalId, Jobber accountId…),
      to match Integration.external_account_id; "" when the payload does not say.
    - `raw`: the event's own payload, kept whole (as anymail's `esp_event`).
    """

    event_id: str
    event_type: str
    entity: str
    external_id: str
    occurred_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False)
    account_id: str = ""


class WebhookFailure(StrEnum):
    """Why verification failed. The view maps MISSING to WebhookEvent.Verification.MISSING and
    every other code to INVALID."""

    MISSING = "missing"  # no signature / token header or path segment at all
    INVALID = "invalid"  # present but wrong, or not in the documented format
    EXPIRED = "expired"  # signed timestamp outside the allowed window (replay protection)
    NOT_CONFIGURED = "not_configured"  # we hold no secret to check against


class WebhookVerificationError(Exception):
    """The delivery is not proven to come from the provider: the view answers 400.
    `reason` is safe to log and store: it never contains a secret, a signature or the body."""

    def __init__(self, reason: str, *, code: WebhookFailure = WebhookFailure.INVALID) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class WebhookPayloadError(ValueError):
    """A verified body we cannot parse (not JSON, not the documented shape): 400."""


class WebhookChallenge(Exception):
    """A subscription check, raised by `verify` only once the request is authenticated: the
    view answers 200 with exactly `response_body` (as text/plain) and stores nothing."""

    def __init__(self, response_body: str) -> None:
        super().__init__("webhook subscription challenge")
        self.response_body = response_body


# -- helpers ---------------------------------------------------------------------------------


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare without leaking, through timing, how much of a guess was right. Strings are
    compared as UTF-8 bytes (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(_as_bytes(a), _as_bytes(b))


def hmac_sha256(
    key: str | bytes, message: str | bytes, *, encoding: Literal["base64", "hex"] = "base64"
) -> str:
    """HMAC-SHA256 of `message` under `key`, as standard base64 (with padding) or lower hex."""
    digest = hmac.new(_as_bytes(key), _as_bytes(message), hashlib.sha256).digest()
    if encoding == "base64":
        return base64.b64encode(digest).decode("ascii")
    if encoding == "hex":
        return digest.hex()
    raise ValueError(f"unknown encoding {encoding!r}")


def stable_id(*parts: Any) -> str:
    """sha256 hex of the parts, for providers that send no unique event id. The parts are
    JSON-encoded together (sorted keys), so ("ab", "c") and ("a", "bc") differ and the same
    event always gives the same id, whatever order its payload's keys arrived in."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def usable_secrets(secrets: Sequence[str]) -> list[str]:
    """The non-empty secrets, or WebhookVerificationError. An empty string must never count
    as a secret: anyone can compute an HMAC under the empty key."""
    if isinstance(secrets, str | bytes):  # one secret passed bare would iterate per character
        raise TypeError("secrets must be a list of strings, not a single string")
    usable = [s for s in secrets if s]
    if not usable:
        raise WebhookVerificationError(
            "no webhook secret configured", code=WebhookFailure.NOT_CONFIGURED
        )
    return usable


def check_hmac_signature(
    signature: str,
    message: bytes,
    secrets: Sequence[str],
    *,
    encoding: Literal["base64", "hex"] = "base64",
    header: str = "signature",
) -> None:
    """Pass when `signature` is the HMAC-SHA256 of `message` under any of `secrets`; raise
    WebhookVerificationError otherwise. `header` only names the header in the reason."""
    usable = usable_secrets(secrets)
    signature = (signature or "").strip()
    if not signature:
        raise WebhookVerificationError(f"missing {header} header", code=WebhookFailure.MISSING)
    # Try every secret, without stopping at the first match: the time taken does not tell
    # which secret (old or new) signed the request.
    matched = False
    for secret in usable:
        matched |= constant_time_equals(hmac_sha256(secret, message, encoding=encoding), signature)
    if not matched:
        raise WebhookVerificationError(f"{header} does not match", code=WebhookFailure.INVALID)


def check_path_token(request: WebhookRequest, secrets: Sequence[str]) -> None:
    """For providers that sign nothing: the secret token in our callback URL's path must equal
    one of `secrets`. Weaker than a signature (the token travels in every request and may
    reach proxy logs), so the view should keep the path out of access logs, and processing
    must re-fetch records from the provider rather than trust the payload."""
    usable = usable_secrets(secrets)
    token = request.path_token or ""
    if not token:
        raise WebhookVerificationError("missing path token", code=WebhookFailure.MISSING)
    matched = False
    for secret in usable:
        matched |= constant_time_equals(secret, token)
    if not matched:
        raise WebhookVerificationError("path token does not match", code=WebhookFailure.INVALID)


def json_body(request: WebhookRequest) -> Any:
    """The body as JSON, or WebhookPayloadError (which is a ValueError)."""
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The exception's own message may quote the body: say only where it broke.
        where = f" at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise WebhookPayloadError(f"body is not UTF-8 JSON{where}") from None


def ms_to_datetime(value: Any) -> datetime | None:
    """A millisecond epoch (HubSpot's `occurredAt`) as aware UTC, or None."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def iso_to_datetime(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with a zone ("2024-05-01T10:00:00Z", "…-06:00") as aware UTC;
    None when absent, malformed or zoneless (a naive time's zone would be a guess)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def id_str(value: Any) -> str:
    """A provider id as a string ("" for None/""); JSON numbers keep no ".0"."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


# -- handler base and registry ---------------------------------------------------------------


class WebhookHandler:
    """Base class: one per provider, in `providers/<key>/webhooks.py`, registered with
    `@register_webhook_handler`. Stateless; the view instantiates it with no arguments.

    Subclasses set `provider` and `secret_names` and implement `verify` and `parse`."""

    # The provider's registry key ("hubspot"), as in Provider.key and the webhook URL.
    provider: ClassVar[str]
    # The provider's page on webhook delivery and verification.
    docs_url: ClassVar[str] = ""
    # Where the secrets come from: app-level settings read as
    # integration_setting(provider, name), i.e. env `<PROVIDER>_<NAME>`, current one first
    # then the one being rotated out. `app_secrets()` reads them; a view holding secrets
    # per integration (e.g. a per-integration path token) passes its own list instead.
    secret_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def app_secrets(cls) -> list[str]:
        """The configured, non-empty secrets named by `secret_names`, in order."""
        values = (integration_setting(cls.provider, name, "") for name in cls.secret_names)
        return [v for v in values if v]

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Subclasses must implement: return when the request is proven to come from the
        provider under one of `secrets`, else raise WebhookVerificationError. Raise
        WebhookChallenge for a subscription challenge, and only after authenticating it.
        An empty `secrets` must fail (see `usable_secrets`)."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement verify")

    def parse(self, request: WebhookRequest) -> list[WebhookNotice]:
        """Subclasses must implement: the notices in a verified request, in delivery order
        (possibly none). Raise WebhookPayloadError (a ValueError) when the body is not the
        documented shape. Never drop an event for being of an unknown type: return it with
        entity "" so it is stored and acknowledged."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement parse")

    def receive(self, request: WebhookRequest, secrets: Sequence[str]) -> list[WebhookNotice]:
        """Shouldn't need overriding: verify, then parse."""
        self.verify(request, secrets)
        return self.parse(request)


_handlers: dict[str, type[WebhookHandler]] = {}


def register_webhook_handler(cls: type[WebhookHandler]) -> type[WebhookHandler]:
    """Class decorator: register `cls` under `cls.provider`."""
    key = getattr(cls, "provider", "")
    if not key:
        raise ValueError(f"{cls.__qualname__} has no provider key")
    if key in _handlers and _handlers[key] is not cls:
        raise ValueError(f"webhook handler for {key!r} is registered twice")
    _handlers[key] = cls
    return cls


def webhook_handler(key: str) -> type[WebhookHandler]:
    """The handler class for a provider key; UnknownProvider when there is none."""
    try:
        return _handlers[key]
    except KeyError:
        raise UnknownProvider(key) from None


def webhook_handlers() -> list[type[WebhookHandler]]:
    return sorted(_handlers.values(), key=lambda cls: cls.provider)
