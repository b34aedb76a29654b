"""ServiceTitan webhooks (V2, beta): secret-path verification and defensive parsing.

- Docs: https://developer-next.servicetitan.io/docs/webhooks and
  https://public-api-developer.st.dev/docs/faqs-v2-webhooks. The app picks events and a
  callback URL per event in the developer portal; ServiceTitan retries a non-2xx answer after
  10, 30, 60 and 300 s. V1 webhooks (`/webhooks/v1/{tenant}/…`) are deprecated by 2026-03-31.
  Polling with `modifiedOnOrAfter` stays the guarantee (PRODUCT.md); webhooks only hurry it.
- Signature: V2 has an optional per-app HMAC key (32–64 characters) and sends "the signature
  of the payload" in a request header, but neither the header's name nor its encoding is in
  any source we have (NOTES.md §8, open item 1). Guessing them would either reject every
  real delivery or, worse, accept a header we misread, so none is checked. Verification is the
  secret token in our callback URL's path, as for ServiceM8: `WebhookRequest.path_token` must
  equal one of the secrets (constant time). Once the portal shows the header, add an HMAC
  check here, beside the token.
- Secrets: the integration's own path tokens (its `webhook_secrets` credential, a list so a
  token can be rotated); there is no app-wide token.
- Body: undocumented here, so parsed defensively: a JSON object (or an array of them), one
  notice each. The event id is `eventId` when present (scoped by `tenantId` when that is
  present too), else the hash of the whole event. A top-level `id` is *not* taken as the
  event id: on an entity-shaped payload it is the record's id, and using it would drop every
  later event about the same record as a duplicate. `entity`/`external_id` are set only when
  `eventType` starts with customer, job or estimate *and* the payload has that record's id
  (`customerId`/`jobId`/`estimateId`, else a top-level `id`); otherwise entity is "".
- Error semantics: a missing or wrong path token -> WebhookVerificationError, 400; a body that
  is not a JSON object or array of objects -> WebhookPayloadError, 400; any event we cannot
  place -> stored with entity "" and acknowledged with 200.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from integrations.webhooks import (
    WebhookHandler,
    WebhookNotice,
    WebhookPayloadError,
    WebhookRequest,
    check_path_token,
    id_str,
    json_body,
    register_webhook_handler,
    stable_id,
)

# WebhookEvent.external_event_id holds 255 characters; a longer provider id is hashed.
MAX_EVENT_ID_LENGTH = 255
# First word of eventType -> (our entity, the field holding the record's id).
ENTITY_BY_WORD = {
    "customer": ("clients", "customerId"),
    "job": ("jobs", "jobId"),
    "estimate": ("quotes", "estimateId"),
}
# Splits "Customer.Created", "customer_created", "JOB-COMPLETED" and "JobCompleted" alike.
_WORD_BOUNDARY = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def first_word(event_type: str) -> str:
    return _WORD_BOUNDARY.split(event_type.strip(), maxsplit=1)[0].lower()


def place(event: dict[str, Any], event_type: str) -> tuple[str, str]:
    """(entity, external_id) when the event clearly names a record we sync, else ("", "")."""
    entity, id_field = ENTITY_BY_WORD.get(first_word(event_type), ("", ""))
    if not entity:
        return "", ""
    external_id = id_str(event.get(id_field)) or id_str(event.get("id"))
    return (entity, external_id) if external_id else ("", "")


@register_webhook_handler
class ServiceTitanWebhookHandler(WebhookHandler):
    provider = "servicetitan"
    docs_url = "https://developer-next.servicetitan.io/docs/webhooks"
    # The path token is per integration (its `webhook_secrets` credential, a list for
    # rotation): an app-wide token would let one account's token open every integration.
    secret_names: ClassVar[tuple[str, ...]] = ()

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        check_path_token(request, secrets)

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
