"""The sandbox WSGI application: routing, run-time config, stats, faults and rate limiting.

``SandboxApp`` is a plain werkzeug WSGI callable. It owns:

- the :class:`~integrations.sandbox.store.Store` (records, cursors, tokens; SQLite);
- :class:`SandboxConfig` (token TTLs, page size, rate limits; in memory, reset by
  ``POST /_sandbox/reset``);
- :class:`Stats` (request/grant/429/fault counters; in memory);
- :class:`FaultInjector` (the deterministic fault queue and seeded random faults);
- one :class:`RateLimiter` shared by the provider modules;
- one ``ProviderApi`` per emulated provider (``servicem8.py``, ``servicetitan.py``) plus the
  control API (``control.py``), each contributing werkzeug ``Rule``s.

Every request is classified by its endpoint ``kind``:

``api``
    A provider REST call, read or write. Counted in ``stats`` (total, per path template, per
    status; writes also per concrete path), and subject to the fault injector *before* normal
    handling (queue first, then random faults), except ``apply_then_error`` faults, which let
    the request be handled (a write applied) and then replace the answer with an error. Auth and
    rate limiting are the provider handler's job because they differ per provider.
``token``
    An OAuth endpoint (authorize / token). Counted as token requests and grants; never subject
    to faults or rate limits (both providers document their limits for the REST APIs only).
``control``
    ``/_sandbox/…``: JSON, no auth, never counted or faulted.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote_plus

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integrations.sandbox.store import Collection, Record, RecordId, Store

logger = logging.getLogger(__name__)

# Size cap when a fault corrupts a streamed body: only this much is buffered, then cut.
_MALFORMED_BUFFER_BYTES = 1 << 20
# HTTP methods that count as writes (stats ``writes_*``, fault ``method: "WRITE"``).
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# --- responses -----------------------------------------------------------------------------------


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact ``application/json`` response."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status=status, headers=headers, mimetype="application/json")


def json_text_response(
    body: str | Iterable[str], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A response whose JSON body is already serialized (or streamed as chunks of text)."""
    return Response(body, status=status, headers=headers, mimetype="application/json")


def splice_json_raw(data_json: str, members: str) -> str:
    """Append pre-serialized members (``"k":v,"k2":v2``) to a JSON object given as text.

    Rendering a page of 5,000 records this way avoids a ``json.loads``/``json.dumps`` round
    trip per record; callers must only pass values that need no escaping (ids, numbers,
    booleans, formatted dates).
    """
    if data_json == "{}":
        return "{" + members + "}"
    return data_json[:-1] + "," + members + "}"


def stream_json_array(items: Iterable[str], chunk_items: int = 500) -> Iterable[bytes]:
    """Yield a JSON array of pre-serialized items in chunks (for unbounded listings)."""
    yield b"["
    first = True
    buf: list[str] = []
    for item in items:
        buf.append(item if first else "," + item)
        first = False
        if len(buf) >= chunk_items:
            yield "".join(buf).encode()
            buf = []
    if buf:
        yield "".join(buf).encode()
    yield b"]"


