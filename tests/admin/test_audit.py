"""Configuration changes made in the admin are audited (actor, company, before/after without
secrets, ip) and the audit log is filterable and company-scoped."""

from __future__ import annotations

from unittest import mock

import pytest
from django_celery_beat.models import PeriodicTask

from portal.models import AuditLog, CompanySkill, ServiceArea, Skill, TeamMembership
from sync import imports
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


# -- inlines, schedules, addresses --------------------------------------------------------------


def change_form_data(response) -> dict:
    """What the browser would post back from an admin change page, unchanged: the main form's
    and every inline formset's fields (with their management forms)."""
    data: dict = {}

    def add(form) -> None:
        for bound in form:
            value = bound.value()
            if isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            elif value is not None:
                data[bound.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def test_changes_through_the_company_pages_inlines_are_audited(admin_a, tenant_a):
    """A team admin promotes the dispatcher, adds a service area, changes a skill's level and
    removes another, all through the Company page: one entry each, under the company."""
    company = tenant_a.company
    pipes = Skill.objects.create(name="Pipes", slug="pipes")
    boilers = Skill.objects.create(name="Boilers", slug="boilers")
    kept = CompanySkill.objects.create(company=company, skill=pipes, level="basic")
    removed = CompanySkill.objects.create(company=company, skill=boilers, level="expert")
    membership = TeamMembership.objects.get(user=tenant_a.dispatcher)
    page = admin_a.get(change_url(company))
    data = change_form_data(page)

    def prefix(model) -> str:
        for inline in page.context["inline_admin_formsets"]:
            if inline.formset.model is model:
                return inline.formset.prefix
        raise AssertionError(model)

    def row(model, pk) -> str:
        p = prefix(model)
        index = next(
            i for i in range(int(data[f"{p}-TOTAL_FORMS"])) if data.get(f"{p}-{i}-id") == str(pk)
        )
        return f"{p}-{index}"

    data[f"{row(TeamMembership, membership.pk)}-role"] = "admin"
    data[f"{row(CompanySkill, kept.pk)}-level"] = "expert"
    data[f"{row(CompanySkill, removed.pk)}-DELETE"] = "on"
    areas = prefix(ServiceArea)
    data[f"{areas}-TOTAL_FORMS"] = "1"
    data[f"{areas}-0-zip_code"] = "90210"
    data[f"{areas}-0-company"] = str(company.pk)

    response = admin_a.post(change_url(company), data, REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    membership.refresh_from_db()
    assert membership.role == "admin"  # the change happened…

    entries = {e.action: e for e in AuditLog.objects.exclude(action="company.updated")}
    assert set(entries) == {
        "teammembership.updated",
        "companyskill.updated",
        "companyskill.deleted",
        "servicearea.created",
    }  # …and each inline change is on record
    for entry in entries.values():
        assert (entry.company, entry.actor, entry.ip_address) == (
            company,
            tenant_a.admin,
            "192.0.2.7",
        )
    promoted = entries["teammembership.updated"]
    assert promoted.target_id == str(membership.pk)
    assert (promoted.before, promoted.after) == ({"role": "dispatcher"}, {"role": "admin"})
    assert (entries["companyskill.updated"].before, entries["companyskill.updated"].after) == (
        {"level": "basic"},
        {"level": "expert"},
    )
    gone = entries["companyskill.deleted"]
    assert gone.target_id == str(removed.pk) and gone.before["level"] == "expert"
    assert gone.before["skill_id"] == boilers.pk
    assert entries["servicearea.created"].after["zip_code"] == "90210"
    # Nothing changed on the company itself: no entry for it.
    assert not AuditLog.objects.filter(action="company.updated").exists()

    # Posting the page back unchanged records nothing more.
    before = AuditLog.objects.count()
    admin_a.post(change_url(company), change_form_data(admin_a.get(change_url(company))))
    assert AuditLog.objects.count() == before


def test_operators_edits_of_an_integrations_schedules_are_audited(
    client, operator, tenant_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the integration's schedules
        tenant_a.integration.save()
    task = PeriodicTask.objects.get(name=f"fieldbridge:sync:{tenant_a.integration.pk}:full")
    client.force_login(operator)
    url = changelist_url(PeriodicTask)
    page = client.get(change_url(task))
    data = change_form_data(page)
    data["expire_seconds"] = "7200"
    assert client.post(change_url(task), data).status_code == 302
    entry = AuditLog.objects.get(action="periodictask.updated")
    assert entry.company == tenant_a.company and entry.target_id == str(task.pk)
    assert entry.after == {"expire_seconds": 7200} and entry.actor == operator

    client.post(url, {"action": "disable_tasks", "_selected_action": [task.pk]})
    task.refresh_from_db()
    assert task.enabled is False
    toggled = AuditLog.objects.filter(action="periodictask.updated").latest("pk")
    assert toggled.before["enabled"] is True and toggled.after["enabled"] is False
    assert toggled.company == tenant_a.company


def test_audit_ips_come_through_the_trusted_proxies(admin_a, tenant_a, settings):
    """The portal's rule (portal.views.client_ip): the address the outermost trusted proxy
    saw; a client's own X-Forwarded-For is ignored when no proxy is configured."""
    membership = TeamMembership.objects.get(user=tenant_a.dispatcher)
    forwarded = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.9, 203.0.113.5"}
    settings.PORTAL_NUM_PROXIES = 1
    admin_a.post(change_url(membership), {"role": "admin"}, **forwarded)
    assert AuditLog.objects.get(action="teammembership.updated").ip_address == "203.0.113.5"

    settings.PORTAL_NUM_PROXIES = 0
    admin_a.post(change_url(membership), {"role": "dispatcher"}, **forwarded)
    latest = AuditLog.objects.filter(action="teammembership.updated").latest("pk")
    assert latest.ip_address == "10.0.0.2"


def test_imports_audit_the_address_through_the_trusted_proxies(admin_a, tenant_a, settings):
    settings.PORTAL_NUM_PROXIES = 1
    with mock.patch.object(imports.celery_app, "send_task"):
        admin_a.post(
            "/admin/sync/import/",
            {"integration": tenant_a.integration.pk, "entities": ["clients"]},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="203.0.113.5",
        )
    entry = AuditLog.objects.get(action="sync.import.start")
    assert entry.ip_address == "203.0.113.5"
    admin_a.post(
        f"/admin/sync/import/{entry.pk}/cancel/",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.6",
    )
    assert AuditLog.objects.get(action="sync.import.cancel").ip_address == "203.0.113.6"
