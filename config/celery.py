"""The Celery app: settings from Django's CELERY_ namespace, tasks autodiscovered per app."""

import os

from celery import Celery
from celery.signals import before_task_publish, task_prerun

from config.logging import request_id_var
from sync.schedules import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("fieldbridge")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()


@before_task_publish.connect
def _send_request_id(headers: dict | None = None, **kwargs) -> None:
    """Carry the web request's correlation id into the task's message."""
    request_id = request_id_var.get()
    if headers is not None and request_id != "-":
        headers["request_id"] = request_id


@task_prerun.connect
def _receive_request_id(task=None, **kwargs) -> None:
    """Log task lines under the id of the request that queued it (else the task id)."""
    if task is not None:
        request_id_var.set(getattr(task.request, "request_id", None) or task.request.id or "-")
