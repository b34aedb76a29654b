"""Shared fixtures, and the rule that in CI no test may skip for want of a service."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests import factories

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ROOT = Path(__file__).resolve().parent.parent


def require_service(reason_missing: str | None) -> None:
    """Skip (locally) or fail (in CI) when a service the test needs is not configured."""
    if reason_missing is None:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this service: {reason_missing}")
    pytest.skip(reason_missing)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if IN_CI and skipped:
        reporter.write_line(
            f"CI: {len(skipped)} test(s) skipped; no skips are allowed in CI.", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def company():
    return factories.CompanyFactory()


@pytest.fixture
def integration(company):
    return factories.IntegrationFactory(company=company)


def _database_url_for(settings_dict: dict) -> str:
    engine = settings_dict["ENGINE"]
    if "postgresql" not in engine:
        raise RuntimeError("a worker process can only share a server database")
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_queue(django_db_setup, django_db_blocker):
    """A real Celery worker process on the Redis broker, reading the test database, consuming a
    queue of its own (so a stray worker elsewhere can never take the test's messages)."""
    from django.conf import settings
    from django.db import connection

    redis_url = os.environ.get("REDIS_URL")
    require_service(
        None if redis_url else "REDIS_URL is not set: no Redis broker for a real worker"
    )
    require_service(
        None
        if connection.vendor == "postgresql"
        else "DATABASE_URL is not PostgreSQL: a worker process cannot share the in-memory test DB"
    )
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url_for(settings.DATABASES["default"]),
        "REDIS_URL": redis_url,
    }
    log = open(ROOT / "var" / f"celery-{queue}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
            "-n",
            f"{queue}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    from config.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early; see {log.name}")
        if app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=1):
            break
    else:
        proc.terminate()
        raise RuntimeError(f"worker did not answer within 60 s; see {log.name}")
    yield queue
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
