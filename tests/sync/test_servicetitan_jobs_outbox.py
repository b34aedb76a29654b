"""ServiceTitan job creation from bookings and job status changes through the outbox, against
the sandbox: delivered at least once (a lost acknowledgement makes the relay deliver again),
applied exactly once; a refused reference comes back as field errors on the event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from integrations.sandbox import accounts
from portal.bookings import booking_create
from portal.jobs_write import job_status_change
from portal.models import AuditLog, Booking, ReferenceRecord
from sync.models import OutboxEvent
from sync.outbox import outbox_deliver
from tests import factories
from tests.sync.conftest import sandbox_control, sandbox_stats
from tests.sync.test_servicetitan_outbox import Titan, applied, deliver_again

pytestmark = pytest.mark.django_db(transaction=True)
TENANT = accounts.SERVICETITAN_TENANT.tenant_id
JPM = f"/servicetitan/jpm/v2/tenant/{TENANT}"
CRM = f"/servicetitan/crm/v2/tenant/{TENANT}"
# Seeded catalogues: business units 1001–1005, job types 2001–2010, campaigns 3001–3006,
# technicians 7001–7018.
BUSINESS_UNIT, JOB_TYPE, CAMPAIGN, TECH = 1002, 2003, 3004, 7001
HOLD_REASON, CANCEL_REASON = 9_100_001, 9_200_001


@pytest.fixture
def titan(st_integration):
    st_integration.config = {
        **st_integration.config,
        "default_business_unit_id": BUSINESS_UNIT,
        "default_job_type_id": JOB_TYPE,
        "default_campaign_id": CAMPAIGN,
    }
    st_integration.save(update_fields=["config"])
    return st_integration


def booking_data(**changes) -> dict:
    data = {
        # The sandbox keeps records between tests (a reset restores its settings): each
        # booking is a new customer unless a test names one.
        "customer_name": f"Marisol Vega {uuid.uuid4().hex[:8]}",
        "email": "marisol@example.com",
        "phone": "(602) 555-0199",
        "street": "4410 N Central Ave",
        "street2": "Unit 12",
        "city": "Phoenix",
        "region": "AZ",
        "postal_code": "85012",
        "country": "US",
        "summary": "AC blowing warm air",
        "description": "Upstairs unit; gate code 4410.",
        "priority": "high",
        "scheduled_start": "2026-12-03T08:00:00-07:00",
        "scheduled_end": "2026-12-03T10:00:00-07:00",
        "options": {"technician_ids": [TECH]},
    }
    data.update(changes)
    return data


def book(integration, **changes) -> Booking:
    return booking_create(integration=integration, data=booking_data(**changes))


def st_writes(sandbox, prefix: str) -> list[str]:
    return [
        k for k in sandbox_stats(sandbox, "servicetitan")["writes_applied"] if k.startswith(prefix)
    ]


def test_a_booking_becomes_a_job_with_every_reference_it_requires(titan, sandbox_clean):
    st = Titan(sandbox_clean)
    booking = book(titan)
    event = outbox_deliver(event_id=booking.outbox_event_id)
    assert event.status == "sent", event.last_error
    assert event.response["created"] is True
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CREATED
    assert booking.external_job_id == event.response["job_id"]
    job = st.get("jpm", f"jobs/{booking.external_job_id}")
    assert str(job["customerId"]) == event.response["customer_id"]
    assert str(job["locationId"]) == event.response["location_id"]
    customer = st.get("crm", f"customers/{job['customerId']}")
    assert customer["name"] == booking.customer_name and customer["active"] is True
    location = st.get("crm", f"locations/{job['locationId']}")
    assert location["customerId"] == customer["id"]
    assert location["address"]["street"] == "4410 N Central Ave"
    assert location["address"]["unit"] == "Unit 12"
    assert location["address"]["zip"] == "85012"
    assert st.get("settings", f"business-units/{job['businessUnitId']}")["id"] == BUSINESS_UNIT
    assert st.get("jpm", f"job-types/{job['jobTypeId']}")["id"] == JOB_TYPE
    assert job["campaignId"] == CAMPAIGN
    assert job["priority"] == "High"
    assert job["summary"].startswith("AC blowing warm air")
    appointment = st.get("jpm", f"appointments/{job['firstAppointmentId']}")
    assert appointment["jobId"] == job["id"]
    start = datetime.fromisoformat(appointment["start"].replace("Z", "+00:00"))
    assert start == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert appointment["arrivalWindowEnd"].startswith("2026-12-03T17:00:00")
    assignments = st.get("dispatch", "appointment-assignments", jobId=job["id"])["data"]
    assert [a["technicianId"] for a in assignments] == [TECH]
    assert job["externalData"] == []  # only with our application guid:
    marked = st.get("jpm", f"jobs/{job['id']}", externalDataApplicationGuid=_guid())
    assert marked["externalData"] == [{"key": "fieldbridge_booking", "value": booking.reference}]


def _guid() -> str:
    from integrations.providers.servicetitan.writes import DEFAULT_APPLICATION_GUID

    return DEFAULT_APPLICATION_GUID


@pytest.mark.parametrize("lost", ["jobs", "customers"])
def test_a_lost_acknowledgement_creates_nothing_twice(titan, sandbox_clean, lost):
    path = f"{JPM}/jobs" if lost == "jobs" else f"{CRM}/customers"
    sandbox_control(
        sandbox_clean,
        "faults",
        {
            "provider": "servicetitan",
            "queue": [{"apply_then_error": True, "status": 500, "method": "POST", "path": path}],
        },
    )
    booking = book(titan)
    event = outbox_deliver(event_id=booking.outbox_event_id)
    assert event.status == "failed" and "500" in event.last_error
    assert len(st_writes(sandbox_clean, f"{lost}/")) == 1  # it landed
    event = deliver_again(event)
    assert event.status == "sent", event.last_error
    assert event.response["created"] is (lost == "customers")
    assert len(st_writes(sandbox_clean, "customers/")) == 1
    assert len(st_writes(sandbox_clean, "locations/")) == 1
    assert len(st_writes(sandbox_clean, "jobs/")) == 1
    writes = sandbox_stats(sandbox_clean, "servicetitan")["writes_by_path"]
    assert writes[f"POST {CRM}/customers"] == 1
    assert writes[f"POST {JPM}/jobs"] == 1
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CREATED
    assert booking.external_job_id == event.response["job_id"]
    # A replay by a person finds the same job again.
    OutboxEvent.objects.filter(pk=event.pk).update(status="pending")
    again = deliver_again(event)
    assert again.status == "sent" and again.response["job_id"] == event.response["job_id"]
    assert again.response["created"] is False
    assert len(st_writes(sandbox_clean, "jobs/")) == 1


def test_a_second_booking_of_the_same_customer_reuses_customer_and_location(titan, sandbox_clean):
    name = f"Ada Brooks {uuid.uuid4().hex[:8]}"
    first = outbox_deliver(event_id=book(titan, customer_name=name).outbox_event_id)
    second = book(titan, customer_name=name.upper(), summary="Second visit")
    second = outbox_deliver(event_id=second.outbox_event_id)
    assert first.status == second.status == "sent"
    assert first.response["customer_id"] == second.response["customer_id"]
    assert first.response["location_id"] == second.response["location_id"]
    assert first.response["job_id"] != second.response["job_id"]
    assert len(st_writes(sandbox_clean, "customers/")) == 1
    assert len(st_writes(sandbox_clean, "jobs/")) == 2


def test_a_bad_reference_comes_back_as_field_errors_on_the_event(titan, sandbox_clean):
    """A wrong business unit or job type is read (GET by id) before anything is created: the
    event names it and the sandbox gets no customer, location or job (issue #5 review)."""
    booking = book(titan, options={"business_unit_id": 999_999, "job_type_id": 999_997})
    event = outbox_deliver(event_id=booking.outbox_event_id)
    assert event.status == "dead" and event.attempts == 1
    assert "Business unit 999999 does not exist" in event.field_errors["business_unit_id"][0]
    assert "Job type 999997 does not exist" in event.field_errors["job_type_id"][0]
    booking.refresh_from_db()
    assert booking.status == Booking.Status.FAILED
    assert sandbox_stats(sandbox_clean, "servicetitan")["writes_total"] == 0
    for prefix in ("customers/", "locations/", "jobs/"):
        assert st_writes(sandbox_clean, prefix) == []


def test_a_bad_campaign_is_named_by_the_job_post(titan, sandbox_clean):
    """Campaigns have no GET in the specs we hold: the job POST's 400 names it."""
    booking = book(titan, options={"campaign_id": 999_998})
    event = outbox_deliver(event_id=booking.outbox_event_id)
    assert event.status == "dead" and event.attempts == 1
    assert "Campaign 999998" in event.field_errors["campaignId"][0]
    assert st_writes(sandbox_clean, "jobs/") == []


def test_a_missing_reference_is_refused_before_any_write(st_integration, sandbox_clean):
    booking = book(st_integration, options={"business_unit_id": BUSINESS_UNIT})
    event = outbox_deliver(event_id=booking.outbox_event_id)
    assert event.status == "dead"
    assert set(event.field_errors) == {"job_type_id", "campaign_id"}
    assert "default_campaign_id" in event.field_errors["campaign_id"][0]
    assert sandbox_stats(sandbox_clean, "servicetitan")["writes_total"] == 0


@pytest.fixture
def booked_job(titan, sandbox_clean):
    """A job created from a booking, its local (synced) row, and the reasons to use."""
    for obj, rid in (("job-hold-reasons", HOLD_REASON), ("job-cancel-reasons", CANCEL_REASON)):
        sandbox_control(
            sandbox_clean,
            f"records/servicetitan/{obj}",
            {"id": rid, "data": {"name": f"Reason {rid}"}, "active": True},
        )
    event = outbox_deliver(event_id=book(titan).outbox_event_id)
    assert event.status == "sent", event.last_error
    return factories.JobFactory(integration=titan, external_id=event.response["job_id"])


def status_of(sandbox, job) -> str:
    return Titan(sandbox).get("jpm", f"jobs/{job.external_id}")["jobStatus"]


@pytest.mark.parametrize(
    ("changes", "operations"),
    [
        ([("hold", HOLD_REASON, "Hold")], ["hold"]),
        ([("complete", None, "Completed")], ["complete"]),
        (
            [("cancel", CANCEL_REASON, "Canceled"), ("remove_cancellation", None, "Scheduled")],
            ["cancel", "remove-cancellation"],
        ),
    ],
)
def test_each_status_change_takes_effect_once_when_retried(
    booked_job, sandbox_clean, changes, operations
):
    for (change, reason, status), operation in zip(changes, operations, strict=True):
        before = applied(sandbox_clean, f"jobs/{booked_job.external_id}")
        path = f"{JPM}/jobs/{booked_job.external_id}/{operation}"
        sandbox_control(
            sandbox_clean,
            "faults",
            {
                "provider": "servicetitan",
                "queue": [{"apply_then_error": True, "status": 500, "method": "PUT", "path": path}],
            },
        )
        event = job_status_change(job=booked_job, change=change, reason_id=reason, memo="Test")
        event = outbox_deliver(event_id=event.pk)
        assert event.status == "failed" and "500" in event.last_error
        assert status_of(sandbox_clean, booked_job) == status  # it landed
        event = deliver_again(event)
        assert event.status == "sent", event.last_error
        assert event.response == {
            "job_id": booked_job.external_id,
            "change": change,
            "status": status,
            "already_done": True,
        }
        assert applied(sandbox_clean, f"jobs/{booked_job.external_id}") == before + 1
        writes = sandbox_stats(sandbox_clean, "servicetitan")["writes_by_path"]
        assert writes[f"PUT {path}"] == 1
        entry = AuditLog.objects.get(action=f"job.{change}", target_id=str(booked_job.pk))
        assert entry.after["outbox_event_id"] == event.pk


def test_an_impossible_change_goes_dead_as_a_conflict(booked_job, sandbox_clean):
    cancel = job_status_change(job=booked_job, change="cancel", reason_id=CANCEL_REASON)
    assert outbox_deliver(event_id=cancel.pk).status == "sent"
    complete = outbox_deliver(event_id=job_status_change(job=booked_job, change="complete").pk)
    assert complete.status == "dead" and "the job is Canceled" in complete.last_error
    assert status_of(sandbox_clean, booked_job) == "Canceled"


def test_a_refused_reason_comes_back_as_a_field_error(booked_job, sandbox_clean):
    event = job_status_change(job=booked_job, change="hold", reason_id=CANCEL_REASON)
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "dead" and "reasonId" in event.field_errors
    assert status_of(sandbox_clean, booked_job) == "Scheduled"


def test_the_service_validates_before_queueing(booked_job):
    with pytest.raises(ValidationError) as caught:
        job_status_change(job=booked_job, change="pause")
    assert "change" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        job_status_change(job=booked_job, change="cancel", memo="x" * 501)
    assert set(caught.value.message_dict) == {"reason_id", "memo"}
    ReferenceRecord.objects.create(
        integration=booked_job.integration,
        external_id=f"cancel_reason:{CANCEL_REASON}",
        kind="cancel_reason",
        name="Customer cancelled",
        raw={},
    )
    with pytest.raises(ValidationError) as caught:
        job_status_change(job=booked_job, change="cancel", reason_id=123)
    assert "not an active cancel reason" in caught.value.message_dict["reason_id"][0]
    assert job_status_change(job=booked_job, change="cancel", reason_id=CANCEL_REASON).payload == {
        "job_external_id": booked_job.external_id,
        "change": "cancel",
        "reason_id": CANCEL_REASON,
        "memo": "",
    }
    assert OutboxEvent.objects.filter(action="job.status").count() == 1