def oauth_client_credentials(request: Request) -> tuple[str | None, str | None, bool]:
    """(client_id, client_secret, came_from_basic) from a token request (RFC 6749 §2.3.1).

    HTTP Basic (client_secret_basic) wins over form fields (client_secret_post); Basic
    credentials are form-urlencoded before base64, so they are decoded here.
    """
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return unquote_plus(auth.username or ""), unquote_plus(auth.password or ""), True
    return request.form.get("client_id"), request.form.get("client_secret"), False


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One tunable: its default and inclusive bounds (``maximum`` None = unbounded)."""

    default: int | float | bool
    minimum: int | float = 0
    maximum: int | float | None = None


class SandboxConfig:
    """Run-time knobs, per provider, plus the global ``enforce_rate_limits`` switch.

    Each provider module declares its settings (``ProviderApi.settings``); ``update`` accepts a
    partial JSON document, validates every value, and applies all of it or none of it.
    """

    def __init__(self, schema: dict[str, dict[str, Setting]]) -> None:
        self._schema = schema
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._values = {"enforce_rate_limits": True}
            for provider, settings in self._schema.items():
                self._values[provider] = {k: s.default for k, s in settings.items()}

    def get(self, provider: str, name: str) -> Any:
        return self._values[provider][name]

    @property
    def enforce_rate_limits(self) -> bool:
        return bool(self._values["enforce_rate_limits"])

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return deepcopy(self._values)

    def update(self, patch: Any) -> dict[str, Any]:
        """Validate and apply a partial config; raises ``ValueError`` naming the bad key."""
        if not isinstance(patch, dict):
            raise ValueError("config must be a JSON object")
        with self._lock:
            new = deepcopy(self._values)
            for key, value in patch.items():
                if key == "enforce_rate_limits":
                    if not isinstance(value, bool):
                        raise ValueError("enforce_rate_limits must be a boolean")
                    new[key] = value
                    continue
                if key not in self._schema:
                    raise ValueError(f"unknown config key {key!r}")
                if not isinstance(value, dict):
                    raise ValueError(f"{key} must be an object")
                for name, raw in value.items():
                    setting = self._schema[key].get(name)
                    if setting is None:
                        raise ValueError(f"unknown setting {key}.{name}")
                    new[key][name] = _validate_setting(f"{key}.{name}", setting, raw)
            self._values = new
            return deepcopy(new)


def _validate_setting(name: str, setting: Setting, raw: Any) -> int | float | bool:
    if isinstance(setting.default, bool):
        if not isinstance(raw, bool):
            raise ValueError(f"{name} must be a boolean")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{name} must be a number")
    if isinstance(setting.default, int) and not float(raw).is_integer():
        raise ValueError(f"{name} must be an integer")
    value = int(raw) if isinstance(setting.default, int) else float(raw)
    if value < setting.minimum or (setting.maximum is not None and value > setting.maximum):
        upper = "" if setting.maximum is None else f"..{setting.maximum}"
        raise ValueError(f"{name} must be in {setting.minimum}{upper}")
    return value


# --- stats ---------------------------------------------------------------------------------------


class Stats:
    """Thread-safe counters, reported by ``GET /_sandbox/stats``.

    Per provider: ``requests_total`` (every ``api`` request, including ones answered by a fault,
    a 401 or a 429), ``requests_by_path`` ("GET /servicem8/api_1.0/company.json"; ids stay
    templated: "POST /servicem8/api_1.0/job/{uuid}.json"), ``responses_by_status``,
    ``token_requests``, ``token_grants`` (by grant_type), ``token_errors`` (by OAuth error
    code), ``refresh_token_rejections``, ``rate_limited`` (429s by reason:
    per_minute/per_day/per_second/fault), ``faults_injected`` (by kind) and
    ``requests_last_minute`` (per account, authenticated requests in the last 60 s).

    Writes (``api`` requests with method POST/PUT/PATCH/DELETE): ``writes_total`` (every write
    request, whatever its answer), ``writes_by_path`` (per method and *concrete* path, e.g.
    "POST /servicem8/api_1.0/job/0b6f…e2.json", so one record's updates can be counted) and
    ``writes_applied`` (per "object/id": writes that actually changed the stored record,
    including ones answered by an ``apply_then_error`` fault; refused and no-op writes are not
    counted). "The provider was changed exactly once" is ``writes_applied["job/<uuid>"] == 1``.
    """

    def __init__(self, providers: Sequence[str]) -> None:
        self._providers = tuple(providers)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counts: dict[str, dict[str, Any]] = {
                p: {
                    "requests_total": 0,
                    "requests_by_path": Counter(),
                    "writes_total": 0,
                    "writes_by_path": Counter(),
                    "writes_applied": Counter(),
                    "responses_by_status": Counter(),
                    "token_requests": 0,
                    "token_grants": Counter(),
                    "token_errors": Counter(),
                    "refresh_token_rejections": 0,
                    "rate_limited": Counter(),
                    "faults_injected": Counter(),
                }
                for p in self._providers
            }
            self._recent: dict[tuple[str, str], deque[float]] = {}

    def _bump(self, provider: str, name: str, key: str | None = None, n: int = 1) -> None:
        with self._lock:
            bucket = self._counts[provider]
            if key is None:
                bucket[name] += n
            else:
                bucket[name][key] += n

    def api_request(
        self, provider: str, path_template: str, method: str = "GET", path: str = ""
    ) -> None:
        """Count one API request; ``path_template`` is "METHOD /templated/path"."""
        with self._lock:
            bucket = self._counts[provider]
            bucket["requests_total"] += 1
            bucket["requests_by_path"][path_template] += 1
            if method in WRITE_METHODS:
                bucket["writes_total"] += 1
                bucket["writes_by_path"][f"{method} {path}"] += 1

    def write_applied(self, provider: str, record_key: str) -> None:
        """A write changed the stored record ``record_key`` ("object/id")."""
        self._bump(provider, "writes_applied", record_key)

    def account_request(self, provider: str, account: str) -> None:
        """Attribute an authenticated API request to an account (for requests_last_minute)."""
        now = time.monotonic()
        with self._lock:
            log = self._recent.setdefault((provider, account), deque())
            log.append(now)
            while log and log[0] <= now - 60:
                log.popleft()

    def response(self, provider: str, status: int) -> None:
        self._bump(provider, "responses_by_status", str(status))

    def token_request(self, provider: str) -> None:
        self._bump(provider, "token_requests")

    def token_grant(self, provider: str, grant_type: str) -> None:
        self._bump(provider, "token_grants", grant_type)

    def token_error(self, provider: str, error: str) -> None:
        self._bump(provider, "token_errors", error)

    def refresh_rejected(self, provider: str) -> None:
        self._bump(provider, "refresh_token_rejections")

    def rate_limited(self, provider: str, reason: str) -> None:
        self._bump(provider, "rate_limited", reason)

    def fault(self, provider: str, kind: str, n: int = 1) -> None:
        self._bump(provider, "faults_injected", kind, n)

    def as_dict(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            out: dict[str, Any] = {}
            for provider, bucket in self._counts.items():
                out[provider] = {
                    k: dict(v) if isinstance(v, Counter) else v for k, v in bucket.items()
                }
                out[provider]["requests_last_minute"] = {}
            for (provider, account), log in self._recent.items():
                while log and log[0] <= now - 60:
                    log.popleft()
                out[provider]["requests_last_minute"][account] = len(log)
            return out


# --- rate limiting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitRule:
    """One limit. Sliding when ``fixed_window`` is None, else a fixed window with that id.

    Sliding windows keep a log of accepted request times (at most ``limit`` entries per key),
    so "N per window" holds for *every* window, not just aligned ones. Fixed windows count per
    window id (e.g. the calendar day) and reset when the id changes.
    """

    name: str
    limit: int
    window_seconds: float
    fixed_window: Hashable | None = None


class RateLimiter:
    """Checks and records several limits atomically per key (thread-safe).

    Only accepted requests are recorded: a rejected (429) request does not consume budget.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[tuple[Hashable, str], deque[float]] = {}
        self._fixed: dict[tuple[Hashable, str], tuple[Hashable, int]] = {}

    def reset(self) -> None:
        with self._lock:
            self._logs.clear()
            self._fixed.clear()

    def hit(
        self, key: Hashable, rules: Sequence[LimitRule], now: float | None = None
    ) -> tuple[LimitRule, float] | None:
        """Record one request, or return (the rule exceeded, seconds until it would pass)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for rule in rules:
                if rule.fixed_window is None:
                    log = self._logs.setdefault((key, rule.name), deque())
                    while log and log[0] <= now - rule.window_seconds:
                        log.popleft()
                    if len(log) >= rule.limit:
                        # The earliest entry that must expire before one more fits.
                        if rule.limit > 0:
                            wait = log[len(log) - rule.limit] + rule.window_seconds - now
                        else:
                            wait = rule.window_seconds
                        return rule, max(wait, 0.0)
                else:
                    window, count = self._fixed.get((key, rule.name), (None, 0))
                    if window == rule.fixed_window and count >= rule.limit:
                        return rule, rule.window_seconds
            for rule in rules:
                if rule.fixed_window is None:
                    self._logs[(key, rule.name)].append(now)
                else:
                    window, count = self._fixed.get((key, rule.name), (None, 0))
                    count = count + 1 if window == rule.fixed_window else 1
                    self._fixed[(key, rule.name)] = (rule.fixed_window, count)
        return None


# --- faults --------------------------------------------------------------------------------------

_FAULT_DEFAULTS: dict[str, Any] = {
    "provider": None,
    "error_rate": 0.0,
    "error_statuses": [500, 502, 503],
    "latency_ms": 0,
    "timeout_rate": 0.0,
    "timeout_seconds": 30.0,
    "malformed_rate": 0.0,
    "apply_then_error_rate": 0.0,
    "truncate_pages": False,
    "mutate_during_sync": False,
    "queue": [],
    "seed": 0,
}
_QUEUE_ITEM_KEYS = {
    "status",
    "retry_after",
    "body",
    "headers",
    "malformed",
    "delay_seconds",
    "apply_then_error",
    "method",
    "path",
}
_QUEUE_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "WRITE"}


@dataclass
class FaultAction:
    """What the injector decided for one request: sleep, then an error or a corrupted body.

    ``apply_first``: handle the request normally first (a write is applied), then sleep and
    answer with ``status`` instead of the real response.
    """

    delay_seconds: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    malformed: bool = False
    apply_first: bool = False
    kinds: list[str] = field(default_factory=list)


class FaultInjector:
    """Faults applied to ``api`` requests, configured by ``POST /_sandbox/faults``.

    A POST replaces the whole fault configuration (unspecified keys take their defaults);
    ``DELETE`` clears it. ``provider`` None matches both providers. Keys:

    ``queue``
        FIFO consumed one entry per matching API request, *instead of* random faults, before
        normal handling (auth included). Entry keys: ``status`` (answer with it, in the
        provider's error shape unless ``body`` is given), ``retry_after`` (seconds, sent as an
        integer ``Retry-After``), ``body``, ``headers``, ``malformed`` (handle normally, then
        corrupt the body), ``delay_seconds`` (sleep first; alone it just delays a normal
        response).

        ``apply_then_error`` (bool): handle the request normally first, so a write **is
        applied**, then sleep ``delay_seconds`` and answer with ``status`` (default 500)
        instead of the real response. This is the "provider changed, client saw a failure"
        case that exactly-once delivery must survive; with a ``delay_seconds`` longer than the
        client's timeout it is "applied, then the client timed out".

        Filters (optional): ``method`` ("POST", "DELETE", …, or "WRITE" for any of
        POST/PUT/PATCH/DELETE) and ``path`` (an ``fnmatch`` pattern on the request path, e.g.
        ``"/servicem8/api_1.0/job/*.json"``). A request consumes the *first* entry whose filters
        match it; entries that do not match stay queued.
    ``latency_ms``
        Added to every matching request.
    ``timeout_rate`` / ``timeout_seconds``
        With that probability, sleep ``timeout_seconds`` before answering normally: a client
        whose timeout is shorter sees a timeout, a patient one a slow success.
    ``error_rate`` / ``error_statuses``
        With that probability, answer with a status drawn from the list.
    ``apply_then_error_rate``
        Otherwise, for writes only, with that probability: ``apply_then_error`` with a status
        drawn from ``error_statuses``.
    ``malformed_rate``
        Otherwise, with that probability, cut the body in half (invalid JSON, status kept).
    ``truncate_pages``, ``mutate_during_sync``
        Flags read by the provider list handlers (see ``servicem8._page`` and
        ``servicetitan.list_records``).
    ``seed``
        Seed of the ``random.Random`` behind the rates: a run is reproducible for a given
        request order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._config = deepcopy(_FAULT_DEFAULTS)
            self._queue: deque[dict[str, Any]] = deque()
            self._rng = random.Random(0)  # noqa: S311 - fault dice, not security

    def configure(self, raw: Any, providers: Sequence[str]) -> dict[str, Any]:
        """Validate and install a fault configuration; raises ``ValueError``."""
        if not isinstance(raw, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(raw) - set(_FAULT_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        cfg = deepcopy(_FAULT_DEFAULTS)
        cfg.update(raw)
        if cfg["provider"] is not None and cfg["provider"] not in providers:
            raise ValueError(f"provider must be null or one of {list(providers)}")
        for key in ("error_rate", "timeout_rate", "malformed_rate", "apply_then_error_rate"):
            cfg[key] = _number(key, cfg[key], 0, 1)
        cfg["latency_ms"] = _number("latency_ms", cfg["latency_ms"], 0, 600_000)
        cfg["timeout_seconds"] = _number("timeout_seconds", cfg["timeout_seconds"], 0, 3600)
        statuses = cfg["error_statuses"]
        if (
            not isinstance(statuses, list)
            or not statuses
            or not all(isinstance(s, int) and 400 <= s <= 599 for s in statuses)
        ):
            raise ValueError("error_statuses must be a non-empty list of 4xx/5xx codes")
        for key in ("truncate_pages", "mutate_during_sync"):
            if not isinstance(cfg[key], bool):
                raise ValueError(f"{key} must be a boolean")
        if not isinstance(cfg["seed"], int) or isinstance(cfg["seed"], bool):
            raise ValueError("seed must be an integer")
        if not isinstance(cfg["queue"], list):
            raise ValueError("queue must be a list")
        for i, item in enumerate(cfg["queue"]):
            _validate_queue_item(i, item)
        with self._lock:
            self._config = cfg
            self._queue = deque(deepcopy(cfg["queue"]))
            self._rng = random.Random(cfg["seed"])  # noqa: S311 - fault dice, not security
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            out = deepcopy(self._config)
            out["queue"] = list(deepcopy(self._queue))
            return out

    def _matches(self, provider: str) -> bool:
        return self._config["provider"] in (None, provider)

    def flag(self, provider: str, name: str) -> bool:
        """Whether a boolean fault (truncate_pages, mutate_during_sync) applies to provider."""
        with self._lock:
            return self._matches(provider) and bool(self._config[name])

    def next_action(self, provider: str, method: str = "GET", path: str = "") -> FaultAction | None:
        """Decide the fault (if any) for the next API request of ``provider``."""
        with self._lock:
            if not self._matches(provider):
                return None
            cfg = self._config
            action = FaultAction(delay_seconds=cfg["latency_ms"] / 1000.0)
            if cfg["latency_ms"]:
                action.kinds.append("latency")
            item = self._take_queued(method, path)
            if item is not None:
                action.delay_seconds += float(item.get("delay_seconds", 0))
                action.status = item.get("status")
                action.retry_after = item.get("retry_after")
                action.body = item.get("body")
                action.headers = dict(item.get("headers") or {})
                action.malformed = bool(item.get("malformed", False))
                action.kinds.append("queue")
                if item.get("apply_then_error"):
                    action.apply_first = True
                    action.status = action.status or 500
                    action.kinds.append("apply_then_error")
                return action
            rng = self._rng
            if cfg["timeout_rate"] and rng.random() < cfg["timeout_rate"]:
                action.delay_seconds += cfg["timeout_seconds"]
                action.kinds.append("timeout")
            if cfg["error_rate"] and rng.random() < cfg["error_rate"]:
                action.status = rng.choice(cfg["error_statuses"])
                action.kinds.append("error")
            elif (
                cfg["apply_then_error_rate"]
                and method in WRITE_METHODS
                and rng.random() < cfg["apply_then_error_rate"]
            ):
                action.status = rng.choice(cfg["error_statuses"])
                action.apply_first = True
                action.kinds.append("apply_then_error")
            elif cfg["malformed_rate"] and rng.random() < cfg["malformed_rate"]:
                action.malformed = True
                action.kinds.append("malformed")
            return action if action.kinds else None

    def _take_queued(self, method: str, path: str) -> dict[str, Any] | None:
        """Remove and return the first queue entry whose filters match (lock held)."""
        for i, item in enumerate(self._queue):
            wanted = (item.get("method") or "").upper()
            if wanted == "WRITE" and method not in WRITE_METHODS:
                continue
            if wanted not in ("", "WRITE") and method != wanted:
                continue
            pattern = item.get("path")
            if pattern is not None and not fnmatchcase(path, pattern):
                continue
            del self._queue[i]
            return item
        return None


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in {lo}..{hi}")
    return value


def _validate_queue_item(i: int, item: Any) -> None:
    if not isinstance(item, dict) or not item:
        raise ValueError(f"queue[{i}] must be a non-empty object")
    unknown = set(item) - _QUEUE_ITEM_KEYS
    if unknown:
        raise ValueError(f"queue[{i}] has unknown keys {sorted(unknown)}")
    status = item.get("status")
    if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
        raise ValueError(f"queue[{i}].status must be an HTTP status code")
    for key in ("retry_after", "delay_seconds"):
        if key in item and item[key] is not None:
            _number(f"queue[{i}].{key}", item[key], 0, 3600)
    if "headers" in item and not isinstance(item["headers"], dict):
        raise ValueError(f"queue[{i}].headers must be an object")
    for key in ("malformed", "apply_then_error"):
        if key in item and not isinstance(item[key], bool):
            raise ValueError(f"queue[{i}].{key} must be a boolean")
    method = item.get("method")
    if method is not None and (not isinstance(method, str) or method.upper() not in _QUEUE_METHODS):
        raise ValueError(f"queue[{i}].method must be one of {sorted(_QUEUE_METHODS)}")
    if "path" in item and not isinstance(item["path"], str):
        raise ValueError(f"queue[{i}].path must be a string (an fnmatch pattern)")


def malformed(response: Response) -> Response:
    """Same status and headers, but the body cut in half so that it is not valid JSON.

    A proper prefix of a JSON object or array is never valid JSON, so the client's parser must
    fail. Streamed bodies are buffered up to 1 MiB first.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_encoded():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _MALFORMED_BUFFER_BYTES:
            break
    response.close()
    body = b"".join(chunks)
    cut = body[: len(body) // 2] if len(body) > 1 else b"{"
    headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
    return Response(cut, status=response.status_code, headers=headers)


# --- provider plumbing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A routed endpoint. ``template`` is the stats key; ``{name}`` parts listed in ``expand``
    are filled from the URL values (so stats say ``company.json``, not ``{object}.json``)."""

    provider: str
    kind: str  # "api" | "token" | "control"
    handler: Callable[..., Response]
    template: str
    expand: tuple[str, ...] = ()

    def path_template(self, values: dict[str, Any]) -> str:
        out = self.template
        for name in self.expand:
            out = out.replace("{" + name + "}", str(values.get(name, "")))
        return out


class ProviderApi:
    """Base class of an emulated provider (``servicem8.py``, ``servicetitan.py``).

    Subclasses must implement ``endpoints`` (their routes), ``error_response`` (the provider's
    error body for a status, used for injected faults and 404/405), and the record hooks used by
    the control API (``default_account``, ``parse_record_id``, ``new_record_id``,
    ``prepare_record``, ``render_record``). ``settings`` declares their run-time config.
    """

    provider: ClassVar[str]
    settings: ClassVar[dict[str, Setting]] = {}

    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    @property
    def store(self) -> Store:
        return self.app.store

    def endpoints(self) -> list[tuple[Rule, Endpoint]]:
        """Subclasses must implement: the (Rule, Endpoint) pairs this provider serves."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement endpoints")

    def error_response(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Subclasses must implement: an error in the provider's documented shape."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement error_response")

    def default_account(self) -> str:
        """Subclasses must implement: the account the control API uses when none is given."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement default_account")

    def parse_record_id(self, raw: str) -> RecordId:
        """Subclasses must implement: the stored id for a URL id; ``ValueError`` if invalid."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement parse_record_id")

    def new_record_id(self, collection: Collection) -> RecordId:
        """Subclasses must implement: a fresh id for a record created without one."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement new_record_id")

    def prepare_record(
        self, obj: str, data: dict[str, Any], existing: Record | None
    ) -> tuple[dict[str, Any], bool | None]:
        """Subclasses must implement: (stored data, active override) for a control upsert."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement prepare_record")

    def render_record(self, collection: Collection, record: Record) -> str:
        """Subclasses must implement: the record as the provider's API returns it (JSON text)."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement render_record")

    def owns_path(self, path: str) -> bool:
        """Whether an unmatched path belongs to this provider (for its 404 shape)."""
        return path.startswith(f"/{self.provider}/")


class SandboxApp:
    """The WSGI application. Create through ``SandboxServer`` or directly with a Store."""

    def __init__(self, store: Store) -> None:
        # Imported here: the provider modules import this module for the base classes.
        from integrations.sandbox.control import ControlApi
        from integrations.sandbox.seed import ensure_accounts
        from integrations.sandbox.servicem8 import ServiceM8Api
        from integrations.sandbox.servicetitan import ServiceTitanApi

        self.store = store
        self.providers: dict[str, ProviderApi] = {
            api.provider: api for api in (ServiceM8Api(self), ServiceTitanApi(self))
        }
        self.config = SandboxConfig({p: api.settings for p, api in self.providers.items()})
        self.stats = Stats(list(self.providers))
        self.faults = FaultInjector()
        self.limiter = RateLimiter()
        self.control = ControlApi(self)
        rules: list[Rule] = []
        self._endpoints: dict[str, Endpoint] = {}
        for source in (*self.providers.values(), self.control):
            for rule, endpoint in source.endpoints():
                self._endpoints[rule.endpoint] = endpoint
                rules.append(rule)
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)
        ensure_accounts(store)

    @classmethod
    def from_path(cls, db_path: str | Path) -> SandboxApp:
        return cls(Store(db_path))

    def reset_runtime(self) -> None:
        """Reset config, faults, stats and rate-limit windows (not data)."""
        self.config.reset()
        self.faults.clear()
        self.stats.reset()
        self.limiter.reset()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception as exc:
            # A sandbox bug, not an emulated provider error: log it loudly and say so in the
            # body, so a client test failing on it is not mistaken for a provider quirk.
            logger.exception("sandbox error on %s %s", request.method, request.path)
            response = json_response(
                {"error": "sandbox internal error", "detail": repr(exc)}, status=500
            )
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            name, values = adapter.match()
        except (NotFound, MethodNotAllowed) as exc:
            return self._unrouted(request, exc)
        except HTTPException as exc:  # e.g. RequestRedirect; never expected with our map
            return json_response({"error": exc.name}, status=exc.code or 500)
        endpoint = self._endpoints[name]
        if endpoint.kind == "control":
            return endpoint.handler(request, **values)
        if endpoint.kind == "token":
            self.stats.token_request(endpoint.provider)
            return endpoint.handler(request, **values)
        return self._api(request, endpoint, values)

    def _api(self, request: Request, endpoint: Endpoint, values: dict[str, Any]) -> Response:
        provider = endpoint.provider
        method = request.method
        self.stats.api_request(
            provider, f"{method} {endpoint.path_template(values)}", method, request.path
        )
        action = self.faults.next_action(provider, method, request.path)
        if action is None:
            response = endpoint.handler(request, **values)
        else:
            for kind in action.kinds:
                self.stats.fault(provider, kind)
            if action.apply_first:
                # Handle for real (the write is applied), then answer as if it had failed.
                endpoint.handler(request, **values).close()
                if action.delay_seconds:
                    time.sleep(action.delay_seconds)
                response = self._fault_response(provider, action)
            else:
                if action.delay_seconds:
                    time.sleep(action.delay_seconds)
                if action.status is not None:
                    response = self._fault_response(provider, action)
                else:
                    response = endpoint.handler(request, **values)
            if action.malformed:
                response = malformed(response)
        self.stats.response(provider, response.status_code)
        return response

    def _fault_response(self, provider: str, action: FaultAction) -> Response:
        """The error answer of a fault: its body, or the provider's error shape for the status."""
        status = action.status or 500
        headers = dict(action.headers)
        if action.retry_after is not None:
            # Retry-After is integer seconds (RFC 9110 §10.2.3); round up, never to 0.
            headers["Retry-After"] = str(max(1, math.ceil(action.retry_after)))
        if status == 429:
            self.stats.rate_limited(provider, "fault")
        if action.body is not None:
            return json_response(action.body, status=status, headers=headers)
        return self.providers[provider].error_response(status, headers=headers)

    def _unrouted(self, request: Request, exc: HTTPException) -> Response:
        status = exc.code or 404
        for api in self.providers.values():
            if api.owns_path(request.path):
                return api.error_response(status)
        return json_response({"error": exc.name, "path": request.path}, status=status)
