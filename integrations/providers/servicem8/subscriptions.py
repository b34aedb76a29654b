"""ServiceM8 webhook subscriptions (the Webhooks API): list, subscribe an object, unsubscribe.

- Where: beside the REST API, at `https://api.servicem8.com/webhook_subscriptions` (not under
  `/api_1.0`) [doc: https://developer.servicem8.com/docs/webhooks-overview, "Creating and
  Updating Subscriptions"; NOTES.md §1 Webhooks]. The OpenAPI file we have does not describe
  it (its only webhook item is the unreferenced `WebhookEvent` schema), so these facts come
  from the docs' own Webhooks API definition ("Webhooks API", servers
  `https://api.servicem8.com`) as mirrored in the stored pages, cited per call below.
- Who: "The ServiceM8 Webhooks API is only available to Public Applications. You will need to
  implement OAuth 2.0 Authentication" [doc: overview]: an API-key integration cannot
  subscribe (`ServiceM8Provider.webhooks_supported`).
- List: `GET /webhook_subscriptions?status=active|inactive|all` (default active) answers an
  array of `ObjectWebhook` `{"type": "object", "object", "callback_url", "fields": [...],
  "unique_id", "active", "last_failure_reason", "last_failure_at"}` or `EventWebhook`
  (`"type": "event"`, `event`) [doc: reference/get_webhook_subscriptions, operationId
  get_webhook_subscriptions]. We read `status=all` so a subscription ServiceM8 deactivated
  (after failing deliveries) shows as such.
- Subscribe: `POST /webhook_subscriptions/object`, **form-encoded** `object`, `fields` (a
  comma-separated list), `callback_url`, optional `unique_id` [doc:
  reference/post_object_webhook_subscription; NOTES.md §1]. Posting the same object and
  callback again modifies the subscription ("Add or modify a subscription" [doc: overview]).
  Before answering, ServiceM8 verifies the callback: it POSTs `mode=subscribe&challenge=…`
  and the callback must answer with only the challenge (sync/webhooks.py and
  providers/servicem8/webhooks.py answer it). Read after write: the list is read back and the
  subscription must be there and active.
- Unsubscribe: `DELETE /webhook_subscriptions/{uuid}` with the subscription's `uuid` as listed.
  [3p, not in the docs we hold: a client pinned against the live API allows exactly GET
  /webhook_subscriptions, POST /webhook_subscriptions/object and DELETE
  /webhook_subscriptions/{uuid}.] A listed subscription without a uuid cannot be removed here
  (ProviderValidationError saying so). Read after write: it must be gone from the list.
- `unique_id` is ours: "fieldbridge-<integration id>", so the list can tell our subscriptions
  from another app's or another integration's on the same account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from integrations.exceptions import (
    ProviderError,
    ProviderNotFoundError,
    ProviderValidationError,
)

if TYPE_CHECKING:
    from integrations.providers.servicem8.provider import ServiceM8Provider

# One subscription per object we sync: exactly the list objects of ServiceM8Provider.objects
# (their notices map to entities in webhooks.ENTITY_BY_OBJECT), in the same order, each with
# the fields watched on it. A subscription needs a non-empty comma list of the object's fields
# [doc: reference/post_object_webhook_subscription]; every name here is a property of the
# object's schema in the spec (servicem8-api_1.0.openapi.json: Company, CompanyContact, Staff,
# TaxRate, Category, Material, Job, JobContact, JobActivity, JobMaterialBundle, JobMaterial,
# Attachment, Note). `edit_date` changes with every edit, so it catches fields we do not list,
# and `active` carries deletions (a delete sets it to 0); the rest make the notices'
# `changed_fields` useful to a reader. Attachments and notes are subscribed by their list
# names (`attachment`, `note`), which the handler also accepts as `dboattachment`/`dbonote`.
SUBSCRIBABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "company": ("name", "address", "billing_address", "active", "edit_date"),
    "companycontact": ("first", "last", "email", "phone", "mobile", "active", "edit_date"),
    "staff": ("first", "last", "email", "active", "edit_date"),
    "taxrate": ("name", "amount", "active", "edit_date"),
    "category": ("name", "colour", "active", "edit_date"),
    "material": ("name", "item_number", "price", "cost", "tax_rate_uuid", "active", "edit_date"),
    "job": ("status", "job_address", "job_description", "company_uuid", "active", "edit_date"),
    "jobcontact": ("first", "last", "email", "phone", "mobile", "active", "edit_date"),
    "jobactivity": ("staff_uuid", "start_date", "end_date", "active", "edit_date"),
    "jobmaterialbundle": ("name", "quantity", "active", "edit_date"),
    "jobmaterial": ("name", "quantity", "price", "active", "edit_date"),
    "attachment": ("attachment_name", "related_object_uuid", "active", "edit_date"),
    "note": ("note", "related_object_uuid", "active", "edit_date"),
}
_UUID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.IGNORECASE)


@dataclass(frozen=True)
class Subscription:
    """One listed subscription (object subscriptions; event ones have `event` set instead)."""

    uuid: str
    type: str
    object: str
    event: str
    callback_url: str
    fields: tuple[str, ...]
    unique_id: str
    active: bool
    last_failure_reason: str

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Subscription:
        fields = raw.get("fields") or ()
        if isinstance(fields, str):
            fields = [f for f in fields.split(",") if f]
        return cls(
            uuid=str(raw.get("uuid") or ""),
            type=str(raw.get("type") or ("event" if raw.get("event") else "object")),
            object=str(raw.get("object") or ""),
            event=str(raw.get("event") or ""),
            callback_url=str(raw.get("callback_url") or ""),
            fields=tuple(str(f) for f in fields),
            unique_id=str(raw.get("unique_id") or ""),
            active=raw.get("active") in (True, 1, "1", "true"),
            last_failure_reason=str(raw.get("last_failure_reason") or ""),
        )


def subscriptions_url(provider: ServiceM8Provider, path: str = "") -> str:
    """The Webhooks API's address: the REST base without its `/api_1.0`."""
    api = provider.urls()["api"].rstrip("/")
    root = api.removesuffix("/api_1.0")
    return f"{root}/webhook_subscriptions{path}"


