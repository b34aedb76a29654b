"""ServiceTitan pricebook writes (`pricebook.update`, `pricebook.image`) against a stateful
`responses` fake.

Every request the provider sends to a documented endpoint is validated against the official
tenant-pricebook-v2.yml with openapi-core, and every 200 answer the fake gives is validated
too. The image upload (Images_Post) is not in the 2022 spec: its request is checked by hand
(multipart/form-data, one `file` part with the bytes and their content type).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import MultiDict

from integrations import registry
from integrations.auth import MemoryTokenStore
from integrations.base import Capability, ProviderContext
from integrations.exceptions import ProviderValidationError
from integrations.http import RetryPolicy
from integrations.providers.servicetitan import writes_pricebook
from tests.integrations.provider_specs import load_st_spec
from tests.integrations.spec_query import assert_query_declared

API = "https://api.servicetitan.io"
TOKEN_URL = "https://auth.servicetitan.io/connect/token"
TENANT = "42"
PRICEBOOK = f"{API}/pricebook/v2/tenant/{TENANT}"
MATERIAL = 40001
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return load_st_spec("tenant-pricebook-v2.yml")[0]


def material() -> dict:
    """A Pricebook.V2.MaterialResponse (the schema's required fields and a few more)."""
    return {
        "id": MATERIAL,
        "code": "PVC-050",
        "displayName": "PVC pipe 1/2in",
        "description": "Schedule 40",
        "cost": 1.25,
        "active": True,
        "price": 4.5,
        "memberPrice": 4.0,
        "addOnPrice": 4.5,
        "addOnMemberPrice": 4.0,
        "hours": 0,
        "commissionBonus": 0,
        "paysCommission": False,
        "deductAsJobCost": False,
        "isInventory": False,
        "categories": [],
        "assets": [{"alias": "old.png", "fileName": "old.png", "type": "Image", "url": "x/1.png"}],
        "modifiedOn": "2026-03-01T10:00:00Z",
    }


@dataclass
class FakePricebook:
    spec: OpenAPI
    item: dict = field(default_factory=material)
    applied: dict[str, int] = field(default_factory=dict)
    uploads: list[tuple[str, str, bytes]] = field(default_factory=list)
    refuse: dict | None = None  # the next PATCH answers this ApiErrorResponse with 400

    def install(self, mock: responses.RequestsMock) -> None:
        mock.post(TOKEN_URL, json={"access_token": "st-token", "expires_in": 900})
        item = re.compile(re.escape(f"{PRICEBOOK}/materials/{MATERIAL}") + "$")
        mock.add_callback("GET", item, callback=self._wrap(self.get))
        mock.add_callback("PATCH", item, callback=self._wrap(self.patch))
        mock.add_callback("POST", f"{PRICEBOOK}/images", callback=self.upload)

    def _wrap(self, handler):
        def callback(request):
            mock = self._mock_request(request)
            self.spec.validate_request(mock)  # every request is valid against the spec
            assert_query_declared(self.spec, mock)
            status, body = handler(request)
            content = json.dumps(body).encode()
            if status == 200:
                self.spec.validate_response(
                    mock, MockResponse(content, status_code=200, content_type="application/json")
                )
            return status, {"Content-Type": "application/json"}, content

        return callback

    @staticmethod
    def _mock_request(request) -> MockRequest:
        url = urlsplit(request.url)
        body = request.body.encode() if isinstance(request.body, str) else request.body
        return MockRequest(
            host_url=API,
            method=request.method.lower(),
            path=url.path,
            args=MultiDict(parse_qsl(url.query, keep_blank_values=True)),
            headers=dict(request.headers),
            data=body,
            content_type=request.headers.get("Content-Type", "application/json"),
        )

    def get(self, request):
        return 200, copy.deepcopy(self.item)

    def patch(self, request):
        if self.refuse is not None:
            problem, self.refuse = self.refuse, None
            return 400, problem
        body = json.loads(request.body)
        if "assets" in body:
            body["assets"] = [{**a, "fileName": a.get("alias")} for a in body["assets"]]
        self.item.update(body)
        self.applied["patch"] = self.applied.get("patch", 0) + 1
        return 200, copy.deepcopy(self.item)

    def upload(self, request):
        content_type = request.headers["Content-Type"]
        assert content_type.startswith("multipart/form-data; boundary=")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
        )
        parts = list(message.iter_parts())
        assert [p.get_param("name", header="content-disposition") for p in parts] == ["file"]
        part = parts[0]
        self.uploads.append((part.get_filename(), part.get_content_type(), part.get_content()))
        return 200, {"Content-Type": "application/json"}, json.dumps("Images/Temp/abc.png")


def provider():
    context = ProviderContext(
        integration_id=2,
        credentials={
            "tenant_id": TENANT,
            "client_id": "cid",
            "client_secret": "cs",
            "app_key": "a",
        },
        config={},
        token_store=MemoryTokenStore(),
        rate_limit_enabled=False,
        retry=RetryPolicy(attempts=3, base=0, max_delay=0),
    )
    return registry.get("servicetitan")(context)


