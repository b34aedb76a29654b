import importlib
import pkgutil

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # Each provider package registers itself on import.
        from integrations import providers

        for module in pkgutil.iter_modules(providers.__path__):
            importlib.import_module(f"integrations.providers.{module.name}")
