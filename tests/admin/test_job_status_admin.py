"""The Job admin's "Change status at the provider" action: queues `job.status` outbox events
through `portal.jobs_write.job_status_change` for the user's own company's jobs only."""

import pytest
from django.urls import reverse

from portal.models import AuditLog, TeamMembership
from sync.models import OutboxEvent
from tests import factories

pytestmark = pytest.mark.django_db
URL = reverse("admin:portal_job_changelist")


@pytest.fixture
def integration():
    return factories.IntegrationFactory(provider="servicetitan")


def act(client, jobs, **form):
    return client.post(
        URL,
        {"action": "change_status", "_selected_action": [j.pk for j in jobs], **form},
        follow=True,
    )


@pytest.mark.parametrize("role", [TeamMembership.Role.ADMIN, TeamMembership.Role.DISPATCHER])
def test_a_team_member_queues_a_status_change(client, integration, role):
    member = factories.TeamMembershipFactory(company=integration.company, role=role)
    client.force_login(member.user)
    job = factories.JobFactory(integration=integration, external_id="200000077")
    response = act(client, [job], change="cancel", reason_id="61", memo="Customer called")
    assert response.status_code == 200
    assert "queued for 1 job" in response.content.decode()
    event = OutboxEvent.objects.get(action="job.status")
    assert event.payload == {
        "job_external_id": "200000077",
        "change": "cancel",
        "reason_id": 61,
        "memo": "Customer called",
    }
    entry = AuditLog.objects.get(action="job.cancel")
    assert entry.actor == member.user and entry.after["outbox_event_id"] == event.pk


def test_bad_input_is_shown_and_nothing_is_queued(client, integration):
    client.force_login(factories.TeamMembershipFactory(company=integration.company).user)
    job = factories.JobFactory(integration=integration, external_id="200000078")
    response = act(client, [job], change="hold", reason_id="", memo="")
    assert "reason_id: A hold reason is required" in response.content.decode()
    response = act(client, [job], change="", reason_id="", memo="")
    assert "Choose the status change." in response.content.decode()
    assert not OutboxEvent.objects.exists()


def test_another_companys_jobs_are_out_of_reach(client, integration):
    client.force_login(factories.TeamMembershipFactory().user)  # another company
    job = factories.JobFactory(integration=integration, external_id="200000079")
    act(client, [job], change="complete")
    assert not OutboxEvent.objects.exists()
