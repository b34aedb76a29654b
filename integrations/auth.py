"""Auth strategies for provider calls. Each one adds credentials to a request's headers; the
OAuth ones also keep an access token fresh.

Static strategies: `ApiKeyHeaderAuth` (ServiceM8 `X-Api-Key`, Housecall Pro `Token …`),
`BearerTokenAuth` (private-app tokens), `BasicApiKeyAuth` (FieldEdge: Basic + an API-key header).

OAuth2 strategies share `OAuth2Auth`, which does the token bookkeeping once for all grants:
- the access token lives in a `TokenStore` cache every worker process sees (the Django cache on
  Redis, encrypted), and is refreshed `refresh_margin` seconds (5 minutes) before it expires,
  or, for a token issued for 5 minutes or less (which a flat margin would make stale at once,
  so every call would fetch a new one), half its lifetime before;
- only one process refreshes at a time: the store's `locked()` holds a lock (the integration's
  database row) across "check the cache again, call the token endpoint, save";
- a rotated refresh token is saved durably inside that lock, before the new access token is
  used, so a worker that died right after could not leave the connection with a spent token;
- after a 401 the HTTP layer calls `on_unauthorized()`, which refreshes once (unless another
  process already did); a second 401 is the HTTP layer's cue to mark the integration
  needs_reauth.

Token endpoints are called through authlib's requests client (RFC 6749 grants, RFC 7523 JWT
bearer), never with hand-rolled token code.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import JWTBearerGrant

from integrations import metrics
from integrations.exceptions import (
    ProviderAuthError,
    ProviderConnectionError,
    ProviderMalformedResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)

logger = logging.getLogger(__name__)


class Auth:
    """Base strategy. Subclasses must implement `apply`."""

    def apply(self, headers: dict[str, str]) -> None:
        raise NotImplementedError(f"{type(self).__qualname__} must implement apply")

    def on_unauthorized(self) -> bool:
        """Called after a 401. Return True when a retry may now succeed (a token was
        refreshed). Static credentials cannot improve, so the default is False."""
        return False


class NoAuth(Auth):
    def apply(self, headers: dict[str, str]) -> None:
        return None


class ApiKeyHeaderAuth(Auth):
    """A fixed key in a header, optionally prefixed (`Token <key>` for Housecall Pro)."""

    def __init__(self, *, header: str, key: str, prefix: str = "") -> None:
        if not key:
            raise ProviderAuthError("No API key is configured for this integration")
        self.header, self.value = header, f"{prefix}{key}"

    def apply(self, headers: dict[str, str]) -> None:
        headers[self.header] = self.value


class BearerTokenAuth(ApiKeyHeaderAuth):
    def __init__(self, *, token: str) -> None:
        super().__init__(header="Authorization", key=token, prefix="Bearer ")


class BasicApiKeyAuth(Auth):
    """HTTP Basic plus an API-key header (FieldEdge's partner credentials)."""

    def __init__(self, *, username: str, password: str, api_key_header: str, api_key: str) -> None:
        if not (username and password and api_key):
            raise ProviderAuthError("Username, password and API key are all required")
        raw = f"{username}:{password}".encode()
        self.basic = "Basic " + base64.b64encode(raw).decode()
        self.api_key_header, self.api_key = api_key_header, api_key

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self.basic
        headers[self.api_key_header] = self.api_key


class TokenStore(Protocol):
    """Where OAuth state lives. Implemented over the cache and the Integration row by
    integrations.services.IntegrationTokenStore; `MemoryTokenStore` serves unit tests."""

    def read_cached(self) -> dict | None: ...

    def write_cached(self, token: dict) -> None: ...

    def locked(self) -> Any:
        """Context manager: hold the refresh lock, yield the durable credentials, read
        fresh. Whatever `save_credentials` stored is durable when the block exits."""

    def save_credentials(self, credentials: dict) -> None: ...

    def mark_needs_reauth(self, reason: str) -> None: ...


class MemoryTokenStore:
    """A process-local TokenStore (tests, benchmarks, one-off scripts)."""

    def __init__(self, credentials: dict | None = None) -> None:
        self.credentials = dict(credentials or {})
        self.cached: dict | None = None
        self.needs_reauth: str | None = None
        self._lock = threading.Lock()

    def read_cached(self) -> dict | None:
        return self.cached

    def write_cached(self, token: dict) -> None:
        self.cached = dict(token)

    @contextmanager
    def locked(self) -> Iterator[dict]:
        with self._lock:
            yield dict(self.credentials)

    def save_credentials(self, credentials: dict) -> None:
        self.credentials = dict(credentials)

    def mark_needs_reauth(self, reason: str) -> None:
        self.needs_reauth = reason


class OAuth2Auth(Auth):
    """Token bookkeeping shared by every OAuth2 grant. Subclasses must implement `_grant`,
    which calls the token endpoint (through `self._session()`) and returns the token dict
    (`access_token`, `expires_at` epoch seconds, optionally a new `refresh_token`)."""

    token_endpoint_auth_method = "client_secret_post"  # noqa: S105 - a method name

    def __init__(
        self,
        *,
        provider: str,
        store: TokenStore,
        token_url: str,
        client_id: str = "",
        client_secret: str = "",
        refresh_margin: float = 300,
        timeout: float | tuple[float, float] = (5, 30),
        user_agent: str = "Fieldbridge",
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.store = store
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_margin = refresh_margin
        self.timeout = timeout
        self.user_agent = user_agent
        self.extra_headers = dict(extra_headers or {})
        self._last_used: str | None = None

    def apply(self, headers: dict[str, str]) -> None:
        token = self.access_token()
        self._last_used = token
        headers["Authorization"] = f"Bearer {token}"
        headers.update(self.extra_headers)

    def on_unauthorized(self) -> bool:
        self.access_token(rejected=self._last_used)
        return True

    def _fresh(self, token: dict | None, rejected: str | None) -> bool:
        return bool(
            token
            and token.get("access_token")
            and token["access_token"] != rejected
            and float(token.get("expires_at") or 0) - self.margin(token) > time.time()
        )

    def margin(self, token: Mapping[str, Any]) -> float:
        """Seconds before expiry at which a token counts as stale: `refresh_margin` (5 minutes,
        the issue's rule), or half the token's lifetime (`expires_in` as granted) for a token
        that lives no longer than the margin, which would otherwise be stale at once."""
        try:
            lifetime = float(token.get("expires_in") or 0)
        except (TypeError, ValueError):
            lifetime = 0.0
        if 0 < lifetime <= self.refresh_margin:
            return lifetime / 2
        return self.refresh_margin

    def access_token(self, *, rejected: str | None = None) -> str:
        """A usable access token: cached if fresh, else obtained under the refresh lock."""
        token = self.store.read_cached()
        if self._fresh(token, rejected):
            return token["access_token"]
        with self.store.locked() as credentials:
            token = self.store.read_cached()  # another process may have refreshed meanwhile
            if self._fresh(token, rejected):
                return token["access_token"]
            stored = {
                "access_token": credentials.get("access_token"),
                "expires_at": credentials.get("expires_at"),
            }
            if self._fresh(stored, rejected):
                # Tokens handed over by an authorization-code exchange, not yet cached.
                self.store.write_cached(stored)
                return stored["access_token"]
            new = self._grant(credentials)
            metrics.TOKEN_REFRESHES.labels(provider=self.provider).inc()
            if not new.get("access_token"):
                raise ProviderMalformedResponseError(
                    f"{self.provider}: the token endpoint answered without an access token",
                    provider=self.provider,
                )
            token = {"access_token": new["access_token"], "expires_at": float(new["expires_at"])}
            if new.get("expires_in"):
                token["expires_in"] = new["expires_in"]
            rotated = self._persist(credentials, new)
            if not rotated:
                # Nothing to commit: share the token at once, still under the lock, so the
                # next process in line finds it instead of asking for another.
                self.store.write_cached(token)
        if rotated:
            # Only now is the rotated refresh token committed: the new access token may be
            # shared and used. (Processes that queued on the lock meanwhile find the new
            # access token in the durable credentials, so they don't refresh again.)
            self.store.write_cached(token)
        logger.info("oauth token obtained", extra={"provider": self.provider})
        return new["access_token"]

    def _persist(self, credentials: dict, new: dict) -> bool:
        """Rotation: save a new refresh token (with the access token) durably before use.
        Returns whether anything was saved."""
        rotated = new.get("refresh_token")
        if not rotated or rotated == credentials.get("refresh_token"):
            return False
        self.store.save_credentials(
            {
                **credentials,
                "refresh_token": rotated,
                "access_token": new["access_token"],
                "expires_at": float(new["expires_at"]),
            }
        )
        return True

    def _session(self, **kwargs: Any) -> OAuth2Session:
        session = OAuth2Session(
            client_id=self.client_id,
            client_secret=self.client_secret,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            **kwargs,
        )
        session.headers["User-Agent"] = self.user_agent
        return session

    def _fetch(self, call, **kwargs: Any) -> dict:
        """Run one token-endpoint call and turn its failures into typed errors."""
        try:
            token = dict(call(self.token_url, timeout=self.timeout, **kwargs))
        except OAuthError as exc:
            # invalid_grant / invalid_client / unauthorized_client: the credentials are bad.
            raise ProviderAuthError(
                f"{self.provider}: the token endpoint refused the credentials ({exc.error})",
                provider=self.provider,
            ) from None
        except requests.Timeout:
            raise ProviderTimeoutError(
                f"{self.provider}: the token endpoint did not answer in time",
                provider=self.provider,
            ) from None
        except requests.ConnectionError:
            raise ProviderConnectionError(
                f"{self.provider}: the token endpoint could not be reached", provider=self.provider
            ) from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            error_class = ProviderServerError if (status or 500) >= 500 else ProviderAuthError
            raise error_class(
                f"{self.provider}: the token endpoint answered {status}",
                provider=self.provider,
                status=status,
            ) from None
        except ValueError:
            raise ProviderMalformedResponseError(
                f"{self.provider}: the token endpoint's answer is not valid JSON",
                provider=self.provider,
            ) from None
        if "expires_at" not in token:
            token["expires_at"] = time.time() + float(token.get("expires_in") or 3600)
        return token

    def _grant(self, credentials: dict) -> dict:
        raise NotImplementedError(f"{type(self).__qualname__} must implement _grant")


class ClientCredentialsAuth(OAuth2Auth):
    """RFC 6749 §4.4 (ServiceTitan): no refresh token; ask for a new token when needed."""

    def _grant(self, credentials: dict) -> dict:
        with self._session() as session:
            return self._fetch(session.fetch_token, grant_type="client_credentials")


class RefreshTokenAuth(OAuth2Auth):
    """Authorization-code integrations (Jobber, HubSpot, ServiceM8 OAuth): the connect flow
    stores the first tokens; afterwards the refresh token is exchanged, and rotated, here."""

    def _grant(self, credentials: dict) -> dict:
        refresh_token = credentials.get("refresh_token")
        if not refresh_token:
            raise ProviderAuthError(
                f"{self.provider}: no refresh token is stored; connect the integration again",
                provider=self.provider,
            )
        with self._session() as session:
            return self._fetch(session.refresh_token, refresh_token=refresh_token)


class PasswordGrantAuth(OAuth2Auth):
    """RFC 6749 §4.3 (Salesforce username-password flow; the password includes the security
    token where the org requires one)."""

    def __init__(self, *, username: str, password: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.username, self.password = username, password

    def _grant(self, credentials: dict) -> dict:
        with self._session() as session:
            return self._fetch(session.fetch_token, username=self.username, password=self.password)


class JWTBearerAuth(OAuth2Auth):
    """RFC 7523 JWT bearer (Salesforce server-to-server): a short-lived assertion signed with
    the connected app's private key is exchanged for an access token."""

    def __init__(self, *, subject: str, audience: str, private_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subject, self.audience, self.private_key = subject, audience, private_key

    def _grant(self, credentials: dict) -> dict:
        assertion = JWTBearerGrant.sign(
            self.private_key,
            issuer=self.client_id,
            audience=self.audience,
            subject=self.subject,
            expires_in=180,
            header={"alg": "RS256"},
        )
        if isinstance(assertion, bytes):
            assertion = assertion.decode()
        with self._session() as session:
            return self._fetch(
                session.fetch_token, grant_type=JWTBearerGrant.GRANT_TYPE, assertion=assertion
            )


__all__ = [
    "ApiKeyHeaderAuth",
    "Auth",
    "BasicApiKeyAuth",
    "BearerTokenAuth",
    "ClientCredentialsAuth",
    "JWTBearerAuth",
    "MemoryTokenStore",
    "NoAuth",
    "OAuth2Auth",
    "PasswordGrantAuth",
    "RefreshTokenAuth",
    "TokenStore",
]
