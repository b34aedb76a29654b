"""Deterministic, realistic, mutually consistent seed data for the sandbox.

``seed(db_path, records=N)`` creates the standard accounts (``ensure_accounts``) and fills the
*primary* account of each provider (the secondary ones stay empty, for isolation tests). N is
**clients per provider**; the other objects scale from it through a ``Mix`` of per-client
ratios, or are fixed catalogues. Field names and types follow the official specs (see
``servicem8.py`` and ``servicetitan_resources.py`` for the details and the few deviations).

ServiceM8, a Sydney plumbing business (``seed_servicem8.py``); per client, default mix:

- ``company`` (N): ~60 % individuals, ~30 % businesses (head offices), ~10 % sites of an
  earlier business (``parent_company_uuid``), with address fields, ABN, billing address;
- ``companycontact`` (1–2 per company): primary ``BILLING`` contact, then ``JOB`` contacts;
- ``job`` (0–4, ~2 per company): a third are quotes (status ``Quote``, ``quote_sent`` 0/1),
  the rest ``Completed`` / ``Work Order`` / ``Unsuccessful`` with consistent dates and
  ``total_invoice_amount`` = the tax-inclusive sum of their active line items;
- ``jobmaterial`` (2–6 per job, quotes included): priced from the pricebook, GST or GST-free;
- ``jobactivity`` (0–2 per non-quote job): scheduled visits by field staff, in business hours;
- fixed: ``staff`` (18), ``material`` (89), ``category`` (9), ``taxrate`` (3).

ServiceTitan, a US HVAC/plumbing business (``seed_servicetitan.py``); per client:

- ``customers`` (N): ~75 % Residential, ~25 % Commercial, increasing int64 ids with gaps,
  ``createdOn`` increasing with the id, custom fields, balances, do-not-mail flags,
  ``mergedToId`` (an earlier customer) on half of the deactivated ones;
- ``locations`` (1 per customer), ``contacts`` (1–2: phone, e-mail), ``location-contacts``
  (site phone/e-mail on most commercial locations), ``projects`` (~1 in 7 customers);
- ``jobs`` (0–4, ~2 per customer) with one ``appointments`` record each;
- ``estimates`` (~1 per 2 customers, on one of the customer's jobs; Open/Sold/Dismissed)
  with 2–6 ``items`` (pricebook SKUs, ``total`` = ``qty`` × ``unitRate``);
- fixed: ``technicians`` (18), ``employees`` (6), ``business-units`` (5), ``job-types``
  (10), pricebook ``categories`` (21, a two-level tree), ``services`` (34), ``materials``
  (51), ``equipment`` (18); ``job-cancel-reasons`` (6), ``job-hold-reasons`` (5),
  ``tag-types`` (8), dispatch ``zones`` (5), ``teams`` (5; SPEC GAP: documented, not in
  the 2022 spec) and ``technician-shifts`` (the active
  technicians' weekday and on-call shifts from a week ago to a week ahead).

Modified times spread over the past year, denser towards now (most edits are recent), and never
precede the record's own history (a job's quote, completion and invoice dates all fall before
its ``edit_date``). About 2 % of records are soft-deleted (``active`` 0/false) where the spec has
an ``active`` field, as both providers keep deleted records readable (NOTES.md §1 "Deletion
detection", §2 "Deletion detection"); references to soft-deleted records stay valid.

Content is a pure function of ``seed`` (one ``random.Random`` per provider and concern, so that
e.g. changing the job mix never changes the clients); timestamps are relative to ``now``
(default: the current minute), so two runs with the same seed, ``now`` and mix produce
identical databases. Re-seeding without ``reset`` upserts: the same seed rewrites the same ids.
Generation is streamed: rows go to per-object buffers flushed ``BATCH`` rows at a time, so
memory stays flat at any size (1,000,000 clients per provider is the design point). From
``PARALLEL_FROM`` clients on, each provider is generated in its own worker process while this
one inserts (same content). The high-volume objects are formatted from JSON templates
(``seed_base.json_template``) rather than ``json.dumps``-ed dicts.

Measured on 2 cores (``sandbox_seed --records 1000000``): the default mix writes 22.2 million
records in ~6 minutes into a ~16 GB file (peak ~1.3 GB RSS, most of it SQLite's page cache);
``--clients-only`` writes 3.0 million records in ~35 s (~1.6 GB).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from queue import Full, Queue
from typing import Any, BinaryIO

from integrations.sandbox import accounts
from integrations.sandbox import seed_servicem8 as sm8_seed
from integrations.sandbox import seed_servicetitan as st_seed
from integrations.sandbox.seed_base import CLIENTS_ONLY, Mix
from integrations.sandbox.seed_servicem8 import seed_servicem8, servicem8_companies
from integrations.sandbox.seed_servicetitan import seed_servicetitan, servicetitan_customers
from integrations.sandbox.servicem8 import VENDOR_DEFAULTS
from integrations.sandbox.store import BulkLoader, Collection, Row, Store, to_us

__all__ = [
    "BATCH",
    "PARALLEL_FROM",
    "CLIENTS_ONLY",
    "Mix",
    "ensure_accounts",
    "seed",
    "seed_store",
    "servicem8_companies",
    "servicetitan_customers",
]

BATCH = 10_000


def _now_minute() -> datetime:
    return datetime.now(tz=UTC).replace(second=0, microsecond=0)


# --- accounts ----------------------------------------------------------------------------------


def ensure_accounts(store: Store) -> None:
    """Create the ServiceM8 ``vendor`` record of every standard account if it is missing.

    ``GET /vendor.json`` returns the account's own record [spec: Vendor]. ServiceTitan tenants
    need no record: the tenant only appears in URLs and tokens.
    """
    for account in accounts.SERVICEM8_ACCOUNTS:
        collection = Collection("servicem8", account.uuid, "vendor")
        if store.get(collection, account.uuid) is not None:
            continue
        data = dict(VENDOR_DEFAULTS)
        data.update(
            name=account.name,
            email=account.email,
            timezone_name=account.timezone,
            website=f"https://www.{account.email.split('@', 1)[1]}",
            billing_address="Level 1, 100 George St\nSydney NSW 2000",
            business_number="51 824 753 556",
            abn_number="51 824 753 556",
            invoice_terms="Payment due within 14 days.",
        )
        store.upsert(collection, account.uuid, data)


# --- loading -----------------------------------------------------------------------------------

_PROVIDERS: dict[str, tuple[str, Any, tuple[str, ...]]] = {
    "servicem8": (accounts.SERVICEM8_ACCOUNT.uuid, seed_servicem8, sm8_seed.OBJECTS),
    "servicetitan": (accounts.SERVICETITAN_TENANT.tenant_id, seed_servicetitan, st_seed.OBJECTS),
}
# From this many clients on, ``workers="auto"`` generates in worker processes.
PARALLEL_FROM = 20_000
# Batches in flight between the generator processes and the loader (bounds memory).
_QUEUE_BATCHES = 6
_FAILED = "!failed"  # a reader's message tag: the worker broke off


class _Buffers:
    """Per-object row buffers; ``take()`` yields the ones that reached ``BATCH`` rows (each
    is cleared once the consumer moves on)."""

    def __init__(self) -> None:
        self._buffers: dict[str, list[Row]] = {}

    def buffer(self, obj: str) -> list[Row]:
        buffer = self._buffers.get(obj)
        if buffer is None:
            buffer = self._buffers[obj] = []
        return buffer

    def take(self, *, force: bool = False) -> Iterator[tuple[str, list[Row]]]:
        for obj, buffer in self._buffers.items():
            if len(buffer) >= BATCH or (force and buffer):
                yield obj, buffer
                buffer.clear()


class _LoaderSink(_Buffers):
    """Writes full buffers straight to the store (the in-process path).

    Each flush writes one object's rows together, so every object's rows sit in runs of
    ``BATCH`` in the table (a full walk of one object reads few pages). A producer *thread*
    was measured to be slower than generating and inserting in turn, because ``sqlite3``
    re-acquires the GIL per row; worker *processes* (``_PipeSink``) do help.
    """

    def __init__(self, loader: BulkLoader, provider: str, counts: dict[str, int]) -> None:
        super().__init__()
        self._loader = loader
        self._provider = provider
        self._account = _PROVIDERS[provider][0]
        self.counts = counts

    def flush(self, *, force: bool = False) -> None:
        for obj, rows in self.take(force=force):
            collection = Collection(self._provider, self._account, obj)
            self.counts[obj] += self._loader.insert(collection, rows)


class _PipeSink(_Buffers):
    """Pickles full buffers to a binary stream (a worker process's stdout)."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out

    def flush(self, *, force: bool = False) -> None:
        for obj, rows in self.take(force=force):
            pickle.dump((obj, rows), self._out, protocol=pickle.HIGHEST_PROTOCOL)


def _worker_main(argv: list[str]) -> None:
    """``python -m integrations.sandbox.seed --worker PROVIDER RECORDS SEED NOW_US C J E``:
    generate one provider's rows and pickle (object, rows) batches to stdout, then
    (None, None)."""
    provider, records, seed, now_us, contacts, jobs, estimates = argv
    mix = Mix(float(contacts), float(jobs), float(estimates))
    out = sys.stdout.buffer
    sink = _PipeSink(out)
    _PROVIDERS[provider][1](sink, records=int(records), seed=int(seed), now_us=int(now_us), mix=mix)
    sink.flush(force=True)
    pickle.dump((None, None), out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def _read_batches(
    proc: subprocess.Popen[bytes], provider: str, batches: Queue, stop: threading.Event
) -> None:
    """Reader thread: unpickle a worker's batches into ``batches`` until its end marker."""

    def put(item: tuple[str, str | None, Any]) -> None:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.5)
                return
            except Full:
                continue

    stream = proc.stdout
    if stream is None:  # pragma: no cover - Popen(stdout=PIPE) always has one
        raise RuntimeError("worker has no stdout pipe")
    try:
        while True:
            # A fresh unpickler per batch: one kept across loads would keep every object it
            # ever read (protocol 4+ memoizes by position), i.e. the whole database.
            obj, rows = pickle.load(stream)  # noqa: S301 - our own worker process's output
            put((provider, obj, rows))
            if obj is None:
                return
    except Exception as exc:  # noqa: BLE001 - reported to the loading thread
        put((provider, _FAILED, f"worker exited with {proc.wait()}: {exc!r}"))


def _load_serial(loader: BulkLoader, counts: dict[str, dict[str, int]], **kwargs: Any) -> None:
    for provider, (_, generate, _) in _PROVIDERS.items():
        sink = _LoaderSink(loader, provider, counts[provider])
        generate(sink, **kwargs)
        sink.flush(force=True)


def _load_parallel(
    loader: BulkLoader,
    counts: dict[str, dict[str, int]],
    *,
    records: int,
    seed: int,
    now_us: int,
    mix: Mix,
) -> None:
    """Generate each provider in its own process while this one inserts.

    On 2 cores this overlaps generation (~60 % of the serial time) with insertion. Workers are
    plain ``python -m`` subprocesses (not ``multiprocessing``, which re-imports the caller's
    ``__main__``) writing pickled batches to a pipe. The content is the same as the serial
    path's: each provider's generator is deterministic on its own; only the interleaving of the
    two providers' batches in the file differs.
    """
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
    ratios = (mix.contacts_per_client, mix.jobs_per_client, mix.estimates_per_client)
    batches: Queue = Queue(maxsize=_QUEUE_BATCHES)
    stop = threading.Event()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for provider in _PROVIDERS:
            args = [sys.executable, "-m", __name__, "--worker", provider]
            args += [str(v) for v in (records, seed, now_us, *ratios)]
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)  # noqa: S603
            procs.append(proc)
            reader = threading.Thread(
                target=_read_batches, args=(proc, provider, batches, stop), daemon=True
            )
            reader.start()
        running = set(_PROVIDERS)
        while running:
            provider, obj, rows = batches.get()
            if obj is None:
                running.discard(provider)
            elif obj == _FAILED:
                raise RuntimeError(f"seeding {provider} failed: {rows}")
            else:
                collection = Collection(provider, _PROVIDERS[provider][0], obj)
                counts[provider][obj] += loader.insert(collection, rows)
    finally:
        stop.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def seed_store(
    store: Store,
    *,
    records: int,
    seed: int = 42,
    reset: bool = False,
    now: datetime | None = None,
    mix: Mix | None = None,
    workers: str | bool = "auto",
) -> dict[str, Any]:
    """Seed an open store; returns counts per provider and object. See the module docstring.

    ``workers``: generate in two worker processes (one per provider) while this process
    inserts; ``"auto"`` does so from ``PARALLEL_FROM`` clients on (process start-up costs
    about a second). The data is identical either way.
    """
    if records < 0:
        raise ValueError("records must be >= 0")
    mix = mix or Mix()
    anchor_us = to_us(now or _now_minute())
    if reset:
        store.delete_all()
    ensure_accounts(store)
    counts = {p: dict.fromkeys(objects, 0) for p, (_, _, objects) in _PROVIDERS.items()}
    parallel = records >= PARALLEL_FROM if workers == "auto" else bool(workers)
    load = _load_parallel if parallel else _load_serial
    with store.bulk_load() as loader:
        load(loader, counts, records=records, seed=seed, now_us=anchor_us, mix=mix)
    return counts


def seed(
    db_path: str | Path,
    *,
    records: int,
    seed: int = 42,
    reset: bool = False,
    now: datetime | None = None,
    mix: Mix | None = None,
    workers: str | bool = "auto",
) -> dict[str, Any]:
    """Open ``db_path``, seed it (see ``seed_store``), close it; adds ``seconds`` to the result."""
    started = time.monotonic()
    store = Store(db_path)
    try:
        result = seed_store(
            store, records=records, seed=seed, reset=reset, now=now, mix=mix, workers=workers
        )
    finally:
        store.close()
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker_main(sys.argv[2:])
