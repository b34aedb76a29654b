"""The seeded entities through the API: ServiceM8 objects and ServiceTitan resources listed
with the same paging and filter machinery as clients."""

from __future__ import annotations

import pytest
import requests

from integrations.sandbox.servicetitan_resources import RESOURCES
from tests.integrations.sandbox import (
    SM8_HEADERS,
    TENANT,
    configure,
    control,
    sm8_oauth_tokens,
    sm8_url,
    st_headers,
    st_token,
    start_sandbox,
)

SM8_OBJECTS = (
    "companycontact staff job jobmaterial jobactivity material category taxrate "
    "jobcontact note jobmaterialbundle"
).split()
ST_RESOURCES = list(RESOURCES)  # the bulk contact lists are routed too


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("entities"), records=40)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_runtime(sandbox):
    control(sandbox.url, "POST", "reset")


@pytest.fixture(scope="module")
def headers(sandbox):
    return st_headers(st_token(sandbox.url))


def _sm8(root: str, path: str, headers=SM8_HEADERS, **params) -> requests.Response:
    return requests.get(sm8_url(root, path), params=params, headers=headers, timeout=10)


def _st(root: str, module: str, tail: str, headers: dict, **params) -> requests.Response:
    url = f"{root}/servicetitan/{module}/v2/tenant/{TENANT}/{tail}"
    return requests.get(url, params=params, headers=headers, timeout=10)


def _st_all(root: str, module: str, path: str, headers: dict, **params) -> list[dict]:
    data: list[dict] = []
    for page in range(1, 100):
        body = _st(root, module, path, headers, page=page, pageSize=200, **params).json()
        data.extend(body["data"])
        if not body["hasMore"]:
            return data
    raise AssertionError("page walk did not end")


# --- ServiceM8 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", SM8_OBJECTS)
def test_sm8_objects_list_page_and_get(sandbox, obj):
    everything = _sm8(sandbox.url, f"{obj}.json")
    assert everything.status_code == 200
    records = everything.json()
    assert records and all({"uuid", "active", "edit_date"} <= set(r) for r in records)
    configure(sandbox.url, servicem8={"page_size": 7})
    walked, cursor = [], "-1"
    while cursor:
        page = _sm8(sandbox.url, f"{obj}.json", cursor=cursor)
        assert page.status_code == 200 and len(page.json()) <= 7
        walked.extend(page.json())
        cursor = page.headers.get("x-next-cursor")
    assert sorted(r["uuid"] for r in walked) == sorted(r["uuid"] for r in records)
    one = _sm8(sandbox.url, f"{obj}/{records[0]['uuid']}.json")
    assert one.status_code == 200 and one.json() == records[0]


def test_sm8_filters_reach_the_job_tree(sandbox):
    quotes = _sm8(sandbox.url, "job.json", **{"$filter": "status eq 'Quote'"}).json()
    assert quotes and {q["status"] for q in quotes} == {"Quote"}
    work = _sm8(sandbox.url, "job.json", **{"$filter": "status eq 'Work Order'"}).json()
    assert {w["status"] for w in work} == {"Work Order"}
    job = quotes[0]
    lines = _sm8(sandbox.url, "jobmaterial.json", **{"$filter": f"job_uuid eq '{job['uuid']}'"})
    assert 2 <= len(lines.json()) <= 6
    assert {line["job_uuid"] for line in lines.json()} == {job["uuid"]}
    contacts = _sm8(
        sandbox.url,
        "companycontact.json",
        **{"$filter": f"company_uuid eq '{job['company_uuid']}' and is_primary_contact eq '1'"},
    ).json()
    assert len(contacts) <= 1
    deleted = _sm8(sandbox.url, "jobmaterial.json", **{"$filter": "active eq 0"}).json()
    assert all(line["active"] == 0 for line in deleted)


