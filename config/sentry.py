"""Sentry set-up, shared by the settings component and the tests: secrets are scrubbed from
every event (request data, headers, local variables, breadcrumbs) before it leaves the process."""

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, DEFAULT_PII_DENYLIST, EventScrubber

from config.logging import redact_paths

# Field names whose values never leave the process, on top of Sentry's own list.
EXTRA_DENYLIST = [
    "credentials",
    "secrets",
    "client_secret",
    "refresh_token",
    "access_token",
    "id_token",
    "api_key",
    "apikey",
    "x_api_key",
    "x-api-key",
    "st-app-key",
    "st_app_key",
    "app_key",
    "token",
    "webhook_secret",
    "field_encryption_keys",
    "private_key",
]


# Any key containing one of these is scrubbed too, wherever it appears (form fields such as
# the admin's `new_credentials`, nested payloads), since Sentry's list matches exact names.
SENSITIVE_FRAGMENTS = (
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "api_key",
    "apikey",
    "app_key",
    "authorization",
    "private_key",
    "cookie",
    "session",
)
FILTERED = "[Filtered]"


def _scrub(value, depth: int = 0):
    if depth > 20:
        return value
    if isinstance(value, dict):
        return {
            k: FILTERED
            if isinstance(k, str) and any(f in k.lower() for f in SENSITIVE_FRAGMENTS)
            else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, str):
        return redact_paths(value)  # a webhook URL's path token (request url, breadcrumbs)
    return value


def before_send(event: dict, hint: dict) -> dict:
    """Runs after Sentry's own scrubber: catch the keys its exact-name list misses, and the
    secret path token of webhook URLs wherever a string holds one."""
    return _scrub(event)


def event_scrubber() -> EventScrubber:
    return EventScrubber(
        denylist=DEFAULT_DENYLIST + EXTRA_DENYLIST,
        pii_denylist=DEFAULT_PII_DENYLIST,
        recursive=True,
    )


def init_sentry(
    *, dsn: str, environment: str, release: str | None, traces_sample_rate: float, **extra
) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        traces_sample_rate=traces_sample_rate,
        # Deprecated in favour of data_collection, but data_collection switches the event
        # scrubber off (tests/test_observability.py proves the scrubbing), so we keep this.
        send_default_pii=False,
        event_scrubber=event_scrubber(),
        before_send=before_send,
        # Traces carry the request URL too (a webhook's path token).
        before_send_transaction=before_send,
        integrations=[DjangoIntegration(), CeleryIntegration(), LoggingIntegration()],
        **extra,
    )
