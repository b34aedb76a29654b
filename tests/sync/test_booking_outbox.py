"""Bookings end to end against the ServiceM8 sandbox: booking_create -> outbox relay -> a job
with its company, address, contact and visit; exactly once across a lost acknowledgement; every
request the provider sends is valid against the spec."""

from __future__ import annotations

import uuid

import pytest
import requests
from django.core.exceptions import ValidationError

from integrations.providers.servicem8.writes import record_uuid
from integrations.services import provider_for
from portal.bookings import booking_create
from portal.models import Booking
from sync.models import OutboxEvent
from sync.outbox import outbox_deliver
from tests.integrations.sandbox import test_spec_conformance as conformance
from tests.sync.conftest import sandbox_control, sandbox_stats

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning"),
]
API = "/servicem8/api_1.0"
KEY = {"X-Api-Key": "sm8-sandbox-api-key"}
specs = conformance.specs


def get(sandbox, path: str, **params) -> requests.Response:
    return requests.get(f"{sandbox.url}{API}/{path}", params=params, headers=KEY, timeout=10)


def booking_data(**overrides) -> dict:
    # A new name each time: the sandbox keeps its records across the module's tests, and a
    # company named like the customer would be reused.
    data = {
        "customer_name": f"Quinn Test-{uuid.uuid4().hex[:8]}",
        "email": "quinn@example.com",
        "phone": "0400 111 222",
        "street": "12 Harbour Rd",
        "street2": "",
        "city": "Sydney",
        "region": "NSW",
        "postal_code": "2000",
        "country": "au",
        "summary": "Install a hot water system",
        "description": "Replace the old electric unit.",
        "priority": "high",
        "scheduled_start": "2026-06-02T08:30:00+10:00",
        "scheduled_end": "2026-06-02T10:00:00+10:00",
        "options": {},
    }
    return {**data, **overrides}


def applied(sandbox) -> dict:
    return sandbox_stats(sandbox, "servicem8").get("writes_applied", {})


def test_a_booking_becomes_a_job_with_its_company_contact_and_visit(sm8_integration, sandbox_clean):
    booking = booking_create(integration=sm8_integration, data=booking_data())
    assert booking.status == Booking.Status.PENDING and booking.outbox_event.action == "job.create"

    event = outbox_deliver(event_id=booking.outbox_event_id)

    assert event.status == "sent", event.last_error
    booking.refresh_from_db()
    job_uuid = record_uuid(booking.reference, "job")
    company_uuid = record_uuid(booking.reference, "company")
    assert booking.status == Booking.Status.CREATED and booking.external_job_id == job_uuid
    assert event.response == {"job_id": job_uuid, "customer_id": company_uuid, "created": True}
    job = get(sandbox_clean, f"job/{job_uuid}.json").json()
    assert job["status"] == "Work Order" and job["company_uuid"] == company_uuid
    assert job["job_address"] == "12 Harbour Rd, Sydney NSW 2000, AU"
    assert job["job_description"].startswith("Install a hot water system")
    company = get(sandbox_clean, f"company/{company_uuid}.json").json()
    assert company["name"] == booking.customer_name and company["address_city"] == "Sydney"
    (contact,) = get(
        sandbox_clean, "jobcontact.json", **{"$filter": f"job_uuid eq '{job_uuid}'"}
    ).json()
    assert (contact["first"], contact["last"], contact["email"], contact["type"]) == (
        "Quinn",
        booking.customer_name.split(" ", 1)[1],
        "quinn@example.com",
        "JOB",
    )
    (visit,) = get(
        sandbox_clean, "jobactivity.json", **{"$filter": f"job_uuid eq '{job_uuid}'"}
    ).json()
    # The sandbox account is in Sydney: the visit is written in its local time.
    assert (visit["start_date"], visit["end_date"]) == (
        "2026-06-02 08:30:00",
        "2026-06-02 10:00:00",
    )
    assert str(visit["activity_was_scheduled"]) == "1"