def unique_id(provider: ServiceM8Provider) -> str:
    return f"fieldbridge-{provider.context.integration_id}"


def list_subscriptions(provider: ServiceM8Provider) -> list[Subscription]:
    body = (
        provider.get_client()
        .get(subscriptions_url(provider), params={"status": "all"}, use_cache=False)
        .json()
    )
    if not isinstance(body, list):
        raise ProviderError(
            "servicem8: webhook_subscriptions did not return a list", provider=provider.key
        )
    return [Subscription.from_raw(item) for item in body if isinstance(item, dict)]


def subscribe(provider: ServiceM8Provider, *, object_name: str, callback_url: str) -> Subscription:
    fields = SUBSCRIBABLE_FIELDS.get(object_name)
    if fields is None:
        raise ProviderValidationError(
            f"servicem8: {object_name!r} is not an object we sync",
            provider=provider.key,
            field_errors={"object": [f"Choose one of {', '.join(SUBSCRIBABLE_FIELDS)}."]},
        )
    provider.get_client().request(
        "POST",
        subscriptions_url(provider, "/object"),
        data={
            "object": object_name,
            "fields": ",".join(fields),
            "callback_url": callback_url,
            "unique_id": unique_id(provider),
        },
        # Posting the same subscription again modifies it: safe to repeat.
        idempotent=True,
    )
    for subscription in list_subscriptions(provider):
        if subscription.object == object_name and subscription.callback_url == callback_url:
            if subscription.active:
                return subscription
    raise ProviderError(
        f"servicem8: the {object_name} subscription is not listed as active after subscribing",
        provider=provider.key,
    )


def unsubscribe(provider: ServiceM8Provider, *, subscription_uuid: str) -> None:
    if not _UUID.match(subscription_uuid or ""):
        raise ProviderValidationError(
            "servicem8: a subscription is removed by its uuid, and this one has none",
            provider=provider.key,
            field_errors={"subscription": ["The subscription has no uuid to remove it by."]},
        )
    try:
        provider.get_client().request(
            "DELETE", subscriptions_url(provider, f"/{subscription_uuid.lower()}")
        )
    except ProviderNotFoundError:
        pass  # gone already (an earlier click); the list below confirms it
    if any(s.uuid.lower() == subscription_uuid.lower() for s in list_subscriptions(provider)):
        raise ProviderError(
            f"servicem8: subscription {subscription_uuid} is still listed after its deletion",
            provider=provider.key,
        )
