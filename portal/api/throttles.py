"""Rate limits per user and per client IP, stricter for writes, read from settings at request
time (API_THROTTLE_RATE, API_THROTTLE_WRITE_RATE) so they can be changed without reloading.

Each throttle records its state on the request; `RateLimitHeadersMixin` reports the tightest
one as X-RateLimit-Limit / -Remaining / -Reset (seconds until a slot frees up). Over the
limit DRF raises Throttled, which the exception handler turns into 429 with Retry-After.

Throttles with `before_authentication` (the per-IP ones) are checked by
`CompanyScopedApiMixin` before the request is authenticated, so unauthenticated and bad-token
requests are limited (and cost no token lookup once over the limit).
"""

from django.conf import settings
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
        self.key = None
        allowed = super().allow_request(request, view)
        if self.key is not None:
            remaining = max(0, self.num_requests - len(self.history))
            reset = int(self.history[-1] + self.duration - self.now + 0.999) if self.history else 0
            states = getattr(request, "_rate_limit_states", [])
            states.append((remaining, self.num_requests, max(reset, 0)))
            request._rate_limit_states = states
        return allowed


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
