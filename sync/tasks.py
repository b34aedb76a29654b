"""Celery task plumbing for the sync and outbox queues.

Tasks here are thin: they load ids, call a service and decide about retries (STYLE.md §6).
Every sync or outbox task uses one of the base classes below, so its time limits stay below
the broker's visibility timeout (checked when the settings load) and its delivery is
at-least-once: acknowledged late, given back if the worker dies.
"""

from celery import Task
from django.conf import settings


class SyncTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    soft_time_limit = settings.SYNC_TASK_SOFT_TIME_LIMIT
    time_limit = settings.SYNC_TASK_TIME_LIMIT


class OutboxTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    soft_time_limit = settings.OUTBOX_TASK_SOFT_TIME_LIMIT
    time_limit = settings.OUTBOX_TASK_TIME_LIMIT
