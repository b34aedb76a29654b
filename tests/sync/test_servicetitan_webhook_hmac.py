"""ServiceTitan V2 webhooks at the endpoint (issue #5 review): the HMAC signature of the raw
body under the integration's key(s), the path token as a second factor, and dedupe scoped per
integration (two tenants may send the same eventId)."""

import base64
import hashlib
import hmac
import json
import logging

import pytest

from integrations.providers.servicetitan.webhooks import (
    ServiceTitanWebhookHandler,
    hmac_keys_of,
)
from integrations.services import integration_credential_errors
from integrations.webhooks import WebhookRequest, WebhookVerificationError
from sync.models import WebhookEvent
from sync.webhooks import stored_event_id
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "st-path-0123456789abcdef"  # noqa: S105 - a test token
KEY = "k" * 40  # ServiceTitan HMAC keys are 32-64 characters
OLD_KEY = "o" * 40
HEADER = "X-ServiceTitan-Signature"


def body(event_id: str = "e-1", tenant: int | None = None) -> bytes:
    event = {"eventId": event_id, "eventType": "Customer.Updated", "customerId": 123}
    if tenant is not None:
        event["tenantId"] = tenant
    return json.dumps(event).encode()


def sign(raw: bytes, key: str = KEY, encoding: str = "hex") -> str:
    digest = hmac.new(key.encode(), raw, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def st_hooked(**credentials):
    return factories.IntegrationFactory(
        provider="servicetitan",
        credentials={
            "tenant_id": "42",
            "client_id": "cid",
            "client_secret": "csecret",
            "app_key": "ak",
            "webhook_secrets": [TOKEN],
            **credentials,
        },
    )


def post(client, integration, raw: bytes, signature: str | None = None, token: str = TOKEN):
    extra = {f"HTTP_{HEADER.upper().replace('-', '_')}": signature} if signature else {}
    return client.post(
        f"/webhooks/servicetitan/{integration.pk}/{token}/",
        raw,
        content_type="application/json",
        **extra,
    )


def test_a_signed_delivery_is_accepted_and_a_bad_or_missing_signature_is_refused(client, caplog):
    integration = st_hooked(hmac_key=KEY)
    raw = body()
    with caplog.at_level(logging.WARNING, logger="sync.webhooks"):
        assert post(client, integration, raw).status_code == 400  # unsigned
        assert post(client, integration, raw, sign(raw, "x" * 40)).status_code == 400
        tampered = raw.replace(b"123", b"124")
        assert post(client, integration, tampered, sign(raw)).status_code == 400
    refused = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    assert [r.missing for r in refused] == [True, False, False]
    assert all(KEY not in r.getMessage() and KEY not in str(r.__dict__) for r in refused)
    assert not WebhookEvent.objects.exclude(status="rejected").exists()
    assert WebhookEvent.objects.filter(status="rejected").count() == 3

    answered = post(client, integration, raw, sign(raw))
    assert answered.status_code == 200 and answered.json() == {"received": 1, "new": 1}
    # The path token stays a second factor: a valid signature with a wrong token is refused.
    assert post(client, integration, raw, sign(raw), token="wrong").status_code == 400


def test_rotated_keys_configured_header_and_encoding(client):
    integration = st_hooked(webhook_hmac_keys=[KEY, OLD_KEY])
    integration.config = {
        "webhook_signature_header": "X-Custom-Sig",
        "webhook_signature_encoding": "base64",
    }
    integration.save()
    raw = body("e-rot")
    url = f"/webhooks/servicetitan/{integration.pk}/{TOKEN}/"
    json_type = "application/json"
    old = sign(raw, OLD_KEY, "base64")
    assert client.post(url, raw, content_type=json_type, HTTP_X_CUSTOM_SIG=old).status_code == 200
    # hex under the base64 setting, or the default header, does not count.
    hexed = sign(raw, KEY, "hex")
    assert client.post(url, raw, content_type=json_type, HTTP_X_CUSTOM_SIG=hexed).status_code == 400
    assert post(client, integration, raw, sign(raw, KEY, "base64")).status_code == 400


def test_without_a_key_the_path_token_alone_is_checked(client):
    integration = st_hooked()
    assert post(client, integration, body()).status_code == 200
    assert post(client, integration, body(), token="wrong").status_code == 400


def test_handler_unit():
    raw = body()
    handler = ServiceTitanWebhookHandler(hmac_keys=[KEY])

    def request(headers: dict) -> WebhookRequest:
        return WebhookRequest(
            method="POST", url="https://x/", headers=headers, body=raw, path_token=TOKEN
        )

    handler.verify(request({HEADER.lower(): "sha256=" + sign(raw)}), [TOKEN])
    with pytest.raises(WebhookVerificationError):
        handler.verify(request({HEADER: sign(raw)[:-2]}), [TOKEN])
    with pytest.raises(ValueError):
        ServiceTitanWebhookHandler(signature_encoding="rot13")  # type: ignore[arg-type]
    assert hmac_keys_of({"hmac_key": KEY, "webhook_hmac_keys": [OLD_KEY, "", 5, KEY]}) == [
        KEY,
        OLD_KEY,
    ]


def test_the_admin_credential_check_accepts_the_hmac_credentials():
    base = {"tenant_id": "42", "client_id": "c", "client_secret": "s", "app_key": "a"}
    assert (
        integration_credential_errors(
            provider="servicetitan", credentials={**base, "hmac_key": KEY}
        )
        == []
    )
    assert (
        integration_credential_errors(
            provider="servicetitan", credentials={**base, "webhook_hmac_keys": [KEY, OLD_KEY]}
        )
        == []
    )
    errors = integration_credential_errors(
        provider="servicetitan", credentials={**base, "webhook_hmac_keys": [KEY, 5]}
    )
    assert errors and "webhook_hmac_keys" in errors[0]


def test_two_tenants_sending_the_same_event_id_do_not_collide(client):
    first, second = st_hooked(), st_hooked()
    raw = body("same-id")  # no tenantId in the payload: the eventId alone
    assert post(client, first, raw).json() == {"received": 1, "new": 1}
    assert post(client, second, raw).json() == {"received": 1, "new": 1}
    assert post(client, first, raw).json() == {"received": 1, "new": 0}  # a redelivery
    events = WebhookEvent.objects.exclude(status="rejected")
    assert sorted(e.integration_id for e in events) == sorted([first.pk, second.pk])
    assert stored_event_id(integration=first, event_id="x" * 300).startswith(f"{first.pk}:sha256:")
    assert len(stored_event_id(integration=first, event_id="x" * 300)) <= 255
