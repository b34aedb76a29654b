"""Rate limits per user and per client IP, stricter for writes, read from settings at request
time (API_THROTTLE_RATE, API_THROTTLE_WRITE_RATE) so they can be changed without reloading.

Each throttle records its state on the request; `RateLimitHeadersMixin` reports the tightest
one as X-RateLimit-Limit / -Remaining / -Reset (seconds until a slot frees up). Over the
limit DRF raises Throttled, which the exception handler turns into 429 with Retry-After.

Throttles with `before_authentication` (the per-IP ones) are checked by
`CompanyScopedApiMixin` before the request is authenticated, so unauthenticated and bad-token
requests are limited (and cost no token lookup once over the limit).

`throttle_waits` checks a phase's throttles together: on Redis (Django's RedisCache) in one
round trip, a Lua script keeping each throttle's window as a Redis list of timestamps (newest
first, as DRF's history); on any other cache (the file cache of `make run`) one throttle at a
time through DRF's cache get/set. Both keep DRF's sliding window: a refused request is not
counted, and every throttle of the phase counts the request whether or not another refuses.
"""

import time

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.utils.connection import ConnectionProxy
from redis.commands.core import Script
from rest_framework import throttling

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class _RateThrottle(throttling.SimpleRateThrottle):
    setting = "API_THROTTLE_RATE"
    writes_only = False
    before_authentication = False

    def __init__(self) -> None:
        # Read per request, not at import (SimpleRateThrottle's class attribute).
        self.rate = getattr(settings, self.setting)
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def ident_for(self, request) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request, view):
        if self.writes_only and request.method in SAFE_METHODS:
            return None
        ident = self.ident_for(request)
        if ident is None:
            return None
        return f"{settings.API_THROTTLE_CACHE_PREFIX}:{type(self).__name__}:{ident}"

    def allow_request(self, request, view):
        """DRF's check through the cache's get/set (the non-Redis path)."""
        self.key = None
        allowed = super().allow_request(request, view)
        if self.key is not None:
            self.settle(
                request, count=len(self.history), oldest=self.history[-1] if self.history else None
            )
        return allowed

    def settle(self, request, *, count: int, oldest: float | None) -> None:
        """Record the window after this request (its size, its oldest timestamp) for wait()
        and the X-RateLimit-* headers."""
        self.count, self.oldest = count, oldest
        remaining = max(0, self.num_requests - count)
        reset = int(oldest + self.duration - self.now + 0.999) if oldest is not None else 0
        states = getattr(request, "_rate_limit_states", [])
        states.append((remaining, self.num_requests, max(reset, 0)))
        request._rate_limit_states = states

    def wait(self):
        """DRF's wait() from the recorded window (no history list needed)."""
        if self.oldest is not None:
            remaining_duration = self.duration - (self.now - self.oldest)
        else:
            remaining_duration = self.duration
        available_requests = self.num_requests - self.count + 1
        if available_requests <= 0:
            return None
        return remaining_duration / float(available_requests)


