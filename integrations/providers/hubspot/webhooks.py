"""HubSpot webhooks: v3 signature verification and CRM event parsing.

- Docs: https://developers.hubspot.com/docs/api/webhooks/validating-requests (legacy apps; the
  new developer platform's https://developers.hubspot.com/docs/apps/developer-platform/build-
  apps/authentication/request-validation describes the same v3 scheme), payload fields in
  https://developers.hubspot.com/docs/api/webhooks.
- Headers: `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(key = the app's client secret,
  message = method + URI + raw body + `X-HubSpot-Request-Timestamp`)), all UTF-8. The
  timestamp is a millisecond epoch; the docs say to reject requests older than 5 minutes, and
  we also reject those more than 5 minutes ahead (a clock that far off is not a delivery).
- URI: the full URL HubSpot called (`https://host/path?query`, query in the order sent),
  after decoding the percent-encoded characters the docs list: %3A : %2F / %3F ? %40 @ %21 !
  %24 $ %27 ' %28 ( %29 ) %2A * %2C , %3B ; — and only those (%20, %26… stay encoded).
- The older `X-HubSpot-Signature` (v1: hex sha256(secret + body); v2: + method + URI) is
  unkeyed, without replay protection: it is not accepted.
- Secrets: HUBSPOT_WEBHOOK_SECRET (the public app's client secret) and, while rotating,
  HUBSPOT_WEBHOOK_SECRET_PREVIOUS.
- Body: a JSON array of events `{eventId, subscriptionId, portalId, appId, occurredAt (ms),
  subscriptionType ("contact.propertyChange"), attemptNumber, objectId, changeSource,
  propertyName?, propertyValue?}`; association changes carry `fromObjectId`/`toObjectId`
  instead of `objectId`.
- Error semantics: a missing, wrong or stale signature -> WebhookVerificationError, and the
  view answers 400 (HubSpot retries failed deliveries, for up to 3 days); a body that is not
  such an array -> WebhookPayloadError, 400; an event type we do not sync (tickets,
  products…) -> a notice with entity "" that is stored and acknowledged with 200.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from integrations.webhooks import (
    WebhookFailure,
    WebhookHandler,
    WebhookNotice,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
    check_hmac_signature,
    id_str,
    json_body,
    ms_to_datetime,
    register_webhook_handler,
    stable_id,
    usable_secrets,
)

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_CLOCK_SKEW = timedelta(minutes=5)

# The percent-encodings the v3 docs say to decode in the URI before signing, and no others.
URI_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_URI_DECODE_RE = re.compile("|".join(URI_DECODE), re.IGNORECASE)

# subscriptionType is "<object>.<event>"; the object names our entity. Tickets, products,
# quotes (not in HubSpot's webhook event list anyway) and the rest are stored with "".
ENTITY_BY_OBJECT = {
    "company": "clients",
    "contact": "contacts",
    "deal": "jobs",
    "line_item": "line_items",
    "product": "",
}
# Generic subscriptions ("object.propertyChange") name the object by `objectTypeId`
# (https://developers.hubspot.com/docs/guides/api/crm/understanding-the-crm, object type IDs).
ENTITY_BY_OBJECT_TYPE_ID = {
    "0-1": "contacts",
    "0-2": "clients",
    "0-3": "jobs",
    "0-7": "",
    "0-8": "line_items",
}
# Fields that differ between deliveries of one event; left out of its id.
VOLATILE_FIELDS = frozenset({"attemptNumber"})


def signed_uri(url: str) -> str:
    """The URI as HubSpot signs it: `url` with the listed percent-encodings decoded (either
    case of hex digits), everything else untouched."""
    return _URI_DECODE_RE.sub(lambda m: URI_DECODE[m.group(0).upper()], url)


def signature_message(request: WebhookRequest, timestamp: str) -> bytes:
    return (
        request.method.upper().encode("utf-8")
        + signed_uri(request.url).encode("utf-8")
        + request.body
        + timestamp.encode("utf-8")
    )


def event_id(event: dict[str, Any]) -> str:
    """HubSpot documents `eventId` as "not guaranteed to be unique", and WebhookEvent is unique
    per provider across every portal, so `eventId` (even with `portalId`) cannot be the key.
    A retry resends the same event with only `attemptNumber` changed, so the id is the hash
    of everything else: stable across retries, distinct for distinct events. (Should HubSpot
    add another per-attempt field, a retry would be processed twice: harmless, since
    processing re-fetches the record.)"""
    return stable_id("hubspot", {k: v for k, v in event.items() if k not in VOLATILE_FIELDS})


def entity_for(event: dict[str, Any], subscription_type: str) -> str:
    object_type = subscription_type.partition(".")[0].lower()
    if object_type == "object":
        return ENTITY_BY_OBJECT_TYPE_ID.get(id_str(event.get("objectTypeId")), "")
    return ENTITY_BY_OBJECT.get(object_type, "")


@register_webhook_handler
class HubSpotWebhookHandler(WebhookHandler):
    provider = "hubspot"
    docs_url = "https://developers.hubspot.com/docs/api/webhooks/validating-requests"
    secret_names: ClassVar[tuple[str, ...]] = ("WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS")
    max_clock_skew: ClassVar[timedelta] = MAX_CLOCK_SKEW

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        usable = usable_secrets(secrets)
        signature = request.headers.get(SIGNATURE_HEADER, "").strip()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        if not signature or not timestamp:
            raise WebhookVerificationError(
                f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header",
                code=WebhookFailure.MISSING,
            )
        if not timestamp.isdigit():
            raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is not a millisecond epoch")
        try:
            signed_at = datetime.fromtimestamp(int(timestamp) / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is out of range") from None
        if abs(request.received_at - signed_at) > self.max_clock_skew:
            raise WebhookVerificationError(
                f"{TIMESTAMP_HEADER} is more than {self.max_clock_skew} from now",
                code=WebhookFailure.EXPIRED,
            )
        check_hmac_signature(
            signature,
            signature_message(request, timestamp),
            usable,
            encoding="base64",
            header=SIGNATURE_HEADER,
        )

    def parse(self, request: WebhookRequest) -> list[WebhookNotice]:
        payload = json_body(request)
        if not isinstance(payload, list):
            raise WebhookPayloadError("HubSpot webhook body is not a JSON array of events")
        notices = []
        for position, event in enumerate(payload):
            if not isinstance(event, dict):
                raise WebhookPayloadError(f"HubSpot event #{position} is not an object")
            subscription_type = str(event.get("subscriptionType") or "unknown")
            # Association changes name the record they start from, not an objectId.
            external = event.get("objectId", event.get("fromObjectId"))
            notices.append(
                WebhookNotice(
                    event_id=event_id(event),
                    event_type=subscription_type,
                    entity=entity_for(event, subscription_type),
                    external_id=id_str(external),
                    occurred_at=ms_to_datetime(event.get("occurredAt")),
                    raw=event,
                    account_id=id_str(event.get("portalId")),
                )
            )
        return notices
