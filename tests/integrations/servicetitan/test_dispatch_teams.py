"""ServiceTitan dispatch teams (issue #5). SPEC GAP: the 2022 tenant-dispatch-v2.yml has no
teams endpoint; the provider and the sandbox follow ServiceTitan's documented
`GET dispatch/v2/tenant/{t}/teams` and `…/teams/{id}` (Team_GetList, Team_Get), whose
`Dispatch.V2.TeamResponse` is written down in the sandbox's DISPATCH_GAP_SCHEMAS: every
request and response here is checked against that documented shape instead of a spec file.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from integrations import registry
from integrations.base import ExternalReference
from integrations.providers.servicetitan import mapping_reference as refs
from integrations.sandbox import accounts
from integrations.sandbox.servicetitan_resources import (
    DISPATCH_GAP_SCHEMAS,
    RESOURCES,
    UNSPECIFIED_RESOURCES,
)
from tests.integrations.test_provider_entities import (
    ST_API,
    ST_BASE,
    _control,
    _record_exchanges,
    live,  # noqa: F401 - the live sandbox fixture
    query,
    st,
    st_page,
    st_token,
)

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")

SCHEMA = "Dispatch.V2.TeamResponse"
# Team_GetList's documented query parameters.
LIST_PARAMS = {
    "page",
    "pageSize",
    "includeTotal",
    "includeInactive",
    "createdOnOrAfter",
    "createdBefore",
    "modifiedOnOrAfter",
    "modifiedBefore",
    "sort",
}
TEAM = {
    "id": 9455,
    "active": False,
    "name": "Night Crew (disbanded)",
    "createdBy": 5017,
    "createdOn": "2022-04-11T16:02:10.1234567Z",
    "modifiedOn": "2026-02-03T09:15:00.25Z",
}
PAGE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["page", "pageSize", "hasMore", "data"],
    "properties": {
        "page": {"type": "integer"},
        "pageSize": {"type": "integer"},
        "hasMore": {"type": "boolean"},
        "totalCount": {"type": "integer", "nullable": True},
        "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{SCHEMA}"}},
    },
}


def _validator(schema: dict) -> OAS30Validator:
    root = {**schema, "components": {"schemas": DISPATCH_GAP_SCHEMAS}}
    return OAS30Validator(root, format_checker=oas30_format_checker)


def _check(validator: OAS30Validator, body: dict) -> None:
    errors = list(validator.iter_errors(body))
    assert not errors, errors[0].message


def test_the_fixture_is_a_complete_documented_record():
    schema = DISPATCH_GAP_SCHEMAS[SCHEMA]
    assert set(schema["properties"]) == set(TEAM)
    _check(_validator({"$ref": f"#/components/schemas/{SCHEMA}"}), TEAM)
    # The sandbox serves it as a gap resource, not as one of the spec file's.
    assert ("dispatch", "teams") in UNSPECIFIED_RESOURCES
    assert RESOURCES[("dispatch", "teams")].schema == SCHEMA


def test_team_maps_to_a_team_reference():
    provider = st()
    record = provider.map_record("teams", copy.deepcopy(TEAM))
    assert isinstance(record, ExternalReference) and record.raw == TEAM
    assert record.kind == refs.REFERENCE_KINDS["teams"] == "team"
    assert record.external_id == "team:9455" == provider.record_id("teams", TEAM)
    assert (record.name, record.code, record.parent_external_id) == (
        "Night Crew (disbanded)",
        "",
        "",
    )
    assert record.is_active is False and record.deleted is True
    assert record.remote_updated_at == datetime(2026, 2, 3, 9, 15, 0, 250000, tzinfo=UTC)
    assert provider.sweep_scope("teams", ExternalReference) == {"kind": "team"}
    assert provider.record_types("teams") == (ExternalReference,)
    entities = registry.get("servicetitan").entities
    assert entities.index("zones") < entities.index("teams") < entities.index("staff")


@responses.activate
def test_incremental_and_full_params():
    st_token()
    url = ST_BASE.format(module="dispatch", path="teams")
    responses.get(url, json=st_page([TEAM]))
    since = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert [r.external_id for r in st().iter_records("teams", updated_since=since)] == ["team:9455"]
    list(st().iter_records("teams"))
    incremental, full = [c for c in responses.calls if c.request.url.startswith(ST_API)]
    paging = {"page": ["1"], "pageSize": ["5000"]}
    # includeInactive (not `active`: Team_GetList has none) so deactivated teams come through.
    assert query(incremental) == {
        **paging,
        "includeInactive": ["true"],
        "modifiedOnOrAfter": ["2026-03-01T10:30:00+00:00"],
    }
    assert query(full) == {**paging, "includeInactive": ["true"]}
    for call in (incremental, full):
        assert set(query(call)) <= LIST_PARAMS


@responses.activate
def test_fetch_record_needs_the_team_prefix():
    st_token()
    responses.get(ST_BASE.format(module="dispatch", path="teams/9455"), json=TEAM)
    not_found = {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.4",
        "title": "Team not found",
        "status": 404,
        "traceId": "00-1-2-00",
        "errors": {},
        "data": {},
    }
    responses.get(ST_BASE.format(module="dispatch", path="teams/1"), status=404, json=not_found)
    provider = st()
    assert provider.fetch_record("teams", "team:9455") == TEAM
    assert provider.fetch_record("teams", "team:1") is None
    with pytest.raises(ValueError, match="team:<id>"):
        provider.fetch_record("teams", "9455")
    with pytest.raises(ValueError, match="team:<id>"):
        provider.fetch_record("teams", "zone:9455")
    assert len([c for c in responses.calls if c.request.url.startswith(ST_API)]) == 2


def _sandbox_get(server, tail: str, headers: dict, **params) -> requests.Response:
    tenant = accounts.SERVICETITAN_TENANT.tenant_id
    url = f"{server.url}/servicetitan/dispatch/v2/tenant/{tenant}/{tail}"
    return requests.get(url, params=params, headers=headers, timeout=10)


def test_teams_from_the_live_sandbox(live):  # noqa: F811
    server, seeded = live
    count = seeded["servicetitan"]["teams"]
    _control(server, "POST", "reset")
    tenant = accounts.SERVICETITAN_TENANT
    provider = st(
        base_url_override=server.url,
        credentials=accounts.servicetitan_credentials(),
        config={"page_size": 2},
    )
    exchanges = _record_exchanges(provider)
    read = list(provider.iter_records("teams"))
    assert len(read) == len({r.external_id for r in read}) == count > 0
    assert {r.kind for r in read} == {"team"}
    assert any(r.deleted and not r.is_active for r in read)  # includeInactive=true
    assert any(r.is_active for r in read)

    # Incremental reads are inclusive (modifiedOnOrAfter).
    stamps = sorted({r.remote_updated_at for r in read})
    since = stamps[len(stamps) // 2]
    changed = list(provider.iter_records("teams", updated_since=since))
    assert {r.external_id for r in changed} == {
        r.external_id for r in read if r.remote_updated_at >= since
    }
    for record in (read[0], read[-1]):
        assert provider.fetch_record("teams", record.external_id) == record.raw
    assert provider.fetch_record("teams", "team:1") is None
    assert provider.estimated_total("teams") == count

    pages, one = _validator(PAGE_SCHEMA), _validator({"$ref": f"#/components/schemas/{SCHEMA}"})
    api = [r for r in exchanges if urlsplit(r.url).path.startswith("/servicetitan/")]
    assert {r.status_code for r in api} == {200, 404}
    for response in api:
        path = urlsplit(response.url).path
        assert "/dispatch/v2/tenant/" in path and "/teams" in path
        assert set(parse_qs(urlsplit(response.url).query)) <= LIST_PARAMS
        if response.status_code == 404:
            assert response.json()["title"] == "Team not found"
        elif path.endswith("/teams"):
            _check(pages, response.json())
        else:
            _check(one, response.json())

    # The sandbox hides inactive teams unless asked, and refuses a non-boolean flag.
    token = requests.post(
        f"{server.url}/servicetitan-auth/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
        timeout=10,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "ST-App-Key": accounts.SERVICETITAN_APP_KEY}
    default = _sandbox_get(server, "teams", headers, pageSize="50")
    assert default.status_code == 200
    _check(pages, default.json())
    assert {t["id"] for t in default.json()["data"]} == {
        int(r.external_id.removeprefix("team:")) for r in read if r.is_active
    }
    refused = _sandbox_get(server, "teams", headers, includeInactive="maybe")
    assert refused.status_code == 400 and "includeInactive" in refused.json()["errors"]
