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
    # The list refuses (400) a request with none of these (the bulk contact lists: "Either
    # modifiedBefore or modifiedOnOrAfter parameter must be specified").
    requires_one_of: tuple[str, ...] = ()
    # ``active`` when the request has none: True for most lists, Any where the spec says
    # "active and inactive items will be returned by default" (job-cancel-reasons).
    active_default: str = "True"
    # Parameters served by ``ServiceTitanJobWrites.search_list`` (servicetitan_writes.py):
    # the customers' and locations' name/address/phone searches, the jobs'
    # ``externalDataApplicationGuid``.
    search_params: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        filters = set(self.date_filters) | set(self.equal_filters) | set(self.list_filters)
        filters |= set(self.search_params)
        undeclared = filters - self.params
        if undeclared:
            raise ValueError(f"{self.path}: filters not declared by the spec: {undeclared}")

    @property
    def handled_params(self) -> frozenset[str]:
        """Declared parameters the sandbox implements."""
        handled = set(PAGING_PARAMS) | set(self.date_filters) | set(self.equal_filters)
        handled |= set(self.list_filters) | set(self.search_params)
        handled |= {"active", "ids", "sort", "includeInactive"} & self.params
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


def _phone_settings() -> dict[str, Any]:
    """Crm.V2.Customers.PhoneSettings. The 2022 specs mark ``phoneSettings`` required and not
    nullable on every contact method, so an e-mail or fax carries an empty one (what the live
    API sends there is not documented [mem])."""
    return {"phoneNumber": "", "doNotText": False}


