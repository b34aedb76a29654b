"""REST API latency and throughput on gunicorn, against a bare Django view as the baseline.

    .venv/bin/python bench/api_latency.py [--quotes 100000] [--seconds 10] [--workers N]

A PostgreSQL database (`fieldbridge_api_bench`; DATABASE_URL, when set, must name a database
with "bench" in its name: it is dropped) is recreated, migrated and seeded: one company with two
integrations (ServiceM8 and ServiceTitan) and `--quotes` quotes (all sent, awaiting a
decision), alternating between the two integrations' clients (so half of them are the client
user's), then another company's client with 10,000 (the newest ids), then VACUUM ANALYZE. The
plans of the two list queries (client user, team member) are printed with the indexes they use.
gunicorn (sync workers, `--workers`, default 2 × cores + 1) serves
bench/api_bench_settings.py: config.settings.test (DEBUG off) plus the baseline view
(bench/api_bench_urls.py), Redis for cache, throttles and the broker (REDIS_URL, default
redis://127.0.0.1:6379/13), throttle rates raised out of reach (the throttles still run).

Signed in (a session cookie; CSRF token for the POSTs), a pool of threads, each with its own
http.client connection (`LeanClient`: keep-alive when the server keeps it, a new connection
otherwise), drives each case for `--seconds` at 8 and at 32 concurrent clients:

- `GET /api/v1/quotes/` as the client user (the API, 50 a page: the first page, newest first);
- `GET /api/bench/quotes-baseline/` as the client user (the same page from the same query as
  plain JSON);
- `GET /api/v1/quotes/` as a team member of the company (both integrations' quotes);
- `POST /api/v1/quotes/{id}/approve` as the client user (a different undecided quote each).

It prints p50/p95/p99 latency and requests per second per case and the verdicts on the
targets: the client's and the staff's list p95 under 50 ms at 8 clients, and the client's list
requests/s at least 0.8 × the baseline's. It exits 1 when a target is missed or a request
failed. The clients run on the same machine as the server and take their share of its cores:
so it also prints, per case, the CPU each part spent per answered request (`CpuMeter`, from
/proc: gunicorn, the database's PostgreSQL backends, Redis, the load generator, and the whole
machine, whose excess over the others is everyone else's load).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fieldbridge_api_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
SETTINGS = "bench.api_bench_settings"
BATCH = 5000
CONCURRENCY = (8, 32)
TARGET_P95_MS = 50.0
TARGET_RATIO = 0.8
LIST_PATH = "/api/v1/quotes/"
BASELINE_PATH = "/api/bench/quotes-baseline/"
CLIENT_LIST = "GET quotes (API, client, 50/page)"
BASELINE = "GET quotes (bare Django baseline)"
STAFF_LIST = "GET quotes (API, staff, 50/page)"
APPROVE = "POST approve (API)"


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"refusing to drop {name!r}: the benchmark database's name must contain 'bench'")
    admin = ["psql", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    admin += ["-U", parts.username or "postgres", "-d", "postgres", "-q", "-c"]
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    subprocess.run([*admin, drop], check=True)  # noqa: S603 - psql, a name checked above
    subprocess.run([*admin, f'CREATE DATABASE "{name}"'], check=True)  # noqa: S603


def seed(n_quotes: int):
    """The tenant's quotes over its two integrations (and another tenant's, for the scope
    filter to skip). Returns the client user, a team member and the client's quote ids."""
    from django.db import connection
    from django.utils import timezone

    from portal.models import Client, ClientMembership, Company, TeamMembership, User
    from quotes.models import Quote
    from tests.factories import IntegrationFactory

    company = Company.objects.create(name="Bench Plumbing", slug="bench-plumbing")
    owners = []
    for provider in ("servicem8", "servicetitan"):
        integration = IntegrationFactory(company=company, provider=provider, name=provider)
        client = Client.objects.create(
            integration=integration, external_id=f"{provider}-c", name=f"{provider} client"
        )
        owners.append((integration, client))
    other = Company.objects.create(name="Other Company", slug="other-company")
    other_integration = IntegrationFactory(company=other, provider="servicem8")
    other_client = Client.objects.create(
        integration=other_integration, external_id="other-c", name="other"
    )
    user = User.objects.create_user(email="bench@client.test", password="bench-pass-123")  # noqa: S106
    ClientMembership.objects.create(user=user, client=owners[0][1])
    staff = User.objects.create_user(
        email="bench@staff.test",
        password="bench-pass-123",  # noqa: S106
        is_staff=True,
    )
    TeamMembership.objects.create(user=staff, company=company, role=TeamMembership.Role.DISPATCHER)
    today, now = timezone.now().date(), timezone.now()

    def quotes(pick_owner, count, prefix):
        for start in range(0, count, BATCH):
            batch = []
            for n in range(start, min(count, start + BATCH)):
                integration, client = pick_owner(n)
                batch.append(
                    Quote(
                        integration=integration,
                        client=client,
                        external_id=f"{prefix}-q-{n}",
                        number=f"Q{n:06d}",
                        title=f"Hot water system replacement {n}",
                        status=Quote.Status.SENT,
                        total=Decimal("1234.50"),
                        subtotal=Decimal("1122.27"),
                        tax_total=Decimal("112.23"),
                        valid_until=today + timedelta(days=30 + n % 90),
                        sent_at=now - timedelta(minutes=n),
                    )
                )
            Quote.objects.bulk_create(batch)

    started = time.perf_counter()
    quotes(lambda n: owners[n % 2], n_quotes, "a")
    quotes(lambda n: (other_integration, other_client), 10_000, "b")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    print(
        f"seeded {n_quotes:,} quotes over two integrations (half of them the client user's), "
        f"+10,000 of another company, in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    # Oldest first: approving them never changes the newest-first page the list reads.
    undecided = list(
        Quote.objects.filter(client=owners[0][1]).order_by("id").values_list("id", flat=True)
    )
    return user, staff, undecided


def explain_list_pages(users: dict) -> None:
    """The plan of each user's first API page (what ApiCursorPagination runs: newest id first,
    50 + 1 rows), reduced to its scans, sorts and timing."""
    from quotes.selectors import quote_list_visible_to

    for label, user in users.items():
        query = quote_list_visible_to(user=user).order_by("-id")[:51]
        plan = query.explain(analyze=True)
        print(f"plan of the {label}'s first page:", flush=True)
        for line in plan.splitlines():
            if any(word in line for word in ("Scan", "Sort", "Limit", "Execution Time")):
                print(f"    {line.strip()[:150]}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    port: int, workers: int, env: dict, *, worker_class: str = "sync", threads: int = 1
) -> subprocess.Popen:
    log = open(ROOT / "var" / "bench-api-gunicorn.log", "w")  # noqa: SIM115 - lives with the server
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--backlog",
            "512",
            "--log-level",
            "warning",
            "--no-control-socket",  # gunicorn's default socket path is shared by every server
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited early; see {log.name}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    stop(proc)
    sys.exit(f"gunicorn did not answer within 60 s; see {log.name}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Result:
    name: str
    clients: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    first_error: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # CpuMeter part: CPU seconds

    def quantile(self, q: int) -> float:
        """The q-th percentile in ms; NaN when no request succeeded."""
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else math.nan
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


class LeanClient:
    """One client's keep-alive HTTP/1.1 connection (http.client), with the signed-in user's
    cookies and CSRF token on every request. It reconnects when the server closes the
    connection (gunicorn's sync workers close it after each response, so every request opens
    one, whatever the case). A 50-quote page costs the client about 0.7 ms of CPU where a
    `requests` session spent about 2 ms (cookie jar, adapters, a ~/.netrc look-up per
    request), on the same two cores as the server, its threads' GIL waits counted as latency."""

    def __init__(self, base: str, cookies: dict) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.connection: http.client.HTTPConnection | None = None
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        self.headers = {"Cookie": cookie, "X-CSRFToken": cookies["csrftoken"]}
        self.json_headers = {**self.headers, "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """The answer's status and body. A request on a reused connection that the server had
        closed meanwhile is sent again once, on a new connection."""
        for attempt in (1, 2):
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                headers = self.headers if body is None else self.json_headers
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.close()
                if reused and attempt == 1:
                    continue
                raise
            if response.will_close:
                self.close()
            return response.status, data
        raise AssertionError("unreachable")

    def get(self, path: str) -> tuple[int, bytes]:
        return self.request("GET", path)

    def post_json(self, path: str, payload: dict) -> tuple[int, bytes]:
        return self.request("POST", path, json.dumps(payload).encode())

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CpuMeter:
    """CPU seconds spent so far by each part of the set-up, read from /proc (Linux; empty
    elsewhere): the gunicorn server (master and workers: its session), the PostgreSQL
    backends connected to the benchmark's database, Redis (the whole server: other users of it
    count too), this process (the load generator), and the whole machine (every core's busy
    time: the parts above plus anyone else's load)."""

    PARTS = ("gunicorn", "postgres", "redis", "clients", "machine")

    def __init__(self, server_session: int, database: str) -> None:
        self.server_session = server_session
        self.database = database.encode()
        self.available = Path("/proc/stat").exists()

    def read(self) -> dict[tuple[str, int], float]:
        """CPU seconds by (part, process id); the machine's and this process's under pid 0."""
        if not self.available:
            return {}
        totals: dict[tuple[str, int], float] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    raw = stat.read()
                fields = raw[raw.rindex(b")") + 2 :].split()
                session, cpu = int(fields[3]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
                pid = int(entry.name)
                if session == self.server_session:
                    totals["gunicorn", pid] = cpu
                    continue
                name = raw[raw.index(b"(") + 1 : raw.rindex(b")")]
                if name == b"redis-server":
                    totals["redis", pid] = cpu
                elif name == b"postgres":
                    with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                        words = cmdline.read().split()
                    if self.database in words:  # "postgres: <user> <database> <host> <state>"
                        totals["postgres", pid] = cpu
            except (OSError, ValueError, IndexError):
                continue  # a process that ended meanwhile
        own = os.times()
        totals["clients", 0] = own.user + own.system
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
        idle = ticks[3] + ticks[4]  # idle, iowait
        totals["machine", 0] = (sum(ticks[:8]) - idle) / CLOCK_TICKS
        return totals

    @staticmethod
    def spent(before: dict, after: dict) -> dict[str, float]:
        """CPU seconds by part between two reads: a process that started meanwhile counts in
        full, one that ended meanwhile (a database connection past its CONN_MAX_AGE) loses
        its last share."""
        parts: dict[str, float] = {}
        for (part, pid), cpu in after.items():
            parts[part] = parts.get(part, 0.0) + cpu - before.get((part, pid), 0.0)
        return parts


def drive(base: str, cookies: dict, name: str, clients: int, seconds: float, request) -> Result:
    """`clients` threads, each with its own keep-alive connection (LeanClient), send
    `request(client)` back to back for `seconds`; only answers that arrived before the deadline
    count."""
    result = Result(name, clients)
    lock = threading.Lock()
    start_barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client() -> None:
        http_client = LeanClient(base, cookies)
        own, errors, first = [], 0, ""
        start_barrier.wait()
        while True:
            started = time.perf_counter()
            if started >= deadline[0]:
                break
            try:
                status, body = request(http_client)
            except (OSError, http.client.HTTPException) as exc:
                status, body = 599, repr(exc).encode()
            ended = time.perf_counter()
            if ended > deadline[0]:
                break
            if status >= 400:
                errors += 1
                first = first or f"{status} {body[:200].decode(errors='replace')}"
            else:
                own.append((ended - started) * 1000)
        with lock:
            result.latencies_ms.extend(own)
            result.errors += errors
            result.first_error = result.first_error or first
        http_client.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start_barrier.wait()
    for thread in threads:
        thread.join()
    result.seconds = seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quotes", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per case and concurrency")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds, per case")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the cases")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--worker-class", default="sync", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=1, help="per worker (gthread)")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if "bench" not in urlsplit(url).path:
        url = DEFAULT_DATABASE_URL
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    recreate_database(url)
    os.environ.update(
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE=SETTINGS,
        API_THROTTLE_RATE="100000000/minute",
        API_THROTTLE_WRITE_RATE="100000000/minute",
        DJANGO_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.test import Client

    bench_redis = redis.Redis.from_url(redis_url)
    redis_was_empty = bench_redis.dbsize() == 0
    call_command("migrate", verbosity=0)
    user, staff, undecided = seed(args.quotes)
    explain_list_pages({"client user": user, "team member": staff})

    csrf_secret = secrets.token_hex(16)  # 32 characters: Django accepts the bare secret

    def signed_in(who) -> dict:
        browser = Client()
        browser.force_login(who)
        return {"sessionid": browser.cookies["sessionid"].value, "csrftoken": csrf_secret}

    cookies, staff_cookies = signed_in(user), signed_in(staff)
    from django.db import connections

    connections.close_all()  # gunicorn's workers get the database to themselves

    port = free_port()
    server = start_gunicorn(
        port, args.workers, dict(os.environ), worker_class=args.worker_class, threads=args.threads
    )
    base = f"http://127.0.0.1:{port}"
    ids = iter(undecided)
    ids_lock = threading.Lock()

    def next_id() -> int:
        with ids_lock:
            return next(ids)

    # name: (whose session, the request)
    cases = {
        CLIENT_LIST: (cookies, lambda c: c.get(LIST_PATH)),
        BASELINE: (cookies, lambda c: c.get(BASELINE_PATH)),
        STAFF_LIST: (staff_cookies, lambda c: c.get(LIST_PATH)),
        APPROVE: (
            cookies,
            lambda c: c.post_json(f"/api/v1/quotes/{next_id()}/approve", {"notes": "bench"}),
        ),
    }
    merged_results: dict[tuple[str, int], Result] = {}
    meter = CpuMeter(server.pid, urlsplit(url).path.lstrip("/"))
    try:
        # One request each, checked, before anything is timed.
        for name, (who, request) in cases.items():
            status, body = request(LeanClient(base, who))
            if status >= 400:
                sys.exit(f"{name}: {status} {body[:300].decode(errors='replace')}")

        def page(who: dict, path: str) -> dict:
            status, body = LeanClient(base, who).get(path)
            assert status == 200, (path, status, body[:300])
            return json.loads(body)

        api_page = page(cookies, LIST_PATH)
        baseline_page = page(cookies, BASELINE_PATH)
        assert [q["id"] for q in api_page["results"]] == [
            q["id"] for q in baseline_page["results"]
        ], "the baseline must answer the same page"
        assert len(api_page["results"]) == 50
        staff_page = page(staff_cookies, LIST_PATH)
        assert len(staff_page["results"]) == 50
        assert {q["provider"] for q in staff_page["results"]} == {"servicem8", "servicetitan"}
        print(
            f"gunicorn: {args.workers} {args.worker_class} workers"
            f"{f' x {args.threads} threads' if args.worker_class == 'gthread' else ''}"
            f" on {os.cpu_count()} cores; "
            f"{args.seconds:g} s per case and concurrency in {args.rounds} alternating rounds, "
            f"after {args.warmup:g} s warm-up",
            flush=True,
        )
        for name, (who, request) in cases.items():  # every worker imports and connects first
            drive(base, who, name, max(CONCURRENCY), args.warmup, request)
        # Rounds alternate the cases, so a neighbour's load on the machine hits them alike.
        for clients in CONCURRENCY:
            for _ in range(args.rounds):
                for name, (who, request) in cases.items():
                    before = meter.read()
                    part = drive(base, who, name, clients, args.seconds / args.rounds, request)
                    after = meter.read()
                    merged = merged_results.setdefault((name, clients), Result(name, clients))
                    for key, value in CpuMeter.spent(before, after).items():
                        merged.cpu[key] = merged.cpu.get(key, 0.0) + value
                    merged.latencies_ms += part.latencies_ms
                    merged.errors += part.errors
                    merged.seconds += part.seconds
                    merged.first_error = merged.first_error or part.first_error
            for name in cases:
                result = merged_results[(name, clients)]
                print(
                    f"  {name:36} c={clients:<3} {len(result.latencies_ms):6d} requests, "
                    f"{result.errors} errors",
                    flush=True,
                )
                if result.errors:
                    print(f"    first error: {result.first_error}", flush=True)
    finally:
        stop(server)
        if redis_was_empty:
            bench_redis.flushdb()  # only ever a database this run found empty

    results = list(merged_results.values())
    print(
        f"\n{'case':36} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'req/s':>8} {'errors':>7}"
    )
    for r in results:
        print(
            f"{r.name:36} {r.clients:7d} {r.quantile(50):8.1f} {r.quantile(95):8.1f} "
            f"{r.quantile(99):8.1f} {r.rps:8.1f} {r.errors:7d}"
        )
    if any(r.cpu for r in results):
        print(
            "\nCPU per answered request, ms (gunicorn: master and workers; postgres: the "
            "backends of this database; redis: the whole server; clients: this process; "
            "machine: every core's busy time, anyone's)"
        )
        print(f"{'case':36} {'clients':>7} " + " ".join(f"{p:>9}" for p in CpuMeter.PARTS))
        for r in results:
            n = max(len(r.latencies_ms), 1)
            figures = " ".join(f"{1000 * r.cpu.get(p, 0.0) / n:9.2f}" for p in CpuMeter.PARTS)
            print(f"{r.name:36} {r.clients:7d} {figures}")
    by = {(r.name, r.clients): r for r in results}
    verdicts = []
    for label, name in (("client", CLIENT_LIST), ("staff", STAFF_LIST)):
        p95 = by[(name, 8)].quantile(95)
        verdicts.append(
            (
                f"{label} list p95 at 8 clients under {TARGET_P95_MS:.0f} ms",
                p95 < TARGET_P95_MS,  # False for NaN: no request succeeded
                f"{p95:.1f} ms",
            )
        )
    for clients in CONCURRENCY:
        base_rps = by[(BASELINE, clients)].rps
        ratio = by[(CLIENT_LIST, clients)].rps / base_rps if base_rps else math.nan
        verdicts.append(
            (
                f"client list req/s at {clients} clients >= {TARGET_RATIO:g} x baseline",
                ratio >= TARGET_RATIO,
                f"{ratio:.2f} x",
            )
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores")
    for label, ok, figure in verdicts:
        print(f"target: {label:51} {figure:>10}  {'MET' if ok else 'MISSED'}")
    failed = False
    if any(r.errors for r in results):
        print("\nsome requests failed: see the errors column")
        failed = True
    if not all(ok for _label, ok, _figure in verdicts):
        print("\nsome targets were missed")
        failed = True
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
