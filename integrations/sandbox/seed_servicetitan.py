"""ServiceTitan seed data: a US HVAC and plumbing business (see ``seed.py`` for the overview).

Fixed catalogues: ``business-units`` (5), ``job-types`` (10), ``technicians`` (18),
``employees`` (6; their ids are the customers' ``createdById``), and the pricebook:
``categories`` (a two-level tree: ``parentId`` plus nested ``subcategories``), ``services``,
``materials`` and ``equipment``. Per customer: one ``locations`` record (the service address),
``contacts`` (mobile phone, e-mail), ``jobs`` (each with one ``appointments`` record, worked
by one or two technicians: ``appointment-assignments``, none on a cancelled appointment) and
``estimates`` with line items (``items[]``, SKUs from the pricebook) on one of the customer's
jobs. Assignments draw from their own generator, so adding them changed no other record.
Likewise (issue #5) the references (job cancel and hold reasons, tag types, dispatch zones,
technician shifts: ``_references``) and the per-customer ``location-contacts`` and ``projects``
(``_Maker._location_contacts``, ``_project``) have their own generators and id ranges.

Ids are int64, increasing in creation order, with gaps, and each resource has its own disjoint
range so that mixing up e.g. a customer id and a location id finds nothing. Consistency: every
id reference resolves to a seeded record; a job's ``firstAppointmentId``/``lastAppointmentId``
is its appointment; ``completedOn`` is after the appointment ended; a sold estimate's
``soldBy`` is a technician, also set as the job's ``soldById``; an estimate item's ``total`` is
``qty × unitRate``. Money is a decimal number with at most 2 decimals [spec: ``format:
decimal``]; times are UTC.

The 2022 ``EstimateResponse`` has no ``customerId``/``locationId`` (and forbids additional
properties), so an estimate reaches its customer and location through ``jobId``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from integrations.sandbox import accounts
from integrations.sandbox import seed_servicetitan_ledger as ledger
from integrations.sandbox.seed_base import (
    DAY_US,
    FIRST_NAMES,
    HOUR_US,
    INT,
    LAST_NAMES,
    RAW,
    SOFT_DELETED_SHARE,
    STR,
    YEAR_US,
    Dice,
    Mix,
    RowSink,
    dollars,
    json_template,
)
from integrations.sandbox.servicetitan_resources import (
    appointment_assignment_defaults,
    appointment_defaults,
    business_unit_defaults,
    category_defaults,
    contact_defaults,
    employee_defaults,
    equipment_defaults,
    job_defaults,
    location_contact_defaults,
    location_defaults,
    material_defaults,
    project_defaults,
    service_defaults,
    team_defaults,
    technician_defaults,
    technician_shift_defaults,
    zone_defaults,
)
from integrations.sandbox.store import Row, dumps, iso_utc

# The resources seeded (store object names), in reporting order.
OBJECTS = (
    "customers",
    "locations",
    "contacts",
    "jobs",
    "appointments",
    "appointment-assignments",
    "estimates",
    "technicians",
    "employees",
    "business-units",
    "job-types",
    "categories",
    "services",
    "materials",
    "equipment",
    # Issue #5 references (``_references``) and per-customer extras (``_Maker._extras``).
    "location-contacts",
    "projects",
    "job-cancel-reasons",
    "job-hold-reasons",
    "tag-types",
    "zones",
    "teams",  # SPEC GAP: documented dispatch teams, not in the 2022 spec
    "technician-shifts",
    # Issue #5 accounting, discounts and fees, inventory (``seed_servicetitan_ledger``).
    *ledger.OBJECTS,
)
_US_STREETS = (
    "Maple Oak Pine Cedar Elm Washington Lake Hill Sunset Park Main Church Highland Meadow "
    "Ridge Willow Cherry Lincoln Jackson Franklin Madison River Spring Valley Forest"
).split()
_US_STREET_TYPES = ("St", "Ave", "Dr", "Rd", "Ln", "Blvd", "Ct", "Way", "Pl", "Cir")
_US_TRADES = (
    "Dental|Apartments|Property Management|Medical Group|Bakery|Auto Repair|Fitness|Grill|"
    "Senior Living|Church|Elementary School|Hotel|Office Park|Veterinary Hospital|Storage"
).split("|")
_US_SUFFIX = ("LLC", "Inc.", "", "Co.", "Group", "LLC")
# (city, state, zip prefix, latitude, longitude)
_US_CITIES = (
    ("Phoenix", "AZ", "850", 33.4484, -112.0740),
    ("Mesa", "AZ", "852", 33.4152, -111.8315),
    ("Scottsdale", "AZ", "852", 33.4942, -111.9261),
    ("Dallas", "TX", "752", 32.7767, -96.7970),
    ("Plano", "TX", "750", 33.0198, -96.6989),
    ("Austin", "TX", "787", 30.2672, -97.7431),
    ("Houston", "TX", "770", 29.7604, -95.3698),
    ("Atlanta", "GA", "303", 33.7490, -84.3880),
    ("Orlando", "FL", "328", 28.5383, -81.3792),
    ("Tampa", "FL", "336", 27.9506, -82.4572),
    ("Charlotte", "NC", "282", 35.2271, -80.8431),
    ("Denver", "CO", "802", 39.7392, -104.9903),
    ("Las Vegas", "NV", "891", 36.1699, -115.1398),
    ("Sacramento", "CA", "958", 38.5816, -121.4944),
    ("San Diego", "CA", "921", 32.7157, -117.1611),
    ("Columbus", "OH", "432", 39.9612, -82.9988),
    ("Nashville", "TN", "372", 36.1627, -86.7816),
    ("Kansas City", "MO", "641", 39.0997, -94.5786),
)
_AREA_CODES = {
    "Phoenix": "602",
    "Mesa": "480",
    "Scottsdale": "480",
    "Dallas": "214",
    "Plano": "972",
    "Austin": "512",
    "Houston": "713",
    "Atlanta": "404",
    "Orlando": "407",
    "Tampa": "813",
    "Charlotte": "704",
    "Denver": "303",
    "Las Vegas": "702",
    "Sacramento": "916",
    "San Diego": "619",
    "Columbus": "614",
    "Nashville": "615",
    "Kansas City": "816",
}
_MAIL_DOMAINS = ("gmail.com", "gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com")
_US_CUSTOM_FIELDS = (
    (1001, "Referral Source", ("Google", "Yelp", "Neighbor", "Repeat", "Facebook", "Radio")),
    (1002, "Preferred Contact", ("Phone", "Email", "Text")),
    (1003, "Gate Code", ("#1234", "#4455", "*9090", "0000")),
)
# Employees (office staff); customers, locations and jobs name them in createdById.
_EMPLOYEES = (
    (5001, "Owner"),
    (5002, "CSR"),
    (5003, "CSR"),
    (5017, "Dispatch"),
    (5020, "Accounting"),
    (5024, "SalesManager"),
)
_US_CREATOR_IDS = tuple(e for e, _ in _EMPLOYEES[:5])
# First ServiceTitan customer id, and how far back customer creation starts.
_ST_FIRST_ID = 11_000_000
_ST_HISTORY_YEARS = 4
# Id ranges of the other per-client resources (disjoint from customers' 11M–~31M at 1M).
_FIRST_IDS = {
    "locations": 100_000_000,
    "contacts": 150_000_000,
    "jobs": 200_000_000,
    "appointments": 300_000_000,
    "estimates": 400_000_000,
    "estimate-items": 500_000_000,
}

_BUSINESS_UNITS = (
    (1001, "HVAC - Service"),
    (1002, "HVAC - Replacement"),
    (1003, "Plumbing - Service"),
    (1004, "Plumbing - Drains"),
    (1005, "Maintenance Agreements"),
)
# (id, name, business unit, trade, replacement work?)
_JOB_TYPES = (
    (2001, "AC Repair", 1001, "cool", False),
    (2002, "Furnace Repair", 1001, "heat", False),
    (2003, "Heat Pump Repair", 1001, "heat", False),
    (2004, "HVAC Maintenance", 1005, "maint", False),
    (2005, "System Replacement Estimate", 1002, "cool", True),
    (2006, "System Install", 1002, "cool", True),
    (2007, "Water Heater Repair", 1003, "water", False),
    (2008, "Water Heater Replacement", 1003, "water", True),
    (2009, "Drain Cleaning", 1004, "drain", False),
    (2010, "Leak Repair", 1003, "plumb", False),
)
_ESTIMATE_JOB_TYPE = 2005
# Marketing campaigns are referenced by jobs (required campaignId) but not emulated.
_CAMPAIGN_IDS = (3001, 3002, 3003, 3004, 3005, 3006)
_PRIORITIES = ("Normal",) * 14 + ("High",) * 3 + ("Low",) * 2 + ("Urgent",)
# (status, share); appointment status for each [spec: AppointmentStatus].
_JOB_STATUSES = (
    ("Completed", 0.62),
    ("Scheduled", 0.87),
    ("Canceled", 0.95),
    ("Hold", 0.98),
    ("InProgress", 1.0),
)
# Assignment status per job status [spec: Dispatch.JobAppointmentAssignmentStatus, which has
# no Hold nor Canceled]; a cancelled appointment has no technician.
_ASSIGNMENT_STATUS = {
    "Completed": "Done",
    "Scheduled": "Scheduled",
    "Hold": "Scheduled",
    "InProgress": "Working",
}
_ASSIGNMENT_FIRST_ID = 600_000_000
# Issue #5 per-customer extras: their own id ranges.
_LOCATION_CONTACT_FIRST_ID = 170_000_000
_PROJECT_FIRST_ID = 180_000_000
_SITE_MEMOS = ('"Front desk"', '"Site manager"', '"Facilities"', "null")
_PROJECT_STATUSES = ("Open", "In Progress", "In Progress", "Completed", "Completed", "Canceled")
_PROJECT_NAMES_HOME = (
    "Whole-home HVAC replacement",
    "Repipe - PEX",
    "Ductwork replacement",
    "Water heater + softener install",
)
_PROJECT_NAMES_COMMERCIAL = (
    "Rooftop unit replacement",
    "Tenant improvement - HVAC",
    "Restroom plumbing remodel",
    "Preventive maintenance program rollout",
)
# (name, active): the last of each list was retired.
_CANCEL_REASONS = (
    ("Customer canceled", True),
    ("Scheduling conflict", True),
    ("Price too high", True),
    ("Went with another company", True),
    ("Duplicate job", True),
    ("Weather", False),
)
_HOLD_REASONS = (
    ("Waiting on parts", True),
    ("Waiting on customer approval", True),
    ("Waiting on permit", True),
    ("Financing pending", True),
    ("Weather delay", False),
)
_TAG_TYPES = (
    ("Member", True),
    ("VIP", True),
    ("Warranty", True),
    ("Do Not Service", True),
    ("Commercial Account", True),
    ("New Customer", True),
    ("Follow Up", True),
    ("Legacy Import", False),
)
# (name, cities, business units, active)
_ZONES = (
    ("Phoenix Metro", ("Phoenix", "Mesa", "Scottsdale"), (1001, 1002, 1003), True),
    ("Dallas-Fort Worth", ("Dallas", "Plano"), (1001, 1003, 1004), True),
    ("Central Texas", ("Austin", "Houston"), (1001, 1003), True),
    ("Southeast", ("Atlanta", "Orlando", "Tampa", "Charlotte", "Nashville"), (1001,), True),
    ("West (retired)", ("Las Vegas", "Sacramento", "San Diego", "Denver"), (1001,), False),
)
# SPEC GAP: dispatch teams (documented Dispatch.V2.TeamResponse). (name, active)
_TEAMS = (
    ("HVAC Service", True),
    ("Plumbing", True),
    ("Installs", True),
    ("Commercial", True),
    ("Night Crew (disbanded)", False),
)
_DISPATCHER_ID = 5017  # the Dispatch employee
_APPOINTMENT_STATUS = {
    "Completed": "Done",
    "Scheduled": "Scheduled",
    "Canceled": "Canceled",
    "Hold": "Hold",
    "InProgress": "Working",
}
_SUMMARIES = {
    "cool": ("AC not cooling, blowing warm air.", "Outdoor unit not running.", "AC leaking water."),
    "heat": ("No heat.", "Furnace short cycling.", "Heat pump iced over."),
    "maint": ("Seasonal maintenance visit.", "Membership tune-up."),
    "water": ("No hot water.", "Water heater leaking at base.", "Pilot light won't stay lit."),
    "drain": ("Kitchen sink clogged.", "Main line backing up.", "Slow drains throughout."),
    "plumb": ("Leak under sink.", "Running toilet.", "Low water pressure."),
}
# Estimate status {value, name}: Open/Sold/Dismissed; Dismissed = 2 [3p], the others [mem].
_ESTIMATE_STATUSES = (
    ({"value": 0, "name": "Open"}, 0.45),
    ({"value": 1, "name": "Sold"}, 0.80),
    ({"value": 2, "name": "Dismissed"}, 1.0),
)

# Pricebook categories: (id, name, type, parent id).
_CATEGORIES = (
    (30001, "Heating", "Services", None),
    (30011, "Furnace", "Services", 30001),
    (30012, "Heat Pump", "Services", 30001),
    (30002, "Cooling", "Services", None),
    (30021, "AC Repair", "Services", 30002),
    (30022, "AC Replacement", "Services", 30002),
    (30003, "Plumbing", "Services", None),
    (30031, "Water Heaters", "Services", 30003),
    (30032, "Drains & Sewer", "Services", 30003),
    (30004, "Maintenance", "Services", None),
    (30101, "HVAC Parts", "Materials", None),
    (30111, "Filters", "Materials", 30101),
    (30112, "Electrical Components", "Materials", 30101),
    (30113, "Refrigerant", "Materials", 30101),
    (30102, "Plumbing Parts", "Materials", None),
    (30121, "Valves & Fittings", "Materials", 30102),
    (30122, "Water Heater Parts", "Materials", 30102),
    (30103, "Equipment", "Materials", None),
    (30131, "Air Conditioners & Heat Pumps", "Materials", 30103),
    (30132, "Furnaces", "Materials", 30103),
    (30133, "Water Heaters", "Materials", 30103),
)
# Services: (name, price $, hours, category id, trade).
_SERVICES = (
    ("Furnace Diagnostic", 89, 1.0, 30011, "heat"),
    ("Furnace Tune-Up", 129, 1.0, 30011, "heat"),
    ("Replace Hot Surface Ignitor", 325, 1.0, 30011, "heat"),
    ("Replace Flame Sensor", 195, 0.5, 30011, "heat"),
    ("Replace Inducer Motor", 895, 2.0, 30011, "heat"),
    ("Replace Blower Motor", 865, 2.0, 30011, "heat"),
    ("Heat Pump Diagnostic", 89, 1.0, 30012, "heat"),
    ("Replace Reversing Valve", 1450, 4.0, 30012, "heat"),
    ("Replace Defrost Board", 595, 1.5, 30012, "heat"),
    ("AC Diagnostic", 89, 1.0, 30021, "cool"),
    ("Replace Run Capacitor", 245, 0.5, 30021, "cool"),
    ("Replace Contactor", 225, 0.5, 30021, "cool"),
    ("Refrigerant Recharge (per lb)", 95, 0.25, 30021, "cool"),
    ("Replace Condenser Fan Motor", 695, 1.5, 30021, "cool"),
    ("Clear Condensate Drain", 175, 0.75, 30021, "cool"),
    ("Refrigerant Leak Search", 395, 2.0, 30021, "cool"),
    ("Install 3 Ton AC System", 7850, 8.0, 30022, "cool"),
    ("Install 4 Ton AC System", 8950, 9.0, 30022, "cool"),
    ("Install 5 Ton Heat Pump System", 11200, 10.0, 30022, "cool"),
    ("Water Heater Flush", 149, 1.0, 30031, "water"),
    ("Replace Anode Rod", 295, 1.0, 30031, "water"),
    ("Replace Thermocouple", 225, 0.75, 30031, "water"),
    ("Install 50 Gal Gas Water Heater", 2150, 4.0, 30031, "water"),
    ("Install Tankless Water Heater", 4350, 6.0, 30031, "water"),
    ("Drain Cleaning - Main Line", 325, 1.5, 30032, "drain"),
    ("Drain Cleaning - Secondary Line", 195, 1.0, 30032, "drain"),
    ("Hydro Jetting", 595, 2.5, 30032, "drain"),
    ("Sewer Camera Inspection", 295, 1.0, 30032, "drain"),
    ("Replace Toilet Fill Valve", 185, 0.75, 30003, "plumb"),
    ("Faucet Replacement", 275, 1.0, 30003, "plumb"),
    ("Leak Repair", 245, 1.0, 30003, "plumb"),
    ("Maintenance Visit - Cooling", 99, 1.0, 30004, "maint"),
    ("Maintenance Visit - Heating", 99, 1.0, 30004, "maint"),
    ("Comfort Club Membership (Annual)", 189, 0.0, 30004, "maint"),
)
# Materials: (name, cost $, category id, trade, sizes or None).
_MATERIALS: tuple[tuple[str, float, int, str, Any], ...] = (
    ("Air Filter {} MERV 8", 7.5, 30111, "maint cool heat", ("16x25x1", "20x25x1", "20x20x1")),
    ("Media Filter {} MERV 11", 28.0, 30111, "maint cool heat", ("16x25x4", "20x25x4")),
    ("Dual Run Capacitor {} MFD", 18.0, 30112, "cool", ("35/5", "40/5", "45/5", "55/5")),
    ("Contactor {}", 16.0, 30112, "cool", ("1-Pole 30A", "2-Pole 40A")),
    ("Hot Surface Ignitor", 22.0, 30112, "heat", None),
    ("Flame Sensor", 9.0, 30112, "heat", None),
    ("Blower Motor {} HP", 145.0, 30112, "heat cool", ("1/3", "1/2", "3/4")),
    ("Condenser Fan Motor {} HP", 98.0, 30112, "cool", ("1/4", "1/3")),
    ("Defrost Control Board", 110.0, 30112, "heat", None),
    ("Smart Thermostat", 165.0, 30112, "cool heat maint", None),
    ("Programmable Thermostat", 75.0, 30112, "cool heat", None),
    ("Condensate Pump", 62.0, 30112, "cool", None),
    ("Float Safety Switch", 14.0, 30112, "cool maint", None),
    ("Refrigerant R-410A (per lb)", 14.0, 30113, "cool", None),
    ("Refrigerant R-454B (per lb)", 19.0, 30113, "cool", None),
    ("Line Set {} (per ft)", 4.2, 30113, "cool", ("3/8 x 3/4", "3/8 x 7/8")),
    ("Disconnect Box 60A", 24.0, 30112, "cool", None),
    ("Condenser Pad", 38.0, 30113, "cool", None),
    ("Ball Valve {}", 11.0, 30121, "plumb water", ('1/2"', '3/4"')),
    ("Angle Stop {}", 7.0, 30121, "plumb", ('3/8"', '1/2"')),
    ("Braided Supply Line {}", 6.5, 30121, "plumb water", ('12"', '20"')),
    ("PEX Pipe {} (per ft)", 0.9, 30121, "plumb water", ('1/2"', '3/4"')),
    ("Toilet Fill Valve", 12.0, 30121, "plumb", None),
    ("Toilet Flapper", 5.0, 30121, "plumb", None),
    ("Wax Ring", 4.0, 30121, "plumb", None),
    ("Faucet Cartridge", 24.0, 30121, "plumb", None),
    ("Drain Auger Cable Wear Fee", 20.0, 30121, "drain", None),
    ("Enzyme Drain Treatment", 12.0, 30121, "drain", None),
    ("Anode Rod", 32.0, 30122, "water", None),
    ("Thermocouple", 11.0, 30122, "water", None),
    ("Gas Control Valve", 145.0, 30122, "water", None),
    ("T&P Relief Valve", 16.0, 30122, "water", None),
    ("Expansion Tank {}", 42.0, 30122, "water", ("2 Gal", "4.5 Gal")),
    ("Water Heater Drain Pan", 18.0, 30122, "water", None),
    ("Gas Flex Connector", 14.0, 30122, "water", None),
)
# Equipment: (name, manufacturer, model, cost $, category id, trade).
_EQUIPMENT = (
    ("3 Ton 15.2 SEER2 AC Condenser", "Carrier", "24ACC636", 2850, 30131, "cool"),
    ("4 Ton 15.2 SEER2 AC Condenser", "Carrier", "24ACC648", 3250, 30131, "cool"),
    ("3 Ton 14.3 SEER2 AC Condenser", "Goodman", "GLXS4BA3610", 1950, 30131, "cool"),
    ("4 Ton 14.3 SEER2 AC Condenser", "Goodman", "GLXS4BA4810", 2250, 30131, "cool"),
    ("5 Ton 16 SEER2 Heat Pump", "Trane", "4TWR6060", 4450, 30131, "cool"),
    ("3 Ton Variable Speed Heat Pump", "Lennox", "XP25-036", 6150, 30131, "cool"),
    ("3 Ton Evaporator Coil", "Carrier", "CNPVP3617", 890, 30131, "cool"),
    ("4 Ton Evaporator Coil", "Carrier", "CNPVP4821", 990, 30131, "cool"),
    ("60K BTU 96% Gas Furnace", "Trane", "S9V2B060", 1650, 30132, "heat"),
    ("80K BTU 96% Gas Furnace", "Trane", "S9V2B080", 1790, 30132, "heat"),
    ("100K BTU 96% Gas Furnace", "Lennox", "EL296V100", 1980, 30132, "heat"),
    ("Air Handler 4 Ton", "Goodman", "AMST48CU1400", 1350, 30132, "heat cool"),
    ("40 Gal Gas Water Heater", "Rheem", "XG40T06EC36U1", 690, 30133, "water"),
    ("50 Gal Gas Water Heater", "Rheem", "XG50T06EC38U1", 790, 30133, "water"),
    ("50 Gal Electric Water Heater", "A. O. Smith", "E6-50H45DV", 720, 30133, "water"),
    ("Tankless Gas Water Heater 199K BTU", "Navien", "NPE-240A2", 1650, 30133, "water"),
    ("Tankless Gas Water Heater 180K BTU", "Rinnai", "RU180iN", 1490, 30133, "water"),
    ("50 Gal Hybrid Heat Pump Water Heater", "A. O. Smith", "HPTS-50", 1890, 30133, "water"),
)
_ACCOUNTS = {
    "Service": (4001, "Service Income"),
    "Material": (4002, "Materials Income"),
    "Equipment": (4003, "Equipment Income"),
}
_VENDORS = ((8001, "Ferguson"), (8002, "Johnstone Supply"), (8003, "Carrier Enterprise"))
_OPTION_NAMES = ("Option 1 - Good", "Option 2 - Better", "Option 3 - Best")
_REPAIR_NAMES = ("Recommended Repair", "Repair Option", "Repair + Maintenance")


@dataclass(frozen=True)
class _Sku:
    """A pricebook item as estimate lines reference it."""

    kind: str  # Service | Material | Equipment
    id: int
    price_c: int
    description: str
    trades: frozenset[str]
    sku: dict[str, Any]  # the Estimates.V2.SkuModel
    account: str


@dataclass
class _Catalogue:
    rows: dict[str, list[Row]]
    techs: list[int]  # active technician ids
    skus: dict[str, list[_Sku]]  # by kind
    tech_names: dict[int, str] = field(default_factory=dict)  # technician id -> name


def _tenant_ref(now_us: int) -> dict[str, Any]:
    tenant = accounts.SERVICETITAN_TENANT
    return {
        "id": int(tenant.tenant_id),
        "name": tenant.name,
        "accountCode": None,
        "franchiseId": None,
        "conceptCode": None,
        "modifiedOn": iso_utc(now_us - 2 * YEAR_US),
    }


def _prices(price_c: int) -> dict[str, float]:
    """Price, member price (-15 %), add-on price (-5 %) and add-on member price (-20 %)."""
    return {
        "price": dollars(price_c),
        "memberPrice": dollars(round(price_c * 0.85)),
        "addOnPrice": dollars(round(price_c * 0.95)),
        "addOnMemberPrice": dollars(round(price_c * 0.80)),
    }


def _round_price(dollars_: float) -> int:
    """A shelf price in cents: whole dollars from $20, else to the 50 cents."""
    return round(dollars_) * 100 if dollars_ >= 20 else round(dollars_ * 2) * 50


def _catalogue(d: Dice, now_us: int) -> _Catalogue:
    """The fixed resources (content fixed; edit times and a few flags from ``d``)."""
    rows: dict[str, list[Row]] = {
        name: []
        for name in (
            "business-units",
            "job-types",
            "technicians",
            "employees",
            "categories",
            "services",
            "materials",
            "equipment",
        )
    }
    founded = now_us - 5 * YEAR_US
    domain = "sandbox-hvac.example"

    def created() -> int:
        return founded + int(d.random() * 3 * YEAR_US)

    for bu_id, name in _BUSINESS_UNITS:
        data = business_unit_defaults()
        data.update(
            name=name,
            officialName=accounts.SERVICETITAN_TENANT.name,
            email=f"service@{domain}",
            phoneNumber="6025550100",
            invoiceHeader=accounts.SERVICETITAN_TENANT.name,
            invoiceMessage="Thank you for your business!",
            address={
                "street": "1200 W Washington St",
                "unit": None,
                "city": "Phoenix",
                "state": "AZ",
                "zip": "85007",
                "country": "USA",
            },
            quickbooksClass=name,
            accountCode=f"BU{bu_id}",
            tenant=_tenant_ref(now_us),
            createdOn=iso_utc(founded),
        )
        rows["business-units"].append((bu_id, d.modified_us(now_us, founded), True, dumps(data)))
    for jt_id, name, *_ in _JOB_TYPES:
        data = {"name": name, "externalData": []}
        rows["job-types"].append((jt_id, d.modified_us(now_us, founded), True, dumps(data)))
    for emp_id, role in _EMPLOYEES:
        first, last = d.pick(FIRST_NAMES), d.pick(LAST_NAMES)
        data = employee_defaults()
        data.update(
            name=f"{first} {last}",
            role=role,
            businessUnitId=None,
            createdOn=iso_utc(created()),
            email=f"{first}.{last}@{domain}".lower(),
            phoneNumber=f"602555{d.int(1000, 9999)}",
            loginName=f"{first[0]}{last}".lower(),
        )
        # The sales manager has left: a deactivated employee.
        rows["employees"].append(
            (emp_id, d.modified_us(now_us), role != "SalesManager", dumps(data))
        )
    techs: list[int] = []
    tech_names: dict[int, str] = {}
    for n in range(18):
        tech_id = 7001 + n
        first, last = d.pick(FIRST_NAMES), d.pick(LAST_NAMES)
        city, state, zip_prefix, lat, lng = _US_CITIES[n % 3]
        data = technician_defaults()
        data.update(
            name=f"{first} {last}",
            businessUnitId=_BUSINESS_UNITS[n % 4][0],
            createdOn=iso_utc(created()),
            email=f"{first}.{last}{n}@{domain}".lower(),
            phoneNumber=f"{_AREA_CODES[city]}555{d.int(1000, 9999)}",
            loginName=f"{first[0]}{last}{n}".lower(),
            home={
                "street": f"{d.int(100, 9999)} {d.pick(_US_STREETS)} {d.pick(_US_STREET_TYPES)}",
                "unit": None,
                "country": "USA",
                "city": city,
                "state": state,
                "zip": f"{zip_prefix}{d.int(0, 99):02d}",
                "streetAddress": None,
                "latitude": round(lat + 0.2 * d.random() - 0.1, 6),
                "longitude": round(lng + 0.2 * d.random() - 0.1, 6),
            },
            dailyGoal=float(d.pick((1500, 2000, 2500, 3000))),
            isManagedTech=n >= 16,
        )
        active = n != 11  # one technician has left
        rows["technicians"].append((tech_id, d.modified_us(now_us), active, dumps(data)))
        if active:
            techs.append(tech_id)
        tech_names[tech_id] = data["name"]

    # Pricebook categories: children first collected, then nested into their parents.
    children: dict[int, list[dict[str, Any]]] = {}
    category_rows: list[tuple[int, dict[str, Any]]] = []
    positions: dict[int | None, int] = {}
    for cat_id, name, kind, parent in _CATEGORIES:
        positions[parent] = positions.get(parent, 0) + 1
        data = category_defaults()
        data.update(
            name=name,
            description=f"{name} ({kind.lower()})",
            parentId=parent,
            position=positions[parent],
            categoryType=kind,
            businessUnitIds=[bu for bu, _ in _BUSINESS_UNITS[:4]],
        )
        category_rows.append((cat_id, data))
        if parent is not None:
            children.setdefault(parent, []).append({"id": cat_id, "active": True, **data})
    category_names = {cat_id: name for cat_id, name, _, _ in _CATEGORIES}
    for cat_id, data in category_rows:
        data["subcategories"] = children.get(cat_id, [])
        rows["categories"].append((cat_id, d.modified_us(now_us), True, dumps(data)))

    skus: dict[str, list[_Sku]] = {"Service": [], "Material": [], "Equipment": []}

    def add_sku(
        kind: str, sku_id: int, code: str, name: str, price_c: int, hours: float, trades: str
    ) -> int:
        modified = d.modified_us(now_us, founded)
        gl_id, gl_name = _ACCOUNTS[kind]
        sku = {
            "id": sku_id,
            "name": code,
            "displayName": name,
            "type": kind,
            "soldHours": hours,
            "generalLedgerAccountId": gl_id,
            "generalLedgerAccountName": gl_name,
            "modifiedOn": iso_utc(modified),
        }
        skus[kind].append(
            _Sku(kind, sku_id, price_c, name, frozenset(trades.split()), sku, gl_name)
        )
        return modified

    def vendor(cost_c: int, part: str) -> dict[str, Any]:
        vendor_id, vendor_name = d.pick(_VENDORS)
        return {
            "id": vendor_id * 1000 + d.int(1, 999),
            "vendorName": vendor_name,
            "vendorId": vendor_id,
            "memo": None,
            "vendorPart": part,
            "cost": dollars(cost_c),
            "active": True,
            "otherSubAccounts": None,
        }

    materials_by_trade: dict[str, list[int]] = {}
    for n, (template, cost, cat_id, trades, sizes) in enumerate(_MATERIALS):
        for k, size in enumerate(sizes or ("",)):
            sku_id = 40001 + n * 10 + k
            name = template.format(size)
            cost_c = round(cost * 100)
            price_c = _round_price(cost * (2.2 + d.random()))
            code = f"MAT-{sku_id - 40000:04d}"
            data = material_defaults()
            data.update(
                code=code,
                displayName=name,
                description=name,
                cost=dollars(cost_c),
                **_prices(price_c),
                unitOfMeasure="Foot" if "(per ft)" in name else "Each",
                isInventory=cost < 100,
                account="Materials Income",
                costOfSaleAccount="Cost of Goods Sold",
                assetAccount="Inventory Asset",
                taxable=True,
                primaryVendor=vendor(cost_c, f"{code}-V"),
                otherVendors=[],
                categories=[cat_id],
            )
            modified = add_sku("Material", sku_id, code, name, price_c, 0.0, trades)
            active = not d.chance(SOFT_DELETED_SHARE)
            rows["materials"].append((sku_id, modified, active, dumps(data)))
            for trade in trades.split():
                materials_by_trade.setdefault(trade, []).append(sku_id)
    for n, (name, manufacturer, model, cost, cat_id, trades) in enumerate(_EQUIPMENT):
        sku_id = 60001 + n
        cost_c = cost * 100
        price_c = _round_price(cost * (1.6 + 0.3 * d.random()))
        code = f"EQ-{model}"
        data = equipment_defaults()
        data.update(
            code=code,
            displayName=f"{manufacturer} {name}",
            description=f"{manufacturer} {model} {name}",
            **_prices(price_c),
            manufacturer=manufacturer,
            model=model,
            manufacturerWarranty={"duration": 120, "description": "10-year parts (registered)"},
            serviceProviderWarranty={"duration": 12, "description": "1-year labor"},
            categories=[cat_id],
            equipmentMaterials=[
                {"skuId": sku, "quantity": 1.0}
                for sku in materials_by_trade.get(trades.split()[0], [])[:2]
            ],
            primaryVendor=vendor(cost_c, model),
            otherVendors=[],
            account="Equipment Income",
            costOfSaleAccount="Cost of Goods Sold",
            assetAccount="Inventory Asset",
            paysCommission=True,
            commissionBonus=50.0,
            hours=6.0,
            taxable=True,
            cost=dollars(cost_c),
            unitOfMeasure="Each",
            isInventory=False,
        )
        modified = add_sku("Equipment", sku_id, code, f"{manufacturer} {name}", price_c, 0, trades)
        rows["equipment"].append((sku_id, modified, True, dumps(data)))
    equipment_by_trade = {
        trade: [s.id for s in skus["Equipment"] if trade in s.trades]
        for trade in ("cool", "heat", "water")
    }
    for n, (name, price, hours, cat_id, trade) in enumerate(_SERVICES):
        sku_id = 50001 + n
        price_c = price * 100
        code = f"SVC-{sku_id - 50000:03d}"
        data = service_defaults()
        data.update(
            code=code,
            displayName=name,
            description=name,
            warranty={"duration": 90, "description": "90-day labor warranty"},
            categories=[{"id": cat_id, "name": category_names[cat_id], "active": True}],
            **_prices(price_c),
            taxable=False,
            account="Service Income",
            hours=hours,
            isLabor=True,
            recommendations=[],
            upgrades=[],
            serviceMaterials=[
                {"skuId": sku, "quantity": 1.0} for sku in materials_by_trade.get(trade, [])[:1]
            ],
            serviceEquipment=[
                {"skuId": sku, "quantity": 1.0}
                for sku in (equipment_by_trade.get(trade, [])[:1] if "Install" in name else [])
            ],
            paysCommission=price >= 1000,
        )
        modified = add_sku("Service", sku_id, code, name, price_c, hours, trade)
        active = not d.chance(SOFT_DELETED_SHARE)
        rows["services"].append((sku_id, modified, active, dumps(data)))
    return _Catalogue(rows, techs, skus, tech_names)


# --- customers ---------------------------------------------------------------------------------


def customer_records(
    rng: random.Random, count: int, now_us: int
) -> Iterator[tuple[int, int, bool, dict[str, Any], int]]:
    """``count`` customers as (id, modified_us, active, data, created_us)."""
    d = Dice(rng)
    start_us = now_us - _ST_HISTORY_YEARS * YEAR_US
    step_us = (now_us - start_us) / max(count, 1)
    customer_id = _ST_FIRST_ID
    recent: list[int] = []  # a bounded window of earlier active ids, for mergedToId
    for i in range(count):
        customer_id += d.int(1, 40)
        created_us = start_us + int((i + d.random()) * step_us)
        city, state, zip_prefix, lat, lng = d.pick(_US_CITIES)
        commercial = d.chance(0.25)
        if commercial:
            name = f"{d.pick(LAST_NAMES)} {d.pick(_US_TRADES)} {d.pick(_US_SUFFIX)}".strip()
            unit = f"Suite {d.int(100, 450)}" if d.chance(0.3) else None
        else:
            name = f"{d.pick(FIRST_NAMES)} {d.pick(LAST_NAMES)}"
            unit = f"Apt {d.int(1, 40)}" if d.chance(0.08) else None
        custom_fields = [
            {"typeId": type_id, "name": label, "value": d.pick(values)}
            for type_id, label, values in _US_CUSTOM_FIELDS
            if d.chance(0.2)
        ]
        active = not d.chance(SOFT_DELETED_SHARE)
        merged_to = None
        if not active and len(recent) >= 100 and d.chance(0.5):
            # "False indicates that someone has deactivated the customer record, typically upon
            # merging with another record" [spec: CustomerResponse.active].
            merged_to = d.pick(recent)
        elif active:
            if len(recent) < 1000:
                recent.append(customer_id)
            else:
                recent[i % 1000] = customer_id
        data: dict[str, Any] = {
            "name": name,
            "type": "Commercial" if commercial else "Residential",
            "address": {
                "street": f"{d.int(100, 9999)} {d.pick(_US_STREETS)} {d.pick(_US_STREET_TYPES)}",
                "unit": unit,
                "city": city,
                "state": state,
                "zip": f"{zip_prefix}{d.int(0, 99):02d}",
                "country": "USA",
                "latitude": round(lat + 0.3 * d.random() - 0.15, 6),
                "longitude": round(lng + 0.3 * d.random() - 0.15, 6),
            },
            "customFields": custom_fields,
            "balance": round(2500 * d.random(), 2) if d.chance(0.12) else 0,
            "doNotMail": d.chance(0.05),
            "doNotService": d.chance(0.01),
            "createdOn": iso_utc(created_us),
            "createdById": d.pick(_US_CREATOR_IDS),
            "mergedToId": merged_to,
        }
        yield customer_id, d.modified_us(now_us, floor_us=created_us), active, data, created_us


def servicetitan_customers(rng: random.Random, count: int, now_us: int) -> Iterator[Row]:
    """``count`` deterministic customer rows (see ``customer_records``)."""
    for customer_id, modified, active, data, _ in customer_records(rng, count, now_us):
        yield customer_id, modified, active, dumps(data)


# --- per-customer children ---------------------------------------------------------------------


_encode_str = json.JSONEncoder(ensure_ascii=False).encode
_PHONE_MEMOS = ("null", '"Cell"', '"Home"', '"Office"')
_NO_PHONE = '{"phoneNumber":"","doNotText":false}'
_INSTRUCTIONS = ("null", "null", "null", '"Call 30 min ahead."', '"Dog in yard."')


def _template(defaults: dict[str, Any], values: dict[str, Any]) -> str:
    """A ``json_template`` over a resource's defaults (spec order): ``values`` are per record."""
    return json_template([(k, values.get(k, v)) for k, v in defaults.items()])


