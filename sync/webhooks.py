"""Webhook endpoint and processing: `/webhooks/<provider>/<integration id>/[<token>/]`.

The view verifies the delivery with the provider's handler (`integrations.webhooks`), stores
each event once per integration (the stored id is "<integration id>:<provider event id>", see
`stored_event_id`, so a redelivery is a no-op while two tenants' events that share an id do
not collide), queues the
re-fetch when the transaction commits and answers at once: no provider call happens in the
request. A bad signature or token gets 400 and a warning in the log; an event we do not sync
is stored as ignored and acknowledged; a subscription challenge gets its answer.

Secrets, a list so they can be rotated: the integration's `webhook_secrets` credential (for
ServiceM8 and ServiceTitan, the secret path token; for HubSpot and Jobber, the app's client
secret when it is per integration), then the app-level settings the handler names
(`<PROVIDER>_<NAME>` env vars).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from config.celery import app as celery_app
from integrations.exceptions import UnknownProvider
from integrations.models import Integration
from integrations.webhooks import (
    WebhookChallenge,
    WebhookFailure,
    WebhookHandler,
    WebhookNotice,
    WebhookRequest,
    WebhookVerificationError,
    webhook_handler,
)
from sync.models import WebhookEvent

logger = logging.getLogger("sync.webhooks")

PROCESS_TASK = "sync.process_webhook_event"


def integration_webhook_secrets(
    *, integration: Integration, handler: type[WebhookHandler]
) -> list[str]:
    try:
        own = (integration.credentials or {}).get("webhook_secrets") or []
    except (AttributeError, TypeError):  # unreadable or malformed credentials
        own = []
    if isinstance(own, str):
        own = [own]
    if not isinstance(own, list):
        own = []
    return [s for s in own if isinstance(s, str) and s] + handler.app_secrets()


def webhook_events_record(
    *, integration: Integration, notices: list[WebhookNotice]
) -> list[WebhookEvent]:
    """Store each notice once; queue processing for the new ones when the caller commits."""
    created_events = []
    for notice in notices:
        ignored = ""
        if not notice.entity or not notice.external_id:
            ignored = "Not an event we sync; stored and acknowledged."
        elif (
            notice.account_id
            and integration.external_account_id
            and notice.account_id != integration.external_account_id
        ):
            ignored = f"Event for account {notice.account_id}, not this integration's."
        event, created = WebhookEvent.objects.get_or_create(
            provider=integration.provider,
            external_event_id=stored_event_id(integration=integration, event_id=notice.event_id),
            defaults={
                "integration": integration,
                "event_type": notice.event_type.replace("\x00", "")[:120],
                "verification": WebhookEvent.Verification.VALID,
                "status": WebhookEvent.Status.IGNORED if ignored else WebhookEvent.Status.RECEIVED,
                "error": ignored,
                "payload": _storable(
                    {
                        "entity": notice.entity,
                        "external_id": notice.external_id,
                        "occurred_at": notice.occurred_at.isoformat()
                        if notice.occurred_at
                        else None,
                        "account_id": notice.account_id,
                        "raw": dict(notice.raw),
                    }
                ),
            },
        )
        if created:
            created_events.append(event)
            if not ignored:
                transaction.on_commit(lambda event_id=event.pk: _queue(event_id), robust=True)
    return created_events


def stored_event_id(*, integration: Integration, event_id: str) -> str:
    """The dedupe key stored in WebhookEvent.external_event_id (unique per provider, 255
    characters): the provider's event id scoped by our integration id, because a provider's
    event ids need not be unique across its accounts (ServiceTitan's `eventId` is per tenant,
    and two integrations may share a tenant or an app). One longer than the column is
    replaced by its sha256 hex, still scoped."""
    event_id = event_id.replace("\x00", "")
    scoped = f"{integration.pk}:{event_id}"
    if len(scoped) <= 255:
        return scoped
    return f"{integration.pk}:sha256:{hashlib.sha256(event_id.encode('utf-8')).hexdigest()}"


# At most this many refused deliveries are recorded per integration and minute (a flood of
# forged requests must not fill the table); the rest are only logged.
REJECTED_RECORDS_PER_MINUTE = 30
EXCERPT_CHARS = 200


def webhook_rejection_record(
    *, integration: Integration, verification: str, reason: str, body: bytes
) -> WebhookEvent | None:
    """Keep a refused delivery for the admin's webhook list: why it was refused and the first
    EXCERPT_CHARS characters of its body, never the whole unverified payload."""
    minute = timezone.now().strftime("%Y%m%d%H%M")
    key = f"webhooks:rejected:{integration.pk}:{minute}"
    cache.add(key, 0, 120)
    try:
        if cache.incr(key) > REJECTED_RECORDS_PER_MINUTE:
            return None
    except ValueError:  # the key expired between add and incr
        pass
    excerpt = body[:EXCERPT_CHARS].decode("utf-8", "replace").replace("\x00", "")
    return WebhookEvent.objects.create(
        provider=integration.provider,
        integration=integration,
        external_event_id=f"rejected:{uuid.uuid4()}",
        verification=verification,
        verification_reason=reason[:300],
        status=WebhookEvent.Status.REJECTED,
        error=reason[:4000],
        body_excerpt=excerpt[:300],
        payload={},
    )


def _storable(value: dict) -> dict:
    """PostgreSQL's jsonb refuses the NUL character; drop it rather than fail the delivery."""
    text = json.dumps(value)
    return json.loads(text.replace("\\u0000", "")) if "\\u0000" in text else value


