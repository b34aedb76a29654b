"""The sandbox control API (``/_sandbox/…``): JSON in and out, no auth, never faulted/counted.

=========================================  ======================================================
``GET  /_sandbox/accounts``                the standard accounts and their credentials
``GET  /_sandbox/stats``                   counters (see ``app.Stats``)
``POST /_sandbox/stats/reset``             zero the counters
``GET  /_sandbox/config``                  current run-time config
``POST /_sandbox/config``                  partial update, e.g.
                                           ``{"servicem8": {"page_size": 7}}``; 400 on a bad key
``POST /_sandbox/reset``                   config, faults, stats and rate windows back to
                                           defaults (records are kept)
``GET  /_sandbox/faults``                  current fault configuration (remaining queue)
``POST /_sandbox/faults``                  replace the fault configuration (``app.FaultInjector``)
``DELETE /_sandbox/faults``                clear all faults
``POST /_sandbox/records/{p}/{object}``    upsert ``{"id"?, "data": {…}, "active"?}``;
                                           modified = now; data is merged into an existing record
``GET  /_sandbox/records/{p}/{object}/{id}``     the stored record (and its API rendering)
``DELETE /_sandbox/records/{p}/{object}/{id}``   soft delete: active 0/false, modified = now
``POST /_sandbox/seed``                    ``{"records": N, "seed": 42, "reset": false}``
=========================================  ======================================================

Record endpoints act on the provider's standard account (ServiceM8 account uuid, ServiceTitan
tenant id) unless ``?account=`` names another one.

Faults (``POST /_sandbox/faults``; full reference in ``app.FaultInjector``) apply to provider
reads *and* writes. Queue entries are consumed one per matching API request and may be narrowed
with ``method`` ("POST", "DELETE", … or "WRITE") and ``path`` (an fnmatch pattern)::

    {"queue": [{"status": 500, "method": "POST"}]}        # next POST fails, nothing applied
    {"queue": [{"status": 429, "method": "WRITE"}]}       # next write is rate limited once
    {"queue": [{"apply_then_error": true, "status": 500,  # next job update IS applied,
                "method": "POST",                         # but the client gets a 500
                "path": "/servicem8/api_1.0/job/*.json"}]}

``apply_then_error`` is the fault for exactly-once tests: the request is handled normally (the
write reaches the store and counts in ``writes_applied``), then the answer is replaced by
``status`` (default 500; ``body``/``headers``/``retry_after`` as for other entries). With
``delay_seconds`` the sleep comes *after* the write, so a client timeout shorter than it also
leaves the write applied. ``apply_then_error_rate`` does the same at random, for writes only.

Stats (``GET /_sandbox/stats``, see ``app.Stats``) count writes per provider: ``writes_total``,
``writes_by_path`` ("POST /servicem8/api_1.0/job/<uuid>.json": n, concrete ids) and
``writes_applied`` ("job/<uuid>": number of writes that changed that record). Templated counts
per method stay in ``requests_by_path`` ("POST /servicem8/api_1.0/job/{uuid}.json": n).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.sandbox import accounts
from integrations.sandbox.app import Endpoint, ProviderApi, json_response
from integrations.sandbox.store import Collection, Record, RecordId, from_us

if TYPE_CHECKING:
    from integrations.sandbox.app import SandboxApp

PREFIX = "/_sandbox"
# Seeding through HTTP is for tests and demos; the CLI (sandbox_seed) handles the big runs.
MAX_HTTP_SEED_RECORDS = 1_000_000


class ControlApi:
    """Handlers for ``/_sandbox/…``. See the module docstring for the contract."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    def endpoints(self) -> list[tuple[Rule, Endpoint]]:
        routes: list[tuple[str, list[str], str, Any]] = [
            ("/accounts", ["GET"], "accounts", self.accounts),
            ("/stats", ["GET"], "stats", self.stats),
            ("/stats/reset", ["POST"], "stats_reset", self.stats_reset),
            ("/config", ["GET", "POST"], "config", self.config),
            ("/reset", ["POST"], "reset", self.reset),
            ("/faults", ["GET", "POST", "DELETE"], "faults", self.faults),
            ("/records/<provider>/<obj>", ["POST"], "record_upsert", self.record_upsert),
            ("/records/<provider>/<obj>/<rid>", ["GET", "DELETE"], "record", self.record),
            ("/seed", ["POST"], "seed", self.seed),
        ]
        return [
            (
                Rule(PREFIX + path, methods=methods, endpoint=f"control.{name}"),
                Endpoint("control", "control", handler, PREFIX + path),
            )
            for path, methods, name, handler in routes
        ]

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str) -> Response:
        return json_response({"error": message}, status)

    @staticmethod
    def _body(request: Request) -> Any:
        if not request.get_data():
            return {}
        return request.get_json(force=True, silent=True)

    # --- endpoints -----------------------------------------------------------------------------

    def accounts(self, request: Request) -> Response:
        return json_response(
            {
                "servicem8": {
                    "accounts": [
                        {
                            "uuid": a.uuid,
                            "name": a.name,
                            "timezone": a.timezone,
                            "api_key": a.api_key,
                        }
                        for a in accounts.SERVICEM8_ACCOUNTS
                    ],
                    "oauth_apps": [
                        {
                            "client_id": a.client_id,
                            "client_secret": a.client_secret,
                            "account_uuid": a.account_uuid,
                        }
                        for a in accounts.SERVICEM8_OAUTH_APPS
                    ],
                },
                "servicetitan": {
                    "app_key": accounts.SERVICETITAN_APP_KEY,
                    "tenants": [
                        {
                            "tenant_id": t.tenant_id,
                            "name": t.name,
                            "client_id": t.client_id,
                            "client_secret": t.client_secret,
                        }
                        for t in accounts.SERVICETITAN_TENANTS
                    ],
                },
            }
        )

    def stats(self, request: Request) -> Response:
        return json_response(self.app.stats.as_dict())

    def stats_reset(self, request: Request) -> Response:
        self.app.stats.reset()
        return json_response(self.app.stats.as_dict())

    def config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                return json_response(self.app.config.update(self._body(request)))
            except ValueError as exc:
                return self._error(400, str(exc))
        return json_response(self.app.config.as_dict())

    def reset(self, request: Request) -> Response:
        self.app.reset_runtime()
        return json_response({"config": self.app.config.as_dict(), "faults": None})

    def faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                return json_response(
                    self.app.faults.configure(self._body(request), list(self.app.providers))
                )
            except ValueError as exc:
                return self._error(400, str(exc))
        if request.method == "DELETE":
            self.app.faults.clear()
        return json_response(self.app.faults.as_dict())

    def _target(
        self, request: Request, provider: str, obj: str
    ) -> tuple[ProviderApi, Collection] | Response:
        api = self.app.providers.get(provider)
        if api is None:
            return self._error(404, f"unknown provider {provider!r}")
        account = request.args.get("account") or api.default_account()
        return api, Collection(provider, account, obj)

    def _describe(self, api: ProviderApi, collection: Collection, record: Record) -> Response:
        return json_response(
            {
                "provider": collection.provider,
                "account": collection.account,
                "object": collection.object,
                "id": record.id,
                "active": bool(record.active),
                "modified": from_us(record.modified_us).isoformat(),
                "data": record.data,
                # Exactly what the provider API would return for this record.
                "rendered": json.loads(api.render_record(collection, record)),
            }
        )

    def record_upsert(self, request: Request, provider: str, obj: str) -> Response:
        target = self._target(request, provider, obj)
        if isinstance(target, Response):
            return target
        api, collection = target
        body = self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("data", {}), dict):
            return self._error(400, 'body must be {"id"?: …, "data": {…}, "active"?: bool}')
        record_id: RecordId
        if body.get("id") is not None:
            try:
                record_id = api.parse_record_id(str(body["id"]))
            except ValueError as exc:
                return self._error(400, str(exc))
        else:
            record_id = api.new_record_id(collection)
        existing = self.app.store.get(collection, record_id)
        try:
            data, active = api.prepare_record(obj, body.get("data", {}), existing)
        except (TypeError, ValueError) as exc:
            return self._error(400, f"invalid data: {exc}")
        if "active" in body:
            if not isinstance(body["active"], bool):
                return self._error(400, "active must be a boolean")
            active = body["active"]
        if active is None:
            active = bool(existing.active) if existing else True
        record = self.app.store.upsert(collection, record_id, data, active=active)
        return self._describe(api, collection, record)

    def record(self, request: Request, provider: str, obj: str, rid: str) -> Response:
        target = self._target(request, provider, obj)
        if isinstance(target, Response):
            return target
        api, collection = target
        try:
            record_id = api.parse_record_id(rid)
        except ValueError as exc:
            return self._error(400, str(exc))
        if request.method == "DELETE":
            record = self.app.store.set_active(collection, record_id, False)
        else:
            record = self.app.store.get(collection, record_id)
        if record is None:
            return self._error(404, "no such record")
        return self._describe(api, collection, record)

    def seed(self, request: Request) -> Response:
        from integrations.sandbox.seed import seed_store

        body = self._body(request)
        if not isinstance(body, dict):
            return self._error(400, "body must be a JSON object")
        records = body.get("records", 100)
        seed_value = body.get("seed", 42)
        reset = body.get("reset", False)
        if (
            not isinstance(records, int)
            or isinstance(records, bool)
            or not 0 <= records <= MAX_HTTP_SEED_RECORDS
        ):
            return self._error(400, f"records must be an integer in 0..{MAX_HTTP_SEED_RECORDS}")
        if not isinstance(seed_value, int) or not isinstance(reset, bool):
            return self._error(400, "seed must be an integer and reset a boolean")
        started = time.monotonic()
        result = seed_store(self.app.store, records=records, seed=seed_value, reset=reset)
        return json_response({**result, "seconds": round(time.monotonic() - started, 3)})
