"""The shared HTTP layer, with provider HTTP mocked by `responses`."""

import logging

import pytest
import requests
import responses

from integrations.auth import ApiKeyHeaderAuth, MemoryTokenStore, OAuth2Auth
from integrations.exceptions import (
    PaginationError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderMalformedResponseError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
    ProviderValidationError,
)
from integrations.http import ApiClient, RetryPolicy, paginate, parse_retry_after

BASE = "https://api.example.test/v1"
API_KEY = "key-SECRET-abcdef123456"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(**kwargs) -> tuple[ApiClient, Sleeps]:
    sleeps = Sleeps()
    client = ApiClient(
        base_url=BASE,
        auth=kwargs.pop("auth", ApiKeyHeaderAuth(header="X-Api-Key", key=API_KEY)),
        retry=kwargs.pop("retry", RetryPolicy(attempts=3, base=0.5, max_total_wait=60)),
        sleep=sleeps,
        integration_id=7,
        **kwargs,
    )
    return client, sleeps


@responses.activate
def test_429_is_retried_after_the_providers_retry_after():
    responses.get(f"{BASE}/things", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/things", json={"ok": True})
    client, sleeps = make_client()
    assert client.get("things").json() == {"ok": True}
    assert sleeps == [7.0]
    assert len(responses.calls) == 2
    assert responses.calls[0].request.headers["X-Api-Key"] == API_KEY


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_with_capped_jittered_backoff(status):
    responses.get(f"{BASE}/things", status=status)
    responses.get(f"{BASE}/things", status=status)
    responses.get(f"{BASE}/things", json=[1])
    client, sleeps = make_client()
    assert client.get("things").json() == [1]
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


@responses.activate
def test_timeouts_are_retried_then_raise_a_typed_error():
    for _ in range(3):
        responses.get(f"{BASE}/slow", body=requests.ReadTimeout("read timed out"))
    client, sleeps = make_client()
    with pytest.raises(ProviderTimeoutError, match="GET /v1/slow timed out"):
        client.get("slow")
    assert len(responses.calls) == 3 and len(sleeps) == 2


@responses.activate
@pytest.mark.parametrize("status", [400, 422])
def test_validation_errors_are_not_retried_and_carry_field_errors(status):
    responses.post(f"{BASE}/things", status=status, json={"errors": {"name": ["is required"]}})
    client, sleeps = make_client()
    with pytest.raises(ProviderValidationError) as caught:
        client.request("POST", "things", json_body={"password": "hunter2"})
    assert caught.value.field_errors == {"name": ["is required"]}
    assert "hunter2" not in str(caught.value)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_a_retry_after_beyond_the_total_cap_is_not_waited_for():
    responses.get(f"{BASE}/things", status=429, headers={"Retry-After": "3600"})
    client, sleeps = make_client()
    with pytest.raises(ProviderRateLimitError) as caught:
        client.get("things")
    assert caught.value.retry_after == 3600 and sleeps == []


@responses.activate
def test_attempts_are_capped():
    for _ in range(5):
        responses.get(f"{BASE}/things", status=503)
    client, _ = make_client()
    with pytest.raises(ProviderServerError):
        client.get("things")
    assert len(responses.calls) == 3


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("12") == 12
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert parse_retry_after("soon") is None


class CountingOAuth(OAuth2Auth):
    """A grant that hands out numbered tokens, to watch refreshes happen."""

    def __init__(self, store):
        super().__init__(provider="example", store=store, token_url=f"{BASE}/token")
        self.grants = 0

    def _grant(self, credentials):
        import time

        self.grants += 1
        return {"access_token": f"access-{self.grants}", "expires_at": time.time() + 3600}


@responses.activate
def test_401_refreshes_once_and_retries_once():
    responses.get(f"{BASE}/me", status=401)
    responses.get(f"{BASE}/me", json={"id": 1})
    store = MemoryTokenStore()
    auth = CountingOAuth(store)
    client, _ = make_client(auth=auth, token_store=store)
    assert client.get("me").json() == {"id": 1}
    assert auth.grants == 2
    assert [c.request.headers["Authorization"] for c in responses.calls] == [
        "Bearer access-1",
        "Bearer access-2",
    ]
    assert store.needs_reauth is None


@responses.activate
def test_a_second_401_marks_the_integration_needs_reauth():
    responses.get(f"{BASE}/me", status=401)
    responses.get(f"{BASE}/me", status=401)
    store = MemoryTokenStore()
    client, _ = make_client(auth=CountingOAuth(store), token_store=store)
    with pytest.raises(ProviderAuthError):
        client.get("me")
    assert len(responses.calls) == 2
    assert store.needs_reauth


@responses.activate
def test_static_credentials_are_not_retried_on_401():
    responses.get(f"{BASE}/me", status=401)
    store = MemoryTokenStore()
    client, _ = make_client(token_store=store)
    with pytest.raises(ProviderAuthError):
        client.get("me")
    assert len(responses.calls) == 1
    assert store.needs_reauth


@responses.activate
def test_malformed_json_is_a_typed_error():
    responses.get(f"{BASE}/things", body="<html>oops", content_type="text/html")
    client, _ = make_client()
    with pytest.raises(ProviderMalformedResponseError):
        client.get("things").json()


@responses.activate
@pytest.mark.django_db
def test_a_cached_read_reaches_the_provider_once_and_a_write_invalidates_it():
    from django.core.cache import cache

    cache.clear()
    responses.get(f"{BASE}/jobs/1", json={"v": 1})
    responses.get(f"{BASE}/jobs/1", json={"v": 2})
    responses.post(f"{BASE}/jobs/1", json={})
    from integrations.http import CachePolicy

    client, _ = make_client(cache_policy=CachePolicy(enabled=True, ttl=60))
    assert client.get("jobs/1").json() == {"v": 1}
    second = client.get("jobs/1")
    assert second.from_cache and second.json() == {"v": 1}
    assert len(responses.calls) == 1
    client.request("POST", "jobs/1", json_body={"status": "done"})
    assert client.get("jobs/1").json() == {"v": 2}
    assert len(responses.calls) == 3


@responses.activate
def test_every_call_is_logged_without_secrets(caplog):
    responses.get(f"{BASE}/things", status=503)
    responses.get(f"{BASE}/things", json=[])
    client, _ = make_client()
    with caplog.at_level(logging.DEBUG):
        client.get("things", params={"filter": "name eq 'x'"})
    calls = [r for r in caplog.records if r.getMessage() == "provider call"]
    assert [(r.status, r.attempt) for r in calls] == [(503, 1), (200, 2)]
    assert all(r.path == "/v1/things" and r.method == "GET" and r.duration_ms >= 0 for r in calls)
    everything = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert API_KEY not in everything
    assert "name eq" not in everything  # query strings stay out of logs


def test_pagination_stops_on_a_repeated_cursor_and_at_the_cap():
    pages = iter([([1], "a"), ([2], "b"), ([3], "a")])
    seen = []
    with pytest.raises(PaginationError, match="repeated"):
        for page in paginate(lambda _t: next(pages), start="-1", max_pages=10, provider="x"):
            seen.extend(page)
    assert seen == [1, 2, 3]

    counter = iter(range(100))
    with pytest.raises(PaginationError, match="more than 5 pages"):
        for _ in paginate(lambda t: ([t], next(counter) + 1), start=0, max_pages=5, provider="x"):
            pass

    # Page numbers that run on while the provider serves one page forever.
    seen = []
    with pytest.raises(PaginationError, match="same page twice"):
        for page in paginate(lambda t: ([{"id": 1}], t + 1), start=1, max_pages=50, provider="x"):
            seen.extend(page)
    assert seen == [{"id": 1}]


@responses.activate
def test_jobber_throttled_inside_a_200_is_a_rate_limit_and_is_retried():
    from integrations.providers.jobber.client import JobberClient

    url = "https://api.getjobber.com/api/graphql"
    throttled = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": 1500,
                "throttleStatus": {
                    "maximumAvailable": 10000,
                    "currentlyAvailable": 500,
                    "restoreRate": 500,
                },
            }
        },
    }
    responses.post(url, json=throttled)
    responses.post(url, json={"data": {"clients": {"nodes": []}}})
    sleeps = Sleeps()
    client = JobberClient(base_url=url, sleep=sleeps)
    assert client.query("{ clients(first: 10) { nodes { id } } }") == {
        "data": {"clients": {"nodes": []}}
    }
    assert sleeps == [2.0]  # (1500 - 500) / 500 per second
    assert responses.calls[0].request.headers["X-JOBBER-GRAPHQL-VERSION"]


