"""Typed provider errors. Every provider call fails with one of these, never a raw `requests`
exception. Messages name the provider, method and path (never the query string, headers or
body), so they are safe to log, store on a SyncError and show to a person."""

from __future__ import annotations

from datetime import datetime


class ProviderError(Exception):
    """Base class. `retryable` says whether the HTTP layer may try the same call again."""

    retryable = False
    # Whether the request may have reached the provider (a write that might have been acted
    # on must not be sent again blindly). Only transport failures before sending set False.
    sent = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        details: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class ProviderAuthError(ProviderError):
    """Credentials are missing, wrong, expired or revoked (401, invalid_grant)."""


class ProviderPermissionError(ProviderError):
    """Authenticated, but a scope, permission or plan is missing (403)."""


class ProviderNotFoundError(ProviderError):
    """The record or endpoint does not exist (404)."""


class ProviderValidationError(ProviderError):
    """The provider refused the input (400/422). `field_errors` maps fields to messages."""

    def __init__(self, message: str, *, field_errors: dict | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.field_errors = field_errors or {}


class ProviderConflictError(ProviderError):
    """The write conflicts with the provider's current state (409)."""


class ProviderRateLimitError(ProviderError):
    """Too many requests (429, or a provider's own throttle signal)."""

    retryable = True


class ProviderServerError(ProviderError):
    """The provider failed (5xx)."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """No answer in time."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The provider could not be reached (DNS, refused, reset, TLS)."""

    retryable = True


class ProviderMalformedResponseError(ProviderError):
    """The answer was not what the API documents (bad JSON, missing fields)."""


class PaginationError(ProviderError):
    """Paging did not end properly: the cap was reached, or a cursor or page repeated.
    Whatever was fetched before it is good; a full sync that hit it must not sweep deletes."""


class BudgetExhausted(ProviderError):
    """A long-window budget (e.g. ServiceM8's 20,000 calls a day) is spent. The work is
    deferred until `retry_at`, not failed."""

    def __init__(self, message: str, *, retry_at: datetime, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_at = retry_at


class UnknownProvider(KeyError):
    pass
