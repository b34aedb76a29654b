"""Sync engine, outbox and webhook settings (documented in .env.example)."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env
from config.settings.components.celery import OUTBOX_TASK_TIME_LIMIT

# A running sync whose heartbeat is older than this is presumed dead (its worker was killed).
# Pages take at most a few minutes (rate-limit waits, retries, the provider's own timeouts).
SYNC_RUN_STALE_AFTER = env.int("SYNC_RUN_STALE_AFTER", default=15 * 60)
# Default schedules created for each enabled integration (editable per integration in the
# admin's periodic tasks): incremental every N minutes, a full reconciliation nightly at
# this hour of the company's time zone.
SYNC_INCREMENTAL_EVERY_MINUTES = env.int("SYNC_INCREMENTAL_EVERY_MINUTES", default=15)
SYNC_FULL_HOUR = env.int("SYNC_FULL_HOUR", default=2)

# Outbox relay: attempts before an event goes to the dead letters, and its backoff.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_BACKOFF_BASE = env.int("OUTBOX_BACKOFF_BASE", default=30)
OUTBOX_BACKOFF_MAX = env.int("OUTBOX_BACKOFF_MAX", default=60 * 60)
# An event claimed by a relay that died is claimable again after this many seconds.
OUTBOX_CLAIM_TIMEOUT = env.int("OUTBOX_CLAIM_TIMEOUT", default=5 * 60)

if OUTBOX_CLAIM_TIMEOUT <= OUTBOX_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"OUTBOX_CLAIM_TIMEOUT ({OUTBOX_CLAIM_TIMEOUT} s) must exceed the outbox task's time "
        f"limit ({OUTBOX_TASK_TIME_LIMIT} s), or a live relay's event could be claimed twice"
    )
if 60 % SYNC_INCREMENTAL_EVERY_MINUTES:
    raise ImproperlyConfigured("SYNC_INCREMENTAL_EVERY_MINUTES must divide 60 (a cron */N)")
