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
  (sales `estimates`, line items embedded as `items`). Between clients and staff: locations
  (crm `locations`), contacts (the contact *methods* of crm `customers/contacts` and
  `locations/contacts`, one Contact each: see mapping_reference.py) and the reference
  entities (ReferenceRecord, one kind each, external ids "<kind>:<id>"): business units,
  job types, tag types, zones, cancel and hold reasons, projects; technician shifts come
  after staff. SPEC GAP: dispatch `teams` (a ReferenceRecord kind "team") are read from
  ServiceTitan's documented `GET dispatch/v2/tenant/{t}/teams` and `…/teams/{id}` (Team_GetList,
  Team_Get; `Dispatch.V2.TeamResponse` {id, active, name, createdBy, createdOn, modifiedOn};
  list params page, pageSize, includeTotal, includeInactive, created/modified date filters,
  sort [3p: TS types generated from ServiceTitan's current dispatch spec]), absent from the 2022
  tenant-dispatch-v2.yml: `includeInactive=true` (instead of `active=Any`) so deactivated
  teams come through, `modifiedOnOrAfter` on incremental runs.
  The bulk contact lists *require* `modifiedOnOrAfter` or `modifiedBefore` ("Either … must
  be specified", spec: Customers_GetModifiedContactsList, Locations_GetLocationsContactsList),
  so a full read asks for everything modified on or after FULL_READ_SINCE.
- Incremental reads: `modifiedOnOrAfter` (inclusive, UTC), with `active=Any` where the list
  takes `active` (ActiveQueryFilter: True | Any | False, default True) so deactivations come
  through. Jobs and appointments have no `active` (their lists do not declare it either: they
  are cancelled, and a deleted appointment disappears, caught by a full run's sweep).
  Appointment assignments have no modified filter (tenant-dispatch-v2.yml): a reassignment
  that does not touch the appointment's `modifiedOn` is only seen by the next full run.
  Lists without `modifiedOnOrAfter` (tag types, zones, cancel and hold reasons, technician
  shifts) are read whole by incremental runs too (they are short; unchanged rows are not
  rewritten); what they drop is marked deleted by a full run's sweep (see `resources`).
- One record: `GET …/{resource}/{id}`; 404 means it is gone. Tag types, reasons and contact
  methods have no GET by id in the specs, so they have no targeted re-fetch.
- After quotes (issue #5; `READS` maps, types and sweep scopes them): the pricebook
  (tenant-pricebook-v2.yml) `categories` (a tree: nested `subcategories` flattened, parents
  first, in one page; the list takes neither `active` nor a modified filter, so every run
  reads it whole), then `materials`, `services`, `equipment` and `discounts-and-fees`
  (PricebookItem kinds material/service/equipment/discount_fee, external ids "<kind>:<id>",
  each its own entity swept by kind); accounting (tenant-accounting-v2.yml) `invoices` (their
  `items` in the same mapped tuple) and `payments` (neither list takes `active`, neither has a
  GET by id: one record is read with `?ids=`; payments and discounts/fees have no
  `modifiedOn` in the 2022 schemas, so their cursors never advance and every run reads them
  all); inventory `vendors`, `warehouses`, `purchase-orders`, `adjustments` (ReferenceRecord
  kinds vendor/warehouse/purchase_order/inventory_adjustment). SPEC GAP: there is no
  inventory spec file; the paths and fields are ServiceTitan's documented Inventory API
  (mapping_accounting.py) and one record is read with `?ids=` (a GET by id is unconfirmed).
- Writes (outbox actions, writes.py): `quote.decide` sells (`PUT sales/…/estimates/{id}/sell`,
  soldBy = `config["sold_by_technician_id"]`) or dismisses (`…/dismiss`) an estimate, deleting
  the items a partial approval left out first, and leaves a note on the estimate's job;
  `pricebook.update` PATCHes a material, service or equipment item and `pricebook.image`
  uploads an image and attaches it as the item's asset (writes_pricebook.py); `job.create`
  finds or creates a booking's customer and location and creates its job (`POST jpm/…/jobs`,
  marked with our externalData), `job.status` holds, completes, cancels or un-cancels a job
  (`PUT jpm/…/jobs/{id}/hold|complete|cancel|remove-cancellation`) (writes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from integrations.auth import Auth, ClientCredentialsAuth
from integrations.base import (
    AccountInfo,
    Capability,
    ExternalContact,
    ExternalInvoice,
    ExternalInvoiceItem,
    ExternalLocation,
    ExternalPayment,
    ExternalPricebookCategory,
    ExternalPricebookItem,
    ExternalRecord,
    ExternalReference,
    Provider,
)
from integrations.conf import integration_setting
from integrations.exceptions import ProviderAuthError, ProviderNotFoundError
from integrations.providers.servicetitan import (
    mapping,
    mapping_accounting,
    mapping_pricebook,
    writes,
    writes_pricebook,
)
from integrations.providers.servicetitan import mapping_reference as refs
from integrations.providers.servicetitan.client import MAX_PAGE_SIZE, ServiceTitanClient
from integrations.ratelimit import RateWindow

# Appointments are read this many a page: their ids go into one `appointmentIds` query string,
# which has to stay short enough for any front end (IIS refuses query strings over 2 KB by
# default); 150 int64 ids with URL-encoded commas are under that.
APPOINTMENT_PAGE_SIZE = 150
ASSIGNMENTS = ("dispatch", "appointment-assignments")
# A full read of a list that requires a modified filter (the bulk contact lists) asks for
# everything modified since this instant, older than any ServiceTitan tenant's data.
FULL_READ_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
# `locations?ids=` takes at most 50 ids ("Perform lookup by multiple IDs (maximum 50)",
# spec: Locations_GetList).
LOCATION_IDS_PER_CALL = 50
LOCATION_CONTACTS = ("crm", "locations/contacts")


@dataclass(frozen=True)
class Read:
    """How the records of an entity beyond the core five are mapped and swept."""

    mapper: Callable[[dict], ExternalRecord | tuple[ExternalRecord, ...]]
    record_types: tuple[type[ExternalRecord], ...]
    # Limits a full run's sweep to this entity's rows of a table several entities write.
    sweep_scope: tuple[tuple[str, str], ...] = ()


def _item_read(kind: str) -> Read:
    return Read(mapping_pricebook.ITEM_MAPPERS[kind], (ExternalPricebookItem,), (("kind", kind),))


def _inventory_read(kind: str) -> Read:
    return Read(mapping_accounting.INVENTORY_MAPPERS[kind], (ExternalReference,), (("kind", kind),))


# Pricebook, accounting and inventory entities (issue #5).
READS: dict[str, Read] = {
    "pricebook_categories": Read(
        mapping_pricebook.category_to_category, (ExternalPricebookCategory,)
    ),
    "pricebook_materials": _item_read("material"),
    "pricebook_services": _item_read("service"),
    "pricebook_equipment": _item_read("equipment"),
    "pricebook_discounts_fees": _item_read("discount_fee"),
    "invoices": Read(mapping_accounting.invoice_to_records, (ExternalInvoice, ExternalInvoiceItem)),
    "payments": Read(mapping_accounting.payment_to_payment, (ExternalPayment,)),
    "inventory_vendors": _inventory_read("vendor"),
    "inventory_warehouses": _inventory_read("warehouse"),
    "inventory_purchase_orders": _inventory_read("purchase_order"),
    "inventory_adjustments": _inventory_read("inventory_adjustment"),
}
# CRM locations and contact methods, and the reference entities (mapping_reference.py).
READS.update(
    locations=Read(refs.location_to_location, (ExternalLocation,)),
    contacts=Read(refs.contact_to_contact, (ExternalContact,)),
    **{
        entity: Read(refs.REFERENCE_MAPPERS[entity], (ExternalReference,), (("kind", kind),))
        for entity, kind in refs.REFERENCE_KINDS.items()
    },
)


@dataclass(frozen=True)
class Resource:
    """One ServiceTitan list/get endpoint an entity reads."""

    module: str
    path: str
    # The list declares `active` (ActiveQueryFilter), so we pass Any to see deactivations.
    has_active: bool = True
    # Prefix of the external ids of its records (ids must be unique within an entity).
    id_prefix: str = ""
    # The list refuses a request without a modified filter (the bulk contact lists).
    requires_modified: bool = False
    # Neither a GET by id nor `ids` on the list (tag types, reasons, contact methods): no
    # targeted re-fetch of one record.
    fetchable: bool = True
    # The list declares `modifiedOnOrAfter` (pricebook categories do not: always a full read).
    has_modified_filter: bool = True
    # The spec has `GET …/{resource}/{id}`; without it one record is read as `?ids={id}`.
    has_get: bool = True
    # The list hides inactive records unless `includeInactive=true` (dispatch teams), the
    # boolean counterpart of `active=Any`.
    include_inactive: bool = False


class ServiceTitanProvider(Provider):
    key = "servicetitan"
    name = "ServiceTitan"
    docs_url = "https://developer.servicetitan.io/"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.READ_CLIENTS,
            Capability.READ_STAFF,
            Capability.READ_CONTACTS,
            Capability.READ_LOCATIONS,
            Capability.READ_JOBS,
            Capability.READ_QUOTES,
            Capability.READ_PRICEBOOK,
            Capability.WRITE_QUOTE_DECISION,
            Capability.WRITE_PRICEBOOK,
            Capability.WRITE_JOB_CREATE,
            Capability.WRITE_JOB_STATUS,
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
        # tenant-crm-v2.yml. Contact methods: neither bulk list takes `active` (the schemas
        # have none: a removed method leaves the list, caught by a full run's sweep), both
        # require a modified filter, neither has a GET by id (only per customer/location).
        "locations": (Resource("crm", "locations"),),
        "contacts": (
            Resource(
                "crm",
                "customers/contacts",
                has_active=False,
                requires_modified=True,
                fetchable=False,
            ),
            Resource(
                "crm",
                "locations/contacts",
                has_active=False,
                requires_modified=True,
                fetchable=False,
                id_prefix=refs.LOCATION_CONTACT_PREFIX,
            ),
        ),
        # Reference records (ReferenceRecord, external ids "<kind>:<id>"), per their specs:
        # business-units (settings): active, modifiedOnOrAfter, GET by id.
        "business_units": (Resource("settings", "business-units", id_prefix="business_unit:"),),
        # job-types (jpm): the list takes `active` but JobTypeResponse has no such field, so
        # with Any a deactivated type could not be told apart: the default (active only) is
        # kept, a deactivated type leaves the list and a full run's sweep marks it deleted.
        "job_types": (Resource("jpm", "job-types", has_active=False, id_prefix="job_type:"),),
        # tag-types (settings): `active` only, no modified filter, no GET by id nor `ids`.
        "tag_types": (
            Resource(
                "settings",
                "tag-types",
                id_prefix="tag_type:",
                has_modified_filter=False,
                fetchable=False,
            ),
        ),
        # zones (dispatch): no filter at all (page/pageSize only), GET by id.
        "zones": (
            Resource(
                "dispatch", "zones", has_active=False, id_prefix="zone:", has_modified_filter=False
            ),
        ),
        # SPEC GAP: tenant-dispatch-v2.yml has no teams endpoint; documented Team_GetList /
        # Team_Get (module docstring): includeInactive (not `active`), modifiedOnOrAfter, GET
        # by id.
        "teams": (
            Resource(
                "dispatch", "teams", has_active=False, id_prefix="team:", include_inactive=True
            ),
        ),
        # job-cancel-reasons / job-hold-reasons (jpm): `active` only (cancel reasons list
        # active and inactive by default), no modified filter, no GET by id nor `ids`.
        # (`jobs/cancel-reasons?ids=` is the reasons given on specific jobs, not the list.)
        "cancel_reasons": (
            Resource(
                "jpm",
                "job-cancel-reasons",
                id_prefix="cancel_reason:",
                has_modified_filter=False,
                fetchable=False,
            ),
        ),
        "hold_reasons": (
            Resource(
                "jpm",
                "job-hold-reasons",
                id_prefix="hold_reason:",
                has_modified_filter=False,
                fetchable=False,
            ),
        ),
        # projects (jpm): modifiedOnOrAfter, no `active` (nor in ProjectResponse), GET by id.
        "projects": (Resource("jpm", "projects", has_active=False, id_prefix="project:"),),
        "staff": (
            Resource("settings", "technicians"),
            Resource("settings", "employees", id_prefix=mapping.EMPLOYEE_PREFIX),
        ),
        # technician-shifts (dispatch): no `active` filter (the schema has `active`, and the
        # list is assumed to return disabled shifts too [mem]), no modified filter (nor
        # modifiedOn), GET by id. After staff: a shift names its technician.
        "technician_shifts": (
            Resource(
                "dispatch",
                "technician-shifts",
                has_active=False,
                id_prefix="technician_shift:",
                has_modified_filter=False,
            ),
        ),
        "jobs": (Resource("jpm", "jobs", has_active=False),),
        "appointments": (Resource("jpm", "appointments", has_active=False),),
        "quotes": (Resource("sales", "estimates"),),
        # Pricebook (tenant-pricebook-v2.yml), categories before the items that name them.
        "pricebook_categories": (
            Resource("pricebook", "categories", has_active=False, has_modified_filter=False),
        ),
        "pricebook_materials": (Resource("pricebook", "materials", id_prefix="material:"),),
        "pricebook_services": (Resource("pricebook", "services", id_prefix="service:"),),
        "pricebook_equipment": (Resource("pricebook", "equipment", id_prefix="equipment:"),),
        "pricebook_discounts_fees": (
            Resource("pricebook", "discounts-and-fees", id_prefix="discount_fee:"),
        ),
        # Accounting (tenant-accounting-v2.yml): neither list takes `active`, neither has a
        # GET by id (only PATCH), so one record is read through the list's `ids`.
        "invoices": (Resource("accounting", "invoices", has_active=False, has_get=False),),
        "payments": (Resource("accounting", "payments", has_active=False, has_get=False),),
        # SPEC GAP: no inventory spec file; documented paths (mapping_accounting docstring),
        # read with the list's `ids` for one record (a GET by id is not confirmed).
        "inventory_vendors": (
            Resource("inventory", "vendors", id_prefix="vendor:", has_get=False),
        ),
        "inventory_warehouses": (
            Resource("inventory", "warehouses", id_prefix="warehouse:", has_get=False),
        ),
        "inventory_purchase_orders": (
            Resource(
                "inventory",
                "purchase-orders",
                has_active=False,
                id_prefix="purchase_order:",
                has_get=False,
            ),
        ),
        "inventory_adjustments": (
            Resource("inventory", "adjustments", id_prefix="inventory_adjustment:", has_get=False),
        ),
    }
    entities = tuple(resources)
    # modifiedOnOrAfter is inclusive and compares ServiceTitan's own UTC stamps (sub-second),
    # so the lookback only has to cover writes that become visible late: the base's 5 minutes.
    cursor_lookback_seconds: ClassVar[int] = 300

    unapproved_items_modes = writes.UNAPPROVED_ITEMS_MODES

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
            if resource.include_inactive:
                params["includeInactive"] = "true"
            if updated_since is not None and resource.has_modified_filter:
                params["modifiedOnOrAfter"] = updated_since.astimezone(UTC).isoformat()
            elif resource.requires_modified:
                params["modifiedOnOrAfter"] = FULL_READ_SINCE.isoformat()
            pages = client.iter_pages(
                self.path(resource.module, resource.path),
                params=params,
                page_size=page_size,
                max_pages=self.max_pages,
            )
            if entity == "appointments":
                pages = (self._with_assignments(page) for page in pages)
            if (resource.module, resource.path) == LOCATION_CONTACTS:
                pages = (self._with_location_customers(page) for page in pages)
            if entity == "pricebook_categories":
                # The whole tree as one page: each category once, parents first.
                flat = mapping_pricebook.flatten_categories(r for page in pages for r in page)
                pages = iter([flat] if flat else [])
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

    def _with_location_customers(self, contacts: list[dict]) -> list[dict]:
        """The page's location contacts, each with its location's `customerId` under
        `_customerId` (None when the location is not found): `locations?ids=…&active=Any`, 50
        ids a call (the spec's maximum). A contact whose `locationId` is not an integer (the
        spec's type: Crm.V2.LocationsContactResponse.locationId, int64) is not looked up: it
        keeps `_customerId` None and is mapped on its own, so one bad record never fails the
        whole page."""
        ids = sorted({i for c in contacts if (i := _int_id(c.get("locationId"))) is not None})
        customers: dict[int, int | None] = {}
        for start in range(0, len(ids), LOCATION_IDS_PER_CALL):
            chunk = ids[start : start + LOCATION_IDS_PER_CALL]
            for page in self.get_client().iter_pages(
                self.path("crm", "locations"),
                params={"ids": ",".join(map(str, chunk)), "active": "Any"},
                page_size=LOCATION_IDS_PER_CALL,
                max_pages=self.max_pages,
            ):
                for location in page:
                    customers[location.get("id")] = location.get("customerId")
        return [
            {**c, refs.LOCATION_CUSTOMER_KEY: customers.get(_int_id(c.get("locationId")))}
            for c in contacts
        ]

    def estimated_total(self, entity: str) -> int | None:
        """The list endpoints count for us (`includeTotal=true` -> `totalCount`): one call per
        resource the entity reads, with the same filters as a full read (`pages`)."""
        client = self.get_client()
        total = 0
        for resource in self._resources(entity):
            params: dict = {"active": "Any"} if resource.has_active else {}
            if resource.include_inactive:
                params["includeInactive"] = "true"
            if resource.requires_modified:
                params["modifiedOnOrAfter"] = FULL_READ_SINCE.isoformat()
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
        if entity in READS:
            return READS[entity].mapper(raw)
        raise ValueError(f"servicetitan cannot map {entity}")

    def record_types(self, entity: str) -> tuple[type[ExternalRecord], ...]:
        if entity in READS:
            return READS[entity].record_types
        return super().record_types(entity)

    def sweep_scope(self, entity: str, record_type: type[ExternalRecord]) -> dict:
        if entity in READS:
            return dict(READS[entity].sweep_scope)
        return super().sweep_scope(entity, record_type)

    def record_id(self, entity: str, raw: dict) -> str:
        if entity == "staff" and mapping.is_employee(raw):
            return mapping.employee_id(raw)
        if entity == "contacts" and refs.is_location_contact(raw):
            return refs.location_contact_id(raw)
        resources = self.resources.get(entity, ())
        if len(resources) == 1 and resources[0].id_prefix and raw.get("id") is not None:
            return f"{resources[0].id_prefix}{raw['id']}"
        return super().record_id(entity, raw)

    def fetch_record(self, entity: str, external_id: str) -> dict | None:
        """`GET /{module}/v2/tenant/{t}/{resource}/{id}`; None on 404 (Estimates_Get documents
        no 404, but answers one for an unknown id like the others). A staff id with the
        employee prefix is read from employees, a bare one from technicians. A reference's id
        must carry its "<kind>:" prefix (stripped for the URL); tag types, reasons and contact
        methods cannot be re-fetched one by one (ValueError)."""
        resources = self._resources(entity)
        resource = resources[0]
        prefixed = False
        for candidate in resources:
            if candidate.id_prefix and external_id.startswith(candidate.id_prefix):
                resource, external_id = candidate, external_id[len(candidate.id_prefix) :]
                prefixed = True
        if entity in refs.REFERENCE_KINDS and not prefixed:
            # A reference's external id is "<kind>:<id>"; a bare id is some other record's.
            raise ValueError(f"servicetitan {entity} ids are {resource.id_prefix}<id>")
        if not resource.fetchable:
            raise ValueError(
                f"servicetitan cannot re-fetch one of {resource.path}: the spec has neither a "
                "GET by id nor an `ids` filter"
            )
        if not (external_id.isascii() and external_id.isdigit()):
            raise ValueError(f"servicetitan ids are integers, not {external_id!r}")
        if not resource.has_get:
            return self._fetch_by_ids(resource, external_id)
        try:
            record = self.get_client().get_record(
                self.path(resource.module, f"{resource.path}/{external_id}")
            )
        except ProviderNotFoundError:
            return None
        if entity == "appointments":
            return self._with_assignments([record])[0]
        return record

    def _fetch_by_ids(self, resource: Resource, external_id: str) -> dict | None:
        """One record of a list without `GET …/{id}`: `?ids={id}` (with `active=Any` where the
        list takes it, so a deactivated record is found rather than taken for gone)."""
        params: dict = {"ids": external_id}
        if resource.has_active:
            params["active"] = "Any"
        for page in self.get_client().iter_pages(
            self.path(resource.module, resource.path), params=params, page_size=50, max_pages=1
        ):
            for record in page:
                if str(record.get("id")) == external_id:
                    return record
        return None

    # Outbox actions (see writes.py for how each is made safe to deliver twice).
    actions: ClassVar[dict[str, str]] = {
        "quote.decide": "quote_decide",
        "job.create": "job_create",
        "job.status": "job_status",
        "pricebook.update": "pricebook_update",
        "pricebook.image": "pricebook_image",
    }
    # kind -> {field: "decimal" | "text" | "bool"}: what `pricebook.update` may change (the
    # portal's service validates against it before anything is queued).
    pricebook_changeable: ClassVar[dict[str, dict[str, str]]] = writes_pricebook.CHANGEABLE
    pricebook_image_types: ClassVar[frozenset[str]] = frozenset(writes_pricebook.IMAGE_TYPES)

    def quote_decide(self, payload: dict, *, idempotency_key: str) -> dict:
        return writes.quote_decide(self, payload, idempotency_key=idempotency_key)

    def job_create(self, payload: dict, *, idempotency_key: str) -> dict:
        return writes.job_create(self, payload, idempotency_key=idempotency_key)

    def job_status(self, payload: dict, *, idempotency_key: str) -> dict:
        return writes.job_status(self, payload, idempotency_key=idempotency_key)

    def pricebook_update(self, payload: dict, *, idempotency_key: str) -> dict:
        return writes_pricebook.pricebook_update(self, payload, idempotency_key=idempotency_key)

    def pricebook_image(self, payload: dict, *, idempotency_key: str) -> dict:
        return writes_pricebook.pricebook_image(self, payload, idempotency_key=idempotency_key)


def _int_id(value: object) -> int | None:
    """An integer id (int, or a string of digits), else None (bool, float, text, null)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None
