"""Sync-engine throughput and memory: full ServiceM8 syncs from the sandbox into PostgreSQL.

    .venv/bin/python bench/sync_throughput.py [--jobs 100000]                # throughput
    .venv/bin/python bench/sync_throughput.py --memory [--records 1000000]   # peak memory

Throughput (default): a sandbox holding about `--jobs` ServiceM8 jobs (about a third of them
quotes, status Quote), their clients (`--jobs`/2 companies with 1-2 contacts each), their line
items (2-6 `jobmaterial`s per job) and the fixed staff list. The file is seeded once through the
seeder's generator and the store's bulk loader (ServiceM8 rows only) and cached under var/bench/
per shape, size and seed. A PostgreSQL database (`fieldbridge_bench`) is dropped, recreated and
migrated, then a fresh worker process runs every entity in the provider's dependency order
(`sync.engine.sync_entity`): a full sync into the empty database, a second full sync (nothing
changed) and an incremental sync (nothing changed). Per entity and in total it prints records
fetched; rows created, updated and unchanged (rows across tables: a quote is a job row and a
quote row, a quote's material a job-material row and a line-item row); wall time split into
provider calls (the HTTP layer's own per-call durations), the writers (time inside
`sync.writers.write_records`: the database write path, Python and SQL, COPY included), SQL
(time inside cursor.execute, mostly within the writers: psycopg's parameter conversion, the
round trip and the server's work; a COPY's rows stream outside execute) and the rest (JSON
decoding, mapping, the engine's bookkeeping and commits); records/s, rows upserted/s end to end
and rows upserted/s inside the writers; provider calls made (sandbox stats) against the
minimum, the sum over entities of ceil(records / 5000); and the worker's peak RSS per phase.

Memory (`--memory`): `--records` ServiceM8 clients (1,000,000 by default: clients are what the
sandbox seeds fastest) and one full sync of them. The worker's peak RSS is the kernel's VmHWM,
read inside the worker, so the seeding and migrating done here never count.

Conditions, all printed with the figures: the sandbox runs in its own process (it does not share
our GIL) with page size 5000 (ServiceM8's maximum) and its rate limits raised far above what the
run reaches; the worker's own limiter windows are raised likewise (the limiter still runs:
in-process, or Redis when REDIS_URL is set). Settings: config.settings.test (`--settings`;
DEBUG off, so Django keeps no query log). DATABASE_URL, when set, must name a database with
"bench" in its name: it is dropped. On a server with autovacuum off the worker stands in for
its analyzer (see `_AutoAnalyze`; `--no-autoanalyze` to measure without it).

The engine fetches and maps the next page in a thread while it writes the current one
(`sync.prefetch`): provider calls made there overlap the writers, so they are not subtracted
from the wall time in `other s` (the report says how many seconds that was); `--no-prefetch`
runs without the thread (SYNC_PREFETCH off) for comparison.

`--profile` runs the first full sync under cProfile (its times are then inflated), prints the top
functions and saves var/bench/profile-*.prof; `--tracemalloc` adds Python's own allocation peak
and largest sites per phase (slow).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DIR = ROOT / "var" / "bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fieldbridge_bench"
PAGE_SIZE = 5000  # ServiceM8's maximum records a page
JOBS_PER_CLIENT = 2.0  # the seeder's default mix: ~2 jobs, ~1.5 contacts per client
# Far above what a run reaches (ServiceM8: 180 a minute, 20,000 a day).
SANDBOX_LIMITS = {"rate_limit_per_minute": 10**7, "rate_limit_per_day": 10**9}
CLIENT_LIMITS = ((10**7, 60), (10**9, 86400))
TARGET_ROWS_PER_SECOND = 25_000
TARGET_PEAK_MB = 250
MEMORY_TARGET_RECORDS = 1_000_000
RESULT_MARK = "BENCH-RESULT "
# model label -> what the table holds, in the order printed
TABLES = (
    ("portal.Client", "clients"),
    ("portal.Contact", "contacts"),
    ("portal.Staff", "staff"),
    ("portal.Job", "jobs"),
    ("quotes.Quote", "quotes"),
    ("portal.JobMaterial", "job materials"),
    ("quotes.QuoteLineItem", "quote line items"),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- seeding --------------------------------------------------------------------------------


class _StoreSink:
    """The seeder's RowSink (`seed_base.RowSink`) writing ServiceM8 rows only, through the
    store's bulk loader (`Store.bulk_load`); `seed.seed()` would seed ServiceTitan as well."""

    def __init__(self, loader, account: str, batch: int) -> None:
        self.loader = loader
        self.account = account
        self.batch = batch
        self.buffers: dict[str, list] = {}
        self.counts: dict[str, int] = {}

    def buffer(self, obj: str) -> list:
        return self.buffers.setdefault(obj, [])

    def flush(self, *, force: bool = False) -> None:
        from integrations.sandbox.store import Collection

        for obj, rows in self.buffers.items():
            if rows and (force or len(rows) >= self.batch):
                collection = Collection("servicem8", self.account, obj)
                self.counts[obj] = self.counts.get(obj, 0) + self.loader.insert(collection, rows)
                rows.clear()