@responses.activate
def test_salesforce_request_limit_exceeded_defers_the_work():
    from integrations.exceptions import BudgetExhausted
    from integrations.providers.salesforce.client import SalesforceClient

    base = "https://example.my.salesforce.com/services/data/v62.0"
    responses.get(
        f"{base}/query",
        status=403,
        headers={"Sforce-Limit-Info": "api-usage=15000/15000"},
        json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit"}],
    )
    client = SalesforceClient(base_url=base, sleep=Sleeps())
    with pytest.raises(BudgetExhausted):
        client.get("query", params={"q": "SELECT Id FROM Account"})
    assert client.last_usage == (15000, 15000)
    assert len(responses.calls) == 1


@responses.activate
def test_calls_are_counted_in_prometheus_by_provider():
    from prometheus_client import REGISTRY

    def count(status_class):
        return (
            REGISTRY.get_sample_value(
                "fieldbridge_provider_calls_total",
                {"provider": "generic", "method": "GET", "status_class": status_class},
            )
            or 0
        )

    before_ok, before_5xx = count("2xx"), count("5xx")
    responses.get(f"{BASE}/things", status=503)
    responses.get(f"{BASE}/things", json=[])
    client, _ = make_client()
    client.get("things")
    assert count("2xx") == before_ok + 1 and count("5xx") == before_5xx + 1


