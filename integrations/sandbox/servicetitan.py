"""ServiceTitan emulation: client-credentials token, v2 resource listing and get.

Written from the official v2 OpenAPI files (``shared/provider-specs/servicetitan/
tenant-{crm,jpm,salestech,settings,pricebook}-v2.yml``, "the spec") and the developer docs
cited inline; NOTES.md §2 summarizes both. Nothing here may import the ServiceTitan client
(STYLE.md §1).

URLs (sandbox root + path; real hosts https://api.servicetitan.io and
https://auth.servicetitan.io):

- ``POST /servicetitan-auth/connect/token``  ``grant_type=client_credentials`` only
- ``GET /servicetitan/{module}/v2/tenant/{tenant}/{resource}``  page/pageSize listing
- ``GET /servicetitan/{module}/v2/tenant/{tenant}/{resource}/{id}``  one record
- pricebook writes (``servicetitan_pricebook.py``): ``PATCH …/pricebook/v2/tenant/{t}/
  {materials|services|equipment}/{id}``, ``POST|GET …/pricebook/v2/tenant/{t}/images``
- writes (``servicetitan_writes.py``): ``PUT …/sales/v2/tenant/{t}/estimates/{id}/sell`` and
  ``…/dismiss``, ``DELETE …/estimates/{id}/items/{itemId}``, ``GET|POST …/jpm/v2/tenant/{t}/
  jobs/{id}/notes``; ``POST …/crm/v2/tenant/{t}/customers`` and ``…/locations``, ``POST
  …/jpm/v2/tenant/{t}/jobs``, ``PUT …/jobs/{id}/hold|complete|cancel|remove-cancellation``;
  the customers'/locations' name, address and phone searches and the jobs'
  ``externalDataApplicationGuid`` (``ServiceTitanJobWrites.search_list``)

Emulated resources are listed in ``servicetitan_resources.RESOURCES``: ``crm`` customers and
locations, ``jpm`` jobs, appointments and job-types, ``sales`` estimates, ``settings``
technicians, employees and business-units, ``pricebook`` categories, services, materials and
equipment, ``dispatch`` appointment-assignments (list only, filtered by ``appointmentIds``),
and (issue #5) ``crm`` bulk ``customers/contacts`` and ``locations/contacts`` (list only; a
modified filter is required), ``jpm`` projects, job-cancel-reasons and job-hold-reasons,
``settings`` tag-types, ``dispatch`` zones, teams (SPEC GAP: documented, not in the 2022
spec; ``DISPATCH_GAP_SCHEMAS``) and technician-shifts, ``pricebook``
discounts-and-fees, ``accounting`` invoices and payments (list only: the spec has no GET by
id) and ``inventory`` vendors, warehouses, purchase-orders and adjustments (SPEC GAP: no spec
file; documented paths and fields, ``INVENTORY_SCHEMAS``). Each ``ResourceSpec``
names the store object, the spec's response schema and list parameters, and which column
fields (``active``, ``modifiedOn``) the schema has; every resource lists
through the same page/pageSize/includeTotal/active/ids/sort/date-filter code.
Ids are int64 and stored as SQLite integers.

Every API call needs both the ``ST-App-Key`` header and a bearer token issued to the tenant in
the URL [spec: components.securitySchemes appKey + bearerToken; NOTES.md §2 "Auth"]. The spec
documents no body for 401/429; the sandbox answers them in the spec's ``ApiErrorResponse``
shape (RFC 7807 problem details, which is what the documented 400/404 use).

Times: ``modifiedOn``/``createdOn`` and the other date-times are UTC ("DateTime (UTC)" [spec:
CustomerResponse]), rendered ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. Filter values without an offset
are read as UTC ("… requested date (in UTC)" [spec: modifiedOnOrAfter]).
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.sandbox import accounts
from integrations.sandbox.app import (
    Endpoint,
    LimitRule,
    ProviderApi,
    Setting,
    json_response,
    json_text_response,
    oauth_client_credentials,
    splice_json_raw,
)
from integrations.sandbox.servicetitan_pricebook import ServiceTitanPricebookWrites
from integrations.sandbox.servicetitan_resources import (
    RESOURCES,
    RESOURCES_BY_OBJECT,
    ResourceSpec,
)
from integrations.sandbox.servicetitan_writes import ServiceTitanJobWrites, ServiceTitanWrites
from integrations.sandbox.store import Collection, Condition, Record, RecordId, iso_utc, to_us

PROVIDER = "servicetitan"
API_PREFIX = "/servicetitan"
TOKEN_PATH = "/servicetitan-auth/connect/token"  # noqa: S105 - a URL path, not a secret
# The real token response carries a scope string; its exact content is not documented, so the
# sandbox sends a fixed value. Clients must not depend on it.
TOKEN_SCOPE = "api"  # noqa: S105 - a scope name, not a secret

# "pageSize … (1–5000, default 50)" (https://partnerapis.servicetitan.io/docs/
# timeouts-and-pagination; NOTES.md §2 "Pagination").
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 5000
_INT64_MAX = 2**63 - 1

# RFC 7807 "type" URIs as ASP.NET Core (ServiceTitan's stack) fills them in by default.
_PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    401: "https://tools.ietf.org/html/rfc7235#section-3.1",
    403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
    405: "https://tools.ietf.org/html/rfc7231#section-6.5.5",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc7231#section-6.6.1",
    502: "https://tools.ietf.org/html/rfc7231#section-6.6.3",
    503: "https://tools.ietf.org/html/rfc7231#section-6.6.4",
    504: "https://tools.ietf.org/html/rfc7231#section-6.6.5",
}
_TITLES = {
    400: "One or more validation errors occurred.",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# sort: "?sort=+FieldName" ascending, "?sort=-FieldName" descending [spec: Customers_GetList].
# An unencoded "+" arrives as a space after query decoding, so a leading space means "+".
_SORT = re.compile(r"^(?P<sign>[+\- ]?)(?P<field>[A-Za-z]+)$")


def render_datetime(modified_us: int) -> str:
    """UTC instant as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width, so text order = time order)."""
    return iso_utc(modified_us)


def parse_datetime(text: str) -> datetime:
    """An RFC 3339/ISO 8601 date-time filter value; naive values are UTC [spec]."""
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def normalize_datetime(value: Any) -> str:
    """Stored form of a date-time field (``createdOn``) so text comparisons order by time."""
    return render_datetime(to_us(parse_datetime(str(value))))


@dataclass(frozen=True)
class TenantPrincipal:
    tenant: str
    client_id: str


class ServiceTitanApi(
    ServiceTitanPricebookWrites, ServiceTitanJobWrites, ServiceTitanWrites, ProviderApi
):
    """The ServiceTitan emulator. See the module docstring."""

    provider = PROVIDER
    settings = {
        # expires_in default: ~15 min per NOTES.md §2 [mem]; clients must honour expires_in.
        "access_token_ttl": Setting(900, 0, 86400),
        # "60 requests/second per app per tenant" (NOTES.md §2 "Rate limits").
        "rate_limit_per_second": Setting(60, 0),
    }

    def endpoints(self) -> list[tuple[Rule, Endpoint]]:
        p = PROVIDER
        base = f"{API_PREFIX}/<module>/v2/tenant/<tenant>/<resource>"
        template = f"{API_PREFIX}/{{module}}/v2/tenant/{{tenant}}/{{resource}}"
        return [
            (
                Rule(base, methods=["GET"], endpoint="st.list"),
                Endpoint(p, "api", self.list_records, template, ("module", "resource")),
            ),
            (
                Rule(f"{base}/<rid>", methods=["GET"], endpoint="st.get"),
                Endpoint(p, "api", self.get_record, f"{template}/{{id}}", ("module", "resource")),
            ),
            (
                Rule(TOKEN_PATH, methods=["POST"], endpoint="st.token"),
                Endpoint(p, "token", self.token, TOKEN_PATH),
            ),
            *self.bulk_contact_endpoints(),
            *self.write_endpoints(),
            *self.pricebook_write_endpoints(),
        ]

    def bulk_contact_endpoints(self) -> list[tuple[Rule, Endpoint]]:
        """``GET …/crm/v2/tenant/{t}/customers/contacts`` and ``…/locations/contacts``: the
        bulk contact lists, whose two-segment resource the generic rules cannot name (static
        segments win over ``<rid>`` in werkzeug's matcher, so ``…/customers/{id}`` is intact)."""
        routes = []
        for resource in ("customers/contacts", "locations/contacts"):
            template = f"{API_PREFIX}/crm/v2/tenant/{{tenant}}/{resource}"

            def handler(request: Request, tenant: str, _resource: str = resource) -> Response:
                return self.list_records(request, "crm", tenant, _resource)

            rule = Rule(
                f"{API_PREFIX}/crm/v2/tenant/<tenant>/{resource}",
                methods=["GET"],
                endpoint=f"st.bulk_{resource.replace('/', '_')}",
            )
            routes.append((rule, Endpoint(PROVIDER, "api", handler, template)))
        return routes

    def write_endpoints(self) -> list[tuple[Rule, Endpoint]]:
        p = PROVIDER
        estimate = f"{API_PREFIX}/sales/v2/tenant/<tenant>/estimates/<rid>"
        notes = f"{API_PREFIX}/jpm/v2/tenant/<tenant>/jobs/<rid>/notes"
        sales = f"{API_PREFIX}/sales/v2/tenant/{{tenant}}/estimates/{{id}}"
        notes_template = f"{API_PREFIX}/jpm/v2/tenant/{{tenant}}/jobs/{{id}}/notes"
        return [
            (
                Rule(f"{estimate}/sell", methods=["PUT"], endpoint="st.estimate_sell"),
                Endpoint(p, "api", self.sell_estimate, f"{sales}/sell"),
            ),
            (
                Rule(f"{estimate}/dismiss", methods=["PUT"], endpoint="st.estimate_dismiss"),
                Endpoint(p, "api", self.dismiss_estimate, f"{sales}/dismiss"),
            ),
            (
                Rule(
                    f"{estimate}/items/<item_id>",
                    methods=["DELETE"],
                    endpoint="st.estimate_item_delete",
                ),
                Endpoint(p, "api", self.delete_estimate_item, f"{sales}/items/{{itemId}}"),
            ),
            (
                Rule(notes, methods=["GET"], endpoint="st.job_notes"),
                Endpoint(p, "api", self.list_job_notes, notes_template),
            ),
            (
                Rule(notes, methods=["POST"], endpoint="st.job_note_create"),
                Endpoint(p, "api", self.create_job_note, notes_template),
            ),
            *self.job_write_endpoints(),
        ]

    def owns_path(self, path: str) -> bool:
        return path.startswith((f"{API_PREFIX}/", "/servicetitan-auth/"))

    # --- errors --------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        return self.problem(status, message, headers=headers)

    @staticmethod
    def problem(
        status: int,
        title: str | None = None,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """An ``ApiErrorResponse`` [spec: components.schemas.ApiErrorResponse]: all six fields
        are required there, so ``errors`` and ``data`` are sent even when empty."""
        body = {
            "type": _PROBLEM_TYPES.get(status, "about:blank"),
            "title": title or _TITLES.get(status, "Error"),
            "status": status,
            # W3C trace-context id, the form ASP.NET Core puts in problem details.
            "traceId": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
            "errors": errors or {},
            "data": {},
        }
        return json_response(body, status, headers)

    # --- auth and limits -----------------------------------------------------------------------

    def authenticate(self, request: Request, tenant: str) -> TenantPrincipal | Response:
        """Both credentials, and the token must belong to the tenant in the URL.

        The app key identifies the app for every tenant; client id/secret (hence tokens) are
        issued per tenant (https://developer.servicetitan.io/docs/faqs-app-key-client-id-secret/).
        """
        unauthorized = {"WWW-Authenticate": "Bearer"}
        app_key = request.headers.get("ST-App-Key", "")
        if not hmac.compare_digest(app_key.encode(), accounts.SERVICETITAN_APP_KEY.encode()):
            return self.problem(401, "Missing or invalid ST-App-Key header.", headers=unauthorized)
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return self.problem(401, "Missing bearer token.", headers=unauthorized)
        token = self.store.token_get(credential.strip(), kind="access", provider=PROVIDER)
        if token is None or token.expired():
            return self.problem(401, "Invalid or expired token.", headers=unauthorized)
        if token.account != tenant:
            return self.problem(401, "Token was not issued for this tenant.", headers=unauthorized)
        return TenantPrincipal(tenant=tenant, client_id=token.client_id)

    def check_rate_limit(self, principal: TenantPrincipal) -> Response | None:
        """60 requests per sliding second per (app key, tenant); 429 carries Retry-After.

        NOTES.md §2 "Rate limits": over the limit → 429, honour Retry-After (integer seconds,
        RFC 9110 §10.2.3; never 0 so a client cannot busy-loop).
        """
        self.app.stats.account_request(PROVIDER, principal.tenant)
        config = self.app.config
        if not config.enforce_rate_limits:
            return None
        rules = (LimitRule("per_second", config.get(PROVIDER, "rate_limit_per_second"), 1.0),)
        key = (PROVIDER, accounts.SERVICETITAN_APP_KEY, principal.tenant)
        hit = self.app.limiter.hit(key, rules)
        if hit is None:
            return None
        _, wait = hit
        self.app.stats.rate_limited(PROVIDER, "per_second")
        retry_after = str(max(1, math.ceil(wait)))
        return self.problem(
            429,
            "Rate limit exceeded: 60 requests per second per app per tenant.",
            headers={"Retry-After": retry_after},
        )

    def _begin(
        self, request: Request, module: str, tenant: str, resource: str
    ) -> tuple[TenantPrincipal, ResourceSpec] | Response:
        if not tenant.isdigit():
            # The spec types {tenant} as an integer; a non-numeric segment matches no route.
            return self.problem(404)
        principal = self.authenticate(request, tenant)
        if isinstance(principal, Response):
            return principal
        limited = self.check_rate_limit(principal)
        if limited is not None:
            return limited
        spec = RESOURCES.get((module, resource))
        if spec is None:
            return self.problem(404, f"{module}/{resource} is not emulated by the sandbox.")
        return principal, spec

    # --- REST ----------------------------------------------------------------------------------

    def render_record(self, collection: Collection, record: Record) -> str:
        # The store's columns, as far as the resource's schema has them (the schemas forbid
        # additional properties). Soft delete = active false; lists that take ``active`` hide
        # inactive records by default (active=True) [spec].
        spec = RESOURCES_BY_OBJECT.get(collection.object)
        head = f'"id":{int(record.id)}'
        if spec is None or spec.active_field:
            head += ',"active":true' if record.active else ',"active":false'
        if spec is None or spec.modified_field:
            head += f',"modifiedOn":"{iso_utc(record.modified_us)}"'
        return splice_json_raw(record.data_json, head)

    def list_records(self, request: Request, module: str, tenant: str, resource: str) -> Response:
        begun = self._begin(request, module, tenant, resource)
        if isinstance(begun, Response):
            return begun
        _, spec = begun
        collection = Collection(PROVIDER, tenant, spec.object)
        searched = self.search_list(request, collection, spec)  # servicetitan_writes.py
        if searched is not None:
            return searched
        query = _ListQuery.parse(request.args, spec)
        if query.errors:
            return self.problem(400, errors=query.errors)
        offset = (query.page - 1) * query.page_size
        if query.page > 1 and self.app.faults.flag(PROVIDER, "mutate_during_sync"):
            self._mutate_served(collection, query, offset)
        rows = self.store.list_offset(
            collection,
            conditions=query.conditions,
            order=query.order,
            offset=offset,
            limit=query.page_size + 1,
        )
        has_more = len(rows) > query.page_size
        rows = rows[: query.page_size]
        if self.app.faults.flag(PROVIDER, "truncate_pages"):
            # Fault: a short page that still claims more (even past the end), so a client must
            # notice short/empty pages with hasMore=true instead of paging forever.
            self.app.stats.fault(PROVIDER, "truncate_pages")
            rows = rows[: len(rows) // 2]
            has_more = True
        total = (
            self.store.count(collection, conditions=query.conditions)
            if query.include_total
            else None
        )
        data = ",".join(self.render_record(collection, r) for r in rows)
        # PaginatedResponse_Of_Crm.V2.Customers.CustomerResponse [spec]: page, pageSize (as
        # requested), hasMore, totalCount (null unless includeTotal), data.
        body = (
            f'{{"page":{query.page},"pageSize":{query.page_size},'
            f'"hasMore":{"true" if has_more else "false"},'
            f'"totalCount":{"null" if total is None else total},"data":[{data}]}}'
        )
        return json_text_response(body)

    def _mutate_served(self, collection: Collection, query: _ListQuery, offset: int) -> None:
        """Fault: edit up to 3 records from the end of the previous page.

        With the default ``Id`` order nothing moves; with ``sort=+ModifiedOn`` the edited
        records jump to the end and every later record shifts back, so an offset-paging client
        skips records: exactly the hazard this fault exists to expose.
        """
        served = self.store.list_offset(
            collection,
            conditions=query.conditions,
            order=query.order,
            offset=max(0, offset - 3),
            limit=min(3, offset),
        )
        if served:
            self.store.touch(collection, [r.id for r in served], modified_us=time.time_ns() // 1000)
            self.app.stats.fault(PROVIDER, "mutate_during_sync", len(served))

    def get_record(
        self, request: Request, module: str, tenant: str, resource: str, rid: str
    ) -> Response:
        begun = self._begin(request, module, tenant, resource)
        if isinstance(begun, Response):
            return begun
        _, spec = begun
        if not spec.has_get:
            # The spec has no ``GET …/{resource}/{id}`` for this resource: no such route.
            return self.problem(404)
        if not rid.isdigit() or int(rid) > _INT64_MAX:
            # {id} is int64 in the spec; a non-numeric id matches no route.
            return self.problem(404)
        collection = Collection(PROVIDER, tenant, spec.object)
        record = self.store.get(collection, int(rid))
        if record is None:
            return self.problem(404, spec.not_found_title)
        with_external_data = self.get_with_external_data(request, collection, record)
        if with_external_data is not None:
            return with_external_data
        return json_text_response(self.render_record(collection, record))

    # --- token ---------------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        """Client-credentials token endpoint (the only grant ServiceTitan supports:
        https://developer.servicetitan.io/docs/oauth20).

        Errors follow RFC 6749 §5.2 as IdentityServer (auth.servicetitan.io's
        ``/connect/token``) sends them: HTTP 400 with ``{"error": …}`` for every error,
        including ``invalid_client`` [mem: IdentityServer behaviour, not in ServiceTitan docs].
        """
        client_id, client_secret, _ = oauth_client_credentials(request)
        tenant = accounts.servicetitan_tenant_by_client_id(client_id or "")
        if tenant is None or not hmac.compare_digest(
            (client_secret or "").encode(), tenant.client_secret.encode()
        ):
            return self._oauth_error("invalid_client")
        grant_type = request.form.get("grant_type")
        if not grant_type:
            return self._oauth_error("invalid_request")
        if grant_type != "client_credentials":
            return self._oauth_error("unsupported_grant_type")
        ttl = self.app.config.get(PROVIDER, "access_token_ttl")
        token = self.store.token_create(
            secrets.token_hex(24),
            kind="access",
            provider=PROVIDER,
            account=tenant.tenant_id,
            client_id=tenant.client_id,
            scope=TOKEN_SCOPE,
            expires_at=time.time() + ttl,
        )
        self.app.stats.token_grant(PROVIDER, "client_credentials")
        body = {
            "access_token": token.token,
            "expires_in": int(ttl),
            "token_type": "Bearer",
            "scope": TOKEN_SCOPE,
        }
        return json_response(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _oauth_error(self, error: str) -> Response:
        self.app.stats.token_error(PROVIDER, error)
        return json_response({"error": error}, 400, {"Cache-Control": "no-store"})

    # --- control API hooks ---------------------------------------------------------------------

    def default_account(self) -> str:
        return accounts.SERVICETITAN_TENANT.tenant_id

    def parse_record_id(self, raw: str) -> RecordId:
        if not raw.isdigit() or int(raw) > _INT64_MAX:
            raise ValueError("ServiceTitan record ids are int64")
        return int(raw)

    def new_record_id(self, collection: Collection) -> RecordId:
        name = f"{collection.provider}:{collection.account}:{collection.object}"
        return self.store.counter_next(name, floor=self.store.max_int_id(collection))

    def prepare_record(
        self, obj: str, data: dict[str, Any], existing: Record | None
    ) -> tuple[dict[str, Any], bool | None]:
        data = dict(data)
        data.pop("id", None)
        data.pop("modifiedOn", None)
        active = data.pop("active", None)
        spec = RESOURCES_BY_OBJECT.get(obj)
        base = existing.data if existing else (spec.defaults() if spec else {})
        base.update(data)
        for name in spec.date_fields if spec else ("createdOn",):
            if base.get(name):
                base[name] = normalize_datetime(base[name])
        return base, None if active is None else bool(active)


@dataclass
class _ListQuery:
    """Validated list query parameters; ``errors`` is ASP.NET-style {param: [messages]}."""

    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    include_total: bool = False
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=lambda: [("id", False)])
    errors: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, args: MultiDict[str, str], spec: ResourceSpec) -> _ListQuery:
        q = cls()

        def fail(name: str, message: str) -> None:
            q.errors.setdefault(name, []).append(message)

        q.page = _int_arg(args, "page", 1, 1, 2**31 - 1, fail)
        q.page_size = _int_arg(args, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE, fail)
        include_total = args.get("includeTotal")
        if include_total is not None:
            if include_total.strip().lower() not in ("true", "false"):
                fail("includeTotal", f"The value '{include_total}' is not valid.")
            q.include_total = include_total.strip().lower() == "true"
        params = spec.params
        if "active" in params:
            # active: True | Any | False, default True [spec: ActiveQueryFilter] (Any for the
            # lists whose spec says so: ``spec.active_default``).
            active = (args.get("active") or spec.active_default).strip().lower()
            if active == "true":
                q.conditions.append(Condition("active", "eq", 1))
            elif active == "false":
                q.conditions.append(Condition("active", "eq", 0))
            elif active != "any":
                fail("active", f"The value '{args.get('active')}' is not valid.")
        if "includeInactive" in params:
            # SPEC GAP (dispatch teams, servicetitan_resources.DISPATCH_GAP_SCHEMAS): a boolean,
            # default false = active records only.
            include = (args.get("includeInactive") or "false").strip().lower()
            if include == "false":
                q.conditions.append(Condition("active", "eq", 1))
            elif include != "true":
                fail("includeInactive", f"The value '{args.get('includeInactive')}' is not valid.")
        ids = args.get("ids") if "ids" in params else None
        if ids is not None:
            parts = [p.strip() for p in ids.split(",") if p.strip()]
            if not all(p.isdigit() and int(p) <= _INT64_MAX for p in parts):
                fail("ids", f"The value '{ids}' is not a comma-separated list of ids.")
            elif len(parts) > MAX_PAGE_SIZE:
                # The spec states no maximum; the sandbox caps the list (SQLite's bound
                # parameter limit) and says so rather than failing obscurely.
                fail("ids", f"At most {MAX_PAGE_SIZE} ids per request in the sandbox.")
            else:
                q.conditions.append(Condition("id", "in", [int(p) for p in parts]))
        for name, column in spec.list_filters.items():
            raw = args.get(name)
            if raw is None or not raw.strip():
                continue
            parts = [p.strip() for p in raw.split(",") if p.strip()]
            if not all(p.isdigit() and int(p) <= _INT64_MAX for p in parts):
                fail(name, f"The value '{raw}' is not a comma-separated list of ids.")
            elif len(parts) > MAX_PAGE_SIZE:
                fail(name, f"At most {MAX_PAGE_SIZE} ids per request in the sandbox.")
            else:
                q.conditions.append(Condition(column, "in", [int(p) for p in parts]))
        for name, (column, op) in spec.date_filters.items():
            raw = args.get(name)
            if raw is None or not raw.strip():
                continue
            try:
                instant = parse_datetime(raw)
            except ValueError:
                fail(name, f"The value '{raw}' is not valid.")
                continue
            if column == "modified":
                q.conditions.append(Condition(column, op, to_us(instant)))
            else:
                # Date-time fields are stored in the fixed-width UTC form (text order = time).
                value = render_datetime(to_us(instant))
                q.conditions.append(Condition(column, op, value, cast="text"))
        for name, (column, kind) in spec.equal_filters.items():
            raw = args.get(name)
            if raw is None or not raw.strip():
                continue
            if kind is int:
                if not raw.strip().isdigit() or int(raw) > _INT64_MAX:
                    fail(name, f"The value '{raw}' is not valid.")
                    continue
                q.conditions.append(Condition(column, "eq", int(raw)))
            else:
                q.conditions.append(Condition(column, "eq", raw, cast="text"))
        sort = args.get("sort") if "sort" in params else None
        if sort is not None and sort.strip(" ") != "":
            match = _SORT.match(sort)
            column = spec.sort_fields.get(match["field"].lower()) if match else None
            if column is None:
                names = ", ".join(
                    {"id": "Id", "modified": "ModifiedOn", "data.createdOn": "CreatedOn"}[c]
                    for c in spec.sort_fields.values()
                )
                fail("sort", f"Sorting by '{sort}' is not supported ({names}).")
            else:
                q.order = [(column, match["sign"] == "-")]
        required = spec.requires_one_of
        if required and not any((args.get(name) or "").strip() for name in required):
            # "Either modifiedBefore or modifiedOnOrAfter parameter must be specified" [spec:
            # Customers_GetModifiedContactsList, Locations_GetLocationsContactsList].
            for name in required:
                fail(name, f"Either {' or '.join(required)} parameter must be specified.")
        for name in sorted(spec.unemulated_filters & set(args)):
            fail(name, "This filter is documented but not emulated by the sandbox.")
        return q


def _int_arg(
    args: MultiDict[str, str],
    name: str,
    default: int,
    lo: int,
    hi: int,
    fail: Callable[[str, str], None],
) -> int:
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        fail(name, f"The value '{raw}' is not valid.")
        return default
    if not lo <= value <= hi:
        fail(name, f"The field {name} must be between {lo} and {hi}.")
        return default
    return value
