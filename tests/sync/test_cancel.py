"""Cooperative cancellation: a run stops at a page boundary, ends cancelled, and leaves the
cursor and the local rows as they were."""

import pytest
from django.core.cache import cache
from django.utils import timezone

from portal.models import Client
from sync import engine
from sync.engine import sync_entity
from sync.models import SyncCursor, SyncRun
from tests import factories
from tests.sync.conftest import sandbox_control

pytestmark = pytest.mark.django_db(transaction=True)
PAGE = 15


def cancel_after(monkeypatch, pages: int, cancel) -> None:
    """Call `cancel(run)` once the run has applied `pages` pages."""
    applied = {"n": 0}
    original = engine._apply_page

    def apply_page(state, raws, *, retrying_held, **kwargs):
        result = original(state, raws, retrying_held=retrying_held, **kwargs)
        if not retrying_held:
            applied["n"] += 1
            if applied["n"] == pages:
                cancel(state.run)
        return result

    monkeypatch.setattr(engine, "_apply_page", apply_page)


@pytest.fixture
def paged(sm8_integration, sandbox_clean):
    sandbox_control(sandbox_clean, "config", {"servicem8": {"page_size": PAGE}})
    first = sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="full")
    first.refresh_from_db()
    assert first.status == "success" and first.pages_count > 3
    # A row the provider does not have: a complete full run would sweep it.
    stray = factories.ClientFactory(integration=sm8_integration, external_id="not-at-provider")
    return sm8_integration, first, stray


def since(integration) -> str:
    return SyncCursor.objects.get(integration=integration, entity="clients").value["since"]


def test_a_cancel_flag_stops_the_run_at_a_page_boundary(paged, monkeypatch):
    integration, first, stray = paged
    before = since(integration)
    cancel_after(monkeypatch, 2, lambda run: cache.set("test:cancel", "1", 60))

    run = sync_entity(
        integration_id=integration.pk, entity="clients", mode="full", cancel_key="test:cancel"
    )
    run.refresh_from_db()
    assert run.status == SyncRun.Status.CANCELLED
    assert (run.pages_count, run.fetched_count) == (2, 2 * PAGE)  # stopped between pages
    assert run.finished_at and "Cancelled after 2 page(s)" in run.error_summary
    assert run.cursor_after is None and not run.swept
    assert since(integration) == before  # the cursor did not move
    stray.refresh_from_db()
    assert stray.remote_deleted_at is None  # nothing swept
    integration.refresh_from_db()
    assert integration.last_synced_at == first.finished_at

    # Without the flag the next run completes, sweeps and moves on.
    cache.delete("test:cancel")
    monkeypatch.undo()
    again = sync_entity(integration_id=integration.pk, entity="clients", mode="full")
    again.refresh_from_db()
    assert again.status == SyncRun.Status.SUCCESS and again.swept
    stray.refresh_from_db()
    assert stray.remote_deleted_at is not None


def test_a_run_marked_cancelled_stops_too(paged, monkeypatch):
    integration, _, stray = paged
    before = since(integration)
    cancel_after(
        monkeypatch,
        1,
        lambda run: SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.CANCELLED),
    )
    run = sync_entity(integration_id=integration.pk, entity="clients", mode="full")
    run.refresh_from_db()
    assert (run.status, run.pages_count) == (SyncRun.Status.CANCELLED, 1)
    assert since(integration) == before
    assert Client.objects.get(pk=stray.pk).remote_deleted_at is None


def test_a_flag_for_another_run_changes_nothing(paged):
    integration, _, _ = paged
    cache.set("someone-else:cancel", "1", 60)
    run = sync_entity(
        integration_id=integration.pk, entity="clients", mode="incremental", cancel_key="mine"
    )
    assert run.status == SyncRun.Status.SUCCESS
    assert run.finished_at <= timezone.now()
