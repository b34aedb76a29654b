"""Integration services: build a Provider for an Integration, keep its OAuth state, run
connection tests. The only place where providers meet the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests
import sentry_sdk
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone

from integrations import registry
from integrations.base import ConnectionTestResult, Provider, ProviderContext
from integrations.conf import integration_setting
from integrations.encryption import DecryptionError, decrypt_json, encrypt_json
from integrations.exceptions import ProviderError, UnknownProvider
from integrations.models import ConnectionTest, Incident, Integration
from portal.models import AuditLog, TeamMembership, User

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


def integration_write_refusal(
    integration: Integration, capability: str, what: str
) -> tuple[type[Provider] | None, str]:
    """(the integration's provider class or None, why it cannot `what` now or ""): no
    connector, a provider without `capability`, or a disabled integration. The services that
    queue provider writes (bookings, job statuses, pricebook changes) turn it into a field
    error."""
    try:
        provider = registry.get(integration.provider)
    except UnknownProvider:
        return (
            None,
            f"Fieldbridge has no connector for {integration.provider}: {what} is not possible.",
        )
    if capability not in provider.capabilities:
        return provider, f"{provider.name}: {what} is not possible from Fieldbridge yet."
    if not integration.enabled:
        return provider, "The integration is disabled."
    return provider, ""


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
        company_id = (
            Integration.objects.filter(pk=integration_id).values_list("company_id", flat=True)
        ).first()
        AuditLog.objects.create(
            company_id=company_id,
            action="integration.needs_reauth",
            target_type="integrations.Integration",
            target_id=str(integration_id),
            after={"status": Integration.Status.NEEDS_REAUTH, "reason": reason[:500]},
        )
        integration_incident_open(
            integration_id=integration_id,
            kind=Incident.Kind.NEEDS_REAUTH,
            detail=f"The provider refused the stored credentials: {reason[:500]}",
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
    except UnknownProvider:
        result = ConnectionTestResult(
            ok=False,
            message=f"Fieldbridge has no {integration.get_provider_display()} connector yet.",
            latency_ms=0,
        )
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
    ConnectionTest.objects.create(
        integration=integration,
        tested_by=actor,
        ok=result.ok,
        message=integration.last_test_message,
        latency_ms=result.latency_ms,
    )
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


# -- credentials -------------------------------------------------------------------------------


# Credentials that hold a list of secrets, current first, so one can be rotated.
LIST_CREDENTIALS = frozenset({"webhook_secrets", "webhook_hmac_keys"})


def integration_credential_errors(*, provider: str, credentials: Mapping[str, Any]) -> list[str]:
    """Why these credentials cannot work for the provider ([] when their shape fits one of its
    modes). Messages name the keys, never the values."""
    try:
        provider_class = registry.get(provider)
    except UnknownProvider:
        return [f"Fieldbridge has no connector for {provider!r} yet."]
    if not isinstance(credentials, Mapping) or not credentials:
        return ["Enter a JSON object with at least one key."]
    errors = [
        f"“{key}” must be a string, a number or true/false."
        for key, value in credentials.items()
        if not isinstance(value, str | int | float | bool) and key not in LIST_CREDENTIALS
    ]
    # Rotatable secrets (webhook path tokens, ServiceTitan HMAC keys): a list of strings.
    errors.extend(
        f"“{key}” must be a list of non-empty strings."
        for key, value in credentials.items()
        if key in LIST_CREDENTIALS
        and not isinstance(value, str)
        and not (isinstance(value, list) and all(isinstance(v, str) and v for v in value))
    )
    errors.extend(provider_class.credential_errors(credentials).values())
    return errors


def integration_credential_help() -> str:
    """What each provider's credentials look like (key names only)."""
    lines = []
    for provider_class in registry.all_providers():
        modes = " or ".join(
            "{" + ", ".join(f'"{k}": "…"' for k in keys) + "}"
            for keys in provider_class.credential_modes.values()
        )
        lines.append(f"{provider_class.name}: {modes}")
    return "; ".join(lines)


@transaction.atomic
def integration_credentials_replace(
    *,
    integration: Integration,
    credentials: dict,
    actor: User | None = None,
    ip_address: str | None = None,
    action: str = "integration.credentials_replaced",
) -> Integration:
    """Store new credentials (encrypted), forget any cached access token, and make an
    integration waiting for reauthorization active again. Audited by key names only."""
    had = bool(integration.credentials)
    before_status = integration.status
    integration.credentials = credentials
    fields = ["credentials", "updated_at"]
    if integration.status == Integration.Status.NEEDS_REAUTH:
        integration.status = Integration.Status.ACTIVE
        fields.append("status")
    integration.save(update_fields=fields)
    cache_key = IntegrationTokenStore(integration.pk).cache_key
    transaction.on_commit(lambda: cache.delete(cache_key))
    if before_status == Integration.Status.NEEDS_REAUTH:
        integration_incident_close(integration_id=integration.pk, kind=Incident.Kind.NEEDS_REAUTH)
    AuditLog.objects.create(
        company_id=integration.company_id,
        actor=actor,
        action=action,
        target_type="integrations.Integration",
        target_id=str(integration.pk),
        target_repr=str(integration)[:255],
        before={"credentials": "set" if had else "none", "status": before_status},
        after={
            "credentials": "replaced" if had else "set",
            "credential_keys": sorted(credentials),
            "status": integration.status,
        },
        ip_address=ip_address,
    )
    return integration


# -- OAuth authorization code ("Connect") ------------------------------------------------------


def integration_oauth_supported(integration: Integration) -> bool:
    """Whether the provider connects through the authorization-code flow: it names an
    authorize URL and has a credential mode built on a refresh token."""
    try:
        provider_class = registry.get(integration.provider)
    except UnknownProvider:
        return False
    urls = provider_class.environments.get(integration.environment, {})
    return "authorize" in urls and any(
        "refresh_token" in keys for keys in provider_class.credential_modes.values()
    )


def _oauth_app(integration: Integration) -> tuple[str, str]:
    """The OAuth app's client id and secret (the integration's own, else `<KEY>_CLIENT_ID`)."""
    try:
        own = integration.credentials or {}
    except DecryptionError:
        own = {}
    client_id = own.get("client_id") or integration_setting(integration.provider, "CLIENT_ID", "")
    secret = own.get("client_secret") or integration_setting(
        integration.provider, "CLIENT_SECRET", ""
    )
    if not client_id or not secret:
        name = integration.provider.upper()
        raise ProviderError(
            f"The {integration.get_provider_display()} OAuth app is not configured: set "
            f"{name}_CLIENT_ID and {name}_CLIENT_SECRET.",
            provider=integration.provider,
        )
    return client_id, secret


def integration_oauth_authorize_url(
    *, integration: Integration, redirect_uri: str, state: str
) -> str:
    """Where to send the person's browser to grant access. Raises ProviderError when the
    provider or its OAuth app is not set up for it."""
    if not integration_oauth_supported(integration):
        raise ProviderError(
            f"{integration.get_provider_display()} does not connect through OAuth here.",
            provider=integration.provider,
        )
    client_id, _ = _oauth_app(integration)
    authorize = provider_for(integration).urls()["authorize"]
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    provider_class = registry.get(integration.provider)
    scope = integration_setting(
        integration.provider, "OAUTH_SCOPES", getattr(provider_class, "oauth_scopes", "")
    )
    if scope:
        query["scope"] = scope
    return f"{authorize}?{urlencode(query)}"


def integration_oauth_complete(
    *,
    integration: Integration,
    code: str,
    redirect_uri: str,
    actor: User | None = None,
    ip_address: str | None = None,
) -> Integration:
    """Exchange an authorization code for tokens (authlib, RFC 6749 §4.1.3) and store them,
    encrypted, as the integration's credentials. Raises ProviderError with a message a person
    can act on; the message never contains a token or the code."""
    client_id, client_secret = _oauth_app(integration)
    token_url = provider_for(integration).urls()["token"]
    session = OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
    )
    name = integration.get_provider_display()
    try:
        with session:
            token = dict(
                session.fetch_token(
                    token_url,
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=redirect_uri,
                    timeout=(5, 30),
                )
            )
    except OAuthError as exc:
        raise ProviderError(
            f"{name} refused the authorization ({exc.error}). Try connecting again.",
            provider=integration.provider,
        ) from None
    except (requests.RequestException, ValueError):
        raise ProviderError(
            f"Could not complete the connection: {name}'s token endpoint failed or did not "
            "answer. Try again.",
            provider=integration.provider,
        ) from None
    if not token.get("access_token") or not token.get("refresh_token"):
        raise ProviderError(
            f"{name} answered without an access and refresh token.", provider=integration.provider
        )
    expires_at = token.get("expires_at") or time.time() + float(token.get("expires_in") or 3600)
    try:
        keep = {
            k: v
            for k, v in (integration.credentials or {}).items()
            if k in ("client_id", "client_secret", "webhook_secrets")
        }
    except DecryptionError:
        keep = {}
    credentials = {
        **keep,
        "refresh_token": token["refresh_token"],
        "access_token": token["access_token"],
        "expires_at": float(expires_at),
    }
    return integration_credentials_replace(
        integration=integration,
        credentials=credentials,
        actor=actor,
        ip_address=ip_address,
        action="integration.oauth_connected",
    )


