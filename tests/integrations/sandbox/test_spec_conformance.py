"""Every emulated endpoint's responses validated against the providers' official OpenAPI specs.

Requests go to the sandbox over real HTTP; each request/response pair is then re-addressed to
the spec's server (``https://api.servicem8.com/api_1.0``, ``https://api.servicetitan.io``) and
checked with openapi-core. Status codes a spec does not document (ServiceTitan documents no
401 or 429) are asserted to be undocumented and their bodies are validated against the
spec's ``ApiErrorResponse`` schema instead, which is the shape the sandbox promises for them.

The specs live outside the repository (``<repo>/../shared/provider-specs``): missing specs
skip these tests locally and fail them in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import (
    OAS30Validator,
    OAS31Validator,
    oas30_format_checker,
    oas31_format_checker,
)
from werkzeug.datastructures import MultiDict

from integrations.sandbox import accounts
from integrations.sandbox.servicetitan_resources import (
    GAP_SCHEMAS,
    RESOURCES,
    UNSPECIFIED_RESOURCES,
)
from tests.integrations.sandbox import (
    SM8_HEADERS,
    configure,
    control,
    sm8_oauth_tokens,
    sm8_url,
    st_headers,
    st_token,
    st_url,
    start_sandbox,
)
from tests.integrations.spec_query import assert_query_declared

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "provider-specs"
SM8_SPEC = SPECS / "servicem8" / "servicem8-api_1.0.openapi.json"
ST_SPEC = SPECS / "servicetitan" / "tenant-crm-v2.yml"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# openapi-core does not implement the oauth2 security scheme and warns about it; the bearer
# requests are still matched against the right operation.
pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


@pytest.fixture(scope="module")
def specs(request: pytest.FixtureRequest) -> tuple[OpenAPI, OpenAPI, dict]:
    if not SM8_SPEC.is_file() or not ST_SPEC.is_file():
        message = f"provider specs not found under {SPECS}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    # Validating the 1.8 MB ServiceM8 spec document takes ~5 s, so a successful validation is
    # remembered in the pytest cache by file hash: it reruns whenever the file changes (and
    # always in a fresh CI checkout). Responses are validated against the spec on every run.
    digest = hashlib.sha256(SM8_SPEC.read_bytes()).hexdigest()
    cache_key = "sandbox/servicem8-spec-validated"
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    already_valid = cache is not None and cache.get(cache_key, None) == digest
    sm8 = OpenAPI.from_file_path(
        str(SM8_SPEC), config=Config(spec_validator_cls=None) if already_valid else None
    )
    if cache is not None:
        cache.set(cache_key, digest)
    # The ServiceTitan CRM spec fails openapi-spec-validator (INDEX.md: the ContactType enum
    # lists "Phone" twice), so it is loaded without spec validation; customers don't use it.
    st = OpenAPI.from_file_path(str(ST_SPEC), config=Config(spec_validator_cls=None))
    st_raw = yaml.safe_load(ST_SPEC.read_text())
    return sm8, st, st_raw


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("conformance"), records=25)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_runtime(sandbox):
    control(sandbox.url, "POST", "reset")


def _as_spec(
    response: requests.Response, host: str, strip: str
) -> tuple[MockRequest, MockResponse]:
    """The sandbox exchange re-addressed to the real API host (path prefix ``strip`` removed)."""
    prepared = response.request
    url = urlsplit(prepared.url)
    assert url.path.startswith(strip)
    request = MockRequest(
        host_url=host,
        method=prepared.method.lower(),
        path=url.path[len(strip) :],
        args=MultiDict(parse_qsl(url.query, keep_blank_values=True)),
        headers=dict(prepared.headers),
    )
    spec_response = MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("Content-Type", ""),
    )
    return request, spec_response


def check_sm8(openapi: OpenAPI, response: requests.Response, *, request_valid: bool = True):
    request, spec_response = _as_spec(response, "https://api.servicem8.com", "/servicem8")
    if request_valid:
        openapi.validate_request(request)
    openapi.validate_response(request, spec_response)


def check_st(openapi: OpenAPI, response: requests.Response, *, request_valid: bool = True):
    request, spec_response = _as_spec(response, "https://api.servicetitan.io", "/servicetitan")
    if request_valid:
        openapi.validate_request(request)
        assert_query_declared(openapi, request)
    openapi.validate_response(request, spec_response)


def check_st_undocumented(openapi: OpenAPI, raw: dict, response: requests.Response) -> None:
    """The status is not in the spec: prove that, then validate the body as ApiErrorResponse."""
    request, spec_response = _as_spec(response, "https://api.servicetitan.io", "/servicetitan")
    with pytest.raises(ResponseNotFound):
        openapi.validate_response(request, spec_response)
    schema = raw["components"]["schemas"]["ApiErrorResponse"]
    OAS30Validator(schema).validate(response.json())
    assert response.json()["status"] == response.status_code


def _sm8_get(root: str, path: str = "company.json", headers=SM8_HEADERS, **params):
    return requests.get(sm8_url(root, path), params=params, headers=headers, timeout=10)


# --- ServiceM8 -----------------------------------------------------------------------------------


def test_sm8_company_list(specs, sandbox):
    sm8, _, _ = specs
    control(
        sandbox.url,
        "DELETE",
        "records/servicem8/company/" + _sm8_get(sandbox.url).json()[0]["uuid"],
    )
    full = _sm8_get(sandbox.url)
    assert full.status_code == 200 and len(full.json()) == 25
    check_sm8(sm8, full)
    configure(sandbox.url, servicem8={"page_size": 10})
    paged = _sm8_get(sandbox.url, cursor="-1", **{"$filter": "active eq 1"})
    assert paged.status_code == 200 and "x-next-cursor" in paged.headers
    check_sm8(sm8, paged)


def test_sm8_company_get_and_404(specs, sandbox):
    sm8, _, _ = specs
    uuid = _sm8_get(sandbox.url).json()[0]["uuid"]
    found = _sm8_get(sandbox.url, f"company/{uuid}.json")
    assert found.status_code == 200
    check_sm8(sm8, found)
    missing = _sm8_get(sandbox.url, "company/00000000-0000-4000-8000-000000000000.json")
    assert missing.status_code == 404
    check_sm8(sm8, missing)


def test_sm8_vendor(specs, sandbox):
    sm8, _, _ = specs
    vendor = _sm8_get(sandbox.url, "vendor.json")
    assert vendor.status_code == 200
    check_sm8(sm8, vendor)


@pytest.mark.parametrize("path", ["company.json", "vendor.json", "company/{uuid}.json"])
def test_sm8_401(specs, sandbox, path):
    sm8, _, _ = specs
    path = path.format(uuid="00000000-0000-4000-8000-000000000000")
    response = _sm8_get(sandbox.url, path, headers={"X-Api-Key": "wrong"})
    assert response.status_code == 401
    check_sm8(sm8, response)


def test_sm8_403(specs, sandbox):
    sm8, _, _ = specs
    token = sm8_oauth_tokens(sandbox.url, "vendor")["access_token"]
    for path in ("company.json", f"company/{_sm8_get(sandbox.url).json()[0]['uuid']}.json"):
        response = _sm8_get(sandbox.url, path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403
        check_sm8(sm8, response)


def test_sm8_400(specs, sandbox):
    sm8, _, _ = specs
    bad_filter = _sm8_get(sandbox.url, **{"$filter": "edit_date ge '2024-01-01 00:00:00'"})
    assert bad_filter.status_code == 400
    check_sm8(sm8, bad_filter)
    bad_cursor = _sm8_get(sandbox.url, cursor="nope")
    assert bad_cursor.status_code == 400
    check_sm8(sm8, bad_cursor)
    bad_uuid = _sm8_get(sandbox.url, "company/not-a-uuid.json")
    assert bad_uuid.status_code == 400
    # The request itself violates the spec (format uuid), so only the response is checked.
    check_sm8(sm8, bad_uuid, request_valid=False)


@pytest.mark.parametrize("limit", ["rate_limit_per_minute", "rate_limit_per_day"])
def test_sm8_429(specs, sandbox, limit):
    sm8, _, _ = specs
    configure(sandbox.url, servicem8={limit: 1})
    assert _sm8_get(sandbox.url, "vendor.json").status_code == 200
    for path in ("vendor.json", "company.json"):
        response = _sm8_get(sandbox.url, path)
        assert response.status_code == 429
        check_sm8(sm8, response)


def test_sm8_injected_500(specs, sandbox):
    sm8, _, _ = specs
    control(sandbox.url, "POST", "faults", {"queue": [{"status": 500}]})
    response = _sm8_get(sandbox.url)
    assert response.status_code == 500
    check_sm8(sm8, response)


# --- ServiceTitan --------------------------------------------------------------------------------


def test_st_customer_list(specs, sandbox):
    _, st, _ = specs
    headers = st_headers(st_token(sandbox.url))
    first = requests.get(st_url(sandbox.url), headers=headers, timeout=5).json()["data"][0]
    control(sandbox.url, "DELETE", f"records/servicetitan/customers/{first['id']}")
    for params in (
        {"active": "Any", "includeTotal": "true", "pageSize": "50"},
        {"page": "2", "pageSize": "10"},
        {"active": "False", "modifiedOnOrAfter": "2020-01-01T00:00:00Z"},
        {"ids": str(first["id"]), "active": "Any"},
    ):
        response = requests.get(st_url(sandbox.url), params=params, headers=headers, timeout=5)
        assert response.status_code == 200
        check_st(st, response)
    assert response.json()["data"][0]["active"] is False


def test_st_customer_get_and_404(specs, sandbox):
    _, st, _ = specs
    headers = st_headers(st_token(sandbox.url))
    customer_id = requests.get(st_url(sandbox.url), headers=headers, timeout=5).json()["data"][0][
        "id"
    ]
    found = requests.get(
        st_url(sandbox.url, f"customers/{customer_id}"), headers=headers, timeout=5
    )
    assert found.status_code == 200
    check_st(st, found)
    missing = requests.get(st_url(sandbox.url, "customers/1"), headers=headers, timeout=5)
    assert missing.status_code == 404
    check_st(st, missing)


def test_st_400(specs, sandbox):
    _, st, _ = specs
    headers = st_headers(st_token(sandbox.url))
    for params in ({"pageSize": "0"}, {"pageSize": "5001"}, {"modifiedOnOrAfter": "soon"}):
        response = requests.get(st_url(sandbox.url), params=params, headers=headers, timeout=5)
        assert response.status_code == 400
        # pageSize 0/5001 are valid int32s for the spec, so the request validates; a bad
        # date-time does not, so for it only the response is checked.
        check_st(st, response, request_valid="modifiedOnOrAfter" not in params)


def test_st_401_and_429_use_the_error_schema(specs, sandbox):
    _, st, raw = specs
    headers = st_headers(st_token(sandbox.url))
    for bad in (
        {"Authorization": headers["Authorization"]},
        {**headers, "Authorization": "Bearer x"},
    ):
        for tail in ("customers", "customers/1"):
            response = requests.get(st_url(sandbox.url, tail), headers=bad, timeout=5)
            assert response.status_code == 401
            check_st_undocumented(st, raw, response)
    configure(sandbox.url, servicetitan={"rate_limit_per_second": 1})
    session = requests.Session()
    statuses = [session.get(st_url(sandbox.url), headers=headers, timeout=5) for _ in range(3)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["Retry-After"]) >= 1
    check_st_undocumented(st, raw, limited[0])


def test_every_sm8_list_status_we_emit_is_documented(specs):
    """Guards the premise above: the ServiceM8 spec documents 400/401/403/429/500 on lists."""
    spec = json.loads(SM8_SPEC.read_text())
    for path in ("/company.json", "/vendor.json"):
        assert {"200", "400", "401", "403", "429", "500"} <= set(
            spec["paths"][path]["get"]["responses"]
        )
    assert "404" in spec["paths"]["/company/{uuid}.json"]["get"]["responses"]


# --- the seeded entities -------------------------------------------------------------------------

# URL module → spec file (``sales`` lives in the salestech spec).
ST_MODULE_SPECS = {
    "crm": "tenant-crm-v2.yml",
    "jpm": "tenant-jpm-v2.yml",
    "sales": "tenant-salestech-v2.yml",
    "settings": "tenant-settings-v2.yml",
    "pricebook": "tenant-pricebook-v2.yml",
    "dispatch": "tenant-dispatch-v2.yml",
    "accounting": "tenant-accounting-v2.yml",
}
SM8_ENTITY_OBJECTS = {
    "companycontact": "CompanyContact",
    "staff": "Staff",
    "job": "Job",
    "jobmaterial": "JobMaterial",
    "jobactivity": "JobActivity",
    "material": "Material",
    "category": "Category",
    "taxrate": "TaxRate",
}
# Every resource is routed (the bulk contact lists by their own rules).
ROUTED_ST_RESOURCES = [key for key in RESOURCES if key not in UNSPECIFIED_RESOURCES]
# Resources with an official spec (inventory and dispatch teams have none: tests/integrations/
# servicetitan/test_pricebook_accounting.py and test_dispatch_teams.py check them against the
# documented GAP_SCHEMAS, as does test_every_seeded_record_matches_its_schema below).
SPECIFIED_ST_RESOURCES = [key for key in RESOURCES if key not in UNSPECIFIED_RESOURCES]


@pytest.fixture(scope="module")
def st_specs(specs) -> dict[str, tuple[OpenAPI, dict]]:
    """Every ServiceTitan module spec (loaded without spec validation, like the CRM one)."""
    loaded = {}
    for module, name in ST_MODULE_SPECS.items():
        path = SPECS / "servicetitan" / name
        raw = yaml.safe_load(path.read_text())
        loaded[module] = (OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None)), raw)
    return loaded


@pytest.mark.parametrize("obj", sorted(SM8_ENTITY_OBJECTS))
def test_sm8_entity_lists_and_gets(specs, sandbox, obj):
    sm8, _, _ = specs
    full = _sm8_get(sandbox.url, f"{obj}.json")
    assert full.status_code == 200 and full.json()
    check_sm8(sm8, full)
    configure(sandbox.url, servicem8={"page_size": 5})
    paged = _sm8_get(sandbox.url, f"{obj}.json", cursor="-1", **{"$filter": "active eq 1"})
    assert paged.status_code == 200
    check_sm8(sm8, paged)
    found = _sm8_get(sandbox.url, f"{obj}/{full.json()[0]['uuid']}.json")
    assert found.status_code == 200
    check_sm8(sm8, found)
    missing = _sm8_get(sandbox.url, f"{obj}/00000000-0000-4000-8000-000000000000.json")
    assert missing.status_code == 404
    check_sm8(sm8, missing)


def _st_get(root: str, module: str, tail: str, headers: dict, **params) -> requests.Response:
    url = f"{root}/servicetitan/{module}/v2/tenant/{accounts.SERVICETITAN_TENANT.tenant_id}/{tail}"
    return requests.get(url, params=params, headers=headers, timeout=10)


@pytest.mark.parametrize(("module", "path"), ROUTED_ST_RESOURCES)
def test_st_entity_lists_and_gets(st_specs, sandbox, module, path):
    openapi, raw = st_specs[module]
    spec = RESOURCES[(module, path)]
    headers = st_headers(st_token(sandbox.url))
    variants: list[dict[str, str]] = [{}, {"page": "2", "pageSize": "3", "includeTotal": "true"}]
    if "active" in spec.params:
        variants.append({"active": "Any", "pageSize": "200"})
    if "modifiedOnOrAfter" in spec.date_filters:
        variants.append({"modifiedOnOrAfter": "2020-01-01T00:00:00Z"})
    if spec.requires_one_of:
        # The bulk contact lists refuse a request without a modified filter [spec].
        refused = _st_get(sandbox.url, module, path, headers)
        assert refused.status_code == 400
        assert set(refused.json()["errors"]) == set(spec.requires_one_of)
        check_st(openapi, refused)
        since = {"modifiedOnOrAfter": "2000-01-01T00:00:00Z"}
        variants = [{**since, **v} for v in variants]
        variants.append({"modifiedBefore": "2100-01-01T00:00:00Z"})
    first = None
    for params in variants:
        response = _st_get(sandbox.url, module, path, headers, **params)
        assert response.status_code == 200, response.text
        check_st(openapi, response)
        first = first or response.json()["data"][0]
    for name, (_, kind) in spec.equal_filters.items():
        field = name if name in first else {"number": "jobNumber", "soldById": "soldBy"}.get(name)
        value = first.get(field) if field else None
        if kind is int and isinstance(value, int):
            response = _st_get(sandbox.url, module, path, headers, **{name: str(value)})
            assert response.status_code == 200
            check_st(openapi, response)
    for name, column in spec.list_filters.items():
        value = first[column.removeprefix("data.")]
        response = _st_get(sandbox.url, module, path, headers, **{name: f"{value},1"})
        assert response.status_code == 200
        check_st(openapi, response)
        assert {r[column.removeprefix("data.")] for r in response.json()["data"]} == {value}
    found = _st_get(sandbox.url, module, f"{path}/{first['id']}", headers)
    if not spec.has_get:
        # The spec has no `GET …/{id}` for this resource (invoices and payments have only a
        # PATCH there): no such route.
        assert "get" not in raw["paths"].get(f"/{module}/v2/tenant/{{tenant}}/{path}/{{id}}", {})
        assert found.status_code == 404
        return
    assert found.status_code == 200
    check_st(openapi, found)
    missing = _st_get(sandbox.url, module, f"{path}/1", headers)
    assert missing.status_code == 404
    get_responses = raw["paths"][f"/{module}/v2/tenant/{{tenant}}/{path}/{{id}}"]["get"]
    if "404" in get_responses["responses"]:
        check_st(openapi, missing)
    else:
        # Estimates_Get documents no 404: the same ApiErrorResponse as for 401/429.
        check_st_undocumented(openapi, raw, missing)
    refused = sorted(spec.unemulated_filters)
    if refused:
        response = _st_get(sandbox.url, module, path, headers, **{refused[0]: "1"})
        assert response.status_code == 400
        check_st(openapi, response, request_valid=False)


@pytest.mark.parametrize(("module", "path"), SPECIFIED_ST_RESOURCES)
def test_st_resource_table_matches_the_spec(st_specs, module, path):
    """Each ResourceSpec's parameters, schema and column fields are the spec's."""
    _, raw = st_specs[module]
    spec = RESOURCES[(module, path)]
    operation = raw["paths"][f"/{module}/v2/tenant/{{tenant}}/{path}"]["get"]
    declared = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert spec.params == declared
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    page_schema = raw["components"]["schemas"][page.rsplit("/", 1)[1]]
    item = page_schema["properties"]["data"]["items"]["$ref"].rsplit("/", 1)[1]
    assert item == spec.schema
    properties = raw["components"]["schemas"][spec.schema]["properties"]
    assert ("active" in properties) == spec.active_field
    assert ("modifiedOn" in properties) == spec.modified_field
    defaults = spec.defaults()
    assert set(defaults) <= set(properties)
    required = set(raw["components"]["schemas"][spec.schema].get("required", []))
    assert required - {"id", "active", "modifiedOn"} <= set(defaults)


def test_every_seeded_record_matches_its_schema(specs, st_specs, tmp_path):
    """All seeded records of every object, rendered as the API would, against the spec."""
    from integrations.sandbox.app import SandboxApp
    from integrations.sandbox.seed import seed
    from integrations.sandbox.store import Collection, Store

    sm8_raw = json.loads(SM8_SPEC.read_text())
    db = tmp_path / "all.sqlite3"
    seed(db, records=60)
    store = Store(db)
    try:
        app = SandboxApp(store)
        sm8_account, tenant = (
            accounts.SERVICEM8_ACCOUNT.uuid,
            accounts.SERVICETITAN_TENANT.tenant_id,
        )
        checks = [
            ("servicem8", sm8_account, obj, sm8_raw, schema)
            for obj, schema in {**SM8_ENTITY_OBJECTS, "company": "Company"}.items()
        ]
        checks += [
            ("servicetitan", tenant, spec.object, st_specs[spec.module][1], spec.schema)
            for key, spec in RESOURCES.items()
            if key not in UNSPECIFIED_RESOURCES
        ]
        # SPEC GAP resources: against their documented schemas.
        checks += [
            (
                "servicetitan",
                tenant,
                spec.object,
                {"components": {"schemas": GAP_SCHEMAS}},
                spec.schema,
            )
            for key, spec in RESOURCES.items()
            if key in UNSPECIFIED_RESOURCES
        ]
        for provider, account, obj, raw, schema in checks:
            root = {"$ref": f"#/components/schemas/{schema}", "components": raw["components"]}
            if provider == "servicem8":
                validator = OAS31Validator(root, format_checker=oas31_format_checker)
            else:
                validator = OAS30Validator(root, format_checker=oas30_format_checker)
            collection = Collection(provider, account, obj)
            records = list(store.iter_keyset(collection))
            assert records, obj
            api = app.providers[provider]
            for record in records:
                rendered = json.loads(api.render_record(collection, record))
                errors = list(validator.iter_errors(rendered))
                assert not errors, (obj, rendered, errors[0].message)
    finally:
        store.close()
