"""Full imports started from the admin: start, run, progress, cancel; and who may see what.

An import is one Celery task (`sync.import_integration`) running a full sync of the chosen
entities one after another, in the provider's dependency order. It needs no table of its own:
it *is* its audit entry (`portal.AuditLog`, action "sync.import.start", holding the
integration, the entities, who started it and when), and its entities' counts are their
SyncRuns (the full runs of those entities started since). What only the task knows, the
entities it skipped and why, the totals the provider reported, when it ended and the error
that ended it, it notes in the cache (`_state_key`); it notes the end in a `finally`, so a
task that dies of an exception (a soft time limit included) still ends its import. A task
killed outright notes nothing: an import none of whose runs has sent a heartbeat for
SYNC_RUN_STALE_AFTER seconds (the engine's rule for dead runs) has ended too.

Cancelling sets the import's cancel flag (a cache key): the engine checks it between pages
(`sync.engine.sync_entity(cancel_key=…)`) and ends the entity's run as cancelled, without
moving the cursor or sweeping; the task starts no further entity.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.celery import app as celery_app
from integrations import registry
from integrations.exceptions import (
    BudgetExhausted,
    ProviderAuthError,
    ProviderError,
    UnknownProvider,
)
from integrations.models import Integration
from integrations.services import provider_for
from portal.models import AuditLog, User
from sync.engine import IntegrationUnavailable, RunLocked, sync_entity
from sync.models import SyncRun

logger = logging.getLogger("sync.imports")

IMPORT_TASK = "sync.import_integration"
IMPORT_START = "sync.import.start"
IMPORT_CANCEL = "sync.import.cancel"
TARGET_TYPE = "integrations.Integration"
# The task's notes outlive any import (the task's time limit) by far.
STATE_TTL = 7 * 24 * 3600
DONE = {
    SyncRun.Status.SUCCESS,
    SyncRun.Status.PARTIAL,
    SyncRun.Status.FAILED,
    SyncRun.Status.CANCELLED,
    SyncRun.Status.DEFERRED,
}


# -- scoping --------------------------------------------------------------------------------


def integrations_for_user(*, user: User, operate: bool = False) -> QuerySet[Integration]:
    """What the admin's operations pages may show this user: superusers every integration,
    staff their companies' (through portal.TeamMembership), anyone else none. With
    `operate`, only companies where the user is a team admin (dispatchers may watch imports,
    not start or cancel them)."""
    integrations = Integration.objects.select_related("company")
    if not (user.is_active and user.is_staff):
        return integrations.none()
    if user.is_superuser:
        return integrations.all()
    from portal.models import TeamMembership

    memberships = TeamMembership.objects.filter(user=user)
    if operate:
        memberships = memberships.filter(role=TeamMembership.Role.ADMIN)
    return integrations.filter(company_id__in=memberships.values("company_id"))


def integration_for_user_or_404(
    *, user: User, integration_id: int, operate: bool = False
) -> Integration:
    integration = (
        integrations_for_user(user=user, operate=operate).filter(pk=integration_id).first()
    )
    if integration is None:
        raise Http404("No such integration.")
    return integration


def import_for_user_or_404(*, user: User, import_id: int, operate: bool = False) -> AuditLog:
    entry = AuditLog.objects.filter(pk=import_id, action=IMPORT_START).first()
    if entry is None or not (
        integrations_for_user(user=user, operate=operate).filter(pk=int(entry.target_id)).exists()
    ):
        raise Http404("No such import.")
    return entry


def provider_entities(integration: Integration) -> tuple[str, ...]:
    """The entities the integration's provider reads, in dependency order."""
    try:
        return registry.get(integration.provider).entities
    except UnknownProvider:
        return ()


# -- starting and running ---------------------------------------------------------------------


def cancel_key(import_id: int) -> str:
    return f"sync:import:{import_id}:cancel"


def _state_key(import_id: int) -> str:
    return f"sync:import:{import_id}:state"


def _state(import_id: int) -> dict:
    return cache.get(_state_key(import_id)) or {}


def _note(import_id: int, **changes) -> None:
    """Only the import's own task writes its notes, one step at a time."""
    state = _state(import_id)
    merged = {key: {**state.get(key, {}), **changes.pop(key, {})} for key in ("skipped", "totals")}
    cache.set(_state_key(import_id), {**state, **changes, **merged}, STATE_TTL)


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.SYNC_RUN_STALE_AFTER)


def _error_text(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc).strip()
    if text in ("", name, f"{name}()"):  # billiard's SoftTimeLimitExceeded() says its name
        return name
    return f"{name}: {text}"[:500]


