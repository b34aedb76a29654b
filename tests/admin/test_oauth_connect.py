"""Connect → the provider's authorize URL → callback: the code is exchanged (authlib) and the
tokens stored encrypted, with `state` checked."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.db import connection

from integrations.models import Incident, Integration
from portal.models import AuditLog
from tests.admin.conftest import change_url

pytestmark = pytest.mark.django_db

TOKEN_URL = "https://api.servicem8.com/oauth/access_token"
AUTHORIZE = "https://api.servicem8.com/oauth/authorize"
CALLBACK = "/integrations/oauth/callback/"


@pytest.fixture(autouse=True)
def oauth_app(monkeypatch):
    monkeypatch.setenv("SERVICEM8_CLIENT_ID", "fb-client-id")
    monkeypatch.setenv("SERVICEM8_CLIENT_SECRET", "fb-client-secret")


def connect(client, integration) -> dict:
    response = client.post(f"/integrations/oauth/{integration.pk}/connect/")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == AUTHORIZE
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def stored_column(integration: Integration) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM integrations_integration WHERE id = %s", [integration.pk]
        )
        return str(cursor.fetchone()[0])


@responses.activate
def test_connect_exchanges_the_code_and_stores_the_tokens_encrypted(admin_a, tenant_a):
    integration = tenant_a.integration
    integration.credentials = None
    integration.status = Integration.Status.NEEDS_REAUTH
    integration.save()
    Incident.objects.create(integration=integration, kind=Incident.Kind.NEEDS_REAUTH)
    query = connect(admin_a, integration)
    assert query["response_type"] == "code" and query["client_id"] == "fb-client-id"
    assert query["redirect_uri"] == f"http://testserver{CALLBACK}"
    assert "read_jobs" in query["scope"] and len(query["state"]) >= 40
    responses.post(
        TOKEN_URL,
        json={
            "access_token": "sm8-access-abc",
            "refresh_token": "sm8-refresh-xyz",
            "expires_in": 3600,
            "token_type": "bearer",
        },
    )
    response = admin_a.get(CALLBACK, {"code": "the-code", "state": query["state"]})
    assert response.status_code == 302 and response["Location"] == change_url(integration)
    exchange = parse_qs(responses.calls[0].request.body)
    assert exchange["grant_type"] == ["authorization_code"] and exchange["code"] == ["the-code"]
    assert exchange["redirect_uri"] == [f"http://testserver{CALLBACK}"]
    assert exchange["client_id"] == ["fb-client-id"]
    integration.refresh_from_db()
    assert integration.credentials["refresh_token"] == "sm8-refresh-xyz"
    assert integration.credentials["access_token"] == "sm8-access-abc"
    assert integration.status == Integration.Status.ACTIVE
    raw = stored_column(integration)
    assert "sm8-refresh-xyz" not in raw and "sm8-access-abc" not in raw
    assert not Incident.objects.filter(closed_at__isnull=True).exists()
    entry = AuditLog.objects.get(action="integration.oauth_connected")
    assert entry.actor == tenant_a.admin
    assert "sm8-refresh-xyz" not in json.dumps([entry.before, entry.after])
    page = admin_a.get(change_url(integration)).content.decode()
    assert "Connected to ServiceM8" in page and "sm8-refresh-xyz" not in page
    # The state was used up: replaying the callback is refused.
    assert admin_a.get(CALLBACK, {"code": "the-code", "state": query["state"]}).status_code == 400
    assert len(responses.calls) == 1


@responses.activate
def test_a_wrong_or_missing_state_is_refused_and_nothing_changes(admin_a, tenant_a):
    integration = tenant_a.integration
    before = integration.credentials
    connect(admin_a, integration)
    for params in ({"code": "c", "state": "forged"}, {"code": "c"}):
        assert admin_a.get(CALLBACK, params).status_code == 400
    assert not responses.calls
    integration.refresh_from_db()
    assert integration.credentials == before


def test_a_state_from_another_session_is_refused(client, admin_a, tenant_a):
    query = connect(admin_a, tenant_a.integration)
    client.logout()
    client.force_login(tenant_a.admin)  # a fresh session: the state lived in the old one
    assert client.get(CALLBACK, {"code": "c", "state": query["state"]}).status_code == 400


@responses.activate
def test_a_refused_grant_is_reported_not_stored(admin_a, tenant_a):
    query = connect(admin_a, tenant_a.integration)
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    response = admin_a.get(CALLBACK, {"code": "bad", "state": query["state"]}, follow=True)
    assert "refused the authorization (invalid_grant)" in response.content.decode()
    tenant_a.integration.refresh_from_db()
    assert "refresh_token" not in tenant_a.integration.credentials


def test_the_person_declining_at_the_provider_changes_nothing(admin_a, tenant_a):
    query = connect(admin_a, tenant_a.integration)
    response = admin_a.get(
        CALLBACK, {"error": "access_denied", "state": query["state"]}, follow=True
    )
    assert "did not grant access (access_denied)" in response.content.decode()


def test_connect_needs_the_oauth_app(admin_a, tenant_a, monkeypatch):
    monkeypatch.delenv("SERVICEM8_CLIENT_ID")
    response = admin_a.post(f"/integrations/oauth/{tenant_a.integration.pk}/connect/", follow=True)
    assert "set SERVICEM8_CLIENT_ID and SERVICEM8_CLIENT_SECRET" in response.content.decode()


def test_connect_is_offered_only_for_oauth_providers(admin_a, tenant_a):
    assert (
        "Connect with ServiceM8" in admin_a.get(change_url(tenant_a.integration)).content.decode()
    )
    tenant_a.integration.provider = "servicetitan"
    tenant_a.integration.save()
    page = admin_a.get(change_url(tenant_a.integration)).content.decode()
    assert "Connect with" not in page
    response = admin_a.post(f"/integrations/oauth/{tenant_a.integration.pk}/connect/", follow=True)
    assert "does not connect through OAuth" in response.content.decode()


def test_dispatchers_cannot_connect(client, tenant_a):
    client.force_login(tenant_a.dispatcher)
    assert client.post(f"/integrations/oauth/{tenant_a.integration.pk}/connect/").status_code == 404
