"""The REST API (/api/v1/): authentication, pagination, errors, throttling and the OpenAPI
schema (documented in .env.example)."""

from config.env import env

REST_FRAMEWORK = {
    # Bearer API tokens first, so an unauthenticated request gets 401 with WWW-Authenticate;
    # the session (with CSRF) serves the browser.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSON, encoded by orjson (portal/api/renderers.py: the same bytes, ~10 × faster).
    "DEFAULT_RENDERER_CLASSES": ["portal.api.renderers.OrjsonRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.ApiCursorPagination",
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.api.throttles.UserRateThrottle",
        "portal.api.throttles.IpRateThrottle",
        "portal.api.throttles.UserWriteRateThrottle",
        "portal.api.throttles.IpWriteRateThrottle",
    ],
    # The deployment's trusted proxies, one setting for the portal and the API
    # (PORTAL_NUM_PROXIES, see components/portal.py); 0 trusts only the socket's address.
    "NUM_PROXIES": env.int("PORTAL_NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "portal.api.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.ApiAutoSchema",
}

# Requests allowed per user and, separately, per client IP ("<n>/<second|minute|hour|day>").
# Writes (POST, PUT, PATCH, DELETE) count against the stricter write rate as well.
API_THROTTLE_RATE = env("API_THROTTLE_RATE", default="100/minute")
API_THROTTLE_WRITE_RATE = env("API_THROTTLE_WRITE_RATE", default="20/minute")
# Throttle counters live in the default cache under this prefix.
API_THROTTLE_CACHE_PREFIX = "api-throttle"
# Cursor pagination: the default page size and the most a client may ask for (?page_size=).
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=200)
# Days a new API token lasts unless the admin sets another expiry.
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)

SPECTACULAR_SETTINGS = {
    "TITLE": "Fieldbridge API",
    "DESCRIPTION": (
        "Read the jobs, quotes and clients Fieldbridge syncs from field-service providers, and "
        "approve or reject quotes. Authenticate with a session (browser, CSRF token required "
        "for writes) or an API token created in the admin: `Authorization: Bearer <token>`. "
        "Lists use cursor pagination (`next`/`previous` links). Errors have the shape "
        '`{"error": {"code", "message", "fields"}}`. Requests are rate-limited per user and '
        "per IP; every response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and "
        "`X-RateLimit-Reset`, and a 429 carries `Retry-After`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SCHEMA_PATH_PREFIX_INSERT": "",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "portal.models.Job.Status",
        "QuoteStatusEnum": "quotes.models.Quote.Status",
        "WritebackStatusEnum": "sync.models.OutboxEvent.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api.schema.add_error_responses",
    ],
    "SERVERS": [{"url": "/", "description": "This Fieldbridge server"}],
}