def contact_defaults() -> dict[str, Any]:
    """Crm.V2.Customers.CustomerContactWithModifiedOnAndCustomerIdResponse."""
    return {
        # {phoneNumber, doNotText}: the number for Phone/MobilePhone, empty for Email/Fax.
        "phoneSettings": _phone_settings(),
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


def location_contact_defaults() -> dict[str, Any]:
    """Crm.V2.LocationsContactResponse (crm bulk ``locations/contacts``): no ``active``."""
    return {
        "type": "Phone",  # Crm.V2.ContactType: Phone | Email | Fax | MobilePhone
        "value": "",
        "memo": None,
        "phoneSettings": _phone_settings(),
        "locationId": 0,
    }


def project_defaults() -> dict[str, Any]:
    """Crm.V2.ProjectResponse (jpm): no ``active`` nor ``createdOn``."""
    return {
        "number": "",
        "name": None,
        "summary": None,
        "status": None,
        "customerId": 0,
        "locationId": 0,
        "startDate": None,
        "targetCompletionDate": None,
        "actualCompletionDate": None,
        "customFields": [],
    }


def name_active_defaults() -> dict[str, Any]:
    """Crm.V2.JobCancelReasonResponse, Crm.V2.JobHoldReasonResponse (jpm) and
    TenantSettings.V2.TagTypeResponse: ``{id, name, active}``, nothing else."""
    return {"name": ""}


def zone_defaults() -> dict[str, Any]:
    """Dispatch.V2.ZoneResponse."""
    return {
        "name": None,
        "zips": [],
        "cities": [],
        "territoryNumbers": [],
        "locnNumbers": [],
        "createdBy": 0,
        "createdOn": _now_text(),
        "serviceDaysEnabled": False,
        "serviceDays": [],
        "businessUnits": [],
    }


def team_defaults() -> dict[str, Any]:
    """Dispatch.V2.TeamResponse (SPEC GAP: ``DISPATCH_GAP_SCHEMAS``)."""
    return {"name": None, "createdBy": None, "createdOn": _now_text()}


def technician_shift_defaults() -> dict[str, Any]:
    """Dispatch.V2.TechnicianShiftResponse: ``active`` but no ``modifiedOn``."""
    now = _now_text()
    return {
        "shiftType": "Normal",  # Dispatch.V2.ShiftType: Normal | OnCall | TimeOff
        "title": "",
        "note": None,
        "technicianId": 0,
        "start": now,
        "end": now,
    }


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


def discount_fee_defaults() -> dict[str, Any]:
    """Pricebook.V2.DiscountAndFeesResponse; ``categories`` are bare category ids [spec]. The
    schema has ``active`` but no ``modifiedOn`` (nor ``createdOn``)."""
    return {
        "type": "Discount",  # Pricebook.V2.PriceModifierType: Discount | Fee
        "code": "",
        "displayName": None,
        "description": "",
        "amountType": "Fixed",  # Pricebook.V2.PriceModifierAmountType: Percentage | Fixed
        "amount": 0,
        "limit": 0,
        "taxable": False,
        "categories": [],
        "hours": 0,
        "assets": [],
        "account": None,
        "crossSaleGroup": None,
        "bonus": 0,
        "commissionBonus": 0,
        "paysCommission": False,
        "excludeFromPayroll": False,
        "externalData": None,
    }


def invoice_defaults() -> dict[str, Any]:
    """Accounting.V2.InvoiceResponse: money is decimal *text* (``type: string``); no
    ``active``, no ``createdOn``. ``customer``, ``job``, ``businessUnit``, the addresses,
    ``salesTaxCode``, ``batch``, ``royalty`` and ``employeeInfo`` are nullable oneOfs (see the
    module docstring), set by the seeder or omitted."""
    return {
        "syncStatus": "Pending",
        "summary": None,
        "referenceNumber": None,
        "invoiceDate": None,
        "dueDate": None,
        "subTotal": "0.00",
        "salesTax": "0.00",
        "total": "0.00",
        "balance": "0.00",
        "termName": None,
        "createdBy": None,
        "adjustmentToId": None,
        "projectId": None,
        "commissionEligibilityDate": None,
        "items": [],
        "customFields": [],
    }


def payment_defaults() -> dict[str, Any]:
    """Accounting.V2.DetailedPaymentResponse: no ``active``, ``modifiedOn`` nor ``createdOn``
    (the list still filters on ``modifiedOnOrAfter``: the store's column). ``customer``,
    ``batch`` and ``generalLedgerAccount`` are nullable oneOfs, set by the seeder or omitted."""
    return {
        "syncStatus": "Pending",
        "referenceNumber": None,
        "date": None,
        "type": None,
        "typeId": None,
        "total": "0.00",
        "unappliedAmount": "0.00",
        "memo": None,
        "createdBy": None,
        "appliedTo": [],
        "customFields": [],
        "authCode": None,
        "checkNumber": None,
    }


# --- inventory ---------------------------------------------------------------------------------
# SPEC GAP: there is no inventory spec in shared/provider-specs/servicetitan. The paths
# (``inventory/v2/tenant/{t}/vendors|warehouses|purchase-orders|adjustments``) are ServiceTitan's
# documented Inventory API paths (also those of the Meltano tap-servicetitan streams [3p]); the
# fields are ServiceTitan's documented response fields as remembered [mem], written down here
# as OpenAPI 3.0 schemas so that the sandbox's responses can still be validated (by the tests)
# against *something* fixed: correct them when an official inventory spec is available.

_NULLABLE_TEXT = {"type": "string", "nullable": True}
_NULLABLE_INT = {"type": "integer", "format": "int64", "nullable": True}
_DATE_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_DATE_TIME = {"type": "string", "format": "date-time", "nullable": True}
_INVENTORY_ADDRESS = {
    "type": "object",
    "nullable": True,
    "additionalProperties": False,
    "properties": {
        k: _NULLABLE_TEXT for k in ("street", "unit", "city", "state", "zip", "country")
    },
}
_EXTERNAL_DATA = {
    "type": "array",
    "nullable": True,
    "items": {
        "type": "object",
        "required": ["key", "value"],
        "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
    },
}
_CUSTOM_FIELDS = {
    "type": "array",
    "nullable": True,
    "items": {
        "type": "object",
        "properties": {"name": _NULLABLE_TEXT, "value": _NULLABLE_TEXT},
    },
}


def _inventory_item_schema(*extra: str) -> dict[str, Any]:
    numbers = {k: {"type": "number", "format": "decimal"} for k in ("quantity", "cost", *extra)}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "skuId", "quantity", "cost"],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "skuId": {"type": "integer", "format": "int64"},
            "skuCode": _NULLABLE_TEXT,
            "skuName": _NULLABLE_TEXT,
            "skuType": _NULLABLE_TEXT,
            "description": _NULLABLE_TEXT,
            **numbers,
        },
    }


def _inventory_schema(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", *required, "createdOn", "modifiedOn"],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            **properties,
            "createdOn": _DATE_TIME,
            "modifiedOn": _DATE_TIME,
        },
    }


