"""Prometheus metrics: `/metrics`, a request middleware, and a collector that reads the
database at scrape time.

- Requests: `fieldbridge_http_requests_total` and `fieldbridge_http_request_duration_seconds`,
  labelled by route (the URL pattern's name, never the raw path: one series per endpoint,
  not per object), method and status class (2xx…).
- Sync runs and records, the outbox (depth, age of the oldest undelivered write) and webhook
  events are read from PostgreSQL when Prometheus scrapes (`DatabaseCollector`): Celery
  workers are separate processes, and the database is the one place every process writes to.
  They are gauges: runs and records of the runs *started in the last 24 hours* by status
  (a running run changes status; old runs leave the window and may be pruned), webhook
  deliveries stored in the last 24 hours, runs in progress, outbox events by status. The
  figures are read at most every 15 seconds per process (`DB_CACHE_SECONDS`), however many
  scrapers ask, and each query is an aggregate bounded by that window.
- Provider calls (`integrations.metrics`) are counted in the process that makes them. Web
  processes' counts show up directly. To see the workers' and every gunicorn worker's in one
  scrape, use prometheus_client's multiprocess mode: give each process group its own
  directory under one parent, emptied when the group starts (`PROMETHEUS_MULTIPROC_DIR`:
  var/prometheus/web for gunicorn, var/prometheus/worker for Celery; process ids repeat
  across containers, so groups must not share a directory). This view then adds up the
  metric files of its own directory and of its sibling directories. gunicorn's
  config/gunicorn.py empties the web directory at start and marks dead workers
  (`child_exit` → `mark_process_dead`); docker-compose.yml and Procfile.dev set it up.

Access: `Authorization: Bearer <METRICS_TOKEN>` (when the setting is set) or a superuser's
session; anyone else gets 401.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count, Min, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger("config.metrics")

HTTP_REQUESTS = Counter(
    "fieldbridge_http_requests_total",
    "HTTP requests answered, by route name, method and status class.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "fieldbridge_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name, method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
UNDELIVERED = ("pending", "sending", "failed")
# The database figures: runs and webhook deliveries of this window, read at most this often.
DB_WINDOW = timedelta(hours=24)
DB_CACHE_SECONDS = 15.0
RECORD_OUTCOMES = ("fetched", "created", "updated", "unchanged", "deleted", "failed", "held")


def route_label(request: HttpRequest) -> str:
    """The matched URL pattern's name ("api:quotes:list"), else its pattern; "unmatched" for
    a request no pattern matched (404s of random paths must not make new series)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class RequestMetricsMiddleware:
    """Times every request (put it first in MIDDLEWARE, so the time includes the others)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        labels = {
            "route": route_label(request),
            "method": request.method if request.method in METHODS else "other",
            "status": f"{response.status_code // 100}xx",
        }
        HTTP_LATENCY.labels(**labels).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(**labels).inc()
        return response


class DatabaseCollector(Collector):
    """Sync, outbox and webhook figures, read from the database at scrape time: a handful of
    aggregate queries, over the last `DB_WINDOW` for runs and webhook deliveries, cached for
    `DB_CACHE_SECONDS` in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, dict] | None = None

    def cache_clear(self) -> None:
        with self._lock:
            self._cached = None

    def describe(self):
        # Names only: registering must not query the database.
        return list(self._families().values())

    def _families(self) -> dict:
        return {
            "runs": GaugeMetricFamily(
                "fieldbridge_sync_runs_recent",
                "Sync runs started in the last 24 hours, by provider, mode and status (a gauge: "
                "a running run moves to its final status, and runs leave the window).",
                labels=["provider", "mode", "status"],
            ),
            "in_progress": GaugeMetricFamily(
                "fieldbridge_sync_runs_in_progress",
                "Runs not finished: queued (no worker yet) or running.",
                labels=["provider", "state"],
            ),
            "records": GaugeMetricFamily(
                "fieldbridge_sync_records_recent",
                "Records handled by the sync runs started in the last 24 hours, by provider and "
                "outcome.",
                labels=["provider", "outcome"],
            ),
            "outbox": GaugeMetricFamily(
                "fieldbridge_outbox_events",
                "Outbox events (writes to providers) by status.",
                labels=["status"],
            ),
            "outbox_depth": GaugeMetricFamily(
                "fieldbridge_outbox_depth",
                "Writes waiting to be delivered (pending, sending or failed-will-retry).",
            ),
            "outbox_age": GaugeMetricFamily(
                "fieldbridge_outbox_oldest_age_seconds",
                "Age of the oldest write not yet delivered (0 when none waits).",
            ),
            "webhooks": GaugeMetricFamily(
                "fieldbridge_webhook_events_recent",
                "Webhook deliveries stored in the last 24 hours, by provider and status.",
                labels=["provider", "status"],
            ),
            "db_up": GaugeMetricFamily(
                "fieldbridge_metrics_database_up",
                "1 when the database figures above could be read at this scrape.",
            ),
        }

    def collect(self):
        families = self._families()
        try:
            figures = self._figures()
        except DatabaseError:
            logger.warning("metrics: could not read the database", exc_info=True)
            families["db_up"].add_metric([], 0)
            yield families["db_up"]
            return
        for key, samples in figures.items():
            for labels, value in samples:
                families[key].add_metric(labels, value)
        families["db_up"].add_metric([], 1)
        yield from families.values()

    def _figures(self) -> dict[str, list[tuple[list[str], float]]]:
        """The samples of each family, from the cache when it is fresh."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= DB_CACHE_SECONDS:
                self._cached = (now, self._read())
            return self._cached[1]

    def _read(self) -> dict[str, list[tuple[list[str], float]]]:
        from sync.models import OutboxEvent, SyncRun, WebhookEvent

        now = timezone.now()
        since = now - DB_WINDOW
        figures: dict[str, list[tuple[list[str], float]]] = {
            key: [] for key in ("runs", "in_progress", "records", "outbox")
        }
        figures |= {"outbox_depth": [], "outbox_age": [], "webhooks": []}
        runs = (
            SyncRun.objects.filter(started_at__gte=since)
            .values("integration__provider", "mode", "status")
            .annotate(
                n=Count("id"),
                **{outcome: Sum(f"{outcome}_count") for outcome in RECORD_OUTCOMES},
            )
        )
        records: dict[tuple[str, str], int] = {}
        for row in runs:
            provider = row["integration__provider"]
            figures["runs"].append(([provider, row["mode"], row["status"]], row["n"]))
            for outcome in RECORD_OUTCOMES:
                key = (provider, outcome)
                records[key] = records.get(key, 0) + (row[outcome] or 0)
        figures["records"] = [([p, o], v) for (p, o), v in sorted(records.items())]

        active = (
            SyncRun.objects.filter(status=SyncRun.Status.RUNNING)
            .values("integration__provider")
            .annotate(
                queued=Count("id", filter=Q(heartbeat_at__isnull=True)),
                running=Count("id", filter=Q(heartbeat_at__isnull=False)),
            )
        )
        for row in active:
            for state in ("queued", "running"):
                figures["in_progress"].append(([row["integration__provider"], state], row[state]))

        by_status = dict(
            OutboxEvent.objects.values("status").annotate(n=Count("id")).values_list("status", "n")
        )
        for status in OutboxEvent.Status.values:
            figures["outbox"].append(([status], by_status.get(status, 0)))
        depth = sum(by_status.get(s, 0) for s in UNDELIVERED)
        figures["outbox_depth"].append(([], depth))
        oldest = OutboxEvent.objects.filter(status__in=UNDELIVERED).aggregate(t=Min("created_at"))
        age = (now - oldest["t"]).total_seconds() if oldest["t"] else 0.0
        figures["outbox_age"].append(([], max(age, 0.0)))

        webhooks = (
            WebhookEvent.objects.filter(created_at__gte=since)
            .values("provider", "status")
            .annotate(n=Count("id"))
        )
        for row in webhooks:
            figures["webhooks"].append(([row["provider"], row["status"]], row["n"]))
        return figures


class SiblingsMultiProcessCollector(Collector):
    """prometheus_client's MultiProcessCollector over several process groups' directories:
    `directory` (this process's PROMETHEUS_MULTIPROC_DIR) and the directories next to it."""

    PATTERNS = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory).resolve()

    def files(self) -> list[str]:
        groups = [self.directory]
        groups += sorted(
            p for p in self.directory.parent.iterdir() if p.is_dir() and p != self.directory
        )
        return [
            str(f) for group in groups for pattern in self.PATTERNS for f in group.glob(pattern)
        ]

    def collect(self):
        from prometheus_client.multiprocess import MultiProcessCollector

        return MultiProcessCollector.merge(self.files(), accumulate=True)


DATABASE_COLLECTOR = DatabaseCollector()
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Multiprocess mode: live metrics come from every process's files, not this one's registry.
    def _registry() -> CollectorRegistry:
        registry = CollectorRegistry()
        registry.register(SiblingsMultiProcessCollector(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        registry.register(DATABASE_COLLECTOR)
        return registry
else:
    REGISTRY.register(DATABASE_COLLECTOR)

    def _registry() -> CollectorRegistry:
        return REGISTRY


def _may_scrape(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())
    try:
        user = getattr(request, "user", None)
        return bool(user and user.is_authenticated and user.is_superuser)
    except DatabaseError:
        return False


@never_cache
@require_GET
@transaction.non_atomic_requests
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _may_scrape(request):
        response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # Importing the provider metrics registers them (a web process may not have called out yet).
    import integrations.metrics  # noqa: F401

    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
