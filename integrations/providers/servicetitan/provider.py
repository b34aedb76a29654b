"""ServiceTitan provider.

- API docs: https://developer.servicetitan.io/ ; OpenAPI: shared/provider-specs/servicetitan.
- Auth: OAuth2 client credentials (client id and secret issued per tenant) from
  https://auth.servicetitan.io/connect/token, plus the app's `ST-App-Key` header on every call
  (https://developer.servicetitan.io/docs/get-going-first-api-call). The app key identifies
  our app for every tenant: it comes from the credentials or SERVICETITAN_APP_KEY.
- Environments: production (api/auth.servicetitan.io) and ServiceTitan's integration
  environment (api-integration/auth-integration), chosen by Integration.environment.
- Rate limit: 60 requests a second per app per tenant; 429 with Retry-After.
- Entities, in dependency order: clients (crm `customers`), staff (settings `technicians`,
  then `employees`, whose ids are prefixed "employee:" as the two id ranges may overlap), jobs
  (jpm `jobs`), appointments (jpm `appointments`: the jobs' visits, each with its technicians
  from dispatch `appointment-assignments`, asked for by `appointmentIds` with one call per
  page of appointments and added to the appointment's payload as `_assignments`) and quotes
  (sales `estimates`, line items embedded as `items`). Contacts are
  not read: the bulk `crm/…/customers/contacts` list returns phone numbers and e-mail
  addresses (type + value), not people, and the sandbox does not serve it yet.
- Incremental reads: `modifiedOnOrAfter` (inclusive, UTC), with `active=Any` where the list
  takes `active` (ActiveQueryFilter: True | Any | False, default True) so deactivations come
  through. Jobs and appointments have no `active` (their lists do not declare it either: they
  are cancelled, and a deleted appointment disappears, caught by a full run's sweep).
  Appointment assignments have no modified filter (tenant-dispatch-v2.yml): a reassignment
  that does not touch the appointment's `modifiedOn` is only seen by the next full run.
- One record: `GET …/{resource}/{id}`; 404 means it is gone.
- Writes (outbox actions, writes.py): `quote.decide` sells (`PUT sales/…/estimates/{id}/sell`,
  soldBy = `config["sold_by_technician_id"]`) or dismisses (`…/dismiss`) an estimate, deleting
  the items a partial approval left out first, and leaves a note on the estimate's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from integrations.auth import Auth, ClientCredentialsAuth
from integrations.base import AccountInfo, Capability, ExternalRecord, Provider
from integrations.conf import integration_setting
from integrations.exceptions import ProviderAuthError, ProviderNotFoundError
from integrations.providers.servicetitan import mapping, writes
from integrations.providers.servicetitan.client import MAX_PAGE_SIZE, ServiceTitanClient
from integrations.ratelimit import RateWindow

# Appointments are read this many a page: their ids go into one `appointmentIds` query string,
# which has to stay short enough for any front end (IIS refuses query strings over 2 KB by
# default); 150 int64 ids with URL-encoded commas are under that.
APPOINTMENT_PAGE_SIZE = 150
ASSIGNMENTS = ("dispatch", "appointment-assignments")


@dataclass(frozen=True)
class Resource:
    """One ServiceTitan list/get endpoint an entity reads."""

    module: str
    path: str
    # The list declares `active` (ActiveQueryFilter), so we pass Any to see deactivations.
    has_active: bool = True
    # Prefix of the external ids of its records (ids must be unique within an entity).
    id_prefix: str = ""


class ServiceTitanProvider(Provider):
    key = "servicetitan"
    name = "ServiceTitan"
    docs_url = "https://developer.servicetitan.io/"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.READ_CLIENTS,
            Capability.READ_STAFF,
            Capability.READ_JOBS,
            Capability.READ_QUOTES,
            Capability.WRITE_QUOTE_DECISION,
        }
    )
    client_class = ServiceTitanClient
    rate_limits = (RateWindow(60, 1),)
    environments: ClassVar[dict[str, dict[str, str]]] = {
        "production": {
            "api": "https://api.servicetitan.io",
            "token": "https://auth.servicetitan.io/connect/token",
        },
        "sandbox": {
            "api": "https://api-integration.servicetitan.io",
            "token": "https://auth-integration.servicetitan.io/connect/token",
        },
    }
    credential_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "client_credentials": ("tenant_id", "client_id", "client_secret"),
    }
    permission_hint = (
        "the app is not enabled for this tenant's API scope (CRM, Job Planning, Sales…), or the "
        "tenant's plan does not include it; ask the tenant's admin to grant the app access."
    )
    # entity -> the resources it reads, in dependency order. Parameters per the specs
    # (tenant-{crm,settings,jpm,salestech}-v2.yml, each list operation's `parameters`).
    resources: ClassVar[dict[str, tuple[Resource, ...]]] = {
        "clients": (Resource("crm", "customers"),),
        "staff": (
            Resource("settings", "technicians"),
            Resource("settings", "employees", id_prefix=mapping.EMPLOYEE_PREFIX),
        ),
        "jobs": (Resource("jpm", "jobs", has_active=False),),
        "appointments": (Resource("jpm", "appointments", has_active=False),),
        "quotes": (Resource("sales", "estimates"),),
    }
    entities = tuple(resources)
    # modifiedOnOrAfter is inclusive and compares ServiceTitan's own UTC stamps (sub-second),
    # so the lookback only has to cover writes that become visible late: the base's 5 minutes.
    cursor_lookback_seconds: ClassVar[int] = 300

    @classmethod
    def override_urls(cls, root: str) -> dict[str, str]:
        return {"api": f"{root}/servicetitan", "token": f"{root}/servicetitan-auth/connect/token"}

    @property
    def tenant(self) -> str:
        return str(self.context.credentials.get("tenant_id", ""))

    def build_auth(self) -> Auth:
        credentials = self.context.credentials
        app_key = credentials.get("app_key") or integration_setting(self.key, "APP_KEY", "")
        if not app_key:
            raise ProviderAuthError(
                "servicetitan: no ST-App-Key: set SERVICETITAN_APP_KEY or the app_key credential",
                provider=self.key,
            )
        return ClientCredentialsAuth(
            provider=self.key,
            store=self.context.token_store,
            token_url=self.urls()["token"],
            client_id=credentials.get("client_id", ""),
            client_secret=credentials.get("client_secret", ""),
            extra_headers={"ST-App-Key": app_key},
        )

    def path(self, module: str, resource: str) -> str:
        return f"{module}/v2/tenant/{self.tenant}/{resource}"

    def probe(self) -> AccountInfo:
        # One customer: the cheapest authenticated read of a scope every integration needs.
        self.get_client().get(
            self.path("crm", "customers"), params={"pageSize": 1}, use_cache=False
        ).json()
        return AccountInfo(account_id=self.tenant, name=f"tenant {self.tenant}")

    def _resources(self, entity: str) -> tuple[Resource, ...]:
        try:
            return self.resources[entity]
        except KeyError:
            raise ValueError(f"servicetitan does not read {entity}") from None

    def pages(self, entity: str, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        client = self.get_client()
        page_size = int(self.context.config.get("page_size") or MAX_PAGE_SIZE)
        if entity == "appointments":
            page_size = min(page_size, APPOINTMENT_PAGE_SIZE)
        for resource in self._resources(entity):
            params: dict = {"active": "Any"} if resource.has_active else {}
            if updated_since is not None:
                params["modifiedOnOrAfter"] = updated_since.astimezone(UTC).isoformat()
            pages = client.iter_pages(
                self.path(resource.module, resource.path),
                params=params,
                page_size=page_size,
                max_pages=self.max_pages,
            )
            if entity == "appointments":
                pages = (self._with_assignments(page) for page in pages)
            yield from pages

    def _with_assignments(self, appointments: list[dict]) -> list[dict]:
        """The page's appointments, each with its technician assignments under `_assignments`
        (sorted by id, so an unchanged appointment keeps an unchanged payload): one
        `appointment-assignments?appointmentIds=…` read for the whole page."""
        ids = sorted({int(a["id"]) for a in appointments if a.get("id") is not None})
        by_appointment: dict[int, list[dict]] = {i: [] for i in ids}
        if ids:
            for page in self.get_client().iter_pages(
                self.path(*ASSIGNMENTS),
                params={"appointmentIds": ",".join(map(str, ids))},
                page_size=MAX_PAGE_SIZE,
                max_pages=self.max_pages,
            ):
                for assignment in page:
                    appointment_id = assignment.get("appointmentId")
                    if appointment_id in by_appointment:
                        by_appointment[appointment_id].append(assignment)
        return [
            {
                **a,
                mapping.ASSIGNMENTS_KEY: sorted(
                    by_appointment.get(a.get("id"), []), key=lambda x: x.get("id") or 0
                ),
            }
            for a in appointments
        ]

    def estimated_total(self, entity: str) -> int | None:
        """The list endpoints count for us (`includeTotal=true` -> `totalCount`): one call per
        resource the entity reads, with the same filters as a full read (`pages`)."""
        client = self.get_client()
        total = 0
        for resource in self._resources(entity):
            params: dict = {"active": "Any"} if resource.has_active else {}
            count = client.total_count(self.path(resource.module, resource.path), params=params)
            if count is None:
                return None
            total += count
        return total

    def map_record(self, entity: str, raw: dict) -> ExternalRecord:
        match entity:
            case "clients":
                return mapping.customer_to_client(raw)
            case "staff":
                if mapping.is_employee(raw):
                    return mapping.employee_to_staff(raw)
                return mapping.technician_to_staff(raw)
            case "jobs":
                return mapping.job_to_job(raw)
            case "appointments":
                return mapping.appointment_to_activity(raw)
            case "quotes":
                return mapping.estimate_to_quote(raw)
        raise ValueError(f"servicetitan cannot map {entity}")

    def record_id(self, entity: str, raw: dict) -> str:
        if entity == "staff" and mapping.is_employee(raw):
            return mapping.employee_id(raw)
        return super().record_id(entity, raw)

    def fetch_record(self, entity: str, external_id: str) -> dict | None:
        """`GET /{module}/v2/tenant/{t}/{resource}/{id}`; None on 404 (Estimates_Get documents
        no 404, but answers one for an unknown id like the others). A staff id with the
        employee prefix is read from employees, a bare one from technicians."""
        resources = self._resources(entity)
        resource = resources[0]
        for candidate in resources:
            if candidate.id_prefix and external_id.startswith(candidate.id_prefix):
                resource, external_id = candidate, external_id[len(candidate.id_prefix) :]
        if not external_id.isdigit():
            raise ValueError(f"servicetitan ids are integers, not {external_id!r}")
        try:
            record = self.get_client().get_record(
                self.path(resource.module, f"{resource.path}/{external_id}")
            )
        except ProviderNotFoundError:
            return None
        if entity == "appointments":
            return self._with_assignments([record])[0]
        return record

    # Outbox actions (see writes.py for how each is made safe to deliver twice).
    actions: ClassVar[dict[str, str]] = {"quote.decide": "quote_decide"}

    def quote_decide(self, payload: dict, *, idempotency_key: str) -> dict:
        return writes.quote_decide(self, payload, idempotency_key=idempotency_key)
