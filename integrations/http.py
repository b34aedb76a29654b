"""The shared HTTP layer: every provider call goes through `ApiClient.request`.

After anymail's `AnymailRequestsBackend` and Sentry's `BaseApiClient`. One instance per
integration holds one `requests.Session` (connection reuse, default timeout, User-Agent) and:

1. serves GETs from a per-integration read cache when it is enabled (TTL, default 5 minutes),
   invalidated per resource on every successful write;
2. takes a permit from the integration's shared rate limiter (`integrations.ratelimit`);
3. adds credentials through an `Auth` strategy (`integrations.auth`);
4. sends, timing the call, and logs one line per attempt (method, path without the query
   string, status, duration, attempt) and counts it in Prometheus;
5. turns the outcome into a typed error (`integrations.exceptions`), after the provider's own
   `classify_response` hook has had a look (a GraphQL THROTTLED inside a 200, Salesforce's
   REQUEST_LIMIT_EXCEEDED inside a 403); a refused request (400/422) carries the provider's
   `field_errors` ({field: [messages]}) and, for an RFC 7807 problem+json body, its
   type/title/status/detail/traceId in `details["problem"]`;
6. retries what is retryable (timeouts, connection errors, 429, 5xx) with exponential backoff
   and full jitter, honouring Retry-After, capped in attempts and in total wait; never a 4xx
   validation error;
7. on a 401, lets the auth strategy refresh once and retries once; a second 401 marks the
   integration needs_reauth (through the token store) and raises ProviderAuthError.

`ApiClient.stream` sends a GET through the same steps (bar the cache) for a file download and
leaves the body on the wire for the caller to read in chunks (`Response.iter_bytes`).

Clients never touch the database and never log secrets: headers, query strings and bodies
stay out of logs and error messages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from django.core.cache import cache
from urllib3.exceptions import NameResolutionError, NewConnectionError

from integrations import metrics
from integrations.auth import Auth, NoAuth, TokenStore
from integrations.exceptions import (
    PaginationError,
    ProviderAuthError,
    ProviderConflictError,
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
from integrations.ratelimit import RateLimiter

logger = logging.getLogger("integrations.http")

USER_AGENT = "Fieldbridge/0.1 (+https://github.com/fieldbridge)"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NON_IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `attempts` tries, waiting `base * 2**n` seconds (full jitter) between them, or
    the provider's Retry-After when it is given, but never more than `max_total_wait` in all."""

    attempts: int = 3
    base: float = 0.5
    max_delay: float = 30.0
    max_total_wait: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(0.0, retry_after)
        return random.uniform(0, min(self.max_delay, self.base * 2 ** (attempt - 1)))  # noqa: S311


@dataclass(frozen=True)
class CachePolicy:
    enabled: bool = False
    ttl: int = 300


