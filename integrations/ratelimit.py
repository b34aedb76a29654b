"""One rate limiter per integration, shared by every worker process through Redis.

Built on pyrate-limiter's sliding-window log (a Redis sorted set per integration, checked and
written atomically by a Lua script), configured from each provider's documented limits
(`Provider.rate_limits`). Short windows (a second, a minute) make the caller wait its turn;
when a long window (a day's budget) is spent the caller gets `BudgetExhausted` with the time
the budget frees up, so the work is deferred rather than failed.

Each window is counted a little longer than documented (`WINDOW_SAFETY`): our timestamps are
taken before the request leaves, the provider's when it arrives, and network jitter must never
let two calls land inside one provider window that we counted in two.

Without Redis (`make run`), the bucket lives in process memory: correct for one worker process,
which is what the local stack runs.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from pyrate_limiter import InMemoryBucket, Rate, RateItem, RedisBucket

from integrations import metrics
from integrations.exceptions import BudgetExhausted

logger = logging.getLogger(__name__)

WINDOW_SAFETY = 0.02  # 2 % longer windows; see the module docstring
# Windows longer than this are budgets: exhausting one defers the work instead of sleeping.
MAX_BLOCKING_WINDOW_SECONDS = 120


@dataclass(frozen=True)
class RateWindow:
    limit: int
    seconds: float

    def as_rate(self) -> Rate:
        return Rate(self.limit, int(self.seconds * 1000 * (1 + WINDOW_SAFETY)))


_buckets: dict[str, object] = {}
_buckets_lock = threading.Lock()
_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def _bucket(key: str, windows: tuple[RateWindow, ...]):
    cache_key = f"{key}:{windows}"
    with _buckets_lock:
        bucket = _buckets.get(cache_key)
        if bucket is None:
            rates = sorted((w.as_rate() for w in windows), key=lambda r: r.interval)
            if settings.REDIS_URL:
                bucket = RedisBucket.init(rates, _redis(), f"fieldbridge:ratelimit:{key}")
            else:
                bucket = InMemoryBucket(rates)
            _buckets[cache_key] = bucket
        return bucket


class RateLimiter:
    """Admits calls for one bucket key (one provider account). `acquire()` blocks for short
    windows, up to `max_wait` seconds in all (90 s: enough for a per-minute window to slide,
    little enough that a task never sits on a worker for long), and raises BudgetExhausted for
    long windows or longer waits, so the caller defers the work."""

    def __init__(
        self, *, key: str, windows: tuple[RateWindow, ...], provider: str, max_wait: float = 90
    ):
        self.key = key
        self.windows = windows
        self.provider = provider
        self.max_wait = max_wait
        self._puts = 0

    def acquire(self) -> float:
        """Take one permit. Returns the seconds spent waiting."""
        if not self.windows:
            return 0.0
        bucket = _bucket(self.key, self.windows)
        waited = 0.0
        while True:
            item = RateItem(self.key, bucket.now(), 1)
            if bucket.put(item):
                self._maybe_leak(bucket)
                if waited:
                    metrics.RATE_LIMIT_WAIT.labels(provider=self.provider).observe(waited)
                return waited
            rate = bucket.failing_rate
            wait_ms = max(int(bucket.waiting(item)), 1)
            if rate is not None and rate.interval > MAX_BLOCKING_WINDOW_SECONDS * 1000:
                metrics.BUDGET_EXHAUSTED.labels(provider=self.provider).inc()
                retry_at = datetime.now(tz=UTC) + timedelta(milliseconds=wait_ms)
                window = next(w for w in self.windows if w.as_rate().interval == rate.interval)
                raise BudgetExhausted(
                    f"{self.provider}: the budget of {window.limit} calls per "
                    f"{window.seconds:.0f} s is spent; "
                    f"work resumes at {retry_at:%Y-%m-%d %H:%M:%S} UTC",
                    provider=self.provider,
                    retry_at=retry_at,
                    retry_after=wait_ms / 1000,
                )
            sleep_for = min(wait_ms / 1000, self.max_wait - waited)
            if sleep_for <= 0:
                raise BudgetExhausted(
                    f"{self.provider}: waited {waited:.1f} s for the rate limit; deferring",
                    provider=self.provider,
                    retry_at=datetime.now(tz=UTC) + timedelta(milliseconds=wait_ms),
                    retry_after=wait_ms / 1000,
                )
            time.sleep(sleep_for)
            waited += sleep_for

    def _maybe_leak(self, bucket) -> None:
        # Drop entries older than the longest window now and then, so the set stays small.
        self._puts += 1
        if self._puts % 200 == 0:
            bucket.leak(bucket.now())
