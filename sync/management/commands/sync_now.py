"""Sync one integration now: every entity or one, full or incremental, here or on a worker."""

from django.core.management.base import BaseCommand, CommandError

from integrations.exceptions import ProviderError
from integrations.models import Integration
from integrations.services import provider_for
from sync.engine import IntegrationUnavailable, RunLocked, sync_entity


class Command(BaseCommand):
    help = "Run a sync now for one integration (all entities in order, or --entity)."

    def add_arguments(self, parser):
        parser.add_argument("integration", type=int, help="Integration id")
        parser.add_argument("--entity", help="One entity (default: all, in dependency order)")
        parser.add_argument("--mode", choices=["full", "incremental"], default="incremental")
        parser.add_argument(
            "--queue", action="store_true", help="Queue it for a Celery worker instead"
        )

    def handle(self, *args, integration: int, entity: str | None, mode: str, queue: bool, **kw):
        try:
            row = Integration.objects.select_related("company").get(pk=integration)
        except Integration.DoesNotExist:
            raise CommandError(f"No integration with id {integration}.") from None
        entities = provider_for(row).entities
        if entity and entity not in entities:
            raise CommandError(f"{row.provider} syncs {', '.join(entities)}; not {entity!r}.")
        todo = [entity] if entity else list(entities)
        if queue:
            from sync.tasks import sync_integration

            result = sync_integration.delay(integration, mode, todo)
            self.stdout.write(f"Queued task {result.id}.")
            return
        failed = False
        for name in todo:
            try:
                run = sync_entity(integration_id=integration, entity=name, mode=mode)
            except (RunLocked, IntegrationUnavailable) as exc:
                raise CommandError(str(exc)) from exc
            except ProviderError as exc:
                failed = True
                self.stderr.write(f"{name}: failed: {exc}")
                continue
            run.refresh_from_db()
            self.stdout.write(
                f"{name}: {run.status}: fetched {run.fetched_count}, created "
                f"{run.created_count}, updated {run.updated_count}, unchanged "
                f"{run.unchanged_count}, deleted {run.deleted_count}, failed "
                f"{run.failed_count}, held {run.held_count}"
                + (f" ({run.error_summary})" if run.error_summary else "")
            )
        if failed:
            raise CommandError("Some entities failed; see above and the sync runs.")
