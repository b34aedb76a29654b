"""The integration admin's credential form takes ServiceTitan's webhook HMAC keys (issue #5
review): `hmac_key` (a string) and `webhook_hmac_keys` (a list, for rotation), write-only like
the other credentials."""

from __future__ import annotations

import json

import pytest

from integrations.models import Integration
from tests.admin.conftest import change_url

pytestmark = pytest.mark.django_db
KEY = "hmac-" + "k" * 40
OLD = "hmac-" + "o" * 40
BASE = {"tenant_id": "42", "client_id": "cid", "client_secret": "csecret", "app_key": "ak"}


def test_the_replace_page_accepts_hmac_keys_and_never_shows_them(admin_a, tenant_a):
    integration = tenant_a.integration
    integration.provider = Integration.Provider.SERVICETITAN
    integration.credentials = dict(BASE)
    integration.save()
    url = change_url(integration).replace("change/", "credentials/")

    wrong = admin_a.post(url, {"credentials": json.dumps({**BASE, "webhook_hmac_keys": [KEY, 7]})})
    assert wrong.status_code == 200
    page = wrong.content.decode()
    assert "webhook_hmac_keys" in page and "must be a list of non-empty strings" in page
    assert KEY not in page

    credentials = {**BASE, "hmac_key": KEY, "webhook_hmac_keys": [KEY, OLD]}
    done = admin_a.post(url, {"credentials": json.dumps(credentials)})
    assert done.status_code == 302
    integration.refresh_from_db()
    assert integration.credentials == credentials
    shown = admin_a.get(change_url(integration)).content.decode()
    assert KEY not in shown and OLD not in shown
    assert "webhook_hmac_keys" in shown  # the stored key names are listed, never the values
