"""ServiceTitan appointments (jpm `appointments`) mapped to ExternalJobActivity, with their
technicians from dispatch `appointment-assignments`: one assignments call per page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from integrations import registry
from integrations.auth import MemoryTokenStore
from integrations.base import ExternalJobActivity, ProviderContext
from integrations.http import RetryPolicy
from integrations.providers.servicetitan import mapping
from integrations.providers.servicetitan.provider import APPOINTMENT_PAGE_SIZE

HERE = Path(__file__).resolve().parent
API = "https://api.servicetitan.io"
TOKEN_URL = "https://auth.servicetitan.io/connect/token"
JPM = f"{API}/jpm/v2/tenant/42/appointments"
ASSIGNMENTS = f"{API}/dispatch/v2/tenant/42/appointment-assignments"


def fixture(name: str) -> dict:
    return json.loads((HERE / "fixtures" / f"{name}.json").read_text())


def provider():
    return registry.get("servicetitan")(
        ProviderContext(
            integration_id=1,
            credentials={
                "tenant_id": "42",
                "client_id": "cid",
                "client_secret": "secret",
                "app_key": "ak1.test",
            },
            token_store=MemoryTokenStore(),
            rate_limit_enabled=False,
            retry=RetryPolicy(attempts=1),
        )
    )


def with_assignments(raw: dict, page: dict) -> dict:
    return {**raw, mapping.ASSIGNMENTS_KEY: page["data"]}


def test_an_appointment_maps_with_its_technicians():
    raw = with_assignments(
        fixture("appointment__dispatched_two_techs"),
        fixture("appointment_assignments__dispatched_two_techs"),
    )
    activity = mapping.appointment_to_activity(raw)
    assert isinstance(activity, ExternalJobActivity)
    assert activity.external_id == "300000123"
    assert activity.job_external_id == "200000045"
    assert activity.staff_external_ids == ("7004", "7009")
    assert activity.starts_at == datetime(2026, 3, 3, 15, 30, tzinfo=UTC)
    assert activity.ends_at == datetime(2026, 3, 3, 17, 30, tzinfo=UTC)
    assert activity.status == "Dispatched"
    assert activity.notes == "Dog in yard."
    assert activity.remote_updated_at.replace(microsecond=0) == datetime(
        2026, 3, 3, 14, 58, 40, tzinfo=UTC
    )
    assert not activity.deleted


def test_a_cancelled_appointment_keeps_its_record_and_has_no_technician():
    activity = mapping.appointment_to_activity(fixture("appointment__canceled"))
    assert activity.status == "Canceled"
    assert activity.staff_external_ids == ()
    assert activity.notes == ""
    assert not activity.deleted


def test_an_appointment_without_a_job_cannot_be_mapped():
    with pytest.raises(ValueError):
        mapping.appointment_to_activity({**fixture("appointment__canceled"), "jobId": None})


def test_appointments_come_after_jobs_and_staff():
    entities = registry.get("servicetitan").entities
    assert entities.index("appointments") > entities.index("jobs") > entities.index("staff")


@responses.activate
def test_one_assignments_call_per_page_of_appointments():
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 900})
    first, second = fixture("appointment__dispatched_two_techs"), fixture("appointment__canceled")
    full_page = [{**first, "id": first["id"] + i} for i in range(APPOINTMENT_PAGE_SIZE)]
    responses.get(
        JPM, json={"page": 1, "pageSize": APPOINTMENT_PAGE_SIZE, "hasMore": True, "data": full_page}
    )
    responses.get(ASSIGNMENTS, json=fixture("appointment_assignments__dispatched_two_techs"))
    responses.get(JPM, json={"page": 2, "pageSize": 150, "hasMore": False, "data": [second]})
    responses.get(ASSIGNMENTS, json={"page": 1, "pageSize": 5000, "hasMore": False, "data": []})
    since = datetime(2026, 3, 1, tzinfo=UTC)
    records = list(provider().iter_records("appointments", updated_since=since))
    assert len(records) == APPOINTMENT_PAGE_SIZE + 1
    assert records[0].staff_external_ids == ("7004", "7009")
    assert all(r.staff_external_ids == () for r in records[1:])
    calls = [c for c in responses.calls if c.request.method == "GET"]
    assert [urlsplit(c.request.url).path.rsplit("/", 1)[1] for c in calls] == [
        "appointments",
        "appointment-assignments",
        "appointments",
        "appointment-assignments",
    ]
    listing = parse_qs(urlsplit(calls[0].request.url).query)
    assert listing["modifiedOnOrAfter"] == ["2026-03-01T00:00:00+00:00"]
    assert listing["pageSize"] == [str(APPOINTMENT_PAGE_SIZE)]
    assert "active" not in listing  # the appointments list declares no `active`
    ids = parse_qs(urlsplit(calls[1].request.url).query)["appointmentIds"][0].split(",")
    assert ids == [str(first["id"] + i) for i in range(APPOINTMENT_PAGE_SIZE)]
    assert parse_qs(urlsplit(calls[3].request.url).query)["appointmentIds"] == ["300000124"]


@responses.activate
def test_a_refetched_appointment_comes_with_its_assignments():
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 900})
    responses.get(f"{JPM}/300000123", json=fixture("appointment__dispatched_two_techs"))
    responses.get(ASSIGNMENTS, json=fixture("appointment_assignments__dispatched_two_techs"))
    raw = provider().fetch_record("appointments", "300000123")
    assert [a["technicianId"] for a in raw[mapping.ASSIGNMENTS_KEY]] == [7004, 7009]
    assert provider().map_record("appointments", raw).staff_external_ids == ("7004", "7009")
