"""The sandbox's ServiceM8 Webhooks API (list, subscribe with the callback challenge, delete),
and the provider's subscription methods against it."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import requests

from integrations import registry
from integrations.auth import MemoryTokenStore
from integrations.base import ProviderContext
from integrations.exceptions import ProviderError, ProviderPermissionError
from integrations.http import RetryPolicy
from integrations.sandbox import accounts
from tests.integrations.sandbox import SM8_HEADERS, control, sm8_oauth_tokens, start_sandbox

HOOKS = "/servicem8/webhook_subscriptions"
SCOPES = "vendor read_jobs read_customers read_staff"


class Callback:
    """A callback server: answers the subscribe challenge (or, if told, something else) and
    records the requests it got."""

    def __init__(self) -> None:
        self.answer_wrong = False
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                outer.seen.append({"path": self.path, "form": form})
                body = b"nope" if outer.answer_wrong else form.get("challenge", "").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("sm8-hooks"), records=4)
    yield server
    server.stop()


@pytest.fixture
def callback():
    server = Callback()
    yield server
    server.close()


@pytest.fixture
def bearer(sandbox) -> dict[str, str]:
    control(sandbox.url, "POST", "reset")
    return {"Authorization": f"Bearer {sm8_oauth_tokens(sandbox.url, SCOPES)['access_token']}"}


def listed(sandbox, headers, status: str | None = None) -> list[dict]:
    params = {"status": status} if status else {}
    response = requests.get(f"{sandbox.url}{HOOKS}", headers=headers, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_subscribe_verifies_the_callback_then_lists_modifies_and_deletes(sandbox, bearer, callback):
    target = f"{callback.url}/hooks/one/"
    form = {"object": "job", "fields": "status,active", "callback_url": target, "unique_id": "x"}
    response = requests.post(f"{sandbox.url}{HOOKS}/object", data=form, headers=bearer, timeout=15)
    assert response.status_code == 200 and response.json() == {"success": True}
    (challenge,) = callback.seen
    assert challenge["path"] == "/hooks/one/" and challenge["form"]["mode"] == "subscribe"
    assert challenge["form"]["challenge"]
    (sub,) = [s for s in listed(sandbox, bearer) if s["callback_url"] == target]
    assert (sub["type"], sub["object"], sub["fields"], sub["unique_id"], sub["active"]) == (
        "object",
        "job",
        ["status", "active"],
        "x",
        True,
    )
    # The same object and callback again modifies the subscription (verified again).
    again = requests.post(
        f"{sandbox.url}{HOOKS}/object",
        data={**form, "fields": "status"},
        headers=bearer,
        timeout=15,
    )
    assert again.status_code == 200 and len(callback.seen) == 2
    (changed,) = [s for s in listed(sandbox, bearer) if s["callback_url"] == target]
    assert changed["uuid"] == sub["uuid"] and changed["fields"] == ["status"]

    gone = requests.delete(f"{sandbox.url}{HOOKS}/{sub['uuid']}", headers=bearer, timeout=10)
    assert gone.status_code == 200
    assert not [s for s in listed(sandbox, bearer, "all") if s["callback_url"] == target]
    missing = requests.delete(f"{sandbox.url}{HOOKS}/{sub['uuid']}", headers=bearer, timeout=10)
    assert missing.status_code == 404


def test_a_callback_that_fails_the_challenge_is_refused(sandbox, bearer, callback):
    callback.answer_wrong = True
    target = f"{callback.url}/hooks/wrong/"
    response = requests.post(
        f"{sandbox.url}{HOOKS}/object",
        data={"object": "company", "fields": "name", "callback_url": target},
        headers=bearer,
        timeout=15,
    )
    assert response.status_code == 400
    assert "verification failed" in response.json()["message"]
    assert not [s for s in listed(sandbox, bearer, "all") if s["callback_url"] == target]


def test_api_keys_bad_input_and_missing_scopes_are_refused(sandbox, bearer, callback):
    response = requests.get(f"{sandbox.url}{HOOKS}", headers=SM8_HEADERS, timeout=10)
    assert response.status_code == 403 and "Public Applications" in response.json()["message"]
    bad = requests.post(
        f"{sandbox.url}{HOOKS}/object",
        data={"object": "nothing", "fields": "", "callback_url": "ftp://x"},
        headers=bearer,
        timeout=10,
    )
    message = bad.json()["message"]
    assert bad.status_code == 400 and "object" in message and "fields" in message
    assert "callback_url" in message
    as_json = requests.post(
        f"{sandbox.url}{HOOKS}/object",
        json={"object": "job", "fields": "status", "callback_url": callback.url},
        headers=bearer,
        timeout=10,
    )
    assert as_json.status_code == 400  # form-encoded only
    # The token may not read job materials: it may not subscribe to them either.
    no_scope = requests.post(
        f"{sandbox.url}{HOOKS}/object",
        data={"object": "jobmaterial", "fields": "name", "callback_url": callback.url},
        headers=bearer,
        timeout=10,
    )
    assert no_scope.status_code == 403 and callback.seen == []
    unknown = requests.get(
        f"{sandbox.url}{HOOKS}", params={"status": "x"}, headers=bearer, timeout=10
    )
    assert unknown.status_code == 400


def oauth_provider(sandbox):
    tokens = sm8_oauth_tokens(sandbox.url, SCOPES)
    app = accounts.SERVICEM8_OAUTH_APP
    credentials = {
        "refresh_token": tokens["refresh_token"],
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    context = ProviderContext(
        integration_id=77,
        base_url_override=sandbox.url,
        credentials=credentials,
        token_store=MemoryTokenStore(credentials),
        config={"timezone": accounts.SERVICEM8_ACCOUNT.timezone},
        rate_limit_enabled=False,
        retry=RetryPolicy(attempts=1),
    )
    return registry.get("servicem8")(context)


def test_the_provider_subscribes_lists_and_unsubscribes(sandbox, bearer, callback):
    provider = oauth_provider(sandbox)
    assert provider.webhooks_supported()
    target = f"{callback.url}/webhooks/servicem8/77/tok/"
    sub = provider.webhook_subscribe(object_name="company", callback_url=target)
    assert sub.active and sub.object == "company" and sub.unique_id == "fieldbridge-77"
    assert "edit_date" in sub.fields and callback.seen[0]["form"]["mode"] == "subscribe"
    assert [s.uuid for s in provider.webhook_subscriptions() if s.callback_url == target] == [
        sub.uuid
    ]
    provider.webhook_unsubscribe(subscription_uuid=sub.uuid)
    assert not [s for s in provider.webhook_subscriptions() if s.callback_url == target]
    provider.webhook_unsubscribe(subscription_uuid=sub.uuid)  # gone already: still fine

    callback.answer_wrong = True
    with pytest.raises(ProviderError):
        provider.webhook_subscribe(object_name="job", callback_url=target)


def test_an_api_key_provider_cannot_use_the_webhooks_api(sandbox):
    context = ProviderContext(
        integration_id=78,
        base_url_override=sandbox.url,
        credentials={"api_key": accounts.SERVICEM8_ACCOUNT.api_key},
        rate_limit_enabled=False,
        retry=RetryPolicy(attempts=1),
    )
    provider = registry.get("servicem8")(context)
    assert not provider.webhooks_supported()
    with pytest.raises(ProviderPermissionError):
        provider.webhook_subscriptions()


# --- one subscription per object we read --------------------------------------------------

# ServiceM8 list object -> its schema in the spec (servicem8-api_1.0.openapi.json).
OBJECT_SCHEMAS = {
    "company": "Company",
    "companycontact": "CompanyContact",
    "staff": "Staff",
    "taxrate": "TaxRate",
    "category": "Category",
    "material": "Material",
    "job": "Job",
    "jobcontact": "JobContact",
    "jobactivity": "JobActivity",
    "jobmaterialbundle": "JobMaterialBundle",
    "jobmaterial": "JobMaterial",
    "attachment": "Attachment",
    "note": "Note",
}


def test_every_object_we_read_has_a_subscription_on_spec_fields():
    from integrations.providers.servicem8.provider import ServiceM8Provider
    from integrations.providers.servicem8.subscriptions import SUBSCRIBABLE_FIELDS
    from integrations.providers.servicem8.webhooks import ENTITY_BY_OBJECT
    from tests.integrations.sandbox.test_spec_conformance import SM8_SPEC

    read = list(ServiceM8Provider.objects.values())
    # Exactly the objects we read, in their order: leaving one out (or adding one we do not
    # read) fails here, and the admin page offers exactly these (webhook_objects).
    assert list(SUBSCRIBABLE_FIELDS) == read
    assert ServiceM8Provider.webhook_objects == tuple(read)
    assert set(OBJECT_SCHEMAS) == set(read)
    # Their notices come back to the entity that reads them.
    assert {o: ENTITY_BY_OBJECT[o] for o in read} == {
        obj: entity for entity, obj in ServiceM8Provider.objects.items()
    }
    import json

    schemas = json.loads(SM8_SPEC.read_text())["components"]["schemas"]
    for obj, fields in SUBSCRIBABLE_FIELDS.items():
        properties = set(schemas[OBJECT_SCHEMAS[obj]]["properties"])
        assert fields and len(set(fields)) == len(fields), obj
        assert set(fields) <= properties, (obj, set(fields) - properties)
        assert {"edit_date", "active"} <= set(fields), obj


def test_the_provider_subscribes_every_object_it_reads(sandbox, callback):
    from integrations.providers.servicem8.provider import ServiceM8Provider
    from integrations.providers.servicem8.subscriptions import SUBSCRIBABLE_FIELDS
    from integrations.sandbox.servicem8 import OBJECTS

    control(sandbox.url, "POST", "reset")
    read = list(ServiceM8Provider.objects.values())
    # A token allowed to read every object (the sandbox refuses a subscription otherwise).
    scopes = sorted({s for obj in read for s in OBJECTS[obj].read_scopes})
    tokens = sm8_oauth_tokens(sandbox.url, " ".join(["vendor", *scopes]))
    app = accounts.SERVICEM8_OAUTH_APP
    credentials = {
        "refresh_token": tokens["refresh_token"],
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    provider = registry.get("servicem8")(
        ProviderContext(
            integration_id=79,
            base_url_override=sandbox.url,
            credentials=credentials,
            token_store=MemoryTokenStore(credentials),
            config={"timezone": accounts.SERVICEM8_ACCOUNT.timezone},
            rate_limit_enabled=False,
            retry=RetryPolicy(attempts=1),
        )
    )
    target = f"{callback.url}/webhooks/servicem8/79/tok/"
    for obj in provider.webhook_objects:
        sub = provider.webhook_subscribe(object_name=obj, callback_url=target)
        assert sub.active and sub.object == obj and sub.fields == SUBSCRIBABLE_FIELDS[obj]
    ours = [s for s in provider.webhook_subscriptions() if s.callback_url == target]
    assert sorted(s.object for s in ours) == sorted(read)
    assert all(s.active and s.unique_id == "fieldbridge-79" for s in ours)
    assert len(callback.seen) == len(read)  # one verified challenge each
