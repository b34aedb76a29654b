"""ServiceTitan job creation (`job.create`) and job status changes (`job.status`) against a
stateful `responses` fake.

Every request the provider sends is validated against the official OpenAPI files
(tenant-crm-v2.yml, tenant-jpm-v2.yml) with openapi-core, and every 200 answer of the fake is
validated too. The fake applies writes to its own state and counts them, so "created once" is
asserted on the state.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from openapi_core import OpenAPI

from integrations import registry
from integrations.base import Capability
from integrations.exceptions import (
    ProviderConflictError,
    ProviderServerError,
    ProviderValidationError,
)
from integrations.providers.servicetitan import writes
from tests.integrations.provider_specs import load_st_specs
from tests.integrations.servicetitan.test_writes import TOKEN_URL, FakeTitan, MockResponse
from tests.integrations.servicetitan.test_writes import provider as make_provider
from tests.integrations.spec_query import assert_query_declared

API = "https://api.servicetitan.io"
TENANT = "42"
CRM = f"{API}/crm/v2/tenant/{TENANT}"
JPM = f"{API}/jpm/v2/tenant/{TENANT}"
SETTINGS = f"{API}/settings/v2/tenant/{TENANT}"
GUID = writes.DEFAULT_APPLICATION_GUID
FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = {"default_business_unit_id": 11, "default_job_type_id": 22, "default_campaign_id": 33}
HOLD_REASON, CANCEL_REASON = 501, 601
STAMP = "2026-03-01T10:00:00Z"

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


@pytest.fixture(scope="module")
def specs() -> dict[str, OpenAPI]:
    names = {
        "crm": "tenant-crm-v2.yml",
        "jpm": "tenant-jpm-v2.yml",
        "settings": "tenant-settings-v2.yml",
    }
    return {module: openapi for module, (openapi, _) in load_st_specs(names).items()}


def _address(**changes) -> dict:
    return {
        "street": "4410 N Central Ave",
        "unit": "Unit 12",
        "city": "Phoenix",
        "state": "AZ",
        "zip": "85012",
        "country": "US",
        "latitude": None,
        "longitude": None,
        **changes,
    }


@dataclass
class FakeJobs:
    """The CRM and JPM endpoints job creation and status changes use, with state. `fail`
    maps "METHOD last-segment" to statuses to answer with first; `apply_then` lists the keys
    whose write is applied before the failure (a lost acknowledgement)."""

    specs: dict[str, OpenAPI]
    customers: dict[int, dict] = field(default_factory=dict)
    locations: dict[int, dict] = field(default_factory=dict)
    jobs: dict[int, dict] = field(default_factory=dict)
    external: dict[int, dict[str, list]] = field(default_factory=dict)
    contacts: dict[int, list[str]] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    fail: dict[str, list[int]] = field(default_factory=dict)
    apply_then: set[str] = field(default_factory=set)
    seen: list[tuple[str, str, dict | None]] = field(default_factory=list)
    next_id: int = 1000
    # Business units and job types that answer 404 / come back inactive (the rest exist).
    missing: set[tuple[str, int]] = field(default_factory=set)
    inactive: set[tuple[str, int]] = field(default_factory=set)

    def install(self, mock: responses.RequestsMock) -> None:
        mock.post(TOKEN_URL, json={"access_token": "st-token", "expires_in": 900})
        crm, jpm = re.escape(CRM), re.escape(JPM)
        routes = [
            ("GET", rf"{re.escape(SETTINGS)}/business-units/\d+$", self.get_reference),
            ("GET", rf"{jpm}/job-types/\d+$", self.get_reference),
            ("GET", rf"{crm}/customers(\?.*)?$", self.list_customers),
            ("GET", rf"{crm}/customers/\d+$", self.get_customer),
            ("POST", rf"{crm}/customers$", self.create_customer),
            ("GET", rf"{crm}/locations(\?.*)?$", self.list_locations),
            ("POST", rf"{crm}/locations$", self.create_location),
            ("GET", rf"{jpm}/jobs(\?.*)?$", self.list_jobs),
            ("GET", rf"{jpm}/jobs/\d+(\?.*)?$", self.get_job),
            ("POST", rf"{jpm}/jobs$", self.create_job),
            ("PUT", rf"{jpm}/jobs/\d+/(hold|complete|cancel|remove-cancellation)$", self.change),
        ]
        for method, pattern, handler in routes:
            mock.add_callback(method, re.compile(pattern), callback=self._wrap(handler))

    def _wrap(self, handler):
        def callback(request):
            url = urlsplit(request.url)
            module = url.path.split("/")[1]
            mock = FakeTitan._mock_request(request)
            self.specs[module].validate_request(mock)  # every request is valid
            assert_query_declared(self.specs[module], mock)
            body = json.loads(request.body) if request.body else None
            self.seen.append((request.method, url.path, body))
            key = f"{request.method} {url.path.rsplit('/', 1)[-1]}"
            statuses = self.fail.get(key) or []
            if statuses:
                status = statuses.pop(0)
                if key in self.apply_then:
                    handler(request, dict(parse_qsl(url.query)), body)
                return status, {}, json.dumps(FakeTitan._problem(status))
            status, answer = handler(request, dict(parse_qsl(url.query)), body)
            content = b"" if answer is None else json.dumps(answer).encode()
            if status == 200:
                self.specs[module].validate_response(
                    mock,
                    MockResponse(
                        content,
                        status_code=200,
                        content_type="application/json" if answer is not None else "",
                    ),
                )
            return status, {"Content-Type": "application/json"}, content

        return callback

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _count(self, key: str) -> None:
        self.applied[key] = self.applied.get(key, 0) + 1

    @staticmethod
    def _last_id(request) -> int:
        return int(urlsplit(request.url).path.rstrip("/").split("/")[-1])

    @staticmethod
    def _page(data: list) -> dict:
        return {"page": 1, "pageSize": 5000, "hasMore": False, "totalCount": None, "data": data}

    # -- records ----------------------------------------------------------------------------

    def add_customer(self, name: str, address: dict, phone: str = "") -> dict:
        customer_id = self._id()
        self.customers[customer_id] = {
            "id": customer_id,
            "active": True,
            "name": name,
            "type": "Residential",
            "address": {**_address(), **address},
            "customFields": [],
            "balance": 0,
            "doNotMail": False,
            "doNotService": False,
            "createdOn": STAMP,
            "createdById": 0,
            "modifiedOn": STAMP,
            "mergedToId": None,
        }
        self.contacts[customer_id] = [phone] if phone else []
        return self.customers[customer_id]

    def add_location(self, customer_id: int, name: str, address: dict) -> dict:
        location_id = self._id()
        self.locations[location_id] = {
            "id": location_id,
            "customerId": customer_id,
            "active": True,
            "name": name,
            "address": {**_address(), **address},
            "customFields": [],
            "createdOn": STAMP,
            "createdById": 0,
            "modifiedOn": STAMP,
            "mergedToId": None,
            "taxZoneId": None,
        }
        return self.locations[location_id]

    def add_job(self, customer_id: int, location_id: int, status: str = "Scheduled") -> dict:
        job_id = self._id()
        self.jobs[job_id] = {
            "id": job_id,
            "jobNumber": str(job_id),
            "customerId": customer_id,
            "locationId": location_id,
            "jobStatus": status,
            "completedOn": None,
            "businessUnitId": 11,
            "jobTypeId": 22,
            "priority": "Normal",
            "campaignId": 33,
            "summary": None,
            "customFields": [],
            "appointmentCount": 1,
            "firstAppointmentId": 1,
            "lastAppointmentId": 1,
            "noCharge": False,
            "notificationsEnabled": True,
            "createdOn": STAMP,
            "createdById": 0,
            "modifiedOn": STAMP,
            "tagTypeIds": [],
            "externalData": [],
        }
        return self.jobs[job_id]

    # -- endpoints --------------------------------------------------------------------------

    def list_customers(self, request, query, body):
        def keep(c: dict) -> bool:
            if query.get("name", "").casefold() not in c["name"].casefold():
                return False
            for name in ("street", "zip"):
                if query.get(name, "").casefold() not in c["address"][name].casefold():
                    return False
            digits = re.sub(r"\D", "", query.get("phone", ""))
            return not digits or any(re.sub(r"\D", "", p) == digits for p in self.contacts[c["id"]])

        return 200, self._page([copy.deepcopy(c) for c in self.customers.values() if keep(c)])

    def get_reference(self, request, query, body):
        """BusinessUnits_Get / JobTypes_Get: a spec-valid record (fixture) with the id asked."""
        kind = urlsplit(request.url).path.rsplit("/", 2)[-2]
        ref_id = self._last_id(request)
        if (kind, ref_id) in self.missing:
            return 404, FakeTitan._problem(404, "Not found")
        name = "business_unit__active" if kind == "business-units" else "job_type__plain"
        record = json.loads((FIXTURES / f"{name}.json").read_text())
        record["id"] = ref_id
        if "active" in record:  # Jpm.V2.JobTypeResponse (2022) has no `active`
            record["active"] = (kind, ref_id) not in self.inactive
        return 200, record

    def get_customer(self, request, query, body):
        customer = self.customers.get(self._last_id(request))
        if customer is None:
            return 404, FakeTitan._problem(404, "Customer not found")
        return 200, copy.deepcopy(customer)

    def create_customer(self, request, query, body):
        customer = self.add_customer(body["name"], body["address"])
        self.contacts[customer["id"]] = [c["value"] for c in body.get("contacts") or ()]
        self._count("customers")
        locations = []
        for new in body["locations"]:
            location = self.add_location(customer["id"], new["name"], new["address"])
            self._count("locations")
            locations.append({**copy.deepcopy(location), "contacts": []})
        contacts = [
            {"id": self._id(), "type": c["type"], "value": c["value"], "memo": None}
            for c in body.get("contacts") or ()
        ]
        return 200, {**copy.deepcopy(customer), "locations": locations, "contacts": contacts}

    def list_locations(self, request, query, body):
        data = [
            copy.deepcopy(loc)
            for loc in self.locations.values()
            if str(loc["customerId"]) == query.get("customerId")
            and query.get("street", "").casefold() in loc["address"]["street"].casefold()
        ]
        return 200, self._page(data)

    def create_location(self, request, query, body):
        if body["customerId"] not in self.customers:
            return 400, FakeTitan._problem(400, errors={"customerId": ["No such customer."]})
        location = self.add_location(body["customerId"], body["name"], body["address"])
        self._count("locations")
        return 200, {**copy.deepcopy(location), "contacts": []}

    def _render_job(self, job: dict, guid: str | None) -> dict:
        rendered = copy.deepcopy(job)
        rendered["externalData"] = list(self.external.get(job["id"], {}).get(guid, []))
        return rendered

    def list_jobs(self, request, query, body):
        guid = query.get("externalDataApplicationGuid")
        data = [
            self._render_job(j, guid)
            for j in self.jobs.values()
            if str(j["customerId"]) == query.get("customerId")
        ]
        return 200, self._page(data)

    def get_job(self, request, query, body):
        job_id = int(urlsplit(request.url).path.rsplit("/", 1)[1])
        if job_id not in self.jobs:
            return 404, FakeTitan._problem(404, "Job not found")
        return 200, self._render_job(self.jobs[job_id], query.get("externalDataApplicationGuid"))

    def create_job(self, request, query, body):
        errors = {}
        if body["customerId"] not in self.customers:
            errors["customerId"] = ["No such customer."]
        if self.locations.get(body["locationId"], {}).get("customerId") != body["customerId"]:
            errors["locationId"] = ["No such location for the customer."]
        if errors:
            return 400, FakeTitan._problem(400, errors=errors)
        job = self.add_job(body["customerId"], body["locationId"])
        job.update(
            businessUnitId=body["businessUnitId"],
            jobTypeId=body["jobTypeId"],
            campaignId=body["campaignId"],
            priority=body["priority"],
            summary=body.get("summary"),
        )
        external = body.get("externalData")
        if external:
            self.external[job["id"]] = {external["applicationGuid"]: external["externalData"]}
        self._count("jobs")
        return 200, self._render_job(job, external and external["applicationGuid"])

    def change(self, request, query, body):
        parts = urlsplit(request.url).path.split("/")
        job, operation = self.jobs[int(parts[-2])], parts[-1]
        status = job["jobStatus"]
        target = {
            "hold": "Hold",
            "complete": "Completed",
            "cancel": "Canceled",
            "remove-cancellation": "Scheduled",
        }[operation]
        refused = (
            (operation == "remove-cancellation" and status != "Canceled")
            or (operation != "remove-cancellation" and status in ("Completed", "Canceled"))
            or status == target
        )
        if refused:
            return (409 if operation == "complete" else 400), FakeTitan._problem(400, "Refused")
        job["jobStatus"] = target
        self._count(operation)
        return 200, None


@pytest.fixture
def fake(specs):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeJobs(specs=specs)
        fake.install(mock)
        yield fake


def provider(config: dict | None = None):
    return make_provider(CONFIG if config is None else config)


def booking(**changes) -> dict:
    payload = {
        "reference": "bk_0123456789abcdef",
        "customer": {
            "name": "Marisol Vega",
            "email": "marisol@example.com",
            "phone": "(602) 555-0199",
            "external_id": "",
        },
        "address": {
            "street": "4410 N Central Ave",
            "street2": "Unit 12",
            "city": "Phoenix",
            "region": "AZ",
            "postal_code": "85012",
            "country": "US",
        },
        "job": {
            "summary": "AC blowing warm air",
            "description": "Gate code 4410.",
            "priority": "urgent",
            "scheduled_start": "2026-12-03T08:00:00-07:00",
            "scheduled_end": "2026-12-03T10:00:00-07:00",
        },
        "options": {},
    }
    for key, value in changes.items():
        payload[key] = {**payload[key], **value} if isinstance(value, dict) else value
    return payload


def writes_sent(fake: FakeJobs) -> list[str]:
    return [f"{m} {p.rsplit('/', 1)[-1]}" for m, p, _ in fake.seen if m != "GET"]


def sent_body(fake: FakeJobs, method: str, tail: str) -> dict:
    (body,) = [b for m, p, b in fake.seen if m == method and p.endswith(tail)]
    return body


# --- declared ----------------------------------------------------------------------------------


def test_servicetitan_declares_the_job_actions():
    cls = registry.get("servicetitan")
    assert {Capability.WRITE_JOB_CREATE, Capability.WRITE_JOB_STATUS} <= cls.capabilities
    assert cls.actions["job.create"] == "job_create"
    assert cls.actions["job.status"] == "job_status"


# --- job.create --------------------------------------------------------------------------------


def test_a_new_customer_location_and_job_are_created_with_every_reference(fake):
    result = provider().perform("job.create", booking(), idempotency_key="booking:bk_1")
    assert writes_sent(fake) == ["POST customers", "POST jobs"]
    assert fake.applied == {"customers": 1, "locations": 1, "jobs": 1}
    (customer_id,) = fake.customers
    (location_id,) = fake.locations
    (job_id,) = fake.jobs
    assert result == {
        "job_id": str(job_id),
        "job_number": str(job_id),
        "customer_id": str(customer_id),
        "location_id": str(location_id),
        "status": "Scheduled",
        "created": True,
    }
    customer = sent_body(fake, "POST", "/customers")
    address = {
        "street": "4410 N Central Ave",
        "unit": "Unit 12",
        "city": "Phoenix",
        "state": "AZ",
        "zip": "85012",
        "country": "US",
    }
    assert customer == {
        "name": "Marisol Vega",
        "type": "Residential",
        "address": address,
        "locations": [{"name": "Marisol Vega", "address": address}],
        "contacts": [
            {"type": "Email", "value": "marisol@example.com"},
            {"type": "Phone", "value": "(602) 555-0199"},
        ],
    }
    assert sent_body(fake, "POST", "/jobs") == {
        "customerId": customer_id,
        "locationId": location_id,
        "businessUnitId": 11,
        "jobTypeId": 22,
        "campaignId": 33,
        "priority": "Urgent",
        "appointments": [
            {
                "start": "2026-12-03T15:00:00Z",
                "end": "2026-12-03T17:00:00Z",
                "arrivalWindowStart": "2026-12-03T15:00:00Z",
                "arrivalWindowEnd": "2026-12-03T17:00:00Z",
            }
        ],
        "summary": "AC blowing warm air\n\nGate code 4410.",
        "externalData": {
            "applicationGuid": GUID,
            "externalData": [{"key": "fieldbridge_booking", "value": "bk_0123456789abcdef"}],
        },
    }


def test_payload_options_win_over_the_config_defaults(fake):
    options = {"business_unit_id": "101", "job_type_id": 202, "campaign_id": 303}
    provider().perform(
        "job.create",
        booking(options={**options, "technician_ids": [7001]}, job={"priority": "low"}),
        idempotency_key="k",
    )
    body = sent_body(fake, "POST", "/jobs")
    assert (body["businessUnitId"], body["jobTypeId"], body["campaignId"]) == (101, 202, 303)
    assert body["priority"] == "Low"
    assert body["appointments"][0]["technicianIds"] == [7001]


def test_a_lost_job_acknowledgement_is_found_by_its_external_data(fake):
    fake.fail["POST jobs"] = [500]
    fake.apply_then.add("POST jobs")
    with pytest.raises(ProviderServerError):
        provider().perform("job.create", booking(), idempotency_key="k")
    assert fake.applied == {"customers": 1, "locations": 1, "jobs": 1}
    result = provider().perform("job.create", booking(), idempotency_key="k")
    assert result["created"] is False and result["job_id"] == str(next(iter(fake.jobs)))
    assert fake.applied == {"customers": 1, "locations": 1, "jobs": 1}
    # The second delivery only read: customer search, location search, jobs, read-back.
    assert writes_sent(fake) == ["POST customers", "POST jobs"]


def test_a_lost_customer_acknowledgement_finds_the_customer_by_name_and_address(fake):
    fake.fail["POST customers"] = [502]
    fake.apply_then.add("POST customers")
    with pytest.raises(ProviderServerError):
        provider().perform("job.create", booking(), idempotency_key="k")
    result = provider().perform("job.create", booking(), idempotency_key="k")
    assert result["created"] is True
    assert fake.applied == {"customers": 1, "locations": 1, "jobs": 1}


def test_a_synced_customer_and_its_location_are_used_as_they_are(fake):
    customer = fake.add_customer("M. Vega (billing)", {"street": "1 Elsewhere Rd"})
    location = fake.add_location(customer["id"], "Home", {"street": "4410 n central ave."})
    payload = booking(customer={"external_id": str(customer["id"])})
    result = provider().perform("job.create", payload, idempotency_key="k")
    assert writes_sent(fake) == ["POST jobs"]
    assert result["customer_id"] == str(customer["id"])
    assert result["location_id"] == str(location["id"])


def test_a_synced_customer_at_a_new_address_gets_a_new_location(fake):
    customer = fake.add_customer("Marisol Vega", {})
    fake.add_location(customer["id"], "Home", {"street": "9 Other St"})
    payload = booking(customer={"external_id": str(customer["id"])})
    provider().perform("job.create", payload, idempotency_key="k")
    assert writes_sent(fake) == ["POST locations", "POST jobs"]
    assert sent_body(fake, "POST", "/locations")["customerId"] == customer["id"]


def test_a_customer_is_matched_by_name_and_phone_when_the_address_differs(fake):
    customer = fake.add_customer("marisol vega", {"street": "1 Old Rd"}, phone="602.555.0199")
    result = provider().perform("job.create", booking(), idempotency_key="k")
    assert result["customer_id"] == str(customer["id"])
    assert writes_sent(fake) == ["POST locations", "POST jobs"]


@pytest.mark.parametrize("external_id", ["99", "C-99"])
def test_an_unknown_synced_customer_is_a_field_error(fake, external_id):
    with pytest.raises(ProviderValidationError) as caught:
        provider().perform(
            "job.create", booking(customer={"external_id": external_id}), idempotency_key="k"
        )
    assert "does not exist" in caught.value.field_errors["customer"][0]
    assert writes_sent(fake) == []


def test_missing_references_are_field_errors_before_any_request(fake):
    payload = booking(
        address={"region": "", "postal_code": ""}, job={"priority": "asap"}, options={}
    )
    with pytest.raises(ProviderValidationError) as caught:
        provider({"default_job_type_id": "x"}).perform("job.create", payload, idempotency_key="k")
    errors = caught.value.field_errors
    assert set(errors) == {
        "business_unit_id",
        "job_type_id",
        "campaign_id",
        "region",
        "postal_code",
        "priority",
    }
    assert "default_business_unit_id" in errors["business_unit_id"][0]
    assert "positive integer" in errors["job_type_id"][0]
    assert fake.seen == []


def test_without_a_schedule_the_appointment_is_tomorrow_morning_in_the_integration_zone(fake):
    config = {**CONFIG, "timezone": "America/Phoenix", "default_appointment_minutes": 90}
    payload = booking(job={"scheduled_start": None, "scheduled_end": None})
    provider(config).perform("job.create", payload, idempotency_key="k")
    (appointment,) = sent_body(fake, "POST", "/jobs")["appointments"]
    start = datetime.fromisoformat(appointment["start"])
    # 08:00 in Phoenix (UTC-7 all year) is 15:00 UTC, tomorrow there.
    assert start.time().isoformat() == "15:00:00"
    phoenix_today = (datetime.now(UTC) - timedelta(hours=7)).date()
    assert start.date() == phoenix_today + timedelta(days=1)
    assert datetime.fromisoformat(appointment["end"]) - start == timedelta(minutes=90)


def test_a_schedule_that_ends_before_it_starts_is_refused(fake):
    payload = booking(job={"scheduled_end": "2026-12-03T07:00:00-07:00"})
    with pytest.raises(ProviderValidationError) as caught:
        provider().perform("job.create", payload, idempotency_key="k")
    assert "scheduled_end" in caught.value.field_errors


def test_a_refused_job_create_keeps_the_providers_field_errors(fake):
    customer = fake.add_customer("Marisol Vega", {})
    fake.add_location(customer["id"], "Home", {})
    fake.fail["POST jobs"] = [400]
    with pytest.raises(ProviderValidationError):
        provider().perform("job.create", booking(), idempotency_key="k")
    assert fake.jobs == {}


def test_a_missing_or_inactive_reference_creates_nothing(fake):
    """The business unit and job type are read (GET by id) before anything is created (after
    looking for a job an earlier delivery made): a wrong one names its option and nothing is
    written."""
    fake.missing.add(("business-units", 11))
    fake.missing.add(("job-types", 22))
    with pytest.raises(ProviderValidationError) as refused:
        provider().perform("job.create", booking(), idempotency_key="k")
    assert set(refused.value.field_errors) == {"business_unit_id", "job_type_id"}
    assert "Business unit 11 does not exist" in refused.value.field_errors["business_unit_id"][0]
    assert writes_sent(fake) == [] and fake.customers == {} and fake.locations == {}
    # Reads only (the customer search, then the two references), nothing written.
    assert {m for m, _, _ in fake.seen} == {"GET"}
    assert [p.rsplit("/", 2)[-2] for _, p, _ in fake.seen][-2:] == ["business-units", "job-types"]

    fake.missing.clear()
    fake.inactive.add(("business-units", 11))
    with pytest.raises(ProviderValidationError) as refused:
        provider().perform("job.create", booking(), idempotency_key="k")
    assert set(refused.value.field_errors) == {"business_unit_id"}
    assert "is inactive" in refused.value.field_errors["business_unit_id"][0]
    assert writes_sent(fake) == [] and fake.customers == {}


# --- job.status --------------------------------------------------------------------------------


@pytest.fixture
def job(fake) -> dict:
    customer = fake.add_customer("Marisol Vega", {})
    location = fake.add_location(customer["id"], "Home", {})
    return fake.add_job(customer["id"], location["id"])


def status_payload(job: dict, change: str, reason=None) -> dict:
    return {"job_external_id": str(job["id"]), "change": change, "reason_id": reason, "memo": ""}


@pytest.mark.parametrize(
    ("change", "reason", "operation", "status", "body"),
    [
        ("hold", HOLD_REASON, "hold", "Hold", {"reasonId": HOLD_REASON}),
        ("cancel", CANCEL_REASON, "cancel", "Canceled", {"reasonId": CANCEL_REASON}),
        ("complete", None, "complete", "Completed", None),
    ],
)
def test_a_status_change_whose_acknowledgement_is_lost_is_applied_once(
    fake, job, change, reason, operation, status, body
):
    fake.fail[f"PUT {operation}"] = [500]
    fake.apply_then.add(f"PUT {operation}")
    with pytest.raises(ProviderServerError):
        provider().perform("job.status", status_payload(job, change, reason), idempotency_key="e1")
    result = provider().perform(
        "job.status", status_payload(job, change, reason), idempotency_key="e1"
    )
    assert result == {
        "job_id": str(job["id"]),
        "change": change,
        "status": status,
        "already_done": True,
    }
    assert fake.applied == {operation: 1}
    sent = sent_body(fake, "PUT", f"/{operation}")
    if body is None:
        assert set(sent) == {"completedOn"}
        assert datetime.fromisoformat(sent["completedOn"]).date() >= date(2026, 1, 1)
    else:
        assert sent == {**body, "memo": "Changed in Fieldbridge [e1]"}


def test_a_cancellation_is_removed_and_a_second_removal_changes_nothing(fake, job):
    job["jobStatus"] = "Canceled"
    first = provider().perform(
        "job.status", status_payload(job, "remove_cancellation"), idempotency_key="e"
    )
    assert first["status"] == "Scheduled" and first["already_done"] is False
    assert sent_body(fake, "PUT", "/remove-cancellation") is None
    again = provider().perform(
        "job.status", status_payload(job, "remove_cancellation"), idempotency_key="e"
    )
    assert again["already_done"] is True
    assert fake.applied == {"remove-cancellation": 1}


@pytest.mark.parametrize(
    ("status", "change"), [("Canceled", "complete"), ("Completed", "hold"), ("Completed", "cancel")]
)
def test_an_impossible_change_is_a_conflict_and_sends_nothing(fake, job, status, change):
    job["jobStatus"] = status
    reason = HOLD_REASON if change == "hold" else CANCEL_REASON
    with pytest.raises(ProviderConflictError):
        provider().perform("job.status", status_payload(job, change, reason), idempotency_key="e")
    assert writes_sent(fake) == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"job_external_id": "abc", "change": "hold", "reason_id": 1}, "job_external_id"),
        ({"job_external_id": "5", "change": "pause"}, "change"),
        ({"job_external_id": "5", "change": "cancel", "reason_id": None}, "reason_id"),
    ],
)
def test_an_invalid_status_change_is_a_field_error(fake, payload, field):
    with pytest.raises(ProviderValidationError) as caught:
        provider().perform("job.status", payload, idempotency_key="e")
    assert field in caught.value.field_errors
    assert fake.seen == []


def test_ascii_digits_only_count_as_ids():
    """`"²".isdigit()` is True but int("²") raises: such a value is not an id."""
    from integrations.providers.servicetitan import writes

    assert writes._int_id("²") is None
    assert writes._int_id("12") == 12
