"""Celery beat schedule, in code (assigned in config/celery.py).

Use crontab for anything of a minute or more (beat resets interval countdowns on restart); give
each entry options={"expires": 1.5 x interval} and a one-line comment with cadence and reason.
The sync engine's entries arrive with it.
"""

BEAT_SCHEDULE: dict[str, dict] = {}
