"""Prometheus metrics for provider calls, labelled by provider (never by integration: that
would make one series per tenant)."""

from prometheus_client import Counter, Histogram

PROVIDER_CALLS = Counter(
    "fieldbridge_provider_calls_total",
    "HTTP calls made to providers, by outcome.",
    ["provider", "method", "status_class"],
)
PROVIDER_ERRORS = Counter(
    "fieldbridge_provider_errors_total",
    "Provider calls that ended in a typed error, after retries.",
    ["provider", "error"],
)
PROVIDER_RETRIES = Counter(
    "fieldbridge_provider_retries_total", "Provider calls retried.", ["provider", "reason"]
)
PROVIDER_LATENCY = Histogram(
    "fieldbridge_provider_call_seconds",
    "Latency of one HTTP call to a provider.",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RATE_LIMIT_WAIT = Histogram(
    "fieldbridge_provider_rate_limit_wait_seconds",
    "Time spent waiting for the shared rate limiter.",
    ["provider"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 120),
)
BUDGET_EXHAUSTED = Counter(
    "fieldbridge_provider_budget_exhausted_total",
    "Calls deferred because a daily (or other long) budget was spent.",
    ["provider"],
)
TOKEN_REFRESHES = Counter(
    "fieldbridge_provider_token_refreshes_total", "OAuth token grants and refreshes.", ["provider"]
)
CACHE_HITS = Counter(
    "fieldbridge_provider_cache_hits_total", "Reads served from cache.", ["provider"]
)
