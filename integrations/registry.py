"""Provider registry: key -> Provider class (after Sentry's IntegrationManager). Each
providers/<key>/__init__.py registers its class; IntegrationsConfig.ready() imports them."""

from __future__ import annotations

from integrations.base import Provider
from integrations.exceptions import UnknownProvider

_registry: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    if cls.key in _registry and _registry[cls.key] is not cls:
        raise ValueError(f"provider key {cls.key!r} is registered twice")
    _registry[cls.key] = cls
    return cls


def get(key: str) -> type[Provider]:
    try:
        return _registry[key]
    except KeyError:
        raise UnknownProvider(key) from None


def all_providers() -> list[type[Provider]]:
    return sorted(_registry.values(), key=lambda cls: cls.key)
