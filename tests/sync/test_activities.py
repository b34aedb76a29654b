"""Job visits (JobActivity) and their staff: the writer's many-to-many step on both write
paths, and each provider synced from the sandbox into a client's job page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.template.defaultfilters import date as date_filter
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.base import ExternalClient, ExternalJob, ExternalJobActivity, ExternalStaff
from portal.models import JobActivity, Staff
from sync import writers
from sync.engine import sync_integration
from sync.models import SyncRun
from sync.writers import write_records
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["copy", "bulk_create"])
def write_path(request, monkeypatch):
    if request.param == "copy":
        if connection.vendor != "postgresql":
            pytest.skip("COPY and merge is the PostgreSQL path")
    else:
        monkeypatch.setattr(writers, "_uses_copy", lambda: False)
    return request.param


def staff(ext: str, first: str = "Sam") -> ExternalStaff:
    return ExternalStaff(provider="servicem8", external_id=ext, raw={"uuid": ext}, first_name=first)


def visit(ext: str, *people: str, job: str = "j1", at: datetime = T0) -> ExternalJobActivity:
    return ExternalJobActivity(
        provider="servicem8",
        external_id=ext,
        raw={"uuid": ext, "staff": list(people)},
        remote_updated_at=at,
        job_external_id=job,
        staff_external_ids=people,
        starts_at=T0 + timedelta(days=1),
        ends_at=T0 + timedelta(days=1, hours=2),
        status="Scheduled",
    )


def base_records() -> list:
    return [
        ExternalClient(provider="servicem8", external_id="c1", raw={"uuid": "c1"}, name="Acme"),
        ExternalJob(
            provider="servicem8", external_id="j1", raw={"uuid": "j1"}, client_external_id="c1"
        ),
        staff("s1", "Ann"),
        staff("s2", "Bob"),
        staff("s3", "Cy"),
    ]


def linked(integration) -> dict[str, set[str]]:
    return {
        a.external_id: {s.external_id for s in a.staff.all()}
        for a in JobActivity.objects.filter(integration=integration).prefetch_related("staff")
    }


def test_staff_links_are_set_changed_and_cleared(integration, write_path):
    write_records(integration.pk, base_records())
    result = write_records(integration.pk, [visit("a1", "s1", "s2"), visit("a2", "s3")])
    assert result.created == 2 and not result.held
    activity = JobActivity.objects.get(integration=integration, external_id="a1")
    assert activity.job.external_id == "j1"
    assert activity.status == "Scheduled" and activity.starts_at == T0 + timedelta(days=1)
    assert linked(integration) == {"a1": {"s1", "s2"}, "a2": {"s3"}}
    later = T0 + timedelta(hours=1)
    write_records(integration.pk, [visit("a1", "s2", "s3", at=later), visit("a2", at=later)])
    assert linked(integration) == {"a1": {"s2", "s3"}, "a2": set()}


def test_unknown_staff_are_ignored_not_held(integration, write_path):
    write_records(integration.pk, base_records())
    result = write_records(integration.pk, [visit("a1", "s1", "nobody")])
    assert result.created == 1 and not result.held and not result.failed
    assert linked(integration) == {"a1": {"s1"}}


def test_a_visit_waits_for_its_job(integration, write_path):
    write_records(integration.pk, base_records())
    result = write_records(integration.pk, [visit("a1", "s1", job="j-later")])
    assert [missing for _, missing in result.held] == ["job j-later"]
    assert linked(integration) == {}


def test_staff_that_arrive_later_are_linked_by_the_next_copy(integration, write_path):
    records = [r for r in base_records() if r.external_id != "s3"]
    write_records(integration.pk, records)
    write_records(integration.pk, [visit("a1", "s3")])
    assert linked(integration) == {"a1": set()}
    write_records(integration.pk, [staff("s3")])
    # The same copy again: unchanged, but its links are still brought up to date.
    result = write_records(integration.pk, [visit("a1", "s3")])
    assert result.unchanged == 1
    assert linked(integration) == {"a1": {"s3"}}


def test_the_links_take_a_fixed_number_of_queries(integration, write_path):
    write_records(integration.pk, base_records())
    write_records(integration.pk, [visit("a0", "s1")])

    def queries(count: int) -> int:
        page = [visit(f"b{count}-{i}", "s1", "s2") for i in range(count)]
        with CaptureQueriesContext(connection) as captured:
            write_records(integration.pk, page)
        return len(captured)

    assert queries(3) == queries(40)  # the same statements whatever the page's size
    assert Staff.objects.get(integration=integration, external_id="s1").activities.count() == 44


# --- end to end: a provider's visits on a client's job page --------------------------------------


def assert_job_page_shows_a_visit(client, integration) -> None:
    activity = (
        JobActivity.objects.filter(
            integration=integration,
            remote_deleted_at__isnull=True,
            staff__isnull=False,
            starts_at__isnull=False,
            job__remote_deleted_at__isnull=True,
            job__client__remote_deleted_at__isnull=True,
        )
        .select_related("job__client")
        .first()
    )
    assert activity is not None, "no synced visit with a technician"
    person = activity.staff.first()
    assert str(person).strip() and str(person) != person.external_id
    user = factories.UserFactory()
    factories.ClientMembershipFactory(user=user, client=activity.job.client)
    client.force_login(user)
    response = client.get(reverse("portal:job-detail", args=[activity.job.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert date_filter(activity.starts_at, "D j M Y, H:i") in page
    assert str(person) in page
    assert "No visits are scheduled yet." not in page
    assert "Not assigned yet" not in page


@pytest.mark.django_db(transaction=True)
def test_servicem8_visits_reach_the_job_page(sm8_integration, client):
    runs = sync_integration(integration_id=sm8_integration.pk, mode="full")
    entities = [r.entity for r in runs]
    assert entities.index("activities") > entities.index("jobs")
    assert all(SyncRun.objects.get(pk=r.pk).status == "success" for r in runs)
    activities = JobActivity.objects.filter(integration=sm8_integration)
    assert activities.exists()
    # Every visit the sandbox seeds is one staff member's.
    assert all(a.staff.count() <= 1 for a in activities.prefetch_related("staff"))
    assert_job_page_shows_a_visit(client, sm8_integration)


@pytest.mark.django_db(transaction=True)
def test_servicetitan_appointments_reach_the_job_page(st_integration, client):
    runs = sync_integration(integration_id=st_integration.pk, mode="full")
    core = ["clients", "staff", "jobs", "appointments", "quotes"]
    assert [r.entity for r in runs if r.entity in core] == core
    assert all(SyncRun.objects.get(pk=r.pk).status == "success" for r in runs)
    activities = JobActivity.objects.filter(integration=st_integration)
    assert activities.exists()
    assert not activities.filter(status="Canceled", staff__isnull=False).exists()
    assert_job_page_shows_a_visit(client, st_integration)
