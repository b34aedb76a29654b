"""Sandbox fixtures for the sync engine's end-to-end tests."""

import time

import pytest
import requests
from django.core.cache import cache
from django.db import connection

from config.celery import app
from integrations.sandbox import accounts
from integrations.sandbox.server import SandboxServer
from tests import factories
from tests.conftest import Worker, require_worker_services


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    from integrations.sandbox.seed import seed

    db = tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite3"
    seed(db, records=60, seed=11)
    with SandboxServer(db) as server:
        yield server


@pytest.fixture
def sandbox_clean(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=10).raise_for_status()
    cache.clear()
    return sandbox


def sandbox_control(sandbox, path: str, payload: dict | None = None) -> dict:
    response = requests.post(f"{sandbox.url}/_sandbox/{path}", json=payload or {}, timeout=10)
    response.raise_for_status()
    return response.json()


def sandbox_stats(sandbox, provider: str) -> dict:
    return requests.get(f"{sandbox.url}/_sandbox/stats", timeout=10).json()[provider]


@pytest.fixture
def sm8_integration(sandbox_clean):
    return factories.IntegrationFactory(
        provider="servicem8",
        base_url_override=sandbox_clean.url,
        external_account_id=accounts.SERVICEM8_ACCOUNT.uuid,
        credentials={"api_key": accounts.SERVICEM8_ACCOUNT.api_key},
        config={"timezone": accounts.SERVICEM8_ACCOUNT.timezone},
    )


@pytest.fixture
def st_integration(sandbox_clean):
    return factories.IntegrationFactory(
        provider="servicetitan",
        base_url_override=sandbox_clean.url,
        external_account_id=accounts.SERVICETITAN_TENANT.tenant_id,
        credentials=accounts.servicetitan_credentials(),
    )


@pytest.fixture
def workers():
    require_worker_services()
    # A worker left over from an interrupted run would take these queues' messages.
    for name, queues in (app.control.inspect(timeout=1).active_queues() or {}).items():
        if {q["name"] for q in queues} & {"sync", "outbox", "webhooks"}:
            app.control.shutdown(destination=[name])
    app.control.purge()
    started: list[Worker] = []

    def start(name: str, queues=("sync", "outbox", "webhooks"), env=None) -> Worker:
        worker = Worker(list(queues), f"{name}-{len(started)}", extra_env=env).wait_ready()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.stop()


def wait_for(predicate, timeout=120.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection.close()  # see other processes' commits
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate.__doc__}")
