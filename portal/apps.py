from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # Cached user scopes go stale when memberships or integrations change.
        from portal import signals

        signals.connect()