INVENTORY_SCHEMAS: dict[str, dict[str, Any]] = {
    "Inventory.V2.VendorResponse": _inventory_schema(
        ["name", "active"],
        {
            "name": {"type": "string"},
            "active": {"type": "boolean"},
            "isTruckReplenishment": {"type": "boolean"},
            "isMobileCreationRestricted": {"type": "boolean"},
            "memo": _NULLABLE_TEXT,
            "deliveryOption": _NULLABLE_TEXT,
            "defaultTaxRate": {"type": "number", "format": "decimal"},
            "contactInfo": {
                "type": "object",
                "nullable": True,
                "additionalProperties": False,
                "properties": {
                    k: _NULLABLE_TEXT for k in ("firstName", "lastName", "phone", "email", "fax")
                },
            },
            "address": _INVENTORY_ADDRESS,
            "externalData": _EXTERNAL_DATA,
        },
    ),
    "Inventory.V2.WarehouseResponse": _inventory_schema(
        ["name", "active"],
        {
            "name": {"type": "string"},
            "active": {"type": "boolean"},
            "address": _INVENTORY_ADDRESS,
            "externalData": _EXTERNAL_DATA,
        },
    ),
    "Inventory.V2.PurchaseOrderResponse": _inventory_schema(
        ["number", "status", "vendorId", "total", "tax", "shipping", "items"],
        {
            "number": {"type": "string"},
            # Pending | Sent | PartiallyReceived | Received | Exported | Canceled [mem]
            "status": {"type": "string"},
            "typeId": _NULLABLE_INT,
            "vendorId": {"type": "integer", "format": "int64"},
            "jobId": _NULLABLE_INT,
            "projectId": _NULLABLE_INT,
            "invoiceId": _NULLABLE_INT,
            "technicianId": _NULLABLE_INT,
            "businessUnitId": _NULLABLE_INT,
            "inventoryLocationId": _NULLABLE_INT,
            "batchId": _NULLABLE_INT,
            "vendorDocumentNumber": _NULLABLE_TEXT,
            "date": _NULLABLE_DATE_TIME,
            "requiredOn": _NULLABLE_DATE_TIME,
            "sentOn": _NULLABLE_DATE_TIME,
            "receivedOn": _NULLABLE_DATE_TIME,
            "total": {"type": "number", "format": "decimal"},
            "tax": {"type": "number", "format": "decimal"},
            "shipping": {"type": "number", "format": "decimal"},
            "summary": _NULLABLE_TEXT,
            "shipTo": {
                "type": "object",
                "nullable": True,
                "additionalProperties": False,
                "properties": {"description": _NULLABLE_TEXT, "address": _INVENTORY_ADDRESS},
            },
            "items": {
                "type": "array",
                "items": _inventory_item_schema("total", "quantityReceived"),
            },
            "customFields": _CUSTOM_FIELDS,
            "externalData": _EXTERNAL_DATA,
        },
    ),
    "Inventory.V2.InventoryAdjustmentResponse": _inventory_schema(
        ["active", "number", "type", "inventoryLocationId", "items"],
        {
            "active": {"type": "boolean"},
            "number": {"type": "string"},
            "referenceNumber": _NULLABLE_TEXT,
            # The adjustment type (e.g. Adjustment, Recount, Damaged) [mem]
            "type": {"type": "string"},
            "inventoryLocationId": {"type": "integer", "format": "int64"},
            "businessUnitId": _NULLABLE_INT,
            "invoiceId": _NULLABLE_INT,
            "batchId": _NULLABLE_INT,
            "syncStatus": _NULLABLE_TEXT,
            "memo": _NULLABLE_TEXT,
            "date": _NULLABLE_DATE_TIME,
            "createdById": _NULLABLE_INT,
            "items": {"type": "array", "items": _inventory_item_schema()},
            "customFields": _CUSTOM_FIELDS,
            "externalData": _EXTERNAL_DATA,
        },
    ),
}


# SPEC GAP: dispatch teams (``dispatch/v2/tenant/{t}/teams`` and ``…/teams/{id}``,
# Team_GetList/Team_Get) are not in the 2022 tenant-dispatch-v2.yml; this is ServiceTitan's
# documented ``Dispatch.V2.TeamResponse`` [3p: TS types generated from the current dispatch
# spec], written as an OpenAPI 3.0 schema like the inventory ones above.
DISPATCH_GAP_SCHEMAS: dict[str, dict[str, Any]] = {
    "Dispatch.V2.TeamResponse": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "active", "createdOn", "modifiedOn"],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "active": {"type": "boolean"},
            "name": _NULLABLE_TEXT,
            "createdBy": _NULLABLE_INT,
            "createdOn": _DATE_TIME,
            "modifiedOn": _DATE_TIME,
        },
    },
}


