"""Imports run by the real engine against the provider sandbox, in-process, with the admin's
views polled and used mid-run: a cancel from the page stops the run at a page boundary, and a
first ServiceTitan import has a percentage and an ETA (the provider counts), a first ServiceM8
import has neither (its API does not) and says why."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from portal.models import AuditLog
from sync import engine
from sync.imports import cancel_key, import_execute, import_start
from sync.models import SyncCursor, SyncRun
from tests import factories
from tests.sync.conftest import (  # noqa: F401 - fixtures
    sandbox,
    sandbox_clean,
    sandbox_control,
    sm8_integration,
    st_integration,
)

pytestmark = pytest.mark.django_db(transaction=True)
PAGE = 10


def during_page(monkeypatch, page: int, act) -> None:
    """Call `act(state)` right after the run has applied its `page`-th page (before the
    engine's cancel check at that page boundary)."""
    applied = {"n": 0}
    original = engine._apply_page

    def apply_page(state, raws, *, retrying_held, **kwargs):
        result = original(state, raws, retrying_held=retrying_held, **kwargs)
        if not retrying_held:
            applied["n"] += 1
            if applied["n"] == page:
                act(state)
        return result

    monkeypatch.setattr(engine, "_apply_page", apply_page)


def team_admin(client, integration):
    user = factories.TeamMembershipFactory(company=integration.company, role="admin").user
    client.force_login(user)
    return user


def test_cancel_from_the_page_stops_the_engine_at_a_page_boundary(
    client,
    monkeypatch,
    sm8_integration,  # noqa: F811
    sandbox_clean,  # noqa: F811
):
    integration = sm8_integration
    sandbox_control(sandbox_clean, "config", {"servicem8": {"page_size": PAGE}})
    user = team_admin(client, integration)
    monkeypatch.setattr("sync.imports.celery_app.send_task", lambda *a, **k: None)
    entry = import_start(integration=integration, entities=["clients", "jobs"], actor=user)
    progress_url = f"/admin/sync/import/{entry.pk}/progress/"
    seen = {}

    def cancel_from_the_page(state):
        seen["mid"] = client.get(progress_url).json()
        seen["page"] = client.get(f"/admin/sync/import/{entry.pk}/").content.decode()
        seen["cancel"] = client.post(f"/admin/sync/import/{entry.pk}/cancel/")

    during_page(monkeypatch, 2, cancel_from_the_page)
    outcome = import_execute(import_id=entry.pk)

    # Mid-way: running; ServiceM8 gives no total, so no percentage or ETA, and it says why.
    mid = seen["mid"]
    assert mid["state"] == "running"
    clients, jobs = mid["entities"]
    assert (clients["status"], clients["fetched"], jobs["status"]) == (
        "running",
        2 * PAGE,
        "queued",
    )
    assert clients["total"] is None and clients["percent"] is None
    assert clients["eta_seconds"] is None
    assert "ServiceM8 does not say how many clients there are" in clients["eta_note"]
    assert "ops-bar-indeterminate" in seen["page"] and "does not say how many" in seen["page"]
    assert seen["cancel"].status_code == 302

    # The engine stopped at the next page boundary: the run ended cancelled after 2 pages,
    # the cursor did not move, and the entity not started was skipped.
    assert outcome == {"clients": "cancelled", "jobs": "skipped"}
    run = SyncRun.objects.get(integration=integration, entity="clients", mode="full")
    assert run.status == "cancelled" and (run.pages_count, run.fetched_count) == (2, 2 * PAGE)
    assert not SyncRun.objects.filter(integration=integration, entity="jobs").exists()
    cursor = SyncCursor.objects.get(integration=integration, entity="clients")
    assert not (cursor.value or {}).get("since")
    assert cache.get(cancel_key(entry.pk))
    audit = AuditLog.objects.get(action="sync.import.cancel")
    assert audit.actor == user and audit.after == {"import_id": entry.pk, "running": ["clients"]}

    data = client.get(progress_url).json()
    assert data["state"] == "cancelled" and data["finished"]
    assert [(e["status"], e["message"]) for e in data["entities"]] == [
        ("cancelled", run.error_summary),
        ("skipped", "Cancelled before it started."),
    ]
    # Cancelling an ended import does nothing more.
    again = client.post(
        f"/admin/sync/import/{entry.pk}/cancel/", headers={"Accept": "application/json"}
    )
    assert again.json() == {"cancelled": False}
    assert AuditLog.objects.filter(action="sync.import.cancel").count() == 1


def test_a_first_servicetitan_import_shows_a_percentage_and_an_eta(
    client,
    monkeypatch,
    st_integration,  # noqa: F811
    sandbox_clean,  # noqa: F811
):
    integration = st_integration
    integration.config = {"page_size": PAGE}
    integration.save()
    user = team_admin(client, integration)
    monkeypatch.setattr("sync.imports.celery_app.send_task", lambda *a, **k: None)
    assert not SyncRun.objects.filter(integration=integration).exists()  # a first import
    entry = import_start(integration=integration, entities=["clients"], actor=user)
    seen = {}

    def look(state):
        seen["mid"] = client.get(f"/admin/sync/import/{entry.pk}/progress/").json()
        seen["page"] = client.get(f"/admin/sync/import/{entry.pk}/").content.decode()

    during_page(monkeypatch, 2, look)
    assert import_execute(import_id=entry.pk) == {"clients": "success"}

    run = SyncRun.objects.get(integration=integration, entity="clients")
    assert run.pages_count > 3  # so page 2 was mid-way
    [clients] = seen["mid"]["entities"]
    assert clients["status"] == "running" and clients["fetched"] == 2 * PAGE
    # ServiceTitan's count (includeTotal) is what the import then read.
    assert clients["total"] == run.fetched_count
    assert "ServiceTitan" in clients["total_source"]
    assert clients["percent"] == round(100 * 2 * PAGE / run.fetched_count, 1)
    assert clients["eta_seconds"] is not None and clients["eta_seconds"] > 0
    assert clients["eta_note"] == ""
    assert "ops-bar-indeterminate" not in seen["page"]
    assert f'aria-valuenow="{round(clients["percent"])}"' in seen["page"]
    assert f"{2 * PAGE} / {run.fetched_count}" in seen["page"]
