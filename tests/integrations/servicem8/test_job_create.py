"""ServiceM8 `job.create` (a booking becomes a job), with `responses`: the calls made, their
bodies (valid against the spec's Create schemas), and what a re-delivery skips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from openapi_schema_validator import OAS31Validator

from integrations import registry
from integrations.base import Capability, ProviderContext
from integrations.exceptions import ProviderConflictError, ProviderValidationError
from integrations.http import RetryPolicy
from integrations.providers.servicem8.writes import record_uuid

API = "https://api.servicem8.com/api_1.0"
SPEC = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "provider-specs"
    / "servicem8"
    / "servicem8-api_1.0.openapi.json"
)
REF = "bk_0123456789abcdef"
JOB = record_uuid(REF, "job")
COMPANY = record_uuid(REF, "company")
CONTACT = record_uuid(REF, "jobcontact")
VISIT = record_uuid(REF, "jobactivity")
EXISTING = "3f0c8a52-1111-4e2b-9d0a-1c2b3d4e5f60"
NOT_FOUND = {"errorCode": 404, "message": "Resource not found."}
OK = {"errorCode": 0, "message": "OK"}


def provider(**config):
    context = ProviderContext(
        integration_id=1,
        credentials={"api_key": "sm8-key"},
        config={"timezone": "Australia/Sydney", **config},
        rate_limit_enabled=False,
        retry=RetryPolicy(attempts=1),
    )
    return registry.get("servicem8")(context)


def payload(**overrides) -> dict:
    base = {
        "reference": REF,
        "customer": {
            "name": "Dana Smith Jones",
            "email": "dana@example.com",
            "phone": "0400 000 000",
            "external_id": "",
        },
        "address": {
            "street": "1 George St",
            "street2": "Level 2",
            "city": "Sydney",
            "region": "NSW",
            "postal_code": "2000",
            "country": "AU",
        },
        "job": {
            "summary": "Leaking tap",
            "description": "Kitchen, cold side.",
            "priority": "normal",
            "scheduled_start": "2026-05-01T09:00:00+10:00",
            "scheduled_end": "2026-05-01T11:30:00+10:00",
        },
        "options": {},
    }
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return base


@pytest.fixture(scope="module")
def schemas() -> dict:
    if not SPEC.is_file():
        pytest.skip(f"spec not found at {SPEC}")
    return json.loads(SPEC.read_text())["components"]["schemas"]


def valid(schemas: dict, name: str, body: dict) -> None:
    OAS31Validator(
        {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    ).validate(body)


def missing(obj: str, uid: str) -> None:
    responses.get(f"{API}/{obj}/{uid}.json", status=404, json=NOT_FOUND)


def created(obj: str, uid: str) -> None:
    responses.post(f"{API}/{obj}.json", json=OK, headers={"x-record-uuid": uid})


def posted(obj: str) -> list[dict]:
    return [
        json.loads(c.request.body)
        for c in responses.calls
        if c.request.method == "POST" and c.request.url == f"{API}/{obj}.json"
    ]


def job_record(company: str = COMPANY, **extra) -> dict:
    return {"uuid": JOB, "company_uuid": company, "status": "Work Order", "active": 1, **extra}


def test_servicem8_lists_the_capability_and_the_action():
    cls = registry.get("servicem8")
    assert Capability.WRITE_JOB_CREATE in cls.capabilities
    assert cls.actions["job.create"] == "job_create"
    assert {"create_jobs", "manage_customers", "manage_job_contacts", "manage_schedule"} <= set(
        cls.oauth_scopes.split()
    )


@responses.activate
def test_a_new_customer_gets_a_company_job_contact_and_visit(schemas):
    missing("job", JOB)
    missing("company", COMPANY)
    responses.get(f"{API}/company.json", json=[{"uuid": EXISTING, "name": "Dana Smith"}])
    missing("company", COMPANY)
    created("company", COMPANY)
    missing("job", JOB)
    created("job", JOB)
    missing("jobcontact", CONTACT)
    created("jobcontact", CONTACT)
    missing("jobactivity", VISIT)
    created("jobactivity", VISIT)
    responses.get(f"{API}/job/{JOB}.json", json=job_record())

    result = provider().perform("job.create", payload(), idempotency_key="booking:" + REF)

    assert result == {"job_id": JOB, "customer_id": COMPANY, "created": True}
    search = next(c for c in responses.calls if c.request.url.startswith(f"{API}/company.json?"))
    assert "name+eq+%27Dana+Smith+Jones%27+and+active+eq+1" in search.request.url
    (company,) = posted("company")
    where = "1 George St, Level 2, Sydney NSW 2000, AU"
    assert company == {
        "uuid": COMPANY,
        "name": "Dana Smith Jones",
        "address": where,
        "billing_address": where,
        "address_street": "1 George St, Level 2",
        "address_city": "Sydney",
        "address_state": "NSW",
        "address_postcode": "2000",
        "address_country": "AU",
    }
    (job,) = posted("job")
    assert job == {
        "uuid": JOB,
        "company_uuid": COMPANY,
        "status": "Work Order",
        "job_address": where,
        "billing_address": where,
        "job_description": "Leaking tap\n\nKitchen, cold side.",
    }
    (contact,) = posted("jobcontact")
    assert contact == {
        "uuid": CONTACT,
        "job_uuid": JOB,
        "first": "Dana",
        "last": "Smith Jones",
        "email": "dana@example.com",
        "phone": "0400 000 000",
        "type": "JOB",
    }
    (visit,) = posted("jobactivity")
    # 09:00 +10:00 is 09:00 in Sydney (AEST in May); ServiceM8 times are local, no offset.
    assert visit == {
        "uuid": VISIT,
        "job_uuid": JOB,
        "start_date": "2026-05-01 09:00:00",
        "end_date": "2026-05-01 11:30:00",
        "activity_was_scheduled": "1",
    }
    for name, body in (
        ("CompanyCreate", company),
        ("JobCreate", job),
        ("JobContactCreate", contact),
        ("JobActivityCreate", visit),
    ):
        valid(schemas, name, body)


@responses.activate
def test_an_exact_name_match_is_reused_and_options_are_sent():
    staff = "5b0d9c1e-2222-4f3a-8e1b-0a1b2c3d4e5f"
    category = "7c0d9c1e-3333-4f3a-8e1b-0a1b2c3d4e5f"
    missing("job", JOB)
    missing("company", COMPANY)
    responses.get(f"{API}/company.json", json=[{"uuid": EXISTING, "name": "Dana Smith Jones"}])
    missing("job", JOB)
    created("job", JOB)
    missing("jobcontact", CONTACT)
    created("jobcontact", CONTACT)
    missing("jobactivity", VISIT)
    created("jobactivity", VISIT)
    responses.get(f"{API}/job/{JOB}.json", json=job_record(EXISTING, status="Quote"))

    result = provider().perform(
        "job.create",
        payload(
            options={"status": "Quote", "category_uuid": category, "staff_uuid": staff},
            job={"scheduled_end": None},
        ),
        idempotency_key="k",
    )

    assert result["customer_id"] == EXISTING
    assert posted("company") == []
    (job,) = posted("job")
    assert job["status"] == "Quote" and job["category_uuid"] == category
    assert job["company_uuid"] == EXISTING
    (visit,) = posted("jobactivity")
    assert visit["staff_uuid"] == staff
    assert visit["end_date"] == "2026-05-01 10:00:00"  # one hour when no end is given


@responses.activate
def test_a_synced_client_is_used_and_must_exist():
    missing("job", JOB)
    responses.get(f"{API}/company/{EXISTING}.json", json={"uuid": EXISTING, "name": "X"})
    missing("job", JOB)
    created("job", JOB)
    missing("jobcontact", CONTACT)
    created("jobcontact", CONTACT)
    responses.get(f"{API}/job/{JOB}.json", json=job_record(EXISTING))
    result = provider().perform(
        "job.create",
        payload(customer={"external_id": EXISTING}, job={"scheduled_start": None}),
        idempotency_key="k",
    )
    assert result == {"job_id": JOB, "customer_id": EXISTING, "created": True}
    assert posted("jobactivity") == [] and posted("company") == []

    responses.reset()
    missing("job", JOB)
    missing("company", EXISTING)
    with pytest.raises(ProviderValidationError) as caught:
        provider().perform(
            "job.create", payload(customer={"external_id": EXISTING}), idempotency_key="k"
        )
    assert caught.value.field_errors == {"customer.external_id": ["No such ServiceM8 company."]}


@responses.activate
def test_a_redelivery_finds_everything_and_writes_nothing():
    responses.get(f"{API}/job/{JOB}.json", json=job_record())
    responses.get(f"{API}/jobcontact/{CONTACT}.json", json={"uuid": CONTACT, "job_uuid": JOB})
    responses.get(f"{API}/jobactivity/{VISIT}.json", json={"uuid": VISIT, "job_uuid": JOB})
    result = provider().perform("job.create", payload(), idempotency_key="k")
    assert result == {"job_id": JOB, "customer_id": COMPANY, "created": False}
    assert [c.request.method for c in responses.calls] == ["GET"] * len(responses.calls)


@responses.activate
def test_a_create_answered_with_another_uuid_is_an_error():
    missing("job", JOB)
    responses.get(f"{API}/company/{EXISTING}.json", json={"uuid": EXISTING})
    missing("job", JOB)
    responses.post(f"{API}/job.json", json=OK, headers={"x-record-uuid": EXISTING})
    with pytest.raises(Exception, match="x-record-uuid"):
        provider().perform(
            "job.create", payload(customer={"external_id": EXISTING}), idempotency_key="k"
        )


@responses.activate
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"options": {"status": "Completed"}}, "options.status"),
        ({"options": {"staff_uuid": "bob"}}, "options.staff_uuid"),
        ({"reference": ""}, "reference"),
        ({"customer": {"name": "  "}}, "customer.name"),
        ({"customer": {"external_id": "42"}}, "customer.external_id"),
        ({"address": {"street": ""}}, "address.street"),
        ({"job": {"summary": "", "description": ""}}, "job.summary"),
        ({"job": {"scheduled_start": "2026-05-01T09:00:00"}}, "job.scheduled_start"),
    ],
)
def test_bad_input_is_refused_by_field_before_any_call(overrides, field):
    with pytest.raises(ProviderValidationError) as caught:
        provider().perform("job.create", payload(**overrides), idempotency_key="k")
    assert field in caught.value.field_errors
    assert len(responses.calls) == 0


@responses.activate
def test_without_a_configured_zone_the_accounts_own_is_read():
    responses.get(f"{API}/job/{JOB}.json", json=job_record())
    responses.get(f"{API}/jobcontact/{CONTACT}.json", json={"uuid": CONTACT})
    missing("jobactivity", VISIT)
    responses.get(
        f"{API}/vendor.json", json=[{"uuid": EXISTING, "name": "V", "timezone_name": "UTC"}]
    )
    missing("jobactivity", VISIT)
    created("jobactivity", VISIT)
    context_provider = provider(timezone="")
    context_provider.perform("job.create", payload(), idempotency_key="k")
    (visit,) = posted("jobactivity")
    assert visit["start_date"] == "2026-04-30 23:00:00"  # 09:00 +10:00 in UTC


@responses.activate
def test_a_job_deleted_since_an_earlier_delivery_is_a_conflict_not_a_retry():
    responses.get(f"{API}/job/{JOB}.json", json=job_record(active=0))
    with pytest.raises(ProviderConflictError):
        provider().perform("job.create", payload(), idempotency_key="k")
    assert [c.request.method for c in responses.calls] == ["GET"]
