"""ServiceM8 emulation: auth, cursor paging, $filter, records, OAuth and rate limits."""

from __future__ import annotations

import base64
from datetime import datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from integrations.sandbox import accounts
from tests.integrations.sandbox import (
    SM8_HEADERS,
    configure,
    control,
    sm8_url,
    sm8_walk,
    start_sandbox,
)

APP = accounts.SERVICEM8_OAUTH_APP
REDIRECT = "https://portal.example/oauth/servicem8/callback"
SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.fixture
def sandbox(tmp_path):
    server = start_sandbox(tmp_path, records=30)
    yield server
    server.stop()


def _list(root: str, params: dict[str, str] | None = None, headers=SM8_HEADERS):
    return requests.get(sm8_url(root), params=params, headers=headers, timeout=10)


def _authorize(root: str, scope: str, state: str = "xyz") -> str:
    response = requests.get(
        f"{root}/servicem8/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": APP.client_id,
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": state,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


def _token(root: str, **form: str) -> requests.Response:
    return requests.post(f"{root}/servicem8/oauth/access_token", data=form, timeout=10)


def _exchange(root: str, code: str) -> dict:
    response = _token(
        root,
        grant_type="authorization_code",
        client_id=APP.client_id,
        client_secret=APP.client_secret,
        code=code,
        redirect_uri=REDIRECT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Api-Key": "wrong"}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}],
)
def test_missing_or_bad_credentials_are_401_in_spec_shape(sandbox, headers):
    response = _list(sandbox.url, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "errorCode": 401,
        "message": "Authentication failed. Please check your API key or OAuth token.",
    }


def test_api_key_only_sees_its_own_account(sandbox):
    other = {"X-Api-Key": accounts.SERVICEM8_SECONDARY_ACCOUNT.api_key}
    assert len(_list(sandbox.url).json()) == 30
    assert _list(sandbox.url, headers=other).json() == []


# --- listing and cursor paging -------------------------------------------------------------------


def test_list_without_cursor_streams_everything_including_soft_deleted(sandbox):
    records = _list(sandbox.url).json()
    assert len(records) == 30
    victim = records[3]["uuid"]
    control(sandbox.url, "DELETE", f"records/servicem8/company/{victim}")
    after = {r["uuid"]: r for r in _list(sandbox.url).json()}
    assert len(after) == 30
    assert after[victim]["active"] == 0
    assert after[victim]["edit_date"] >= records[-1]["edit_date"]


def test_cursor_walk_returns_every_record_exactly_once(sandbox):
    configure(sandbox.url, servicem8={"page_size": 7})
    records, cursors = sm8_walk(sandbox.url)
    uuids = [r["uuid"] for r in records]
    assert len(uuids) == 30 and len(set(uuids)) == 30
    assert set(uuids) == {r["uuid"] for r in _list(sandbox.url).json()}
    # 30 records / 7 per page = 5 pages, so 4 "next" cursors, all distinct.
    assert len(cursors) == 4 and len(set(cursors)) == 4


def test_last_full_page_has_no_next_cursor(sandbox):
    configure(sandbox.url, servicem8={"page_size": 10})
    first = _list(sandbox.url, {"cursor": "-1"})
    assert len(first.json()) == 10 and "x-next-cursor" in first.headers
    second = _list(sandbox.url, {"cursor": first.headers["x-next-cursor"]})
    third = _list(sandbox.url, {"cursor": second.headers["x-next-cursor"]})
    assert len(third.json()) == 10
    # 30 = 3 x 10: the third page is the last one, so no empty fourth page is announced.
    assert "x-next-cursor" not in third.headers


def test_default_page_size_is_5000(sandbox):
    assert control(sandbox.url, "GET", "config")["servicem8"]["page_size"] == 5000
    response = _list(sandbox.url, {"cursor": "-1"})
    assert len(response.json()) == 30
    assert "x-next-cursor" not in response.headers


def test_unknown_cursor_is_400(sandbox):
    response = _list(sandbox.url, {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["errorCode"] == 400


def test_cursor_of_another_object_is_400(sandbox):
    configure(sandbox.url, servicem8={"page_size": 1})
    control(sandbox.url, "POST", "records/servicem8/vendor", {"data": {"name": "Second vendor"}})
    vendor_page = requests.get(
        sm8_url(sandbox.url, "vendor.json"), params={"cursor": "-1"}, headers=SM8_HEADERS, timeout=5
    )
    cursor = vendor_page.headers["x-next-cursor"]
    assert _list(sandbox.url, {"cursor": cursor}).status_code == 400


# --- $filter -------------------------------------------------------------------------------------


def test_edit_date_is_rendered_in_account_time(sandbox):
    record = _list(sandbox.url).json()[0]
    stored = control(sandbox.url, "GET", f"records/servicem8/company/{record['uuid']}")
    utc = datetime.fromisoformat(stored["modified"])
    assert record["edit_date"] == utc.astimezone(SYDNEY).strftime("%Y-%m-%d %H:%M:%S")


def test_filter_edit_date_gt_uses_account_time(sandbox):
    records = _list(sandbox.url).json()
    pivot = sorted(r["edit_date"] for r in records)[14]
    expected = {r["uuid"] for r in records if r["edit_date"] > pivot}
    response = _list(sandbox.url, {"$filter": f"edit_date gt '{pivot}'"})
    assert response.status_code == 200
    assert {r["uuid"] for r in response.json()} == expected
    assert 0 < len(expected) < 30
    # eq hits the pivot record itself: the value was read in Sydney time, not UTC.
    exact = _list(sandbox.url, {"$filter": f"edit_date eq '{pivot}'"}).json()
    assert pivot in {r["edit_date"] for r in exact}
    older = _list(sandbox.url, {"$filter": f"edit_date lt '{pivot}'"}).json()
    assert {r["uuid"] for r in older} == {r["uuid"] for r in records if r["edit_date"] < pivot}
    others = _list(sandbox.url, {"$filter": f"edit_date ne '{pivot}'"}).json()
    assert len(others) == 30 - len(exact)


def test_filter_edit_date_combined_with_cursor_paging(sandbox):
    configure(sandbox.url, servicem8={"page_size": 4})
    records = _list(sandbox.url).json()
    pivot = sorted(r["edit_date"] for r in records)[9]
    walked, _ = sm8_walk(sandbox.url, params={"$filter": f"edit_date gt '{pivot}'"})
    assert sorted(r["uuid"] for r in walked) == sorted(
        r["uuid"] for r in records if r["edit_date"] > pivot
    )


@pytest.mark.parametrize(
    "expression",
    [
        "edit_date ge '2024-01-01 00:00:00'",
        "edit_date le '2024-01-01 00:00:00'",
        "active eq 1 or active eq 0",
        "edit_date gt 2024",
        "edit_date gt '01/02/2024'",
        "name like 'x'",
        "garbage",
    ],
)
def test_unsupported_filters_are_400(sandbox, expression):
    response = _list(sandbox.url, {"$filter": expression})
    assert response.status_code == 400, expression
    assert response.json()["errorCode"] == 400


def test_at_most_ten_filter_conditions(sandbox):
    ten = " and ".join(["active eq 1"] * 10)
    assert _list(sandbox.url, {"$filter": ten}).status_code == 200
    eleven = " and ".join(["active eq 1"] * 11)
    response = _list(sandbox.url, {"$filter": eleven})
    assert response.status_code == 400
    assert "10" in response.json()["message"]


def test_filter_on_fields_and_quotes(sandbox):
    control(
        sandbox.url,
        "POST",
        "records/servicem8/company",
        {"data": {"name": "O'Brien Plumbing", "address_postcode": "2000"}},
    )
    hit = _list(sandbox.url, {"$filter": "name eq 'O''Brien Plumbing'"}).json()
    assert [r["name"] for r in hit] == ["O'Brien Plumbing"]
    individuals = _list(sandbox.url, {"$filter": "is_individual eq 1"}).json()
    assert individuals and all(r["is_individual"] == 1 for r in individuals)
    both = _list(sandbox.url, {"$filter": "is_individual eq 0 and active eq 1"}).json()
    assert all(r["is_individual"] == 0 and r["active"] == 1 for r in both)
    uuid = hit[0]["uuid"]
    assert [r["uuid"] for r in _list(sandbox.url, {"$filter": f"uuid eq '{uuid}'"}).json()] == [
        uuid
    ]


def test_filter_active_eq_0_finds_soft_deleted(sandbox):
    victim = _list(sandbox.url).json()[0]["uuid"]
    control(sandbox.url, "DELETE", f"records/servicem8/company/{victim}")
    deleted = _list(sandbox.url, {"$filter": "active eq 0"}).json()
    assert victim in {r["uuid"] for r in deleted}
    assert all(r["active"] == 0 for r in deleted)


# --- single records ------------------------------------------------------------------------------


def test_get_company_and_404_and_400(sandbox):
    listed = _list(sandbox.url).json()[5]
    one = requests.get(
        sm8_url(sandbox.url, f"company/{listed['uuid']}.json"), headers=SM8_HEADERS, timeout=5
    )
    assert one.status_code == 200 and one.json() == listed
    missing = requests.get(
        sm8_url(sandbox.url, "company/00000000-0000-4000-8000-000000000000.json"),
        headers=SM8_HEADERS,
        timeout=5,
    )
    assert missing.status_code == 404
    assert missing.json() == {
        "errorCode": 404,
        "message": "Resource not found. The requested record does not exist or has been deleted.",
    }
    bad = requests.get(sm8_url(sandbox.url, "company/nope.json"), headers=SM8_HEADERS, timeout=5)
    assert bad.status_code == 400


def test_vendor_is_the_account(sandbox):
    response = requests.get(sm8_url(sandbox.url, "vendor.json"), headers=SM8_HEADERS, timeout=5)
    assert response.status_code == 200
    (vendor,) = response.json()
    assert vendor["uuid"] == accounts.SERVICEM8_ACCOUNT.uuid
    assert vendor["timezone_name"] == "Australia/Sydney"
    assert vendor["active"] == 1


def test_unknown_object_is_404(sandbox):
    response = requests.get(sm8_url(sandbox.url, "spaceship.json"), headers=SM8_HEADERS, timeout=5)
    assert response.status_code == 404
    assert response.json()["errorCode"] == 404


# --- OAuth ---------------------------------------------------------------------------------------


def test_oauth_code_flow_and_refresh_rotation(sandbox):
    code = _authorize(sandbox.url, "read_customers vendor")
    tokens = _exchange(sandbox.url, code)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "read_customers vendor"
    assert _list(sandbox.url, headers=_bearer(tokens["access_token"])).status_code == 200

    # Refresh with HTTP Basic client authentication (client_secret_basic).
    basic = base64.b64encode(f"{APP.client_id}:{APP.client_secret}".encode()).decode()
    refreshed = requests.post(
        f"{sandbox.url}/servicem8/oauth/access_token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers={"Authorization": f"Basic {basic}"},
        timeout=5,
    )
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert _list(sandbox.url, headers=_bearer(new["access_token"])).status_code == 200

    # The old refresh token is dead immediately (rotation); the new one works once.
    replay = _token(
        sandbox.url,
        grant_type="refresh_token",
        client_id=APP.client_id,
        client_secret=APP.client_secret,
        refresh_token=tokens["refresh_token"],
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    again = _token(
        sandbox.url,
        grant_type="refresh_token",
        client_id=APP.client_id,
        client_secret=APP.client_secret,
        refresh_token=new["refresh_token"],
    )
    assert again.status_code == 200
    stats = control(sandbox.url, "GET", "stats")["servicem8"]
    assert stats["token_grants"] == {"authorization_code": 1, "refresh_token": 2}
    assert stats["refresh_token_rejections"] == 1


def test_authorization_code_is_single_use_and_bound_to_redirect_uri(sandbox):
    code = _authorize(sandbox.url, "read_customers")
    wrong_redirect = _token(
        sandbox.url,
        grant_type="authorization_code",
        client_id=APP.client_id,
        client_secret=APP.client_secret,
        code=code,
        redirect_uri="https://evil.example/cb",
    )
    assert wrong_redirect.status_code == 400
    assert wrong_redirect.json()["error"] == "invalid_grant"
    _exchange(sandbox.url, code)
    reused = _token(
        sandbox.url,
        grant_type="authorization_code",
        client_id=APP.client_id,
        client_secret=APP.client_secret,
        code=code,
        redirect_uri=REDIRECT,
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


def test_token_endpoint_rejects_bad_client(sandbox):
    code = _authorize(sandbox.url, "read_customers")
    form = _token(
        sandbox.url,
        grant_type="authorization_code",
        client_id=APP.client_id,
        client_secret="wrong",
        code=code,
        redirect_uri=REDIRECT,
    )
    assert form.status_code == 400
    assert form.json()["error"] == "invalid_client"
    basic = requests.post(
        f"{sandbox.url}/servicem8/oauth/access_token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(APP.client_id, "wrong"),
        timeout=5,
    )
    assert basic.status_code == 401
    assert basic.json()["error"] == "invalid_client"
    # The failed attempts did not burn the code.
    assert _exchange(sandbox.url, code)["access_token"]


def test_authorize_rejects_unknown_client_and_scope(sandbox):
    unknown = requests.get(
        f"{sandbox.url}/servicem8/oauth/authorize",
        params={"response_type": "code", "client_id": "nobody", "redirect_uri": REDIRECT},
        allow_redirects=False,
        timeout=5,
    )
    assert unknown.status_code == 400
    bad_scope = requests.get(
        f"{sandbox.url}/servicem8/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": APP.client_id,
            "redirect_uri": REDIRECT,
            "scope": "read_customers launch_rockets",
            "state": "s",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert bad_scope.status_code == 302
    assert parse_qs(urlsplit(bad_scope.headers["Location"]).query)["error"] == ["invalid_scope"]


def test_scopes_gate_objects(sandbox):
    vendor_only = _exchange(sandbox.url, _authorize(sandbox.url, "vendor"))["access_token"]
    customers = _exchange(sandbox.url, _authorize(sandbox.url, "manage_customers"))["access_token"]
    assert _list(sandbox.url, headers=_bearer(vendor_only)).status_code == 403
    assert _list(sandbox.url, headers=_bearer(vendor_only)).json()["errorCode"] == 403
    vendor_url = sm8_url(sandbox.url, "vendor.json")
    assert requests.get(vendor_url, headers=_bearer(vendor_only), timeout=5).status_code == 200
    assert _list(sandbox.url, headers=_bearer(customers)).status_code == 200
    assert requests.get(vendor_url, headers=_bearer(customers), timeout=5).status_code == 403


def test_expired_access_token_is_401(sandbox):
    # TTL 0: the token is born expired, so no sleep is needed to prove expiry is enforced.
    configure(sandbox.url, servicem8={"access_token_ttl": 0})
    expired = _exchange(sandbox.url, _authorize(sandbox.url, "read_customers"))
    assert expired["expires_in"] == 0
    assert _list(sandbox.url, headers=_bearer(expired["access_token"])).status_code == 401
    configure(sandbox.url, servicem8={"access_token_ttl": 60})
    fresh = _exchange(sandbox.url, _authorize(sandbox.url, "read_customers"))
    assert _list(sandbox.url, headers=_bearer(fresh["access_token"])).status_code == 200


# --- rate limits ---------------------------------------------------------------------------------


def test_per_minute_limit(sandbox):
    configure(sandbox.url, servicem8={"rate_limit_per_minute": 5})
    statuses = [_list(sandbox.url, {"cursor": "-1"}).status_code for _ in range(5)]
    assert statuses == [200] * 5
    # Token endpoints are not counted against the API limit.
    _authorize(sandbox.url, "read_customers")
    limited = _list(sandbox.url, {"cursor": "-1"})
    assert limited.status_code == 429
    assert limited.json() == {
        "errorCode": 429,
        "message": "Number of allowed API requests per minute exceeded",
    }
    # A different add-on on the same account has its own budget ("per Addon per account").
    token = _exchange(sandbox.url, _authorize(sandbox.url, "read_customers"))["access_token"]
    assert _list(sandbox.url, headers=_bearer(token)).status_code == 200
    stats = control(sandbox.url, "GET", "stats")["servicem8"]
    assert stats["rate_limited"] == {"per_minute": 1}


def test_per_day_limit(sandbox):
    configure(sandbox.url, servicem8={"rate_limit_per_day": 3})
    assert [_list(sandbox.url).status_code for _ in range(3)] == [200] * 3
    limited = _list(sandbox.url)
    assert limited.status_code == 429
    assert limited.json()["message"] == "Number of allowed API requests per day exceeded"
    configure(sandbox.url, enforce_rate_limits=False)
    assert _list(sandbox.url).status_code == 200
