"""Celery beat schedule, in code (assigned in config/celery.py).

Use crontab for anything of a minute or more (beat resets interval countdowns on restart); give
each entry options={"expires": 1.5 x interval} and a one-line comment with cadence and reason.
Each integration's own sync schedules are rows in django-celery-beat's tables, created and
kept in step by `sync.beat` (editable in the admin under Periodic tasks).
"""

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict] = {
    # Every minute: deliver outbox events whose on-commit kick was lost (broker down, crash).
    "outbox-relay": {
        "task": "sync.outbox_relay",
        "schedule": crontab(minute="*"),
        "options": {"expires": 90},
    },
    # Every 5 minutes: close sync runs whose worker died, so their entity can run again.
    "sync-close-dead-runs": {
        "task": "sync.sync_runs_close_dead",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 450},
    },
    # Every 5 minutes: queue again webhook events whose processing never started or gave up.
    "webhook-events-requeue": {
        "task": "sync.webhook_events_requeue",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 450},
    },
    # Every 5 minutes: open and close alert incidents whose condition changed without a hook
    # seeing it (runs closed as dead, fixes made elsewhere); alerts go out once per incident.
    "alerts-check": {
        "task": "sync.alerts_check",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 450},
    },
    # Every 10 minutes: keep each integration's sync schedules in step with the integration
    # (created, enabled or paused, removed), whatever path changed it.
    "sync-schedules-reconcile": {
        "task": "sync.schedules_reconcile",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 900},
    },
}