def _inventory_defaults(schema: str, values: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """Defaults for a documented inventory schema: ``values`` plus null for every nullable
    field not given (``id``, ``active`` and ``modifiedOn`` are the store's columns)."""

    def defaults() -> dict[str, Any]:
        properties = INVENTORY_SCHEMAS[schema]["properties"]
        data: dict[str, Any] = {
            k: None
            for k, v in properties.items()
            if v.get("nullable") and k not in {"id", "active", "modifiedOn"}
        }
        data.update(values)
        data["createdOn"] = _now_text()
        return data

    return defaults


vendor_defaults = _inventory_defaults(
    "Inventory.V2.VendorResponse",
    {
        "name": "",
        "isTruckReplenishment": False,
        "isMobileCreationRestricted": False,
        "defaultTaxRate": 0,
        "externalData": [],
    },
)
warehouse_defaults = _inventory_defaults(
    "Inventory.V2.WarehouseResponse", {"name": "", "externalData": []}
)
purchase_order_defaults = _inventory_defaults(
    "Inventory.V2.PurchaseOrderResponse",
    {
        "number": "",
        "status": "Pending",
        "vendorId": 0,
        "total": 0,
        "tax": 0,
        "shipping": 0,
        "items": [],
        "customFields": [],
        "externalData": [],
    },
)
adjustment_defaults = _inventory_defaults(
    "Inventory.V2.InventoryAdjustmentResponse",
    {
        "number": "",
        "type": "Adjustment",
        "inventoryLocationId": 0,
        "items": [],
        "customFields": [],
        "externalData": [],
    },
)


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
        search_params=_params("name street unit city state zip country phone"),
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
        search_params=_params("name street unit city state zip country"),
    ),
    # The bulk contact lists (routed by ``ServiceTitanApi.bulk_contact_endpoints``): list
    # only, and a modified filter is required [spec].
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
        has_get=False,
        requires_one_of=("modifiedBefore", "modifiedOnOrAfter"),
    ),
    ResourceSpec(
        module="crm",
        path="locations/contacts",
        object="location-contacts",
        schema="Crm.V2.LocationsContactResponse",
        not_found_title="Contact not found",
        defaults=location_contact_defaults,
        params=_params("page pageSize includeTotal modifiedBefore modifiedOnOrAfter"),
        active_field=False,
        date_fields=(),
        date_filters=dict(MODIFIED_FILTERS),
        has_get=False,
        requires_one_of=("modifiedBefore", "modifiedOnOrAfter"),
    ),
    ResourceSpec(
        module="jpm",
        path="projects",
        object="projects",
        schema="Crm.V2.ProjectResponse",
        not_found_title="Project not found",
        defaults=project_defaults,
        params=_params(
            "ids customerId locationId invoiceId technicianId jobId appointmentId createdBefore "
            "createdOnOrAfter startsBefore startsOnOrAfter completedBefore completedOnOrAfter "
            "targetCompletionDateBefore targetCompletionDateOnOrAfter modifiedBefore "
            "modifiedOnOrAfter page pageSize includeTotal status sort"
        ),
        # No ``active`` (nor an ``active`` parameter) and no createdOn (created filters are
        # refused). ``sort`` names no fields in the spec: Id is emulated.
        active_field=False,
        date_fields=("startDate", "targetCompletionDate", "actualCompletionDate"),
        date_filters={
            **MODIFIED_FILTERS,
            "startsOnOrAfter": ("data.startDate", "ge"),
            "startsBefore": ("data.startDate", "lt"),
            "completedOnOrAfter": ("data.actualCompletionDate", "ge"),
            "completedBefore": ("data.actualCompletionDate", "lt"),
            "targetCompletionDateOnOrAfter": ("data.targetCompletionDate", "ge"),
            "targetCompletionDateBefore": ("data.targetCompletionDate", "lt"),
        },
        equal_filters={
            "customerId": ("data.customerId", int),
            "locationId": ("data.locationId", int),
            "status": ("data.status", str),
        },
    ),
    *(
        ResourceSpec(
            module=module,
            path=path,
            object=path,
            schema=schema,
            not_found_title=f"{title} not found",
            defaults=name_active_defaults,
            params=_params("page pageSize includeTotal active"),
            # ``{id, name, active}`` only: no modifiedOn, no date filters, no GET by id.
            modified_field=False,
            date_fields=(),
            date_filters={},
            has_get=False,
            active_default=active_default,
        )
        for module, path, schema, title, active_default in (
            # "active and inactive items will be returned by default" [spec].
            (
                "jpm",
                "job-cancel-reasons",
                "Crm.V2.JobCancelReasonResponse",
                "Job cancel reason",
                "Any",
            ),
            ("jpm", "job-hold-reasons", "Crm.V2.JobHoldReasonResponse", "Job hold reason", "True"),
            ("settings", "tag-types", "TenantSettings.V2.TagTypeResponse", "Tag type", "True"),
        )
    ),
    ResourceSpec(
        module="dispatch",
        path="zones",
        object="zones",
        schema="Dispatch.V2.ZoneResponse",
        not_found_title="Zone not found",
        defaults=zone_defaults,
        # page/pageSize/includeTotal only: every zone, active or not, is listed.
        params=_params("page pageSize includeTotal"),
        date_filters={},
    ),
    # SPEC GAP: documented teams list/get (DISPATCH_GAP_SCHEMAS); ``includeInactive`` (a
    # boolean, default false: active teams only) stands in for ``active``.
    ResourceSpec(
        module="dispatch",
        path="teams",
        object="teams",
        schema="Dispatch.V2.TeamResponse",
        not_found_title="Team not found",
        defaults=team_defaults,
        params=_params(f"page pageSize includeTotal includeInactive sort {_DATES}"),
        sort_fields=SORT_ID_MODIFIED_CREATED,
    ),
    ResourceSpec(
        module="dispatch",
        path="technician-shifts",
        object="technician-shifts",
        schema="Dispatch.V2.TechnicianShiftResponse",
        not_found_title="Technician shift not found",
        defaults=technician_shift_defaults,
        # No ``active`` parameter (every shift is listed) and no modifiedOn; titleContains and
        # noteContains are refused (not emulated).
        params=_params(
            "startsOnOrAfter endsOnOrBefore shiftType technicianId titleContains noteContains "
            "page pageSize includeTotal"
        ),
        modified_field=False,
        date_fields=("start", "end"),
        date_filters={
            "startsOnOrAfter": ("data.start", "ge"),
            "endsOnOrBefore": ("data.end", "le"),
        },
        equal_filters={
            "shiftType": ("data.shiftType", str),
            "technicianId": ("data.technicianId", int),
        },
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
        search_params=_params("externalDataApplicationGuid"),
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

# Pricebook discounts and fees, accounting invoices and payments, inventory (issue #5).
_SPECS = (
    *_SPECS,
    ResourceSpec(
        module="pricebook",
        path="discounts-and-fees",
        object="discounts-and-fees",
        schema="Pricebook.V2.DiscountAndFeesResponse",
        not_found_title="Discount or fee not found",
        defaults=discount_fee_defaults,
        params=_params(
            f"page pageSize includeTotal sort ids {_DATES} active externalDataApplicationGuid"
        ),
        # No modifiedOn (nor createdOn) in the schema: the modified filters use the column.
        modified_field=False,
        date_fields=(),
        date_filters=dict(MODIFIED_FILTERS),
    ),
    ResourceSpec(
        module="accounting",
        path="invoices",
        object="invoices",
        schema="Accounting.V2.InvoiceResponse",
        not_found_title="Invoice not found",
        defaults=invoice_defaults,
        params=_params(
            "ids modifiedBefore modifiedOnOrAfter statuses batchId batchNumber page pageSize "
            "customField.Fields customField.Operator includeTotal jobId jobNumber businessUnitId "
            "customerId invoicedOnOrAfter invoicedOnBefore adjustmentToId number createdOnOrAfter "
            "createdBefore totalGreater totalLess orderBy orderByDirection"
        ),
        active_field=False,
        date_fields=("invoiceDate", "dueDate"),
        date_filters={
            **MODIFIED_FILTERS,
            "invoicedOnOrAfter": ("data.invoiceDate", "ge"),
            "invoicedOnBefore": ("data.invoiceDate", "lt"),
        },
        equal_filters={
            "jobId": ("data.job.id", int),
            "jobNumber": ("data.job.number", str),
            "customerId": ("data.customer.id", int),
            "businessUnitId": ("data.businessUnit.id", int),
            "adjustmentToId": ("data.adjustmentToId", int),
            "number": ("data.referenceNumber", str),
        },
        # Invoices have PATCH …/invoices/{id} but no GET by id.
        has_get=False,
    ),
    ResourceSpec(
        module="accounting",
        path="payments",
        object="payments",
        schema="Accounting.V2.DetailedPaymentResponse",
        not_found_title="Payment not found",
        defaults=payment_defaults,
        params=_params(
            "ids statuses paidOnAfter paidOnBefore businessUnitIds batchNumber batchId "
            "transactionType customerId page pageSize includeTotal customField.Fields "
            f"customField.Operator {_DATES}"
        ),
        active_field=False,
        modified_field=False,
        date_fields=("date",),
        date_filters={
            **MODIFIED_FILTERS,
            "paidOnAfter": ("data.date", "ge"),
            "paidOnBefore": ("data.date", "lt"),
        },
        equal_filters={"customerId": ("data.customer.id", int)},
        has_get=False,
    ),
    # SPEC GAP: documented inventory paths and fields (INVENTORY_SCHEMAS), no spec file; a GET
    # by id is not emulated (one record is read through ``ids``).
    ResourceSpec(
        module="inventory",
        path="vendors",
        object="vendors",
        schema="Inventory.V2.VendorResponse",
        not_found_title="Vendor not found",
        defaults=vendor_defaults,
        params=_params(f"ids name active page pageSize includeTotal {_DATES}"),
        equal_filters={"name": ("data.name", str)},
        has_get=False,
    ),
    ResourceSpec(
        module="inventory",
        path="warehouses",
        object="warehouses",
        schema="Inventory.V2.WarehouseResponse",
        not_found_title="Warehouse not found",
        defaults=warehouse_defaults,
        params=_params(f"ids name active page pageSize includeTotal {_DATES}"),
        equal_filters={"name": ("data.name", str)},
        has_get=False,
    ),
    ResourceSpec(
        module="inventory",
        path="purchase-orders",
        object="purchase-orders",
        schema="Inventory.V2.PurchaseOrderResponse",
        not_found_title="Purchase order not found",
        defaults=purchase_order_defaults,
        params=_params(
            "ids status number jobId technicianId projectId page pageSize includeTotal "
            f"{_DATES} dateOnOrAfter dateBefore"
        ),
        # A purchase order is cancelled (status), not deactivated: no ``active``.
        active_field=False,
        date_fields=("createdOn", "date", "requiredOn", "sentOn", "receivedOn"),
        date_filters={
            **MODIFIED_FILTERS,
            **CREATED_FILTERS,
            "dateOnOrAfter": ("data.date", "ge"),
            "dateBefore": ("data.date", "lt"),
        },
        equal_filters={
            "status": ("data.status", str),
            "number": ("data.number", str),
            "jobId": ("data.jobId", int),
            "technicianId": ("data.technicianId", int),
            "projectId": ("data.projectId", int),
        },
        has_get=False,
    ),
    ResourceSpec(
        module="inventory",
        path="adjustments",
        object="adjustments",
        schema="Inventory.V2.InventoryAdjustmentResponse",
        not_found_title="Adjustment not found",
        defaults=adjustment_defaults,
        params=_params(
            "ids active number referenceNumber batchId invoiceIds inventoryLocationIds "
            "adjustmentTypes businessUnitIds syncStatuses page pageSize includeTotal "
            f"{_DATES} dateOnOrAfter dateBefore"
        ),
        date_fields=("createdOn", "date"),
        date_filters={
            **MODIFIED_FILTERS,
            **CREATED_FILTERS,
            "dateOnOrAfter": ("data.date", "ge"),
            "dateBefore": ("data.date", "lt"),
        },
        equal_filters={
            "number": ("data.number", str),
            "referenceNumber": ("data.referenceNumber", str),
        },
        has_get=False,
    ),
)
# URL modules that have no spec file (their schemas are INVENTORY_SCHEMAS).
UNSPECIFIED_MODULES = frozenset({"inventory"})
# SPEC GAP schemas, documented rather than specified: resources whose schema is one of these
# are validated against them, not against a spec file.
GAP_SCHEMAS: dict[str, dict[str, Any]] = {**INVENTORY_SCHEMAS, **DISPATCH_GAP_SCHEMAS}

# (URL module, URL resource) → spec; the generic route looks resources up here.
RESOURCES: dict[tuple[str, str], ResourceSpec] = {(s.module, s.path): s for s in _SPECS}
# Store object name → spec (rendering and the control API).
RESOURCES_BY_OBJECT: dict[str, ResourceSpec] = {s.object: s for s in _SPECS}
# (URL module, URL resource) of every resource absent from the spec files (SPEC GAP): the
# inventory module and dispatch teams.
UNSPECIFIED_RESOURCES = frozenset(
    key
    for key, s in RESOURCES.items()
    if s.module in UNSPECIFIED_MODULES or s.schema in GAP_SCHEMAS
)