class UserRateThrottle(_RateThrottle):
    def ident_for(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return f"user:{user.pk}"


class IpRateThrottle(_RateThrottle):
    before_authentication = True  # needs no user: checked before authenticating

    def ident_for(self, request):
        return f"ip:{self.get_ident(request)}"


class UserWriteRateThrottle(UserRateThrottle):
    setting = "API_THROTTLE_WRITE_RATE"
    writes_only = True


class IpWriteRateThrottle(IpRateThrottle):
    setting = "API_THROTTLE_WRITE_RATE"
    writes_only = True


# KEYS: the windows, then cache entries to read along (`also_read`); ARGV: now, the gate (how
# many leading windows form the first phase), the number of windows, then each window's limit
# and duration. Per window: drop the timestamps that left it, count the request if under the
# limit (LPUSH, EXPIRE), and return {allowed, size, oldest}. When a window of the first phase
# refuses, the later windows are left alone (not counted, no result), as if the phases had
# been two calls. The first element of the answer is the MGET of the entries read along (an
# empty list when none). `now` is stored as sent (a float's repr), so it reads back exactly.
_WINDOWS_LUA = b"""
local now = tonumber(ARGV[1])
local gate = tonumber(ARGV[2])
local windows = tonumber(ARGV[3])
local refused = false
local out = {{}}
if #KEYS > windows then
  out[1] = redis.call('MGET', unpack(KEYS, windows + 1))
end
for i = 1, windows do
  local key = KEYS[i]
  if refused and i > gate then break end
  local limit = tonumber(ARGV[2 * i + 2])
  local duration = tonumber(ARGV[2 * i + 3])
  while true do
    local oldest = redis.call('LINDEX', key, -1)
    if not oldest or tonumber(oldest) > now - duration then break end
    redis.call('RPOP', key)
  end
  local allowed = 0
  if redis.call('LLEN', key) < limit then
    redis.call('LPUSH', key, ARGV[1])
    redis.call('EXPIRE', key, math.ceil(duration))
    allowed = 1
  elseif i <= gate then
    refused = true
  end
  out[i + 1] = {allowed, redis.call('LLEN', key), redis.call('LINDEX', key, -1) or false}
end
return out
"""
_WINDOWS = Script(None, _WINDOWS_LUA)  # EVALSHA, loading the script on the first miss


def _redis_client(cache):
    """A redis-py client for Django's RedisCache, else None (use DRF's get/set)."""
    cache = caches[DEFAULT_CACHE_ALIAS] if isinstance(cache, ConnectionProxy) else cache
    if not isinstance(cache, RedisCache):
        return None
    # RedisCache's own connection pool (config.cache.RedisCache keeps the client too).
    return cache._cache.get_client(write=True)


def throttle_waits(
    throttles, request, view, *, gate: int | None = None, also_read: tuple[str, ...] = ()
) -> tuple[list[float | None], dict | None]:
    """Count the request against every throttle; the waits of those that refuse it, and the
    cache entries named by `also_read` that were found (read in the same Redis round trip:
    e.g. the user's scope, portal.selectors.user_scope_cache_keys; None when they were not
    read, without Redis or without windows to check: the caller reads them itself).

    `gate`: the first `gate` throttles are an earlier phase checked in the same round trip
    (the per-IP ones of a session request, see mixins): when one of them refuses, the others
    are not counted, as if they had been checked after it."""
    windowed = [t for t in throttles if isinstance(t, _RateThrottle)]
    cache = windowed[0].cache if windowed else None
    client = _redis_client(cache)
    if client is None:
        windowed = []
    gate = len(throttles) if gate is None else gate
    first = {id(t) for t in throttles[:gate]}
    # Any other throttle, and every one without Redis: one at a time, as DRF does; when one of
    # the first phase refuses, the later phase is not counted.
    waits = []
    for phase in (throttles[:gate], throttles[gate:]):
        if waits:
            windowed = [t for t in windowed if id(t) in first]
            break
        waits += [
            t.wait() for t in phase if t not in windowed and not t.allow_request(request, view)
        ]
    active = []
    for throttle in windowed:
        throttle.key = throttle.get_cache_key(request, view)
        if throttle.key is not None:
            active.append(throttle)
    if not active:
        return waits, None
    now = time.time()
    # Lists, not the cache's pickled values: a suffix keeps them apart from DRF-format keys.
    keys = [cache.make_and_validate_key(f"{t.key}:window") for t in active]
    keys += [cache.make_and_validate_key(name) for name in also_read]
    args = [repr(now), sum(1 for t in active if id(t) in first), len(active)]
    for throttle in active:
        args += [throttle.num_requests, throttle.duration]
    read, *results = _WINDOWS(keys=keys, args=args, client=client)
    # The windows after a refusing first-phase window get no result (zip stops there).
    for throttle, (allowed, count, oldest) in zip(active, results, strict=False):
        throttle.now = now
        throttle.settle(request, count=int(count), oldest=None if oldest is None else float(oldest))
        if not allowed:
            waits.append(throttle.wait())
    loads = cache._cache._serializer.loads  # as RedisCache.get decodes a value
    found = {name: loads(raw) for name, raw in zip(also_read, read or (), strict=False) if raw}
    return waits, found


class RateLimitHeadersMixin:
    """Adds the X-RateLimit-* headers of the tightest throttle that counted this request."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        states = getattr(request, "_rate_limit_states", None)
        if states:
            remaining, limit, reset = min(states, key=lambda s: (s[0], -s[2]))
            response["X-RateLimit-Limit"] = str(limit)
            response["X-RateLimit-Remaining"] = str(remaining)
            response["X-RateLimit-Reset"] = str(reset)
        return response
