"""sync.prefetch: the one-page-ahead producer thread the engine reads pages through."""

from __future__ import annotations

import threading
import time

import pytest

from sync.prefetch import prefetched


class Source:
    """A page source that records how far it was read and whether it was closed."""

    def __init__(self, items, fail_at=None):
        self.items = list(items)
        self.fail_at = fail_at
        self.pulled = 0
        self.closed = False
        self.threads = set()
        self._iter = self._gen()

    def _gen(self):
        try:
            for index, item in enumerate(self.items):
                self.threads.add(threading.current_thread().name)
                if index == self.fail_at:
                    raise RuntimeError(f"page {index} broke")
                self.pulled += 1
                yield item
        finally:
            self.closed = True

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._iter)

    def close(self):
        self._iter.close()


def _alive(name):
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_items_come_in_order_with_what_prepare_made_of_them():
    source = Source(range(20))
    out = list(prefetched(source, lambda n: n * 10, name="t-order"))
    assert out == [(n, n * 10) for n in range(20)]
    assert source.closed and not _alive("t-order")
    assert source.threads == {"t-order"}  # read in the producer thread, not the caller's


def test_the_producer_reads_at_most_one_item_ahead():
    source = Source(range(6))
    taken = 0
    for _item, _ in prefetched(source, lambda n: n, name="t-bound"):
        taken += 1
        time.sleep(0.15)  # time enough for a producer that would run further ahead
        assert source.pulled <= taken + 1
    assert taken == 6


def test_a_source_error_comes_after_the_items_before_it():
    source = Source(range(5), fail_at=3)
    got = []
    with pytest.raises(RuntimeError, match="page 3 broke"):
        for item, _ in prefetched(source, lambda n: n, name="t-error"):
            got.append(item)
    assert got == [0, 1, 2]
    assert source.closed and not _alive("t-error")


def test_a_prepare_error_comes_in_order_too():
    def prepare(n):
        if n == 2:
            raise ValueError("cannot map page 2")
        return n

    source = Source(range(5))
    got = []
    with pytest.raises(ValueError, match="cannot map page 2"):
        for item, _ in prefetched(source, prepare, name="t-prepare"):
            got.append(item)
    assert got == [0, 1]
    assert not _alive("t-prepare")
    assert source.pulled == 3  # nothing read past the page that failed


def test_stopping_early_closes_the_source_and_ends_the_thread():
    source = Source(range(100))
    pages = prefetched(source, lambda n: n, name="t-stop")
    for item, _ in pages:
        if item == 2:
            break
    pages.close()  # what a `for` loop's frame does when the run returns or raises
    assert source.closed
    assert not _alive("t-stop")
    assert source.pulled <= 4  # the page in hand, at most one ahead (and one being read)


def test_an_exception_in_the_consumer_stops_the_producer():
    source = Source(range(100))
    with pytest.raises(KeyError):
        for item, _ in prefetched(source, lambda n: n, name="t-raise"):
            if item == 1:
                raise KeyError("the write failed")
    assert source.closed and not _alive("t-raise")


# -- in the engine ---------------------------------------------------------------------------


@pytest.fixture
def small_pages(sm8_integration, sandbox_clean):
    from tests.sync.conftest import sandbox_control

    sandbox_control(sandbox_clean, "config", {"servicem8": {"page_size": 15}})
    return sm8_integration


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("sync-prefetch-")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prefetch", [True, False])
def test_a_run_reads_the_same_with_and_without_the_prefetch(small_pages, settings, prefetch):
    from portal.models import Client
    from sync.engine import sync_entity

    settings.SYNC_PREFETCH = prefetch
    run = sync_entity(integration_id=small_pages.pk, entity="clients", mode="full")
    run.refresh_from_db()
    assert run.status == "success" and run.pages_count > 3
    total = Client.objects.filter(integration=small_pages).count()
    assert run.created_count == run.fetched_count == total
    assert not _prefetch_threads()


@pytest.mark.django_db(transaction=True)
def test_a_write_error_ends_the_run_and_its_prefetch_thread(small_pages, monkeypatch):
    from sync import engine
    from sync.engine import sync_entity
    from sync.models import SyncRun

    original = engine.write_records
    calls = {"n": 0}

    def failing(integration_id, records):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the database went away")
        return original(integration_id, records)

    monkeypatch.setattr(engine, "write_records", failing)
    with pytest.raises(RuntimeError, match="went away"):
        sync_entity(integration_id=small_pages.pk, entity="clients", mode="full")
    run = SyncRun.objects.get(integration=small_pages, entity="clients")
    assert run.status == SyncRun.Status.FAILED and run.pages_count == 1
    assert not _prefetch_threads()
