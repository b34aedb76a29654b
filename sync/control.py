"""Sync control for company staff (the API's /integrations/{id}/… endpoints): which
integrations a user may view and operate, starting syncs with real run ids, a sync's status,
and the integration self-test.

As in the admin, every team member of the integration's company may view (sync status), but
only its team admins (TeamMembership role "admin") and superusers may operate: test the
connection, run the self-test (a live call too) and start syncs.

Starting a sync records its runs first (`sync.engine.sync_runs_queue`: "running" rows with no
heartbeat yet) and queues `sync.sync_integration` with their ids on commit; the worker's runs
become those rows, so the ids the caller gets are the runs it can follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from config.celery import app as celery_app
from integrations import registry
from integrations.base import (
    ExternalAttachment,
    ExternalClient,
    ExternalContact,
    ExternalJob,
    ExternalJobActivity,
    ExternalJobContact,
    ExternalJobMaterial,
    ExternalLineItem,
    ExternalLocation,
    ExternalNote,
    ExternalQuote,
    ExternalRecord,
    ExternalStaff,
)
from integrations.encryption import DecryptionError, UnreadableSecret
from integrations.exceptions import UnknownProvider
from integrations.models import Integration
from integrations.services import integration_test_connection, provider_for
from integrations.webhooks import webhook_handler
from portal.models import TeamMembership, User
from portal.selectors import company_list_visible_to
from sync.dashboard import integration_budget
from sync.engine import RunLocked, sync_runs_queue
from sync.models import HeldRecord, OutboxEvent, SyncError, SyncRun, WebhookEvent
from sync.webhooks import integration_webhook_secrets

SYNC_TASK = "sync.sync_integration"


class SyncUnavailable(Exception):
    """The integration cannot sync now (disabled, needs reauthorization, unknown provider)."""


# -- scope ------------------------------------------------------------------------------------


def integration_list_for_staff(*, user: User) -> QuerySet[Integration]:
    """Integrations whose sync the user may view: their companies' (portal.TeamMembership, any
    role), every one for a superuser, none for client users."""
    return Integration.objects.select_related("company").filter(
        company__in=company_list_visible_to(user=user)
    )


def integration_list_for_operators(*, user: User) -> QuerySet[Integration]:
    """Integrations the user may operate (test, self-test, start syncs): those of companies
    where they are a team admin, every one for a superuser; none for dispatchers and client
    users (the admin's rule: dispatchers only view)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Integration.objects.none()
    integrations = Integration.objects.select_related("company")
    if user.is_superuser:
        return integrations.all()
    admin_of = TeamMembership.objects.filter(user=user, role=TeamMembership.Role.ADMIN)
    return integrations.filter(company_id__in=admin_of.values("company_id"))


# -- starting syncs ---------------------------------------------------------------------------

# The portal's sync actions, by the normalized record types they bring in; each provider's
# entities that map to one of these types take part (a ServiceM8 quote is a job).
ACTION_RECORD_TYPES: dict[str, tuple[type[ExternalRecord], ...]] = {
    "sync_companies": (ExternalClient, ExternalLocation, ExternalContact),
    # A job's visits (schedule, technicians), materials, attachments, contacts and notes come
    # with it.
    "sync_jobs": (
        ExternalJob,
        ExternalJobMaterial,
        ExternalStaff,
        ExternalJobActivity,
        ExternalAttachment,
        ExternalJobContact,
        ExternalNote,
    ),
    "sync_quotes": (ExternalQuote, ExternalLineItem),
}
FULL_SYNC = "full_sync"
SYNC_ACTIONS = (*ACTION_RECORD_TYPES, FULL_SYNC)


def sync_action_entities(*, integration: Integration, action: str) -> list[str]:
    """The provider's entities an action syncs, in the provider's dependency order."""
    try:
        provider = provider_for(integration)
    except UnknownProvider as exc:
        raise SyncUnavailable(f"Fieldbridge has no connector for {integration.provider}.") from exc
    if action == FULL_SYNC:
        return list(provider.entities)
    wanted = ACTION_RECORD_TYPES[action]
    return [
        entity
        for entity in provider.entities
        if any(issubclass(t, wanted) for t in provider.record_types(entity))
    ]


def sync_start(*, integration: Integration, action: str, mode: str | None = None) -> list[SyncRun]:
    """Queue a sync of the action's entities; returns its runs (status "running", not yet
    started: `started` is false until a worker takes them). Raises SyncUnavailable, and
    RunLocked when one of the entities is already syncing."""
    if not integration.enabled or integration.status != Integration.Status.ACTIVE:
        raise SyncUnavailable(
            f"The integration is {integration.get_status_display().lower()}"
            f"{'' if integration.enabled else ' and disabled'}: no sync can run."
        )
    mode = SyncRun.Mode.FULL if action == FULL_SYNC else (mode or SyncRun.Mode.INCREMENTAL)
    entities = sync_action_entities(integration=integration, action=action)
    if not entities:
        raise SyncUnavailable(f"{integration.get_provider_display()} has nothing to {action}.")
    with transaction.atomic():
        runs = sync_runs_queue(integration=integration, entities=entities, mode=mode)
        kwargs = {
            "integration_id": integration.pk,
            "mode": mode,
            "entities": entities,
            "run_ids": {run.entity: run.pk for run in runs},
        }
        transaction.on_commit(lambda: celery_app.send_task(SYNC_TASK, kwargs=kwargs))
    return runs


# -- status -----------------------------------------------------------------------------------


@dataclass
class EntitySyncStatus:
    entity: str
    last_run: SyncRun | None
    last_success_at: datetime | None
    open_errors: int
    held_records: int


@dataclass
class SyncStatus:
    integration: Integration
    running: bool
    entities: list[EntitySyncStatus]
    runs: list[SyncRun]
    errors: list[SyncError]
    runs_by_status: dict[str, int]
    open_errors: int
    held_records: int


def sync_status_get(*, integration: Integration, limit: int = 20) -> SyncStatus:
    """Runs, counts and errors of one integration: each entity's last run and open errors,
    the latest `limit` runs and open errors."""
    runs = list(
        SyncRun.objects.filter(integration=integration).order_by("-started_at", "-id")[:limit]
    )
    open_errors = SyncError.objects.filter(integration=integration, resolved_at__isnull=True)
    errors_by_entity = dict(
        open_errors.values("entity").annotate(n=Count("id")).values_list("entity", "n")
    )
    held_by_entity = dict(
        HeldRecord.objects.filter(integration=integration)
        .values("entity")
        .annotate(n=Count("id"))
        .values_list("entity", "n")
    )
    try:
        entities = list(registry.get(integration.provider).entities)
    except UnknownProvider:
        entities = []
    entity_rows = []
    for entity in entities:
        of_entity = SyncRun.objects.filter(integration=integration, entity=entity).exclude(
            mode=SyncRun.Mode.WEBHOOK
        )
        last_success = (
            of_entity.filter(status=SyncRun.Status.SUCCESS)
            .order_by("-started_at")
            .values_list("finished_at", flat=True)
            .first()
        )
        entity_rows.append(
            EntitySyncStatus(
                entity=entity,
                last_run=of_entity.order_by("-started_at", "-id").first(),
                last_success_at=last_success,
                open_errors=errors_by_entity.get(entity, 0),
                held_records=held_by_entity.get(entity, 0),
            )
        )
    by_status = dict(
        SyncRun.objects.filter(integration=integration)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return SyncStatus(
        integration=integration,
        running=by_status.get(SyncRun.Status.RUNNING, 0) > 0,
        entities=entity_rows,
        runs=runs,
        errors=list(open_errors.order_by("-created_at", "-id")[:limit]),
        runs_by_status={s: by_status.get(s, 0) for s in SyncRun.Status.values},
        open_errors=sum(errors_by_entity.values()),
        held_records=sum(held_by_entity.values()),
    )


# -- self-test --------------------------------------------------------------------------------

PASS, FAIL = "pass", "fail"
# The last run of an entity older than this (or none) is "not synced recently".
SYNC_FRESH_FOR = timedelta(days=2)


@dataclass
class Check:
    name: str
    status: str
    message: str


@dataclass
class SelfTest:
    integration: Integration
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status == PASS for c in self.checks)


def _check_credentials(integration: Integration) -> Check:
    credentials = integration.credentials
    if isinstance(credentials, UnreadableSecret):
        return Check(
            "credentials",
            FAIL,
            "The stored credentials cannot be decrypted with the configured keys "
            "(FIELD_ENCRYPTION_KEYS): enter them again.",
        )
    if not credentials:
        return Check("credentials", FAIL, "No credentials are stored.")
    try:
        provider_class = registry.get(integration.provider)
    except UnknownProvider:
        return Check("credentials", FAIL, f"No connector for {integration.provider}.")
    problems = provider_class.credential_errors(credentials)
    if problems:
        return Check("credentials", FAIL, " ".join(problems.values()))
    mode = provider_class.credential_mode(credentials)
    return Check("credentials", PASS, f"Present and decryptable ({mode}).")


def _check_connection(integration: Integration, actor: User | None) -> Check:
    try:
        result = integration_test_connection(integration=integration, actor=actor)
    except DecryptionError as exc:
        return Check("connection", FAIL, str(exc))
    status = PASS if result.ok else FAIL
    return Check("connection", status, f"{result.message} ({result.latency_ms} ms)")


def _check_budget(integration: Integration) -> Check:
    budget = integration_budget(integration=integration)
    if budget.exhausted:
        return Check("api_budget", FAIL, f"The API budget is spent ({budget.used}/{budget.limit}).")
    if budget.limit and budget.used is not None:
        return Check(
            "api_budget",
            PASS,
            f"{budget.used} of {budget.limit} calls used in the last {budget.window_label}.",
        )
    return Check("api_budget", PASS, budget.note or "No budget to spend.")


def _check_last_sync(integration: Integration, now: datetime) -> Check:
    status = sync_status_get(integration=integration, limit=0)
    problems = []
    for row in status.entities:
        run = row.last_run
        if run is None:
            problems.append(f"{row.entity} has never synced")
        elif run.status in (SyncRun.Status.FAILED, SyncRun.Status.DEFERRED):
            problems.append(f"{row.entity}'s last run {run.status}: {run.error_summary}".strip())
        elif run.status != SyncRun.Status.RUNNING and run.started_at < now - SYNC_FRESH_FOR:
            problems.append(f"{row.entity} last synced {run.started_at:%Y-%m-%d %H:%M} UTC")
    if problems:
        return Check("last_sync", FAIL, "; ".join(problems) + ".")
    return Check(
        "last_sync",
        PASS,
        f"Every entity's last run succeeded or is running ({status.open_errors} open "
        f"record error(s), {status.held_records} held record(s)).",
    )


def _check_webhooks(integration: Integration, now: datetime) -> Check:
    try:
        handler = webhook_handler(integration.provider)
    except UnknownProvider:
        return Check("webhooks", PASS, "The provider sends no webhooks: scheduled syncs only.")
    try:
        secrets = integration_webhook_secrets(integration=integration, handler=handler)
    except DecryptionError:
        secrets = []
    if not secrets:
        return Check(
            "webhooks",
            FAIL,
            "No webhook secret is configured: deliveries cannot be verified and are rejected.",
        )
    recent = WebhookEvent.objects.filter(
        integration=integration, created_at__gte=now - timedelta(days=7)
    )
    rejected = recent.filter(status=WebhookEvent.Status.REJECTED).count()
    if rejected:
        return Check(
            "webhooks", FAIL, f"{rejected} delivery(ies) in the last 7 days failed verification."
        )
    return Check(
        "webhooks",
        PASS,
        f"{len(secrets)} secret(s) configured; {recent.count()} delivery(ies) in the last 7 days.",
    )


def _check_outbox(integration: Integration) -> Check:
    dead = OutboxEvent.objects.filter(integration=integration, status=OutboxEvent.Status.DEAD)
    count = dead.count()
    if count:
        return Check(
            "outbox",
            FAIL,
            f"{count} write(s) to the provider are dead letters: fix the cause, then retry them.",
        )
    return Check("outbox", PASS, "No dead letters.")


def integration_self_test(*, integration: Integration, actor: User | None = None) -> SelfTest:
    """Check the whole integration; each check passes or fails with a message. The connection
    test is a real call to the provider (recorded like the admin's)."""
    now = timezone.now()
    result = SelfTest(integration=integration)
    credentials = _check_credentials(integration)
    result.checks.append(credentials)
    if credentials.status == PASS:
        result.checks.append(_check_connection(integration, actor))
    else:
        result.checks.append(
            Check("connection", FAIL, "Not tried: the credentials are not usable.")
        )
    result.checks.append(_check_budget(integration))
    result.checks.append(_check_last_sync(integration, now))
    result.checks.append(_check_webhooks(integration, now))
    result.checks.append(_check_outbox(integration))
    return result


__all__ = [
    "SYNC_ACTIONS",
    "RunLocked",
    "SyncUnavailable",
    "integration_list_for_operators",
    "integration_list_for_staff",
    "integration_self_test",
    "sync_start",
    "sync_status_get",
]