@dataclass
class Response:
    """What callers get back: the status, the headers and the decoded body."""

    status: int
    headers: dict[str, str]
    content: bytes
    url: str
    from_cache: bool = False
    _json: Any = field(default=None, repr=False)
    # A streamed response's open body (`ApiClient.stream`); `content` is then empty.
    _body: Any = field(default=None, repr=False)

    def json(self) -> Any:
        if self._json is None:
            if not self.content:
                return None
            try:
                # (the standard decoder: orjson's is faster, but its peak memory is about
                # fifteen times the body while it parses, and pages are 5,000 records)
                self._json = json.loads(self.content)
            except ValueError:
                raise ProviderMalformedResponseError(
                    f"The response from {_safe_path(self.url)} is not valid JSON",
                    status=self.status,
                ) from None
        return self._json

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def iter_bytes(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """The body in chunks: read from the network as it comes for a streamed response,
        closing the connection at the end (or when the iterator is closed early). A transfer
        that breaks off raises ProviderConnectionError."""
        if self._body is None:
            if self.content:
                yield self.content
            return
        try:
            for chunk in self._body.iter_content(chunk_size):
                if chunk:
                    yield chunk
        except requests.RequestException:
            raise ProviderConnectionError(
                f"The download from {_safe_path(self.url)} broke off", status=self.status
            ) from None
        finally:
            self._body.close()

    def close(self) -> None:
        if self._body is not None:
            self._body.close()


PROBLEM_MEMBERS = ("type", "title", "status", "detail", "instance", "traceId")
MAX_FIELD_MESSAGES = 20


def normalize_field_errors(errors: dict) -> dict[str, list[str]]:
    """{field: [messages]} with string keys and messages, whatever shape the provider used
    (a list of strings, one string, or other values); capped so a runaway body stays small."""
    normalized: dict[str, list[str]] = {}
    for key, value in list(errors.items())[:MAX_FIELD_MESSAGES]:
        values = value if isinstance(value, list) else [value]
        messages = [str(v)[:500] for v in values[:MAX_FIELD_MESSAGES] if v not in (None, "")]
        normalized[str(key) or "__all__"] = messages
    return normalized


def problem_details(response: Response) -> dict:
    """The RFC 7807 members of a problem+json error body (`type`, `title`, `status`, `detail`,
    `instance`, and ASP.NET's `traceId`), under "problem"; {} for any other body. They go in
    the error's `details`, never in its message (messages stay free of response bodies)."""
    content_type = (response.header("Content-Type") or "").split(";")[0].strip().lower()
    try:
        body = response.json()
    except ProviderMalformedResponseError:
        return {}
    if not isinstance(body, dict):
        return {}
    if content_type != "application/problem+json" and not {"type", "title", "status"} <= set(body):
        return {}
    problem = {
        k: body[k] if isinstance(body[k], int | None) else str(body[k])[:500]
        for k in PROBLEM_MEMBERS
        if k in body
    }
    return {"problem": problem} if problem else {}


def _never_connected(exc: BaseException) -> bool:
    """True when the request cannot have reached the provider (refused, DNS failure)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NewConnectionError | NameResolutionError):
            return True
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, BaseException) and _never_connected(arg):
                return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
    return False


def _safe_path(url: str) -> str:
    """The URL's path only: query strings can carry filters or, with some APIs, keys."""
    return urlsplit(url).path


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class ApiClient:
    """One per integration. Provider clients subclass it (or compose it) and add their paging
    and endpoints; subclasses may override `classify_response` and `cache_resource`."""

    provider = "generic"
    default_timeout: tuple[float, float] = (5.0, 30.0)

    def __init__(
        self,
        *,
        base_url: str,
        auth: Auth | None = None,
        integration_id: int | str | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        cache_policy: CachePolicy | None = None,
        token_store: TokenStore | None = None,
        timeout: tuple[float, float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth or NoAuth()
        self.integration_id = integration_id
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.cache_policy = cache_policy or CachePolicy()
        self.token_store = token_store
        self.timeout = timeout or self.default_timeout
        self._sleep = sleep
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    # -- hooks ------------------------------------------------------------------------------

    def classify_response(self, response: Response) -> ProviderError | None:
        """Return a typed error for this response, or None when it is a success.
        Subclasses may override to catch provider-specific signals, then call super()."""
        status = response.status
        if status < 400:
            return None
        where = f"{self.provider}: {_safe_path(response.url)} answered {status}"
        kwargs = {"provider": self.provider, "status": status}
        if status == 401:
            return ProviderAuthError(f"{where}: the credentials were refused", **kwargs)
        if status == 403:
            return ProviderPermissionError(
                f"{where}: the account lacks a permission, scope or plan for this", **kwargs
            )
        if status == 404:
            return ProviderNotFoundError(f"{where}: not found", **kwargs)
        if status == 409:
            return ProviderConflictError(f"{where}: conflict", **kwargs)
        if status == 429:
            return ProviderRateLimitError(
                f"{where}: rate limited",
                retry_after=parse_retry_after(response.header("Retry-After")),
                **kwargs,
            )
        if status >= 500:
            return ProviderServerError(
                f"{where}: provider error",
                retry_after=parse_retry_after(response.header("Retry-After")),
                **kwargs,
            )
        return ProviderValidationError(
            f"{where}: the provider refused the request",
            field_errors=self.field_errors(response),
            details=problem_details(response),
            **kwargs,
        )

    def field_errors(self, response: Response) -> dict[str, list[str]]:
        """The provider's per-field messages from an error body, {field: [messages]} with
        "__all__" for a message about the whole request. Subclasses override."""
        try:
            body = response.json()
        except ProviderMalformedResponseError:
            return {}
        if isinstance(body, dict):
            errors = body.get("errors") or body.get("fieldErrors")
            if isinstance(errors, dict) and errors:
                return normalize_field_errors(errors)
            message = (
                body.get("message") or body.get("detail") or body.get("title") or body.get("error")
            )
            if message:
                return {"__all__": [str(message)[:500]]}
        return {}

    def cache_resource(self, path: str) -> str:
        """The resource a path belongs to, for cache invalidation: a write to any path of a
        resource drops the cached reads of that resource. Default: the path's first segment
        that is not an id."""
        for segment in path.strip("/").split("/"):
            name = segment.split(".")[0]
            if name and not any(ch.isdigit() for ch in name):
                return name
        return path

    # -- requests ---------------------------------------------------------------------------

    def url(self, path: str) -> str:
        if not path:
            return self.base_url
        return (
            path
            if path.startswith(("http://", "https://"))
            else f"{self.base_url}/{path.lstrip('/')}"
        )

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def stream(
        self, path: str, *, params: dict | list | None = None, headers: dict | None = None
    ) -> Response:
        """GET a (binary, possibly large) body without reading it into memory: the same auth,
        rate limit, retries, typed errors and logging as `request`, never cached. Only the
        status and headers are judged (an error body is read and the connection closed); on
        success the caller reads the body with `Response.iter_bytes()` (or `close()`s it).
        Retries happen before the body is read, never half way through it."""
        return self._send_with_retries(
            "GET", self.url(path), params, None, None, headers, idempotent=True, stream=True
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | list | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: dict | None = None,
        use_cache: bool = True,
        idempotent: bool | None = None,
    ) -> Response:
        """Send one request through the layer. `idempotent` defaults to the method's HTTP
        semantics (POST and PATCH are not): a non-idempotent write is retried only when the
        provider cannot have acted on it (429, or the connection never opened). Pass
        idempotent=True for a write that carries its own idempotency key."""
        method = method.upper()
        url = self.url(path)
        cache_key = None
        if method == "GET" and use_cache and self.cache_policy.enabled:
            cache_key = self._cache_key(url, params)
            cached = cache.get(cache_key)
            if cached is not None:
                metrics.CACHE_HITS.labels(provider=self.provider).inc()
                return Response(**cached, from_cache=True)

        response = self._send_with_retries(
            method, url, params, json_body, data, headers, idempotent=idempotent
        )

        if cache_key is not None:
            cache.set(
                cache_key,
                {
                    "status": response.status,
                    "headers": response.headers,
                    "content": response.content,
                    "url": response.url,
                },
                self.cache_policy.ttl,
            )
        elif method in WRITE_METHODS and self.cache_policy.enabled:
            self._invalidate(url)
        return response

    def _send_with_retries(
        self,
        method,
        url,
        params,
        json_body,
        data,
        headers,
        *,
        idempotent: bool | None,
        stream: bool = False,
    ) -> Response:
        if idempotent is None:
            idempotent = method not in NON_IDEMPOTENT_METHODS
        waited = 0.0
        refreshed = False
        attempt = 0  # transport attempts, capped by the retry policy
        sends = 0  # every send, for the logs
        while True:
            attempt += 1
            sends += 1
            if self.limiter is not None:
                self.limiter.acquire()
            error, response = self._send_once(
                method, url, params, json_body, data, headers, sends, stream=stream
            )
            if error is None:
                return response
            if isinstance(error, ProviderAuthError) and error.status == 401 and not refreshed:
                refreshed = True
                try:
                    retry_with_new_token = self.auth.on_unauthorized()
                except ProviderError as exc:  # the token endpoint refused or failed
                    error, retry_with_new_token = exc, False
                if retry_with_new_token:
                    attempt -= 1  # the refresh retry is not a transport retry
                    continue
            if isinstance(error, ProviderAuthError):
                # A second 401, or the token endpoint refusing our grant (invalid_grant…):
                # nothing automatic can fix it; a person must reconnect.
                if self.token_store is not None:
                    self.token_store.mark_needs_reauth(error.message)
            may_retry = error.retryable and (
                idempotent or isinstance(error, ProviderRateLimitError) or not error.sent
            )
            if may_retry and attempt < self.retry.attempts:
                delay = self.retry.delay(attempt, error.retry_after)
                if waited + delay <= self.retry.max_total_wait:
                    metrics.PROVIDER_RETRIES.labels(
                        provider=self.provider, reason=type(error).__name__
                    ).inc()
                    self._sleep(delay)
                    waited += delay
                    continue
            metrics.PROVIDER_ERRORS.labels(provider=self.provider, error=type(error).__name__).inc()
            raise error

    def _send_once(self, method, url, params, json_body, data, headers, attempt, *, stream=False):
        request_headers = dict(headers or {})
        try:
            self.auth.apply(request_headers)
        except ProviderError as exc:
            return exc, None
        started = time.perf_counter()
        status_label = "error"
        try:
            raw = self.session.request(
                method,
                url,
                params=params,
                json=json_body,
                data=data,
                headers=request_headers,
                timeout=self.timeout,
                stream=stream,
            )
        except requests.Timeout as exc:
            error: ProviderError | None = ProviderTimeoutError(
                f"{self.provider}: {method} {_safe_path(url)} timed out", provider=self.provider
            )
            error.sent = not isinstance(exc, requests.ConnectTimeout)
            response = None
        except requests.ConnectionError as exc:
            error = ProviderConnectionError(
                f"{self.provider}: {method} {_safe_path(url)} could not connect",
                provider=self.provider,
            )
            error.sent = not _never_connected(exc)
            response = None
        else:
            # A streamed success keeps its body open for the caller; an error body is small
            # and is read (for classify_response and field_errors), then the connection freed.
            streaming = stream and raw.status_code < 400
            try:
                content = b"" if streaming else raw.content
            except requests.RequestException:
                content = b""
            response = Response(
                status=raw.status_code,
                headers={k.lower(): v for k, v in raw.headers.items()},
                content=content,
                url=raw.url,
                _body=raw if streaming else None,
            )
            if stream and not streaming:
                raw.close()
            status_label = f"{raw.status_code // 100}xx"
            error = self.classify_response(response)
            if error is not None:
                response.close()
        elapsed = time.perf_counter() - started
        metrics.PROVIDER_CALLS.labels(
            provider=self.provider, method=method, status_class=status_label
        ).inc()
        metrics.PROVIDER_LATENCY.labels(provider=self.provider).observe(elapsed)
        logger.info(
            "provider call",
            extra={
                "provider": self.provider,
                "integration_id": self.integration_id,
                "method": method,
                "path": _safe_path(url),
                "status": response.status if response else None,
                "duration_ms": round(elapsed * 1000, 1),
                "attempt": attempt,
                "error": type(error).__name__ if error else None,
            },
        )
        return error, response

    # -- cache ------------------------------------------------------------------------------

    def _version_key(self, resource: str) -> str:
        return f"provider-cache:{self.provider}:{self.integration_id}:{resource}:v"

    def _resource_of(self, url: str) -> str:
        return self.cache_resource(_safe_path(url)[len(urlsplit(self.base_url).path) :])

    def _cache_key(self, url: str, params: Any) -> str:
        resource = self._resource_of(url)
        version = cache.get_or_set(self._version_key(resource), 1, None)
        digest = hashlib.sha256(json.dumps([url, params], sort_keys=True, default=str).encode())
        prefix = f"provider-cache:{self.provider}:{self.integration_id}:{resource}"
        return f"{prefix}:{version}:{digest.hexdigest()}"

    def _invalidate(self, url: str) -> None:
        key = self._version_key(self._resource_of(url))
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 2, None)


def _page_bytes(records: list) -> bytes:
    """A page's records as canonical JSON (keys sorted): what the loop guard hashes."""
    try:
        return orjson.dumps(records, default=str, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # (orjson.JSONEncodeError) an integer past 64 bits, a lone surrogate
        return json.dumps(records, sort_keys=True, default=str).encode()


def paginate(
    fetch_page: Callable[[Any], tuple[list, Any]],
    *,
    start: Any,
    max_pages: int,
    provider: str,
) -> Iterator[list]:
    """Capped pagination shared by every provider. `fetch_page(token)` returns the page's
    records and the next token (None at the end). A repeated token, the same page served
    twice, or more than `max_pages` pages, raises PaginationError instead of looping; pages
    already yielded stand."""
    seen: set[str] = set()
    token = start
    for _ in range(max_pages):
        marker = json.dumps(token, sort_keys=True, default=str)
        if marker in seen:
            raise PaginationError(
                f"{provider}: the provider repeated a page cursor ({marker[:40]}); stopping",
                provider=provider,
            )
        seen.add(marker)
        records, token = fetch_page(token)
        if records and token is not None:
            # The same non-empty page again under a new token (a provider whose page numbers
            # run on while it serves one page forever) is a loop too.
            digest = "page:" + hashlib.blake2b(_page_bytes(records), digest_size=16).hexdigest()
            if digest in seen:
                raise PaginationError(
                    f"{provider}: the provider served the same page twice; stopping",
                    provider=provider,
                )
            seen.add(digest)
        yield records
        if token is None:
            return
    raise PaginationError(
        f"{provider}: more than {max_pages} pages; stopping (the fetch is truncated)",
        provider=provider,
    )
