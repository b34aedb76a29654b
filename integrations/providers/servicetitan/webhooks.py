"""ServiceTitan webhooks (V2, beta): secret-path verification and defensive parsing.

- Docs: https://developer-next.servicetitan.io/docs/webhooks and
  https://public-api-developer.st.dev/docs/faqs-v2-webhooks. The app picks events and a
  callback URL per event in the developer portal; ServiceTitan retries a non-2xx answer after
  10, 30, 60 and 300 s. V1 webhooks (`/webhooks/v1/{tenant}/…`) are deprecated by 2026-03-31.
  Polling with `modifiedOnOrAfter` stays the guarantee (PRODUCT.md); webhooks only hurry it.
- Signature: V2 has an optional per-app HMAC key (32–64 characters) and sends "the signature
  of the payload" in a request header [doc: developer-next.servicetitan.io/docs/webhooks], but
  neither the header's name nor its encoding is documented in any source we have (NOTES.md
  §8, open item 1). So both are configurable per integration (`Integration.config`, not
  secret): `webhook_signature_header` (default `X-ServiceTitan-Signature`) and
  `webhook_signature_encoding` ("hex", the default, or "base64"). The defaults follow
  third-party open-source ServiceTitan clients [3p: several GitHub receivers read
  `x-servicetitan-signature` as a hex HMAC-SHA256 of the raw body — not authoritative]; a
  leading "sha256=" is tolerated. When the integration holds an HMAC key (credential
  `hmac_key`, a string, and/or `webhook_hmac_keys`, a list so a key can be rotated), every
  delivery must carry a valid HMAC-SHA256 of the raw body under one of them (constant time,
  all keys tried); a missing or wrong signature -> WebhookVerificationError -> 400, logged and
  recorded as refused by the view. Without a key (HMAC is optional for the app) only the path
  token is checked. The path token stays a second factor either way:
  `WebhookRequest.path_token` must equal one of the secrets (constant time), as for ServiceM8.
- Secrets: the integration's own path tokens (its `webhook_secrets` credential, a list so a
  token can be rotated); there is no app-wide token.
- Body: undocumented here, so parsed defensively: a JSON object (or an array of them), one
  notice each. The event id is `eventId` when present (scoped by `tenantId` when that is
  present too), else the hash of the whole event. A top-level `id` is *not* taken as the
  event id: on an entity-shaped payload it is the record's id, and using it would drop every
  later event about the same record as a duplicate. `entity`/`external_id` are set only when
  `eventType` starts with the name of a kind of record we sync *and* the payload has that
  record's id (`customerId`/`jobId`/`estimateId`…, else a top-level `id`); otherwise entity is
  "". The name is matched on whole words, longest first ("JobType.Updated" is a job type,
  not a job; a leading "Pricebook" or "Inventory" is skipped), and the id handed to the
  re-fetch carries the entity's id prefix where `fetch_record` expects one ("zone:12",
  "material:40001"; the prefixes are the provider's own `Resource.id_prefix`).
- Event names: customer, job and estimate events are the documented V2 kinds; the others
  (issue #5: location, business unit, job type, zone, team, project, technician shift,
  pricebook category/material/service/equipment/discount-and-fee, invoice, payment, vendor,
  warehouse, purchase order, inventory adjustment) are **assumptions**: no ServiceTitan event
  catalogue was found (NOTES.md §2 "Webhooks"), so they follow the same `<Record>.<Action>`
  pattern with a `<record>Id` field. Kinds that cannot be re-fetched one by one are left
  unplaced on purpose (stored, acknowledged, caught by polling): contact methods, tag types,
  job cancel and hold reasons (neither a GET by id nor `ids` in the specs).
- Error semantics: a missing or wrong path token, or (with an HMAC key) a missing or wrong
  signature -> WebhookVerificationError, 400; a body that
  is not a JSON object or array of objects -> WebhookPayloadError, 400; any event we cannot
  place -> stored with entity "" and acknowledged with 200.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from integrations.providers.servicetitan.provider import ServiceTitanProvider
from integrations.webhooks import (
    WebhookHandler,
    WebhookNotice,
    WebhookPayloadError,
    WebhookRequest,
    check_hmac_signature,
    check_path_token,
    id_str,
    json_body,
    register_webhook_handler,
    stable_id,
)

# Signature header and encoding when the integration's config names none (module docstring:
# undocumented by ServiceTitan; these follow third-party clients).
DEFAULT_SIGNATURE_HEADER = "X-ServiceTitan-Signature"
DEFAULT_SIGNATURE_ENCODING: Literal["hex", "base64"] = "hex"
SIGNATURE_ENCODINGS = ("hex", "base64")
# WebhookEvent.external_event_id holds 255 characters; a longer provider id is hashed.
MAX_EVENT_ID_LENGTH = 255
# Leading words of eventType (lower case) -> (our entity, the field holding the record's id).
# Customer, job and estimate: documented V2 kinds; the rest: assumed names (module docstring).
ENTITY_BY_WORDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("customer",): ("clients", "customerId"),
    ("job",): ("jobs", "jobId"),
    ("estimate",): ("quotes", "estimateId"),
    # Assumed (issue #5 entities).
    ("location",): ("locations", "locationId"),
    ("business", "unit"): ("business_units", "businessUnitId"),
    ("job", "type"): ("job_types", "jobTypeId"),
    ("zone",): ("zones", "zoneId"),
    ("team",): ("teams", "teamId"),
    ("project",): ("projects", "projectId"),
    ("technician", "shift"): ("technician_shifts", "technicianShiftId"),
    ("category",): ("pricebook_categories", "categoryId"),
    ("material",): ("pricebook_materials", "materialId"),
    ("service",): ("pricebook_services", "serviceId"),
    ("equipment",): ("pricebook_equipment", "equipmentId"),
    ("discount", "and", "fee"): ("pricebook_discounts_fees", "discountAndFeeId"),
    ("invoice",): ("invoices", "invoiceId"),
    ("payment",): ("payments", "paymentId"),
    ("vendor",): ("inventory_vendors", "vendorId"),
    ("warehouse",): ("inventory_warehouses", "warehouseId"),
    ("purchase", "order"): ("inventory_purchase_orders", "purchaseOrderId"),
    ("adjustment",): ("inventory_adjustments", "adjustmentId"),
    ("inventory", "adjustment"): ("inventory_adjustments", "adjustmentId"),
}
# Names that are not a kind we can re-fetch, matched first so that their leading word does not
# place them ("TagType", "JobCancelReason" and "JobHoldReason" are not tags or jobs).
UNPLACED_WORDS = frozenset(
    {
        ("contact",),
        ("customer", "contact"),
        ("location", "contact"),
        ("tag", "type"),
        ("job", "cancel", "reason"),
        ("job", "hold", "reason"),
        # An item's own id is not its invoice's: the invoice is re-read by polling.
        ("invoice", "item"),
    }
)
# A module word some names may carry before the record's name ("PricebookMaterial.Updated").
MODULE_WORDS = frozenset({"pricebook", "inventory", "accounting", "dispatch"})
# Entity -> the prefix `fetch_record` expects on its external ids ("zone:", "material:"…).
ID_PREFIX = {
    entity: resources[0].id_prefix
    for entity, resources in ServiceTitanProvider.resources.items()
    if len(resources) == 1
}
# Splits "Customer.Created", "customer_created", "JOB-COMPLETED" and "JobCompleted" alike.
_WORD_BOUNDARY = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def first_word(event_type: str) -> str:
    return _WORD_BOUNDARY.split(event_type.strip(), maxsplit=1)[0].lower()


def words(event_type: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD_BOUNDARY.split(event_type.strip()) if w)


def entity_for(event_type: str) -> tuple[str, str]:
    """(entity, id field) named by the event type's leading words, longest name first; an
    unplaced kind (UNPLACED_WORDS) or an unknown one is ("", "")."""
    names = words(event_type)
    if names and names[0] in MODULE_WORDS and len(names) > 1:
        # "InventoryAdjustment" is a name of its own; "PricebookMaterial" is a material.
        if names[:2] != ("inventory", "adjustment"):
            names = names[1:]
    longest = max(len(k) for k in (*ENTITY_BY_WORDS, *UNPLACED_WORDS))
    for size in range(min(longest, len(names)), 0, -1):
        head = names[:size]
        if head in UNPLACED_WORDS:
            return "", ""
        if head in ENTITY_BY_WORDS:
            return ENTITY_BY_WORDS[head]
    return "", ""


def place(event: dict[str, Any], event_type: str) -> tuple[str, str]:
    """(entity, external_id) when the event clearly names a record we sync, else ("", "").
    The id carries the entity's prefix where its external ids have one ("zone:12")."""
    entity, id_field = entity_for(event_type)
    if not entity:
        return "", ""
    external_id = id_str(event.get(id_field)) or id_str(event.get("id"))
    if not external_id:
        return "", ""
    return entity, f"{ID_PREFIX.get(entity, '')}{external_id}"


def hmac_keys_of(credentials: Mapping[str, Any]) -> list[str]:
    """The integration's HMAC keys, current first: `hmac_key` (a string), then
    `webhook_hmac_keys` (a list, for rotation). Empty or non-string values are dropped."""
    if not isinstance(credentials, Mapping):
        return []
    keys: list[str] = []
    single = credentials.get("hmac_key")
    if isinstance(single, str) and single:
        keys.append(single)
    listed = credentials.get("webhook_hmac_keys") or []
    if isinstance(listed, str):
        listed = [listed]
    if isinstance(listed, list):
        keys.extend(k for k in listed if isinstance(k, str) and k and k not in keys)
    return keys


@register_webhook_handler
class ServiceTitanWebhookHandler(WebhookHandler):
    provider = "servicetitan"
    docs_url = "https://developer-next.servicetitan.io/docs/webhooks"
    # The path token is per integration (its `webhook_secrets` credential, a list for
    # rotation): an app-wide token would let one account's token open every integration.
    secret_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        hmac_keys: Sequence[str] = (),
        signature_header: str = DEFAULT_SIGNATURE_HEADER,
        signature_encoding: Literal["hex", "base64"] = DEFAULT_SIGNATURE_ENCODING,
    ) -> None:
        if isinstance(hmac_keys, str | bytes):
            raise TypeError("hmac_keys must be a list of strings, not a single string")
        if signature_encoding not in SIGNATURE_ENCODINGS:
            raise ValueError(f"unknown signature encoding {signature_encoding!r}")
        self.hmac_keys = [k for k in hmac_keys if isinstance(k, str) and k]
        self.signature_header = signature_header or DEFAULT_SIGNATURE_HEADER
        self.signature_encoding = signature_encoding

    @classmethod
    def for_integration(cls, integration: Any) -> ServiceTitanWebhookHandler:
        """A handler holding the integration's HMAC keys (credentials `hmac_key` and
        `webhook_hmac_keys`) and its signature header/encoding (config)."""
        try:
            credentials = integration.credentials or {}
        except Exception:  # unreadable (undecryptable) credentials: no key to check with
            credentials = {}
        config = integration.config if isinstance(integration.config, Mapping) else {}
        encoding = str(config.get("webhook_signature_encoding") or DEFAULT_SIGNATURE_ENCODING)
        return cls(
            hmac_keys=hmac_keys_of(credentials),
            signature_header=str(config.get("webhook_signature_header") or ""),
            signature_encoding=encoding if encoding in SIGNATURE_ENCODINGS else "hex",  # type: ignore[arg-type]
        )

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        check_path_token(request, secrets)
        if self.hmac_keys:
            signature = request.headers.get(self.signature_header, "").strip()
            if signature[:7].lower() == "sha256=":
                signature = signature[7:]
            check_hmac_signature(
                signature,
                request.body,
                self.hmac_keys,
                encoding=self.signature_encoding,
                header=self.signature_header,
            )

    def parse(self, request: WebhookRequest) -> list[WebhookNotice]:
        payload = json_body(request)
        events = payload if isinstance(payload, list) else [payload]
        notices = []
        for position, event in enumerate(events):
            if not isinstance(event, dict):
                raise WebhookPayloadError(f"ServiceTitan event #{position} is not a JSON object")
            event_type = event.get("eventType")
            event_type = event_type if isinstance(event_type, str) and event_type else "unknown"
            tenant = id_str(event.get("tenantId"))
            provider_id = id_str(event.get("eventId"))
            event_id = f"{tenant}:{provider_id}" if tenant and provider_id else provider_id
            if not event_id or len(event_id) > MAX_EVENT_ID_LENGTH:
                event_id = stable_id("servicetitan", event)
            entity, external_id = place(event, event_type)
            notices.append(
                WebhookNotice(
                    event_id=event_id,
                    event_type=event_type,
                    entity=entity,
                    external_id=external_id,
                    occurred_at=None,  # no documented timestamp field
                    raw=event,
                    account_id=tenant,
                )
            )
        return notices
