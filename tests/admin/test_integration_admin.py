"""The integration page: credentials (write-only, shape-checked, replaceable), Test connection
with its history, schedules."""

from __future__ import annotations

import json

import pytest
import responses
from django.db import connection

from integrations.models import ConnectionTest, Integration
from portal.models import AuditLog
from tests.admin.conftest import SECRET_A, admin_url, change_url

pytestmark = pytest.mark.django_db

SM8_VENDOR = "https://api.servicem8.com/api_1.0/vendor.json"
ADD_URL = admin_url("integrations/integration/add/")


def add_form(company, **overrides) -> dict:
    data = {
        "company": company.pk,
        "name": "New ServiceM8",
        "provider": "servicem8",
        "environment": "sandbox",
        "external_account_id": "",
        "base_url_override": "",
        "config": "{}",
        "enabled": "on",
        "read_cache_ttl": "300",
        "new_credentials": "",
    }
    return {**data, **overrides}


def stored_column(integration: Integration) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM integrations_integration WHERE id = %s", [integration.pk]
        )
        return str(cursor.fetchone()[0])


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ('{"api_key": ', "Not valid JSON"),
        ("[1, 2]", "Enter a JSON object"),
        ('{"apikey": "sm8-typo-value-123"}', "ServiceM8 needs {api_key} or {refresh_token}"),
        ('{"api_key": {"nested": "sm8-typo-value-123"}}', "must be a string"),
    ],
)
def test_credentials_of_the_wrong_shape_get_clear_field_errors(
    admin_a, tenant_a, credentials, message
):
    response = admin_a.post(ADD_URL, add_form(tenant_a.company, new_credentials=credentials))
    assert response.status_code == 200  # the form again, with the error on the field
    errors = response.context["adminform"].form.errors
    assert "new_credentials" in errors
    assert any(message in e for e in errors["new_credentials"])
    body = response.content.decode()
    assert "sm8-typo-value-123" not in body  # never echoed back
    assert not Integration.objects.filter(name="New ServiceM8").exists()


def test_a_provider_without_oauth_requires_credentials(admin_a, tenant_a):
    response = admin_a.post(
        ADD_URL, add_form(tenant_a.company, provider="servicetitan", environment="sandbox")
    )
    assert "Enter the credentials" in str(response.context["adminform"].form.errors)
    shaped = admin_a.post(
        ADD_URL,
        add_form(
            tenant_a.company,
            provider="servicetitan",
            new_credentials='{"tenant_id": "42", "client_id": "cid"}',
        ),
    )
    assert "ServiceTitan needs {tenant_id, client_id, client_secret}" in str(
        shaped.context["adminform"].form.errors
    )


