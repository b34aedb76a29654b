"""Error review: sync errors and dead letters with "Retry selected"; webhook deliveries with
their verification result, refused ones included."""

from __future__ import annotations

from unittest import mock

import pytest

from portal.models import AuditLog
from sync import retries
from sync.models import OutboxEvent, SyncError, SyncRun, WebhookEvent
from tests.admin.conftest import changelist_url

pytestmark = pytest.mark.django_db


def dead_event(integration, n: int, status=OutboxEvent.Status.DEAD) -> OutboxEvent:
    return OutboxEvent.objects.create(
        integration=integration,
        action="quote.decide",
        aggregate_type="quote",
        aggregate_id=f"q-{integration.pk}-{n}",
        idempotency_key=f"key-{integration.pk}-{n}",
        status=status,
        attempts=8,
        last_error="ProviderValidationError: status is read-only",
    )


def test_dead_letters_are_listed_with_the_record_and_reason(admin_a, tenant_a):
    dead_event(tenant_a.integration, 1)
    body = admin_a.get(changelist_url(OutboxEvent), {"dead": "yes"}).content.decode()
    assert f"q-{tenant_a.integration.pk}-1" in body
    assert "status is read-only" in body
    assert "Retry selected" in body


def test_retry_selected_replays_dead_letters_and_audits(
    admin_a, tenant_a, django_capture_on_commit_callbacks
):
    dead = dead_event(tenant_a.integration, 1)
    sent = dead_event(tenant_a.integration, 2, status=OutboxEvent.Status.SENT)
    with (
        mock.patch("sync.outbox.outbox_kick") as kick,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_a.post(
            changelist_url(OutboxEvent),
            {"action": "retry_selected", "_selected_action": [dead.pk, sent.pk]},
            follow=True,
            REMOTE_ADDR="198.51.100.7",
        )
    assert "Queued 1 dead event(s) for delivery again; 1 skipped (not dead)." in (
        response.content.decode()
    )
    dead.refresh_from_db()
    sent.refresh_from_db()
    assert dead.status == OutboxEvent.Status.PENDING and dead.attempts == 0
    assert sent.status == OutboxEvent.Status.SENT
    kick.assert_called_once_with(dead.pk)
    entry = AuditLog.objects.get(action="outbox_event.retry")
    assert entry.target_id == str(dead.pk) and entry.actor == tenant_a.admin
    assert entry.company == tenant_a.company and entry.ip_address == "198.51.100.7"


def test_dispatchers_get_no_retry_action(client, tenant_a):
    dead = dead_event(tenant_a.integration, 1)
    client.force_login(tenant_a.dispatcher)
    body = client.get(changelist_url(OutboxEvent)).content.decode()
    assert "Retry selected" not in body
    client.post(
        changelist_url(OutboxEvent), {"action": "retry_selected", "_selected_action": [dead.pk]}
    )
    dead.refresh_from_db()
    assert dead.status == OutboxEvent.Status.DEAD


def test_retry_selected_sync_errors_queues_a_refetch_per_record(
    admin_a, tenant_a, django_capture_on_commit_callbacks
):
    integration = tenant_a.integration
    with_id = SyncError.objects.create(
        integration=integration, entity="jobs", external_id="job-77", message="Could not map"
    )
    without_id = SyncError.objects.create(
        integration=integration, entity="clients", external_id="", message="not an object"
    )
    resolved = SyncError.objects.create(
        integration=integration, entity="jobs", external_id="job-1", message="old"
    )
    SyncError.objects.filter(pk=resolved.pk).update(resolved_at="2024-01-01T00:00Z")
    listing = admin_a.get(changelist_url(SyncError), {"state": "open"}).content.decode()
    assert "job-77" in listing and "Could not map" in listing and "Retry selected" in listing
    with (
        mock.patch("sync.retries.celery_app.send_task") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_a.post(
            changelist_url(SyncError),
            {
                "action": "retry_selected",
                "_selected_action": [with_id.pk, without_id.pk, resolved.pk],
            },
            follow=True,
        )
    assert "Queued 2 record(s) to fetch again; 1 already resolved." in response.content.decode()
    calls = {c.args[0]: c for c in send.call_args_list}
    assert calls[retries.RETRY_TASK].kwargs["args"] == [with_id.pk]
    assert calls[retries.SYNC_TASK].kwargs["kwargs"] == {
        "integration_id": integration.pk,
        "mode": "full",
        "entities": ["clients"],
    }
    with_id.refresh_from_db()
    assert with_id.retry_count == 1
    assert AuditLog.objects.filter(action="sync_error.retry", actor=tenant_a.admin).count() == 2


def test_the_retry_task_refetches_through_sync_record_and_resolves(tenant_a):
    error = SyncError.objects.create(
        integration=tenant_a.integration, entity="jobs", external_id="job-77", message="x"
    )
    run = SyncRun(status=SyncRun.Status.SUCCESS)
    with mock.patch("sync.engine.sync_record", return_value=run) as sync_record:
        assert retries.sync_error_retry_execute(error_id=error.pk) == "resolved"
    sync_record.assert_called_once_with(
        integration_id=tenant_a.integration.pk, entity="jobs", external_id="job-77"
    )
    error.refresh_from_db()
    assert error.resolved_at is not None
    # A run that still fails leaves the error open.
    error2 = SyncError.objects.create(
        integration=tenant_a.integration, entity="jobs", external_id="job-78", message="x"
    )
    with mock.patch("sync.engine.sync_record", return_value=SyncRun(status="partial")):
        assert retries.sync_error_retry_execute(error_id=error2.pk) == "partial"
    error2.refresh_from_db()
    assert error2.resolved_at is None


def test_refused_webhook_deliveries_are_listed_with_their_reason(admin_a, tenant_a, client):
    integration = tenant_a.integration
    integration.credentials = {**integration.credentials, "webhook_secrets": ["right-token"]}
    integration.save()
    body = b'{"object": "job", "entry": [{"uuid": "j1"}], "padding": "' + b"x" * 5000 + b'"}'
    response = client.post(
        f"/webhooks/servicem8/{integration.pk}/wrong-token/", body, content_type="application/json"
    )
    assert response.status_code == 400
    refused = WebhookEvent.objects.get()
    assert refused.status == WebhookEvent.Status.REJECTED
    assert refused.verification == WebhookEvent.Verification.INVALID
    assert refused.verification_reason and refused.payload == {}
    assert len(refused.body_excerpt) <= 200 and refused.body_excerpt.startswith('{"object"')
    assert "right-token" not in refused.verification_reason + refused.error
    listing = admin_a.get(changelist_url(WebhookEvent)).content.decode()
    assert "Rejected" in listing and "Invalid signature" in listing
