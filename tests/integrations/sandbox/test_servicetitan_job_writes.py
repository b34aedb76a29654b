"""The ServiceTitan sandbox's customer, location and job writes (job creation from a booking,
job status changes) over HTTP.

Every exchange is validated against the official specs (tenant-crm-v2.yml for customers and
locations, tenant-jpm-v2.yml for jobs), request bodies included, except the deliberately
invalid requests, whose 400 answers are still validated.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from openapi_core import OpenAPI

from integrations.sandbox import accounts
from tests.integrations.provider_specs import load_st_specs
from tests.integrations.sandbox import control, st_headers, st_token, start_sandbox
from tests.integrations.sandbox.test_servicetitan_writes import check

TENANT = accounts.SERVICETITAN_TENANT.tenant_id
ROOT = "/servicetitan"
BUSINESS_UNIT, JOB_TYPE, CAMPAIGN, TECH = 1001, 2001, 3001, 7001
HOLD_REASON, CANCEL_REASON = 9_100_001, 9_200_001
GUID = str(uuid.uuid4())

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


@pytest.fixture(scope="module")
def specs() -> dict[str, tuple[OpenAPI, dict]]:
    return load_st_specs({"crm": "tenant-crm-v2.yml", "jpm": "tenant-jpm-v2.yml"})


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("st-job-writes"), records=40)
    yield server
    server.stop()


@pytest.fixture
def headers(sandbox) -> dict[str, str]:
    control(sandbox.url, "POST", "reset")
    for obj, rid in (("job-hold-reasons", HOLD_REASON), ("job-cancel-reasons", CANCEL_REASON)):
        control(
            sandbox.url,
            "POST",
            f"records/servicetitan/{obj}",
            json={"id": rid, "data": {"name": f"Reason {rid}"}, "active": True},
        )
    return st_headers(st_token(sandbox.url))


def url(sandbox, module: str, tail: str) -> str:
    return f"{sandbox.url}{ROOT}/{module}/v2/tenant/{TENANT}/{tail}"


def stats(sandbox) -> dict:
    return control(sandbox.url, "GET", "stats")["servicetitan"]


ADDRESS = {
    "street": "1200 Congress Ave",
    "unit": "Suite 4",
    "city": "Austin",
    "state": "TX",
    "zip": "78701",
    "country": "US",
}


def create_customer(specs, sandbox, headers, name="Riverside Dental") -> dict:
    body = {
        "name": name,
        "type": "Commercial",
        "address": ADDRESS,
        "locations": [{"name": name, "address": ADDRESS}],
        "contacts": [
            {"type": "Email", "value": "office@riverside.example"},
            {"type": "Phone", "value": "(512) 555-0142"},
        ],
    }
    response = requests.post(
        url(sandbox, "crm", "customers"), json=body, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    check(specs, response)
    return response.json()


def job_body(customer: dict, **changes) -> dict:
    body = {
        "customerId": customer["id"],
        "locationId": customer["locations"][0]["id"],
        "businessUnitId": BUSINESS_UNIT,
        "jobTypeId": JOB_TYPE,
        "priority": "High",
        "campaignId": CAMPAIGN,
        "appointments": [
            {
                "start": "2026-12-01T15:00:00Z",
                "end": "2026-12-01T17:00:00Z",
                "arrivalWindowStart": "2026-12-01T15:00:00Z",
                "arrivalWindowEnd": "2026-12-01T16:00:00Z",
                "technicianIds": [TECH],
            }
        ],
        "summary": "AC not cooling",
        "externalData": {
            "applicationGuid": GUID,
            "externalData": [{"key": "fieldbridge_booking", "value": "bk_1"}],
        },
    }
    body.update(changes)
    return body


def post_job(specs, sandbox, headers, body) -> requests.Response:
    response = requests.post(url(sandbox, "jpm", "jobs"), json=body, headers=headers, timeout=10)
    check(specs, response)
    return response


def test_a_customer_is_created_with_its_location_and_contacts(specs, sandbox, headers):
    customer = create_customer(specs, sandbox, headers)
    assert customer["name"] == "Riverside Dental" and customer["type"] == "Commercial"
    assert customer["address"]["zip"] == "78701" and customer["active"] is True
    (location,) = customer["locations"]
    assert location["customerId"] == customer["id"] and location["address"]["unit"] == "Suite 4"
    assert {(c["type"], c["value"]) for c in customer["contacts"]} == {
        ("Email", "office@riverside.example"),
        ("Phone", "(512) 555-0142"),
    }
    got = requests.get(
        url(sandbox, "crm", f"customers/{customer['id']}"), headers=headers, timeout=10
    )
    check(specs, got)
    assert got.json()["name"] == "Riverside Dental"
    bulk = requests.get(
        url(sandbox, "crm", "customers/contacts"),
        params={"modifiedOnOrAfter": "2000-01-01T00:00:00Z", "pageSize": 5000},
        headers=headers,
        timeout=10,
    )
    check(specs, bulk)
    mine = [c for c in bulk.json()["data"] if c["customerId"] == customer["id"]]
    assert {c["value"] for c in mine} == {"office@riverside.example", "(512) 555-0142"}
    applied = stats(sandbox)["writes_applied"]
    assert applied[f"customers/{customer['id']}"] == 1
    assert applied[f"locations/{location['id']}"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"locations": []}, "locations"),
        ({"address": {**ADDRESS, "zip": None}}, "address.zip"),
        ({"contacts": [{"type": "Pager", "value": "1"}]}, "contacts[0].type"),
        ({"nickname": "x"}, "nickname"),
    ],
)
def test_an_invalid_customer_is_a_problem_naming_the_field(specs, sandbox, headers, change, field):
    body = {"name": "X", "address": ADDRESS, "locations": [{"name": "X", "address": ADDRESS}]}
    body.update(change)
    response = requests.post(
        url(sandbox, "crm", "customers"), json=body, headers=headers, timeout=10
    )
    assert response.status_code == 400
    check(specs, response, request_valid=False)
    assert field in response.json()["errors"]
    assert stats(sandbox)["writes_applied"] == {}


def test_customers_and_locations_are_searched_by_name_address_and_phone(specs, sandbox, headers):
    # The sandbox keeps records across tests (reset restores settings only): a unique name.
    name = f"Lakeside Dental {uuid.uuid4().hex[:6]}"
    customer = create_customer(specs, sandbox, headers, name=name)
    create_customer(specs, sandbox, headers, name=f"{name} Annex")
    search = url(sandbox, "crm", "customers")

    def names(**params) -> list[str]:
        response = requests.get(search, params=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        check(specs, response)
        return sorted(c["name"] for c in response.json()["data"])

    assert names(name=name.lower(), street="1200 congress", zip="78701") == [name, f"{name} Annex"]
    assert names(name=f"{name} annex", zip="78701") == [f"{name} Annex"]
    assert names(name=name, phone="512-555-0142", pageSize=1, page=2) == [f"{name} Annex"]
    assert names(name=name, phone="512-555-0000") == []
    assert names(name=name, zip="10001") == []
    response = requests.post(
        url(sandbox, "crm", "locations"),
        json={
            "name": "Warehouse",
            "address": {**ADDRESS, "street": "9 Industrial Blvd", "unit": None},
            "customerId": customer["id"],
        },
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    check(specs, response)
    found = requests.get(
        url(sandbox, "crm", "locations"),
        params={"customerId": customer["id"], "street": "9 industrial", "zip": "78701"},
        headers=headers,
        timeout=10,
    )
    check(specs, found)
    assert [loc["name"] for loc in found.json()["data"]] == ["Warehouse"]


def test_a_location_needs_an_existing_customer(specs, sandbox, headers):
    response = requests.post(
        url(sandbox, "crm", "locations"),
        json={"name": "Nowhere", "address": ADDRESS, "customerId": 999_999_999},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 400
    check(specs, response)
    assert "customerId" in response.json()["errors"]


def test_a_job_is_created_with_every_reference_and_its_appointment(specs, sandbox, headers):
    customer = create_customer(specs, sandbox, headers)
    response = post_job(specs, sandbox, headers, job_body(customer))
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["jobStatus"] == "Scheduled" and job["priority"] == "High"
    assert (job["businessUnitId"], job["jobTypeId"], job["campaignId"]) == (
        BUSINESS_UNIT,
        JOB_TYPE,
        CAMPAIGN,
    )
    assert job["externalData"] == [{"key": "fieldbridge_booking", "value": "bk_1"}]
    appointment = requests.get(
        url(sandbox, "jpm", f"appointments/{job['firstAppointmentId']}"),
        headers=headers,
        timeout=10,
    )
    check(specs, appointment)
    assert appointment.json()["jobId"] == job["id"]
    assert appointment.json()["start"].startswith("2026-12-01T15:00:00")
    assignments = requests.get(
        url(sandbox, "dispatch", "appointment-assignments"),
        params={"jobId": job["id"]},
        headers=headers,
        timeout=10,
    ).json()["data"]
    assert [a["technicianId"] for a in assignments] == [TECH]
    # externalData is returned only for the application guid asked for [spec].
    plain = requests.get(url(sandbox, "jpm", f"jobs/{job['id']}"), headers=headers, timeout=10)
    check(specs, plain)
    assert plain.json()["externalData"] == []
    ours = requests.get(
        url(sandbox, "jpm", f"jobs/{job['id']}"),
        params={"externalDataApplicationGuid": GUID},
        headers=headers,
        timeout=10,
    )
    check(specs, ours)
    assert ours.json()["externalData"] == [{"key": "fieldbridge_booking", "value": "bk_1"}]
    listed = requests.get(
        url(sandbox, "jpm", "jobs"),
        params={"customerId": customer["id"], "externalDataApplicationGuid": GUID},
        headers=headers,
        timeout=10,
    )
    check(specs, listed)
    assert [j["externalData"] for j in listed.json()["data"]] == [job["externalData"]]
    other = requests.get(
        url(sandbox, "jpm", "jobs"),
        params={"customerId": customer["id"], "externalDataApplicationGuid": str(uuid.uuid4())},
        headers=headers,
        timeout=10,
    )
    assert [j["externalData"] for j in other.json()["data"]] == [[]]
    assert stats(sandbox)["writes_applied"][f"jobs/{job['id']}"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"businessUnitId": 999_999}, "businessUnitId"),
        ({"jobTypeId": 999_999}, "jobTypeId"),
        ({"campaignId": 999_999}, "campaignId"),
        ({"customerId": 999_999_999}, "customerId"),
        ({"locationId": 999_999_999}, "locationId"),
        ({"priority": "Whenever"}, "priority"),
        ({"appointments": []}, "appointments"),
    ],
)
def test_a_job_with_a_bad_reference_is_a_problem_naming_it(specs, sandbox, headers, change, field):
    customer = create_customer(specs, sandbox, headers)
    response = requests.post(
        url(sandbox, "jpm", "jobs"), json=job_body(customer, **change), headers=headers, timeout=10
    )
    assert response.status_code == 400
    check(specs, response, request_valid=field not in ("appointments",))
    assert field in response.json()["errors"], response.json()
    assert not [k for k in stats(sandbox)["writes_applied"] if k.startswith("jobs/")]


def test_another_customers_location_is_refused(specs, sandbox, headers):
    customer = create_customer(specs, sandbox, headers)
    other = create_customer(specs, sandbox, headers, name="Someone Else")
    body = job_body(customer, locationId=other["locations"][0]["id"])
    response = post_job(specs, sandbox, headers, body)
    assert response.status_code == 400
    assert "not the customer's" in response.json()["errors"]["locationId"][0]


def put_change(specs, sandbox, headers, job_id, operation, body=None) -> requests.Response:
    response = requests.put(
        url(sandbox, "jpm", f"jobs/{job_id}/{operation}"), json=body, headers=headers, timeout=10
    )
    check(specs, response, request_valid=response.status_code == 200)
    return response


def job_state(sandbox, headers, job_id) -> tuple[str, list[str]]:
    job = requests.get(url(sandbox, "jpm", f"jobs/{job_id}"), headers=headers, timeout=10).json()
    appointments = requests.get(
        url(sandbox, "jpm", "appointments"), params={"jobId": job_id}, headers=headers, timeout=10
    ).json()["data"]
    return job["jobStatus"], [a["status"] for a in appointments]


def test_hold_cancel_remove_cancellation_and_complete_follow_the_status_rules(
    specs, sandbox, headers
):
    customer = create_customer(specs, sandbox, headers)
    job_id = post_job(specs, sandbox, headers, job_body(customer)).json()["id"]
    hold = {"reasonId": HOLD_REASON, "memo": "Waiting for parts"}
    assert put_change(specs, sandbox, headers, job_id, "hold", hold).status_code == 200
    assert job_state(sandbox, headers, job_id) == ("Hold", ["Hold"])
    again = put_change(specs, sandbox, headers, job_id, "hold", hold)
    assert again.status_code == 400 and "already on hold" in again.json()["title"]
    bad_reason = put_change(
        specs, sandbox, headers, job_id, "cancel", {"reasonId": HOLD_REASON, "memo": "x"}
    )
    assert bad_reason.status_code == 400 and "reasonId" in bad_reason.json()["errors"]
    cancel = {"reasonId": CANCEL_REASON, "memo": "Customer called"}
    assert put_change(specs, sandbox, headers, job_id, "cancel", cancel).status_code == 200
    assert job_state(sandbox, headers, job_id) == ("Canceled", ["Canceled"])
    refused = put_change(
        specs, sandbox, headers, job_id, "complete", {"completedOn": "2026-12-01T18:00:00Z"}
    )
    assert refused.status_code == 409
    assert put_change(specs, sandbox, headers, job_id, "remove-cancellation").status_code == 200
    assert job_state(sandbox, headers, job_id) == ("Scheduled", ["Scheduled"])
    not_canceled = put_change(specs, sandbox, headers, job_id, "remove-cancellation")
    assert not_canceled.status_code == 400
    done = put_change(
        specs, sandbox, headers, job_id, "complete", {"completedOn": "2026-12-01T18:00:00Z"}
    )
    assert done.status_code == 200
    job = requests.get(url(sandbox, "jpm", f"jobs/{job_id}"), headers=headers, timeout=10)
    check(specs, job)
    assert job.json()["jobStatus"] == "Completed"
    assert job.json()["completedOn"].startswith("2026-12-01T18:00:00")
    # create + hold + cancel + remove-cancellation + complete; the refusals changed nothing.
    assert stats(sandbox)["writes_applied"][f"jobs/{job_id}"] == 5


def test_completing_a_job_without_technicians_is_a_conflict(specs, sandbox, headers):
    customer = create_customer(specs, sandbox, headers)
    body = job_body(customer)
    body["appointments"][0].pop("technicianIds")
    job_id = post_job(specs, sandbox, headers, body).json()["id"]
    response = put_change(
        specs, sandbox, headers, job_id, "complete", {"completedOn": "2026-12-01T18:00:00Z"}
    )
    assert response.status_code == 409 and "no assigned technicians" in response.json()["title"]


@pytest.mark.parametrize(
    ("operation", "body", "field"),
    [
        ("hold", {"memo": "x"}, "reasonId"),
        ("hold", {"reasonId": HOLD_REASON}, "memo"),
        ("cancel", {"reasonId": "one", "memo": "x"}, "reasonId"),
        ("complete", {}, "completedOn"),
        ("complete", {"completedOn": "yesterday"}, "completedOn"),
    ],
)
def test_an_invalid_status_change_is_a_problem_naming_the_field(
    specs, sandbox, headers, operation, body, field
):
    customer = create_customer(specs, sandbox, headers)
    job_id = post_job(specs, sandbox, headers, job_body(customer)).json()["id"]
    response = put_change(specs, sandbox, headers, job_id, operation, body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert job_state(sandbox, headers, job_id)[0] == "Scheduled"