def test_a_redelivery_after_a_lost_acknowledgement_creates_nothing_twice(
    sm8_integration, sandbox_clean
):
    # The job create lands but answers 500: the delivery fails after the write.
    sandbox_control(
        sandbox_clean,
        "faults",
        {
            "provider": "servicem8",
            "queue": [
                {
                    "apply_then_error": True,
                    "status": 500,
                    "method": "POST",
                    "path": f"{API}/job.json",
                }
            ],
        },
    )
    booking = booking_create(integration=sm8_integration, data=booking_data())
    event = outbox_deliver(event_id=booking.outbox_event_id)
    assert event.status == "failed" and event.attempts == 1 and event.last_error
    job_uuid = record_uuid(booking.reference, "job")
    assert get(sandbox_clean, f"job/{job_uuid}.json").status_code == 200  # it did land

    OutboxEvent.objects.filter(pk=event.pk).update(next_attempt_at=None)  # due now
    event = outbox_deliver(event_id=event.pk)

    assert event.status == "sent" and event.attempts == 2, event.last_error
    assert event.response["created"] is False  # the job was found, not created again
    writes = applied(sandbox_clean)
    for role, obj in (
        ("company", "company"),
        ("job", "job"),
        ("jobcontact", "jobcontact"),
        ("jobactivity", "jobactivity"),
    ):
        assert writes.get(f"{obj}/{record_uuid(booking.reference, role)}") == 1, obj
    jobs = get(
        sandbox_clean,
        "job.json",
        **{"$filter": f"company_uuid eq '{event.response['customer_id']}'"},
    )
    assert len(jobs.json()) == 1
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CREATED and booking.external_job_id == job_uuid


def test_an_existing_company_of_that_name_is_the_client(sm8_integration, sandbox_clean):
    seeded = next(c for c in get(sandbox_clean, "company.json").json() if str(c["active"]) == "1")
    booking = booking_create(
        integration=sm8_integration,
        data=booking_data(customer_name=seeded["name"], scheduled_start="", scheduled_end=""),
    )
    event = outbox_deliver(event_id=booking.outbox_event_id)
    assert event.status == "sent", event.last_error
    assert event.response["customer_id"] == seeded["uuid"]
    assert (
        get(sandbox_clean, f"company/{record_uuid(booking.reference, 'company')}.json").status_code
        == 404
    )
    job = get(sandbox_clean, f"job/{event.response['job_id']}.json").json()
    assert job["company_uuid"] == seeded["uuid"]
    assert (
        get(sandbox_clean, "jobactivity.json", **{"$filter": f"job_uuid eq '{job['uuid']}'"}).json()
        == []
    )


def test_invalid_input_is_refused_with_field_details(sm8_integration):
    with pytest.raises(ValidationError) as caught:
        booking_create(
            integration=sm8_integration,
            data=booking_data(
                customer_name="",
                email="not-an-email",
                country="Australia",
                postal_code="2" * 30,
                scheduled_start="2026-06-02T08:30:00",
                options={"status": "Completed", "staff_uuid": "bob"},
            ),
        )
    errors = caught.value.message_dict
    assert set(errors) >= {
        "customer_name",
        "email",
        "country",
        "postal_code",
        "scheduled_start",
        "options.status",
        "options.staff_uuid",
    }
    assert Booking.objects.count() == 0 and OutboxEvent.objects.count() == 0


def test_every_request_is_valid_against_the_spec(sm8_integration, sandbox_clean, specs):
    openapi = specs[0]
    booking = booking_create(integration=sm8_integration, data=booking_data())
    provider = provider_for(sm8_integration)
    seen: list[requests.Response] = []
    provider.get_client().session.hooks["response"].append(lambda r, *a, **k: seen.append(r))
    first = provider.perform("job.create", dict(booking.outbox_event.payload), idempotency_key="k")
    again = provider.perform("job.create", dict(booking.outbox_event.payload), idempotency_key="k")
    assert first["created"] is True and again["created"] is False
    methods = {(r.request.method, r.request.path_url.split("?")[0].split("/")[3]) for r in seen}
    assert {("POST", "company.json"), ("POST", "job.json"), ("POST", "jobcontact.json")} <= methods
    assert ("POST", "jobactivity.json") in methods
    for response in seen:
        request, spec_response = conformance._as_spec(
            response, "https://api.servicem8.com", "/servicem8"
        )
        body = response.request.body or b""
        request.body = body.encode() if isinstance(body, str) else body
        request.content_type = response.request.headers.get("Content-Type", "application/json")
        openapi.validate_request(request)
        openapi.validate_response(request, spec_response)
