"""Webhook subscriptions managed from the admin: list, subscribe and unsubscribe per object.

Only providers whose connector manages subscriptions over its API (`webhook_objects` and the
`webhook_*` methods; today ServiceM8, and only for OAuth-connected integrations, since
ServiceM8 offers its Webhooks API to OAuth apps alone) can be managed here. The callback URL
is `PUBLIC_BASE_URL` + `/webhooks/<provider>/<integration id>/<path token>/` (config/urls.py,
`webhook-token`), the path token being the integration's first `webhook_secrets` credential
(sync/webhooks.py checks it); one is created when the integration has none. The token is a
secret: it is never shown, logged or audited (`mask_callback`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse

from integrations.encryption import DecryptionError
from integrations.exceptions import UnknownProvider
from integrations.models import Integration
from integrations.registry import get as provider_class
from integrations.services import integration_credentials_replace, provider_for
from portal.models import AuditLog, User


class WebhookSubscriptionsUnavailable(Exception):
    """This integration's subscriptions cannot be managed here; the message says why."""


@dataclass(frozen=True)
class SubscriptionRow:
    object: str
    subscribed: bool
    active: bool
    uuid: str
    fields: tuple[str, ...]
    failure: str


@dataclass
class SubscriptionsState:
    rows: list[SubscriptionRow] = field(default_factory=list)
    others: list[dict] = field(default_factory=list)  # not ours (another app or integration)


def _credentials(integration: Integration) -> dict:
    try:
        return dict(integration.credentials or {})
    except DecryptionError:
        return {}


def webhook_subscriptions_check(*, integration: Integration) -> None:
    """Raise WebhookSubscriptionsUnavailable with the reason when they cannot be managed."""
    try:
        cls = provider_class(integration.provider)
    except UnknownProvider:
        raise WebhookSubscriptionsUnavailable("This provider has no connector.") from None
    if not getattr(cls, "webhook_objects", ()):
        raise WebhookSubscriptionsUnavailable(
            f"{cls.name} webhook subscriptions are not managed from here."
        )
    if cls.credential_mode(_credentials(integration)) != "oauth":
        raise WebhookSubscriptionsUnavailable(
            f"{cls.name} offers webhooks only to OAuth apps: this integration uses an API key. "
            f"Press “Connect with {cls.name}” to connect it through OAuth first."
        )
    if not settings.PUBLIC_BASE_URL:
        raise WebhookSubscriptionsUnavailable(
            "PUBLIC_BASE_URL is not set, so there is no public callback URL to subscribe."
        )


def webhook_path_prefix(*, integration: Integration) -> str:
    """Our callbacks for this integration start with this (the token follows)."""
    path = reverse(
        "webhook", kwargs={"provider": integration.provider, "integration_id": integration.pk}
    )
    return f"{settings.PUBLIC_BASE_URL}{path}"


def mask_callback(url: str) -> str:
    """A callback URL without its path token (safe to show and audit)."""
    head, sep, _ = url.rstrip("/").rpartition("/")
    return f"{head}/…/" if sep else "…"


def _callback_url(*, integration: Integration, actor: User | None, ip_address: str | None) -> str:
    credentials = _credentials(integration)
    tokens = credentials.get("webhook_secrets") or []
    if isinstance(tokens, str):
        tokens = [tokens]
    tokens = [t for t in tokens if isinstance(t, str) and t]
    if not tokens:
        tokens = [secrets.token_urlsafe(32)]
        integration_credentials_replace(
            integration=integration,
            credentials={**credentials, "webhook_secrets": tokens},
            actor=actor,
            ip_address=ip_address,
            action="integration.webhook_secret_created",
        )
    return f"{webhook_path_prefix(integration=integration)}{tokens[0]}/"


def webhook_subscriptions_state(*, integration: Integration) -> SubscriptionsState:
    """The provider's subscriptions, one row per object we sync (read over the API)."""
    webhook_subscriptions_check(integration=integration)
    provider = provider_for(integration)
    prefix = webhook_path_prefix(integration=integration)
    listed = provider.webhook_subscriptions()
    state = SubscriptionsState()
    ours = {}
    for sub in listed:
        if sub.callback_url.startswith(prefix) and sub.object:
            ours[sub.object] = sub
        else:
            state.others.append(
                {
                    "object": sub.object or sub.event,
                    "callback": mask_callback(sub.callback_url),
                    "active": sub.active,
                }
            )
    for obj in provider.webhook_objects:
        sub = ours.get(obj)
        state.rows.append(
            SubscriptionRow(
                object=obj,
                subscribed=sub is not None,
                active=bool(sub and sub.active),
                uuid=sub.uuid if sub else "",
                fields=sub.fields if sub else (),
                failure=sub.last_failure_reason if sub else "",
            )
        )
    return state


def _audit(*, integration: Integration, action: str, actor, ip_address, after: dict) -> None:
    AuditLog.objects.create(
        company_id=integration.company_id,
        actor=actor,
        action=action,
        target_type="integrations.Integration",
        target_id=str(integration.pk),
        target_repr=str(integration)[:255],
        after=after,
        ip_address=ip_address,
    )


def webhook_subscribe(
    *,
    integration: Integration,
    object_name: str,
    actor: User | None = None,
    ip_address: str | None = None,
):
    """Subscribe one object (the provider verifies the callback first). Audited."""
    webhook_subscriptions_check(integration=integration)
    provider = provider_for(integration)
    if object_name not in provider.webhook_objects:
        raise WebhookSubscriptionsUnavailable(f"{object_name!r} is not an object we sync.")
    callback = _callback_url(integration=integration, actor=actor, ip_address=ip_address)
    subscription = provider.webhook_subscribe(object_name=object_name, callback_url=callback)
    _audit(
        integration=integration,
        action="integration.webhook_subscribed",
        actor=actor,
        ip_address=ip_address,
        after={
            "object": object_name,
            "callback": mask_callback(callback),
            "fields": list(subscription.fields),
        },
    )
    return subscription


def webhook_unsubscribe(
    *,
    integration: Integration,
    object_name: str,
    actor: User | None = None,
    ip_address: str | None = None,
) -> None:
    """Remove our subscription of one object (read from the provider first). Audited."""
    state = webhook_subscriptions_state(integration=integration)
    row = next((r for r in state.rows if r.object == object_name), None)
    if row is None or not row.subscribed:
        raise WebhookSubscriptionsUnavailable(f"{object_name!r} is not subscribed.")
    provider_for(integration).webhook_unsubscribe(subscription_uuid=row.uuid)
    _audit(
        integration=integration,
        action="integration.webhook_unsubscribed",
        actor=actor,
        ip_address=ip_address,
        after={"object": object_name, "subscription": row.uuid},
    )
