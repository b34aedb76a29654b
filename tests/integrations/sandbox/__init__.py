"""Tests for the provider sandbox (``integrations/sandbox``), run over real loopback HTTP.

Each test module starts its own ``SandboxServer`` on port 0 with a ``tmp_path`` database; the
helpers below only build URLs, headers and control calls so the tests read like client code.
No Django database is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from integrations.sandbox import accounts
from integrations.sandbox.seed import seed
from integrations.sandbox.server import SandboxServer

SM8_HEADERS = {"X-Api-Key": accounts.SERVICEM8_ACCOUNT.api_key}
TENANT = accounts.SERVICETITAN_TENANT.tenant_id


def start_sandbox(tmp_path: Path, records: int = 30) -> SandboxServer:
    """Seed ``records`` clients per provider into a fresh DB and start a server on it."""
    db = tmp_path / "sandbox.sqlite3"
    if records:
        seed(db, records=records)
    return SandboxServer(db).start()


def sm8_url(root: str, path: str = "company.json") -> str:
    return f"{root}/servicem8/api_1.0/{path}"


def st_url(root: str, tail: str = "customers", tenant: str = TENANT) -> str:
    return f"{root}/servicetitan/crm/v2/tenant/{tenant}/{tail}"


def st_token(root: str, tenant: accounts.ServiceTitanTenant = accounts.SERVICETITAN_TENANT) -> str:
    response = requests.post(
        f"{root}/servicetitan-auth/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def sm8_oauth_tokens(root: str, scope: str) -> dict[str, Any]:
    """The sandbox's ServiceM8 authorization-code flow: {"access_token", "refresh_token", …}."""
    app = accounts.SERVICEM8_OAUTH_APP
    redirect = "https://portal.example/cb"
    location = requests.get(
        f"{root}/servicem8/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": redirect,
            "scope": scope,
        },
        allow_redirects=False,
        timeout=5,
    ).headers["Location"]
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    return requests.post(
        f"{root}/servicem8/oauth/access_token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
        timeout=5,
    ).json()


def st_headers(token: str) -> dict[str, str]:
    return {"ST-App-Key": accounts.SERVICETITAN_APP_KEY, "Authorization": f"Bearer {token}"}


def control(root: str, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
    """Call the control API and return its JSON, asserting success."""
    response = requests.request(method, f"{root}/_sandbox/{path}", json=json, timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def configure(root: str, **patch: Any) -> dict[str, Any]:
    return control(root, "POST", "config", patch)


def sm8_walk(
    root: str, headers: dict[str, str] = SM8_HEADERS, params: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Follow ``x-next-cursor`` from -1; returns (records, cursors seen). Caps at 1,000 pages."""
    records: list[dict[str, Any]] = []
    cursors: list[str] = []
    cursor = "-1"
    for _ in range(1000):
        response = requests.get(
            sm8_url(root), params={**(params or {}), "cursor": cursor}, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        records.extend(response.json())
        next_cursor = response.headers.get("x-next-cursor")
        if next_cursor is None:
            return records, cursors
        cursors.append(next_cursor)
        cursor = next_cursor
    raise AssertionError("cursor walk did not end within 1,000 pages")
