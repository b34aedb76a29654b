"""Sentry: initialised only when SENTRY_DSN is set, with secrets scrubbed before sending."""

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from config.env import env

SENTRY_DSN = env("SENTRY_DSN", default="")

# Field names whose values never leave the process, on top of Sentry's own list.
SENTRY_EXTRA_DENYLIST = [
    "credentials",
    "client_secret",
    "refresh_token",
    "access_token",
    "api_key",
    "x-api-key",
    "st-app-key",
    "app_key",
    "token",
    "webhook_secret",
    "field_encryption_keys",
]

if SENTRY_DSN:
    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        release=env("APP_VERSION", default=None),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,
        event_scrubber=EventScrubber(
            denylist=DEFAULT_DENYLIST + SENTRY_EXTRA_DENYLIST, recursive=True
        ),
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(),
        ],
    )
