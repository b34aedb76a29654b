"""The ServiceTitan sandbox's pricebook writes (PATCH materials/services/equipment, image
upload) over HTTP, and its token expiry and per-tenant rate limit.

PATCH exchanges, refusals included, are validated against tenant-pricebook-v2.yml (request and
response). The image endpoints are not in the 2022 spec, so their answers are checked by hand
and their refusals against ApiErrorResponse.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import MultiDict

from integrations.sandbox import accounts
from tests.integrations.provider_specs import load_st_spec
from tests.integrations.sandbox import configure, control, st_headers, st_token, start_sandbox
from tests.integrations.spec_query import assert_query_declared

TENANT = accounts.SERVICETITAN_TENANT.tenant_id
T2 = accounts.SERVICETITAN_SECONDARY_TENANT
ROOT = "/servicetitan"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 200

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


@pytest.fixture(scope="module")
def spec() -> tuple[OpenAPI, dict]:
    return load_st_spec("tenant-pricebook-v2.yml")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("st-pricebook"), records=30)
    yield server
    server.stop()


@pytest.fixture
def headers(sandbox) -> dict[str, str]:
    control(sandbox.url, "POST", "reset")
    return st_headers(st_token(sandbox.url))


def url(sandbox, tail: str, tenant: str = TENANT) -> str:
    return f"{sandbox.url}{ROOT}/pricebook/v2/tenant/{tenant}/{tail}"


def check(spec, response: requests.Response) -> None:
    openapi, _ = spec
    prepared = response.request
    parts = urlsplit(prepared.url)
    body = prepared.body
    request = MockRequest(
        host_url="https://api.servicetitan.io",
        method=prepared.method.lower(),
        path=parts.path[len(ROOT) :],
        args=MultiDict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=dict(prepared.headers),
        data=body.encode() if isinstance(body, str) else body,
        content_type=prepared.headers.get("Content-Type", "application/json"),
    )
    openapi.validate_request(request)
    assert_query_declared(openapi, request)
    openapi.validate_response(
        request,
        MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.headers.get("Content-Type", ""),
        ),
    )


def first(sandbox, headers, resource: str) -> dict:
    response = requests.get(
        url(sandbox, resource), params={"pageSize": 1}, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["data"][0]


def applied(sandbox) -> dict:
    return control(sandbox.url, "GET", "stats")["servicetitan"].get("writes_applied", {})


@pytest.mark.parametrize(
    ("resource", "body"),
    [
        ("materials", {"price": 12.5, "cost": 3.25, "description": "New text"}),
        ("services", {"price": 99, "memberPrice": 89.5, "displayName": "Tune-up", "active": False}),
        ("equipment", {"addOnPrice": 10, "unitOfMeasure": "Each"}),
    ],
)
def test_patch_changes_the_item_and_answers_it(spec, sandbox, headers, resource, body):
    item = first(sandbox, headers, resource)
    response = requests.patch(
        url(sandbox, f"{resource}/{item['id']}"), json=body, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    check(spec, response)
    answer = response.json()
    assert {k: answer[k] for k in body} == body
    again = requests.get(
        url(sandbox, f"{resource}/{item['id']}"),
        params={"active": "Any"},
        headers=headers,
        timeout=10,
    )
    assert {k: again.json()[k] for k in body} == body
    assert applied(sandbox)[f"pricebook/{resource}/{item['id']}"] == 1


@pytest.mark.parametrize(
    ("resource", "body", "field_name", "spec_valid"),
    [
        ("materials", {"price": -1}, "price", True),
        ("materials", {"displayName": "x" * 256}, "displayName", True),
        (
            "materials",
            {"assets": [{"type": "Image", "url": "Images/no.png"}]},
            "assets[0].url",
            True,
        ),
        # Not valid against the schema (a string price; no cost on ServiceUpdateRequest).
        ("materials", {"cost": "cheap"}, "cost", False),
        ("services", {"cost": 1}, "cost", False),
    ],
)
def test_a_refused_patch_is_a_problem_with_field_errors(
    spec, sandbox, headers, resource, body, field_name, spec_valid
):
    item = first(sandbox, headers, resource)
    response = requests.patch(
        url(sandbox, f"{resource}/{item['id']}"), json=body, headers=headers, timeout=10
    )
    assert response.status_code == 400
    problem = response.json()
    assert set(problem["errors"]) == {field_name}
    assert problem["status"] == 400
    _, raw = spec
    OAS30Validator(raw["components"]["schemas"]["ApiErrorResponse"]).validate(problem)
    if spec_valid:  # a value the schema allows, refused by a rule: the 400 is documented
        check(spec, response)
    assert not any(k.startswith("pricebook/") for k in applied(sandbox))


def test_unknown_item_is_404(spec, sandbox, headers):
    response = requests.patch(
        url(sandbox, "materials/999999999"), json={"price": 1}, headers=headers, timeout=10
    )
    assert response.status_code == 404
    check(spec, response)


def test_image_upload_then_attach(spec, sandbox, headers):
    item = first(sandbox, headers, "materials")
    upload = requests.post(
        url(sandbox, "images"),
        files={"file": ("pipe.png", PNG, "image/png")},
        headers=headers,
        timeout=10,
    )
    assert upload.status_code == 200, upload.text
    path = upload.json()
    assert isinstance(path, str) and path.endswith(".png")
    digest = hashlib.sha256(PNG).hexdigest()
    assert applied(sandbox)[f"pricebook-images/{digest}"] == 1
    stored = requests.get(
        url(sandbox, "images"), params={"path": path}, headers=headers, timeout=10
    )
    assert stored.content == PNG and stored.headers["Content-Type"] == "image/png"
    body = {"assets": [{"type": "Image", "url": path, "alias": "pipe.png"}]}
    response = requests.patch(
        url(sandbox, f"materials/{item['id']}"), json=body, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    check(spec, response)
    assert response.json()["assets"] == [
        {"alias": "pipe.png", "fileName": "pipe.png", "type": "Image", "url": path}
    ]


@pytest.mark.parametrize(
    ("files", "field_name"),
    [
        ({"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}, "file"),
        ({"other": ("a.png", PNG, "image/png")}, "file"),
    ],
)
def test_a_refused_upload_names_the_file(spec, sandbox, headers, files, field_name):
    response = requests.post(url(sandbox, "images"), files=files, headers=headers, timeout=10)
    assert response.status_code == 400
    _, raw = spec
    OAS30Validator(raw["components"]["schemas"]["ApiErrorResponse"]).validate(response.json())
    assert list(response.json()["errors"]) == [field_name]


# --- auth expiry and rate limit ------------------------------------------------------------------


def test_the_token_says_when_it_expires_and_is_refused_after(sandbox, headers):
    configure(sandbox.url, servicetitan={"access_token_ttl": 2})
    response = requests.post(
        f"{sandbox.url}/servicetitan-auth/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": accounts.SERVICETITAN_TENANT.client_id,
            "client_secret": accounts.SERVICETITAN_TENANT.client_secret,
        },
        timeout=10,
    )
    assert response.json()["expires_in"] == 2
    fresh = st_headers(response.json()["access_token"])
    assert requests.get(url(sandbox, "materials"), headers=fresh, timeout=10).status_code == 200
    time.sleep(2.1)
    expired = requests.get(url(sandbox, "materials"), headers=fresh, timeout=10)
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == "Bearer"


def test_the_rate_limit_is_60_a_second_per_tenant(sandbox, headers):
    """The default limit (60 requests in a sliding second per app and tenant): requests of one
    tenant are refused with 429 and Retry-After once 60 were served within a second, while the
    other tenant is still served."""
    other = st_headers(st_token(sandbox.url, T2))
    session = requests.Session()
    served, limited = [], None
    for _ in range(300):
        response = session.get(url(sandbox, "materials"), headers=headers, timeout=5)
        if response.status_code == 429:
            limited = response
            break
        assert response.status_code == 200, response.text
        served.append(time.monotonic())
    assert limited is not None
    assert len(served) >= 60  # never refused before 60 were served
    # …and refused only when the last 60 served fall within one second.
    assert served[-1] - served[-60] < 1.0
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["status"] == 429
    # Per tenant, not global: the other tenant is not limited by the first one's burst.
    answer = session.get(url(sandbox, "materials", T2.tenant_id), headers=other, timeout=5)
    assert answer.status_code == 200
