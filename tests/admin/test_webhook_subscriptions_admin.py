"""Webhook subscriptions from the Integration admin: only for OAuth-connected ServiceM8
integrations; subscribe and unsubscribe per object against the sandbox, whose challenge is
answered by our own webhook endpoint (a live server); audited without the path token."""

from __future__ import annotations

import pytest
import requests

from integrations.models import Integration
from integrations.sandbox import accounts
from portal.models import AuditLog
from tests import factories
from tests.admin.conftest import admin_url, change_url
from tests.integrations.sandbox import control, sm8_oauth_tokens, start_sandbox

HOOKS = "/servicem8/webhook_subscriptions"


def webhooks_url(integration: Integration) -> str:
    return admin_url(f"integrations/integration/{integration.pk}/webhooks/")


@pytest.mark.django_db
def test_an_api_key_integration_is_told_why(admin_a, tenant_a, settings):
    settings.PUBLIC_BASE_URL = "https://fieldbridge.example.com"
    assert 'id="webhooks-link"' in admin_a.get(change_url(tenant_a.integration)).content.decode()
    response = admin_a.get(webhooks_url(tenant_a.integration))
    text = response.content.decode()
    assert response.status_code == 200 and 'id="webhooks-unavailable"' in text
    assert "only to OAuth apps" in text
    response = admin_a.post(
        webhooks_url(tenant_a.integration), {"object": "job", "operation": "subscribe"}, follow=True
    )
    assert (
        "Not done" in response.content.decode()
        and "only to OAuth apps" in response.content.decode()
    )
    assert not AuditLog.objects.filter(action="integration.webhook_subscribed").exists()


@pytest.mark.django_db
def test_other_providers_have_no_webhooks_page(admin_a, tenant_a):
    other = factories.IntegrationFactory(
        company=tenant_a.company,
        provider="servicetitan",
        credentials={"tenant_id": "1", "client_id": "c", "client_secret": "s", "app_key": "a"},
    )
    assert 'id="webhooks-link"' not in admin_a.get(change_url(other)).content.decode()
    assert "not managed from here" in admin_a.get(webhooks_url(other)).content.decode()


@pytest.mark.django_db
def test_dispatchers_and_other_companies_cannot_open_it(client, tenant_a, tenant_b):
    client.force_login(tenant_a.dispatcher)
    assert client.get(webhooks_url(tenant_a.integration)).status_code == 403
    client.force_login(tenant_a.admin)
    assert client.get(webhooks_url(tenant_b.integration)).status_code == 404


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("admin-hooks"), records=4)
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_subscribe_and_unsubscribe_against_the_sandbox(
    client, tenant_a, sandbox, live_server, settings
):
    control(sandbox.url, "POST", "reset")
    settings.PUBLIC_BASE_URL = live_server.url
    tokens = sm8_oauth_tokens(sandbox.url, "vendor read_jobs read_customers read_staff")
    app = accounts.SERVICEM8_OAUTH_APP
    integration = tenant_a.integration
    integration.base_url_override = sandbox.url
    integration.credentials = {
        "refresh_token": tokens["refresh_token"],
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    integration.save()
    client.force_login(tenant_a.admin)

    page = client.get(webhooks_url(integration)).content.decode()
    assert 'id="webhook-job"' in page and "Not subscribed" in page
    # One row per object the provider reads (none left out).
    from integrations.providers.servicem8.provider import ServiceM8Provider

    for obj in ServiceM8Provider.objects.values():
        assert f'id="webhook-{obj}"' in page, obj

    response = client.post(
        webhooks_url(integration), {"object": "job", "operation": "subscribe"}, follow=True
    )
    assert "Subscribed to job changes." in response.content.decode(), response.content.decode()
    integration.refresh_from_db()
    (token,) = integration.credentials["webhook_secrets"]
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    listed = requests.get(f"{sandbox.url}{HOOKS}", headers=bearer, timeout=10).json()
    (sub,) = [s for s in listed if s["object"] == "job"]
    assert sub["callback_url"] == (
        f"{live_server.url}/webhooks/servicem8/{integration.pk}/{token}/"
    )
    assert sub["unique_id"] == f"fieldbridge-{integration.pk}"
    page = client.get(webhooks_url(integration)).content.decode()
    assert "Subscribed" in page and token not in page
    audit = AuditLog.objects.get(action="integration.webhook_subscribed")
    assert audit.after["object"] == "job" and token not in str(audit.after)
    assert audit.actor == tenant_a.admin and audit.company_id == tenant_a.company.pk

    response = client.post(
        webhooks_url(integration), {"object": "job", "operation": "unsubscribe"}, follow=True
    )
    assert "Unsubscribed from job changes." in response.content.decode()
    listed = requests.get(f"{sandbox.url}{HOOKS}", headers=bearer, timeout=10).json()
    assert not [s for s in listed if s["object"] == "job"]
    assert AuditLog.objects.filter(action="integration.webhook_unsubscribed").count() == 1
    # Unsubscribing what is not subscribed says so.
    response = client.post(
        webhooks_url(integration), {"object": "job", "operation": "unsubscribe"}, follow=True
    )
    assert "is not subscribed" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_without_a_public_url_nothing_is_subscribed(client, tenant_a, settings):
    settings.PUBLIC_BASE_URL = ""
    integration = tenant_a.integration
    integration.credentials = {"refresh_token": "r", "client_id": "c", "client_secret": "s"}
    integration.save()
    client.force_login(tenant_a.admin)
    text = client.get(webhooks_url(integration)).content.decode()
    assert "PUBLIC_BASE_URL is not set" in text