def update(changes: dict, kind: str = "material", item_id: str = f"material:{MATERIAL}"):
    payload = {"item_external_id": item_id, "kind": kind, "changes": changes}
    return provider().perform("pricebook.update", payload, idempotency_key="pb-1")


def image_payload(content: bytes = PNG) -> dict:
    return {
        "item_external_id": f"material:{MATERIAL}",
        "kind": "material",
        "file_name": "pipe.png",
        "content_type": "image/png",
        "content_base64": base64.b64encode(content).decode(),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def test_the_provider_declares_the_capability_and_actions():
    cls = registry.get("servicetitan")
    assert Capability.WRITE_PRICEBOOK in cls.capabilities
    assert {"pricebook.update", "pricebook.image"} <= set(cls.actions)


def test_an_update_sends_only_what_differs_and_is_applied_once(spec):
    fake = FakePricebook(spec)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        first = update({"price": "5.75", "description": "Schedule 40", "active": True})
        assert first == {
            "item": str(MATERIAL),
            "kind": "material",
            "changed": ["price"],
            "already_done": False,
        }
        patches = [c for c in mock.calls if c.request.method == "PATCH"]
        assert [json.loads(c.request.body) for c in patches] == [{"price": 5.75}]
        # Delivered again (a lost acknowledgement): read, nothing to do, no PATCH.
        again = update({"price": "5.75", "description": "Schedule 40", "active": True})
    assert again["already_done"] is True and again["changed"] == []
    assert fake.applied == {"patch": 1}
    assert fake.item["price"] == 5.75


@pytest.mark.parametrize(
    ("kind", "changes", "field_name"),
    [
        ("service", {"cost": "1.00"}, "cost"),  # ServiceUpdateRequest has no cost
        ("material", {"code": "X"}, "code"),  # not on the allow-list
        ("material", {"price": "-1"}, "price"),
        ("material", {"price": "abc"}, "price"),
        ("material", {"active": "yes"}, "active"),
        ("material", {"displayName": 5}, "displayName"),
    ],
)
def test_bad_changes_are_refused_by_field_before_any_call(kind, changes, field_name):
    with responses.RequestsMock() as mock:  # any call would fail: none is registered
        with pytest.raises(ProviderValidationError) as caught:
            update(changes, kind=kind, item_id="40001")
        assert not mock.calls
    assert list(caught.value.field_errors) == [field_name]


def test_an_item_of_another_kind_is_refused():
    with pytest.raises(ProviderValidationError) as caught:
        update({"price": "1"}, kind="service", item_id=f"material:{MATERIAL}")
    assert "item_external_id" in caught.value.field_errors


@pytest.mark.parametrize(
    ("errors", "title", "expected"),
    [
        (
            {"$.price": ["Too high."]},
            "One or more validation errors occurred.",
            {"price": ["Too high."]},
        ),
        (
            {"Price": ["Bad"], "items[0].price": ["Negative"]},
            "x",
            {"Price": ["Bad"], "items[0].price": ["Negative"]},
        ),
        ({"$": ["Malformed body."]}, "x", {"__all__": ["Malformed body."]}),
        ({"$.items[0].price": ["Negative"]}, "x", {"items[0].price": ["Negative"]}),
        ({"price": "Not a list."}, "x", {"price": ["Not a list."]}),
        ({}, "The SKU is locked by an import.", {"__all__": ["The SKU is locked by an import."]}),
    ],
)
def test_a_refusal_comes_back_as_field_errors(spec, errors, title, expected):
    fake = FakePricebook(spec)
    fake.refuse = {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": title,
        "status": 400,
        "traceId": "00-abc-def-00",
        "errors": errors,
        "data": {},
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        with pytest.raises(ProviderValidationError) as caught:
            update({"price": "9.99"})
    assert caught.value.field_errors == expected
    assert fake.applied == {}


def test_an_image_is_uploaded_and_attached_once(spec):
    fake = FakePricebook(spec)
    payload = image_payload()
    marker = writes_pricebook.image_marker(payload["sha256"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        first = provider().perform("pricebook.image", payload, idempotency_key="img-1")
        again = provider().perform("pricebook.image", payload, idempotency_key="img-1")
    assert first == {"item": str(MATERIAL), "url": "Images/Temp/abc.png", "already_done": False}
    assert again["already_done"] is True
    assert fake.uploads == [("pipe.png", "image/png", PNG)]
    assert fake.applied == {"patch": 1}
    # The item's earlier asset is kept (a PATCH replaces the list); ours carries the hash.
    assert [a["url"] for a in fake.item["assets"]] == ["x/1.png", "Images/Temp/abc.png"]
    assert fake.item["assets"][1]["alias"] == f"{marker}pipe.png"
    assert fake.item["assets"][1]["type"] == "Image"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "0" * 64}, "sha256"),
        ({"content_base64": "***"}, "base64"),
        ({"content_type": "application/pdf"}, "content_type"),
    ],
)
def test_a_damaged_image_payload_is_refused_before_any_call(change, message):
    payload = {**image_payload(), **change}
    with responses.RequestsMock() as mock:
        with pytest.raises(ProviderValidationError) as caught:
            provider().perform("pricebook.image", payload, idempotency_key="img-2")
        assert not mock.calls
    assert message in caught.value.field_errors["image"][0]