def _note_estimate(import_id: int, integration_id: int, entity: str, since: datetime) -> None:
    """Without an earlier complete full import to go by, ask the provider how many records
    there are (`Provider.estimated_total`; ServiceTitan counts, ServiceM8 cannot) and note it
    for the progress bar. An estimate never stops an import."""
    integration = Integration.objects.select_related("company").get(pk=integration_id)
    if _previous_total(integration, entity, since) is not None:
        return
    try:
        total = provider_for(integration).estimated_total(entity)
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        logger.warning(
            "could not estimate a total", extra={"import_id": import_id, "entity": entity}
        )
        return
    if total is not None:
        _note(import_id, totals={entity: total})


def import_start(
    *,
    integration: Integration,
    entities: list[str],
    actor: User | None,
    ip_address: str | None = None,
) -> AuditLog:
    """Record the import (its audit entry is the import) and queue its task on commit."""
    offered = provider_entities(integration)
    unknown = sorted(set(entities) - set(offered))
    if unknown:
        raise ValidationError(f"{integration} does not read {', '.join(unknown)}.")
    chosen = [e for e in offered if e in entities]
    if not chosen:
        raise ValidationError("Choose at least one entity to import.")
    if not integration.enabled or integration.status != Integration.Status.ACTIVE:
        raise ValidationError(
            f"{integration} is {integration.get_status_display().lower()}"
            f"{'' if integration.enabled else ' and disabled'}: fix that before importing."
        )
    with transaction.atomic():
        entry = AuditLog.objects.create(
            company=integration.company,
            actor=actor,
            action=IMPORT_START,
            target_type=TARGET_TYPE,
            target_id=str(integration.pk),
            target_repr=str(integration)[:255],
            after={"entities": chosen, "mode": SyncRun.Mode.FULL},
            ip_address=ip_address,
        )
        transaction.on_commit(
            lambda: celery_app.send_task(IMPORT_TASK, kwargs={"import_id": entry.pk})
        )
    return entry


def import_cancel(*, entry: AuditLog, actor: User | None, ip_address: str | None = None) -> bool:
    """Ask the import to stop; the engine stops at the next page boundary. Returns False when
    it had already ended (nothing to cancel)."""
    progress = import_progress(entry=entry)
    if progress.finished:
        return False
    cache.set(cancel_key(entry.pk), timezone.now().isoformat(), STATE_TTL)
    AuditLog.objects.create(
        company_id=entry.company_id,
        actor=actor,
        action=IMPORT_CANCEL,
        target_type=TARGET_TYPE,
        target_id=entry.target_id,
        target_repr=entry.target_repr,
        after={
            "import_id": entry.pk,
            "running": [e.entity for e in progress.entities if e.status == "running"],
        },
        ip_address=ip_address,
    )
    return True


def import_execute(*, import_id: int) -> dict[str, str]:
    """The task's body: a full run of each chosen entity, stopping early on a cancel, a spent
    budget, refused credentials or an unavailable integration. Returns entity -> outcome."""
    entry = AuditLog.objects.get(pk=import_id, action=IMPORT_START)
    integration_id = int(entry.target_id)
    entities: list[str] = list(entry.after["entities"])
    outcome: dict[str, str] = {}
    _note(import_id, started_at=timezone.now().isoformat())

    def skip(rest: list[str], reason: str) -> None:
        _note(import_id, skipped={e: reason for e in rest})
        outcome.update({e: "skipped" for e in rest})

    try:
        for index, entity in enumerate(entities):
            rest = entities[index + 1 :]
            if cache.get(cancel_key(import_id)):
                skip(entities[index:], "Cancelled before it started.")
                break
            _note_estimate(import_id, integration_id, entity, entry.created_at)
            try:
                run = sync_entity(
                    integration_id=integration_id,
                    entity=entity,
                    mode=SyncRun.Mode.FULL,
                    cancel_key=cancel_key(import_id),
                )
            except RunLocked:
                skip([entity], "Another sync of this entity was running; skipped.")
                continue
            except IntegrationUnavailable as exc:
                skip(entities[index:], f"Not started: {exc}.")
                break
            except BudgetExhausted:
                skip(rest, "Not started: the API budget is spent (see the dashboard).")
                break
            except ProviderAuthError:
                skip(rest, "Not started: the provider refused the credentials.")
                break
            except ProviderError:
                outcome[entity] = SyncRun.Status.FAILED  # recorded on the run; go on
                continue
            outcome[entity] = run.status
            if run.status == SyncRun.Status.CANCELLED:
                skip(rest, "Cancelled before it started.")
                break
    except BaseException as exc:
        # A soft time limit, a lost database, a bug: the run in progress recorded it (the
        # engine ends its run failed); the import ends here, saying why.
        error = _error_text(exc)
        _note(import_id, error=error)
        skip(
            [e for e in entities if e not in outcome],
            f"Not started: the import stopped ({error}).",
        )
        logger.exception("import stopped", extra={"import_id": import_id})
        raise
    finally:
        _note(import_id, finished_at=timezone.now().isoformat())
    logger.info("import finished", extra={"import_id": import_id, "outcome": outcome})
    return outcome


