"""The provider framework end to end: real HTTP to the provider sandbox on loopback, the real
token store (Django cache + Integration row lock), the Redis-shared rate limiter, and
separate worker processes where the issue asks for concurrency.

Needs PostgreSQL (worker processes share the test database) and Redis (shared cache and
limiter); in CI both are there and nothing here may skip.
"""

import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.cache import cache
from django.db import connection

from integrations.exceptions import ProviderValidationError
from integrations.http import RetryPolicy
from integrations.models import Integration
from integrations.sandbox import accounts
from integrations.sandbox.server import SandboxServer
from integrations.services import IntegrationTokenStore, provider_for
from tests import factories
from tests.conftest import _database_url_for, require_service

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
SM8, ST = accounts.SERVICEM8_ACCOUNT, accounts.SERVICETITAN_TENANT


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    from integrations.sandbox.seed import seed

    db = tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite3"
    seed(db, records=40, seed=7)
    with SandboxServer(db) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_sandbox(sandbox, settings):
    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    cache.clear()
    yield


def control(sandbox, path: str, payload: dict | None = None) -> dict:
    response = requests.post(f"{sandbox.url}/_sandbox/{path}", json=payload or {}, timeout=5)
    response.raise_for_status()
    return response.json()


def stats(sandbox, provider: str) -> dict:
    return requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5).json()[provider]


def needs_shared_services():
    require_service(None if os.environ.get("REDIS_URL") else "REDIS_URL is not set")
    require_service(
        None if connection.vendor == "postgresql" else "worker processes need PostgreSQL"
    )


@pytest.fixture
def redis_settings(settings):
    """The shared cache and limiter on Redis, as in production."""
    needs_shared_services()
    settings.REDIS_URL = os.environ["REDIS_URL"]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
    return settings


def servicetitan(sandbox, **kwargs) -> Integration:
    return factories.IntegrationFactory(
        provider="servicetitan",
        base_url_override=sandbox.url,
        external_account_id=ST.tenant_id,
        credentials=accounts.servicetitan_credentials(ST),
        **kwargs,
    )


def servicem8_api_key(sandbox, **kwargs) -> Integration:
    return factories.IntegrationFactory(
        provider="servicem8",
        base_url_override=sandbox.url,
        credentials={"api_key": SM8.api_key},
        **kwargs,
    )


def servicem8_oauth(sandbox) -> Integration:
    """Connect through the sandbox's OAuth authorization-code flow, as the admin will."""
    app = accounts.SERVICEM8_OAUTH_APP
    redirect = "http://127.0.0.1/callback"
    authorize = requests.get(
        f"{sandbox.url}/servicem8/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": redirect,
            "scope": "vendor read_customers",
            "state": "s",
        },
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
    tokens = requests.post(
        f"{sandbox.url}/servicem8/oauth/access_token",
        data={
            "grant_type": "authorization_code",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "code": code,
            "redirect_uri": redirect,
        },
        timeout=5,
    ).json()
    return factories.IntegrationFactory(
        provider="servicem8",
        base_url_override=sandbox.url,
        credentials={
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "expires_at": time.time() + tokens["expires_in"],
        },
    )


