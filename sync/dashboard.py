"""Selectors for the admin's sync status dashboard: per integration and entity, the last
success, the last run, records and errors; the next scheduled runs (django-celery-beat); the
API budget used against its limit; a week of runs; and what makes an integration unhealthy.

The API budget figure is the rate limiter's own count (`integrations.ratelimit`): every call
that took a permit from the account's limiter (every HTTP attempt to the provider, retries and
writes included, by every integration on that provider account) within the provider's long
window (ServiceM8: 20,000 calls in a sliding 24 hours). That is exactly the number that makes
the limiter defer work with BudgetExhausted, read from the limiter's Redis sorted set; nothing
else records per-day usage. Providers without a long window (ServiceTitan limits per second
only) have no daily budget to show.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from integrations import ratelimit, registry
from integrations.exceptions import UnknownProvider
from integrations.models import Integration
from integrations.services import provider_for
from sync.alerts import FailureStreak, failure_streaks
from sync.beat import schedule_name
from sync.imports import provider_entities
from sync.models import OutboxEvent, SyncError, SyncRun

logger = logging.getLogger("sync.dashboard")

CHART_DAYS = 7
BUDGET_WARN_RATIO = 0.9


@dataclass
class Budget:
    limit: int | None = None
    window_seconds: float | None = None
    used: int | None = None
    note: str = ""

    @property
    def percent(self) -> float | None:
        if self.limit and self.used is not None:
            return round(min(100.0, 100.0 * self.used / self.limit), 1)
        return None

    @property
    def exhausted(self) -> bool:
        return bool(self.limit and self.used is not None and self.used >= self.limit)

    @property
    def window_label(self) -> str:
        if not self.window_seconds:
            return ""
        hours = self.window_seconds / 3600
        return "24 hours" if round(hours) == 24 else f"{hours:g} hours"


@dataclass
class Schedule:
    mode: str
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    periodic_task_id: int
    due_now: bool = False


@dataclass
class EntityStatus:
    entity: str
    last_run: SyncRun | None = None
    last_success: SyncRun | None = None
    open_errors: int = 0
    # Finished runs failed in a row, and whether that is "failing repeatedly": the alerts'
    # rule (sync.alerts.failure_streaks, ALERT_SYNC_FAILURES_IN_A_ROW), so the dashboard and
    # the incident e-mail never disagree.
    streak: FailureStreak = field(default_factory=lambda: FailureStreak(failed=0))

    @property
    def failing_streak(self) -> int:
        return self.streak.failed


@dataclass
class ChartDay:
    day: date
    runs: int = 0
    failed: int = 0
    records: int = 0
    duration_seconds: float = 0.0


@dataclass
class Chart:
    """An inline SVG's geometry: bars for records fetched a day, a line for the time spent
    syncing that day."""

    width: int
    height: int
    bars: list[dict]
    line_points: str
    dots: list[dict]
    labels: list[dict]
    max_records: int
    max_duration: float
    plot_top: int
    plot_bottom: int
    plot_left: int
    plot_right: int


@dataclass
class IntegrationStatus:
    integration: Integration
    entities: list[EntityStatus] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)
    days: list[ChartDay] = field(default_factory=list)
    chart: Chart | None = None
    dead_letters: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


# -- budget -----------------------------------------------------------------------------------


def integration_budget(*, integration: Integration, now: datetime | None = None) -> Budget:
    try:
        provider_class = registry.get(integration.provider)
    except UnknownProvider:
        return Budget(note="Unknown provider.")
    budgets = [
        w for w in provider_class.rate_limits if w.seconds > ratelimit.MAX_BLOCKING_WINDOW_SECONDS
    ]
    if not budgets:
        return Budget(note=f"{provider_class.name} has no daily budget, only short rate limits.")
    window = max(budgets, key=lambda w: w.seconds)
    budget = Budget(limit=window.limit, window_seconds=window.seconds)
    if not settings.REDIS_URL:
        budget.note = "Not measured here: without Redis each worker counts in its own memory."
        return budget
    key = provider_for(integration).context.rate_limit_key
    now_ms = int((now or timezone.now()).timestamp() * 1000)
    try:
        # The limiter's bucket for this account; its sorted set scores are call times in ms.
        bucket = ratelimit._bucket(key, provider_class.rate_limits)
        used = bucket.redis.zcount(bucket.bucket_key, now_ms - window.as_rate().interval, "+inf")
    except Exception:  # the dashboard must render even with Redis unwell
        logger.warning("could not read the rate limiter", exc_info=True)
        budget.note = "Could not read the rate limiter's count."
        return budget
    budget.used = int(used)
    budget.note = (
        f"Calls to {provider_class.name} in the last {budget.window_label} for this account "
        "(every attempt, retries and writes included, by every integration on the account), "
        "as the rate limiter counts them."
    )
    return budget


# -- schedules --------------------------------------------------------------------------------


def _schedules(integrations: list[Integration], now: datetime) -> dict[int, list[Schedule]]:
    names = {
        schedule_name(i.pk, mode): (i.pk, mode)
        for i in integrations
        for mode in ("incremental", "full")
    }
    found: dict[int, list[Schedule]] = defaultdict(list)
    tasks = PeriodicTask.objects.filter(name__in=list(names)).select_related(
        "crontab", "interval", "solar", "clocked"
    )
    for task in tasks:
        integration_id, mode = names[task.name]
        next_run_at, due = None, False
        if task.enabled:
            try:
                last = task.last_run_at or now
                remaining = task.schedule.remaining_estimate(last)
                due = remaining.total_seconds() <= 0
                next_run_at = now if due else now + remaining
            except Exception:  # an odd schedule a person made must not break the page
                logger.warning("could not compute a schedule", exc_info=True)
        found[integration_id].append(
            Schedule(
                mode=mode,
                enabled=task.enabled,
                next_run_at=next_run_at,
                last_run_at=task.last_run_at,
                periodic_task_id=task.pk,
                due_now=due,
            )
        )
    for schedules in found.values():
        schedules.sort(key=lambda s: s.mode != "incremental")
    return found


# -- runs -------------------------------------------------------------------------------------


def _latest_runs(ids: list[int], *, keep: int, **filters) -> QuerySet[SyncRun]:
    """The latest `keep` full or incremental runs of each integration and entity."""
    return (
        SyncRun.objects.filter(integration_id__in=ids, **filters)
        .exclude(mode=SyncRun.Mode.WEBHOOK)
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("integration_id"), F("entity")],
                order_by=F("started_at").desc(),
            )
        )
        .filter(position__lte=keep)
        .order_by("integration_id", "entity", "position")
    )


def _days(ids: list[int], now: datetime) -> dict[int, list[ChartDay]]:
    today = timezone.localdate(now)
    first = today - timedelta(days=CHART_DAYS - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    rows = (
        SyncRun.objects.filter(integration_id__in=ids, started_at__gte=start)
        .exclude(mode=SyncRun.Mode.WEBHOOK)
        .annotate(day=TruncDate("started_at"))
        .values("integration_id", "day")
        .annotate(
            runs=Count("id"),
            failed=Count("id", filter=Q(status=SyncRun.Status.FAILED)),
            records=Sum("fetched_count"),
            duration=Sum(
                ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
            ),
        )
    )
    by_day: dict[tuple[int, date], dict] = {(r["integration_id"], r["day"]): r for r in rows}
    result = {}
    for integration_id in ids:
        days = []
        for offset in range(CHART_DAYS):
            day = first + timedelta(days=offset)
            row = by_day.get((integration_id, day), {})
            days.append(
                ChartDay(
                    day=day,
                    runs=row.get("runs", 0),
                    failed=row.get("failed", 0),
                    records=row.get("records") or 0,
                    duration_seconds=(row.get("duration") or timedelta()).total_seconds(),
                )
            )
        result[integration_id] = days
    return result


def runs_chart(days: list[ChartDay]) -> Chart:
    width, height = 560, 170
    left, right, top, bottom = 52, width - 52, 12, height - 28
    slot = (right - left) / len(days)
    max_records = max([d.records for d in days] + [1])
    max_duration = max([d.duration_seconds for d in days] + [1.0])
    bars, dots, labels, points = [], [], [], []
    for index, day in enumerate(days):
        x = left + slot * index
        bar_height = (bottom - top) * day.records / max_records
        bars.append(
            {
                "x": round(x + slot * 0.2, 1),
                "y": round(bottom - bar_height, 1),
                "w": round(slot * 0.6, 1),
                "h": round(bar_height, 1),
                "title": f"{day.day:%a %d %b}: {day.records} records in {day.runs} run(s), "
                f"{day.failed} failed, {day.duration_seconds:.0f} s syncing",
                "failed": day.failed,
            }
        )
        cx = round(x + slot / 2, 1)
        cy = round(bottom - (bottom - top) * day.duration_seconds / max_duration, 1)
        points.append(f"{cx},{cy}")
        dots.append({"x": cx, "y": cy, "title": f"{day.duration_seconds:.0f} s"})
        labels.append({"x": cx, "y": height - 10, "text": f"{day.day:%a %d}"})
    return Chart(
        width=width,
        height=height,
        bars=bars,
        line_points=" ".join(points),
        dots=dots,
        labels=labels,
        max_records=max_records,
        max_duration=round(max_duration, 1),
        plot_top=top,
        plot_bottom=bottom,
        plot_left=left,
        plot_right=right,
    )


# -- the page ---------------------------------------------------------------------------------


def sync_dashboard(
    *, integrations: QuerySet[Integration], now: datetime | None = None
) -> list[IntegrationStatus]:
    """One row per integration the caller may see (scope it first: `integrations_for_user`)."""
    now = now or timezone.now()
    items = list(integrations.select_related("company").order_by("company__name", "pk"))
    ids = [i.pk for i in items]
    latest = {(run.integration_id, run.entity): run for run in _latest_runs(ids, keep=1)}
    streaks = failure_streaks(integration_ids=ids)
    successes = {
        (run.integration_id, run.entity): run
        for run in _latest_runs(ids, keep=1, status=SyncRun.Status.SUCCESS)
    }
    errors = {
        (row["integration_id"], row["entity"]): row["n"]
        for row in SyncError.objects.filter(integration_id__in=ids, resolved_at__isnull=True)
        .values("integration_id", "entity")
        .annotate(n=Count("id"))
    }
    dead = dict(
        OutboxEvent.objects.filter(integration_id__in=ids, status=OutboxEvent.Status.DEAD)
        .values("integration_id")
        .annotate(n=Count("id"))
        .values_list("integration_id", "n")
    )
    schedules = _schedules(items, now)
    days = _days(ids, now)
    result = []
    for integration in items:
        status = IntegrationStatus(
            integration=integration,
            schedules=schedules.get(integration.pk, []),
            budget=integration_budget(integration=integration, now=now),
            days=days[integration.pk],
            dead_letters=dead.get(integration.pk, 0),
        )
        status.chart = runs_chart(status.days)
        entities = list(provider_entities(integration))
        entities += sorted({e for (i, e) in latest if i == integration.pk} - set(entities))
        for entity in entities:
            key = (integration.pk, entity)
            status.entities.append(
                EntityStatus(
                    entity=entity,
                    last_run=latest.get(key),
                    last_success=successes.get(key),
                    open_errors=errors.get(key, 0),
                    streak=streaks.get(key, FailureStreak(failed=0)),
                )
            )
        _judge(status, now)
        result.append(status)
    return result


def _judge(status: IntegrationStatus, now: datetime) -> None:
    integration = status.integration
    if integration.status == Integration.Status.NEEDS_REAUTH:
        status.problems.append(
            "Needs reauthorization: the provider refused the credentials. Enter new "
            "credentials or reconnect, then test the connection."
        )
    if not integration.enabled or integration.status == Integration.Status.DISABLED:
        status.problems.append("Disabled: no syncs run.")
    if integration.last_test_ok is False:
        status.problems.append(f"The last connection test failed: {integration.last_test_message}")
    for entity in status.entities:
        if entity.streak.failing:
            status.problems.append(
                f"Failing repeatedly: the last {entity.streak.failed} runs of {entity.entity} "
                f"failed. {entity.streak.summary}".strip()
            )
    budget = status.budget
    deferred = [
        e.last_run
        for e in status.entities
        if e.last_run
        and e.last_run.status == SyncRun.Status.DEFERRED
        and e.last_run.retry_at
        and e.last_run.retry_at > now
    ]
    if budget.exhausted or deferred:
        until = max((r.retry_at for r in deferred), default=None)
        when = f" until {timezone.localtime(until):%Y-%m-%d %H:%M}" if until else ""
        status.problems.append(f"Out of API budget{when}: syncs are deferred.")
    elif budget.percent is not None and budget.percent >= 100 * BUDGET_WARN_RATIO:
        status.warnings.append(f"{budget.percent:.0f}% of the API budget is used.")
    errors = sum(e.open_errors for e in status.entities)
    if errors:
        status.warnings.append(f"{errors} record(s) failed to sync and wait for review.")
    if status.dead_letters:
        status.warnings.append(
            f"{status.dead_letters} write(s) to the provider are dead letters: fix the cause, "
            "then retry them."
        )
