"""Configuration changes made in the admin are audited (actor, company, before/after without
secrets, ip) and the audit log is filterable and company-scoped."""

from __future__ import annotations

import pytest

from portal.models import AuditLog, TeamMembership
from tests.admin.conftest import SECRET_A, change_url, changelist_url

pytestmark = pytest.mark.django_db


def test_a_role_change_is_audited(admin_a, tenant_a):
    membership = TeamMembership.objects.get(user=tenant_a.dispatcher)
    response = admin_a.post(change_url(membership), {"role": "admin"}, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 302
    entry = AuditLog.objects.get(action="teammembership.updated")
    assert entry.company == tenant_a.company and entry.actor == tenant_a.admin
    assert entry.before == {"role": "dispatcher"} and entry.after == {"role": "admin"}
    assert entry.ip_address == "192.0.2.1"


def test_deleting_through_the_admin_is_audited(admin_a, tenant_a):
    membership = TeamMembership.objects.get(user=tenant_a.dispatcher)
    admin_a.post(change_url(membership).replace("change/", "delete/"), {"post": "yes"})
    entry = AuditLog.objects.get(action="teammembership.deleted")
    assert entry.before["role"] == "dispatcher" and entry.company == tenant_a.company


def test_the_audit_log_is_filterable_and_never_shows_secrets(admin_a, tenant_a):
    admin_a.post(
        change_url(tenant_a.integration).replace("change/", "credentials/"),
        {"credentials": '{"api_key": "sm8-rotated-secret-1"}'},
    )
    AuditLog.objects.create(
        company=tenant_a.company, action="other.thing", target_type="x", target_id="1"
    )
    listing = admin_a.get(changelist_url(AuditLog), {"action": "integration.credentials_replaced"})
    assert [e.action for e in listing.context["cl"].result_list] == [
        "integration.credentials_replaced"
    ]
    entry = AuditLog.objects.get(action="integration.credentials_replaced")
    page = admin_a.get(change_url(entry)).content.decode()
    assert "sm8-rotated-secret-1" not in page and SECRET_A not in page
    assert "api_key" in page  # the key's name, as a record of what was replaced
