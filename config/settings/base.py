"""Settings shared by every environment; the others override only what they must."""

from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, env

READ_DOT_ENV = env.bool("DJANGO_READ_DOT_ENV_FILE", default=False)
if READ_DOT_ENV:
    env.read_env(str(BASE_DIR / ".env"))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# The version reported by /health; set by the image build or CI.
APP_VERSION = env("APP_VERSION", default="0.1.0")

VAR_DIR = BASE_DIR / "var"


def ensure_local_dirs(var_dir) -> None:
    """The folders the service-less stack (local, test) keeps its state in."""
    for sub in (
        "static",
        "cache",
        "media",
        "celery/broker",
        "celery/processed",
        "celery/results",
        "celery/control",
    ):
        (var_dir / sub).mkdir(parents=True, exist_ok=True)


DATABASE_URL = (
    env("DATABASE_URL", default="").strip() or f"sqlite:///{VAR_DIR / 'fieldbridge.sqlite3'}"
)
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if "ENGINE" not in DATABASES["default"]:
    raise ImproperlyConfigured("DATABASE_URL names a database engine Django does not know")
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share one SQLite file in `make run`: wait for locks
    # instead of failing, and take the write lock up front so transactions never deadlock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend whose health check costs no round trip (config/postgresql/base.py).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # PostgreSQL's default random_page_cost (4) models spinning disks: with it the planner
    # walks the primary key backwards for "a client's newest quotes" and filters out every
    # other tenant's newer rows (10.8 ms for a first page behind 10,000 of them) instead of
    # the (client_id, id) index (0.26 ms). 1.1 is the usual value for SSD or cached data.
    # Set per session (libpq startup option); empty leaves the server's value, e.g. behind a
    # PgBouncer that refuses startup options.
    _page_cost = env("POSTGRES_RANDOM_PAGE_COST", default="1.1").strip()
    if _page_cost:
        try:
            float(_page_cost)
        except ValueError:
            raise ImproperlyConfigured("POSTGRES_RANDOM_PAGE_COST must be a number") from None
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        _options["options"] = (
            f"{_options.get('options', '')} -c random_page_cost={_page_cost}".strip()
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "portal",
    "portal.api.apps.ApiConfig",
    "quotes",
    "integrations",
    "sync",
]

MIDDLEWARE = [
    "config.metrics.RequestMetricsMiddleware",
    "config.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.CompanyTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "portal.User"
# Django's ModelBackend, with the signed-in user's row from the cache instead of a query per
# request (portal/api/user_cache.py).
AUTHENTICATION_BACKENDS = ["portal.api.user_cache.CachedModelBackend"]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "portal:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

ADMIN_URL = env("DJANGO_ADMIN_URL", default="admin/")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Fieldbridge <noreply@fieldbridge.local>")

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": REDIS_URL}}
    # Sessions are read on every signed-in request: from Redis (written through to the
    # database, which stays the record), not with a query each.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # Without Redis every process (web, worker, beat) still needs one shared cache: a directory.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# Fernet keys for encrypted fields, newest first; older keys only decrypt (rotation).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# A bearer token that lets monitoring read /health/detailed without a staff session.
HEALTH_CHECK_TOKEN = env("HEALTH_CHECK_TOKEN", default="")
# A bearer token that lets Prometheus scrape /metrics (superusers may read it signed in).
METRICS_TOKEN = env("METRICS_TOKEN", default="")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

from config.settings.components.admin_ops import *  # noqa: E402,F403
from config.settings.components.celery import *  # noqa: E402,F403
from config.settings.components.drf import *  # noqa: E402,F403
from config.settings.components.logging import *  # noqa: E402,F403
from config.settings.components.portal import *  # noqa: E402,F403
from config.settings.components.sentry import *  # noqa: E402,F403
from config.settings.components.sync import *  # noqa: E402,F403
