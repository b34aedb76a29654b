"""Integration services: build a Provider for an Integration, keep its OAuth state, run
connection tests. The only place where providers meet the database."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
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

    @contextmanager
    def locked(self) -> Iterator[dict]:
        """Hold the Integration row's lock; whatever `save_credentials` stores is committed
        when the block exits, before the caller uses a new token.

        Callers may already be inside a transaction (a web request under ATOMIC_REQUESTS):
        committing there would not be durable, so on a server database the lock and the save
        go through a second, private connection with its own transaction. SQLite has a single
        writer, and the surrounding transaction already holds its lock, so nobody else can be
        refreshing: there the save simply joins the surrounding transaction."""
        default = connections[DEFAULT_DB_ALIAS]
        if default.in_atomic_block and default.vendor != "sqlite":
            yield from self._locked_on_private_connection()
            return
        with transaction.atomic(durable=not default.in_atomic_block):
            row = (
                Integration.objects.select_for_update()
                .only("credentials")
                .get(pk=self.integration_id)
            )
            self._save = lambda credentials: self._save_row(row, credentials)
            yield dict(row.credentials or {})

    @staticmethod
    def _save_row(row: Integration, credentials: dict) -> None:
        row.credentials = credentials
        row.save(update_fields=["credentials", "updated_at"])

    def _locked_on_private_connection(self) -> Iterator[dict]:
        meta = Integration._meta
        quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
        table, column = quote(meta.db_table), quote(meta.get_field("credentials").column)
        private = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            private.set_autocommit(False)
            with private.cursor() as cursor:
                # Names come from the model's meta, values are parameters.
                cursor.execute(
                    f"SELECT {column} FROM {table} WHERE id = %s FOR UPDATE",  # noqa: S608
                    [self.integration_id],
                )
                row = cursor.fetchone()
                if row is None:
                    raise Integration.DoesNotExist(self.integration_id)

                def save(credentials: dict) -> None:
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s, updated_at = %s WHERE id = %s",  # noqa: S608
                        [encrypt_json(credentials), timezone.now(), self.integration_id],
                    )

                self._save = save
                yield dict(decrypt_json(row[0]) if row[0] else {})
            private.commit()
        except BaseException:
            private.rollback()
            raise
        finally:
            private.close()

    def save_credentials(self, credentials: dict) -> None:
        self._save(credentials)

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


def _rate_limit_key(integration: Integration) -> str:
    account = integration.external_account_id or f"integration-{integration.pk}"
    return f"{integration.provider}:{integration.environment}:{account}"


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
            rate_limit_key=_rate_limit_key(integration),
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
    except (ProviderError, DecryptionError) as exc:  # e.g. no app key, unreadable credentials
        result = ConnectionTestResult(ok=False, message=str(exc), latency_ms=0)
    integration.last_test_ok = result.ok
    integration.last_test_message = result.message[:2000]
    integration.last_test_at = timezone.now()
    integration.last_test_latency_ms = result.latency_ms
    fields = ["last_test_ok", "last_test_message", "last_test_at", "last_test_latency_ms"]
    if result.ok and result.account and result.account.timezone:
        integration.config = {**(integration.config or {}), "timezone": result.account.timezone}
        fields.append("config")
    if result.ok and result.account and result.account.account_id:
        # Learn which account the credentials reach (it also keys the shared rate limiter),
        # unless another of the company's integrations already claims that account.
        account_id = result.account.account_id
        taken = Integration.objects.filter(
            company_id=integration.company_id,
            provider=integration.provider,
            environment=integration.environment,
            external_account_id=account_id,
        ).exclude(pk=integration.pk)
        if not integration.external_account_id and not taken.exists():
            integration.external_account_id = account_id
            fields.append("external_account_id")
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
