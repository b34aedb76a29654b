from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync"

    def ready(self) -> None:
        from integrations.models import Integration
        from sync import beat

        # Schedules follow the integration; `integrations` may not import `sync`.
        post_save.connect(beat.on_integration_saved, sender=Integration, dispatch_uid="sync-sched")
        post_delete.connect(
            beat.on_integration_deleted, sender=Integration, dispatch_uid="sync-sched-del"
        )