def test_adding_an_integration_stores_credentials_encrypted_and_audits_without_them(
    admin_a, tenant_a
):
    secret = "sm8-brand-new-secret-4242"  # noqa: S105
    response = admin_a.post(
        ADD_URL,
        add_form(tenant_a.company, new_credentials=json.dumps({"api_key": secret})),
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302
    integration = Integration.objects.get(name="New ServiceM8")
    assert integration.credentials == {"api_key": secret}
    assert secret not in stored_column(integration)
    entry = AuditLog.objects.get(action="integration.created", target_id=str(integration.pk))
    assert entry.actor == tenant_a.admin and entry.company == tenant_a.company
    assert entry.ip_address == "203.0.113.9"
    assert entry.after["credential_keys"] == ["api_key"] and entry.after["name"] == "New ServiceM8"
    assert secret not in json.dumps(entry.after)
    page = admin_a.get(change_url(integration)).content.decode()
    assert secret not in page
    # The admin's own history (LogEntry) names the change, not the value.
    assert (
        secret
        not in admin_a.get(change_url(integration).replace("change/", "history/")).content.decode()
    )


def test_a_team_admin_can_only_add_to_their_own_company(admin_a, tenant_a, tenant_b):
    response = admin_a.post(ADD_URL, add_form(tenant_b.company, new_credentials='{"api_key": "k"}'))
    assert response.status_code == 200
    assert "company" in response.context["adminform"].form.errors
    form_page = admin_a.get(ADD_URL).content.decode()
    assert tenant_b.company.name not in form_page


def test_saving_other_settings_keeps_the_credentials_and_audits_the_change(admin_a, tenant_a):
    integration = tenant_a.integration
    data = {
        "company": integration.company_id,
        "name": "Renamed",
        "environment": "production",
        "external_account_id": integration.external_account_id,
        "base_url_override": "",
        "config": "{}",
        "enabled": "",
        "read_cache_ttl": "300",
    }
    response = admin_a.post(change_url(integration), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": SECRET_A} and not integration.enabled
    entry = AuditLog.objects.get(action="integration.updated")
    assert entry.before == {
        "name": "Acme Plumbing ServiceM8",
        "environment": "sandbox",
        "enabled": True,
    }
    assert entry.after == {"name": "Renamed", "environment": "production", "enabled": False}


def test_replacing_credentials(admin_a, tenant_a):
    integration = tenant_a.integration
    integration.status = Integration.Status.NEEDS_REAUTH
    integration.save()
    url = change_url(integration).replace("change/", "credentials/")
    page = admin_a.get(url)
    assert page.status_code == 200 and SECRET_A not in page.content.decode()
    wrong = admin_a.post(url, {"credentials": '{"token": "sm8-new-secret-999"}'})
    assert wrong.status_code == 200
    assert "ServiceM8 needs {api_key} or {refresh_token}" in wrong.content.decode()
    assert "sm8-new-secret-999" not in wrong.content.decode()
    done = admin_a.post(url, {"credentials": '{"api_key": "sm8-new-secret-999"}'})
    assert done.status_code == 302 and done["Location"] == change_url(integration)
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": "sm8-new-secret-999"}
    assert integration.status == Integration.Status.ACTIVE
    entry = AuditLog.objects.get(action="integration.credentials_replaced")
    assert entry.actor == tenant_a.admin
    assert "sm8-new-secret-999" not in json.dumps([entry.before, entry.after])
    assert SECRET_A not in json.dumps([entry.before, entry.after])


@responses.activate
def test_test_connection_success_is_shown_green_and_kept_in_the_history(admin_a, tenant_a):
    responses.get(
        SM8_VENDOR,
        json=[{"uuid": "acc-1", "name": "Acme Account", "timezone_name": "Australia/Sydney"}],
    )
    integration = tenant_a.integration
    url = change_url(integration).replace("change/", "test-connection/")
    response = admin_a.post(url, follow=True)
    assert response.status_code == 200
    assert responses.calls[0].request.headers["X-Api-Key"] == SECRET_A
    body = response.content.decode()
    status = body[body.index('role="status"') - 200 : body.index('role="status"') + 600]
    assert "connection-status ok" in status and "Connected to Acme Account." in status
    assert " ms" in status and "Tested " in status
    test = ConnectionTest.objects.get(integration=integration)
    assert (
        test.ok
        and test.tested_by == tenant_a.admin
        and test.message == "Connected to Acme Account."
    )
    assert AuditLog.objects.filter(
        action="integration.test_connection", actor=tenant_a.admin
    ).exists()
    assert SECRET_A not in body


@responses.activate
def test_test_connection_with_a_wrong_key_says_so_in_red(admin_a, tenant_a):
    responses.get(SM8_VENDOR, status=401, json={"errorCode": 401, "message": "Invalid API key"})
    integration = tenant_a.integration
    url = change_url(integration).replace("change/", "test-connection/")
    body = admin_a.post(url, follow=True).content.decode()
    status = body[body.index('role="status"') - 200 : body.index('role="status"') + 600]
    assert "connection-status failed" in status
    assert "ServiceM8 refused the credentials" in status
    history = list(ConnectionTest.objects.filter(integration=integration))
    assert len(history) == 1 and not history[0].ok
    assert SECRET_A not in body and SECRET_A not in history[0].message


@responses.activate
def test_history_keeps_every_test(admin_a, tenant_a):
    responses.get(SM8_VENDOR, json=[{"uuid": "acc-1", "name": "Acme"}])
    responses.get(SM8_VENDOR, status=503)
    url = change_url(tenant_a.integration).replace("change/", "test-connection/")
    admin_a.post(url)
    admin_a.post(url)
    assert [t.ok for t in ConnectionTest.objects.filter(integration=tenant_a.integration)] == [
        False,
        True,
    ]
    body = admin_a.get(change_url(tenant_a.integration)).content.decode()
    assert body.count('<td class="ok">OK</td>') == 1
    assert body.count('<td class="failed">Failed</td>') == 1


def test_the_page_shows_the_integrations_schedules(
    admin_a, tenant_a, django_capture_on_commit_callbacks, client, operator
):
    from sync.beat import integration_schedules_sync

    integration_schedules_sync(integration=tenant_a.integration)
    body = admin_a.get(change_url(tenant_a.integration)).content.decode()
    assert f"fieldbridge:sync:{tenant_a.integration.pk}:incremental|full" in body
    assert "Incremental" in body and "Full" in body
    assert "periodictask" not in body  # teams see them; only operators get the link
    client.force_login(operator)
    assert (
        "/django_celery_beat/periodictask/"
        in client.get(change_url(tenant_a.integration)).content.decode()
    )


def test_only_providers_with_a_connector_can_be_added(admin_a, tenant_a):
    """Providers the model knows but no connector reads are labelled "coming soon" and
    refused with a clear error, not saved into an integration that can never sync."""
    from integrations import registry

    ready = {cls.key for cls in registry.all_providers()}
    assert {"servicem8", "servicetitan"} <= ready and "housecall_pro" not in ready
    form = admin_a.get(ADD_URL).context["adminform"].form
    choices = form.fields["provider"].choices
    offered = {value for value, label in choices if isinstance(label, str) and value}
    assert offered == ready
    [(group, later)] = [(value, label) for value, label in choices if isinstance(label, list)]
    assert "coming soon" in group.lower()
    assert dict(later)["housecall_pro"] == "Housecall Pro (coming soon)"

    response = admin_a.post(
        ADD_URL,
        add_form(
            tenant_a.company,
            provider="housecall_pro",
            new_credentials=json.dumps({"api_key": "x"}),
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["provider"]
    assert errors == [
        "Housecall Pro is coming soon: Fieldbridge has no Housecall Pro connector yet, so it "
        "cannot sync. Choose one of the available providers."
    ]
    assert not Integration.objects.filter(provider="housecall_pro").exists()
