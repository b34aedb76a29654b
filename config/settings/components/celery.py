"""Celery settings (CELERY_ namespace). The app itself is config/celery.py."""

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from config.env import BASE_DIR, env

_REDIS_URL = env("REDIS_URL", default="")
_VAR = BASE_DIR / "var"

# Without Redis (`make run`), kombu's filesystem transport is the broker: real worker and beat
# processes exchange messages through a directory, no service needed.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_REDIS_URL or "filesystem://localhost/")
CELERY_RESULT_BACKEND = env(
    "CELERY_RESULT_BACKEND",
    default=_REDIS_URL or f"file://{_VAR / 'celery' / 'results'}",
)

# Seconds a reserved-but-unacknowledged message stays invisible on Redis before it is handed to
# another worker. Every time limit below must stay under it, or a slow task runs twice at once.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 60 * 60)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _folder = str(_VAR / "celery" / "broker")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": _folder,
        "data_folder_out": _folder,
        "processed_folder": str(_VAR / "celery" / "processed"),
        "control_folder": str(_VAR / "celery" / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 24 * 60 * 60
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True

# Named queues. Routes match task names; anything unrouted lands on "default".
CELERY_TASK_DEFAULT_QUEUE = "default"
# Each queue has its own direct exchange and routing key, so a message reaches one queue only.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("sync", "outbox", "webhooks", "default")
]
CELERY_TASK_DEFAULT_EXCHANGE = "default"
CELERY_TASK_DEFAULT_ROUTING_KEY = "default"
CELERY_TASK_ROUTES = {
    "sync.process_webhook_event": {"queue": "webhooks"},
    "sync.outbox_*": {"queue": "outbox"},
    "sync.*": {"queue": "sync"},
}

# At-least-once delivery for sync and outbox work: a message is acknowledged only after its
# task finished, a worker that dies mid-task gives it back, and each worker process reserves
# one message at a time so a crash strands nothing else.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True

# Default limits; the sync and outbox tasks set their own, all below the visibility timeout.
CELERY_TASK_SOFT_TIME_LIMIT = 5 * 60
CELERY_TASK_TIME_LIMIT = 6 * 60
SYNC_TASK_SOFT_TIME_LIMIT = 55 * 60
SYNC_TASK_TIME_LIMIT = 60 * 60
OUTBOX_TASK_SOFT_TIME_LIMIT = env.int("OUTBOX_TASK_SOFT_TIME_LIMIT", default=2 * 60)
OUTBOX_TASK_TIME_LIMIT = env.int("OUTBOX_TASK_TIME_LIMIT", default=3 * 60)

_longest = max(CELERY_TASK_TIME_LIMIT, SYNC_TASK_TIME_LIMIT, OUTBOX_TASK_TIME_LIMIT)
if _longest >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT} s) must exceed the longest task "
        f"time limit ({_longest} s), or a task still running is handed to a second worker"
    )

# One beat only: the scheduler holds a lock and a second beat stands by (sync/beat.py).
CELERY_BEAT_SCHEDULER = "sync.beat:LockedDatabaseScheduler"
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
