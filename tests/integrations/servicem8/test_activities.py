"""ServiceM8 job activities (`jobactivity`): scheduled visits mapped to ExternalJobActivity,
read page by page and incrementally like every other object."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import responses

from integrations import registry
from integrations.base import ExternalJobActivity, ProviderContext
from integrations.http import RetryPolicy
from integrations.providers.servicem8 import mapping

HERE = Path(__file__).resolve().parent
API = "https://api.servicem8.com/api_1.0"
SYDNEY = ZoneInfo("Australia/Sydney")
JOB = "5f3c6b8e-2a41-4d7b-9e10-6c2f1a9b3d47"
STAFF = "c0a8012e-4b7d-4f1a-9e3c-2d5f6a7b8c9d"


def fixture(name: str) -> dict:
    return json.loads((HERE / "fixtures" / f"{name}.json").read_text())


def provider():
    return registry.get("servicem8")(
        ProviderContext(
            integration_id=1,
            credentials={"api_key": "sm8-key"},
            config={"timezone": "Australia/Sydney"},
            rate_limit_enabled=False,
            retry=RetryPolicy(attempts=1),
        )
    )


def test_a_scheduled_visit_maps_with_local_times_as_utc():
    raw = fixture("jobactivity__scheduled_visit")
    activity = mapping.jobactivity_to_activity(raw, tz=SYDNEY)
    assert isinstance(activity, ExternalJobActivity)
    assert activity.external_id == raw["uuid"]
    assert activity.job_external_id == JOB
    assert activity.staff_external_ids == (STAFF,)
    # Sydney is UTC+11 in March (daylight time).
    assert activity.starts_at == datetime(2026, 3, 2, 21, 30, tzinfo=UTC)
    assert activity.ends_at == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    assert activity.remote_updated_at == datetime(2026, 3, 1, 22, 15, tzinfo=UTC)
    assert activity.status == "Scheduled"
    assert activity.notes == ""
    assert not activity.deleted
    assert activity.raw is raw


def test_recorded_time_is_not_a_visit():
    assert mapping.jobactivity_to_activity(fixture("jobactivity__recorded_time"), tz=SYDNEY) is None
    assert provider().map_record("activities", fixture("jobactivity__recorded_time")) == ()


def test_a_deleted_unassigned_visit_without_an_end():
    activity = mapping.jobactivity_to_activity(
        fixture("jobactivity__deleted_unassigned"), tz=SYDNEY
    )
    assert activity.deleted
    assert activity.staff_external_ids == ()
    assert activity.starts_at == datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    assert activity.ends_at is None


def test_an_end_before_the_start_is_dropped():
    raw = {**fixture("jobactivity__scheduled_visit"), "end_date": "2026-03-03 07:00:00"}
    activity = mapping.jobactivity_to_activity(raw, tz=SYDNEY)
    assert activity.starts_at is not None and activity.ends_at is None


def test_activities_come_after_jobs_and_staff():
    entities = registry.get("servicem8").entities
    assert entities.index("activities") > entities.index("jobs") > entities.index("staff")
    assert registry.get("servicem8").objects["activities"] == "jobactivity"
    assert "read_schedule" in registry.get("servicem8").oauth_scopes.split()


@responses.activate
def test_activities_are_paged_and_filtered_like_the_other_objects():
    page_one = [fixture("jobactivity__scheduled_visit"), fixture("jobactivity__recorded_time")]
    page_two = [fixture("jobactivity__deleted_unassigned")]
    responses.get(f"{API}/jobactivity.json", json=page_one, headers={"x-next-cursor": "abc"})
    responses.get(f"{API}/jobactivity.json", json=page_two)
    since = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    records = list(provider().iter_records("activities", updated_since=since))
    assert [r.external_id for r in records] == [page_one[0]["uuid"], page_two[0]["uuid"]]
    queries = [parse_qs(urlsplit(call.request.url).query) for call in responses.calls]
    assert [q["cursor"] for q in queries] == [["-1"], ["abc"]]
    # Inclusive: one second before the cursor, in the account's local time (UTC+11).
    assert queries[0]["$filter"] == ["edit_date gt '2026-03-01 10:59:59'"]
