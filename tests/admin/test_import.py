"""The admin's import screen: start, progress, cancel, and who may see it."""

from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.cache import cache
from django.utils import timezone

from portal.models import AuditLog
from sync import imports
from sync.imports import active_import, cancel_key, import_execute, import_progress
from sync.models import SyncRun
from tests import factories

pytestmark = pytest.mark.django_db
SM8_ENTITIES = ["clients", "contacts", "staff", "jobs", "materials"]


@pytest.fixture
def staff(integration):
    return factories.TeamMembershipFactory(company=integration.company).user


@pytest.fixture
def signed_in(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def sent():
    with mock.patch.object(imports.celery_app, "send_task") as send_task:
        yield send_task


def start(client, integration, entities, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            "/admin/sync/import/", {"integration": integration.pk, "entities": entities}
        )


def run(integration, entity, *, started, status="running", finished=None, **counts):
    return SyncRun.objects.create(
        integration=integration,
        entity=entity,
        mode="full",
        status=status,
        started_at=started,
        finished_at=finished,
        heartbeat_at=started,
        **counts,
    )


def test_the_screen_offers_the_providers_entities(signed_in, integration):
    page = signed_in.get("/admin/sync/import/").content.decode()
    assert str(integration) in page
    page = signed_in.get(f"/admin/sync/import/?integration={integration.pk}").content.decode()
    for entity in SM8_ENTITIES:
        assert f'value="{entity}"' in page
    assert "Start import" in page


def test_starting_an_import_audits_it_and_queues_its_task(
    signed_in, integration, staff, sent, django_capture_on_commit_callbacks
):
    response = start(
        signed_in, integration, ["jobs", "clients"], django_capture_on_commit_callbacks
    )
    entry = AuditLog.objects.get(action="sync.import.start")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/sync/import/{entry.pk}/"
    assert (entry.actor, entry.company, entry.target_id) == (
        staff,
        integration.company,
        str(integration.pk),
    )
    assert entry.after["entities"] == ["clients", "jobs"]  # the provider's order
    sent.assert_called_once_with("sync.import_integration", kwargs={"import_id": entry.pk})

    page = signed_in.get(response["Location"]).content.decode()
    assert 'data-entity="clients"' in page and 'data-entity="jobs"' in page
    data = signed_in.get(f"/admin/sync/import/{entry.pk}/progress/").json()
    assert data["state"] == "queued" and not data["finished"]
    assert [(e["entity"], e["status"]) for e in data["entities"]] == [
        ("clients", "queued"),
        ("jobs", "queued"),
    ]


def test_unknown_entities_or_an_unhealthy_integration_are_refused(
    signed_in, integration, sent, django_capture_on_commit_callbacks
):
    response = start(signed_in, integration, ["invoices"], django_capture_on_commit_callbacks)
    assert response.status_code == 200 and "invoices" in response.content.decode()
    integration.status = "needs_reauth"
    integration.save()
    response = start(signed_in, integration, ["clients"], django_capture_on_commit_callbacks)
    assert "Needs reauthorization" in response.content.decode()
    assert not AuditLog.objects.filter(action="sync.import.start").exists()
    sent.assert_not_called()


def test_progress_shows_counts_rate_and_eta_only_with_a_total(
    signed_in, integration, sent, django_capture_on_commit_callbacks
):
    start(signed_in, integration, ["clients", "jobs"], django_capture_on_commit_callbacks)
    entry = AuditLog.objects.get(action="sync.import.start")
    now = timezone.now()
    # An earlier complete full import of jobs gives the total; clients have none.
    run(
        integration,
        "jobs",
        started=now - timedelta(days=1),
        status="success",
        finished=now - timedelta(days=1) + timedelta(minutes=1),
        fetched_count=400,
    )
    run(
        integration,
        "clients",
        started=now - timedelta(seconds=10),
        status="success",
        finished=now - timedelta(seconds=5),
        fetched_count=50,
        created_count=48,
        updated_count=1,
        unchanged_count=1,
    )
    AuditLog.objects.filter(pk=entry.pk).update(created_at=now - timedelta(seconds=20))
    run(integration, "jobs", started=now - timedelta(seconds=4), fetched_count=100, pages_count=1)

    data = signed_in.get(f"/admin/sync/import/{entry.pk}/progress/").json()
    clients, jobs = data["entities"]
    assert data["state"] == "running"
    assert (clients["status"], clients["percent"], clients["written"]) == ("success", 100.0, 49)
    assert clients["total"] == 50 and clients["eta_seconds"] is None
    assert jobs["status"] == "running" and jobs["total"] == 400
    assert jobs["percent"] == 25.0
    assert 20 <= jobs["rate"] <= 26  # 100 records in about 4 s
    assert 10 <= jobs["eta_seconds"] <= 16  # 300 more at that rate

    # A first import: no total, so no percentage and no ETA, and the page says why.
    SyncRun.objects.filter(entity="jobs", status="success").delete()
    data = signed_in.get(f"/admin/sync/import/{entry.pk}/progress/").json()
    jobs = data["entities"][1]
    assert jobs["percent"] is None and jobs["eta_seconds"] is None
    assert "does not say how many jobs there are" in jobs["eta_note"]
    page = signed_in.get(f"/admin/sync/import/{entry.pk}/").content.decode()
    assert "ops-bar-indeterminate" in page and "does not say how many" in page


# Cancelling through the page, stopping the real engine at a page boundary:
# tests/admin/test_import_engine.py.


def test_the_task_skips_everything_once_cancelled(integration, sent):
    entry = imports.import_start(integration=integration, entities=["clients"], actor=None)
    cache.set(cancel_key(entry.pk), "now", 60)
    assert import_execute(import_id=entry.pk) == {"clients": "skipped"}
    progress = import_progress(entry=entry)
    assert progress.state == "cancelled"
    assert progress.entities[0].message == "Cancelled before it started."


def test_other_companies_staff_and_strangers_get_404(client, integration, sent):
    entry = imports.import_start(integration=integration, entities=["clients"], actor=None)
    urls = [
        f"/admin/sync/import/{entry.pk}/",
        f"/admin/sync/import/{entry.pk}/progress/",
        f"/admin/sync/import/?integration={integration.pk}",
    ]
    outsider = factories.TeamMembershipFactory().user  # staff of another company
    client.force_login(outsider)
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/admin/sync/import/{entry.pk}/cancel/").status_code == 404
    assert (
        client.post(
            "/admin/sync/import/", {"integration": integration.pk, "entities": ["clients"]}
        ).status_code
        == 404
    )
    assert not cache.get(cancel_key(entry.pk))

    loner = factories.UserFactory(is_staff=True)  # staff, but of no company
    client.force_login(loner)
    assert client.get("/admin/sync/import/").status_code == 404
    assert client.get("/admin/sync/dashboard/").status_code == 404

    client.force_login(factories.UserFactory())  # not staff: the admin's sign-in
    assert client.get("/admin/sync/import/").status_code == 302

    root = factories.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(root)
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_an_import_whose_task_dies_ends_and_no_longer_blocks_a_new_one(
    signed_in, integration, sent, django_capture_on_commit_callbacks
):
    """A soft time limit (or any unexpected exception) in the middle: the engine ends the run
    failed, the task notes the end and the error in a `finally`, the import is over."""
    start(signed_in, integration, ["clients", "jobs"], django_capture_on_commit_callbacks)
    entry = AuditLog.objects.get(action="sync.import.start")

    def sync_entity(*, integration_id, entity, mode, cancel_key):
        now = timezone.now()
        run(integration, entity, started=now, status="failed", finished=now, fetched_count=5)
        raise SoftTimeLimitExceeded()

    with (
        mock.patch.object(imports, "sync_entity", side_effect=sync_entity),
        pytest.raises(SoftTimeLimitExceeded),
    ):
        import_execute(import_id=entry.pk)

    progress = import_progress(entry=entry)
    assert progress.state == "failed" and progress.finished
    assert progress.error == "SoftTimeLimitExceeded"
    assert [(e.status, e.message) for e in progress.entities] == [
        ("failed", ""),
        ("skipped", "Not started: the import stopped (SoftTimeLimitExceeded)."),
    ]
    assert active_import(integration=integration) is None
    data = signed_in.get(f"/admin/sync/import/{entry.pk}/progress/").json()
    assert data["state"] == "failed" and data["finished"] and data["error"]
    page = signed_in.get(f"/admin/sync/import/{entry.pk}/").content.decode()
    assert 'id="import-error">SoftTimeLimitExceeded</p>' in page

    # A new import starts (it is not "already running").
    start(signed_in, integration, ["clients"], django_capture_on_commit_callbacks)
    assert AuditLog.objects.filter(action="sync.import.start").count() == 2


def test_an_unexpected_error_before_any_run_ends_the_import_too(integration, sent):
    entry = imports.import_start(integration=integration, entities=["clients"], actor=None)
    with (
        mock.patch.object(imports, "sync_entity", side_effect=RuntimeError("database gone")),
        pytest.raises(RuntimeError),
    ):
        import_execute(import_id=entry.pk)
    progress = import_progress(entry=entry)
    assert progress.state == "failed" and progress.error == "RuntimeError: database gone"
    assert progress.entities[0].status == "skipped"
    assert active_import(integration=integration) is None


def test_an_import_without_a_recent_heartbeat_has_ended(
    signed_in, integration, sent, settings, django_capture_on_commit_callbacks
):
    """A worker killed outright notes nothing: the import is over once none of its runs has
    sent a heartbeat for SYNC_RUN_STALE_AFTER (the engine's rule for dead runs)."""
    settings.SYNC_RUN_STALE_AFTER = 600
    start(signed_in, integration, ["clients", "jobs"], django_capture_on_commit_callbacks)
    entry = AuditLog.objects.get(action="sync.import.start")
    now = timezone.now()
    AuditLog.objects.filter(pk=entry.pk).update(created_at=now - timedelta(minutes=30))
    entry.refresh_from_db()
    clients = run(integration, "clients", started=now - timedelta(minutes=29), fetched_count=40)

    # Heartbeat 5 minutes ago: alive.
    SyncRun.objects.filter(pk=clients.pk).update(heartbeat_at=now - timedelta(minutes=5))
    assert import_progress(entry=entry).state == "running"
    assert active_import(integration=integration) == entry

    # Heartbeat 11 minutes ago: its worker is gone.
    SyncRun.objects.filter(pk=clients.pk).update(heartbeat_at=now - timedelta(minutes=11))
    progress = import_progress(entry=entry)
    assert progress.state == "failed" and progress.finished
    assert "no sign of it since" in progress.error
    assert [e.status for e in progress.entities] == ["failed", "skipped"]
    assert progress.entities[0].eta_seconds is None
    assert active_import(integration=integration) is None
    response = start(signed_in, integration, ["clients"], django_capture_on_commit_callbacks)
    new = AuditLog.objects.filter(action="sync.import.start").latest("pk")
    assert new != entry and response["Location"] == f"/admin/sync/import/{new.pk}/"


def test_an_import_whose_task_never_started_ends_after_the_stale_period(
    integration, sent, settings
):
    settings.SYNC_RUN_STALE_AFTER = 600
    entry = imports.import_start(integration=integration, entities=["clients"], actor=None)
    assert import_progress(entry=entry).state == "queued"
    later = timezone.now() + timedelta(minutes=11)
    progress = import_progress(entry=entry, now=later)
    assert progress.state == "failed" and "never started" in progress.error
    assert progress.entities[0].message == "Not started: the import stopped."


def test_a_finished_import_stays_finished_once_its_notes_expire(integration, sent, settings):
    settings.SYNC_RUN_STALE_AFTER = 600
    entry = imports.import_start(integration=integration, entities=["clients"], actor=None)
    now = timezone.now()
    run(integration, "clients", started=now, status="success", finished=now, fetched_count=3)
    cache.delete(imports._state_key(entry.pk))  # the task's notes are gone (TTL, a flush)
    later = import_progress(entry=entry, now=now + timedelta(days=1))
    assert later.state == "finished" and later.error == ""
