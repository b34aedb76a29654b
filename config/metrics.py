"""Prometheus metrics: `/metrics`, a request middleware, and a collector that reads the
database at scrape time.

- Requests: `fieldbridge_http_requests_total` and `fieldbridge_http_request_duration_seconds`,
  labelled by route (the URL pattern's name, never the raw path: one series per endpoint,
  not per object), method and status class (2xx…).
- Sync runs and records, the outbox (depth, age of the oldest undelivered write) and webhook
  events are read from PostgreSQL when Prometheus scrapes (`DatabaseCollector`). Celery
  workers are separate processes: counters they incremented would not be visible here, and
  the database is the one place every process writes to.
- Provider calls (`integrations.metrics`) are counted in the process that makes them. Web
  processes' counts show up directly; to see the workers' (and every gunicorn worker's) in
  one scrape, run every process with PROMETHEUS_MULTIPROC_DIR set to one shared, emptied-at-
  start directory: this view then aggregates all processes' files (prometheus_client's
  multiprocess mode).

Access: `Authorization: Bearer <METRICS_TOKEN>` (when the setting is set) or a superuser's
session; anyone else gets 401.
"""

from __future__ import annotations

import hmac
import logging
import os
import time

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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
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
    """Sync, outbox and webhook figures, read from the database at scrape time (a handful of
    aggregate queries over indexed columns)."""

    def describe(self):
        # Names only: registering must not query the database.
        return list(self._families().values())

    def _families(self) -> dict:
        return {
            "runs": CounterMetricFamily(
                "fieldbridge_sync_runs",
                "Sync runs recorded, by provider, mode and status (a running one counts under "
                "running until it ends).",
                labels=["provider", "mode", "status"],
            ),
            "in_progress": GaugeMetricFamily(
                "fieldbridge_sync_runs_in_progress",
                "Runs not finished: queued (no worker yet) or running.",
                labels=["provider", "state"],
            ),
            "records": CounterMetricFamily(
                "fieldbridge_sync_records",
                "Records handled by sync runs, by provider and outcome.",
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
            "webhooks": CounterMetricFamily(
                "fieldbridge_webhook_events",
                "Webhook deliveries stored, by provider and status.",
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
            self._fill(families)
        except DatabaseError:
            logger.warning("metrics: could not read the database", exc_info=True)
            families["db_up"].add_metric([], 0)
            yield families["db_up"]
            return
        families["db_up"].add_metric([], 1)
        yield from families.values()

    def _fill(self, families: dict) -> None:
        from sync.models import OutboxEvent, SyncRun, WebhookEvent

        now = timezone.now()
        runs = SyncRun.objects.values("integration__provider", "mode", "status").annotate(
            n=Count("id"),
            fetched=Sum("fetched_count"),
            created=Sum("created_count"),
            updated=Sum("updated_count"),
            unchanged=Sum("unchanged_count"),
            deleted=Sum("deleted_count"),
            failed=Sum("failed_count"),
            held=Sum("held_count"),
        )
        records: dict[tuple[str, str], int] = {}
        for row in runs:
            provider = row["integration__provider"]
            families["runs"].add_metric([provider, row["mode"], row["status"]], row["n"])
            for outcome in ("fetched", "created", "updated", "unchanged", "deleted", "failed"):
                key = (provider, outcome)
                records[key] = records.get(key, 0) + (row[outcome] or 0)
            records[(provider, "held")] = records.get((provider, "held"), 0) + (row["held"] or 0)
        for (provider, outcome), value in sorted(records.items()):
            families["records"].add_metric([provider, outcome], value)

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
                families["in_progress"].add_metric(
                    [row["integration__provider"], state], row[state]
                )

        by_status = dict(
            OutboxEvent.objects.values("status").annotate(n=Count("id")).values_list("status", "n")
        )
        for status in OutboxEvent.Status.values:
            families["outbox"].add_metric([status], by_status.get(status, 0))
        families["outbox_depth"].add_metric([], sum(by_status.get(s, 0) for s in UNDELIVERED))
        oldest = OutboxEvent.objects.filter(status__in=UNDELIVERED).aggregate(t=Min("created_at"))
        age = (now - oldest["t"]).total_seconds() if oldest["t"] else 0.0
        families["outbox_age"].add_metric([], max(age, 0.0))

        webhooks = WebhookEvent.objects.values("provider", "status").annotate(n=Count("id"))
        for row in webhooks:
            families["webhooks"].add_metric([row["provider"], row["status"]], row["n"])


DATABASE_COLLECTOR = DatabaseCollector()
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Multiprocess mode: live metrics come from every process's files, not this one's registry.
    def _registry() -> CollectorRegistry:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
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
