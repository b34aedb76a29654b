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


class Worker:
    """A real Celery worker process (solo pool) on the Redis broker, reading the test database."""

    def __init__(self, queues: list[str], name: str, extra_env: dict | None = None) -> None:
        from django.conf import settings

        self.name = f"{name}@{os.uname().nodename}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url_for(settings.DATABASES["default"]),
            "REDIS_URL": os.environ["REDIS_URL"],
            **(extra_env or {}),
        }
        self.log_path = ROOT / "var" / f"celery-{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                ",".join(queues),
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
                "-n",
                f"{name}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> "Worker":
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early; see {self.log_path}")
            if app.control.ping(destination=[self.name], timeout=1):
                return self
        self.stop()
        raise RuntimeError(f"worker did not answer within {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no acknowledgement, as when a machine dies."""
        self.proc.kill()
        self.proc.wait(timeout=20)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def require_worker_services() -> None:
    from django.db import connection

    require_service(
        None if os.environ.get("REDIS_URL") else "REDIS_URL is not set: no Redis broker"
    )
    require_service(
        None
        if connection.vendor == "postgresql"
        else "DATABASE_URL is not PostgreSQL: a worker process cannot share the in-memory test DB"
    )


@pytest.fixture(scope="session")
def celery_worker_queue(django_db_setup, django_db_blocker):
    """A real Celery worker consuming a queue of its own (so a stray worker elsewhere can never
    take the test's messages)."""
    require_worker_services()
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = Worker([queue], queue).wait_ready()
    yield queue
    worker.stop()


from tests.browser.support import browser, page  # noqa: E402,F401 - fixtures for every module
