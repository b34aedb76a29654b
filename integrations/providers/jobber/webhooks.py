"""Jobber webhooks: HMAC verification and event parsing.

- Docs: https://developer.getjobber.com/docs/using_jobbers_api/setting_up_webhooks
- Header: `X-Jobber-Hmac-SHA256` = base64(HMAC-SHA256(key = the app's OAuth client secret,
  message = the raw request body)), compared in constant time. There is no timestamp header,
  so no replay window: a replayed delivery has the same event id and is a no-op.
- Secrets: JOBBER_WEBHOOK_SECRET (the app's OAuth client secret, which is what Jobber signs
  with) and, while rotating the client secret, JOBBER_WEBHOOK_SECRET_PREVIOUS.
- Body: JSON `{"data": {"webHookEvent": {"topic", "appId", "accountId", "itemId",
  "occurredAt"}}}`: ids only, so processing queries the item. Apps created before 2022-04-11
  get form-encoded bodies and the misspelt `occuredAt`; we accept the spelling, not the form
  encoding (ours is a newer app).
- Topics (WebHookTopicEnum): CLIENT_, JOB_, QUOTE_, INVOICE_, PROPERTY_, REQUEST_, VISIT_,
  PRODUCT_OR_SERVICE_, PAYMENT_ + CREATE/UPDATE/DESTROY, VISIT_COMPLETE, QUOTE_SENT…,
  APP_CONNECT, APP_DISCONNECT. CLIENT_* -> clients, JOB_* -> jobs, QUOTE_* -> quotes; the rest
  (visits, properties, invoices, products, APP_DISCONNECT…) have entity "".
- Delivery is at-least-once and must be answered within 1 second, so the view only stores.
- Error semantics: a missing or wrong signature -> WebhookVerificationError, 400; a body
  without `data.webHookEvent.topic` -> WebhookPayloadError, 400; a topic we do not sync ->
  stored with entity "" and acknowledged with 200.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from integrations.webhooks import (
    WebhookHandler,
    WebhookNotice,
    WebhookPayloadError,
    WebhookRequest,
    check_hmac_signature,
    id_str,
    iso_to_datetime,
    json_body,
    register_webhook_handler,
    stable_id,
)

SIGNATURE_HEADER = "X-Jobber-Hmac-SHA256"

# The topic's first word names the record; topics not listed are stored with entity "".
ENTITY_BY_TOPIC_PREFIX = {"CLIENT": "clients", "JOB": "jobs", "QUOTE": "quotes"}


def entity_for(topic: str) -> str:
    return ENTITY_BY_TOPIC_PREFIX.get(topic.split("_", 1)[0], "")


@register_webhook_handler
class JobberWebhookHandler(WebhookHandler):
    provider = "jobber"
    docs_url = "https://developer.getjobber.com/docs/using_jobbers_api/setting_up_webhooks"
    secret_names: ClassVar[tuple[str, ...]] = ("WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS")

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        check_hmac_signature(
            request.headers.get(SIGNATURE_HEADER, ""),
            request.body,
            secrets,
            encoding="base64",
            header=SIGNATURE_HEADER,
        )

    def parse(self, request: WebhookRequest) -> list[WebhookNotice]:
        payload = json_body(request)
        data = payload.get("data") if isinstance(payload, dict) else None
        event = data.get("webHookEvent") if isinstance(data, dict) else None
        if not isinstance(event, dict) or not isinstance(event.get("topic"), str):
            raise WebhookPayloadError("Jobber webhook body has no data.webHookEvent.topic")
        topic = event["topic"]
        account_id = id_str(event.get("accountId"))
        item_id = id_str(event.get("itemId"))
        occurred = event.get("occurredAt", event.get("occuredAt"))  # older apps misspell it
        return [
            WebhookNotice(
                # Jobber sends no event id. A redelivery repeats the same topic, account,
                # item and occurrence time, and two distinct events differ in at least one
                # of them, so their hash is the id.
                event_id=stable_id("jobber", topic, account_id, item_id, occurred),
                event_type=topic,
                entity=entity_for(topic),
                external_id=item_id,
                occurred_at=iso_to_datetime(occurred),
                raw=event,
                account_id=account_id,
            )
        ]