def run_workers(integration: Integration, *, workers: int, calls: int, pause: float = 0.0):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url_for(connection.settings_dict),
    }
    start_at = time.time() + 3  # let every process boot before the race starts
    procs = [
        subprocess.Popen(  # noqa: S603 - our interpreter, our script
            [
                sys.executable,
                "-m",
                "tests.integrations.provider_worker",
                str(integration.pk),
                str(calls),
                str(start_at),
                str(pause),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_token_caching_and_early_refresh_across_two_processes_make_one_refresh(
    sandbox, redis_settings
):
    integration = servicetitan(sandbox)
    results = run_workers(integration, workers=2, calls=10)
    assert [r["ok"] for r in results] == [10, 10], results
    assert stats(sandbox, "servicetitan")["token_grants"] == {"client_credentials": 1}

    # This token lives 301 s: inside the 5-minute margin a second later, so both processes
    # want a new one at once; the lock lets exactly one of them fetch it. (The new one lives
    # 900 s again, so nothing after it needs refreshing.)
    control(sandbox, "config", {"servicetitan": {"access_token_ttl": 301}})
    cache.clear()
    provider_for(integration).probe()
    assert stats(sandbox, "servicetitan")["token_grants"] == {"client_credentials": 2}
    control(sandbox, "config", {"servicetitan": {"access_token_ttl": 900}})
    time.sleep(1.5)
    results = run_workers(integration, workers=2, calls=5)
    assert [r["ok"] for r in results] == [5, 5], results
    assert stats(sandbox, "servicetitan")["token_grants"] == {"client_credentials": 3}


def test_refresh_token_rotation_survives_concurrent_workers(sandbox, redis_settings):
    integration = servicem8_oauth(sandbox)
    # Each access token is refreshable almost at once: many rotations during the run.
    control(sandbox, "config", {"servicem8": {"access_token_ttl": 301}})
    integration.credentials = {**integration.credentials, "expires_at": time.time()}
    integration.save()
    results = run_workers(integration, workers=2, calls=12, pause=0.25)
    assert [r["errors"] for r in results] == [[], []]
    counts = stats(sandbox, "servicem8")
    assert counts["token_grants"].get("refresh_token", 0) >= 2
    assert counts["refresh_token_rejections"] == 0
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    # The stored refresh token is the newest one: one more refresh still works.
    cache.clear()
    control(sandbox, "config", {"servicem8": {"access_token_ttl": 3600}})
    integration.credentials = {**integration.credentials, "expires_at": time.time()}
    integration.save()
    provider_for(integration).probe()


def test_429_5xx_and_timeouts_are_retried_honouring_retry_after(sandbox):
    integration = servicem8_api_key(sandbox)
    control(
        sandbox,
        "faults",
        {"queue": [{"status": 429, "retry_after": 1}, {"status": 503}, {"status": 502}]},
    )
    provider = provider_for(integration)
    provider.get_client().retry = RetryPolicy(attempts=4, base=0.05)
    started = time.monotonic()
    account = provider.probe()
    assert account.account_id == SM8.uuid
    assert time.monotonic() - started >= 1.0  # the Retry-After second was waited out
    assert stats(sandbox, "servicem8")["requests_by_path"] == {
        "GET /servicem8/api_1.0/vendor.json": 4
    }

    control(sandbox, "faults", {"queue": [{"delay_seconds": 1.5}]})
    client = provider.get_client()
    client.timeout = (2, 0.5)
    assert client.get("vendor.json").status == 200  # the timed-out try was retried
    time.sleep(1.5)  # let the abandoned request finish inside the sandbox before the next test


@pytest.mark.parametrize("fault", [None, {"status": 422, "body": {"errors": {"name": ["bad"]}}}])
def test_400_and_422_are_not_retried(sandbox, fault):
    integration = servicetitan(sandbox)
    client = provider_for(integration).get_client()
    path = f"crm/v2/tenant/{ST.tenant_id}/customers"
    if fault:
        control(sandbox, "faults", {"queue": [fault]})
        params = {"pageSize": 10}
    else:
        params = {"pageSize": 0}  # outside 1–5000: the sandbox answers 400, like ServiceTitan
    with pytest.raises(ProviderValidationError):
        client.get(path, params=params)
    assert stats(sandbox, "servicetitan")["requests_by_path"] == {
        "GET /servicetitan/crm/v2/tenant/{tenant}/customers": 1
    }


def test_a_401_refreshes_then_marks_the_integration_needs_reauth(sandbox):
    integration = servicetitan(sandbox)
    control(sandbox, "faults", {"queue": [{"status": 401}]})
    assert provider_for(integration).test_connection().ok  # refreshed once, then fine
    assert stats(sandbox, "servicetitan")["token_grants"] == {"client_credentials": 2}

    control(sandbox, "faults", {"queue": [{"status": 401}, {"status": 401}]})
    result = provider_for(integration).test_connection()
    assert not result.ok and "refused the credentials" in result.message
    integration.refresh_from_db()
    assert integration.status == Integration.Status.NEEDS_REAUTH


def test_the_shared_limiter_keeps_two_workers_within_180_a_minute(sandbox, redis_settings):
    """Two worker processes make 200 calls between them: the first 180 go at once, the rest
    wait for the minute to slide, and the sandbox never has to answer 429."""
    integration = servicem8_api_key(sandbox)
    started = time.monotonic()
    results = run_workers(integration, workers=2, calls=100)
    elapsed = time.monotonic() - started
    assert [r["ok"] for r in results] == [100, 100], results
    counts = stats(sandbox, "servicem8")
    # The sandbox enforces 180 a minute (sliding) and refused nothing.
    assert counts["rate_limited"] == {}
    assert counts["requests_total"] == 200
    assert elapsed > 55  # calls 181–200 had to wait for the window


def test_a_cached_read_reaches_the_provider_once(sandbox):
    integration = servicem8_api_key(sandbox, read_cache_enabled=True)
    client = provider_for(integration).get_client()
    first = client.get("vendor.json").json()
    again = provider_for(Integration.objects.get(pk=integration.pk)).get_client().get("vendor.json")
    assert again.from_cache and again.json() == first
    assert stats(sandbox, "servicem8")["requests_total"] == 1


def test_secrets_never_appear_in_logs(sandbox, caplog):
    st_integration = servicetitan(sandbox)
    sm8_integration = servicem8_oauth(sandbox)
    key_integration = servicem8_api_key(sandbox)
    first_tokens = dict(sm8_integration.credentials)
    control(sandbox, "faults", {"queue": [{"status": 401}, {"status": 503}]})
    with caplog.at_level(logging.DEBUG):
        assert provider_for(st_integration).test_connection().ok  # 401, refresh, then fine
        st_token = IntegrationTokenStore(st_integration.pk).read_cached()["access_token"]
        provider = provider_for(sm8_integration)
        assert provider.test_connection().ok  # a 503, retried
        list(provider.iter_clients())
        assert provider_for(key_integration).test_connection().ok
        sm8_integration.credentials = {**sm8_integration.credentials, "expires_at": 0}
        sm8_integration.save()
        cache.clear()
        assert provider_for(sm8_integration).test_connection().ok  # a refresh, with rotation
        bad = servicem8_api_key(sandbox)
        bad.credentials = {"api_key": "wrong-" + SM8.api_key}
        bad.save()
        assert not provider_for(bad).test_connection().ok
    sm8_integration.refresh_from_db()
    rotated = sm8_integration.credentials
    assert rotated["refresh_token"] != first_tokens["refresh_token"]
    secrets = [
        ST.client_secret,
        accounts.SERVICETITAN_APP_KEY,
        st_token,
        accounts.SERVICEM8_OAUTH_APP.client_secret,
        SM8.api_key,
        first_tokens["refresh_token"],
        first_tokens["access_token"],
        rotated["refresh_token"],
        rotated["access_token"],
    ]
    logged = caplog.text + "\n".join(str(vars(record)) for record in caplog.records)
    assert any(r.getMessage() == "provider call" for r in caplog.records)
    for secret in secrets:
        assert secret not in logged


def test_concurrent_threads_share_one_client_safely(sandbox):
    integration = servicem8_api_key(sandbox)
    provider = provider_for(integration)
    with ThreadPoolExecutor(4) as pool:
        accounts_seen = list(pool.map(lambda _: provider.probe().account_id, range(12)))
    assert set(accounts_seen) == {SM8.uuid}


def test_the_demo_integration_connects_to_the_sandbox(sandbox):
    from django.core.management import call_command

    from integrations.services import integration_test_connection

    call_command("seed_demo", password="demo-pass-123", sandbox_url=sandbox.url)
    integration = Integration.objects.get(provider="servicem8", external_account_id="demo")
    result = integration_test_connection(integration=integration)
    assert result.ok, result.message
    integration.refresh_from_db()
    assert integration.last_test_ok and integration.last_test_latency_ms is not None
    assert integration.config["timezone"] == SM8.timezone
    assert [c.name for c in provider_for(integration).iter_clients()][:1]


def test_a_refused_refresh_token_marks_the_integration_needs_reauth(sandbox):
    integration = servicem8_oauth(sandbox)
    integration.credentials = {
        **integration.credentials,
        "refresh_token": "revoked-or-spent",
        "expires_at": 0,
    }
    integration.save()
    result = provider_for(integration).test_connection()
    assert not result.ok and "refused the credentials" in result.message
    integration.refresh_from_db()
    assert integration.status == Integration.Status.NEEDS_REAUTH
    assert stats(sandbox, "servicem8")["refresh_token_rejections"] == 1


def test_a_401_whose_refresh_is_refused_marks_needs_reauth(sandbox):
    integration = servicem8_oauth(sandbox)
    provider = provider_for(integration)
    provider.probe()  # caches the access token
    # The account owner revokes the app: the refresh token stops working, the API says 401.
    integration.credentials = {**integration.credentials, "refresh_token": "revoked"}
    integration.save()
    control(sandbox, "faults", {"queue": [{"status": 401}]})
    assert not provider_for(Integration.objects.get(pk=integration.pk)).test_connection().ok
    integration.refresh_from_db()
    assert integration.status == Integration.Status.NEEDS_REAUTH


def test_a_rotated_refresh_token_is_committed_before_the_access_token_is_shared(
    sandbox, monkeypatch
):
    integration = servicem8_oauth(sandbox)
    integration.credentials = {**integration.credentials, "expires_at": 0}
    integration.save()
    old_refresh = integration.credentials["refresh_token"]
    seen_in_database = []
    original = IntegrationTokenStore.write_cached

    def spy(self, token):
        # What any other process would read right now, over its own connection.
        row = Integration.objects.get(pk=integration.pk)
        seen_in_database.append(row.credentials["access_token"] == token["access_token"])
        original(self, token)

    monkeypatch.setattr(IntegrationTokenStore, "write_cached", spy)
    provider_for(integration).probe()
    assert seen_in_database == [True]
    assert Integration.objects.get(pk=integration.pk).credentials["refresh_token"] != old_refresh


def test_a_refresh_inside_a_transaction_is_durable_even_if_it_rolls_back(sandbox):
    from django.db import transaction

    # On SQLite the refresh joins the surrounding transaction (one writer; see
    # IntegrationTokenStore.locked), so durability across a rollback is a server-DB guarantee.
    require_service(None if connection.vendor == "postgresql" else "needs PostgreSQL")
    integration = servicem8_oauth(sandbox)
    integration.credentials = {**integration.credentials, "expires_at": 0}
    integration.save()
    old_refresh = integration.credentials["refresh_token"]

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():  # a web request under ATOMIC_REQUESTS
        assert provider_for(Integration.objects.get(pk=integration.pk)).test_connection().ok
        raise Rollback
    stored = Integration.objects.get(pk=integration.pk).credentials["refresh_token"]
    assert stored != old_refresh  # the rotation survived the rollback
    cache.clear()
    integration.refresh_from_db()
    integration.credentials = {**integration.credentials, "expires_at": 0}
    integration.save()
    assert provider_for(integration).test_connection().ok  # and the stored token still works


def test_a_connection_test_learns_the_account_which_keys_the_limiter(sandbox):
    from integrations.services import integration_test_connection

    integration = servicem8_api_key(sandbox, external_account_id="")
    assert integration_test_connection(integration=integration).ok
    integration.refresh_from_db()
    assert integration.external_account_id == SM8.uuid
    limiter = provider_for(integration).get_client().limiter
    assert limiter.key == f"servicem8:{integration.environment}:{SM8.uuid}"