# -- progress ---------------------------------------------------------------------------------


@dataclass
class EntityProgress:
    entity: str
    status: str  # queued | skipped | a SyncRun status
    run_id: int | None = None
    fetched: int = 0
    written: int = 0  # created + updated
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    held: int = 0
    pages: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_seconds: float | None = None
    rate: float | None = None  # records fetched per second
    total: int | None = None
    total_source: str = ""
    percent: float | None = None  # None: unknown (no total while it runs)
    eta_seconds: float | None = None
    eta_note: str = ""  # why there is no ETA
    message: str = ""

    @property
    def done(self) -> bool:
        return self.status in DONE or self.status == "skipped"


@dataclass
class ImportProgress:
    import_id: int
    integration: Integration
    started_at: datetime
    started_by: str
    state: str  # queued | running | cancelling | finished | cancelled | failed
    entities: list[EntityProgress] = field(default_factory=list)
    error: str = ""  # why it ended early ("failed"): its task's exception, or no heartbeat

    @property
    def finished(self) -> bool:
        return self.state in ("finished", "cancelled", "failed")

    def as_json(self) -> dict:
        return {
            "import_id": self.import_id,
            "integration": str(self.integration),
            "state": self.state,
            "finished": self.finished,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "entities": [
                {
                    **{
                        k: (v.isoformat() if isinstance(v, datetime) else v)
                        for k, v in asdict(e).items()
                    },
                    "done": e.done,
                }
                for e in self.entities
            ],
        }


def _previous_total(integration: Integration, entity: str, before: datetime) -> int | None:
    """The last complete full run's count: the best estimate there is (a provider's own count,
    `Provider.estimated_total`, is the fallback for a first import)."""
    previous = (
        SyncRun.objects.filter(
            integration=integration,
            entity=entity,
            mode=SyncRun.Mode.FULL,
            status__in=[SyncRun.Status.SUCCESS, SyncRun.Status.PARTIAL],
            started_at__lt=before,
        )
        .order_by("-started_at")
        .values_list("fetched_count", flat=True)
        .first()
    )
    return previous


def _last_sign_of_life(entry: AuditLog, state: dict, runs: list[SyncRun]) -> datetime:
    """When the import's task last showed it was alive: queued, started, or a run's heartbeat
    (written page by page) or end."""
    marks = [entry.created_at]
    started = parse_datetime(state["started_at"]) if state.get("started_at") else None
    if started is not None:
        marks.append(started)
    for run in runs:
        marks += [t for t in (run.started_at, run.heartbeat_at, run.finished_at) if t]
    return max(marks)


def import_progress(*, entry: AuditLog, now: datetime | None = None) -> ImportProgress:
    now = now or timezone.now()
    integration = Integration.objects.select_related("company").get(pk=int(entry.target_id))
    entities: list[str] = list(entry.after["entities"])
    state = _state(entry.pk)
    skipped: dict[str, str] = state.get("skipped", {})
    totals: dict[str, int] = state.get("totals", {})
    cancelling = bool(cache.get(cancel_key(entry.pk)))
    runs: dict[str, SyncRun] = {}
    for run in SyncRun.objects.filter(
        integration=integration,
        mode=SyncRun.Mode.FULL,
        entity__in=entities,
        started_at__gte=entry.created_at,
    ).order_by("started_at"):
        runs.setdefault(run.entity, run)  # the import's own: the first since it started
    error = state.get("error", "")
    task_ended = bool(state.get("finished_at"))
    abandoned = False
    open_work = any(e not in runs and e not in skipped for e in entities) or any(
        r.status == SyncRun.Status.RUNNING for r in runs.values()
    )
    if not task_ended and open_work:
        last = _last_sign_of_life(entry, state, list(runs.values()))
        if now - last > _stale_after():
            abandoned = True
            what = "never started" if not runs and not state.get("started_at") else "stopped"
            error = (
                f"The import's task {what}: no sign of it since "
                f"{timezone.localtime(last):%Y-%m-%d %H:%M:%S} (its worker was killed or "
                "lost the task). Start a new import."
            )
    provider_name = _provider_name(integration)
    rows = []
    for entity in entities:
        run = runs.get(entity)
        if run is None:
            reason = skipped.get(entity)
            if reason is None and (cancelling or task_ended or abandoned):
                reason = (
                    "Cancelled before it started."
                    if cancelling
                    else "Not started: the import stopped."
                    if abandoned or error
                    else "Not started."
                )
            rows.append(
                EntityProgress(
                    entity=entity,
                    status="skipped" if reason else "queued",
                    message=reason or "",
                    percent=None if reason else 0.0,
                )
            )
            continue
        row = _entity_progress(
            run, integration, entry.created_at, now, provider_name, estimate=totals.get(entity)
        )
        if abandoned and run.status == SyncRun.Status.RUNNING:
            # Its worker is gone; the engine's dead-run sweep will close the row the same way.
            row.status = SyncRun.Status.FAILED
            row.eta_seconds, row.eta_note = None, "Ended."
            row.message = "No heartbeat: its worker stopped mid-run."
        rows.append(row)
    if not (task_ended or abandoned or all(r.done for r in rows)):
        if cancelling:
            overall = "cancelling"
        elif not runs and not state.get("started_at"):
            overall = "queued"
        else:
            overall = "running"
    elif cancelling:
        overall = "cancelled"
    elif error:
        overall = "failed"
    else:
        overall = "finished"
    actor = entry.actor.email if entry.actor_id and entry.actor else "someone"
    return ImportProgress(
        import_id=entry.pk,
        integration=integration,
        started_at=entry.created_at,
        started_by=actor,
        state=overall,
        entities=rows,
        error=error,
    )