_LOCATION = _template(
    location_defaults(),
    {"customerId": INT, "name": RAW, "address": RAW, "createdOn": STR, "createdById": INT},
)
_CONTACT = _template(
    contact_defaults(),
    {"phoneSettings": RAW, "type": STR, "value": STR, "memo": RAW, "customerId": INT},
)
_LOCATION_CONTACT = _template(
    location_contact_defaults(),
    {"type": STR, "value": STR, "memo": RAW, "phoneSettings": RAW, "locationId": INT},
)
_APPOINTMENT = _template(
    appointment_defaults(),
    {
        "jobId": INT,
        "appointmentNumber": STR,
        "start": STR,
        "end": STR,
        "arrivalWindowStart": RAW,
        "arrivalWindowEnd": RAW,
        "status": STR,
        "specialInstructions": RAW,
        "createdOn": STR,
    },
)
_ASSIGNMENT = _template(
    appointment_assignment_defaults(),
    {
        "technicianId": INT,
        "technicianName": RAW,
        "assignedById": INT,
        "assignedOn": STR,
        "status": STR,
        "jobId": INT,
        "appointmentId": INT,
    },
)
# The order of _Job.values; every job has exactly one appointment.
_JOB_FIELDS = (
    "jobNumber customerId locationId jobStatus completedOn businessUnitId jobTypeId priority "
    "campaignId summary firstAppointmentId lastAppointmentId noCharge createdOn createdById "
    "soldById"
).split()
_JOB_KINDS = {"jobNumber": STR, "jobStatus": STR, "priority": STR, "summary": STR}
_JOB_KINDS |= {"completedOn": RAW, "noCharge": RAW, "soldById": RAW, "createdOn": STR}
_JOB = _template(
    {**job_defaults(), "appointmentCount": 1},
    {name: _JOB_KINDS.get(name, INT) for name in _JOB_FIELDS},
)
_SOLD_BY = _JOB_FIELDS.index("soldById")
_STATUS, _COMPLETED = _JOB_FIELDS.index("jobStatus"), _JOB_FIELDS.index("completedOn")
if [k for k in job_defaults() if k in _JOB_FIELDS] != _JOB_FIELDS:
    raise RuntimeError("_JOB_FIELDS must follow the order of job_defaults()")