# -- incidents (alerts once per incident) ------------------------------------------------------


def integration_alert_recipients(*, integration: Integration) -> list[str]:
    """The company's team admins, and the deployment's operators (settings.ADMINS)."""
    team = TeamMembership.objects.filter(
        company_id=integration.company_id,
        role=TeamMembership.Role.ADMIN,
        user__is_active=True,
    ).values_list("user__email", flat=True)
    operators = [a[1] if isinstance(a, list | tuple) else a for a in settings.ADMINS]
    return sorted({*team, *operators} - {""})


def integration_incident_open(*, integration_id: int, kind: str, detail: str) -> Incident | None:
    """Open an incident unless one of this kind is already open; alert (email to admins, a
    Sentry event) only when it opens, after the caller's transaction commits. Returns the
    new incident, or None when one was already open. Never raises for an alert failure."""
    try:
        with transaction.atomic():
            if Incident.objects.filter(
                integration_id=integration_id, kind=kind, closed_at__isnull=True
            ).exists():
                return None
            incident = Incident.objects.create(
                integration_id=integration_id, kind=kind, detail=detail[:4000]
            )
    except IntegrityError:  # another process opened it first: it alerts, not us
        return None
    transaction.on_commit(lambda: _incident_notify(incident.pk), robust=True)
    return incident


