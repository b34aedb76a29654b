"""ServiceM8 Webhooks API emulation: object subscriptions (list, add or modify, delete).

Written from ServiceM8's webhook documentation, independently of the client (STYLE.md §1):

- Base: ``https://api.servicem8.com/webhook_subscriptions``, beside ``/api_1.0`` [doc:
  https://developer.servicem8.com/docs/webhooks-overview]; here
  ``/servicem8/webhook_subscriptions``.
- "The ServiceM8 Webhooks API is only available to Public Applications. You will need to
  implement OAuth 2.0 Authentication" [doc: overview]: an ``X-Api-Key`` caller gets 403 (the
  spec's Error body). A bearer token must also be allowed to read the object subscribed to
  (its read or manage scope): the docs name no scope of their own, so the sandbox requires
  what reading the notified records needs (our assumption).
- ``GET /webhook_subscriptions?status=active|inactive|all`` (default ``active``): an array of
  ``ObjectWebhook`` ``{"type": "object", "object", "callback_url", "fields": [...],
  "unique_id", "active"}`` [doc: reference/get_webhook_subscriptions]; each also carries the
  ``uuid`` that deletes it (see below). Only the calling OAuth app's subscriptions on the
  account are listed.
- ``POST /webhook_subscriptions/object``, form-encoded ``object``, ``fields`` (comma list),
  ``callback_url`` (http/https), optional ``unique_id`` [doc:
  reference/post_object_webhook_subscription]. "When you add a new subscription, or modify an
  existing one, ServiceM8 servers will make a HTTP POST request to your callback URL in order
  to verify" it, with ``mode=subscribe`` and ``challenge``; the callback must answer 200 with
  only the challenge [doc: overview; NOTES.md §1]. The sandbox sends that POST (form-encoded,
  10 s timeout, as the docs' "2xx within 10 s") and refuses the subscription (400) when the
  answer is anything else. The same (object, callback_url) again modifies the existing
  subscription (same uuid, fields replaced, active again). Answer: 200 ``{"success": true}``.
- ``DELETE /webhook_subscriptions/{uuid}``: 200 ``{"success": true}``; 404 when there is no such
  subscription of this app. [3p: not in the docs we hold; a client pinned against the live
  API uses exactly this form.]
- Objects: any object the sandbox emulates may be subscribed; ``fields`` must be non-empty.
- Change notices: "the payload only says which fields changed on which record" [doc:
  overview; NOTES.md §1]: a JSON POST ``{"object", "entry": [{"uuid", "changed_fields",
  "time"}], "resource_url"}`` [doc: community thread 1095, NOTES.md §1]. The sandbox sends
  one to each active subscription of the written object whose ``fields`` include one of the
  fields the write changed (``edit_date`` changes with every write, ``active`` with a delete
  or restore; a create changes every field it sets), after each create, update or delete
  through the REST API (``notify_change``). ``time`` is the write's ``edit_date`` (account
  local time, no zone), ``resource_url`` the record's REST URL on this sandbox. Delivery is
  best effort, in a background thread, with the same 10 s timeout as the challenge; a failed
  delivery is dropped (the docs' deactivation after repeated failures is not emulated).
  Writes through the control API (``/_sandbox/records``) and the job total the sandbox
  recomputes after a jobmaterial write send none.
"""

from __future__ import annotations

import secrets
import threading
import uuid as uuid_lib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from werkzeug.wrappers import Request, Response

from integrations.sandbox.app import json_response
from integrations.sandbox.store import Collection

if TYPE_CHECKING:
    from integrations.sandbox.servicem8 import Principal, ServiceM8Api

PROVIDER = "servicem8"
COLLECTION = "webhook_subscription"
CHALLENGE_TIMEOUT = 10.0
NOTICE_TIMEOUT = 10.0
STATUSES = ("active", "inactive", "all")
OK = {"success": True}


def _begin(api: ServiceM8Api, request: Request) -> Principal | Response:
    principal = api.authenticate(request)
    if isinstance(principal, Response):
        return principal
    limited = api.check_rate_limit(principal)
    if limited is not None:
        return limited
    if principal.scopes is None:
        return api.error_response(
            403, "The Webhooks API is only available to Public Applications (OAuth 2.0)."
        )
    return principal


def _collection(principal: Principal) -> Collection:
    return Collection(PROVIDER, principal.account.uuid, COLLECTION)


def _render(record_id: str, data: dict[str, Any], active: bool) -> dict[str, Any]:
    return {
        "uuid": record_id,
        "type": "object",
        "object": data["object"],
        "callback_url": data["callback_url"],
        "fields": list(data["fields"]),
        "unique_id": data.get("unique_id", ""),
        "active": active,
    }


def list_subscriptions(api: ServiceM8Api, request: Request) -> Response:
    principal = _begin(api, request)
    if isinstance(principal, Response):
        return principal
    status = request.args.get("status", "active")
    if status not in STATUSES:
        return api.error_response(400, "status must be one of active, inactive, all.")
    out = []
    for record in api.store.iter_keyset(_collection(principal)):
        data = record.data
        if data.get("app") != principal.app or data.get("deleted"):
            continue
        active = bool(record.active)
        if status == "all" or active == (status == "active"):
            out.append(_render(str(record.id), data, active))
    return json_response(out)