@dataclass
class _Job:
    id: int
    values: list[Any]  # for _JOB, in _JOB_FIELDS order
    created: int
    modified: int
    type: tuple
    summary: str


class _Ids:
    """Increasing ids with small random gaps, one range per resource."""

    __slots__ = ("d", "value")

    def __init__(self, d: Dice, first: int) -> None:
        self.d = d
        self.value = first

    def next(self) -> int:
        self.value += 1 + int(self.d.random() * 3)
        return self.value


def _business_hours(d: Dice, instant: int) -> int:
    """A start time on ``instant``'s UTC day between 15:00 and 23:00 UTC (08:00–16:00 in the
    Mountain/Central zones most customers are in), on the half hour."""
    return instant // DAY_US * DAY_US + d.int(30, 46) * 30 * 60_000_000


class _Maker:
    """Builds one customer's location, contacts, jobs, appointments and estimates."""

    def __init__(self, cat: _Catalogue, now_us: int, mix: Mix, seed: int, sink: RowSink) -> None:
        def dice(name: str) -> Dice:
            return Dice(random.Random(f"{seed}:servicetitan:{name}"))  # noqa: S311 - test data

        self.cat = cat
        self.now_us = now_us
        self.mix = mix
        self.ld, self.cd, self.jd = dice("locations"), dice("contacts"), dice("jobs")
        self.ids = {
            name: _Ids({"locations": self.ld, "contacts": self.cd}.get(name, self.jd), first)
            for name, first in _FIRST_IDS.items()
        }
        self.locations = sink.buffer("locations")
        self.contacts = sink.buffer("contacts")
        self.jobs = sink.buffer("jobs")
        self.appointments = sink.buffer("appointments")
        # Assignments have their own dice and id range: the other records stay as they were.
        self.ad = dice("appointment-assignments")
        self.assignment_ids = _Ids(self.ad, _ASSIGNMENT_FIRST_ID)
        self.assignments = sink.buffer("appointment-assignments")
        self.estimates = sink.buffer("estimates")
        self.job_types = [jt for jt in _JOB_TYPES if jt[0] != _ESTIMATE_JOB_TYPE]
        # Issue #5 extras draw from their own dice and id ranges: no other record changes.
        self.xd = dice("location-contacts+projects")
        self.location_contact_ids = _Ids(self.xd, _LOCATION_CONTACT_FIRST_ID)
        self.project_ids = _Ids(self.xd, _PROJECT_FIRST_ID)
        self.location_contacts = sink.buffer("location-contacts")
        self.projects = sink.buffer("projects")
        self.estimate_job_type = next(jt for jt in _JOB_TYPES if jt[0] == _ESTIMATE_JOB_TYPE)
        # Invoices and payments (issue #5): their own dice and id ranges too.
        self.ledger = ledger.Ledger(seed, now_us, sink, cat.skus, dict(_BUSINESS_UNITS))

    def make(self, customer_id: int, customer: dict[str, Any], created_us: int) -> None:
        ld = self.ld
        location_id = self.ids["locations"].next()
        address = customer["address"]
        name = customer["name"]
        if customer["type"] != "Residential":
            name = f"{name} - {address['city']}"
        data = _LOCATION % (
            customer_id,
            _encode_str(name),
            dumps(address),
            customer["createdOn"],
            customer["createdById"],
        )
        modified = ld.modified_us(self.now_us, created_us)
        self.locations.append((location_id, modified, not ld.chance(SOFT_DELETED_SHARE), data))
        if self.mix.contacts_per_client:
            self._contacts(customer_id, customer, created_us)
            self._location_contacts(location_id, customer, created_us)
        if self.mix.jobs_per_client:
            self._project(customer_id, location_id, customer, created_us)
        if self.mix.jobs_per_client:
            jobs = self._jobs(customer_id, location_id, created_us)
            self.ledger.invoice_jobs(
                customer_id,
                customer,
                [(j.id, j.values[_STATUS], j.values[_COMPLETED], j.type) for j in jobs],
            )

    def _contacts(self, customer_id: int, customer: dict[str, Any], created_us: int) -> None:
        cd, ids = self.cd, self.ids["contacts"]
        residential = customer["type"] == "Residential"
        first, _, last = customer["name"].partition(" ")
        area = _AREA_CODES[customer["address"]["city"]]
        for k in range(cd.near(self.mix.contacts_per_client)):
            if k % 2 == 0:
                kind = "MobilePhone" if residential or k else "Phone"
                value = f"{area}{cd.int(200, 999)}{cd.int(1000, 9999)}"
                no_text = "true" if cd.chance(0.1) else "false"
                settings = f'{{"phoneNumber":"{value}","doNotText":{no_text}}}'
                memo = cd.pick(_PHONE_MEMOS) if residential else '"Office"'
            else:
                kind = "Email"
                if residential:
                    value = f"{first}.{last}{cd.int(1, 99)}@{cd.pick(_MAIL_DOMAINS)}".lower()
                else:
                    slug = "".join(c for c in customer["name"].lower() if c.isalnum())[:20]
                    value = f"office@{slug}.com"
                # PhoneSettings is required (not nullable) on every method [spec]: empty here.
                settings, memo = _NO_PHONE, "null"
            data = _CONTACT % (settings, kind, value, memo, customer_id)
            # Contacts have no ``active`` in the spec: they are deleted, not deactivated.
            modified = cd.modified_us(self.now_us, created_us)
            self.contacts.append((ids.next(), modified, True, data))

    def _location_contacts(
        self, location_id: int, customer: dict[str, Any], created_us: int
    ) -> None:
        """A site contact on most commercial locations (front desk, facilities e-mail) and a
        few homes (a tenant's number): Crm.V2.LocationsContactResponse, no ``active``."""
        xd = self.xd
        commercial = customer["type"] != "Residential"
        if not xd.chance(0.6 if commercial else 0.05):
            return
        area = _AREA_CODES[customer["address"]["city"]]
        methods = [("Phone", xd.pick(_SITE_MEMOS) if commercial else '"Tenant"')]
        if commercial and xd.chance(0.4):
            methods.append(("Email", '"Facilities"'))
        for kind, memo in methods:
            if kind == "Email":
                slug = "".join(c for c in customer["name"].lower() if c.isalnum())[:20]
                value, settings = f"facilities@{slug}.com", _NO_PHONE
            else:
                value = f"{area}{xd.int(200, 999)}{xd.int(1000, 9999)}"
                settings = (
                    f'{{"phoneNumber":"{value}","doNotText":{"true" if commercial else "false"}}}'
                )
            data = _LOCATION_CONTACT % (kind, value, memo, settings, location_id)
            modified = xd.modified_us(self.now_us, created_us)
            self.location_contacts.append((self.location_contact_ids.next(), modified, True, data))

    def _project(
        self, customer_id: int, location_id: int, customer: dict[str, Any], created_us: int
    ) -> None:
        """A multi-visit project for some customers (replacements, remodels, tenant
        improvements): Crm.V2.ProjectResponse, no ``active``."""
        xd, now = self.xd, self.now_us
        commercial = customer["type"] != "Residential"
        if not xd.chance(0.3 if commercial else 0.1):
            return
        project_id = self.project_ids.next()
        start = max(created_us, now - YEAR_US) + int(xd.random() * 200 * DAY_US)
        target = start + xd.int(14, 90) * DAY_US
        status = xd.pick(_PROJECT_STATUSES) if start < now else "Open"
        completed = None
        if status == "Completed":
            completed = min(start + xd.int(7, 100) * DAY_US, now - DAY_US)
        data = project_defaults()
        data.update(
            number=str(project_id),
            name=xd.pick(_PROJECT_NAMES_COMMERCIAL if commercial else _PROJECT_NAMES_HOME),
            summary=f"Project for {customer['name']}.",
            status=status,
            customerId=customer_id,
            locationId=location_id,
            startDate=iso_utc(start),
            targetCompletionDate=iso_utc(target),
            actualCompletionDate=iso_utc(completed) if completed else None,
        )
        modified = max(xd.modified_us(now, created_us), completed or 0)
        self.projects.append((project_id, min(modified, now), True, dumps(data)))

    def _jobs(self, customer_id: int, location_id: int, created_us: int) -> list[_Job]:
        jd = self.jd
        count = jd.spread(self.mix.jobs_per_client)
        estimates = jd.near(self.mix.estimates_per_client) if self.mix.estimates_per_client else 0
        jobs: list[_Job] = []
        for k in range(max(count, 1 if estimates else 0)):
            job_type = self.estimate_job_type if k >= count else jd.pick(self.job_types)
            jobs.append(self._job(customer_id, location_id, created_us, job_type))
        for _ in range(estimates):
            self._estimate(jd.pick(jobs))
        for job in jobs:
            self.jobs.append((job.id, job.modified, True, _JOB % tuple(job.values)))
        return jobs

    def _job(
        self, customer_id: int, location_id: int, customer_created: int, job_type: tuple
    ) -> _Job:
        """One job (values for ``_JOB``, rendered once its estimates are known) and its
        appointment."""
        jd, now = self.jd, self.now_us
        job_id = self.ids["jobs"].next()
        appointment_id = self.ids["appointments"].next()
        roll = jd.random()
        status = next(s for s, share in _JOB_STATUSES if roll < share)
        latest = now - 2 * DAY_US
        if customer_created >= latest:
            created, status = customer_created, "Scheduled"
        else:
            created = latest - int((latest - customer_created) * jd.random() ** 2)
        if status == "Scheduled":
            start = max(_business_hours(jd, now + int(jd.random() * 21 * DAY_US)), now + HOUR_US)
        elif status == "InProgress":
            start = now - int(jd.random() * 3 * HOUR_US)
        else:
            start = _business_hours(jd, created + int(jd.random() * 5 * DAY_US))
            start = min(max(start, created + HOUR_US), now - 6 * HOUR_US)
        end = start + jd.int(2, 8) * 30 * 60_000_000
        completed = end + int(jd.random() * 2 * HOUR_US) if status == "Completed" else 0
        modified = max(jd.modified_us(now, created), completed)
        window = jd.chance(0.7)
        created_text = iso_utc(created)
        job_number = str(job_id)
        appointment = _APPOINTMENT % (
            job_id,
            f"{job_number}-1",
            iso_utc(start),
            iso_utc(end),
            f'"{iso_utc(start - HOUR_US)}"' if window else "null",
            f'"{iso_utc(start + 3 * HOUR_US)}"' if window else "null",
            _APPOINTMENT_STATUS[status],
            jd.pick(_INSTRUCTIONS),
            created_text,
        )
        appointment_modified = max(jd.modified_us(now, created), completed)
        self.appointments.append((appointment_id, appointment_modified, True, appointment))
        self._assignments(job_id, appointment_id, status, created, start)
        job_type_id, _, bu_id, trade, _ = job_type
        summary = jd.pick(_SUMMARIES[trade])
        values = [
            job_number,
            customer_id,
            location_id,
            status,
            f'"{iso_utc(completed)}"' if completed else "null",
            bu_id,
            job_type_id,
            jd.pick(_PRIORITIES),
            jd.pick(_CAMPAIGN_IDS),
            summary,
            appointment_id,
            appointment_id,
            "true" if jd.chance(0.02) else "false",
            created_text,
            jd.pick(_US_CREATOR_IDS),
            "null",  # soldById, set by a sold estimate
        ]
        return _Job(job_id, values, created, modified, job_type, summary)

    def _assignments(
        self, job_id: int, appointment_id: int, job_status: str, created: int, start: int
    ) -> None:
        """One or two technicians on an appointment (none once it is cancelled), assigned by
        dispatch between the job's creation and the appointment's start."""
        status = _ASSIGNMENT_STATUS.get(job_status)
        if status is None:
            return
        ad = self.ad
        techs = self.cat.techs
        first = ad.pick(techs)
        chosen = [first]
        if ad.chance(0.25):
            second = ad.pick(techs)
            if second != first:
                chosen.append(second)
        for tech_id in chosen:
            assigned = created + int(ad.random() * max(start - created, 0))
            data = _ASSIGNMENT % (
                tech_id,
                _encode_str(self.cat.tech_names[tech_id]),
                _DISPATCHER_ID,
                iso_utc(assigned),
                status,
                job_id,
                appointment_id,
            )
            self.assignments.append((self.assignment_ids.next(), assigned, True, data))

    def _estimate(self, job: _Job) -> None:
        jd, now = self.jd, self.now_us
        job_created = job.created
        estimate_id = self.ids["estimates"].next()
        item_ids = self.ids["estimate-items"]
        _, _, _, trade, replacement = job.type
        skus = self.cat.skus
        services = [s for s in skus["Service"] if trade in s.trades] or skus["Service"]
        materials = [s for s in skus["Material"] if trade in s.trades] or skus["Material"]
        equipment = [s for s in skus["Equipment"] if trade in s.trades]
        modified = jd.modified_us(now, job_created)
        roll = jd.random()
        status = next(s for s, share in _ESTIMATE_STATUSES if roll < share)
        sold_on = sold_by = None
        if status["name"] == "Sold":
            sold_at = job_created + int(jd.random() * (modified - job_created))
            sold_on, sold_by = iso_utc(sold_at), jd.pick(self.cat.techs)
            job.values[_SOLD_BY] = str(sold_by)
        lines: list[_Sku] = [jd.pick(services)]
        if replacement and equipment:
            lines.append(jd.pick(equipment))
        for _ in range(jd.int(2, 6) - len(lines)):
            lines.append(jd.pick(materials))
        items = []
        for sku in lines:
            qty = 1.0 if sku.kind != "Material" else float(jd.pick((1, 1, 1, 2, 3, 5, 10)))
            items.append(
                {
                    "id": item_ids.next(),
                    "sku": sku.sku,
                    "skuAccount": sku.account,
                    "description": sku.description,
                    "qty": qty,
                    "unitRate": dollars(sku.price_c),
                    "total": dollars(round(qty * sku.price_c)),
                    "itemGroupName": "",
                    "itemGroupRootId": None,
                    "modifiedOn": iso_utc(
                        job_created + int(jd.random() * (modified - job_created))
                    ),
                }
            )
        data = {
            "jobId": job.id,
            "projectId": None,
            "name": jd.pick(_OPTION_NAMES if replacement else _REPAIR_NAMES),
            "jobNumber": str(job.id),
            "status": status,
            "summary": f"{job.summary} Recommended work as discussed on site.",
            "soldOn": sold_on,
            "soldBy": sold_by,
            "items": items,
            "externalLinks": [],
        }
        self.estimates.append(
            (estimate_id, modified, not jd.chance(SOFT_DELETED_SHARE), dumps(data))
        )