@responses.activate
def test_a_write_that_may_have_arrived_is_not_sent_twice():
    responses.post(f"{BASE}/jobs", body=requests.ReadTimeout("read timed out"))
    client, sleeps = make_client()
    with pytest.raises(ProviderTimeoutError):
        client.request("POST", "jobs", json_body={"summary": "Fix leak"})
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_a_write_is_retried_when_the_provider_cannot_have_acted_on_it():
    responses.post(f"{BASE}/jobs", status=429, headers={"Retry-After": "1"})
    responses.post(f"{BASE}/jobs", json={"id": 1})
    client, sleeps = make_client()
    assert client.request("POST", "jobs", json_body={}).json() == {"id": 1}
    assert sleeps == [1.0]


@responses.activate
def test_idempotent_writes_are_retried_like_reads():
    responses.put(f"{BASE}/jobs/1/hold", status=503)
    responses.put(f"{BASE}/jobs/1/hold", json={})
    client, _ = make_client()
    assert client.request("PUT", "jobs/1/hold").status == 200
    responses.post(f"{BASE}/notes", status=502)
    responses.post(f"{BASE}/notes", json={})
    assert client.request("POST", "notes", json_body={}, idempotent=True).status == 200


def test_a_refused_connection_is_retried_even_for_a_write():
    client, sleeps = make_client(retry=RetryPolicy(attempts=2, base=0.01))
    client.base_url = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(ProviderConnectionError) as caught:
        client.request("POST", "jobs", json_body={})
    assert caught.value.sent is False
    assert len(sleeps) == 1


@responses.activate
def test_a_refused_refresh_marks_the_integration_needs_reauth():
    responses.get(f"{BASE}/me", status=401)

    class Refused(CountingOAuth):
        def _grant(self, credentials):
            if self.grants:
                raise ProviderAuthError("example: invalid_grant")
            return super()._grant(credentials)

    store = MemoryTokenStore()
    client, _ = make_client(auth=Refused(store), token_store=store)
    with pytest.raises(ProviderAuthError, match="invalid_grant"):
        client.get("me")
    assert store.needs_reauth and len(responses.calls) == 1
