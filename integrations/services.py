"""Integration services: build a Provider for an Integration, keep its OAuth state, run
connection tests. The only place where providers meet the database."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from integrations import registry
from integrations.base import ConnectionTestResult, Provider, ProviderContext
from integrations.encryption import DecryptionError, decrypt_json, encrypt_json
from integrations.exceptions import ProviderError
from integrations.models import Integration
from portal.models import AuditLog, User

logger = logging.getLogger(__name__)


class IntegrationTokenStore:
    """OAuth state for one integration: the access token in the shared cache (encrypted, so a
    cache dump leaks nothing), the refresh token in Integration.credentials (encrypted), and
    the Integration row's lock to let one process refresh at a time."""

    def __init__(self, integration_id: int) -> None:
        self.integration_id = integration_id
        self.cache_key = f"integrations:token:{integration_id}"

    def read_cached(self) -> dict | None:
        token = cache.get(self.cache_key)
        if not token:
            return None
        try:
            return decrypt_json(token)
        except DecryptionError:
            return None

    def write_cached(self, token: dict) -> None:
        ttl = max(int(float(token["expires_at"]) - timezone.now().timestamp()), 1)
        cache.set(self.cache_key, encrypt_json(token), ttl)

    def clear_cached(self) -> None:
        cache.delete(self.cache_key)

    @contextmanager
    def locked(self) -> Iterator[dict]:
        # durable=True: the rotated refresh token must be committed when this block exits,
        # before the new access token is used, so it can never run inside another transaction.
        with transaction.atomic(durable=True):
            row = (
                Integration.objects.select_for_update()
                .only("credentials")
                .get(pk=self.integration_id)
            )
            self._row = row
            yield dict(row.credentials or {})

    def save_credentials(self, credentials: dict) -> None:
        self._row.credentials = credentials
        self._row.save(update_fields=["credentials", "updated_at"])

    def mark_needs_reauth(self, reason: str) -> None:
        integration_mark_needs_reauth(integration_id=self.integration_id, reason=reason)


def integration_mark_needs_reauth(*, integration_id: int, reason: str) -> None:
    updated = (
        Integration.objects.filter(pk=integration_id)
        .exclude(status=Integration.Status.NEEDS_REAUTH)
        .update(status=Integration.Status.NEEDS_REAUTH, updated_at=timezone.now())
    )
    if updated:
        logger.warning(
            "integration needs reauthorization",
            extra={"integration_id": integration_id, "reason": reason[:300]},
        )
        AuditLog.objects.create(
            action="integration.needs_reauth",
            target_type="integrations.Integration",
            target_id=str(integration_id),
            after={"status": Integration.Status.NEEDS_REAUTH, "reason": reason[:500]},
        )


def provider_for(integration: Integration) -> Provider:
    provider_class = registry.get(integration.provider)
    config = dict(integration.config or {})
    config.setdefault("timezone", integration.company.timezone)
    return provider_class(
        ProviderContext(
            integration_id=integration.pk,
            environment=integration.environment,
            base_url_override=integration.base_url_override,
            credentials=integration.credentials or {},
            config=config,
            token_store=IntegrationTokenStore(integration.pk),
            cache_enabled=integration.read_cache_enabled,
            cache_ttl=integration.read_cache_ttl,
        )
    )


def integration_test_connection(
    *, integration: Integration, actor: User | None = None, ip_address: str | None = None
) -> ConnectionTestResult:
    """Run the provider's connection test, keep the result on the integration, audit it.
    Never raises for provider failures (the result says what went wrong)."""
    try:
        result = provider_for(integration).test_connection()
    except ProviderError as exc:  # e.g. credentials missing an app key before any call
        result = ConnectionTestResult(ok=False, message=str(exc), latency_ms=0)
    integration.last_test_ok = result.ok
    integration.last_test_message = result.message[:2000]
    integration.last_test_at = timezone.now()
    integration.last_test_latency_ms = result.latency_ms
    fields = ["last_test_ok", "last_test_message", "last_test_at", "last_test_latency_ms"]
    if result.ok and result.account and result.account.timezone:
        integration.config = {**(integration.config or {}), "timezone": result.account.timezone}
        fields.append("config")
    integration.save(update_fields=[*fields, "updated_at"])
    AuditLog.objects.create(
        company=integration.company,
        actor=actor,
        action="integration.test_connection",
        target_type="integrations.Integration",
        target_id=str(integration.pk),
        target_repr=str(integration)[:255],
        after={"ok": result.ok, "message": result.message[:500], "latency_ms": result.latency_ms},
        ip_address=ip_address,
    )
    return result