def _provider_name(integration: Integration) -> str:
    try:
        return registry.get(integration.provider).name
    except UnknownProvider:
        return integration.get_provider_display()


def _entity_progress(
    run: SyncRun,
    integration: Integration,
    since: datetime,
    now: datetime,
    provider_name: str,
    *,
    estimate: int | None = None,
) -> EntityProgress:
    end = run.finished_at or now
    elapsed = max((end - run.started_at).total_seconds(), 0.0)
    rate = run.fetched_count / elapsed if elapsed > 0 and run.fetched_count else None
    total = _previous_total(integration, run.entity, since)
    source = "the last complete full import"
    if total is None and estimate is not None:
        total, source = estimate, f"{provider_name}'s count when the import reached it"
    row = EntityProgress(
        entity=run.entity,
        status=run.status,
        run_id=run.pk,
        fetched=run.fetched_count,
        written=run.created_count + run.updated_count,
        created=run.created_count,
        updated=run.updated_count,
        unchanged=run.unchanged_count,
        deleted=run.deleted_count,
        failed=run.failed_count,
        held=run.held_count,
        pages=run.pages_count,
        started_at=run.started_at,
        finished_at=run.finished_at,
        elapsed_seconds=round(elapsed, 1),
        rate=round(rate, 1) if rate else None,
        total=total,
        total_source=source if total is not None else "",
        message=run.error_summary,
    )
    if run.status in (SyncRun.Status.SUCCESS, SyncRun.Status.PARTIAL):
        row.percent = 100.0
        row.total = run.fetched_count  # now known exactly
        row.total_source = "this import"
    elif total:
        row.percent = round(min(99.0, 100.0 * run.fetched_count / total), 1)
    elif total == 0:
        row.percent = 99.0 if run.status == SyncRun.Status.RUNNING else None
    if run.status != SyncRun.Status.RUNNING:
        row.eta_note = "Ended."
    elif total is None:
        row.eta_note = (
            f"No ETA: {provider_name} does not say how many {run.entity} there are, and there "
            f"is no earlier complete full import of {run.entity} to estimate from."
        )
    elif not rate:
        row.eta_note = "No ETA yet: waiting for the first page."
    elif run.fetched_count >= total:
        row.eta_note = "Past the estimate (more records than the last import): any moment."
    else:
        row.eta_seconds = round((total - run.fetched_count) / rate, 1)
    return row


def active_import(*, integration: Integration) -> AuditLog | None:
    """The integration's latest import while it has not ended."""
    window = timezone.now() - timedelta(seconds=settings.SYNC_TASK_TIME_LIMIT)
    entry = (
        AuditLog.objects.filter(
            action=IMPORT_START,
            target_type=TARGET_TYPE,
            target_id=str(integration.pk),
            created_at__gte=window,
        )
        .order_by("-created_at")
        .first()
    )
    if entry is None or import_progress(entry=entry).finished:
        return None
    return entry


def recent_imports(*, integrations: QuerySet[Integration], limit: int = 10) -> QuerySet[AuditLog]:
    ids = [str(pk) for pk in integrations.values_list("pk", flat=True)]
    return (
        AuditLog.objects.filter(action=IMPORT_START, target_type=TARGET_TYPE, target_id__in=ids)
        .select_related("actor")
        .order_by("-created_at")[:limit]
    )