def test_sm8_scopes_gate_the_new_objects(sandbox):
    token = sm8_oauth_tokens(sandbox.url, "read_jobs read_tax_rates")["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert _sm8(sandbox.url, "job.json", headers=bearer).status_code == 200
    assert _sm8(sandbox.url, "taxrate.json", headers=bearer).status_code == 200
    for obj in ("jobmaterial", "jobactivity", "staff", "material", "companycontact"):
        assert _sm8(sandbox.url, f"{obj}.json", headers=bearer).status_code == 403


# --- ServiceTitan ------------------------------------------------------------------------------


@pytest.mark.parametrize(("module", "path"), ST_RESOURCES)
def test_st_resources_list_page_and_get(sandbox, headers, module, path):
    spec = RESOURCES[(module, path)]
    params = {"active": "Any"} if "active" in spec.params else {}
    if spec.requires_one_of:  # the bulk contact lists need a modified filter [spec]
        params["modifiedOnOrAfter"] = "2000-01-01T00:00:00Z"
    everything = _st_all(sandbox.url, module, path, headers, **params)
    assert everything
    first = _st(sandbox.url, module, path, headers, pageSize=5, includeTotal="true", **params)
    body = first.json()
    assert first.status_code == 200 and body["totalCount"] == len(everything)
    assert body["hasMore"] == (len(everything) > 5) and len(body["data"]) == min(5, len(everything))
    ids = [r["id"] for r in everything]
    assert ids == sorted(set(ids))
    record = everything[0]
    assert ("active" in record) == spec.active_field
    assert ("modifiedOn" in record) == spec.modified_field
    one = _st(sandbox.url, module, f"{path}/{record['id']}", headers)
    if not spec.has_get:  # list only in the spec (appointment-assignments): no such route
        assert one.status_code == 404
        return
    assert one.status_code == 200 and one.json() == record
    missing = _st(sandbox.url, module, f"{path}/1", headers)
    assert missing.status_code == 404 and missing.json()["title"] == spec.not_found_title


def test_st_active_and_modified_filters(sandbox, headers):
    locations = _st_all(sandbox.url, "crm", "locations", headers, active="Any")
    inactive = [loc for loc in locations if not loc["active"]]
    target = locations[0]
    control(sandbox.url, "DELETE", f"records/servicetitan/locations/{target['id']}")
    default = _st_all(sandbox.url, "crm", "locations", headers)
    assert target["id"] not in {loc["id"] for loc in default}
    assert len(default) == len(locations) - len(inactive) - (1 if target["active"] else 0)
    after = control(sandbox.url, "GET", f"records/servicetitan/locations/{target['id']}")
    changed = _st_all(
        sandbox.url,
        "crm",
        "locations",
        headers,
        active="False",
        modifiedOnOrAfter=after["rendered"]["modifiedOn"],
    )
    assert [loc["id"] for loc in changed] == [target["id"]]
    # Jobs have no ``active``: the parameter is not declared, hence ignored.
    jobs = _st_all(sandbox.url, "jpm", "jobs", headers)
    assert jobs == _st_all(sandbox.url, "jpm", "jobs", headers, active="False")


def test_st_equality_filters(sandbox, headers):
    jobs = _st_all(sandbox.url, "jpm", "jobs", headers)
    job = jobs[0]
    by_customer = _st_all(sandbox.url, "jpm", "jobs", headers, customerId=job["customerId"])
    assert job in by_customer and {j["customerId"] for j in by_customer} == {job["customerId"]}
    completed = _st_all(sandbox.url, "jpm", "jobs", headers, jobStatus="Completed")
    assert completed and {j["jobStatus"] for j in completed} == {"Completed"}
    assert _st_all(sandbox.url, "jpm", "jobs", headers, number=job["jobNumber"]) == [job]
    customer_id = job["customerId"]
    locations = _st_all(
        sandbox.url, "crm", "locations", headers, customerId=customer_id, active="Any"
    )
    assert [loc["id"] for loc in locations] == [job["locationId"]]
    appointments = _st_all(sandbox.url, "jpm", "appointments", headers, jobId=job["id"])
    assert [a["id"] for a in appointments] == [job["firstAppointmentId"]]
    estimates = _st_all(sandbox.url, "sales", "estimates", headers, active="Any")
    sold = _st_all(sandbox.url, "sales", "estimates", headers, active="Any", status="Sold")
    assert {e["id"] for e in sold} == {e["id"] for e in estimates if e["status"]["name"] == "Sold"}
    estimate = estimates[0]
    on_job = _st_all(
        sandbox.url, "sales", "estimates", headers, active="Any", jobId=estimate["jobId"]
    )
    assert estimate in on_job
    materials = _st_all(sandbox.url, "pricebook", "categories", headers, categoryType="Materials")
    assert materials and {c["categoryType"] for c in materials} == {"Materials"}
    bad = _st(sandbox.url, "jpm", "jobs", headers, customerId="abc")
    assert bad.status_code == 400 and "customerId" in bad.json()["errors"]


def test_st_undeclared_sort_and_unemulated_filters(sandbox, headers):
    # Pricebook items have no createdOn: the declared created filters are refused, not ignored.
    refused = _st(sandbox.url, "pricebook", "materials", headers, createdOnOrAfter="2020-01-01")
    assert refused.status_code == 400 and "createdOnOrAfter" in refused.json()["errors"]
    refused = _st(sandbox.url, "jpm", "jobs", headers, technicianId="7001")
    assert refused.status_code == 400 and "technicianId" in refused.json()["errors"]
    # "Available fields are: Id" on pricebook sort.
    assert _st(sandbox.url, "pricebook", "services", headers, sort="-ModifiedOn").status_code == 400
    desc = _st(sandbox.url, "pricebook", "services", headers, sort="-Id").json()["data"]
    assert [s["id"] for s in desc] == sorted((s["id"] for s in desc), reverse=True)
    by_created = _st(sandbox.url, "jpm", "jobs", headers, sort="+CreatedOn").json()["data"]
    assert [j["createdOn"] for j in by_created] == sorted(j["createdOn"] for j in by_created)
