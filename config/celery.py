"""The Celery app: settings from Django's CELERY_ namespace, tasks autodiscovered per app."""

import os

from celery import Celery

from sync.schedules import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("fieldbridge")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()
