"""A company's team sees and manages only its own company's data in the admin, without any
Django model permission; secrets never reach a page."""

from __future__ import annotations

import pytest

from integrations.models import Integration
from portal.models import AuditLog, Client, TeamMembership
from sync.models import OutboxEvent, SyncError
from tests import factories
from tests.admin.conftest import (
    SECRET_A,
    SECRET_B,
    admin_url,
    change_url,
    changelist_url,
)

pytestmark = pytest.mark.django_db


def assert_hidden(response) -> None:
    """Another company's object answers like a missing one: a redirect to the admin index
    with "doesn't exist", or a 404 — never its page."""
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"].rstrip("/").endswith(admin_url("").rstrip("/"))


def test_a_company_admin_cannot_see_another_companys_integration_or_its_secrets(
    admin_a, tenant_a, tenant_b
):
    other = tenant_b.integration
    page = change_url(other)
    for path in ("change/", "history/", "delete/"):
        assert_hidden(admin_a.get(page.replace("change/", path)))
    assert admin_a.get(page.replace("change/", "credentials/")).status_code == 404
    assert admin_a.post(page.replace("change/", "test-connection/")).status_code == 404
    assert admin_a.post(f"/integrations/oauth/{other.pk}/connect/").status_code == 404
    listing = admin_a.get(changelist_url(Integration))
    assert listing.status_code == 200
    body = listing.content.decode()
    assert tenant_a.integration.name in body
    assert other.name not in body and tenant_b.company.name not in body
    assert SECRET_A not in body and SECRET_B not in body
    # Searching or filtering for it finds nothing either.
    found = admin_a.get(changelist_url(Integration), {"q": "Bravo"}).content.decode()
    assert other.name not in found
    filtered = admin_a.get(changelist_url(Integration), {"company__id__exact": tenant_b.company.pk})
    assert other.name not in filtered.content.decode()
    # Editing it by a POST is refused the same way, and changes nothing.
    posted = admin_a.post(change_url(other), {"name": "hijacked"})
    assert_hidden(posted)
    other.refresh_from_db()
    assert other.name != "hijacked"


def test_the_own_integration_page_never_shows_the_secret(admin_a, tenant_a):
    response = admin_a.get(change_url(tenant_a.integration))
    assert response.status_code == 200
    body = response.content.decode()
    assert SECRET_A not in body
    assert "Credentials set" in body and "api_key" in body  # whether, and which keys: no values
    assert 'role="status"' in body and "Test connection" in body
    for path in ("history/", "credentials/"):
        page = admin_a.get(change_url(tenant_a.integration).replace("change/", path))
        assert page.status_code == 200 and SECRET_A not in page.content.decode()


def test_a_team_admin_needs_no_django_permissions(admin_a, tenant_a):
    assert not tenant_a.admin.user_permissions.exists() and not tenant_a.admin.is_superuser
    index = admin_a.get(admin_url(""))
    assert index.status_code == 200
    body = index.content.decode()
    for label in ("Integrations", "Sync errors", "Outbox events", "Audit logs", "Clients"):
        assert label in body


def test_synced_records_and_sync_data_are_scoped(admin_a, tenant_a, tenant_b):
    mine = factories.ClientFactory(integration=tenant_a.integration, name="Alice Own")
    theirs = factories.ClientFactory(integration=tenant_b.integration, name="Zed Foreign")
    SyncError.objects.create(
        integration=tenant_b.integration, entity="jobs", external_id="ext-b", message="boom-b"
    )
    SyncError.objects.create(
        integration=tenant_a.integration, entity="jobs", external_id="ext-a", message="boom-a"
    )
    body = admin_a.get(changelist_url(Client)).content.decode()
    assert mine.name in body and theirs.name not in body
    # The list filters offer only the user's own companies and integrations.
    assert tenant_b.company.name not in body and tenant_b.integration.name not in body
    assert_hidden(admin_a.get(change_url(theirs)))
    errors = admin_a.get(changelist_url(SyncError)).content.decode()
    assert "ext-a" in errors and "ext-b" not in errors
    assert tenant_b.integration.name not in errors


def test_a_dispatcher_may_look_but_not_change(client, tenant_a):
    client.force_login(tenant_a.dispatcher)
    assert client.get(change_url(tenant_a.integration)).status_code == 200
    page = client.get(change_url(tenant_a.integration)).content.decode()
    assert "Test connection" not in page and SECRET_A not in page
    assert client.get(admin_url("integrations/integration/add/")).status_code == 403
    response = client.post(change_url(tenant_a.integration), {"name": "renamed"})
    assert response.status_code == 403
    assert (
        client.post(
            change_url(tenant_a.integration).replace("change/", "test-connection/")
        ).status_code
        == 403
    )
    # Audit entries are for team admins.
    assert client.get(changelist_url(AuditLog)).status_code == 403


def test_staff_without_a_membership_see_no_company_data(client, tenant_a):
    loner = factories.UserFactory(is_staff=True)
    client.force_login(loner)
    assert client.get(changelist_url(Integration)).status_code == 403
    response = client.get(change_url(tenant_a.integration))
    assert response.status_code == 403 and SECRET_A not in response.content.decode()


def test_operators_see_every_company(client, operator, tenant_a, tenant_b):
    client.force_login(operator)
    body = client.get(changelist_url(Integration)).content.decode()
    assert tenant_a.integration.name in body and tenant_b.integration.name in body
    page = client.get(change_url(tenant_b.integration)).content.decode()
    assert SECRET_B not in page


def test_memberships_and_audit_log_are_scoped(admin_a, tenant_a, tenant_b):
    AuditLog.objects.create(
        company=tenant_b.company, action="secret.b", target_type="x", target_id="1"
    )
    AuditLog.objects.create(
        company=tenant_a.company, action="visible.a", target_type="x", target_id="1"
    )
    logs = admin_a.get(changelist_url(AuditLog)).content.decode()
    assert "visible.a" in logs and "secret.b" not in logs
    teams = admin_a.get(changelist_url(TeamMembership)).content.decode()
    assert tenant_a.dispatcher.email in teams and tenant_b.admin.email not in teams
    assert_hidden(admin_a.get(change_url(tenant_b.company)))
    assert admin_a.get(change_url(tenant_a.company)).status_code == 200


def test_outbox_events_of_another_company_are_hidden(admin_a, tenant_a, tenant_b):
    event = OutboxEvent.objects.create(
        integration=tenant_b.integration,
        action="quote.decide",
        aggregate_type="quote",
        aggregate_id="b-agg-1",
        idempotency_key="k-b",
        status=OutboxEvent.Status.DEAD,
    )
    assert "b-agg-1" not in admin_a.get(changelist_url(OutboxEvent)).content.decode()
    assert_hidden(admin_a.get(change_url(event)))
    # A retry aimed at it by id does nothing.
    admin_a.post(
        changelist_url(OutboxEvent),
        {"action": "retry_selected", "_selected_action": [event.pk]},
    )
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DEAD
