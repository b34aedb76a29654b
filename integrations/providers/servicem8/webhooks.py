"""ServiceM8 webhooks: secret-path verification, the subscribe challenge, change notices.

- Docs: https://developer.servicem8.com/docs/webhooks-overview (OAuth "public" apps only);
  object subscriptions https://developer.servicem8.com/reference/post_object_webhook_subscription,
  event subscriptions https://developer.servicem8.com/reference/post_event_webhook_subscription.
- No signature: ServiceM8 documents no HMAC or signing header for Webhooks-API deliveries.
  Asked about webhook authentication, ServiceM8 staff pointed only to the subscribe challenge
  (https://community.servicem8.com/t/webhook-authentication-schema/1095). The OpenAPI file's
  `WebhookEvent.metadata.signature` is referenced by no path and names no key or header, so
  nothing here relies on it. (Add-on SDK callbacks are a different thing: JWTs signed with
  the add-on's App Secret.) So verification is a secret token in our callback URL's path:
  `WebhookRequest.path_token` must equal one of the secrets, compared in constant time. The
  payload names records only and processing re-fetches them over the REST API, so a forged
  notice can at worst cause a re-read.
- Secrets: the integration's own path tokens (its `webhook_secrets` credential, a list so a
  token can be rotated); there is no app-wide token.
- Challenge: adding or changing a subscription makes ServiceM8 POST form fields
  `mode=subscribe&challenge=…`; the callback must answer with only the challenge value.
  `verify` raises WebhookChallenge for it, but only once the path token checks out, so
  nobody can use our endpoint to confirm a subscription to it.
- Change notices (object subscriptions): JSON `{"object": "job", "entry": [{"uuid",
  "changed_fields", "time"}], "resource_url"}`: field names only, no values. One notice per
  entry. `time` carries no zone (ServiceM8 times are the account's local time), so
  `occurred_at` is None unless it has one.
- Event subscriptions (job.created, job.quote_accepted, company.updated…) are newer and their
  body is not documented in anything we have; the official n8n node reads a top-level `type`
  (and `createdAt`). Such a body is stored whole as one notice with that type and entity "".
- Error semantics: a missing or wrong path token -> WebhookVerificationError, 400 (also for a
  challenge); a valid challenge -> WebhookChallenge, 200 with the challenge; a body that is
  neither of the shapes above -> WebhookPayloadError, 400; an object we do not sync
  (vendor, materialbundle…) -> a notice with entity "", stored and acknowledged 200.
- Entities: every object the provider reads maps to its entity (ENTITY_BY_OBJECT), so the
  notice re-fetches that one record; for the ReferenceRecord objects (category, taxrate,
  jobmaterialbundle) the notice's external id is "<kind>:<uuid>", as stored.
  ServiceM8 wants a 2xx within 10 s and deactivates subscriptions that keep failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qs

from integrations.providers.servicem8 import mapping
from integrations.webhooks import (
    WebhookChallenge,
    WebhookHandler,
    WebhookNotice,
    WebhookPayloadError,
    WebhookRequest,
    check_path_token,
    id_str,
    iso_to_datetime,
    json_body,
    register_webhook_handler,
    stable_id,
)

# ServiceM8 object -> our entity (ServiceM8Provider.objects); any other object (vendor,
# materialbundle, asset…) is stored with entity "". A quote is a job with status "Quote", so
# "jobs"; a note is also named "dbonote" and an attachment "dboattachment" in the spec's paths.
ENTITY_BY_OBJECT = {
    "company": "clients",
    "companycontact": "contacts",
    "staff": "staff",
    "taxrate": "tax_rates",
    "category": "job_categories",
    "material": "pricebook_items",
    "job": "jobs",
    "jobcontact": "job_contacts",
    "jobactivity": "activities",
    "jobmaterialbundle": "material_bundles",
    "jobmaterial": "materials",
    "attachment": "attachments",
    "dboattachment": "attachments",
    "note": "notes",
    "dbonote": "notes",
}
# Objects synced as ReferenceRecords, whose external id is "<kind>:<uuid>": a notice names the
# record that way, so a re-fetch that finds it gone (404) marks the right row deleted.
REFERENCE_KIND_BY_OBJECT = mapping.REFERENCE_KINDS
# Where an event-subscription body might name its event (see the module docstring).
EVENT_NAME_KEYS = ("type", "event", "eventName")


def form_fields(request: WebhookRequest) -> dict[str, str] | None:
    """The body as form fields (first value of each), or None when it is not a form. A body
    that looks like JSON is never a form, whatever its declared type."""
    if request.content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    if request.body.lstrip().startswith((b"{", b"[")):
        return None
    try:
        parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in parsed.items()}


def subscribe_challenge(request: WebhookRequest) -> str | None:
    """The challenge of a `mode=subscribe` verification request, else None."""
    fields = form_fields(request)
    if fields and fields.get("mode") == "subscribe" and "challenge" in fields:
        return fields["challenge"]
    return None


@register_webhook_handler
class ServiceM8WebhookHandler(WebhookHandler):
    provider = "servicem8"
    docs_url = "https://developer.servicem8.com/docs/webhooks-overview"
    # The path token is per integration (its `webhook_secrets` credential, a list for
    # rotation): an app-wide token would let one account's token open every integration.
    secret_names: ClassVar[tuple[str, ...]] = ()

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        check_path_token(request, secrets)  # first: an unauthenticated challenge gets a 400
        challenge = subscribe_challenge(request)
        if challenge is not None:
            raise WebhookChallenge(challenge)

    def parse(self, request: WebhookRequest) -> list[WebhookNotice]:
        if subscribe_challenge(request) is not None:
            return []  # answered by verify(); nothing to store
        fields = form_fields(request)
        if fields:
            # The overview says callbacks receive form-encoded POSTs "when an update happens",
            # while every described notice is JSON: keep such a body rather than refuse it.
            return [self._unknown(fields, event_type="unknown")]
        payload = json_body(request)
        if not isinstance(payload, dict):
            raise WebhookPayloadError("ServiceM8 webhook body is not a JSON object")
        if "object" in payload or "entry" in payload:
            return self._object_notices(payload)
        for key in EVENT_NAME_KEYS:
            if isinstance(payload.get(key), str) and payload[key]:
                return [self._unknown(payload, event_type=payload[key])]
        raise WebhookPayloadError("ServiceM8 webhook body has neither object/entry nor an event")

    def _object_notices(self, payload: dict[str, Any]) -> list[WebhookNotice]:
        object_name, entries = payload.get("object"), payload.get("entry")
        if not isinstance(object_name, str) or not object_name or not isinstance(entries, list):
            raise WebhookPayloadError("ServiceM8 change notice needs `object` and an `entry` list")
        entity = ENTITY_BY_OBJECT.get(object_name.lower(), "")
        kind = REFERENCE_KIND_BY_OBJECT.get(object_name.lower())
        notices = []
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict) or not id_str(entry.get("uuid")):
                raise WebhookPayloadError(f"ServiceM8 entry #{position} has no uuid")
            uuid, time = id_str(entry["uuid"]), entry.get("time")
            notices.append(
                WebhookNotice(
                    # No event id is sent. Record uuids are global, and a redelivery repeats
                    # object, uuid and time. Two changes to one record within the same second
                    # share an id; the second is then covered by the re-fetch of the first,
                    # or by the next incremental sync should that re-fetch have run before it.
                    event_id=stable_id("servicem8", object_name, uuid, time),
                    event_type=object_name,
                    entity=entity,
                    external_id=mapping.reference_id(kind, uuid) if kind else uuid,
                    occurred_at=iso_to_datetime(time),
                    raw={
                        "object": object_name,
                        "resource_url": payload.get("resource_url"),
                        "entry": entry,
                    },
                )
            )
        return notices

    def _unknown(self, payload: dict[str, Any], *, event_type: str) -> WebhookNotice:
        # Undocumented shape: the whole body is the event, its hash the id (a redelivery
        # repeats the body), and nothing is guessed about the record it concerns.
        return WebhookNotice(
            event_id=stable_id("servicem8", payload),
            event_type=event_type,
            entity="",
            external_id="",
            occurred_at=None,
            raw=payload,
        )