def subscribe_object(api: ServiceM8Api, request: Request, objects: dict[str, Any]) -> Response:
    principal = _begin(api, request)
    if isinstance(principal, Response):
        return principal
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return api.error_response(400, "The request body must be form-encoded.")
    form = request.form
    obj = (form.get("object") or "").strip().lower()
    fields = [f.strip() for f in (form.get("fields") or "").split(",") if f.strip()]
    callback = (form.get("callback_url") or "").strip()
    errors = []
    spec = objects.get(obj)
    if spec is None:
        errors.append(f"object: {obj or '(none)'} is not an authorised object type")
    if not fields:
        errors.append("fields: at least one field is required")
    parts = urlsplit(callback)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append("callback_url: must be an http or https URL")
    if errors:
        return api.error_response(400, "; ".join(errors))
    if not principal.may_read(spec):
        return api.error_response(403)
    challenge = secrets.token_urlsafe(24)
    try:
        answer = requests.post(
            callback,
            data={"mode": "subscribe", "challenge": challenge},
            timeout=CHALLENGE_TIMEOUT,
            allow_redirects=False,
        )
        verified = answer.status_code == 200 and answer.text.strip() == challenge
        detail = f"answered {answer.status_code}"
    except requests.RequestException as exc:
        verified, detail = False, f"failed ({type(exc).__name__})"
    if not verified:
        return api.error_response(
            400, f"Callback URL verification failed: the challenge request {detail}."
        )
    collection = _collection(principal)
    existing = None
    for record in api.store.iter_keyset(collection):
        data = record.data
        if (
            not data.get("deleted")
            and data.get("app") == principal.app
            and data.get("object") == obj
            and data.get("callback_url") == callback
        ):
            existing = record
            break
    record_id = str(existing.id) if existing is not None else str(uuid_lib.uuid4())
    data = {
        "app": principal.app,
        "object": obj,
        "fields": fields,
        "callback_url": callback,
        "unique_id": (form.get("unique_id") or "").strip(),
    }
    api.store.upsert(collection, record_id, data, active=True)
    api.app.stats.write_applied(PROVIDER, f"webhook_subscriptions/{record_id}")
    return json_response(OK)


def delete_subscription(api: ServiceM8Api, request: Request, uuid: str) -> Response:
    principal = _begin(api, request)
    if isinstance(principal, Response):
        return principal
    collection = _collection(principal)
    record = api.store.get(collection, uuid.lower())
    if record is None or record.data.get("app") != principal.app or record.data.get("deleted"):
        return api.error_response(404)
    # The store keeps rows; a deleted subscription is marked and no longer listed or matched.
    api.store.upsert(collection, record.id, {**record.data, "deleted": True}, active=False)
    api.app.stats.write_applied(PROVIDER, f"webhook_subscriptions/{record.id}")
    return json_response(OK)


def changed_fields(
    old: dict[str, Any] | None, new: dict[str, Any], *, was_active: bool, active: bool
) -> list[str]:
    """The field names a write changed: all that a create sets, the differing ones of an
    update, plus ``edit_date`` (new on every write) and ``active`` when it flipped."""
    if old is None:
        names = set(new) | {"active"}
    else:
        names = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
        if was_active != active:
            names.add("active")
    return sorted(names | {"edit_date"})


def notify_change(
    api: ServiceM8Api,
    request: Request,
    account_uuid: str,
    obj: str,
    record_id: str,
    fields: list[str],
    modified_us: int,
) -> None:
    """Send the change notice of one written record to every matching subscription of the
    account (in a background thread: the write's answer never waits for a callback)."""
    from integrations.sandbox.servicem8 import API_PREFIX, _zone, render_edit_date

    wanted = set(fields)
    callbacks = sorted(
        {
            record.data["callback_url"]
            for record in api.store.iter_keyset(Collection(PROVIDER, account_uuid, COLLECTION))
            if record.active
            and not record.data.get("deleted")
            and record.data.get("object") == obj
            and wanted & set(record.data.get("fields") or ())
        }
    )
    if not callbacks:
        return
    body = {
        "object": obj,
        "entry": [
            {
                "uuid": record_id,
                "changed_fields": fields,
                "time": render_edit_date(modified_us, _zone(account_uuid)),
            }
        ],
        "resource_url": f"{request.host_url.rstrip('/')}{API_PREFIX}/{obj}/{record_id}.json",
    }
    thread = threading.Thread(
        target=_deliver, args=(callbacks, body), name="sm8-webhook-notice", daemon=True
    )
    thread.start()


def _deliver(callbacks: list[str], body: dict[str, Any]) -> None:
    for callback in callbacks:
        try:
            requests.post(callback, json=body, timeout=NOTICE_TIMEOUT, allow_redirects=False)
        except requests.RequestException:
            continue  # best effort: ServiceM8 would retry, then deactivate; we drop it
