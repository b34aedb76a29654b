"""The control API: faults, stats, config, records and seeding."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from integrations.sandbox import accounts
from tests.integrations.sandbox import (
    SM8_HEADERS,
    configure,
    control,
    sm8_url,
    sm8_walk,
    st_headers,
    st_token,
    st_url,
    start_sandbox,
)


@pytest.fixture
def sandbox(tmp_path):
    server = start_sandbox(tmp_path, records=20)
    yield server
    server.stop()


def _sm8(root: str, params: dict | None = None) -> requests.Response:
    return requests.get(sm8_url(root), params=params, headers=SM8_HEADERS, timeout=30)


# --- faults --------------------------------------------------------------------------------------


def test_queued_faults_apply_in_order_then_normal(sandbox):
    control(
        sandbox.url,
        "POST",
        "faults",
        {"queue": [{"status": 503}, {"status": 429, "retry_after": 1}]},
    )
    # Token and control endpoints never consume the queue.
    st_token(sandbox.url)
    assert len(control(sandbox.url, "GET", "faults")["queue"]) == 2
    first = _sm8(sandbox.url)
    assert first.status_code == 503
    assert first.json()["errorCode"] == 503  # the provider's own error shape
    second = _sm8(sandbox.url)
    assert second.status_code == 429 and second.headers["Retry-After"] == "1"
    assert _sm8(sandbox.url).status_code == 200
    stats = control(sandbox.url, "GET", "stats")["servicem8"]
    assert stats["faults_injected"] == {"queue": 2}
    assert stats["rate_limited"] == {"fault": 1}
    assert stats["responses_by_status"] == {"503": 1, "429": 1, "200": 1}


def test_queued_fault_with_custom_body(sandbox):
    body = {"errorCode": 429, "message": "Number of allowed API requests per day exceeded"}
    control(sandbox.url, "POST", "faults", {"queue": [{"status": 429, "body": body}]})
    response = _sm8(sandbox.url)
    assert response.status_code == 429 and response.json() == body


def test_fault_provider_filter(sandbox):
    control(sandbox.url, "POST", "faults", {"provider": "servicetitan", "queue": [{"status": 500}]})
    assert _sm8(sandbox.url).status_code == 200
    headers = st_headers(st_token(sandbox.url))
    failed = requests.get(st_url(sandbox.url), headers=headers, timeout=5)
    assert failed.status_code == 500
    assert failed.json()["status"] == 500  # ServiceTitan's ApiErrorResponse shape
    assert requests.get(st_url(sandbox.url), headers=headers, timeout=5).status_code == 200


def test_malformed_body(sandbox):
    control(sandbox.url, "POST", "faults", {"queue": [{"malformed": True}]})
    broken = _sm8(sandbox.url)
    assert broken.status_code == 200
    assert broken.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)
    assert len(_sm8(sandbox.url).json()) == 20


def test_latency_and_delay(sandbox):
    control(sandbox.url, "POST", "faults", {"latency_ms": 150})
    started = time.monotonic()
    assert _sm8(sandbox.url).status_code == 200
    assert time.monotonic() - started >= 0.15
    control(sandbox.url, "POST", "faults", {"queue": [{"delay_seconds": 0.2}]})
    started = time.monotonic()
    assert _sm8(sandbox.url).status_code == 200
    assert time.monotonic() - started >= 0.2
    # A client timeout shorter than the delay sees a timeout.
    control(sandbox.url, "POST", "faults", {"timeout_rate": 1.0, "timeout_seconds": 0.3})
    with pytest.raises(requests.Timeout):
        requests.get(sm8_url(sandbox.url), headers=SM8_HEADERS, timeout=0.1)
    time.sleep(0.25)  # let the server finish the abandoned request before teardown


def test_random_errors_are_seeded(sandbox):
    def run() -> list[int]:
        control(
            sandbox.url,
            "POST",
            "faults",
            {"error_rate": 0.5, "error_statuses": [502, 503], "seed": 7},
        )
        return [_sm8(sandbox.url, {"cursor": "-1"}).status_code for _ in range(12)]

    first, second = run(), run()
    assert first == second
    assert {502, 503, 200} >= set(first) and 200 in first and set(first) - {200}
    control(sandbox.url, "DELETE", "faults")
    assert all(_sm8(sandbox.url).status_code == 200 for _ in range(3))


def test_invalid_fault_config_is_400(sandbox):
    for bad in ({"error_rate": 2}, {"queue": [{"status": "x"}]}, {"nope": 1}, {"provider": "x"}):
        response = requests.post(f"{sandbox.url}/_sandbox/faults", json=bad, timeout=5)
        assert response.status_code == 400, bad


def test_truncate_pages_repeats_the_cursor(sandbox):
    configure(sandbox.url, servicem8={"page_size": 6})
    first = _sm8(sandbox.url, {"cursor": "-1"})
    cursor = first.headers["x-next-cursor"]
    control(sandbox.url, "POST", "faults", {"truncate_pages": True})
    truncated = _sm8(sandbox.url, {"cursor": cursor})
    assert len(truncated.json()) == 3  # half of the 6 it should have returned
    assert truncated.headers["x-next-cursor"] == cursor  # the same cursor again
    assert control(sandbox.url, "GET", "stats")["servicem8"]["faults_injected"] == {
        "truncate_pages": 1
    }


def test_truncate_pages_servicetitan_claims_more(sandbox):
    headers = st_headers(st_token(sandbox.url))
    control(sandbox.url, "POST", "faults", {"truncate_pages": True})
    body = requests.get(
        st_url(sandbox.url), params={"pageSize": 10, "page": 5}, headers=headers, timeout=5
    ).json()
    assert body["data"] == [] and body["hasMore"] is True
    page = requests.get(
        st_url(sandbox.url), params={"pageSize": 10}, headers=headers, timeout=5
    ).json()
    assert len(page["data"]) == 5 and page["hasMore"] is True


def test_mutate_during_sync_moves_served_records_past_the_cursor(sandbox):
    configure(sandbox.url, servicem8={"page_size": 5})
    control(sandbox.url, "POST", "faults", {"mutate_during_sync": True})
    records, _ = sm8_walk(sandbox.url)
    uuids = [r["uuid"] for r in records]
    assert len(set(uuids)) == 20  # nothing lost…
    assert len(uuids) > 20  # …but edited records were served again
    mutated = control(sandbox.url, "GET", "stats")["servicem8"]["faults_injected"]
    assert mutated["mutate_during_sync"] >= 3


# --- stats ---------------------------------------------------------------------------------------


def test_stats_count_exactly(sandbox):
    control(sandbox.url, "POST", "stats/reset")
    for _ in range(3):
        _sm8(sandbox.url)
    requests.get(sm8_url(sandbox.url, "vendor.json"), headers=SM8_HEADERS, timeout=5)
    requests.get(sm8_url(sandbox.url), timeout=5)  # 401
    token = st_token(sandbox.url)
    st_token(sandbox.url)
    requests.get(st_url(sandbox.url), headers=st_headers(token), timeout=5)
    stats = control(sandbox.url, "GET", "stats")
    sm8, st = stats["servicem8"], stats["servicetitan"]
    assert sm8["requests_total"] == 5
    assert sm8["requests_by_path"] == {
        "GET /servicem8/api_1.0/company.json": 4,
        "GET /servicem8/api_1.0/vendor.json": 1,
    }
    assert sm8["responses_by_status"] == {"200": 4, "401": 1}
    assert sm8["requests_last_minute"] == {accounts.SERVICEM8_ACCOUNT.uuid: 4}
    assert sm8["token_grants"] == {}
    assert st["requests_total"] == 1
    assert st["requests_by_path"] == {"GET /servicetitan/crm/v2/tenant/{tenant}/customers": 1}
    assert st["token_requests"] == 2
    assert st["token_grants"] == {"client_credentials": 2}
    assert st["requests_last_minute"] == {accounts.SERVICETITAN_TENANT.tenant_id: 1}
    reset = control(sandbox.url, "POST", "stats/reset")
    assert reset["servicem8"]["requests_total"] == 0
    assert reset["servicetitan"]["token_grants"] == {}


def test_stats_are_exact_under_concurrency(sandbox):
    control(sandbox.url, "POST", "stats/reset")

    def worker() -> None:
        session = requests.Session()
        for _ in range(10):
            assert session.get(
                sm8_url(sandbox.url, "vendor.json"), headers=SM8_HEADERS, timeout=10
            ).ok

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = control(sandbox.url, "GET", "stats")["servicem8"]
    assert stats["requests_total"] == 80
    assert stats["requests_last_minute"] == {accounts.SERVICEM8_ACCOUNT.uuid: 80}


# --- config and reset ----------------------------------------------------------------------------


def test_config_validation_and_reset(sandbox):
    defaults = control(sandbox.url, "GET", "config")
    assert defaults == {
        "enforce_rate_limits": True,
        "servicem8": {
            "access_token_ttl": 3600,
            "authorization_code_ttl": 600,
            "page_size": 5000,
            "rate_limit_per_minute": 180,
            "rate_limit_per_day": 20000,
        },
        "servicetitan": {"access_token_ttl": 900, "rate_limit_per_second": 60},
    }
    for bad in (
        {"servicem8": {"page_size": 0}},
        {"servicem8": {"page_size": 5001}},
        {"servicem8": {"nope": 1}},
        {"servicetitan": {"rate_limit_per_second": "many"}},
        {"enforce_rate_limits": "yes"},
        {"hubspot": {}},
    ):
        response = requests.post(f"{sandbox.url}/_sandbox/config", json=bad, timeout=5)
        assert response.status_code == 400, bad
    updated = configure(sandbox.url, servicem8={"page_size": 9}, enforce_rate_limits=False)
    assert updated["servicem8"]["page_size"] == 9 and updated["enforce_rate_limits"] is False
    control(sandbox.url, "POST", "faults", {"latency_ms": 5})
    _sm8(sandbox.url)
    control(sandbox.url, "POST", "reset")
    assert control(sandbox.url, "GET", "config") == defaults
    assert control(sandbox.url, "GET", "faults")["latency_ms"] == 0
    assert control(sandbox.url, "GET", "stats")["servicem8"]["requests_total"] == 0
    assert len(_sm8(sandbox.url).json()) == 20  # data survives a reset


# --- records -------------------------------------------------------------------------------------


def test_record_upsert_get_and_soft_delete(sandbox):
    created = control(
        sandbox.url,
        "POST",
        "records/servicem8/company",
        {"data": {"name": "Acme Pty Ltd", "address_city": "Sydney"}},
    )
    uuid = created["id"]
    assert created["rendered"]["name"] == "Acme Pty Ltd"
    assert created["rendered"]["is_individual"] == 0  # defaults filled in
    api = requests.get(sm8_url(sandbox.url, f"company/{uuid}.json"), headers=SM8_HEADERS, timeout=5)
    assert api.json() == created["rendered"]
    # Upsert merges into the existing data and bumps modified.
    time.sleep(0.01)
    updated = control(
        sandbox.url, "POST", "records/servicem8/company", {"id": uuid, "data": {"name": "Acme 2"}}
    )
    assert updated["data"]["address_city"] == "Sydney" and updated["data"]["name"] == "Acme 2"
    assert updated["modified"] > created["modified"]
    deleted = control(sandbox.url, "DELETE", f"records/servicem8/company/{uuid}")
    assert deleted["active"] is False and deleted["rendered"]["active"] == 0
    assert deleted["modified"] > updated["modified"]
    missing = requests.get(
        f"{sandbox.url}/_sandbox/records/servicem8/company/00000000-0000-4000-8000-000000000000",
        timeout=5,
    )
    assert missing.status_code == 404


def test_servicetitan_record_ids_and_account_override(sandbox):
    headers = st_headers(st_token(sandbox.url))
    existing = requests.get(
        st_url(sandbox.url),
        params={"active": "Any", "sort": "-Id", "pageSize": 1},
        headers=headers,
        timeout=5,
    ).json()["data"][0]["id"]
    created = control(
        sandbox.url, "POST", "records/servicetitan/customers", {"data": {"name": "New Co"}}
    )
    assert created["id"] > existing
    assert created["rendered"]["type"] == "Residential"
    other_tenant = accounts.SERVICETITAN_SECONDARY_TENANT
    control(
        sandbox.url,
        "POST",
        f"records/servicetitan/customers?account={other_tenant.tenant_id}",
        {"id": 42, "data": {"name": "Elsewhere"}},
    )
    other = requests.get(
        st_url(sandbox.url, tenant=other_tenant.tenant_id),
        headers=st_headers(st_token(sandbox.url, other_tenant)),
        timeout=5,
    ).json()["data"]
    assert [c["name"] for c in other] == ["Elsewhere"]


def test_seed_endpoint(tmp_path):
    server = start_sandbox(tmp_path, records=0)
    try:
        result = control(server.url, "POST", "seed", {"records": 12, "seed": 3})
        assert result["servicem8"]["company"] == 12
        assert result["servicetitan"]["customers"] == 12
        assert result["servicem8"]["job"] > 0 and result["servicetitan"]["estimates"] > 0
        assert len(_sm8(server.url).json()) == 12
        bad = requests.post(f"{server.url}/_sandbox/seed", json={"records": -1}, timeout=5)
        assert bad.status_code == 400
    finally:
        server.stop()
