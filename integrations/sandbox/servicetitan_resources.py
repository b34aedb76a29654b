"""The ServiceTitan resources the sandbox emulates: one ``ResourceSpec`` per list/get endpoint.

Each spec is read off the official 2022 OpenAPI files (``shared/provider-specs/servicetitan/
tenant-{crm,jpm,salestech,settings,pricebook}-v2.yml``): the URL module and resource, the
response schema, the query parameters the list operation declares, and which of the three
fields the store keeps as columns (``id``, ``active``, ``modifiedOn``) the schema has. The
response schemas say ``additionalProperties: false``, so a field the schema lacks is never
rendered: jobs, appointments, job types and contacts have no ``active``, pricebook categories
no ``modifiedOn``, appointment assignments (``tenant-dispatch-v2.yml``) neither. Optional
fields the spec declares as ``oneOf`` + ``nullable`` without a ``type``
(``jobGeneratedLeadSource``, ``primaryVendor``, ``primarySubAccount``, ``warranty``, ``home``,
business units' ``address``/``tenant``) are omitted rather than sent as null: OpenAPI
3.0.3 only lets ``nullable`` add null to an explicit ``type``, so a validator refuses null there.

List parameters: a parameter the spec does not declare for a resource is ignored (as ASP.NET
does); a declared one is either emulated (paging, ``active``, ``ids``, ``sort``, the date
filters and equality filters below) or refused with 400, never silently ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from integrations.sandbox.store import iso_utc

# Query parameters every list operation handles the same way.
PAGING_PARAMS = frozenset({"page", "pageSize", "includeTotal"})

MODIFIED_FILTERS: Mapping[str, tuple[str, str]] = {
    "modifiedOnOrAfter": ("modified", "ge"),
    "modifiedBefore": ("modified", "lt"),
}
CREATED_FILTERS: Mapping[str, tuple[str, str]] = {
    "createdOnOrAfter": ("data.createdOn", "ge"),
    "createdBefore": ("data.createdOn", "lt"),
}
# "Available fields are: Id, ModifiedOn, CreatedOn." [spec: sort on customers/locations/jobs]
SORT_ID_MODIFIED_CREATED: Mapping[str, str] = {
    "id": "id",
    "modifiedon": "modified",
    "createdon": "data.createdOn",
}
# "Available fields are: Id" [spec: sort on pricebook materials/services/equipment].
SORT_ID: Mapping[str, str] = {"id": "id"}


def _now_text() -> str:
    return iso_utc(time.time_ns() // 1000)


def _params(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True)
class ResourceSpec:
    """An emulated ServiceTitan list/get resource.

    ``date_filters`` map a query parameter to (field, op) on the store: ``modified`` (the
    column) or ``data.<field>`` of a date-time kept in the fixed-width UTC form, so text order
    is time order (``date_fields`` lists those and ``prepare_record`` normalizes them).
    ``equal_filters`` map a parameter to (``data.<path>``, ``int`` or ``str``).
    """

    module: str
    path: str
    object: str
    schema: str
    not_found_title: str
    defaults: Callable[[], dict[str, Any]]
    params: frozenset[str]
    active_field: bool = True
    modified_field: bool = True
    date_fields: tuple[str, ...] = ("createdOn",)
    date_filters: Mapping[str, tuple[str, str]] = field(
        default_factory=lambda: {**MODIFIED_FILTERS, **CREATED_FILTERS}
    )
    equal_filters: Mapping[str, tuple[str, type]] = field(default_factory=dict)
    # A parameter taking a comma-separated list of int64 ids, matched against ``data.<path>``
    # (e.g. appointment-assignments' ``appointmentIds``).
    list_filters: Mapping[str, str] = field(default_factory=dict)
    sort_fields: Mapping[str, str] = field(default_factory=lambda: SORT_ID)
    # The spec has ``GET …/{resource}/{id}`` (appointment-assignments has only the list).
    has_get: bool = True

    def __post_init__(self) -> None:
        filters = set(self.date_filters) | set(self.equal_filters) | set(self.list_filters)
        undeclared = filters - self.params
        if undeclared:
            raise ValueError(f"{self.path}: filters not declared by the spec: {undeclared}")

    @property
    def handled_params(self) -> frozenset[str]:
        """Declared parameters the sandbox implements."""
        handled = set(PAGING_PARAMS) | set(self.date_filters) | set(self.equal_filters)
        handled |= set(self.list_filters)
        handled |= {"active", "ids", "sort"} & self.params
        return frozenset(handled & self.params)

    @property
    def unemulated_filters(self) -> frozenset[str]:
        """Declared parameters the sandbox refuses with 400 rather than ignoring them."""
        return self.params - self.handled_params


# --- defaults: every required response field (id, active, modifiedOn excluded) ----------------


def _address() -> dict[str, Any]:
    return {
        "street": "",
        "unit": None,
        "city": "",
        "state": "",
        "zip": "",
        "country": "USA",
        "latitude": None,
        "longitude": None,
    }


def customer_defaults() -> dict[str, Any]:
    """Crm.V2.Customers.CustomerResponse."""
    return {
        "name": "",
        "type": "Residential",  # Crm.V2.CustomerType: Residential | Commercial
        "address": _address(),
        "customFields": [],
        "balance": 0,
        "doNotMail": False,
        "doNotService": False,
        "createdOn": _now_text(),
        "createdById": 0,
        # Set when this record was merged into another one (and then deactivated) [spec].
        "mergedToId": None,
    }


def location_defaults() -> dict[str, Any]:
    """Crm.V2.Locations.LocationResponse."""
    return {
        "customerId": 0,
        "name": "",
        "address": _address(),
        "customFields": [],
        "createdOn": _now_text(),
        "createdById": 0,
        "mergedToId": None,
        "taxZoneId": None,
    }


def contact_defaults() -> dict[str, Any]:
    """Crm.V2.Customers.CustomerContactWithModifiedOnAndCustomerIdResponse."""
    return {
        # {phoneNumber, doNotText} for Phone/MobilePhone/Fax; null for Email (the 2022 spec
        # marks it required without ``nullable``; null is the sandbox's [mem] reading).
        "phoneSettings": None,
        "type": "Phone",  # Crm.V2.ContactType: Phone | Email | Fax | MobilePhone
        "value": "",
        "memo": None,
        "customerId": 0,
    }


def job_defaults() -> dict[str, Any]:
    """Crm.V2.JobResponse (jpm)."""
    return {
        "jobNumber": "",
        "customerId": 0,
        "locationId": 0,
        # "Scheduled", "InProgress", "Hold", "Completed", "Canceled" [spec: jobStatus filter].
        "jobStatus": "Scheduled",
        "completedOn": None,
        "businessUnitId": 0,
        "jobTypeId": 0,
        "priority": "Normal",
        "campaignId": 0,
        "summary": None,
        "customFields": [],
        "appointmentCount": 0,
        "firstAppointmentId": 0,
        "lastAppointmentId": 0,
        "recallForId": None,
        "warrantyId": None,
        # jobGeneratedLeadSource: a nullable oneOf (see the module docstring), omitted.
        "noCharge": False,
        "notificationsEnabled": True,
        "createdOn": _now_text(),
        "createdById": 0,
        "tagTypeIds": [],
        "leadCallId": None,
        "bookingId": None,
        "soldById": None,
        "externalData": [],
    }


def appointment_defaults() -> dict[str, Any]:
    """Crm.V2.AppointmentResponse (jpm)."""
    now = _now_text()
    return {
        "jobId": 0,
        "appointmentNumber": None,
        "start": now,
        "end": now,
        "arrivalWindowStart": None,
        "arrivalWindowEnd": None,
        # Scheduled | Dispatched | Working | Hold | Done | Canceled [spec: AppointmentStatus]
        "status": "Scheduled",
        "specialInstructions": None,
        "createdOn": now,
    }


def appointment_assignment_defaults() -> dict[str, Any]:
    """Crm.V2.AppointmentAssignmentResponse (dispatch): which technician works an appointment.
    The schema has neither ``active`` nor ``modifiedOn``."""
    return {
        "technicianId": 0,
        "technicianName": "",
        "assignedById": 0,
        "assignedOn": _now_text(),
        # Scheduled | Dispatched | Working | Done [spec: Dispatch.JobAppointmentAssignmentStatus]
        "status": "Scheduled",
        "isPaused": False,
        "jobId": 0,
        "appointmentId": 0,
    }


def job_type_defaults() -> dict[str, Any]:
    """Crm.V2.JobTypeResponse (jpm)."""
    return {"name": "", "externalData": []}


def estimate_defaults() -> dict[str, Any]:
    """Estimates.V2.EstimateResponse (salestech)."""
    return {
        "jobId": None,
        "projectId": None,
        "name": None,
        "jobNumber": None,
        "status": {"value": 0, "name": "Open"},
        "summary": None,
        "soldOn": None,
        "soldBy": None,
        "items": [],
        "externalLinks": [],
    }


def technician_defaults() -> dict[str, Any]:
    """TenantSettings.V2.TechnicianResponse."""
    return {
        "name": "",
        "businessUnitId": None,
        "createdOn": _now_text(),
        "email": None,
        "phoneNumber": None,
        "loginName": None,
        # home: a nullable oneOf (see the module docstring), set by the seeder.
        "dailyGoal": 0,
        "isManagedTech": False,
        "customFields": [],
    }


def employee_defaults() -> dict[str, Any]:
    """TenantSettings.V2.EmployeeResponse."""
    return {
        "name": "",
        "role": "Unspecified",  # TenantSettings.V2.EmployeeUserRole
        "businessUnitId": None,
        "createdOn": _now_text(),
        "email": None,
        "phoneNumber": None,
        "loginName": None,
        "customFields": [],
    }


def business_unit_defaults() -> dict[str, Any]:
    """TenantSettings.V2.BusinessUnitResponse."""
    return {
        "name": "",
        "officialName": None,
        "email": None,
        "currency": "USD",
        "phoneNumber": None,
        "invoiceHeader": None,
        "invoiceMessage": None,
        "defaultTaxRate": None,
        "authorizationParagraph": None,
        "acknowledgementParagraph": None,
        # address: a nullable oneOf (see the module docstring), set by the seeder.
        "materialSku": None,
        "quickbooksClass": None,
        "accountCode": None,
        "franchiseId": None,
        "conceptCode": None,
        "corporateContractNumber": None,
        # tenant: a nullable oneOf (see the module docstring), set by the seeder.
        "createdOn": _now_text(),
        "externalData": [],
    }


def _sku_prices() -> dict[str, Any]:
    return {"price": 0, "memberPrice": 0, "addOnPrice": 0, "addOnMemberPrice": 0}


def material_defaults() -> dict[str, Any]:
    """Pricebook.V2.MaterialResponse; ``categories`` are bare category ids [spec]."""
    return {
        "code": "",
        "displayName": None,
        "description": "",
        "cost": 0,
        **_sku_prices(),
        "hours": 0,
        "commissionBonus": 0,
        "paysCommission": False,
        "deductAsJobCost": False,
        "unitOfMeasure": None,
        "isInventory": False,
        "account": None,
        "costOfSaleAccount": None,
        "assetAccount": None,
        "taxable": None,
        # primaryVendor: a nullable oneOf (see the module docstring), set by the seeder.
        "otherVendors": None,
        "categories": [],
        "assets": [],
        "source": None,
        "externalId": None,
        "externalData": None,
    }


def service_defaults() -> dict[str, Any]:
    """Pricebook.V2.ServiceResponse; ``categories`` are {id, name, active} objects [spec]."""
    return {
        "code": "",
        "displayName": None,
        "description": "",
        # warranty: a nullable oneOf (see the module docstring), set by the seeder.
        "categories": [],
        **_sku_prices(),
        "taxable": False,
        "account": None,
        "hours": 0,
        "isLabor": None,
        "recommendations": [],
        "upgrades": [],
        "assets": [],
        "serviceMaterials": [],
        "serviceEquipment": [],
        "crossSaleGroup": None,
        "paysCommission": False,
        "source": None,
        "externalId": None,
        "externalData": None,
    }


def equipment_defaults() -> dict[str, Any]:
    """Pricebook.V2.EquipmentResponse; ``categories`` are bare category ids [spec]."""
    return {
        "code": "",
        "displayName": None,
        "description": "",
        **_sku_prices(),
        "manufacturer": None,
        "model": None,
        "manufacturerWarranty": {"duration": 0, "description": None},
        "serviceProviderWarranty": {"duration": 0, "description": None},
        "categories": [],
        "assets": [],
        "recommendations": [],
        "upgrades": [],
        "equipmentMaterials": [],
        # primaryVendor: a nullable oneOf (see the module docstring), set by the seeder.
        "otherVendors": None,
        "account": None,
        "costOfSaleAccount": None,
        "assetAccount": None,
        "crossSaleGroup": None,
        "paysCommission": False,
        "commissionBonus": 0,
        "hours": 0,
        "taxable": False,
        "cost": 0,
        "unitOfMeasure": None,
        "isInventory": False,
        "source": None,
        "externalId": None,
        "externalData": None,
    }


def category_defaults() -> dict[str, Any]:
    """Pricebook.V2.CategoryResponse: a tree through ``parentId`` and nested ``subcategories``."""
    return {
        "name": "",
        "description": None,
        "image": None,
        "parentId": None,
        "position": 0,
        "categoryType": "Services",  # Pricebook.V2.CategoryType: Services | Materials
        "subcategories": [],
        "businessUnitIds": [],
        "skuImages": [],
        "skuVideos": [],
        "source": None,
        "externalId": None,
    }


# --- the table ---------------------------------------------------------------------------------

_ADDRESS_PARAMS = "name street unit city state zip country latitude longitude"
_DATES = "createdBefore createdOnOrAfter modifiedBefore modifiedOnOrAfter"

_SPECS = (
    ResourceSpec(
        module="crm",
        path="customers",
        object="customers",
        schema="Crm.V2.Customers.CustomerResponse",
        # The spec's 404 description for Customers_Get.
        not_found_title="Customer not found",
        defaults=customer_defaults,
        params=_params(
            f"page pageSize includeTotal sort ids {_DATES} {_ADDRESS_PARAMS} phone active"
        ),
        sort_fields=SORT_ID_MODIFIED_CREATED,
    ),
    ResourceSpec(
        module="crm",
        path="locations",
        object="locations",
        schema="Crm.V2.Locations.LocationResponse",
        not_found_title="Location not found",
        defaults=location_defaults,
        params=_params(
            f"ids customerId {_ADDRESS_PARAMS} active page pageSize includeTotal sort {_DATES}"
        ),
        equal_filters={"customerId": ("data.customerId", int)},
        sort_fields=SORT_ID_MODIFIED_CREATED,
    ),
    # Listed for rendering (control API); the bulk URL ``crm/…/customers/contacts`` is not
    # routed yet, because the generic ``{resource}/{id}`` route would need a special case.
    ResourceSpec(
        module="crm",
        path="customers/contacts",
        object="contacts",
        schema="Crm.V2.Customers.CustomerContactWithModifiedOnAndCustomerIdResponse",
        not_found_title="Contact not found",
        defaults=contact_defaults,
        params=_params("page pageSize includeTotal modifiedBefore modifiedOnOrAfter"),
        active_field=False,
        date_fields=(),
        date_filters=dict(MODIFIED_FILTERS),
    ),
    ResourceSpec(
        module="jpm",
        path="jobs",
        object="jobs",
        schema="Crm.V2.JobResponse",
        not_found_title="Job not found",
        defaults=job_defaults,
        params=_params(
            "page pageSize includeTotal ids number projectId bookingId jobStatus appointmentStatus "
            "firstAppointmentStartsOnOrAfter firstAppointmentStartsBefore "
            "appointmentStartsOnOrAfter appointmentStartsBefore technicianId customerId "
            "locationId soldById jobTypeId campaignId businessUnitId invoiceId "
            f"{_DATES} completedOnOrAfter completedBefore sort externalDataApplicationGuid"
        ),
        # JobResponse has no ``active``: jobs are cancelled, not deactivated.
        active_field=False,
        date_fields=("createdOn", "completedOn"),
        date_filters={
            **MODIFIED_FILTERS,
            **CREATED_FILTERS,
            "completedOnOrAfter": ("data.completedOn", "ge"),
            "completedBefore": ("data.completedOn", "lt"),
        },
        equal_filters={
            "number": ("data.jobNumber", str),
            "jobStatus": ("data.jobStatus", str),
            "customerId": ("data.customerId", int),
            "locationId": ("data.locationId", int),
            "soldById": ("data.soldById", int),
            "jobTypeId": ("data.jobTypeId", int),
            "campaignId": ("data.campaignId", int),
            "businessUnitId": ("data.businessUnitId", int),
        },
        sort_fields=SORT_ID_MODIFIED_CREATED,
    ),
    ResourceSpec(
        module="jpm",
        path="appointments",
        object="appointments",
        schema="Crm.V2.AppointmentResponse",
        not_found_title="Appointment not found",
        defaults=appointment_defaults,
        params=_params(
            "ids jobId projectId number status startsOnOrAfter startsBefore technicianId "
            f"{_DATES} page pageSize includeTotal sort"
        ),
        active_field=False,
        date_fields=("createdOn", "start", "end", "arrivalWindowStart", "arrivalWindowEnd"),
        date_filters={
            **MODIFIED_FILTERS,
            **CREATED_FILTERS,
            "startsOnOrAfter": ("data.start", "ge"),
            "startsBefore": ("data.start", "lt"),
        },
        equal_filters={
            "jobId": ("data.jobId", int),
            "number": ("data.appointmentNumber", str),
            "status": ("data.status", str),
        },
        sort_fields=SORT_ID_MODIFIED_CREATED,
    ),
    # tenant-dispatch-v2.yml: list only (no ``/{id}``), no modified filter: clients ask by
    # ``appointmentIds`` (or ``jobId``) for the appointments they have just read.
    ResourceSpec(
        module="dispatch",
        path="appointment-assignments",
        object="appointment-assignments",
        schema="Crm.V2.AppointmentAssignmentResponse",
        not_found_title="Appointment assignment not found",
        defaults=appointment_assignment_defaults,
        params=_params("page pageSize includeTotal ids appointmentIds jobId"),
        active_field=False,
        modified_field=False,
        date_fields=("assignedOn",),
        date_filters={},
        equal_filters={"jobId": ("data.jobId", int)},
        list_filters={"appointmentIds": "data.appointmentId"},
        has_get=False,
    ),
    ResourceSpec(
        module="jpm",
        path="job-types",
        object="job-types",
        schema="Crm.V2.JobTypeResponse",
        not_found_title="Job type not found",
        defaults=job_type_defaults,
        params=_params(
            f"name ids page pageSize includeTotal active orderBy orderByDirection {_DATES} "
            "externalDataApplicationGuid"
        ),
        # The list takes ``active`` but JobTypeResponse has no such field (nor createdOn).
        active_field=False,
        date_fields=(),
        date_filters=dict(MODIFIED_FILTERS),
    ),
    ResourceSpec(
        module="sales",
        path="estimates",
        object="estimates",
        schema="Estimates.V2.EstimateResponse",
        not_found_title="Estimate not found",
        defaults=estimate_defaults,
        params=_params(
            "jobId projectId jobNumber totalGreater totalLess soldById soldByEmployeeId ids page "
            f"pageSize includeTotal soldAfter soldBefore status active orderBy orderByDirection "
            f"{_DATES}"
        ),
        # EstimateResponse has no createdOn, so the created filters are not emulated.
        date_fields=("soldOn",),
        date_filters={
            **MODIFIED_FILTERS,
            "soldAfter": ("data.soldOn", "ge"),
            "soldBefore": ("data.soldOn", "lt"),
        },
        equal_filters={
            "jobId": ("data.jobId", int),
            "jobNumber": ("data.jobNumber", str),
            "soldById": ("data.soldBy", int),
            # The status *name* (Open, Sold, Dismissed) [mem].
            "status": ("data.status.name", str),
        },
    ),
    ResourceSpec(
        module="settings",
        path="technicians",
        object="technicians",
        schema="TenantSettings.V2.TechnicianResponse",
        not_found_title="Technician not found",
        defaults=technician_defaults,
        params=_params(f"ids name active page pageSize includeTotal {_DATES}"),
    ),
    ResourceSpec(
        module="settings",
        path="employees",
        object="employees",
        schema="TenantSettings.V2.EmployeeResponse",
        not_found_title="Employee not found",
        defaults=employee_defaults,
        params=_params(f"ids name active page pageSize includeTotal {_DATES}"),
    ),
    ResourceSpec(
        module="settings",
        path="business-units",
        object="business-units",
        schema="TenantSettings.V2.BusinessUnitResponse",
        not_found_title="Business unit not found",
        defaults=business_unit_defaults,
        params=_params(
            f"ids name active page pageSize includeTotal {_DATES} externalDataApplicationGuid"
        ),
    ),
    *(
        ResourceSpec(
            module="pricebook",
            path=name,
            object=name,
            schema=schema,
            not_found_title=f"{title} not found",
            defaults=defaults,
            params=_params(
                f"page pageSize includeTotal sort ids {_DATES} active externalDataApplicationGuid"
            ),
            # No createdOn in these schemas: the created filters are not emulated.
            date_fields=(),
            date_filters=dict(MODIFIED_FILTERS),
        )
        for name, schema, title, defaults in (
            ("materials", "Pricebook.V2.MaterialResponse", "Material", material_defaults),
            ("services", "Pricebook.V2.ServiceResponse", "Service", service_defaults),
            ("equipment", "Pricebook.V2.EquipmentResponse", "Equipment", equipment_defaults),
        )
    ),
    ResourceSpec(
        module="pricebook",
        path="categories",
        object="categories",
        schema="Pricebook.V2.CategoryResponse",
        not_found_title="Category not found",
        defaults=category_defaults,
        params=_params("page pageSize includeTotal sort categoryType"),
        # CategoryResponse has ``active`` but the list has no ``active`` parameter, so every
        # category is listed; it has no modifiedOn (nor date filters).
        modified_field=False,
        date_fields=(),
        date_filters={},
        equal_filters={"categoryType": ("data.categoryType", str)},
    ),
)

# (URL module, URL resource) → spec; the generic route looks resources up here.
RESOURCES: dict[tuple[str, str], ResourceSpec] = {(s.module, s.path): s for s in _SPECS}
# Store object name → spec (rendering and the control API).
RESOURCES_BY_OBJECT: dict[str, ResourceSpec] = {s.object: s for s in _SPECS}
