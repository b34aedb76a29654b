"""pytest: fast hashing, in-memory email, dummy secrets. DATABASE_URL/REDIS_URL come from CI."""

from .base import *  # noqa: F403
from .base import VAR_DIR, ensure_local_dirs

DEBUG = False
SECRET_KEY = "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
FIELD_ENCRYPTION_KEYS = ["tUJvDsoZ2Xqf2iC7EO3P6A2yKXJ5WrLpbr3KytmRZ-E="]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
HEALTH_CHECK_TOKEN = "test-health-token"  # noqa: S105

STATIC_ROOT = VAR_DIR / "static"
ensure_local_dirs(VAR_DIR)

# Tests start the provider sandbox on a free port.
INTEGRATION_SANDBOX_HOSTS = ["127.0.0.1:*", "localhost:*"]
