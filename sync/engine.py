"""The sync engine: full and incremental runs of one entity of one integration.

A run streams the provider's pages (memory stays bounded) and, for each page, in one
transaction: upserts the records (`sync.writers`), keeps the records whose parent has not
arrived (`HeldRecord`), records the ones that fail (`SyncError`), and saves the run's counts,
heartbeat and cursor progress. A worker killed at any instant therefore leaves every page
either wholly applied or not at all; the next run starts again from the last *completed*
run's cursor, re-reads, and finds the applied pages unchanged (nothing lost, nothing
duplicated). See `sync.cursor` for the cursor rules.

- The next page is fetched and mapped in a thread while the current one is written
  (`sync.prefetch`, one page ahead; SYNC_PREFETCH = False turns it off).
- On PostgreSQL two writer threads, each with its own connection, write page N+1 while page N
  commits (`_PageWriters`; SYNC_PIPELINE = False turns it off). Pages still commit one at a
  time, in order, each with its own progress, as described here.
- On PostgreSQL a page's transaction commits with `synchronous_commit = off`: its rows, held
  records, errors and cursor progress commit together, so a commit lost in a crash (the last
  few hundred milliseconds of them) loses the whole page and the next run reads it again; the
  run's final commit (which moves `since`) is synchronous and makes every earlier one durable.

- Two runs of one integration and entity never overlap: on PostgreSQL a session advisory lock
  (released by the server the moment a dead worker's connection drops), plus a unique
  "running" row. A run left "running" by a dead worker is closed as failed by the next run
  (which holds the lock, so the old one cannot be alive) or by `sync_runs_close_dead`.
- Only a complete full run sweeps: rows of the entity that it did not see are marked deleted.
  A truncated (PaginationError), failed or deferred run never sweeps and never moves the
  cursor.
- Auth errors stop the run and mark the integration needs_reauth; a spent rate-limit budget
  ends the run as deferred, with the time to try again (the task re-queues itself).
- Cancellation is cooperative: between pages, a run whose row was marked cancelled, or whose
  cancel flag (a cache key the caller names, e.g. an admin import's) is set, stops and ends
  as cancelled, like a failed run: the cursor does not move and nothing is swept. With the
  writer threads a page also looks just before it commits, and one that sees the cancel rolls
  back, with the page after it: the pages kept are those before the cancel was seen.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import hashlib
import logging
import queue
import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.base import ExternalJobMaterial, ExternalQuote, ExternalRecord, Provider
from integrations.exceptions import (
    BudgetExhausted,
    PaginationError,
    ProviderAuthError,
    ProviderError,
)
from integrations.models import Integration
from integrations.services import integration_mark_needs_reauth, provider_for
from portal.models import SyncedModel
from quotes.models import QuoteLineItem
from sync import alerts
from sync import cursor as cursors
from sync.models import HeldRecord, SyncCursor, SyncError, SyncRun
from sync.prefetch import prefetched
from sync.writers import WriteResult, forget_hints, model_for, sink_for, unpack, write_records

logger = logging.getLogger("sync.engine")

SWEEP_CHUNK = 1000
HELD_CHUNK = 1000
# After this many runs a held record is also reported as a SyncError (it stays held).
HELD_REPORT_AFTER = 5


class RunLocked(Exception):
    """Another run of this integration and entity is in progress."""


class IntegrationUnavailable(Exception):
    """The integration is disabled or waiting for reauthorization: nothing to run."""


# -- locks ----------------------------------------------------------------------------------


def _lock_key(name: str) -> int:
    return _digest64(name)


@contextlib.contextmanager
def run_lock(integration_id: int, entity: str) -> Iterator[bool | None]:
    """True when this process holds the run's lock, None where the database has no session
    locks (SQLite, local development: the unique running row and heartbeats guard instead).
    Raises RunLocked when another process holds it."""
    if connection.vendor != "postgresql":
        yield None
        return
    key = _lock_key(f"sync:{integration_id}:{entity}")
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        if not cur.fetchone()[0]:
            raise RunLocked(f"a sync of {entity} for integration {integration_id} is running")
    try:
        yield True
    finally:
        with contextlib.suppress(Exception), connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [key])


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.SYNC_RUN_STALE_AFTER)


def sync_runs_close_dead(*, now: datetime | None = None) -> int:
    """Close runs whose worker stopped sending heartbeats. Returns how many were closed."""
    now = now or timezone.now()
    closed = 0
    stale = now - _stale_after()
    candidates = SyncRun.objects.filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale),
        status=SyncRun.Status.RUNNING,
    ).values_list("id", "integration_id", "entity")
    for run_id, integration_id, entity in candidates:
        try:
            with run_lock(integration_id, entity):
                closed += _close_dead(
                    SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.RUNNING), now
                )
        except RunLocked:
            continue  # alive after all: its worker holds the lock
    return closed


def _close_dead(runs, now: datetime) -> int:
    return runs.update(
        status=SyncRun.Status.FAILED,
        finished_at=now,
        error_summary="The worker running this sync stopped (killed or lost); closed as failed.",
    )


# -- the run --------------------------------------------------------------------------------


@dataclass
class SeenIds:
    """External ids a full run saw, per model, as 8-byte digests: ~8 bytes a record.

    The digest is Python's own string hash (64-bit SipHash, computed in C and cached on the
    string): a run's ids and the sweep's are hashed by the same process, so the per-process
    salt does not matter, and it costs a tenth of a blake2b. (The run lock's key, which other
    processes must compute alike, stays `_digest64`.)"""

    ids: dict[type[SyncedModel], array] = field(default_factory=dict)

    def add(self, model: type[SyncedModel], external_id: str) -> None:
        self.ids.setdefault(model, array("q")).append(_seen_key(external_id))

    def sorted_for(self, model: type[SyncedModel]) -> list[int]:
        return sorted(self.ids.get(model, ()))


_seen_key = hash  # str -> a signed 64-bit int on every 64-bit build


def _digest64(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass
class _Run:
    integration: Integration
    provider: Provider
    entity: str
    run: SyncRun
    seen: SeenIds | None
    high_water: datetime | None = None
    has_held: bool = False
    has_errors: bool = False
    pages: int = 0
    cancel_key: str | None = None


def _load(integration_id: int, entity: str) -> tuple[Integration, Provider]:
    integration = Integration.objects.select_related("company").get(pk=integration_id)
    if not integration.enabled or integration.status != Integration.Status.ACTIVE:
        raise IntegrationUnavailable(f"integration {integration_id} is {integration.status}")
    provider = provider_for(integration)
    if entity not in provider.entities:
        raise ValueError(f"{provider.name} does not sync {entity!r}")
    return integration, provider


@contextlib.contextmanager
def _recorded(state: _Run) -> Iterator[None]:
    """Record how a run ended: a truncated fetch is partial (and swallowed); auth, budget and
    other errors end it failed or deferred and propagate."""
    provider = state.provider
    try:
        yield
    except PaginationError as exc:
        _finish(state, SyncRun.Status.PARTIAL, f"Stopped paging: {exc}")
    except ProviderAuthError as exc:
        integration_mark_needs_reauth(integration_id=state.integration.pk, reason=str(exc))
        _finish(state, SyncRun.Status.FAILED, provider.explain(exc))
        raise
    except BudgetExhausted as exc:
        state.run.retry_at = exc.retry_at
        _finish(state, SyncRun.Status.DEFERRED, provider.explain(exc))
        raise
    except ProviderError as exc:
        _finish(state, SyncRun.Status.FAILED, provider.explain(exc))
        raise
    except BaseException as exc:
        _finish(state, SyncRun.Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000])
        raise


def sync_entity(
    *,
    integration_id: int,
    entity: str,
    mode: str,
    cancel_key: str | None = None,
    run_id: int | None = None,
) -> SyncRun:
    """One full or incremental run. Raises RunLocked, IntegrationUnavailable, and the
    provider's auth, budget and other errors after recording them on the run. A set
    `cancel_key` cache entry (or the run's row marked cancelled) stops it between pages.
    `run_id` names a run queued by `sync_runs_queue`: it becomes this run (unless it was
    cancelled before it started: then it is returned as it is)."""
    if mode not in (SyncRun.Mode.FULL, SyncRun.Mode.INCREMENTAL):
        raise ValueError(f"unknown sync mode {mode!r}")
    integration, provider = _load(integration_id, entity)
    with run_lock(integration_id, entity) as exclusive:
        run = _start(integration, entity, mode, exclusive=bool(exclusive), run_id=run_id)
        if run.status != SyncRun.Status.RUNNING:
            return run
        forget_hints(integration_id)
        state = _Run(
            integration=integration,
            provider=provider,
            entity=entity,
            run=run,
            seen=SeenIds() if mode == SyncRun.Mode.FULL else None,
            has_held=HeldRecord.objects.filter(integration=integration, entity=entity).exists(),
            has_errors=SyncError.objects.filter(
                integration=integration, entity=entity, resolved_at__isnull=True
            ).exists(),
            cancel_key=cancel_key,
        )
        with _recorded(state):
            _execute(state, mode)
    return run


def _start(
    integration: Integration, entity: str, mode: str, *, exclusive: bool, run_id: int | None
) -> SyncRun:
    now = timezone.now()
    with transaction.atomic():
        running = (
            SyncRun.objects.select_for_update()
            .filter(integration=integration, entity=entity, status=SyncRun.Status.RUNNING)
            .exclude(mode=SyncRun.Mode.WEBHOOK)
        )
        if run_id is not None:
            queued = SyncRun.objects.filter(pk=run_id, integration=integration, entity=entity)
            if queued.filter(status=SyncRun.Status.CANCELLED).exists():
                return queued.get()
            running = running.exclude(pk=run_id, heartbeat_at__isnull=True)
        for old in running:
            # Holding the lock proves the old run's worker is gone; without session locks,
            # only a heartbeat gone quiet does.
            if not exclusive and old.heartbeat_at and old.heartbeat_at > now - _stale_after():
                raise RunLocked(f"run {old.pk} of {entity} is still running")
        _close_dead(running, now)
        cursor_row, _ = SyncCursor.objects.get_or_create(integration=integration, entity=entity)
        if run_id is not None:
            # The queued row becomes the run (closed meanwhile as dead: a fresh run instead).
            adopted = queued.filter(
                status=SyncRun.Status.RUNNING, heartbeat_at__isnull=True
            ).update(
                mode=mode, started_at=now, heartbeat_at=now, cursor_before=cursor_row.value or None
            )
            if adopted:
                return queued.get()
        return SyncRun.objects.create(
            integration=integration,
            entity=entity,
            mode=mode,
            started_at=now,
            heartbeat_at=now,
            cursor_before=cursor_row.value or None,
        )


def _execute(state: _Run, mode: str) -> None:
    cursor_row = SyncCursor.objects.get(integration=state.integration, entity=state.entity)
    since = cursors.load((cursor_row.value or {}).get("since"))
    asked = None
    if mode == SyncRun.Mode.INCREMENTAL:
        lookback = timedelta(seconds=state.provider.cursor_lookback_seconds)
        asked = cursors.request_since(since, lookback)
    if _apply_pages(state, state.provider.pages(state.entity, updated_since=asked)):
        # Like a failed run: the cursor stays where it was and nothing is swept. (The pages
        # that committed: with the pipeline, pages read past the cancel were rolled back.)
        state.run.refresh_from_db(fields=["pages_count"])
        _finish(
            state,
            SyncRun.Status.CANCELLED,
            f"Cancelled after {state.run.pages_count} page(s); the cursor was not moved and "
            "nothing was swept.",
        )
        return
    _retry_held(state)
    status = SyncRun.Status.SUCCESS
    if state.seen is not None:
        _sweep(state)
    with transaction.atomic():
        new_since = cursors.next_since(since, state.high_water, state.run.started_at)
        value = {"since": cursors.dump(new_since)}
        SyncCursor.objects.filter(pk=cursor_row.pk).update(value=value, updated_at=timezone.now())
        state.run.cursor_after = value
        state.run.refresh_from_db(fields=["failed_count", "held_count"])
        if (
            state.run.failed_count
            or HeldRecord.objects.filter(
                integration=state.integration, entity=state.entity
            ).exists()
        ):
            status = SyncRun.Status.PARTIAL
        _finish(state, status, _summary(state))
        Integration.objects.filter(pk=state.integration.pk).update(
            last_synced_at=state.run.finished_at
        )


def _apply_pages(state: _Run, pages: Iterator[list[dict]]) -> bool:
    """Apply every page in order; True when the run was cancelled between two pages. With
    SYNC_PREFETCH (the default) the next page is fetched and mapped in a thread while this
    one is written (sync.prefetch): its provider call and its mapping overlap the database's
    work. With SYNC_PIPELINE (the default, PostgreSQL only) pages are written by two writer
    threads (`_PageWriters`), so one page's commit overlaps the next page's writes. A run
    that stops (cancelled, or an error) stops the threads before returning; it may have read
    one page it never applies."""
    if getattr(settings, "SYNC_PREFETCH", True):
        prepare = functools.partial(_map_page, state.provider, state.entity)
        ahead = prefetched(iter(pages), prepare, name=f"sync-prefetch-{state.entity}")
    else:
        ahead = ((raws, None) for raws in pages)
    with contextlib.closing(ahead):
        if not _pipelined(state):
            for raws, mapped in ahead:
                _apply_page(state, raws, retrying_held=False, mapped=mapped)
                if _cancel_requested(state):
                    return True
            return False
        with _PageWriters(state) as writers:
            try:
                while True:
                    writers.make_room()  # (before the next page is taken: see make_room)
                    page = next(ahead, None)
                    if page is None:
                        break
                    raws, mapped = page
                    if mapped is None:
                        mapped = _map_page(state.provider, state.entity, raws)
                    after = writers.previous.finished if writers.previous else None
                    ticket = _observe(state, mapped, retrying_held=False, ordered=True, after=after)
                    writers.submit(raws, mapped, ticket)
                    if _cancel_requested(state):
                        writers.drain()
                        return True
                writers.drain()
            except _Cancelled:  # (a page saw the cancel before it committed)
                return True
    return False


def _pipelined(state: _Run) -> bool:
    """Whether pages go to `_PageWriters`: on PostgreSQL, when SYNC_PIPELINE is on (the
    default), not inside a caller's transaction (an atomic block, or autocommit turned off:
    the writers' own connections could not see what it has not committed), and not for an
    entity whose records name others of the same table as their parent (a site its head
    office, a category its parent): a parent in the page still committing would not be
    found, and its children would be held until the end of the run instead."""
    return (
        getattr(settings, "SYNC_PIPELINE", True)
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.get_autocommit()
        and not any(
            sink_for(record_type).own_parent
            for record_type in state.provider.record_types(state.entity)
        )
    )


def _await_turn(state: _Run, ticket: _Ticket) -> None:
    """Pipelined: wait for the page before this one to end, first in the database (its turn
    lock, released when its transaction ends: a wait the deadlock detector sees), then for its
    writer to be done with it (nothing left there that could wait on this page's locks); then
    stop here, rolled back, if the run was cancelled meanwhile: a cancel seen after page N
    leaves pages 1..N, as without the pipeline."""
    if ticket.number > 1:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock_shared(%s, %s)", _turn(state, ticket.number - 1)
            )
    if ticket.after is not None:
        ticket.after.wait()
    if _cancel_requested(state):
        raise _Cancelled


def _turn(state: _Run, page: int) -> tuple[int, int]:
    """The advisory lock (two int4 keys: a space of its own) page `page` of the run holds for
    its transaction, so that the next page can wait, in the database, for it to end."""
    return state.run.pk % 2**31, page


class _Cancelled(Exception):
    """Pipelined: the run was cancelled before this page committed."""


class _OutOfOrder(Exception):
    """A page found that the page before it did not commit (it failed or was cancelled)."""


class _PageWriters:
    """Two writer threads, each with its own database connection, applying pages in order:
    page N+1 is written while page N commits (the commit's deferred foreign-key checks, the
    search indexes' pending lists), and page N+1's Python (rows, digests, the COPY's text)
    runs while the server works on page N. Profiles of a first sync had the worker waiting on
    the server for ~60% of its time and the server idle while the worker built rows.

    Order and atomicity stay as without the threads: each page is one transaction with its
    counts and cursor progress, and a page commits only after the page before it. Every
    page's transaction ends by updating the run's row, which waits (in the database) for the
    previous page's transaction to end; the update is conditional on the previous page's
    count being there, so a page whose predecessor failed fails too (`_OutOfOrder`) and
    nothing commits out of order.

    Two pages in flight never write the same rows: a page that shares a record (an external
    id) with the page before it (a record edited while the provider was paged comes twice)
    begins only once that page has ended, as without the threads. Otherwise each would wait
    for the other's lock on one of them, a deadlock the server breaks by failing those rows.
    Pages of different records share only parent rows, which foreign-key checks lock in share
    mode and no page of the entity updates.

    At most two pages are in flight; `submit` waits for the older one to end and raises the
    first failure, in page order. Leaving the block (normally, or on an error from the
    provider, the mapping or a page) waits for every page in flight to end and closes the
    threads' connections."""

    THREADS = 2

    def __init__(self, state: _Run) -> None:
        self.state = state
        self.tasks: queue.Queue = queue.Queue()
        self.pending: collections.deque[concurrent.futures.Future] = collections.deque()
        self.previous: _Ticket | None = None  # the last page's
        self.previous_ids: frozenset[str] = frozenset()  # … and its records' external ids
        self.threads = [
            threading.Thread(target=self._work, name=f"sync-writer-{state.entity}-{i}", daemon=True)
            for i in range(self.THREADS)
        ]

    def __enter__(self) -> _PageWriters:
        try:
            for thread in self.threads:
                thread.start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        """After an error or a cancel (`drain` has emptied `pending` otherwise): pages not
        started never start, and the pages in flight end; a page after one that failed or saw
        the cancel rolls back (its turn, above). If the error came from outside the pages (the
        provider, the mapping) while a page in flight failed, the page's error is raised
        instead, chained to it: without the threads that page would have failed first."""
        try:
            for future in self.pending:
                future.cancel()
            concurrent.futures.wait(self.pending)
            if exc is not None and not isinstance(exc, _Cancelled):
                for future in self.pending:
                    failure = None if future.cancelled() else future.exception()
                    if failure is not None and not isinstance(failure, _Cancelled | _OutOfOrder):
                        raise failure from exc
        finally:
            self._stop()

    def _stop(self) -> None:
        for _ in self.threads:
            self.tasks.put(None)
        for thread in self.threads:
            if thread.is_alive():
                thread.join()

    def _work(self) -> None:
        try:
            while (task := self.tasks.get()) is not None:
                future, raws, mapped, ticket, begin_after = task
                try:
                    if not future.set_running_or_notify_cancel():
                        continue
                    # Begin only once the page before holds its turn lock (this page's wait
                    # for it to end is then a lock wait the server sees, never one on a page
                    # that has not begun), or has ended if the two share a record.
                    if begin_after is not None:
                        begin_after.wait()
                    _apply_page(self.state, raws, retrying_held=False, mapped=mapped, ticket=ticket)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(None)
                finally:
                    ticket.started.set()
                    ticket.finished.set()
                    # (not kept while this thread waits for the next page)
                    del task, raws, mapped, ticket, begin_after
        finally:
            connections.close_all()

    def make_room(self) -> None:
        """Wait until a writer is free (raising the first failure, in page order). Called
        before the next page is taken from the provider, so that the pages in memory are the
        two in flight and the one the prefetch thread has ready; `submit` expects it."""
        while len(self.pending) >= self.THREADS:
            self.pending.popleft().result()

    def submit(self, raws: list[dict], mapped: _Mapped, ticket: _Ticket) -> None:
        future: concurrent.futures.Future = concurrent.futures.Future()
        # (a record that could not be mapped counts: its error and a good copy's settling)
        ids = frozenset(record.external_id for record in mapped.records) | frozenset(
            filter(None, mapped.unmapped)
        )
        begin_after = None
        if self.previous is not None:
            shares = not ids.isdisjoint(self.previous_ids)
            begin_after = self.previous.finished if shares else self.previous.started
        self.tasks.put((future, raws, mapped, ticket, begin_after))
        self.pending.append(future)
        self.previous, self.previous_ids = ticket, ids

    def drain(self) -> None:
        while self.pending:
            self.pending[0].result()
            self.pending.popleft()


def _cancel_requested(state: _Run) -> bool:
    if state.cancel_key and cache.get(state.cancel_key):
        return True
    return SyncRun.objects.filter(pk=state.run.pk, status=SyncRun.Status.CANCELLED).exists()


def _summary(state: _Run) -> str:
    parts = []
    if state.run.failed_count:
        parts.append(f"{state.run.failed_count} record(s) failed; see the sync errors.")
    held = HeldRecord.objects.filter(integration=state.integration, entity=state.entity).count()
    if held:
        parts.append(f"{held} record(s) wait for their parent and will be retried.")
    return " ".join(parts)


def _finish(state: _Run, status: str, summary: str) -> None:
    run = state.run
    run.status = status
    run.finished_at = timezone.now()
    run.error_summary = summary[:4000]
    run.save(
        update_fields=[
            "status",
            "finished_at",
            "error_summary",
            "cursor_after",
            "retry_at",
            "swept",
        ]
    )
    logger.info(
        "sync run finished",
        extra={
            "integration_id": state.integration.pk,
            "entity": state.entity,
            "mode": run.mode,
            "status": status,
            "run_id": run.pk,
        },
    )
    alerts.on_sync_run_finished(run)


@dataclass
class _Mapped:
    """A page mapped (`_map_page`): no database, no run state, so it can be made ahead."""

    records: list[ExternalRecord] = field(default_factory=list)
    origin: dict[int, dict] = field(default_factory=dict)  # id(record) -> its raw record
    errors: list[tuple[str, dict, str]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)  # external ids of records not mapped


def _map_page(provider: Provider, entity: str, raws: list[dict]) -> _Mapped:
    page = _Mapped()
    records, origin = page.records, page.origin
    for raw in raws:
        try:
            external_id = str(provider.record_id(entity, raw))[:255]
        except Exception:  # not even a record (a provider sent a bare value)
            external_id = ""
        try:
            if not isinstance(raw, dict):
                raise TypeError(f"expected a JSON object, got {type(raw).__name__}")
            mapped = unpack(provider.map_record(entity, raw))
        except Exception as exc:  # a record we cannot map must not stop the run
            page.errors.append((external_id, raw, f"Could not map: {type(exc).__name__}: {exc}"))
            page.unmapped.append(external_id)
            continue
        for record in mapped:
            origin[id(record)] = raw
            records.append(record)
    return page


@dataclass(frozen=True)
class _Ticket:
    """What a page's transaction records of the run's progress, taken in page order."""

    number: int  # the page's number in the run (pages_count once it commits); 0: held retry
    high_water: datetime | None
    ordered: bool = False  # pipelined: commit only after page number - 1 (`_PageWriters`)
    after: threading.Event | None = field(default=None, compare=False)  # page number - 1's
    # Pipelined: set once this page's transaction holds its turn lock (or has ended) …
    started: threading.Event = field(default_factory=threading.Event, compare=False)
    # … and once its writer is done with it (committed, or not).
    finished: threading.Event = field(default_factory=threading.Event, compare=False)


def _observe(
    state: _Run,
    mapped: _Mapped,
    *,
    retrying_held: bool,
    ordered: bool = False,
    after: threading.Event | None = None,
) -> _Ticket:
    """The run's own bookkeeping of a page (ids seen, high water, page count): in page order,
    in the thread that reads the pages."""
    for external_id in mapped.unmapped:
        _see_unmapped(state, external_id)
    high_water = state.high_water
    for record in mapped.records:
        _see(state, record)
        high_water = cursors.high_water(high_water, record.remote_updated_at)
    state.high_water = high_water
    if retrying_held:
        return _Ticket(number=0, high_water=high_water)
    state.pages += 1
    return _Ticket(number=state.pages, high_water=high_water, ordered=ordered, after=after)


def _apply_page(
    state: _Run,
    raws: list[dict],
    *,
    retrying_held: bool,
    mapped: _Mapped | None = None,
    ticket: _Ticket | None = None,
) -> WriteResult:
    entity = state.entity
    if mapped is None:
        mapped = _map_page(state.provider, entity, raws)
    if ticket is None:
        ticket = _observe(state, mapped, retrying_held=retrying_held)
    records, origin, errors = mapped.records, mapped.origin, list(mapped.errors)
    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The page's rows and its progress commit together: a commit lost in a crash
            # loses both, and the next run reads the page again (the run is not marked done
            # until its last page). So the page need not wait for its WAL to reach the disk.
            with connection.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                if ticket.ordered:  # (see _PageWriters)
                    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", _turn(state, ticket.number))
        ticket.started.set()
        result = write_records(state.integration.pk, records)
        held = _hold(state, result, origin, now)
        settled = {
            r.external_id
            for r in records
            if r.external_id in result.settled.get(model_for(type(r)), ())
        } - held
        if (state.has_held or retrying_held) and settled:
            HeldRecord.objects.filter(
                integration=state.integration, entity=entity, external_id__in=settled
            ).delete()
        for record, reason in result.failed:
            errors.append((record.external_id, origin.get(id(record), record.raw), reason))
        if errors:
            _record_errors(state, errors)
        if state.has_errors and settled:
            SyncError.objects.filter(
                integration=state.integration,
                entity=entity,
                external_id__in=settled,
                resolved_at__isnull=True,
            ).update(resolved_at=now)
        run_row = SyncRun.objects.filter(pk=state.run.pk)
        if ticket.ordered:
            _await_turn(state, ticket)
            run_row = run_row.filter(pages_count=ticket.number - 1)
        updated = run_row.update(
            fetched_count=F("fetched_count") + (0 if retrying_held else len(raws)),
            created_count=F("created_count") + result.created,
            updated_count=F("updated_count") + result.updated,
            unchanged_count=F("unchanged_count") + result.unchanged,
            deleted_count=F("deleted_count") + result.deleted,
            failed_count=F("failed_count") + len(errors),
            held_count=F("held_count") + (0 if retrying_held else len(held)),
            pages_count=F("pages_count") + (0 if retrying_held else 1),
            heartbeat_at=now,
        )
        if not updated and ticket.ordered:
            raise _OutOfOrder(f"page {ticket.number - 1} of the run did not commit")
        if state.run.mode != SyncRun.Mode.WEBHOOK:
            # Progress only: the next run still starts from `since`, which moves when a run
            # completes (pages need not be in modification order; see sync.cursor).
            SyncCursor.objects.filter(integration=state.integration, entity=entity).update(
                value={
                    **(state.run.cursor_before or {}),
                    "progress": {
                        "run": state.run.pk,
                        "pages": ticket.number or state.pages,
                        "high_water": cursors.dump(ticket.high_water),
                    },
                },
                updated_at=now,
            )
    return result


def _see(state: _Run, record: ExternalRecord) -> None:
    if state.seen is None:
        return
    state.seen.add(model_for(type(record)), record.external_id)
    if isinstance(record, ExternalQuote) and record.line_items is not None:
        for item in record.line_items:
            state.seen.add(QuoteLineItem, item.external_id)
    if isinstance(record, ExternalJobMaterial) and record.quote_external_id:
        state.seen.add(QuoteLineItem, record.external_id)


def _see_unmapped(state: _Run, external_id: str) -> None:
    """A record we could not map still exists at the provider: never sweep it away."""
    if state.seen is None or not external_id:
        return
    for record_type in state.provider.record_types(state.entity):
        state.seen.add(model_for(record_type), external_id)


def _hold(state: _Run, result: WriteResult, origin: dict[int, dict], now: datetime) -> set[str]:
    held: dict[str, tuple[dict, str]] = {}
    for record, reason in result.held:
        raw = origin.get(id(record))
        if raw is not None:  # embedded or derived items wait with their parent's record
            held[record.external_id] = (raw, reason)
    if not held:
        return set()
    HeldRecord.objects.bulk_create(
        [
            HeldRecord(
                integration=state.integration,
                entity=state.entity,
                external_id=external_id,
                raw=raw,
                waiting_for=reason[:255],
            )
            for external_id, (raw, reason) in held.items()
        ],
        update_conflicts=True,
        unique_fields=["integration", "entity", "external_id"],
        update_fields=["raw", "waiting_for", "updated_at"],
    )
    state.has_held = True
    return set(held)


def _record_errors(state: _Run, errors: list[tuple[str, dict, str]]) -> None:
    SyncError.objects.bulk_create(
        [
            SyncError(
                run=state.run,
                integration=state.integration,
                entity=state.entity,
                external_id=external_id[:255],
                payload_excerpt=str(raw)[:2000],
                message=message[:4000],
            )
            for external_id, raw, message in errors
        ]
    )
    state.has_errors = True


def _retry_held(state: _Run) -> None:
    """Give held records another chance now that this run has brought their parents."""
    if not state.has_held:
        return
    last_id = 0
    while True:
        chunk = list(
            HeldRecord.objects.filter(
                integration=state.integration, entity=state.entity, id__gt=last_id
            ).order_by("id")[:HELD_CHUNK]
        )
        if not chunk:
            return
        last_id = chunk[-1].id
        _apply_page(state, [h.raw for h in chunk], retrying_held=True)
        still = HeldRecord.objects.filter(id__in=[h.id for h in chunk])
        still.update(attempts=F("attempts") + 1)
        overdue = list(still.filter(attempts=HELD_REPORT_AFTER))
        if overdue:
            _record_errors(
                state,
                [
                    (
                        h.external_id,
                        h.raw,
                        f"Still waiting for {h.waiting_for} after "
                        f"{h.attempts} runs; kept and retried on every run.",
                    )
                    for h in overdue
                ],
            )


def _sweep(state: _Run) -> None:
    """Mark deleted every live local row of this entity the complete full run did not see."""
    seen_ids = state.seen or SeenIds()
    deleted = 0
    now = timezone.now()
    for record_type in state.provider.record_types(state.entity):
        model = model_for(record_type)
        seen = seen_ids.sorted_for(model)
        gone: list[int] = []
        # Rows created after the run started (a webhook's re-fetch) were not there to be seen.
        rows = (
            model.objects.filter(
                integration=state.integration,
                remote_deleted_at__isnull=True,
                created_at__lt=state.run.started_at,
                **state.provider.sweep_scope(state.entity, record_type),
            )
            .values_list("id", "external_id")
            .iterator(chunk_size=5000)
        )
        for pk, external_id in rows:
            if not _contains(seen, _seen_key(external_id)):
                gone.append(pk)
        if record_type is state.provider.record_types(state.entity)[0]:
            # A held record the provider no longer lists is gone: stop waiting for its parent.
            held = HeldRecord.objects.filter(
                integration=state.integration,
                entity=state.entity,
                created_at__lt=state.run.started_at,
            ).values_list("id", "external_id")
            HeldRecord.objects.filter(
                pk__in=[pk for pk, ext in held if not _contains(seen, _seen_key(ext))]
            ).delete()
        for start in range(0, len(gone), SWEEP_CHUNK):
            with transaction.atomic():
                deleted += model.objects.filter(
                    id__in=gone[start : start + SWEEP_CHUNK], remote_deleted_at__isnull=True
                ).update(remote_deleted_at=now, updated_at=now)
    SyncRun.objects.filter(pk=state.run.pk).update(deleted_count=F("deleted_count") + deleted)
    state.run.swept = True


def _contains(sorted_digests: list[int], digest: int) -> bool:
    index = bisect_left(sorted_digests, digest)
    return index < len(sorted_digests) and sorted_digests[index] == digest


def sync_integration(
    *,
    integration_id: int,
    mode: str,
    entities: list[str] | None = None,
    run_ids: dict[str, int] | None = None,
) -> list[SyncRun]:
    """Every entity of the integration, in the provider's dependency order. A locked entity is
    skipped; auth and budget errors stop the pass (the budget error carries the entities
    still to run). `run_ids` (entity -> run queued by `sync_runs_queue`) become the runs; any
    of them not started when the pass ends is closed, saying why."""
    run_ids = run_ids or {}
    integration = Integration.objects.select_related("company").get(pk=integration_id)
    order = provider_for(integration).entities
    todo = [e for e in order if entities is None or e in entities]
    runs: list[SyncRun] = []
    not_started = (SyncRun.Status.FAILED, "Not started: the sync stopped before this entity.")
    try:
        for index, entity in enumerate(todo):
            try:
                runs.append(
                    sync_entity(
                        integration_id=integration_id,
                        entity=entity,
                        mode=mode,
                        run_id=run_ids.get(entity),
                    )
                )
            except RunLocked:
                logger.info(
                    "sync skipped: already running",
                    extra={"integration_id": integration_id, "entity": entity},
                )
            except BudgetExhausted as exc:
                exc.remaining_entities = todo[index:]  # type: ignore[attr-defined]
                not_started = (
                    SyncRun.Status.DEFERRED,
                    "Not started: the API budget is spent; queued again for when it refills.",
                )
                raise
            except ProviderAuthError:
                not_started = (
                    SyncRun.Status.FAILED,
                    "Not started: the provider refused the credentials.",
                )
                raise
            except ProviderError:
                logger.warning(
                    "sync of one entity failed; going on with the next",
                    extra={"integration_id": integration_id, "entity": entity},
                )
    except IntegrationUnavailable as exc:
        not_started = (SyncRun.Status.FAILED, f"Not started: {exc}.")
        raise
    finally:
        if run_ids:
            _queued_runs_close(list(run_ids.values()), *not_started)
    return runs


def sync_runs_queue(*, integration: Integration, entities: list[str], mode: str) -> list[SyncRun]:
    """Record one run per entity before its task is queued, so callers get real run ids: a
    queued run is "running" with no heartbeat yet (the unique running row keeps a second
    sync of the entity out) and becomes the run when a worker starts it (`run_ids`). Raises
    RunLocked when one of the entities is already running (or queued)."""
    now = timezone.now()
    with transaction.atomic():
        running = (
            SyncRun.objects.select_for_update()
            .filter(integration=integration, entity__in=entities, status=SyncRun.Status.RUNNING)
            .exclude(mode=SyncRun.Mode.WEBHOOK)
        )
        # A queued run whose task never came (a lost message) is dead after the stale period.
        _close_dead(
            running.filter(heartbeat_at__isnull=True, started_at__lt=now - _stale_after()), now
        )
        busy = sorted(
            running.filter(status=SyncRun.Status.RUNNING).values_list("entity", flat=True)
        )
        if busy:
            raise RunLocked(f"a sync of {', '.join(busy)} is already running")
        try:
            with transaction.atomic():
                return [
                    SyncRun.objects.create(
                        integration=integration, entity=entity, mode=mode, started_at=now
                    )
                    for entity in entities
                ]
        except IntegrityError as exc:  # another request queued the same entity meanwhile
            raise RunLocked("a sync of these entities is already running") from exc


def _queued_runs_close(run_ids: list[int], status: str, summary: str) -> int:
    """Close queued runs (no heartbeat: no worker ever took them)."""
    now = timezone.now()
    return SyncRun.objects.filter(
        pk__in=run_ids, status=SyncRun.Status.RUNNING, heartbeat_at__isnull=True
    ).update(status=status, finished_at=now, error_summary=summary)


def sync_record(*, integration_id: int, entity: str, external_id: str) -> SyncRun:
    """Re-fetch one record (a webhook named it) and apply it; a record the provider no longer
    has is marked deleted. Runs beside full and incremental runs: the writers skip a copy
    older than the stored one, so neither can undo the other."""
    integration, provider = _load(integration_id, entity)
    now = timezone.now()
    run = SyncRun.objects.create(
        integration=integration,
        entity=entity,
        mode=SyncRun.Mode.WEBHOOK,
        started_at=now,
        heartbeat_at=now,
    )
    state = _Run(
        integration=integration,
        provider=provider,
        entity=entity,
        run=run,
        seen=None,
        has_held=True,
        has_errors=True,
    )
    with _recorded(state):
        forget_hints(integration_id)  # (a worker's last full run may have left "all new")
        raw = provider.fetch_record(entity, external_id)
        if raw is None:
            deleted = 0
            for record_type in provider.record_types(entity):
                deleted += (
                    model_for(record_type)
                    .objects.filter(
                        integration=integration,
                        external_id=external_id,
                        remote_deleted_at__isnull=True,
                    )
                    .update(remote_deleted_at=now, updated_at=now)
                )
            SyncRun.objects.filter(pk=run.pk).update(deleted_count=deleted)
        else:
            _apply_page(state, [raw], retrying_held=False)
        run.refresh_from_db(fields=["failed_count", "held_count"])
        status = SyncRun.Status.PARTIAL if run.failed_count or run.held_count else None
        _finish(state, status or SyncRun.Status.SUCCESS, _summary(state))
    return run
