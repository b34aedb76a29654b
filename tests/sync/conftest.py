"""Sandbox fixtures for the sync engine's end-to-end tests."""

import pytest
import requests
from django.core.cache import cache

from integrations.sandbox import accounts
from integrations.sandbox.server import SandboxServer
from tests import factories


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
        credentials={
            "tenant_id": accounts.SERVICETITAN_TENANT.tenant_id,
            "client_id": accounts.SERVICETITAN_TENANT.client_id,
            "client_secret": accounts.SERVICETITAN_TENANT.client_secret,
            "app_key": accounts.SERVICETITAN_APP_KEY,
        },
    )
