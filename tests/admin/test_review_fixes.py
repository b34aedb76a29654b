"""Review findings: what a company's dispatcher (view-only) and admin may not do."""

import pytest

from portal.models import ClientMembership, TeamMembership
from sync.models import OutboxEvent
from tests import factories

pytestmark = pytest.mark.django_db


def staff(company, role):
    user = factories.UserFactory(is_staff=True)
    TeamMembership.objects.create(user=user, company=company, role=role)
    return user


def test_company_admins_cannot_point_an_integration_elsewhere(client, settings):
    integration = factories.IntegrationFactory(provider="servicem8")
    client.force_login(staff(integration.company, "admin"))
    url = f"/{settings.ADMIN_URL}integrations/integration/{integration.pk}/change/"
    html = client.get(url).content.decode()
    assert 'name="external_account_id"' not in html  # operators only
    from integrations.admin import IntegrationAdminForm

    form_class = type("F", (IntegrationAdminForm,), {"operator": False})
    data = {
        "company": integration.company_id,
        "name": "x",
        "environment": "sandbox",
        "config": "{}",
        "enabled": "on",
        "read_cache_ttl": 60,
    }
    evil = form_class(
        data={**data, "base_url_override": "https://evil.example"}, instance=integration
    )
    assert not evil.is_valid() and "base_url_override" in evil.errors
    ok = form_class(
        data={**data, "base_url_override": "http://127.0.0.1:8765"}, instance=integration
    )
    ok.is_valid()
    assert "base_url_override" not in ok.errors


def test_dispatchers_cannot_start_imports_or_invite(client, settings):
    integration = factories.IntegrationFactory(provider="servicem8")
    target = factories.ClientFactory(integration=integration)
    client.force_login(staff(integration.company, "dispatcher"))
    start = client.post(
        f"/{settings.ADMIN_URL}sync/import/",
        {"integration": integration.pk, "entities": ["clients"]},
    )
    assert start.status_code == 404
    client.post(
        f"/{settings.ADMIN_URL}portal/client/",
        {"action": "invite_client_user", "_selected_action": [target.pk], "email": "x@y.test"},
    )
    assert not ClientMembership.objects.filter(user__email="x@y.test").exists()


def test_retry_only_where_the_user_is_a_team_admin(client, settings):
    mine = factories.IntegrationFactory()
    theirs = factories.IntegrationFactory()
    user = staff(mine.company, "admin")
    TeamMembership.objects.create(user=user, company=theirs.company, role="dispatcher")
    events = [
        OutboxEvent.objects.create(
            integration=integration,
            action="quote.decide",
            aggregate_type="quote",
            aggregate_id="1",
            idempotency_key=f"k-{integration.pk}",
            status=OutboxEvent.Status.DEAD,
        )
        for integration in (mine, theirs)
    ]
    client.force_login(user)
    client.post(
        f"/{settings.ADMIN_URL}sync/outboxevent/",
        {"action": "retry_selected", "_selected_action": [e.pk for e in events]},
    )
    statuses = {e.integration_id: OutboxEvent.objects.get(pk=e.pk).status for e in events}
    assert statuses[theirs.pk] == OutboxEvent.Status.DEAD
    assert statuses[mine.pk] == OutboxEvent.Status.PENDING


def test_testing_a_provider_without_a_connector_is_a_failed_result_not_a_500():
    from integrations.services import integration_test_connection

    integration = factories.IntegrationFactory(provider="housecall_pro")
    result = integration_test_connection(integration=integration)
    assert result.ok is False and "no Housecall Pro connector" in result.message


def test_the_admin_form_for_a_team_admin_refuses_other_addresses(rf, settings):
    """Through IntegrationAdmin.get_form (the wiring, not a hand-made form class)."""
    from django.contrib import admin as django_admin

    from integrations.admin import IntegrationAdmin
    from integrations.models import Integration

    settings.INTEGRATION_SANDBOX_HOSTS = ["127.0.0.1:8765"]
    integration = factories.IntegrationFactory(provider="servicem8")
    request = rf.post("/")
    request.user = staff(integration.company, "admin")
    model_admin = IntegrationAdmin(Integration, django_admin.site)
    form_class = model_admin.get_form(request, integration, change=True)
    assert form_class.operator is False
    for url, allowed in [
        ("http://127.0.0.1:8765", True),
        ("http://127.0.0.1:6379/", False),  # Redis on the server itself
        ("https://evil.example", False),
    ]:
        form = form_class(
            data={"base_url_override": url, "name": "x", "config": "{}"}, instance=integration
        )
        form.is_valid()
        assert ("base_url_override" not in form.errors) is allowed, (url, form.errors)
    request.user = factories.UserFactory(is_staff=True, is_superuser=True)
    assert model_admin.get_form(request, integration, change=True).operator is True


def test_a_dispatcher_cannot_cancel_an_import(client, settings):
    from sync.imports import import_start

    integration = factories.IntegrationFactory(provider="servicem8")
    admin_user = staff(integration.company, "admin")
    entry = import_start(integration=integration, entities=["clients"], actor=admin_user)
    client.force_login(staff(integration.company, "dispatcher"))
    cancel = client.post(f"/{settings.ADMIN_URL}sync/import/{entry.pk}/cancel/")
    assert cancel.status_code == 404
    client.force_login(admin_user)
    assert client.post(f"/{settings.ADMIN_URL}sync/import/{entry.pk}/cancel/").status_code in (
        200,
        302,
    )


def test_an_alert_email_that_failed_is_sent_by_the_next_check(
    settings, django_capture_on_commit_callbacks, monkeypatch
):
    from django.core import mail

    from integrations import services
    from integrations.models import Incident

    settings.ADMINS = [("Ops", "ops@fieldbridge.test")]
    integration = factories.IntegrationFactory()
    staff(integration.company, "admin")
    sentry_events = []
    monkeypatch.setattr(
        services.sentry_sdk, "capture_message", lambda *a, **k: sentry_events.append(a)
    )
    real_send = services.send_mail

    def smtp_down(*args, **kwargs):
        raise OSError("SMTP is down")

    monkeypatch.setattr(services, "send_mail", smtp_down)
    with django_capture_on_commit_callbacks(execute=True):
        incident = services.integration_incident_open(
            integration_id=integration.pk, kind=Incident.Kind.NEEDS_REAUTH, detail="401"
        )
    incident.refresh_from_db()
    assert incident.notified_at is None and len(sentry_events) == 1
    monkeypatch.setattr(services, "send_mail", real_send)
    mail.outbox.clear()
    assert services.incidents_notify_pending(older_than_seconds=0) == 1
    incident.refresh_from_db()
    assert incident.notified_at is not None and len(mail.outbox) == 1
    assert services.incidents_notify_pending(older_than_seconds=0) == 0  # once, not per check
    assert len(sentry_events) == 1