def seeded_sandbox(*, kind: str, size: int, seed: int, reseed: bool) -> tuple[Path, dict, bool]:
    """The cached sandbox file for this shape (seeding it first when missing), its object
    counts and whether it came from the cache."""
    from datetime import UTC, datetime

    from integrations.sandbox import accounts
    from integrations.sandbox.seed import BATCH, ensure_accounts
    from integrations.sandbox.seed_base import CLIENTS_ONLY, Mix
    from integrations.sandbox.seed_servicem8 import seed_servicem8
    from integrations.sandbox.store import Store, to_us

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"sandbox-servicem8-{kind}-{size}-seed{seed}.sqlite3"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not reseed:
        return path, json.loads(meta_path.read_text()), True
    if kind == "jobs":
        clients, mix = math.ceil(size / JOBS_PER_CLIENT), Mix(jobs_per_client=JOBS_PER_CLIENT)
    else:
        clients, mix = size, CLIENTS_ONLY
    log(f"Seeding {path.relative_to(ROOT)} ({clients:,} ServiceM8 clients, {kind} shape)…")
    started = time.monotonic()
    tmp = path.with_name(path.name + ".partial")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    store = Store(tmp)
    try:
        ensure_accounts(store)
        with store.bulk_load() as loader:
            sink = _StoreSink(loader, accounts.SERVICEM8_ACCOUNT.uuid, BATCH)
            now_us = to_us(datetime.now(tz=UTC).replace(second=0, microsecond=0))
            seed_servicem8(sink, records=clients, seed=seed, now_us=now_us, mix=mix)
            sink.flush(force=True)
    finally:
        store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.replace(path)
    meta = {
        "clients": clients,
        "counts": sink.counts,
        "seconds": round(time.monotonic() - started, 1),
        "bytes": path.stat().st_size,
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return path, meta, False


def object_counts(db: Path) -> dict[str, int]:
    """Records per ServiceM8 object in the sandbox file (soft-deleted ones included)."""
    from integrations.providers.servicem8.provider import ServiceM8Provider
    from integrations.sandbox import accounts
    from integrations.sandbox.store import Collection, Store

    store = Store(db)
    try:
        return {
            obj: store.count(Collection("servicem8", accounts.SERVICEM8_ACCOUNT.uuid, obj))
            for obj in ServiceM8Provider.objects.values()
        }
    finally:
        store.close()


# -- database -------------------------------------------------------------------------------


def recreate_database(url: str) -> str:
    """Drop and create the database `url` names; returns its name."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(
            f"DATABASE_URL names {name!r}: this benchmark drops its database, so it only uses "
            "one with 'bench' in its name (unset DATABASE_URL for fieldbridge_bench)."
        )
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def create_integration(sandbox_url: str) -> int:
    from integrations.models import Integration
    from integrations.sandbox import accounts
    from portal.models import Company

    account = accounts.SERVICEM8_ACCOUNT
    company = Company.objects.create(
        name="Bench Plumbing", slug="bench-plumbing", timezone=account.timezone
    )
    integration = Integration.objects.create(
        company=company,
        provider=Integration.Provider.SERVICEM8,
        environment=Integration.Environment.SANDBOX,
        # Our limiter's bucket is keyed by account: a key of its own keeps this run's calls
        # out of any other process's bucket for the sandbox account (with Redis).
        external_account_id=f"bench-{os.getpid()}-{time.time_ns()}",
        base_url_override=sandbox_url,
        credentials={"api_key": account.api_key},
        config={"timezone": account.timezone},
    )
    return integration.pk


# -- the worker (a fresh process: its memory is the sync's alone) -----------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _postgres_cpu_seconds(backend: int) -> float:
    """CPU time (user + system) of the PostgreSQL server serving `backend` (same machine): all
    the postmaster's live children (our connections, the WAL writer, the checkpointer …) plus
    what its children that have exited used (the engine's writer threads open and close
    connections of their own each run). Sessions on other databases count too: the figure
    means what it says on a server that serves the bench alone."""
    postmaster = _stat_fields(backend)[1] if _stat_fields(backend) else None
    if postmaster is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    own = _stat_fields(postmaster)
    total = (int(own[13]) + int(own[14])) / tick if own else 0.0  # cutime + cstime
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and fields[1] == postmaster:
                total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _stat_fields(pid: int) -> list | None:
    """/proc/<pid>/stat's fields after the command name (state, ppid as an int, …)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        fields[1] = int(fields[1])
        return fields
    except (OSError, IndexError, ValueError):
        return None


def _cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used: this one, or the PostgreSQL backend
    serving our connection (same machine). On a shared machine, wall time counts the waits
    for a core too; CPU time does not."""
    if pid is None:
        return time.process_time()
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so a phase's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class _Timers:
    """Where a run's time goes: provider calls, summed from the HTTP layer's own per-call log
    records (`duration_ms`); the writers (`sync.writers.write_records`, timed around each
    call: the whole database write path, Python and SQL); and SQL, timed around every execute
    (Django's execute_wrapper; the time includes the driver's parameter adaptation and the
    server's work; a COPY's rows are streamed outside execute, so they count in the writers'
    time only; summed over the engine's writer threads, whose statements overlap)."""

    def __init__(self) -> None:
        import logging

        self.calls = 0
        self.http = 0.0
        # the part of `http` spent in the engine's prefetch thread (sync.prefetch): it overlaps
        # the writers, so it is not subtracted from the wall time in `other s`
        self.http_ahead = 0.0
        self.queries = 0
        self.sql = 0.0
        self.write = 0.0
        timers = self

        class Handler(logging.Handler):
            def emit(self, record):
                seconds = (getattr(record, "duration_ms", 0) or 0) / 1000
                timers.calls += 1
                timers.http += seconds
                if record.threadName != "MainThread":
                    timers.http_ahead += seconds

        self.handler = Handler()

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries += 1
            self.sql += time.perf_counter() - started

    def wrap_writer(self, write_records):
        """Time inside the writers as wall time during which at least one of them runs: with
        the engine's pipeline (two writer threads, sync.engine._PageWriters) their calls
        overlap, and a sum would count the overlap twice."""
        import threading

        lock, state = threading.Lock(), {"active": 0, "since": 0.0}

        def timed(*args, **kwargs):
            with lock:
                if not state["active"]:
                    state["since"] = time.perf_counter()
                state["active"] += 1
            try:
                return write_records(*args, **kwargs)
            finally:
                with lock:
                    state["active"] -= 1
                    if not state["active"]:
                        self.write += time.perf_counter() - state["since"]

        return timed


class _AutoAnalyze:
    """Stand-in for autovacuum's analyzer on a server that has autovacuum off.

    A planner with no statistics on a freshly filled table guesses that
    `integration_id = X` is selective, and reads every row of the integration through that
    column's index instead of the (integration_id, external_id) unique index: each batch's
    lookups then cost O(table), and a large first sync slows down quadratically. Production
    servers run autovacuum, so this thread does what its launcher does with the default
    settings: every 60 s, ANALYZE each table changed by more than 50 rows + 10 % since its
    last analysis. Runs on its own connection, concurrently, as autovacuum does.
    """

    NAPTIME = 60
    CHANGED = """
        SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
        WHERE s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0)
          AND c.relpersistence = 'p'  -- not the writers' temporary staging tables
    """

    def __init__(self, url: str) -> None:
        import threading

        self.url = url
        self.stop = threading.Event()
        self.analyzed = 0
        self.thread = threading.Thread(target=self._loop, name="autoanalyze", daemon=True)

    def _loop(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(self.NAPTIME):
                for (table,) in conn.execute(self.CHANGED).fetchall():
                    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
                    self.analyzed += 1


def autovacuum_enabled(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0] == "on"


def worker(spec: dict) -> dict:
    import logging

    import django

    django.setup()
    import requests
    from django.apps import apps
    from django.db import connection

    from integrations.providers.servicem8.provider import ServiceM8Provider
    from integrations.ratelimit import RateWindow
    from sync import engine
    from sync.engine import sync_entity
    from sync.models import SyncRun

    if spec.get("no_prefetch"):
        from django.conf import settings

        settings.SYNC_PREFETCH = False
    startup_peak_kb, startup_rss_kb = _status_kb("VmHWM"), _status_kb("VmRSS")
    ServiceM8Provider.rate_limits = tuple(RateWindow(n, s) for n, s in CLIENT_LIMITS)
    timers = _Timers()
    connection.execute_wrappers.append(timers)
    # … and on every connection the engine's writer threads open.
    from django.db.backends.signals import connection_created

    def time_sql(sender, connection, **kwargs):
        if timers not in connection.execute_wrappers:
            connection.execute_wrappers.append(timers)

    connection_created.connect(time_sql, weak=False)

    def backend_pid() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            return cur.fetchone()[0]

    engine.write_records = timers.wrap_writer(engine.write_records)
    http_logger = logging.getLogger("integrations.http")
    # One record per call stays part of the layer's cost; writing it to a terminal would not.
    http_logger.handlers = [timers.handler]
    http_logger.propagate = False
    logging.getLogger("sync.engine").setLevel(logging.WARNING)

    sandbox, integration_id = spec["sandbox_url"], spec["integration_id"]
    models = [(apps.get_model(label), title) for label, title in TABLES]

    def table_counts() -> dict[str, int]:
        return {t: m.objects.filter(integration_id=integration_id).count() for m, t in models}

    analyzer = None
    if spec.get("autoanalyze"):
        analyzer = _AutoAnalyze(os.environ["DATABASE_URL"])
        analyzer.thread.start()
    tracing = spec.get("tracemalloc")
    if tracing:
        import tracemalloc

        tracemalloc.start(1)
    phases = []
    for index, (label, mode) in enumerate(spec["phases"]):
        requests.post(f"{sandbox}/_sandbox/stats/reset", timeout=30).raise_for_status()
        peak_reset = _reset_peak()
        profiler = None
        if spec.get("profile") and index == 0:
            import cProfile

            profiler = cProfile.Profile()
        entities = []
        log(f"{label}:")
        for entity in spec["entities"]:
            before = table_counts() if index == 0 else None
            http_before, sql_before, queries_before = timers.http, timers.sql, timers.queries
            ahead_before = timers.http_ahead
            write_before = timers.write
            backend = backend_pid()
            cpu_before, db_cpu_before = _cpu_seconds(), _postgres_cpu_seconds(backend)
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            run = sync_entity(integration_id=integration_id, entity=entity, mode=mode)
            if profiler:
                profiler.disable()
            wall = time.perf_counter() - started
            run = SyncRun.objects.get(pk=run.pk)
            row = {
                "entity": entity,
                "status": run.status,
                "fetched": run.fetched_count,
                "created": run.created_count,
                "updated": run.updated_count,
                "unchanged": run.unchanged_count,
                "deleted": run.deleted_count,
                "held": run.held_count,
                "failed": run.failed_count,
                "pages": run.pages_count,
                "wall": wall,
                "http": timers.http - http_before,
                "http_ahead": timers.http_ahead - ahead_before,
                "sql": timers.sql - sql_before,
                "write": timers.write - write_before,
                "cpu": _cpu_seconds() - cpu_before,
                "db_cpu": _postgres_cpu_seconds(backend) - db_cpu_before,
                "queries": timers.queries - queries_before,
            }
            if before is not None:
                after = table_counts()
                row["tables"] = {t: after[t] - before[t] for t in after if after[t] != before[t]}
            entities.append(row)
            log(
                f"  {entity:10} {row['fetched']:>10,} fetched  "
                f"{row['created'] + row['updated']:>10,} upserted  {wall:7.1f} s  {run.status}"
            )
        stats = requests.get(f"{sandbox}/_sandbox/stats", timeout=30).json()["servicem8"]
        phase = {
            "label": label,
            "mode": mode,
            "entities": entities,
            "requests_total": stats["requests_total"],
            "requests_by_path": stats["requests_by_path"],
            "peak_rss_kb": _status_kb("VmHWM") if peak_reset else None,
            "rss_kb": _status_kb("VmRSS"),
        }
        if tracing:
            import tracemalloc

            phase["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
            top = tracemalloc.take_snapshot().statistics("lineno")[:12]
            phase["tracemalloc_top"] = [f"{s.size / 2**20:8.1f} MB  {s.traceback}" for s in top]
            # (what is still allocated when the phase ends; the peak itself has no snapshot)
            tracemalloc.reset_peak()
        if profiler:
            phase["profile"] = _profile_report(profiler, spec["profile"])
        phases.append(phase)
    peaks = [startup_peak_kb, _status_kb("VmHWM")] + [p["peak_rss_kb"] or 0 for p in phases]
    if analyzer:
        analyzer.stop.set()
    return {
        "phases": phases,
        "tables": table_counts(),
        "peak_rss_kb": max(peaks),
        "startup_rss_kb": startup_rss_kb,
        "analyzed": analyzer.analyzed if analyzer else None,
    }


def _profile_report(profiler, path: str) -> str:
    import io
    import pstats

    profiler.dump_stats(path)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    return out.getvalue()


def run_worker(spec: dict) -> dict:
    """Run `worker` in a child process and return its result.

    Its peak RSS is read inside it (VmHWM), not from wait4/RUSAGE_CHILDREN: Linux folds the
    high-water mark of the memory image a child replaces at exec (here, a copy of this
    process, which seeded and migrated) into the child's ru_maxrss.
    """
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, __file__, "--_worker", json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None  # noqa: S101 - narrowing
    result = None
    for line in proc.stdout:
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK) :])
        else:
            sys.stderr.write(line)
    if proc.wait() or result is None:
        sys.exit(f"the sync worker failed (exit {proc.returncode})")
    return result


# -- the sandbox ----------------------------------------------------------------------------


def start_sandbox(db: Path) -> tuple[subprocess.Popen, str]:
    import requests

    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "sandbox_serve", "--port", str(port), "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(f"{url}/_sandbox/stats", timeout=1)
            break
        except requests.ConnectionError:
            if proc.poll() is not None:
                sys.exit("the sandbox did not start")
            time.sleep(0.1)
    config = {"enforce_rate_limits": True, "servicem8": {"page_size": PAGE_SIZE, **SANDBOX_LIMITS}}
    requests.post(f"{url}/_sandbox/config", json=config, timeout=10).raise_for_status()
    return proc, url


# -- report ---------------------------------------------------------------------------------


def _mb(kb: int | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:,.0f} MB"


def _rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def minimum_calls(entities: list[dict], objects: dict[str, int], full: bool) -> dict[str, int]:
    """Fewest calls that read each entity: ceil(records / page size), at least one (the empty
    answer). A full run must read every record the sandbox holds; an incremental one only
    what it was sent."""
    from integrations.providers.servicem8.provider import ServiceM8Provider

    out = {}
    for row in entities:
        n = objects[ServiceM8Provider.objects[row["entity"]]] if full else row["fetched"]
        out[row["entity"]] = max(1, math.ceil(n / PAGE_SIZE))
    return out


def print_phase(phase: dict, objects: dict[str, int]) -> tuple[float, float, int, int]:
    """Print one phase's table; returns (rows upserted/s end to end, rows upserted/s inside
    the writers, calls, minimum calls)."""
    from integrations.providers.servicem8.provider import ServiceM8Provider

    rows = phase["entities"]
    minimum = minimum_calls(rows, objects, full=phase["mode"] == "full")
    by_path = phase["requests_by_path"]
    print(f"\n{phase['label']}")
    print(
        f"{'entity':10} {'fetched':>9} {'created':>9} {'updated':>8} {'unchanged':>9} "
        f"{'wall s':>7} {'HTTP s':>7} {'write s':>7} {'SQL s':>6} {'other s':>7} "
        f"{'records/s':>9} {'upserted/s':>10} {'written/s':>9} {'calls':>5} {'min':>4}"
    )
    keys = ("fetched", "created", "updated", "unchanged", "wall", "http", "sql", "write")
    keys += ("http_ahead",)
    totals = dict.fromkeys(keys, 0.0)
    calls_total = 0

    def line(name, r, calls, least, note=""):
        upserted = r["created"] + r["updated"]
        print(
            f"{name:10} {int(r['fetched']):>9,} {int(r['created']):>9,} {int(r['updated']):>8,} "
            f"{int(r['unchanged']):>9,} {r['wall']:>7.1f} {r['http']:>7.1f} {r['write']:>7.1f} "
            f"{r['sql']:>6.1f} {r['wall'] - (r['http'] - r['http_ahead']) - r['write']:>7.1f} "
            f"{_rate(r['fetched'], r['wall']):>9} {_rate(upserted, r['wall']):>10} "
            f"{_rate(upserted, r['write']):>9} {calls:>5} {least:>4}{note}"
        )

    for row in rows:
        path = f"GET /servicem8/api_1.0/{ServiceM8Provider.objects[row['entity']]}.json"
        calls = by_path.get(path, 0)
        calls_total += calls
        for key in totals:
            totals[key] += row[key]
        flags = [f"{row[k]:,} {k}" for k in ("held", "failed") if row[k]]
        if row["status"] != "success":
            flags.insert(0, row["status"].upper())
        line(
            row["entity"],
            row,
            calls,
            minimum[row["entity"]],
            f"   ({', '.join(flags)})" * bool(flags),
        )
    min_total = sum(minimum.values())
    line("total", totals, calls_total, min_total)
    if phase["mode"] == "incremental":
        print(
            "  (an incremental run re-reads the provider's lookback window before the cursor: "
            "edits up to 1 h 5 min older than the newest one seen)"
        )
    if phase["requests_total"] != calls_total:
        print(f"  (the sandbox counted {phase['requests_total']} requests in all)")
    upserted = totals["created"] + totals["updated"]
    checked = upserted + totals["unchanged"]
    queries = sum(r["queries"] for r in rows)
    print(
        f"  rows written or checked: {int(checked):,} ({_rate(checked, totals['wall'])}/s); "
        f"{queries:,} SQL statements; peak RSS in this phase: {_mb(phase['peak_rss_kb'])}"
    )
    if totals["http_ahead"]:
        print(
            f"  of the {totals['http']:.1f} s of provider calls, {totals['http_ahead']:.1f} s were "
            "made ahead by the prefetch thread while the writers ran (not in `other s`)"
        )
    cpu, db_cpu = sum(r.get("cpu", 0) for r in rows), sum(r.get("db_cpu", 0) for r in rows)
    print(
        f"  CPU time: worker {cpu:.1f} s, PostgreSQL (all its processes) {db_cpu:.1f} s "
        f"(wall {totals['wall']:.1f} s; on a busy machine the difference is mostly waiting "
        f"for a core); rows upserted per CPU second of the two: {_rate(upserted, cpu + db_cpu)}"
    )
    if phase.get("tracemalloc_peak"):
        print(
            f"  tracemalloc peak: {phase['tracemalloc_peak'] / 2**20:,.1f} MB; "
            "largest sites still allocated at the end of the phase:"
        )
        for text in phase["tracemalloc_top"]:
            print(f"    {text}")
    rate = upserted / totals["wall"] if totals["wall"] else 0.0
    write_rate = upserted / totals["write"] if totals["write"] else 0.0
    return rate, write_rate, calls_total, min_total


def print_limits_note(sandbox_url: str) -> None:
    from django.conf import settings

    limiter = "Redis" if settings.REDIS_URL else "in-process"
    print(
        f"Rate limits raised for the run: sandbox {SANDBOX_LIMITS['rate_limit_per_minute']:,}/min "
        f"and {SANDBOX_LIMITS['rate_limit_per_day']:,}/day (ServiceM8: 180/min, 20,000/day); "
        f"our limiter ({limiter}) likewise. Page size {PAGE_SIZE} (ServiceM8's max). "
        f"Sandbox {sandbox_url} in its own process."
    )


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="ServiceM8 jobs to seed")
    parser.add_argument("--memory", action="store_true", help="peak memory syncing --records")
    parser.add_argument(
        "--records", type=int, default=MEMORY_TARGET_RECORDS, help="clients in --memory mode"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the sandbox content")
    parser.add_argument("--reseed", action="store_true", help="ignore the cached sandbox file")
    parser.add_argument("--profile", action="store_true", help="cProfile the first full sync")
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations")
    parser.add_argument(
        "--settings",
        default="config.settings.test",
        help="Django settings module (default %(default)s: DEBUG off, no query log)",
    )
    parser.add_argument(
        "--no-autoanalyze",
        action="store_true",
        help="on a server with autovacuum off, do not stand in for its analyzer",
    )
    parser.add_argument(
        "--no-prefetch",
        action="store_true",
        help="fetch each page only after the previous one is written (SYNC_PREFETCH off)",
    )
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._worker:  # settings and database come from the parent's environment
        result = worker(json.loads(args._worker))
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL

    import django

    started = time.monotonic()
    kind, size = ("clients", args.records) if args.memory else ("jobs", args.jobs)
    db, meta, cached = seeded_sandbox(kind=kind, size=size, seed=args.seed, reseed=args.reseed)
    objects = object_counts(db)
    name = recreate_database(os.environ["DATABASE_URL"])
    autovacuum = autovacuum_enabled(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0, interactive=False)
    sandbox, url = start_sandbox(db)
    try:
        integration_id = create_integration(url)
        connections.close_all()
        if args.memory:
            phases = [("Full sync (empty database)", "full")]
            entities = ["clients"]
        else:
            phases = [
                ("Full sync (empty database)", "full"),
                ("Second full sync (nothing changed)", "full"),
                ("Incremental sync (nothing changed)", "incremental"),
            ]
            entities = ["clients", "contacts", "staff", "jobs", "materials"]
        profile = str(BENCH_DIR / f"profile-{kind}-{size}.prof") if args.profile else None
        spec = {
            "sandbox_url": url,
            "integration_id": integration_id,
            "phases": phases,
            "entities": entities,
            "profile": profile,
            "tracemalloc": args.tracemalloc,
            "autoanalyze": not autovacuum and not args.no_autoanalyze,
            "no_prefetch": args.no_prefetch,
        }
        result = run_worker(spec)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)

    seeded = "cached" if cached else f"seeded in {meta['seconds']:.0f} s"
    shown = ", ".join(f"{obj} {n:,}" for obj, n in objects.items())
    print(
        f"\nServiceM8 sandbox {db.relative_to(ROOT)} ({seeded}, "
        f"{meta['bytes'] / 2**20:,.0f} MB): {shown}"
    )
    print(f"PostgreSQL database {name}, dropped, recreated and migrated for this run.", end=" ")
    if autovacuum:
        print("Autovacuum is on.")
    elif args.no_autoanalyze:
        print("Autovacuum is OFF on this server and not stood in for: no table is analyzed.")
    else:
        print(
            "Autovacuum is OFF on this server: the worker stood in for its analyzer "
            f"(default thresholds, every 60 s; {result['analyzed']} ANALYZEs)."
        )
    print_limits_note(url)
    if args.profile:
        print("PROFILED: the first full sync ran under cProfile; its times are inflated.")
    figures = [print_phase(phase, objects) for phase in result["phases"]]
    print(
        "\nRows by table after the runs: "
        + "; ".join(f"{t} {n:,}" for t, n in result["tables"].items())
    )
    peak_kb = result["peak_rss_kb"]
    print(
        f"Worker process peak RSS (whole run): {_mb(peak_kb)}; "
        f"RSS after Django start-up, before syncing: {_mb(result['startup_rss_kb'])}"
    )

    rate, write_rate = figures[0][0], figures[0][1]
    targets = []
    if args.memory:
        fetched = sum(r["fetched"] for r in result["phases"][0]["entities"])
        targets.append(
            (
                f"peak worker RSS, full sync of {fetched:,} records",
                _mb(peak_kb),
                f"< {TARGET_PEAK_MB} MB at {MEMORY_TARGET_RECORDS:,}",
                peak_kb / 1024 < TARGET_PEAK_MB,
            )
        )
    targets.append(
        (
            "rows upserted/s, first full sync",
            f"{rate:,.0f}",
            f">= {TARGET_ROWS_PER_SECOND:,}",
            rate >= TARGET_ROWS_PER_SECOND,
        )
    )
    for phase, (_, _, calls, least) in zip(result["phases"], figures, strict=True):
        targets.append(
            (f"provider calls, {phase['label']}", f"{calls}", f"== {least}", calls == least)
        )
    print("\nTargets")
    for what, figure, target, ok in targets:
        print(f"  {what:50} {figure:>10}   target {target:24} {_verdict(ok)}")
    first = result["phases"][0]["entities"]
    upserted = sum(r["created"] + r["updated"] for r in first)
    write_s = sum(r["write"] for r in first)
    wall_s = sum(r["wall"] for r in first)
    print(
        f"  (the database write path alone, first full sync: {upserted:,} rows upserted in "
        f"{write_s:.1f} s inside the writers = {write_rate:,.0f} rows/s; the other "
        f"{wall_s - write_s:.1f} s of its {wall_s:.1f} s are provider calls, JSON decoding, "
        "mapping and the engine's bookkeeping)"
    )
    if args.profile:
        print(f"\ncProfile of the first full sync (saved to {profile}):")
        if spec["autoanalyze"]:
            print(
                "(Python 3.12+ profiles every thread: the ANALYZE thread's waits show up as "
                "psycopg Connection.execute and threading waits.)"
            )
        print(result["phases"][0]["profile"])
    print(f"\nBenchmark wall time {time.monotonic() - started:.0f} s.")


if __name__ == "__main__":
    main()
