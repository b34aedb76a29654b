import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.urls import reverse

from integrations.encryption import DecryptionError, encryption_keys_rotate
from integrations.models import Integration
from tests import factories

pytestmark = pytest.mark.django_db

SECRET = "sk-live-ABCDEF0123456789"


def _raw_column(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_column_holds_no_plaintext(integration):
    integration.credentials = {"api_key": SECRET, "client_id": "visible-id"}
    integration.save()
    raw = _raw_column(integration.pk)
    assert SECRET not in raw and "api_key" not in raw and "visible-id" not in raw
    assert raw.startswith("gAAAAA")
    assert Integration.objects.get(pk=integration.pk).credentials["api_key"] == SECRET


def test_rotation_with_two_keys(integration, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    integration.credentials = {"api_key": SECRET}
    integration.save()
    token_under_old = _raw_column(integration.pk)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": SECRET}

    assert encryption_keys_rotate() == 1
    token_under_new = _raw_column(integration.pk)
    assert token_under_new != token_under_old
    Fernet(new_key.encode()).decrypt(token_under_new.encode())  # the newest key now owns it

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can be dropped
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": SECRET}


def test_a_value_under_an_unknown_key_fails_clearly_without_breaking_pages(
    client, integration, settings
):
    integration.credentials = {"api_key": SECRET}
    integration.save()
    token = _raw_column(integration.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    loaded = Integration.objects.get(pk=integration.pk)  # loading the row still works
    with pytest.raises(DecryptionError, match="FIELD_ENCRYPTION_KEYS"):
        loaded.credentials["api_key"]
    with pytest.raises(DecryptionError):
        dict(loaded.credentials)

    loaded.name = "renamed while unreadable"
    loaded.save()
    assert _raw_column(integration.pk) == token  # the stored secret is left untouched

    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:integrations_integration_changelist")).status_code == 200
    assert client.get(reverse("admin:portal_client_changelist")).status_code == 200
    health = client.get("/health/detailed", HTTP_AUTHORIZATION="Bearer test-health-token")
    assert health.status_code in (200, 503) and health.json()["integrations"]


def test_admin_never_echoes_credentials_and_blank_keeps_them(client, integration):
    integration.credentials = {"api_key": SECRET}
    integration.save()
    admin = factories.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert SECRET not in page.content.decode()

    form = {
        "company": integration.company_id,
        "name": "Renamed",
        "provider": integration.provider,
        "environment": integration.environment,
        "external_account_id": integration.external_account_id,
        "base_url_override": "",
        "config": "{}",
        "enabled": "on",
        "status": "active",
        "read_cache_ttl": "300",
        "new_credentials": "",
    }
    assert client.post(url, form).status_code == 302
    integration.refresh_from_db()
    assert integration.name == "Renamed" and integration.credentials == {"api_key": SECRET}

    assert client.get(reverse("admin:portal_client_add")).status_code == 403  # synced: read-only

    bad = client.post(url, {**form, "new_credentials": "{not json"})
    assert bad.status_code == 200 and "Not valid JSON" in bad.content.decode()

    assert (
        client.post(url, {**form, "new_credentials": '{"api_key": "replacement"}'}).status_code
        == 302
    )
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": "replacement"}
