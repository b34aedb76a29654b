"""Sync control for company staff: test a connection, start syncs, read a sync's status, run
the integration self-test. As in the admin, team admins of the integration's company operate
(test, self-test, start syncs) and every team member views (sync status); anyone else gets 404,
as for any object outside their scope. Superusers may control every integration."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import Integration
from integrations.services import integration_test_connection
from portal.api.exception_handler import ApiDomainError
from portal.api.mixins import CompanyScopedApiMixin
from sync.control import (
    ACTION_RECORD_TYPES,
    FULL_SYNC,
    RunLocked,
    SyncUnavailable,
    integration_list_for_operators,
    integration_list_for_staff,
    integration_self_test,
    sync_start,
    sync_status_get,
)
from sync.models import SyncRun

TAG = ["sync"]
NOT_FOUND = OpenApiResponse(description="No such integration, or not one of your company's.")
NOT_OPERABLE = OpenApiResponse(
    description="No such integration, or not one you may operate (a team admin of its company)."
)


class IntegrationScopedApi(CompanyScopedApiMixin, APIView):
    """An integration the user's company owns (every one for a superuser), else 404. With
    `operates`, only one of a company where the user is a team admin (dispatchers: 404)."""

    operates = False

    def integrations(self) -> QuerySet[Integration]:
        if self.operates:
            return integration_list_for_operators(user=self.request.user)
        return integration_list_for_staff(user=self.request.user)

    def get_integration(self, integration_id: int) -> Integration:
        return self.get_visible_object(self.integrations(), pk=integration_id)


# -- shared output ------------------------------------------------------------------------------


class SyncRunOutputSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(help_text="The run's id.")
    entity = serializers.CharField(help_text="The provider entity this run syncs (clients, jobs…).")
    mode = serializers.ChoiceField(
        choices=SyncRun.Mode.choices, help_text="full, incremental or webhook (one record)."
    )
    status = serializers.ChoiceField(
        choices=SyncRun.Status.choices,
        help_text="running (also while queued: see `started`), success, partial, failed, "
        "cancelled or deferred (API budget spent; see `retry_at`).",
    )
    started = serializers.SerializerMethodField(
        help_text="False while the run waits for a worker; true once a worker took it."
    )
    started_at = serializers.DateTimeField(
        help_text="When a worker started it (when it was queued, until then)."
    )
    finished_at = serializers.DateTimeField(
        allow_null=True, help_text="When it ended; null while queued or running."
    )
    heartbeat_at = serializers.DateTimeField(
        allow_null=True, help_text="The worker's last sign of life (after each page)."
    )
    retry_at = serializers.DateTimeField(
        allow_null=True, help_text="For a deferred run: when the API budget frees up."
    )
    fetched_count = serializers.IntegerField(help_text="Records read from the provider.")
    created_count = serializers.IntegerField(help_text="Local records created.")
    updated_count = serializers.IntegerField(help_text="Local records updated.")
    unchanged_count = serializers.IntegerField(help_text="Records read that had not changed.")
    deleted_count = serializers.IntegerField(
        help_text="Local records marked deleted (gone at the provider)."
    )
    failed_count = serializers.IntegerField(
        help_text="Records that failed to map or write (see the sync errors)."
    )
    held_count = serializers.IntegerField(
        help_text="Records kept aside until their parent arrives (retried on later runs)."
    )
    pages_count = serializers.IntegerField(help_text="Pages read from the provider.")
    error_summary = serializers.CharField(help_text="What went wrong, if anything; else empty.")

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "entity",
            "mode",
            "status",
            "started",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "retry_at",
            "fetched_count",
            "created_count",
            "updated_count",
            "unchanged_count",
            "deleted_count",
            "failed_count",
            "held_count",
            "pages_count",
            "error_summary",
        ]

    def get_started(self, run: SyncRun) -> bool:
        return not (run.status == SyncRun.Status.RUNNING and run.heartbeat_at is None)


# -- test connection ----------------------------------------------------------------------------


class IntegrationTestConnectionApi(IntegrationScopedApi):
    operates = True

    class OutputSerializer(serializers.Serializer):
        result = serializers.ChoiceField(
            choices=["ok", "failed"], help_text="Whether the provider accepted the credentials."
        )
        ok = serializers.BooleanField(help_text="Same as result == ok.")
        message = serializers.CharField(help_text="What the provider said, in plain words.")
        latency_ms = serializers.IntegerField(help_text="How long the test call took.")

    @extend_schema(
        tags=TAG,
        operation_id="integration_test_connection",
        summary="Test an integration's connection",
        description="Calls the provider with the stored credentials (one small read) and keeps "
        "the result on the integration, as the admin's Test connection does. Team admins of "
        "the integration's company (and superusers) only.",
        request=None,
        responses={200: OutputSerializer, 404: NOT_OPERABLE},
    )
    def post(self, request, integration_id: int):
        integration = self.get_integration(integration_id)
        result = integration_test_connection(
            integration=integration, actor=request.user, ip_address=self.client_ip()
        )
        data = {
            "result": "ok" if result.ok else "failed",
            "ok": result.ok,
            "message": result.message,
            "latency_ms": result.latency_ms,
        }
        return Response(self.OutputSerializer(data).data)


# -- start a sync -------------------------------------------------------------------------------


class _SyncStartApi(IntegrationScopedApi):
    """One endpoint per portal action (see `sync.control.ACTION_RECORD_TYPES`)."""

    action: str
    operates = True

    class InputSerializer(serializers.Serializer):
        mode = serializers.ChoiceField(
            choices=[SyncRun.Mode.INCREMENTAL, SyncRun.Mode.FULL],
            default=SyncRun.Mode.INCREMENTAL,
            help_text="incremental (what changed since the last run) or full (every record; "
            "records the provider no longer lists are marked deleted).",
        )

    class OutputSerializer(serializers.Serializer):
        integration_id = serializers.IntegerField(help_text="The integration.")
        action = serializers.CharField(help_text="The action started.")
        mode = serializers.CharField(help_text="full or incremental.")
        entities = serializers.ListField(
            child=serializers.CharField(),
            help_text="The provider's entities synced, in the order they run.",
        )
        run_ids = serializers.ListField(
            child=serializers.IntegerField(),
            help_text="The runs' ids, one per entity (follow them in sync-status).",
        )
        runs = SyncRunOutputSerializer(many=True, help_text="The queued runs.")

    def post(self, request, integration_id: int):
        integration = self.get_integration(integration_id)
        mode = None
        if self.action != FULL_SYNC:
            serializer = self.InputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            mode = serializer.validated_data["mode"]
        try:
            runs = sync_start(integration=integration, action=self.action, mode=mode)
        except RunLocked as exc:
            raise ApiDomainError(
                f"A sync of this integration is already running ({exc}).",
                code="sync_running",
                api_status=status.HTTP_409_CONFLICT,
            ) from exc
        except SyncUnavailable as exc:
            raise ApiDomainError(str(exc), code="integration_unavailable", api_status=422) from exc
        data = {
            "integration_id": integration.pk,
            "action": self.action,
            "mode": runs[0].mode,
            "entities": [run.entity for run in runs],
            "run_ids": [run.pk for run in runs],
            "runs": runs,
        }
        return Response(self.OutputSerializer(data).data, status=status.HTTP_202_ACCEPTED)


def _start_schema(action: str, summary: str, what: str, *, with_mode: bool = True):
    return extend_schema(
        tags=TAG,
        operation_id=f"integration_{action}",
        summary=summary,
        description=f"Queues a sync of {what}. The runs are recorded before the task is queued: "
        "the answer carries their ids (status running, `started` false until a worker takes "
        "them). 409 when one of these entities is already syncing; 422 when the integration "
        "is disabled or needs reauthorization. Team admins of the integration's company (and "
        "superusers) only.",
        request=_SyncStartApi.InputSerializer if with_mode else None,
        responses={
            202: _SyncStartApi.OutputSerializer,
            404: NOT_OPERABLE,
            409: OpenApiResponse(description="A sync of these entities is already running."),
            422: OpenApiResponse(description="The integration cannot sync now."),
        },
        examples=[
            OpenApiExample(
                "Queued",
                response_only=True,
                status_codes=["202"],
                value={
                    "integration_id": 7,
                    "action": action,
                    "mode": "incremental" if with_mode else "full",
                    "entities": ["clients", "contacts"],
                    "run_ids": [101, 102],
                    "runs": [],
                },
            )
        ],
    )


def _entities_doc(action: str) -> str:
    return ", ".join(t.__name__.removeprefix("External") for t in ACTION_RECORD_TYPES[action])


class IntegrationSyncCompaniesApi(_SyncStartApi):
    action = "sync_companies"

    @_start_schema(
        "sync_companies",
        "Sync companies",
        f"the provider's companies ({_entities_doc('sync_companies')})",
    )
    def post(self, request, integration_id: int):
        return super().post(request, integration_id)


class IntegrationSyncJobsApi(_SyncStartApi):
    action = "sync_jobs"

    @_start_schema("sync_jobs", "Sync jobs", f"the provider's jobs ({_entities_doc('sync_jobs')})")
    def post(self, request, integration_id: int):
        return super().post(request, integration_id)


class IntegrationSyncQuotesApi(_SyncStartApi):
    action = "sync_quotes"

    @_start_schema(
        "sync_quotes",
        "Sync quotes",
        f"the provider's quote-bearing entities ({_entities_doc('sync_quotes')})",
    )
    def post(self, request, integration_id: int):
        return super().post(request, integration_id)


class IntegrationFullSyncApi(_SyncStartApi):
    action = FULL_SYNC

    @_start_schema(
        FULL_SYNC,
        "Full sync",
        "every entity the provider offers, in full mode",
        with_mode=False,
    )
    def post(self, request, integration_id: int):
        return super().post(request, integration_id)


# -- status -------------------------------------------------------------------------------------


class IntegrationSyncStatusApi(IntegrationScopedApi):
    class OutputSerializer(serializers.Serializer):
        class EntitySerializer(serializers.Serializer):
            entity = serializers.CharField(help_text="The provider entity.")
            last_run = SyncRunOutputSerializer(
                allow_null=True, help_text="Its latest full or incremental run, if any."
            )
            last_success_at = serializers.DateTimeField(
                allow_null=True, help_text="When its latest successful run ended."
            )
            open_errors = serializers.IntegerField(help_text="Unresolved record errors.")
            held_records = serializers.IntegerField(help_text="Records waiting for their parent.")

        class ErrorSerializer(serializers.Serializer):
            id = serializers.IntegerField(help_text="The error's id.")
            run_id = serializers.IntegerField(
                allow_null=True, help_text="The run that met it, if any."
            )
            entity = serializers.CharField(help_text="The provider entity.")
            external_id = serializers.CharField(help_text="The provider's id of the record.")
            message = serializers.CharField(help_text="Why the record failed.")
            retry_count = serializers.IntegerField(help_text="Times it was retried.")
            created_at = serializers.DateTimeField(help_text="When it was first recorded.")

        class CountsSerializer(serializers.Serializer):
            runs_by_status = serializers.DictField(
                child=serializers.IntegerField(),
                help_text="Every run of the integration, by status.",
            )
            open_errors = serializers.IntegerField(help_text="Unresolved record errors.")
            held_records = serializers.IntegerField(help_text="Records waiting for their parent.")

        integration_id = serializers.IntegerField(help_text="The integration.")
        provider = serializers.CharField(help_text="The provider key (servicem8…).")
        integration_status = serializers.CharField(help_text="active, needs_reauth or disabled.")
        enabled = serializers.BooleanField(help_text="Whether syncs run at all.")
        last_synced_at = serializers.DateTimeField(
            allow_null=True, help_text="When the latest complete run ended."
        )
        running = serializers.BooleanField(help_text="Whether a run is queued or running.")
        entities = EntitySerializer(many=True, help_text="Each entity's latest state.")
        runs = SyncRunOutputSerializer(many=True, help_text="The latest runs, newest first.")
        errors = ErrorSerializer(many=True, help_text="The latest unresolved record errors.")
        counts = CountsSerializer(help_text="Totals.")

    @extend_schema(
        tags=TAG,
        operation_id="integration_sync_status",
        summary="Get an integration's sync status",
        description="Its runs (the latest 20), per-entity state, counts and open errors. Every "
        "team member of the integration's company (admins and dispatchers).",
        responses={200: OutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request, integration_id: int):
        integration = self.get_integration(integration_id)
        state = sync_status_get(integration=integration)
        data = {
            "integration_id": integration.pk,
            "provider": integration.provider,
            "integration_status": integration.status,
            "enabled": integration.enabled,
            "last_synced_at": integration.last_synced_at,
            "running": state.running,
            "entities": state.entities,
            "runs": state.runs,
            "errors": state.errors,
            "counts": {
                "runs_by_status": state.runs_by_status,
                "open_errors": state.open_errors,
                "held_records": state.held_records,
            },
        }
        return Response(self.OutputSerializer(data).data)


# -- self-test ----------------------------------------------------------------------------------


class IntegrationSelfTestApi(IntegrationScopedApi):
    operates = True

    class OutputSerializer(serializers.Serializer):
        class CheckSerializer(serializers.Serializer):
            name = serializers.ChoiceField(
                choices=[
                    "credentials",
                    "connection",
                    "api_budget",
                    "last_sync",
                    "webhooks",
                    "outbox",
                ],
                help_text="credentials: present and decryptable; connection: a live test call; "
                "api_budget: calls left in the provider's long window; last_sync: every "
                "entity's last run; webhooks: secrets configured, deliveries verified; "
                "outbox: no dead-lettered writes.",
            )
            status = serializers.ChoiceField(choices=["pass", "fail"], help_text="The verdict.")
            message = serializers.CharField(help_text="Why, in plain words.")

        integration_id = serializers.IntegerField(help_text="The integration.")
        ok = serializers.BooleanField(help_text="True when every check passed.")
        checks = CheckSerializer(many=True, help_text="Each check, in the order run.")

    @extend_schema(
        tags=TAG,
        operation_id="integration_self_test",
        summary="Self-test an integration",
        description="Checks the whole integration: credentials, a live connection test (recorded "
        "like the admin's), the API budget, the last sync's health, the webhook configuration "
        "and the outbox's dead letters. Each check passes or fails with a message. Team admins "
        "of the integration's company (and superusers) only.",
        request=None,
        responses={200: OutputSerializer, 404: NOT_OPERABLE},
    )
    def post(self, request, integration_id: int):
        integration = self.get_integration(integration_id)
        result = integration_self_test(integration=integration, actor=request.user)
        data = {"integration_id": integration.pk, "ok": result.ok, "checks": result.checks}
        return Response(self.OutputSerializer(data).data)
