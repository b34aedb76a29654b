"""`make run`: SQLite, a filesystem broker, console email. Never use these values in production."""

from config.env import env

from .base import *  # noqa: F403
from .base import VAR_DIR, ensure_local_dirs

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env(
    "DJANGO_SECRET_KEY", default="local-only-insecure-key-not-for-production-use-0123456789"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# A fixed key so a fresh checkout runs without set-up. It protects nothing: local data only.
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["m7PJ2X0dTAJbU0Cj0CJ3ZK6fFYbb3XDkyo7ZQ6g-qUs="]
)

STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

STATIC_ROOT = VAR_DIR / "static"
ensure_local_dirs(VAR_DIR)
