"""Pure functions from ServiceTitan JSON to normalized records: locations, contact methods and
the reference (lookup) records (ReferenceRecord kinds).

Specs (shared/provider-specs/servicetitan/): tenant-crm-v2.yml (`Crm.V2.Locations.
LocationResponse`, `Crm.V2.Customers.CustomerContactWithModifiedOnAndCustomerIdResponse`,
`Crm.V2.LocationsContactResponse`), tenant-jpm-v2.yml (`Crm.V2.JobTypeResponse`,
`Crm.V2.ProjectResponse`, `Crm.V2.JobCancelReasonResponse`, `Crm.V2.JobHoldReasonResponse`),
tenant-settings-v2.yml (`TenantSettings.V2.BusinessUnitResponse`,
`TenantSettings.V2.TagTypeResponse`) and tenant-dispatch-v2.yml (`Dispatch.V2.ZoneResponse`,
`Dispatch.V2.TechnicianShiftResponse`). SPEC GAP: `Dispatch.V2.TeamResponse` (dispatch teams:
{id, active, name, createdBy, createdOn, modifiedOn}) is not in the 2022 dispatch spec; its
fields are ServiceTitan's documented ones (see provider.py and the sandbox's
`servicetitan_resources.DISPATCH_GAP_SCHEMAS`).

Contacts. ServiceTitan's bulk `customers/contacts` and `locations/contacts` lists return contact
*methods*, not people: `{id, type, value, memo, phoneSettings}` where `type` (Crm.V2.
ContactType) is Phone, MobilePhone, Email or Fax, and a customer has one record per number or
address. Each method becomes one Contact row (external id = the method's id) whose `role` is
the type (with the memo, "work #" or "Owner's daughter - Kelly", after a colon) and whose
`phone`, `mobile` or `email` holds the value (a fax number goes in `phone`, told apart by the
role). One row per method rather than one per customer because each method is its own record
with its own `modifiedOn` and id: an incremental read returns only the methods that changed, and
a removed method simply disappears from the list (the full run's sweep marks its row deleted),
which a merged per-customer row could not follow without re-reading every method of the
customer. Names stay empty: ServiceTitan keeps no person name on a contact method. A location's
methods belong to the location's customer: the provider adds the location's `customerId` under
`_customerId` (read with one `locations?ids=` call per 50 locations); their external ids carry
the prefix "location-contact:" as the two lists are separate id spaces [mem: not stated].

Reference records: `external_id` is "<kind>:<id>" (ReferenceRecord's convention), the kinds are
`REFERENCE_KINDS`' values. Schemas without `active` (job types, projects) are never deleted by a
flag; schemas without `modifiedOn` (reasons, tag types, shifts) have no remote time.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from integrations.base import ExternalContact, ExternalLocation, ExternalReference
from integrations.providers.servicetitan.mapping import _base, _id, _text

# entity -> ReferenceRecord kind.
REFERENCE_KINDS = {
    "business_units": "business_unit",
    "job_types": "job_type",
    "tag_types": "tag_type",
    "zones": "zone",
    "teams": "team",  # SPEC GAP: documented dispatch teams, not in the 2022 spec
    "cancel_reasons": "cancel_reason",
    "hold_reasons": "hold_reason",
    "projects": "project",
    "technician_shifts": "technician_shift",
}
LOCATION_CONTACT_PREFIX = "location-contact:"
# Where the provider puts a location contact's customer id (looked up from its location).
LOCATION_CUSTOMER_KEY = "_customerId"
# Crm.V2.ContactType -> the Contact field holding the value.
CONTACT_FIELDS = {"phone": "phone", "mobilephone": "mobile", "email": "email", "fax": "phone"}
ROLE_MAX = 120  # Contact.role
NAME_MAX = 255  # ReferenceRecord.name
CODE_MAX = 120  # ReferenceRecord.code
COUNTRIES = {"usa": "US", "us": "US", "united states": "US", "canada": "CA", "ca": "CA"}


def reference_id(kind: str, raw_id: object) -> str:
    return f"{kind}:{raw_id}"


def _coordinate(value: object, limit: int) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value)).quantize(Decimal("0.000001"))
    except InvalidOperation:
        return None
    # Location's check constraints: an impossible coordinate is no coordinate (raw keeps it).
    return number if -limit <= number <= limit else None


def _country(value: str) -> str:
    """Location.country is ISO 3166-1 alpha-2; ServiceTitan sends free text ("USA")."""
    text = value.strip()
    if len(text) == 2:
        return text.upper()
    return COUNTRIES.get(text.lower(), "")


def location_to_location(raw: dict) -> ExternalLocation:
    """Crm.V2.Locations.LocationResponse: a customer's service address (address is
    Crm.V2.Customers.CustomerAddress: street, unit, city, state, zip, country, latitude,
    longitude). A merged location (`mergedToId`) is deactivated, hence deleted."""
    address = raw.get("address") or {}
    return ExternalLocation(
        **_base(raw),
        client_external_id=_id(raw.get("customerId")),
        name=_text(raw, "name"),
        street=_text(address, "street"),
        street2=_text(address, "unit"),
        city=_text(address, "city"),
        region=_text(address, "state"),
        postal_code=_text(address, "zip")[:20],
        country=_country(_text(address, "country")),
        latitude=_coordinate(address.get("latitude"), 90),
        longitude=_coordinate(address.get("longitude"), 180),
    )


def _type_name(raw: dict) -> str:
    kind = raw.get("type")
    # `type` is a oneOf of the ContactType enum (a string); accept {name} defensively.
    if isinstance(kind, dict):
        kind = kind.get("name") or kind.get("value")
    return "" if kind is None else str(kind).strip()


def _contact(raw: dict, *, external_id: str, client: str | None) -> ExternalContact:
    kind = _type_name(raw)
    memo = _text(raw, "memo")
    value = _text(raw, "value")
    settings = raw.get("phoneSettings")
    if not value and isinstance(settings, dict) and kind.lower() != "email":
        value = _text(settings, "phoneNumber")
    target = CONTACT_FIELDS.get(kind.lower(), "phone")
    role = f"{kind}: {memo}" if memo else kind
    return ExternalContact(
        **_base(raw, external_id=external_id),
        client_external_id=client,
        role=role[:ROLE_MAX],
        **{target: value[:254] if target == "email" else value[:50]},
    )


def customer_contact_to_contact(raw: dict) -> ExternalContact:
    """Crm.V2.Customers.CustomerContactWithModifiedOnAndCustomerIdResponse (no `active`: a
    removed method leaves the list)."""
    return _contact(raw, external_id=str(raw["id"]), client=_id(raw.get("customerId")))


def is_location_contact(raw: dict) -> bool:
    """A Crm.V2.LocationsContactResponse (`locationId` is required there) rather than a
    customer's (`customerId`); both schemas forbid additional properties."""
    return "locationId" in raw


