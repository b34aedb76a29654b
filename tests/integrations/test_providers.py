"""ServiceM8 and ServiceTitan providers against mocked HTTP (`responses`): URLs, auth
headers, paging, incremental filters, mapping and connection-test messages."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from integrations import registry
from integrations.auth import MemoryTokenStore
from integrations.base import Capability, ProviderContext
from integrations.exceptions import UnknownProvider
from integrations.http import RetryPolicy

SM8 = "https://api.servicem8.com/api_1.0"
ST_API = "https://api.servicetitan.io"
ST_TOKEN = "https://auth.servicetitan.io/connect/token"
NO_RETRY = RetryPolicy(attempts=1)


def sm8(**kwargs):
    context = ProviderContext(
        integration_id=1,
        credentials=kwargs.pop("credentials", {"api_key": "sm8-key"}),
        config=kwargs.pop("config", {"timezone": "Australia/Sydney"}),
        rate_limit_enabled=False,
        retry=NO_RETRY,
        **kwargs,
    )
    return registry.get("servicem8")(context)


def st(**kwargs):
    context = ProviderContext(
        integration_id=2,
        credentials={
            "tenant_id": "42",
            "client_id": "cid",
            "client_secret": "cs",
            "app_key": "ak1",
        },
        token_store=MemoryTokenStore(),
        rate_limit_enabled=False,
        retry=NO_RETRY,
        **kwargs,
    )
    return registry.get("servicetitan")(context)


def test_registry_knows_both_and_refuses_unknown_keys():
    assert {p.key for p in registry.all_providers()} >= {"servicem8", "servicetitan"}
    assert Capability.READ_CLIENTS in registry.get("servicem8").capabilities
    with pytest.raises(UnknownProvider):
        registry.get("nope")


def test_credential_shapes_are_checked():
    servicem8 = registry.get("servicem8")
    assert servicem8.credential_errors({"api_key": "x"}) == {}
    assert servicem8.credential_errors({"refresh_token": "r"}) == {}
    assert "credentials" in servicem8.credential_errors({"apikey": "typo"})
    assert (
        "tenant_id"
        in registry.get("servicetitan").credential_errors({"client_id": "c"})["credentials"]
    )


@responses.activate
def test_servicem8_walks_cursor_pages_with_an_inclusive_local_time_filter():
    page1 = [
        {
            "uuid": "c1",
            "name": "Acme",
            "active": 1,
            "is_individual": "0",
            "edit_date": "2026-01-10 09:30:00",
            "address_street": "1 Main St",
            "address_city": "Sydney",
        }
    ]
    page2 = [
        {
            "uuid": "c2",
            "name": "Bo",
            "active": "0",
            "is_individual": "1",
            "edit_date": "0000-00-00 00:00:00",
            "parent_company_uuid": "c1",
        }
    ]
    responses.get(f"{SM8}/company.json", json=page1, headers={"x-next-cursor": "abc"})
    responses.get(f"{SM8}/company.json", json=page2)
    since = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    clients = list(sm8().iter_clients(updated_since=since))

    first, second = (parse_qs(urlsplit(c.request.url).query) for c in responses.calls)
    assert first["cursor"] == ["-1"] and second["cursor"] == ["abc"]
    # 00:00:00 UTC is 11:00 in Sydney (AEDT); gt one second earlier makes it inclusive.
    assert first["$filter"] == ["edit_date gt '2026-01-01 10:59:59'"]
    assert responses.calls[0].request.headers["X-Api-Key"] == "sm8-key"

    acme, bo = clients
    assert acme.external_id == "c1" and acme.kind == "commercial" and not acme.deleted
    assert acme.remote_updated_at == datetime(2026, 1, 9, 22, 30, tzinfo=UTC)
    assert acme.address == "1 Main St, Sydney"
    assert acme.raw == page1[0]
    assert bo.deleted and bo.kind == "residential" and bo.remote_updated_at is None
    assert bo.parent_external_id == "c1"


@responses.activate
def test_servicem8_without_a_known_zone_widens_the_window():
    responses.get(f"{SM8}/company.json", json=[])
    list(sm8(config={}).iter_clients(updated_since=datetime(2026, 1, 2, tzinfo=UTC)))
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["$filter"] == ["edit_date gt '2026-01-01 09:59:59'"]


@responses.activate
def test_servicem8_connection_test_reports_the_account():
    responses.get(
        f"{SM8}/vendor.json",
        json=[{"uuid": "v1", "name": "Demo Plumbing", "timezone_name": "Australia/Sydney"}],
    )
    result = sm8().test_connection()
    assert result.ok and result.message == "Connected to Demo Plumbing."
    assert result.account.account_id == "v1" and result.account.timezone == "Australia/Sydney"


@responses.activate
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            {"status": 401, "json": {"errorCode": 401, "message": "bad key"}},
            "refused the credentials",
        ),
        ({"status": 403, "json": {"errorCode": 403, "message": "scope"}}, "vendor, read_customers"),
        ({"body": requests.ConnectionError("refused")}, "Could not reach ServiceM8"),
        ({"status": 200, "body": "<html>", "content_type": "text/html"}, "unexpected response"),
        ({"status": 502}, "having problems (HTTP 502)"),
        (
            {
                "status": 429,
                "json": {
                    "errorCode": 429,
                    "message": "Number of allowed API requests per day exceeded",
                },
            },
            "budget for this account is spent",
        ),
    ],
)
def test_servicem8_connection_test_explains_each_failure(reply, expected):
    responses.get(f"{SM8}/vendor.json", **reply)
    result = sm8().test_connection()
    assert not result.ok
    assert expected in result.message
    assert "sm8-key" not in result.message


@responses.activate
def test_servicetitan_pages_with_app_key_and_client_credentials():
    responses.post(ST_TOKEN, json={"access_token": "st-token", "expires_in": 900})
    path = f"{ST_API}/crm/v2/tenant/42/customers"
    customer = {
        "id": 7,
        "name": "Jones",
        "type": "Residential",
        "active": False,
        "modifiedOn": "2026-02-01T10:00:00Z",
        "mergedToId": 9,
        "address": {
            "street": "2 Elm",
            "unit": "B",
            "city": "Austin",
            "state": "TX",
            "zip": "78701",
            "country": "USA",
        },
    }
    # A full first page (one record, as asked) that says there is more.
    responses.get(path, json={"page": 1, "pageSize": 1, "hasMore": True, "data": [customer]})
    responses.get(path, json={"page": 2, "pageSize": 1, "hasMore": False, "data": []})
    since = datetime(2026, 1, 1, tzinfo=UTC)
    [client] = list(st(config={"page_size": 1}).iter_clients(updated_since=since))

    calls = [c for c in responses.calls if c.request.url.startswith(path)]
    first = parse_qs(urlsplit(calls[0].request.url).query)
    assert first == {
        "active": ["Any"],
        "modifiedOnOrAfter": ["2026-01-01T00:00:00+00:00"],
        "page": ["1"],
        "pageSize": ["1"],
    }
    assert parse_qs(urlsplit(calls[1].request.url).query)["page"] == ["2"]
    assert calls[0].request.headers["ST-App-Key"] == "ak1"
    assert calls[0].request.headers["Authorization"] == "Bearer st-token"
    assert client.external_id == "7" and client.deleted
    # A merge is not a site: the survivor stays in raw only (no visibility through a parent).
    assert client.parent_external_id is None and client.raw["mergedToId"] == 9
    assert client.address == "2 Elm B, Austin, TX, 78701, USA"
    assert client.remote_updated_at == datetime(2026, 2, 1, 10, tzinfo=UTC)


@responses.activate
def test_servicetitan_integration_environment_uses_its_own_hosts():
    responses.post(
        "https://auth-integration.servicetitan.io/connect/token",
        json={"access_token": "t", "expires_in": 900},
    )
    responses.get(
        "https://api-integration.servicetitan.io/crm/v2/tenant/42/customers",
        json={"page": 1, "pageSize": 1, "hasMore": False, "data": []},
    )
    assert st(environment="sandbox").test_connection().ok


@responses.activate
def test_servicetitan_wrong_client_secret_is_an_actionable_message():
    responses.post(ST_TOKEN, status=400, json={"error": "invalid_client"})
    result = st().test_connection()
    assert not result.ok and "refused the credentials" in result.message
    assert "invalid_client" in result.message


def test_base_url_override_points_every_host_at_the_sandbox():
    provider = st(base_url_override="http://127.0.0.1:8765/")
    assert provider.urls() == {
        "api": "http://127.0.0.1:8765/servicetitan",
        "token": "http://127.0.0.1:8765/servicetitan-auth/connect/token",
    }
    assert sm8(base_url_override="http://127.0.0.1:8765").urls()["api"] == (
        "http://127.0.0.1:8765/servicem8/api_1.0"
    )


def test_no_code_outside_provider_packages_branches_on_a_provider_name():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    names = "servicem8|servicetitan|jobber|hubspot|salesforce|housecall_pro|fieldedge"
    # ==/!=/in "name", case "name":, .startswith("name"), {"name": …} lookups.
    pattern = re.compile(
        rf"""((==|!=|\bin\b|\bcase\b|startswith\()\s*\(?\s*["']({names})["'])"""
        rf"""|(\{{\s*["']({names})["']\s*:)"""
    )
    for sample in (
        'if kind == "hubspot":',
        '    case "jobber":',
        'x.startswith("servicem8")',
        'URLS = {"servicetitan": 1}',
        'if p in ("fieldedge", "x")',
    ):
        assert pattern.search(sample), sample
    offenders = [
        str(path.relative_to(root))
        for app in ("config", "portal", "quotes", "sync", "integrations")
        for path in (root / app).rglob("*.py")
        if "providers" not in path.parts
        and "sandbox" not in path.parts
        and "migrations" not in path.parts
        and pattern.search(path.read_text())
    ]
    assert offenders == []
