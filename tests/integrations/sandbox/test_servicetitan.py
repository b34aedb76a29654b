"""ServiceTitan emulation: client credentials, app key, page paging, filters, rate limit."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from integrations.sandbox import accounts
from tests.integrations.sandbox import (
    TENANT,
    configure,
    control,
    st_headers,
    st_token,
    st_url,
    start_sandbox,
)

TOKEN_URL = "/servicetitan-auth/connect/token"
T1 = accounts.SERVICETITAN_TENANT
T2 = accounts.SERVICETITAN_SECONDARY_TENANT


@pytest.fixture
def sandbox(tmp_path):
    server = start_sandbox(tmp_path, records=30)
    yield server
    server.stop()


@pytest.fixture
def headers(sandbox):
    return st_headers(st_token(sandbox.url))


def _get(root: str, headers: dict, params: dict | None = None, tail: str = "customers"):
    return requests.get(st_url(root, tail), params=params, headers=headers, timeout=10)


def _walk(root: str, headers: dict, **params) -> list[dict]:
    data: list[dict] = []
    for page in range(1, 1000):
        body = _get(root, headers, {**params, "page": page}).json()
        assert body["page"] == page
        data.extend(body["data"])
        if not body["hasMore"]:
            return data
    raise AssertionError("page walk did not end")


# --- token ---------------------------------------------------------------------------------------


def test_client_credentials_token(sandbox):
    response = requests.post(
        sandbox.url + TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": T1.client_id,
            "client_secret": T1.client_secret,
        },
        timeout=5,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert set(body) == {"access_token", "expires_in", "token_type", "scope"}
    # HTTP Basic client authentication is accepted too.
    basic = base64.b64encode(f"{T1.client_id}:{T1.client_secret}".encode()).decode()
    response = requests.post(
        sandbox.url + TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=5,
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_id": T1.client_id, "client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "cid.nobody", "client_secret": T1.client_secret}, "invalid_client"),
        ({"client_id": T1.client_id, "client_secret": T2.client_secret}, "invalid_client"),
    ],
)
def test_bad_client_credentials_are_invalid_client(sandbox, form, error):
    response = requests.post(
        sandbox.url + TOKEN_URL, data={"grant_type": "client_credentials", **form}, timeout=5
    )
    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_only_client_credentials_grant(sandbox):
    response = requests.post(
        sandbox.url + TOKEN_URL,
        data={
            "grant_type": "password",
            "client_id": T1.client_id,
            "client_secret": T1.client_secret,
        },
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


# --- API auth ------------------------------------------------------------------------------------


def test_app_key_and_token_are_both_required(sandbox, headers):
    assert _get(sandbox.url, headers).status_code == 200
    no_app_key = {"Authorization": headers["Authorization"]}
    wrong_app_key = {**headers, "ST-App-Key": "ak1.other"}
    no_token = {"ST-App-Key": headers["ST-App-Key"]}
    bad_token = {**headers, "Authorization": "Bearer nope"}
    for bad in (no_app_key, wrong_app_key, no_token, bad_token):
        response = _get(sandbox.url, bad)
        assert response.status_code == 401
        body = response.json()
        assert body["status"] == 401
        assert set(body) == {"type", "title", "status", "traceId", "errors", "data"}


def test_token_of_another_tenant_is_401(sandbox):
    other = st_headers(st_token(sandbox.url, T2))
    assert _get(sandbox.url, other).status_code == 401
    # …while it works on its own tenant (which has no customers).
    own = requests.get(st_url(sandbox.url, tenant=T2.tenant_id), headers=other, timeout=5)
    assert own.status_code == 200
    assert own.json()["data"] == []


def test_expired_token_is_401(sandbox):
    configure(sandbox.url, servicetitan={"access_token_ttl": 1})
    token = st_token(sandbox.url)
    assert _get(sandbox.url, st_headers(token)).status_code == 200
    time.sleep(1.05)
    assert _get(sandbox.url, st_headers(token)).status_code == 401


# --- paging --------------------------------------------------------------------------------------


def test_page_walk_with_has_more(sandbox, headers):
    everything = _walk(sandbox.url, headers, pageSize=7, active="Any")
    ids = [c["id"] for c in everything]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert ids == sorted(ids)  # default order: by id
    first = _get(sandbox.url, headers, {"pageSize": 7, "active": "Any"}).json()
    assert first["page"] == 1 and first["pageSize"] == 7 and first["hasMore"] is True
    assert first["totalCount"] is None
    last = _get(sandbox.url, headers, {"pageSize": 7, "page": 5, "active": "Any"}).json()
    assert len(last["data"]) == 2 and last["hasMore"] is False
    beyond = _get(sandbox.url, headers, {"pageSize": 7, "page": 6, "active": "Any"}).json()
    assert beyond["data"] == [] and beyond["hasMore"] is False


def test_default_page_size_and_include_total(sandbox, headers):
    body = _get(sandbox.url, headers, {"includeTotal": "true", "active": "Any"}).json()
    assert body["pageSize"] == 50
    assert body["totalCount"] == 30
    assert len(body["data"]) == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pageSize", "0"),
        ("pageSize", "5001"),
        ("pageSize", "ten"),
        ("page", "0"),
        ("includeTotal", "maybe"),
        ("active", "Sometimes"),
        ("modifiedOnOrAfter", "yesterday"),
        ("ids", "1,two"),
        ("sort", "+Name"),
        # name/street/… are searched (servicetitan_writes.py); latitude is not emulated.
        ("latitude", "33.4"),
    ],
)
def test_invalid_parameters_are_400(sandbox, headers, name, value):
    response = _get(sandbox.url, headers, {name: value})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert name in body["errors"]


def test_page_size_5000_is_allowed(sandbox, headers):
    assert _get(sandbox.url, headers, {"pageSize": "5000"}).status_code == 200


# --- filters -------------------------------------------------------------------------------------


def test_modified_on_or_after_and_before(sandbox, headers):
    everything = _walk(sandbox.url, headers, active="Any", pageSize=50)
    stamps = sorted(c["modifiedOn"] for c in everything)
    pivot = stamps[10]
    newer = _walk(sandbox.url, headers, active="Any", modifiedOnOrAfter=pivot)
    assert {c["id"] for c in newer} == {c["id"] for c in everything if c["modifiedOn"] >= pivot}
    older = _walk(sandbox.url, headers, active="Any", modifiedBefore=pivot)
    assert {c["id"] for c in older} == {c["id"] for c in everything if c["modifiedOn"] < pivot}
    # A zone offset is honoured: the same instant written in UTC-5.
    instant = datetime.fromisoformat(pivot).astimezone(timezone(timedelta(hours=-5)))
    shifted = _walk(sandbox.url, headers, active="Any", modifiedOnOrAfter=instant.isoformat())
    assert {c["id"] for c in shifted} == {c["id"] for c in newer}


def test_active_filter(sandbox, headers):
    everything = _walk(sandbox.url, headers, active="Any")
    victim = next(c for c in everything if c["active"])["id"]
    control(sandbox.url, "DELETE", f"records/servicetitan/customers/{victim}")
    inactive = {c["id"] for c in everything if not c["active"]} | {victim}
    default = {c["id"] for c in _walk(sandbox.url, headers)}
    assert default == {c["id"] for c in everything} - inactive
    assert {c["id"] for c in _walk(sandbox.url, headers, active="True")} == default
    assert {c["id"] for c in _walk(sandbox.url, headers, active="False")} == inactive
    assert len(_walk(sandbox.url, headers, active="any")) == 30


def test_ids_filter_and_sort(sandbox, headers):
    everything = _walk(sandbox.url, headers, active="Any")
    wanted = [everything[3]["id"], everything[17]["id"], 1]
    found = _get(sandbox.url, headers, {"ids": ",".join(map(str, wanted)), "active": "Any"})
    assert [c["id"] for c in found.json()["data"]] == sorted(wanted[:2])
    desc = _walk(sandbox.url, headers, active="Any", sort="-Id")
    assert [c["id"] for c in desc] == sorted((c["id"] for c in everything), reverse=True)
    # "+ModifiedOn" arrives as " ModifiedOn" when the + is not percent-encoded.
    by_modified = requests.get(
        st_url(sandbox.url) + "?active=Any&pageSize=50&sort=+ModifiedOn", headers=headers, timeout=5
    ).json()["data"]
    stamps = [c["modifiedOn"] for c in by_modified]
    assert stamps == sorted(stamps) and len(stamps) == 30


# --- single records ------------------------------------------------------------------------------


def test_get_customer_and_404(sandbox, headers):
    listed = _get(sandbox.url, headers).json()["data"][4]
    one = _get(sandbox.url, headers, tail=f"customers/{listed['id']}")
    assert one.status_code == 200 and one.json() == listed
    missing = _get(sandbox.url, headers, tail="customers/1")
    assert missing.status_code == 404
    assert missing.json()["title"] == "Customer not found"
    control(sandbox.url, "DELETE", f"records/servicetitan/customers/{listed['id']}")
    deactivated = _get(sandbox.url, headers, tail=f"customers/{listed['id']}").json()
    assert deactivated["active"] is False
    assert deactivated["modifiedOn"] > listed["modifiedOn"]


def test_unknown_resource_is_404(sandbox, headers):
    response = requests.get(
        f"{sandbox.url}/servicetitan/crm/v2/tenant/{TENANT}/spaceships", headers=headers, timeout=5
    )
    assert response.status_code == 404


# --- rate limit ----------------------------------------------------------------------------------


def test_rate_limit_per_second_has_retry_after(sandbox, headers):
    configure(sandbox.url, servicetitan={"rate_limit_per_second": 3})
    session = requests.Session()
    statuses = []
    limited = None
    for _ in range(6):
        response = session.get(st_url(sandbox.url), headers=headers, timeout=5)
        statuses.append(response.status_code)
        if response.status_code == 429:
            limited = response
    assert statuses.count(200) == 3, statuses
    assert limited is not None
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["status"] == 429
    assert control(sandbox.url, "GET", "stats")["servicetitan"]["rate_limited"]["per_second"] >= 1