def location_contact_id(raw: dict) -> str:
    return f"{LOCATION_CONTACT_PREFIX}{raw['id']}"


def location_contact_to_contact(raw: dict) -> ExternalContact:
    """Crm.V2.LocationsContactResponse plus `_customerId` (the location's customer)."""
    return _contact(
        raw, external_id=location_contact_id(raw), client=_id(raw.get(LOCATION_CUSTOMER_KEY))
    )


def _reference(
    kind: str,
    raw: dict,
    *,
    name: str,
    code: str = "",
    parent: str = "",
) -> ExternalReference:
    base = _base(raw, external_id=reference_id(kind, raw["id"]))
    return ExternalReference(
        **base,
        kind=kind,
        name=name[:NAME_MAX],
        code=code[:CODE_MAX],
        is_active=not base["deleted"],
        parent_external_id=parent,
    )


def business_unit_to_reference(raw: dict) -> ExternalReference:
    """TenantSettings.V2.BusinessUnitResponse; the code is its `accountCode`."""
    return _reference("business_unit", raw, name=_text(raw, "name"), code=_text(raw, "accountCode"))


def job_type_to_reference(raw: dict) -> ExternalReference:
    """Crm.V2.JobTypeResponse: {id, name, modifiedOn, externalData}; no `active` in the schema
    (the list takes `active`, so a deactivated type is left out by the default filter)."""
    return _reference("job_type", raw, name=_text(raw, "name"))


def tag_type_to_reference(raw: dict) -> ExternalReference:
    """TenantSettings.V2.TagTypeResponse: {id, name, active}."""
    return _reference("tag_type", raw, name=_text(raw, "name"))


def zone_to_reference(raw: dict) -> ExternalReference:
    """Dispatch.V2.ZoneResponse: a dispatch zone (zips, cities, business units in raw)."""
    return _reference("zone", raw, name=_text(raw, "name"))


def team_to_reference(raw: dict) -> ExternalReference:
    """Dispatch.V2.TeamResponse (SPEC GAP: documented, not in the 2022 spec): {id, active,
    name, createdBy, createdOn, modifiedOn}; a team of technicians on the dispatch board."""
    return _reference("team", raw, name=_text(raw, "name"))


def cancel_reason_to_reference(raw: dict) -> ExternalReference:
    """Crm.V2.JobCancelReasonResponse: {id, name, active}."""
    return _reference("cancel_reason", raw, name=_text(raw, "name"))


def hold_reason_to_reference(raw: dict) -> ExternalReference:
    """Crm.V2.JobHoldReasonResponse: {id, name, active}."""
    return _reference("hold_reason", raw, name=_text(raw, "name"))


def project_to_reference(raw: dict) -> ExternalReference:
    """Crm.V2.ProjectResponse: named by `name` (nullable), else its `number`, which is the code;
    its parent is the customer (a client's external id). No `active`: status is in raw."""
    number = _text(raw, "number")
    return _reference(
        "project",
        raw,
        name=_text(raw, "name") or number,
        code=number,
        parent=_id(raw.get("customerId")) or "",
    )


def technician_shift_to_reference(raw: dict) -> ExternalReference:
    """Dispatch.V2.TechnicianShiftResponse: named by its title, coded by its shiftType
    (Normal, OnCall, TimeOff), its parent the technician (a staff external id)."""
    return _reference(
        "technician_shift",
        raw,
        name=_text(raw, "title"),
        code=_type_name({"type": raw.get("shiftType")}),
        parent=_id(raw.get("technicianId")) or "",
    )


REFERENCE_MAPPERS = {
    "business_units": business_unit_to_reference,
    "job_types": job_type_to_reference,
    "tag_types": tag_type_to_reference,
    "zones": zone_to_reference,
    "teams": team_to_reference,  # SPEC GAP
    "cancel_reasons": cancel_reason_to_reference,
    "hold_reasons": hold_reason_to_reference,
    "projects": project_to_reference,
    "technician_shifts": technician_shift_to_reference,
}


def contact_to_contact(raw: dict) -> ExternalContact:
    """A contact method from either bulk list (told apart by `locationId`)."""
    if is_location_contact(raw):
        return location_contact_to_contact(raw)
    return customer_contact_to_contact(raw)