def webhook_events_requeue(*, older_than_seconds: int = 120) -> int:
    """Queue again the events still waiting after a while: their on-commit queueing failed
    (broker down) or their task gave up. Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        WebhookEvent.objects.filter(
            status=WebhookEvent.Status.RECEIVED, updated_at__lt=cutoff
        ).values_list("id", flat=True)[:500]
    )
    for event_id in ids:
        _queue(event_id)
    return len(ids)


def _queue(event_id: int) -> None:
    celery_app.send_task(PROCESS_TASK, args=[event_id], retry=False)


def webhook_event_process(*, event_id: int) -> str:
    """Re-fetch the record the event names. Idempotent: an event already processed (the task
    was delivered twice) is left alone."""
    from sync.engine import IntegrationUnavailable, sync_record

    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        if event.status != WebhookEvent.Status.RECEIVED:
            return event.status
    payload = event.payload or {}
    try:
        run = sync_record(
            integration_id=event.integration_id,
            entity=payload.get("entity", ""),
            external_id=payload.get("external_id", ""),
        )
    except (IntegrationUnavailable, ValueError, UnknownProvider) as exc:
        _mark(event, WebhookEvent.Status.IGNORED, str(exc))
        return WebhookEvent.Status.IGNORED
    except Exception as exc:
        _mark(event, WebhookEvent.Status.RECEIVED, f"{type(exc).__name__}: {exc}")
        raise
    _mark(event, WebhookEvent.Status.PROCESSED, run.error_summary)
    return WebhookEvent.Status.PROCESSED


def _mark(event: WebhookEvent, status: str, error: str) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=status,
        error=error[:4000],
        processed_at=timezone.now() if status != WebhookEvent.Status.RECEIVED else None,
        updated_at=timezone.now(),
    )


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    http_method_names = ["post", "head", "options"]

    def post(
        self, request: HttpRequest, provider: str, integration_id: int, token: str = ""
    ) -> HttpResponse:
        try:
            handler_class = webhook_handler(provider)
        except UnknownProvider:
            raise Http404("No such provider.") from None
        integration = Integration.objects.filter(pk=integration_id, provider=provider).first()
        if integration is None:
            raise Http404("No such integration.")
        incoming = WebhookRequest(
            method=request.method or "POST",
            url=request.build_absolute_uri(),
            headers=dict(request.headers),
            body=request.body,
            content_type=request.content_type or "",
            path_token=token,
        )
        secrets = integration_webhook_secrets(integration=integration, handler=handler_class)
        # A handler that checks per-integration keys beyond the path token (ServiceTitan's
        # HMAC key) is built from the integration; the others take no arguments.
        for_integration = getattr(handler_class, "for_integration", None)
        handler = for_integration(integration) if for_integration else handler_class()
        try:
            notices = handler.receive(incoming, secrets)
        except WebhookChallenge as challenge:
            return HttpResponse(challenge.response_body, content_type="text/plain")
        except WebhookVerificationError as exc:
            logger.warning(
                "webhook refused",
                extra={
                    "provider": provider,
                    "integration_id": integration_id,
                    "reason": exc.reason,
                    "code": str(exc.code),
                    "missing": exc.code == WebhookFailure.MISSING,
                },
            )
            webhook_rejection_record(
                integration=integration,
                verification=WebhookEvent.Verification.MISSING
                if exc.code == WebhookFailure.MISSING
                else WebhookEvent.Verification.INVALID,
                reason=f"{exc.code}: {exc.reason}",
                body=request.body,
            )
            return JsonResponse({"error": exc.reason}, status=400)
        except ValueError as exc:
            logger.warning(
                "webhook body refused",
                extra={"provider": provider, "integration_id": integration_id, "reason": str(exc)},
            )
            webhook_rejection_record(
                integration=integration,
                verification=WebhookEvent.Verification.VALID,
                reason=f"Malformed body: {exc}",
                body=request.body,
            )
            return JsonResponse({"error": f"Malformed webhook body: {exc}"[:300]}, status=400)
        created = webhook_events_record(integration=integration, notices=notices)
        return JsonResponse({"received": len(notices), "new": len(created)})
