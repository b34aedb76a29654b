"""Sentry: initialised only when SENTRY_DSN is set (see config/sentry.py for the scrubbing)."""

from config.env import env
from config.sentry import init_sentry

SENTRY_DSN = env("SENTRY_DSN", default="")

if SENTRY_DSN:
    init_sentry(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        release=env("APP_VERSION", default=None),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )
