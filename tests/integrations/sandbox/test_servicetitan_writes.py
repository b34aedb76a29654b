"""The ServiceTitan sandbox's writes (estimate sell/dismiss, item delete, job notes) over HTTP.

Every exchange is validated against the official specs (tenant-salestech-v2.yml for estimates,
tenant-jpm-v2.yml for job notes), request bodies included; statuses the spec does not document
(404 on the estimate operations) are proved undocumented and their bodies validated against
ApiErrorResponse, as in test_spec_conformance.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import MultiDict

from integrations.sandbox import accounts
from tests.integrations.provider_specs import load_st_specs
from tests.integrations.sandbox import control, st_headers, st_token, start_sandbox
from tests.integrations.spec_query import assert_query_declared

TENANT = accounts.SERVICETITAN_TENANT.tenant_id
ROOT = "/servicetitan"
ACTIVE_TECH = 7001  # the seeded technicians are 7001–7018; 7012 has left
INACTIVE_TECH = 7012

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


@pytest.fixture(scope="module")
def specs() -> dict[str, tuple[OpenAPI, dict]]:
    return load_st_specs({"sales": "tenant-salestech-v2.yml", "jpm": "tenant-jpm-v2.yml"})


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("st-writes"), records=150)
    yield server
    server.stop()


@pytest.fixture
def headers(sandbox) -> dict[str, str]:
    control(sandbox.url, "POST", "reset")
    return st_headers(st_token(sandbox.url))


def url(sandbox, module: str, tail: str) -> str:
    return f"{sandbox.url}{ROOT}/{module}/v2/tenant/{TENANT}/{tail}"


def _spec_exchange(response: requests.Response) -> tuple[str, MockRequest, MockResponse]:
    prepared = response.request
    parts = urlsplit(prepared.url)
    path = parts.path[len(ROOT) :]
    body = prepared.body
    request = MockRequest(
        host_url="https://api.servicetitan.io",
        method=prepared.method.lower(),
        path=path,
        args=MultiDict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=dict(prepared.headers),
        data=body.encode() if isinstance(body, str) else body,
        content_type=prepared.headers.get("Content-Type", "application/json"),
    )
    spec_response = MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("Content-Type", "") if response.content else "",
    )
    return path.split("/")[1], request, spec_response


def check(specs, response: requests.Response, *, request_valid: bool = True) -> None:
    module, request, spec_response = _spec_exchange(response)
    openapi, _ = specs[module]
    if request_valid:
        openapi.validate_request(request)
        assert_query_declared(openapi, request)
    openapi.validate_response(request, spec_response)


def check_undocumented(specs, response: requests.Response) -> None:
    module, request, spec_response = _spec_exchange(response)
    openapi, raw = specs[module]
    with pytest.raises(ResponseNotFound):
        openapi.validate_response(request, spec_response)
    OAS30Validator(raw["components"]["schemas"]["ApiErrorResponse"]).validate(response.json())


def open_estimates(sandbox, headers, count: int = 1) -> list[dict]:
    response = requests.get(
        url(sandbox, "sales", "estimates"),
        params={"status": "Open", "pageSize": 50},
        headers=headers,
        timeout=10,
    )
    found = [e for e in response.json()["data"] if e["jobId"] and len(e["items"]) >= 2]
    assert len(found) >= count
    return found[:count]


def get_estimate(sandbox, headers, estimate_id: int) -> dict:
    return requests.get(
        url(sandbox, "sales", f"estimates/{estimate_id}"), headers=headers, timeout=10
    ).json()


def put(sandbox, headers, tail: str, body=None) -> requests.Response:
    return requests.put(url(sandbox, "sales", tail), json=body, headers=headers, timeout=10)


def stats(sandbox) -> dict:
    return control(sandbox.url, "GET", "stats")["servicetitan"]


def test_sell_sells_once_and_a_second_sell_is_refused(specs, sandbox, headers):
    (estimate,) = open_estimates(sandbox, headers)
    eid = estimate["id"]
    sold = put(sandbox, headers, f"estimates/{eid}/sell", {"soldBy": ACTIVE_TECH})
    assert sold.status_code == 200, sold.text
    check(specs, sold)
    body = sold.json()
    assert body["status"] == {"value": 1, "name": "Sold"} and body["soldBy"] == ACTIVE_TECH
    assert body["soldOn"] and body["modifiedOn"] >= estimate["modifiedOn"]
    assert get_estimate(sandbox, headers, eid) == body
    job = requests.get(
        url(sandbox, "jpm", f"jobs/{estimate['jobId']}"), headers=headers, timeout=10
    ).json()
    assert job["soldById"] == ACTIVE_TECH
    again = put(sandbox, headers, f"estimates/{eid}/sell", {"soldBy": ACTIVE_TECH})
    assert again.status_code == 400 and again.json()["title"] == "The estimate is already sold."
    check(specs, again)
    dismissed = put(sandbox, headers, f"estimates/{eid}/dismiss")
    assert dismissed.status_code == 400
    assert dismissed.json()["title"] == "A sold estimate cannot be dismissed."
    check(specs, dismissed)
    counted = stats(sandbox)
    assert counted["writes_applied"] == {f"estimates/{eid}": 1}
    assert counted["writes_total"] == 3
    assert (
        counted["writes_by_path"][f"PUT {ROOT}/sales/v2/tenant/{TENANT}/estimates/{eid}/sell"] == 2
    )
    assert (
        counted["requests_by_path"][f"PUT {ROOT}/sales/v2/tenant/{{tenant}}/estimates/{{id}}/sell"]
        == 2
    )


def test_dismiss_dismisses_once_and_a_dismissed_estimate_cannot_be_sold(specs, sandbox, headers):
    (estimate,) = open_estimates(sandbox, headers)
    eid = estimate["id"]
    dismissed = put(sandbox, headers, f"estimates/{eid}/dismiss")
    assert dismissed.status_code == 200 and dismissed.content == b""
    check(specs, dismissed)
    after = get_estimate(sandbox, headers, eid)
    assert after["status"] == {"value": 2, "name": "Dismissed"} and after["active"] is True
    again = put(sandbox, headers, f"estimates/{eid}/dismiss")
    assert (
        again.status_code == 400 and again.json()["title"] == "The estimate is already dismissed."
    )
    sell = put(sandbox, headers, f"estimates/{eid}/sell", {"soldBy": ACTIVE_TECH})
    assert (
        sell.status_code == 400 and sell.json()["title"] == "A dismissed estimate cannot be sold."
    )
    check(specs, sell)
    assert stats(sandbox)["writes_applied"] == {f"estimates/{eid}": 1}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"soldBy": 1}, {"soldBy": ["Technician with id 1 does not exist."]}),
        (
            {"soldBy": INACTIVE_TECH},
            {"soldBy": [f"Technician with id {INACTIVE_TECH} is not active."]},
        ),
        (None, {"soldBy": ["The soldBy field is required."]}),
        ({}, {"soldBy": ["The soldBy field is required."]}),
        (
            {"soldBy": "7001"},
            {"soldBy": ["The JSON value could not be converted to System.Int64."]},
        ),
        (
            {"soldBy": ACTIVE_TECH, "soldOn": "2026-01-01"},
            {"soldOn": ["Could not find member 'soldOn' on object of type 'SellRequest'."]},
        ),
    ],
    ids=["unknown-tech", "inactive-tech", "no-body", "no-soldBy", "string", "extra-field"],
)
def test_an_invalid_sale_is_a_problem_with_field_errors(specs, sandbox, headers, body, errors):
    (estimate,) = open_estimates(sandbox, headers)
    response = put(sandbox, headers, f"estimates/{estimate['id']}/sell", body)
    assert response.status_code == 400
    problem = response.json()
    assert problem["errors"] == errors and problem["status"] == 400
    assert problem["title"] == "One or more validation errors occurred."
    valid_request = body is not None and body.get("soldBy") in (1, INACTIVE_TECH)
    check(specs, response, request_valid=valid_request)
    assert get_estimate(sandbox, headers, estimate["id"])["status"]["name"] == "Open"
    assert stats(sandbox)["writes_applied"] == {}


def test_writes_to_an_unknown_estimate_are_404(specs, sandbox, headers):
    for response in (
        put(sandbox, headers, "estimates/1/sell", {"soldBy": ACTIVE_TECH}),
        put(sandbox, headers, "estimates/1/dismiss"),
        requests.delete(url(sandbox, "sales", "estimates/1/items/2"), headers=headers, timeout=10),
    ):
        assert response.status_code == 404
        check_undocumented(specs, response)


def test_an_item_is_deleted_once_and_only_from_an_open_estimate(specs, sandbox, headers):
    first, second = open_estimates(sandbox, headers, 2)
    item = first["items"][0]["id"]
    path = url(sandbox, "sales", f"estimates/{first['id']}/items/{item}")
    deleted = requests.delete(path, headers=headers, timeout=10)
    assert deleted.status_code == 200 and deleted.content == b""
    check(specs, deleted)
    remaining = get_estimate(sandbox, headers, first["id"])["items"]
    assert [i["id"] for i in remaining] == [i["id"] for i in first["items"][1:]]
    gone = requests.delete(path, headers=headers, timeout=10)
    assert gone.status_code == 404 and gone.json()["title"] == "Estimate item not found"
    check_undocumented(specs, gone)
    # Once sold, the items are fixed.
    put(sandbox, headers, f"estimates/{second['id']}/sell", {"soldBy": ACTIVE_TECH})
    locked = requests.delete(
        url(sandbox, "sales", f"estimates/{second['id']}/items/{second['items'][0]['id']}"),
        headers=headers,
        timeout=10,
    )
    assert locked.status_code == 400
    assert locked.json()["title"] == "Items of a sold estimate cannot be changed."
    check(specs, locked)
    assert stats(sandbox)["writes_applied"] == {
        f"estimate-items/{item}": 1,
        f"estimates/{second['id']}": 1,
    }


def test_job_notes_are_created_and_listed(specs, sandbox, headers):
    (estimate,) = open_estimates(sandbox, headers)
    notes = url(sandbox, "jpm", f"jobs/{estimate['jobId']}/notes")
    empty = requests.get(notes, headers=headers, timeout=10)
    assert empty.status_code == 200 and empty.json()["data"] == []
    check(specs, empty)
    for text in ("first [fieldbridge:k]", "second"):
        created = requests.post(notes, json={"text": text}, headers=headers, timeout=10)
        assert created.status_code == 200
        check(specs, created)
        assert created.json()["text"] == text and created.json()["isPinned"] is False
    pinned = requests.post(
        notes, json={"text": "third", "pinToTop": True}, headers=headers, timeout=10
    )
    assert pinned.json()["isPinned"] is True
    listed = requests.get(
        notes, params={"pageSize": 2, "includeTotal": "true"}, headers=headers, timeout=10
    )
    check(specs, listed)
    page = listed.json()
    assert [n["text"] for n in page["data"]] == ["first [fieldbridge:k]", "second"]
    assert page["hasMore"] is True and page["totalCount"] == 3
    refused = requests.post(notes, json={"text": ""}, headers=headers, timeout=10)
    assert refused.status_code == 400 and "text" in refused.json()["errors"]
    check(specs, refused, request_valid=False)
    missing = requests.get(url(sandbox, "jpm", "jobs/1/notes"), headers=headers, timeout=10)
    assert missing.status_code == 404
    check(specs, missing)  # Jobs_GetNotes documents 404
    assert sum(k.startswith("job-notes/") for k in stats(sandbox)["writes_applied"]) == 3


def test_writes_need_credentials(sandbox, headers):
    (estimate,) = open_estimates(sandbox, headers)
    response = requests.put(
        url(sandbox, "sales", f"estimates/{estimate['id']}/sell"),
        json={"soldBy": ACTIVE_TECH},
        headers={"ST-App-Key": accounts.SERVICETITAN_APP_KEY},
        timeout=10,
    )
    assert response.status_code == 401
    assert get_estimate(sandbox, headers, estimate["id"])["status"]["name"] == "Open"


def test_an_applied_write_whose_answer_is_lost_is_counted_once(sandbox, headers):
    (estimate,) = open_estimates(sandbox, headers)
    path = f"{ROOT}/sales/v2/tenant/{TENANT}/estimates/{estimate['id']}/sell"
    control(
        sandbox.url,
        "POST",
        "faults",
        {
            "provider": "servicetitan",
            "queue": [{"apply_then_error": True, "status": 500, "path": path}],
        },
    )
    lost = put(sandbox, headers, f"estimates/{estimate['id']}/sell", {"soldBy": ACTIVE_TECH})
    assert lost.status_code == 500
    assert get_estimate(sandbox, headers, estimate["id"])["status"]["name"] == "Sold"
    assert stats(sandbox)["writes_applied"] == {f"estimates/{estimate['id']}": 1}