def _references(d: Dice, now_us: int, cat: _Catalogue) -> dict[str, list[Row]]:
    """Issue #5's fixed references: job cancel and hold reasons and tag types (``{id, name,
    active}``, no modifiedOn), dispatch zones and the technicians' shifts around now."""
    rows: dict[str, list[Row]] = {}
    founded = now_us - 5 * YEAR_US
    for obj, first_id, names in (
        ("job-cancel-reasons", 9101, _CANCEL_REASONS),
        ("job-hold-reasons", 9201, _HOLD_REASONS),
        ("tag-types", 9301, _TAG_TYPES),
    ):
        rows[obj] = [
            (first_id + n, d.modified_us(now_us, founded), active, dumps({"name": name}))
            for n, (name, active) in enumerate(names)
        ]
    rows["zones"] = []
    for n, (name, cities, units, active) in enumerate(_ZONES):
        places = [c for c in _US_CITIES if c[0] in cities]
        data = zone_defaults()
        data.update(
            name=name,
            zips=sorted({f"{c[2]}{k:02d}" for c in places for k in range(0, 100, 25)}),
            cities=list(cities),
            territoryNumbers=[f"T{n + 1:02d}"],
            createdBy=_EMPLOYEES[0][0],
            createdOn=iso_utc(founded + int(d.random() * YEAR_US)),
            serviceDaysEnabled=n == 0,
            serviceDays=["Monday", "Wednesday", "Friday"] if n == 0 else [],
            businessUnits=list(units),
        )
        rows["zones"].append((9401 + n, d.modified_us(now_us, founded), active, dumps(data)))
    rows["technician-shifts"] = []
    shift_id = 9_500_000
    today = now_us // DAY_US * DAY_US
    for tech_id in cat.techs:
        for day in range(-7, 8):
            start_day = today + day * DAY_US
            weekday = (start_day // DAY_US + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
            if weekday < 5:
                kind, title, note = "Normal", "Day shift", None
                if d.chance(0.04):
                    kind, title, note = "TimeOff", "PTO", d.pick(("Vacation", "Doctor", None))
                start, end = start_day + 15 * HOUR_US, start_day + 23 * HOUR_US
            elif weekday == 5 and d.chance(0.3):
                kind, title, note = "OnCall", "Weekend on-call", "Emergency calls only."
                start, end = start_day + 14 * HOUR_US, start_day + 26 * HOUR_US
            else:
                continue
            shift_id += 1 + int(d.random() * 2)
            data = technician_shift_defaults()
            data.update(
                shiftType=kind,
                title=title,
                note=note,
                technicianId=tech_id,
                start=iso_utc(start),
                end=iso_utc(end),
            )
            modified = min(now_us, start - int(d.random() * 14 * DAY_US))
            active = not d.chance(SOFT_DELETED_SHARE)
            rows["technician-shifts"].append((shift_id, modified, active, dumps(data)))
    # SPEC GAP: dispatch teams, drawn last so the other references keep their values.
    rows["teams"] = []
    for n, (name, active) in enumerate(_TEAMS):
        data = team_defaults()
        created = founded + int(d.random() * YEAR_US)
        data.update(name=name, createdBy=_DISPATCHER_ID, createdOn=iso_utc(created))
        modified = max(created, d.modified_us(now_us, founded))
        rows["teams"].append((9451 + n, modified, active, dumps(data)))
    return rows


def seed_servicetitan(sink: RowSink, *, records: int, seed: int, now_us: int, mix: Mix) -> None:
    """Write the catalogues, ``records`` customers and their children into ``sink``."""
    cat = _catalogue(Dice(random.Random(f"{seed}:servicetitan:catalogue")), now_us)  # noqa: S311
    for obj, rows in cat.rows.items():
        sink.buffer(obj).extend(rows)
    references = Dice(random.Random(f"{seed}:servicetitan:references"))  # noqa: S311
    for obj, rows in _references(references, now_us, cat).items():
        sink.buffer(obj).extend(rows)
    inventory = Dice(random.Random(f"{seed}:servicetitan:inventory"))  # noqa: S311
    ledger.seed_catalogue(sink, inventory, now_us, cat.skus)
    maker = _Maker(cat, now_us, mix, seed, sink)
    customers = sink.buffer("customers")
    rng = random.Random(f"{seed}:servicetitan:customers")  # noqa: S311 - test data
    for i, (customer_id, modified, active, data, created_us) in enumerate(
        customer_records(rng, records, now_us), 1
    ):
        customers.append((customer_id, modified, active, dumps(data)))
        maker.make(customer_id, data, created_us)
        if i & 15 == 0:
            sink.flush()
