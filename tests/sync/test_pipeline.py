"""Pipelined page writes (sync.engine._PageWriters): two writer threads, each with its own
connection, write page N+1 while page N commits. Pages still commit one at a time and in
order; a page whose predecessor failed or saw a cancel rolls back; an entity whose rows name
rows of their own table as parents runs in one thread."""

import threading
import time

import pytest
from django.core.cache import cache

from integrations.exceptions import PaginationError
from integrations.providers.servicem8.provider import ServiceM8Provider
from portal.models import Client, Contact
from sync import engine
from sync.engine import sync_entity
from sync.models import SyncCursor, SyncError, SyncRun
from tests.sync.conftest import sandbox_control

pytestmark = pytest.mark.django_db(transaction=True)
PAGE = 10


@pytest.fixture
def paged(sm8_integration, sandbox_clean):
    """Clients synced (contacts' parents), then pages of PAGE contacts."""
    sandbox_control(sandbox_clean, "config", {"servicem8": {"page_size": PAGE}})
    clients = sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="full")
    assert clients.status == SyncRun.Status.SUCCESS
    return sm8_integration


class Pages:
    """Watches the engine's pages: which thread wrote each, when each write began and when
    each page's transaction ended (`_apply_page` returned: committed, or rolled back), in
    order; `slow` pages dawdle in their writes, `fail` pages raise there, and `after` runs a
    callback once a page has committed."""

    def __init__(self, monkeypatch, *, slow=(), fail=(), after=None):
        self.local = threading.local()
        self.threads: dict[int, str] = {}
        self.began: dict[int, float] = {}
        self.ended: list[int] = []
        self.ended_at: dict[int, float] = {}
        apply_page, write_records = engine._apply_page, engine.write_records

        def watched_apply(state, raws, *, retrying_held, ticket=None, **kwargs):
            number = ticket.number if ticket else None
            self.local.page = number
            try:
                result = apply_page(
                    state, raws, retrying_held=retrying_held, ticket=ticket, **kwargs
                )
            finally:
                if number is not None:
                    self.ended.append(number)
                    self.ended_at[number] = time.monotonic()
            if after and number is not None:
                after(number, state)
            return result

        def watched_write(integration_id, records):
            page = getattr(self.local, "page", None)
            if page is not None:
                self.threads[page] = threading.current_thread().name
                self.began[page] = time.monotonic()
            if page in slow:
                time.sleep(0.6)
            if page in fail:
                time.sleep(0.2)  # (the next page is under way meanwhile)
                raise RuntimeError(f"page {page} broke")
            return write_records(integration_id, records)

        monkeypatch.setattr(engine, "_apply_page", watched_apply)
        monkeypatch.setattr(engine, "write_records", watched_write)


def contacts_at_provider(integration) -> int:
    run = sync_entity(integration_id=integration.pk, entity="contacts", mode="full")
    run.refresh_from_db()
    return run.fetched_count


def test_pages_are_written_two_at_a_time_and_commit_in_order(paged, monkeypatch):
    pages = Pages(monkeypatch, slow={1})
    run = sync_entity(integration_id=paged.pk, entity="contacts", mode="full")
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCESS and run.pages_count > 3
    assert pages.ended == list(range(1, run.pages_count + 1))  # one at a time, in order
    assert {name.rsplit("-", 1)[0] for name in pages.threads.values()} == {"sync-writer-contacts"}
    assert len(set(pages.threads.values())) == 2
    # Page 2 was being written while page 1 (slow) had not ended: the overlap is real.
    assert pages.began[2] < pages.ended_at[1]
    # … and the result is the provider's, as without the pipeline.
    assert Contact.objects.filter(integration=paged).count() == run.fetched_count
    assert run.created_count == run.fetched_count and not run.held_count


def test_a_page_that_shares_a_record_with_the_one_before_waits_for_it(paged, monkeypatch):
    """A record edited while the provider is paged comes twice: the page that repeats it
    begins only once the page before has ended, so no two transactions lock the same row
    (each waiting for the other's)."""
    original = ServiceM8Provider.pages

    def pages_with_a_repeat(self, entity, *, updated_since=None):
        first = None
        for number, page in enumerate(original(self, entity, updated_since=updated_since)):
            if number == 0:
                first = page[0]
            elif number == 1:
                page = [first, *page]
            yield page

    monkeypatch.setattr(ServiceM8Provider, "pages", pages_with_a_repeat)
    pages = Pages(monkeypatch, slow={1, 2})
    run = sync_entity(integration_id=paged.pk, entity="contacts", mode="full")
    run.refresh_from_db()
    assert (run.status, run.failed_count, run.held_count) == (SyncRun.Status.SUCCESS, 0, 0)
    assert pages.began[2] >= pages.ended_at[1]  # page 2 repeats one of page 1's records
    assert pages.began[3] < pages.ended_at[2]  # page 3 repeats none of page 2's
    assert pages.ended == list(range(1, run.pages_count + 1))
    assert Contact.objects.filter(integration=paged).count() == run.fetched_count - 1


