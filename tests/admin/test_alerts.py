"""Alerts go out once per incident (not once per retry) and the incident closes when its
condition clears: needs reauthorization, a sync failing N runs in a row, dead letters piling
up. Recipients: the company's team admins and settings.ADMINS; plus one Sentry event."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from integrations.models import Incident, Integration
from integrations.services import integration_credentials_replace, integration_mark_needs_reauth
from sync import alerts
from sync.models import OutboxEvent, SyncRun
from tests.admin.conftest import SECRET_A

pytestmark = pytest.mark.django_db


@pytest.fixture
def sentry():
    with mock.patch("integrations.services.sentry_sdk.capture_message") as capture:
        yield capture


@pytest.fixture(autouse=True)
def operators(settings):
    settings.ADMINS = ["ops@fieldbridge.test"]
    settings.ALERT_SYNC_FAILURES_IN_A_ROW = 3
    settings.ALERT_DEAD_LETTERS_THRESHOLD = 10


def finished_run(integration, status, *, entity="jobs", minutes_ago=0) -> SyncRun:
    started = timezone.now() - timedelta(minutes=100 - minutes_ago)
    run = SyncRun.objects.create(
        integration=integration,
        entity=entity,
        mode=SyncRun.Mode.INCREMENTAL,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=5),
        error_summary="ServiceM8 is having problems (HTTP 502)." if status == "failed" else "",
    )
    alerts.on_sync_run_finished(run)
    return run


def test_needs_reauthorization_alerts_once_per_incident(
    tenant_a, sentry, django_capture_on_commit_callbacks
):
    integration = tenant_a.integration
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):  # every failing call marks it; only the first changes anything
            integration_mark_needs_reauth(integration_id=integration.pk, reason="401 bad key")
            Integration.objects.filter(pk=integration.pk).update(status="needs_reauth")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "Needs reauthorization" in message.subject
    assert set(message.to) == {tenant_a.admin.email, "ops@fieldbridge.test"}
    assert tenant_a.dispatcher.email not in message.to
    assert SECRET_A not in message.body
    sentry.assert_called_once()
    assert "Needs reauthorization" in sentry.call_args.args[0]
    incident = Incident.objects.get()
    assert incident.notified_at and incident.closed_at is None
    # New credentials clear it; the next occurrence is a new incident, alerted again.
    with django_capture_on_commit_callbacks(execute=True):
        integration.refresh_from_db()
        integration_credentials_replace(integration=integration, credentials={"api_key": "k2"})
    incident.refresh_from_db()
    assert incident.closed_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        integration_mark_needs_reauth(integration_id=integration.pk, reason="401 again")
    assert len(mail.outbox) == 2 and sentry.call_count == 2
    assert Incident.objects.filter(closed_at__isnull=True).count() == 1


def test_a_sync_failing_n_times_in_a_row_alerts_once(
    tenant_a, sentry, django_capture_on_commit_callbacks
):
    integration = tenant_a.integration
    with django_capture_on_commit_callbacks(execute=True):
        finished_run(integration, "failed", minutes_ago=1)
        finished_run(integration, "success", minutes_ago=2)
        finished_run(integration, "failed", minutes_ago=3)
        finished_run(integration, "failed", minutes_ago=4)
        finished_run(integration, "deferred", minutes_ago=5)  # neither failure nor success
        assert not mail.outbox
        finished_run(integration, "failed", minutes_ago=6)  # third in a row
        finished_run(integration, "failed", minutes_ago=7)  # a fourth: same incident
        finished_run(integration, "failed", entity="clients", minutes_ago=8)
    assert len(mail.outbox) == 1 and sentry.call_count == 1
    assert "Sync failing repeatedly" in mail.outbox[0].subject
    assert "jobs: the last 3 runs failed" in mail.outbox[0].body
    assert "HTTP 502" in mail.outbox[0].body
    with django_capture_on_commit_callbacks(execute=True):
        finished_run(integration, "success", minutes_ago=9)
    assert Incident.objects.get().closed_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        for minute in (10, 11, 12):
            finished_run(integration, "failed", minutes_ago=minute)
    assert len(mail.outbox) == 2


def test_webhook_runs_do_not_count(tenant_a, sentry):
    for minute in range(5):
        run = SyncRun.objects.create(
            integration=tenant_a.integration,
            entity="jobs",
            mode=SyncRun.Mode.WEBHOOK,
            status="failed",
            started_at=timezone.now() - timedelta(minutes=10 - minute),
        )
        alerts.on_sync_run_finished(run)
    assert not Incident.objects.exists()


def test_dead_letters_piling_up_alert_once_and_close_after_replay(
    admin_a, tenant_a, sentry, django_capture_on_commit_callbacks
):
    integration = tenant_a.integration
    events = []
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(12):
            events.append(
                OutboxEvent.objects.create(
                    integration=integration,
                    action="quote.decide",
                    aggregate_type="quote",
                    aggregate_id=str(n),
                    idempotency_key=f"dl-{n}",
                    status=OutboxEvent.Status.DEAD,
                )
            )
            alerts.on_outbox_dead_changed(integration.pk)
    assert len(mail.outbox) == 1 and sentry.call_count == 1
    assert "Dead letters piling up" in mail.outbox[0].subject
    assert "10 outbox events are dead" in mail.outbox[0].body
    with (
        mock.patch("sync.outbox.outbox_kick"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        admin_a.post(
            "/admin/sync/outboxevent/",
            {"action": "retry_selected", "_selected_action": [e.pk for e in events]},
        )
    assert Incident.objects.get().closed_at is not None
    assert len(mail.outbox) == 1


def test_the_dead_transition_in_the_outbox_checks(tenant_a, settings, sentry):
    settings.ALERT_DEAD_LETTERS_THRESHOLD = 1
    event = OutboxEvent.objects.create(
        integration=tenant_a.integration,
        action="quote.decide",
        aggregate_type="quote",
        aggregate_id="1",
        idempotency_key="dead-now",
        status=OutboxEvent.Status.SENDING,
        attempts=1,
    )
    from integrations.exceptions import ProviderValidationError
    from sync.outbox import _failed

    _failed(event, ProviderValidationError("nope", provider="servicem8"), retryable=False)
    assert Incident.objects.get().kind == Incident.Kind.DEAD_LETTERS


def test_the_periodic_check_opens_and_closes(
    tenant_a, tenant_b, sentry, django_capture_on_commit_callbacks
):
    Integration.objects.filter(pk=tenant_b.integration.pk).update(status="needs_reauth")
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.alerts_check() == 2
        assert alerts.alerts_check() == 2
    assert [i.integration_id for i in Incident.objects.all()] == [tenant_b.integration.pk]
    assert len(mail.outbox) == 1 and tenant_b.admin.email in mail.outbox[0].to
    assert tenant_a.admin.email not in mail.outbox[0].to
    Integration.objects.filter(pk=tenant_b.integration.pk).update(status="active")
    alerts.alerts_check()
    assert Incident.objects.get().closed_at is not None


def test_an_alert_failure_never_breaks_the_caller(tenant_a):
    with mock.patch("sync.alerts.failing_entities", side_effect=RuntimeError("db gone")):
        finished_run(tenant_a.integration, "failed")  # logged, not raised