def integration_incident_close(*, integration_id: int, kind: str) -> int:
    """Close the open incident of this kind, if any (its condition cleared)."""
    return Incident.objects.filter(
        integration_id=integration_id, kind=kind, closed_at__isnull=True
    ).update(closed_at=timezone.now())


INCIDENT_ADVICE = {
    Incident.Kind.NEEDS_REAUTH: "Enter new credentials or connect the integration again.",
    Incident.Kind.SYNC_FAILING: "See the sync runs and errors; fix the cause, the next run "
    "closes this incident.",
    Incident.Kind.DEAD_LETTERS: "See the dead-lettered outbox events; fix the cause, then "
    "retry them.",
}


def _incident_notify(incident_id: int, *, sentry: bool = True) -> bool:
    """Tell Sentry (when the incident opens) and email the admins. `notified_at` is set only
    once the email went out (or nobody is to be emailed): an incident whose email failed is
    emailed again by the periodic alerts check (sync.alerts.alerts_check), never twice after
    a success. Returns whether the admins have been told."""
    incident = Incident.objects.select_related("integration__company").get(pk=incident_id)
    integration = incident.integration
    subject = f"[Fieldbridge] {integration}: {incident.get_kind_display()}"
    body = (
        f"{incident.get_kind_display()} — {integration} (integration {integration.pk}).\n\n"
        f"{incident.detail}\n\n{INCIDENT_ADVICE.get(incident.kind, '')}\n\n"
        "You get one email per incident; it closes by itself when the condition clears."
    )
    if sentry:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("integration_id", integration.pk)
            scope.set_tag("provider", integration.provider)
            scope.set_tag("incident_kind", incident.kind)
            scope.fingerprint = ["integration-incident", str(integration.pk), incident.kind]
            sentry_sdk.capture_message(subject, level="warning")
        logger.warning(
            "integration incident opened",
            extra={"integration_id": integration.pk, "kind": incident.kind},
        )
    recipients = integration_alert_recipients(integration=integration)
    if recipients:
        try:
            send_mail(subject, body, None, recipients)
        except Exception:
            logger.exception(
                "incident alert email failed; the alerts check retries it",
                extra={"incident_id": incident_id},
            )
            return False
    Incident.objects.filter(pk=incident_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    return True


def incidents_notify_pending(*, older_than_seconds: int = 60) -> int:
    """Email the open incidents whose email has not gone out yet (a failed send, or a worker
    that died before sending). Returns how many were emailed now."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = Incident.objects.filter(
        closed_at__isnull=True, notified_at__isnull=True, opened_at__lte=cutoff
    ).values_list("pk", flat=True)
    return sum(_incident_notify(pk, sentry=False) for pk in list(pending))