def test_a_page_that_fails_stops_the_pages_after_it(paged, monkeypatch):
    pages = Pages(monkeypatch, fail={2})
    with pytest.raises(RuntimeError, match="page 2 broke"):
        sync_entity(integration_id=paged.pk, entity="contacts", mode="full")
    run = SyncRun.objects.filter(integration=paged, entity="contacts").latest("id")
    assert run.status == SyncRun.Status.FAILED
    assert "page 2 broke" in run.error_summary  # the first failure, not its successor's
    assert run.pages_count == 1 and run.fetched_count == PAGE
    assert 3 in pages.threads  # page 3 was under way, and rolled back
    assert Contact.objects.filter(integration=paged).count() == PAGE
    cursor = SyncCursor.objects.get(integration=paged, entity="contacts").value or {}
    assert cursor.get("since") is None  # a failed run moves no cursor

    # The next run brings everything, once.
    monkeypatch.undo()
    expected = contacts_at_provider(paged)
    assert Contact.objects.filter(integration=paged).count() == expected


def test_a_cancel_leaves_exactly_the_pages_before_it(paged, monkeypatch):
    def cancel(number, state):
        if number == 2:
            cache.set("test:pipeline-cancel", "1", 60)

    pages = Pages(monkeypatch, after=cancel)
    run = sync_entity(
        integration_id=paged.pk,
        entity="contacts",
        mode="full",
        cancel_key="test:pipeline-cancel",
    )
    run.refresh_from_db()
    assert run.status == SyncRun.Status.CANCELLED
    assert (run.pages_count, run.fetched_count) == (2, 2 * PAGE)
    assert "Cancelled after 2 page(s)" in run.error_summary
    assert Contact.objects.filter(integration=paged).count() == 2 * PAGE
    assert not run.swept and run.cursor_after is None
    assert max(pages.threads) >= 3  # a later page was under way, and rolled back
    cache.delete("test:pipeline-cancel")


def test_an_entity_whose_rows_name_their_own_table_is_written_in_one_thread(
    sm8_integration, sandbox_clean, monkeypatch
):
    """A site names its head office (another client): a head office in a page still
    committing would not be found by the next page, so clients are not pipelined."""
    sandbox_control(sandbox_clean, "config", {"servicem8": {"page_size": PAGE}})
    threads = set()
    write_records = engine.write_records

    def watched(integration_id, records):
        threads.add(threading.current_thread().name)
        return write_records(integration_id, records)

    monkeypatch.setattr(engine, "write_records", watched)
    run = sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="full")
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCESS and run.pages_count > 3
    assert threads == {threading.current_thread().name}
    assert Client.objects.filter(integration=sm8_integration).count() == run.fetched_count


def test_without_the_setting_pages_are_written_in_one_thread(paged, monkeypatch, settings):
    settings.SYNC_PIPELINE = False
    pages = Pages(monkeypatch)
    run = sync_entity(integration_id=paged.pk, entity="contacts", mode="full")
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCESS
    assert not pages.threads  # (no tickets: the pages were applied in the calling thread)
    assert Contact.objects.filter(integration=paged).count() == run.fetched_count


def test_a_record_that_failed_to_map_counts_as_shared(paged, monkeypatch):
    """Page 1 holds a copy of a record that cannot be mapped (a SyncError), page 2 a good
    copy: page 2 waits for page 1, so it sees the error and resolves it."""
    original_pages, original_map = ServiceM8Provider.pages, ServiceM8Provider.map_record

    def pages(self, entity, *, updated_since=None):
        first = None
        for number, page in enumerate(original_pages(self, entity, updated_since=updated_since)):
            if number == 0:
                first = page[0]
                page = [{**first, "_bad": True}, *page[1:]]
            elif number == 1:
                page = [first, *page]
            yield page

    def map_record(self, entity, raw):
        if raw.get("_bad"):
            raise ValueError("unmappable copy")
        return original_map(self, entity, raw)

    monkeypatch.setattr(ServiceM8Provider, "pages", pages)
    monkeypatch.setattr(ServiceM8Provider, "map_record", map_record)
    pages_seen = Pages(monkeypatch, slow={1})
    run = sync_entity(integration_id=paged.pk, entity="contacts", mode="full")
    run.refresh_from_db()
    assert pages_seen.began[2] >= pages_seen.ended_at[1]
    errors = SyncError.objects.filter(integration=paged, entity="contacts")
    assert errors.count() == 1  # recorded by page 1 …
    assert not errors.filter(resolved_at__isnull=True).exists()  # … resolved by page 2


def test_a_page_failure_is_not_hidden_by_the_provider_failing_after_it(paged, monkeypatch):
    """Page 2 fails while the provider, paged ahead, fails on page 3: the run fails with page
    2's error (as without the threads, where page 2 would have failed first)."""
    original = ServiceM8Provider.pages

    def pages(self, entity, *, updated_since=None):
        for number, page in enumerate(original(self, entity, updated_since=updated_since)):
            if number == 2:
                raise PaginationError("cursor repeated", provider="servicem8")
            yield page

    monkeypatch.setattr(ServiceM8Provider, "pages", pages)
    Pages(monkeypatch, fail={2})
    with pytest.raises(RuntimeError, match="page 2 broke"):
        sync_entity(integration_id=paged.pk, entity="contacts", mode="full")
    run = SyncRun.objects.filter(integration=paged, entity="contacts").latest("id")
    assert run.status == SyncRun.Status.FAILED and "page 2 broke" in run.error_summary
    assert run.pages_count == 1 and not run.swept
    assert Contact.objects.filter(integration=paged).count() == PAGE
