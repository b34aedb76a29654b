"""Production settings refuse to start without their required values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "x" * 30 + "abcdefghijklmnopqrstuvwxyz",
    "DATABASE_URL": "postgres://u:p@localhost:5432/db",
    "REDIS_URL": "redis://localhost:6379/0",
    "DJANGO_ALLOWED_HOSTS": "fieldbridge.example.com",
    "FIELD_ENCRYPTION_KEYS": "tUJvDsoZ2Xqf2iC7EO3P6A2yKXJ5WrLpbr3KytmRZ-E=",
}


def _boot(env: dict) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "CELERY_BROKER_URL"
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup(); print('booted')"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_boots_with_every_required_value():
    result = _boot(PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "booted" in result.stdout


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_ALLOWED_HOSTS",
        "FIELD_ENCRYPTION_KEYS",
    ],
)
def test_production_refuses_to_start_without(missing):
    result = _boot({k: v for k, v in PRODUCTION_ENV.items() if k != missing})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


@pytest.mark.parametrize(
    "empty",
    [
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_ALLOWED_HOSTS",
        "FIELD_ENCRYPTION_KEYS",
    ],
)
def test_production_refuses_to_start_with_an_empty(empty):
    result = _boot({**PRODUCTION_ENV, empty: " "})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert empty in result.stderr


def test_time_limits_must_stay_below_the_visibility_timeout():
    result = _boot({**PRODUCTION_ENV, "CELERY_VISIBILITY_TIMEOUT": "600"})
    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT" in result.stderr


def test_production_refuses_a_malformed_encryption_key():
    result = _boot({**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": "not-a-key"})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr


@pytest.mark.django_db
def test_postgres_sessions_plan_for_fast_random_reads():
    """The (client_id, id) index beats walking the primary key past other tenants' rows only
    with a realistic random_page_cost (config/settings/base.py)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL session setting")
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert cursor.fetchone()[0] == "1.1"
