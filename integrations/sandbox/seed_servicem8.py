"""ServiceM8 seed data: a Sydney plumbing business (see ``seed.py`` for the overview).

Fixed catalogues: ``taxrate`` (GST 10 %, GST Free, BAS Excluded), ``category`` (9 job
categories), ``staff`` (18: 3 office, 15 in the field) and ``material`` (89 pricebook items:
labour rates and plumbing parts, prices ex GST). Per client (``company``): ``companycontact``
records, and jobs (``job``), about a third of them quotes (status ``Quote``), each with 2–6
line items (``jobmaterial``) drawn from the job category's part of the pricebook and, for jobs
past the quote stage, 0–2 scheduled visits (``jobactivity``) by field staff. Files
(``attachment``) follow the jobs: a quote PDF on most sent quotes, site photos on about half of
the jobs past the quote stage, an invoice PDF on invoiced jobs, and, on about one client in
twenty, a file attached to the client itself (``related_object`` "company"). On some jobs, from
dice of their own: a site contact, property manager or billing contact (``jobcontact``), 0–2
diary notes (``note``, ``related_object`` "job"; one client in ten also has a note of its own)
and a bundle line from a pricebook kit (``jobmaterialbundle``).

Consistency: every reference points at a seeded record (soft-deleted ones included); a job's
``total_invoice_amount`` is the tax-inclusive sum of its active job materials; its dates run
quote → work order → visits → completion → invoice → payment and never pass its ``edit_date``;
``job_is_scheduled_until_stamp`` is the end of its last visit. Times are UTC µs internally and
rendered in the account's zone (``edit_date_formatter``), like ``edit_date``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from integrations.sandbox import accounts
from integrations.sandbox.seed_base import (
    DAY_US,
    FIRST_NAMES,
    FRAGMENT,
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
    json_template,
    money,
)
from integrations.sandbox.servicem8 import (
    ATTACHMENT_DEFAULTS,
    COMPANY_DEFAULTS,
    GST_TAX_RATE_UUID,
    JOB_DEFAULTS,
    JOBCONTACT_DEFAULTS,
    JOBMATERIALBUNDLE_DEFAULTS,
    MATERIAL_DEFAULTS,
    NO_DATE,
    NOTE_DEFAULTS,
    STAFF_DEFAULTS,
    edit_date_formatter,
)
from integrations.sandbox.store import Row, dumps

# The objects seeded, in reporting order.
OBJECTS = (
    "company",
    "companycontact",
    "job",
    "jobmaterial",
    "jobactivity",
    "attachment",
    "jobcontact",
    "note",
    "jobmaterialbundle",
    "staff",
    "material",
    "category",
    "taxrate",
)
QUOTE_SHARE = 1 / 3
FIRST_JOB_NUMBER = 1001
_MINUTE_US = 60_000_000

_BUSINESS_WORDS = (
    "Harbour Coastal Summit Northside Southern Eastern Western Golden Bluegum Ironbark "
    "Waratah Banksia Parkside Riverside Hillcrest Bayview Sunrise Heritage Pacific Metro"
).split()
_AU_TRADES = (
    "Cafe|Dental|Real Estate|Strata Management|Property Group|Medical Centre|Bakery|Motors|"
    "Childcare|Fitness|Constructions|Hotel|Veterinary Clinic|Pharmacy|Restaurant|Builders"
).split("|")
_AU_SUFFIX = ("Pty Ltd", "Pty Ltd", "Pty Ltd", "", "Group", "& Co")
_AU_STREETS = (
    "George Pitt Church Victoria Railway Station Park King Queen Elizabeth Military Pacific "
    "Oxford Crown Bridge Harris Marion Ocean Beach Forest Wattle Acacia Cook Phillip Hunter"
).split()
_AU_STREET_TYPES = ("St", "St", "Rd", "Rd", "Ave", "Pde", "Cres", "Pl", "Dr", "Hwy", "Lane")
# (suburb, state, postcode): mostly Greater Sydney, a few interstate clients.
_AU_SUBURBS = (
    ("Sydney", "NSW", "2000"),
    ("Surry Hills", "NSW", "2010"),
    ("Newtown", "NSW", "2042"),
    ("Bondi", "NSW", "2026"),
    ("Manly", "NSW", "2095"),
    ("Chatswood", "NSW", "2067"),
    ("Parramatta", "NSW", "2150"),
    ("Blacktown", "NSW", "2148"),
    ("Penrith", "NSW", "2750"),
    ("Liverpool", "NSW", "2170"),
    ("Cronulla", "NSW", "2230"),
    ("Hornsby", "NSW", "2077"),
    ("Ryde", "NSW", "2112"),
    ("Marrickville", "NSW", "2204"),
    ("Castle Hill", "NSW", "2154"),
    ("Campbelltown", "NSW", "2560"),
    ("Dee Why", "NSW", "2099"),
    ("Randwick", "NSW", "2031"),
    ("Strathfield", "NSW", "2135"),
    ("Hurstville", "NSW", "2220"),
    ("Wollongong", "NSW", "2500"),
    ("Newcastle", "NSW", "2300"),
    ("Gosford", "NSW", "2250"),
    ("Melbourne", "VIC", "3000"),
    ("Brisbane", "QLD", "4000"),
    ("Canberra", "ACT", "2600"),
)
# Approximate suburb centres (latitude, longitude), for the jobs' geocodes.
_AU_COORDS = {
    "Sydney": (-33.8688, 151.2093),
    "Surry Hills": (-33.8861, 151.2111),
    "Newtown": (-33.8978, 151.1785),
    "Bondi": (-33.8915, 151.2767),
    "Manly": (-33.7969, 151.2840),
    "Chatswood": (-33.7969, 151.1803),
    "Parramatta": (-33.8150, 151.0011),
    "Blacktown": (-33.7710, 150.9063),
    "Penrith": (-33.7511, 150.6942),
    "Liverpool": (-33.9200, 150.9238),
    "Cronulla": (-34.0587, 151.1526),
    "Hornsby": (-33.7025, 151.0990),
    "Ryde": (-33.8150, 151.1030),
    "Marrickville": (-33.9110, 151.1550),
    "Castle Hill": (-33.7300, 151.0040),
    "Campbelltown": (-34.0650, 150.8142),
    "Dee Why": (-33.7530, 151.2860),
    "Randwick": (-33.9140, 151.2410),
    "Strathfield": (-33.8790, 151.0830),
    "Hurstville": (-33.9670, 151.1020),
    "Wollongong": (-34.4278, 150.8931),
    "Newcastle": (-32.9283, 151.7817),
    "Gosford": (-33.4240, 151.3420),
    "Melbourne": (-37.8136, 144.9631),
    "Brisbane": (-27.4698, 153.0251),
    "Canberra": (-35.2809, 149.1300),
}
_MAIL_DOMAINS = (
    "gmail.com",
    "gmail.com",
    "outlook.com",
    "bigpond.com",
    "icloud.com",
    "hotmail.com",
    "optusnet.com.au",
)

# (uuid, name, amount, is_default, rate %) [spec: TaxRate]. Companies point at GST.
_TAX_RATES = (
    (GST_TAX_RATE_UUID, "GST", "10", 1, 10),
    ("7c1f3a52-6d0e-4b8a-9c21-5e2a8f0d4b18", "GST Free", "0", 0, 0),
    ("7c1f3a52-6d0e-4b8a-9c21-5e2a8f0d4b19", "BAS Excluded", "0", 0, 0),
)
_GST_FREE = _TAX_RATES[1][0]

# Labour and fixed-fee items: (name, unit, price $ ex GST, tags).
_LABOUR = (
    ("Call Out Fee", "fixed", 95.0, "emergency"),
    ("Standard Labour (per hour)", "hour", 120.0, "labour"),
    ("After Hours Labour (per hour)", "hour", 185.0, "emergency"),
    ("Apprentice Labour (per hour)", "hour", 70.0, "labour"),
    ("Drain Camera Inspection", "fixed", 220.0, "drain"),
    ("High Pressure Jetter (per hour)", "hour", 250.0, "drain"),
    ("Backflow Device Test & Certification", "fixed", 145.0, "backflow"),
    ("Gas Compliance Certificate", "fixed", 85.0, "gas"),
)
_S15 = (("15mm", 1.0), ("20mm", 1.3), ("25mm", 1.75))
# Parts: (name template, unit, base price $ ex GST, sizes or None, tags).
_PARTS: tuple[tuple[str, str, float, Any, str], ...] = (
    ("Copper Pipe {} (per m)", "metre", 14.0, _S15, "general tap reno hotwater"),
    ("PEX Pipe {} (per m)", "metre", 6.5, (("16mm", 1), ("20mm", 1.3), ("25mm", 1.8)), "reno"),
    ("PVC DWV Pipe {} (per m)", "metre", 9.0, (("50mm", 1), ("100mm", 2.6)), "drain reno"),
    ("PVC Junction {}", "each", 12.0, (("50mm", 1), ("100mm", 2.2)), "drain"),
    ("Brass Elbow {}", "each", 11.0, _S15, "general tap"),
    ("Brass Tee {}", "each", 14.0, _S15, "general"),
    ("Ball Valve {}", "each", 38.0, _S15, "general hotwater"),
    ("Isolation Valve {}", "each", 24.0, (("15mm", 1), ("20mm", 1.3)), "tap toilet"),
    ("Braided Flexible Hose {}", "each", 18.0, (("300mm", 1), ("450mm", 1.2)), "tap toilet"),
    ("Pressure Limiting Valve {}", "each", 145.0, (("15mm", 1), ("20mm", 1.25)), "hotwater"),
    ("Tempering Valve {}", "each", 230.0, (("15mm", 1), ("20mm", 1.2)), "hotwater reno"),
    ("Tap Washer & O-Ring Kit", "each", 15.0, None, "tap"),
    ("Ceramic Disc Cartridge", "each", 45.0, None, "tap"),
    ("Kitchen Mixer Tap", "each", 289.0, None, "tap reno"),
    ("Basin Mixer Tap", "each", 219.0, None, "tap reno"),
    ("Shower Mixer", "each", 249.0, None, "tap reno"),
    ("Shower Rose {}", "each", 89.0, (("Standard", 1), ("Rain 250mm", 2.4)), "tap reno"),
    ("Toilet Inlet Valve", "each", 42.0, None, "toilet"),
    ("Toilet Outlet Valve", "each", 55.0, None, "toilet"),
    ("Toilet Seat (Soft Close)", "each", 95.0, None, "toilet"),
    ("Toilet Pan Connector", "each", 28.0, None, "toilet reno"),
    ("Toilet Suite (Close Coupled)", "each", 520.0, None, "toilet reno"),
    ("Vanity Unit {}", "each", 690.0, (("600mm", 1), ("900mm", 1.35), ("1200mm", 1.8)), "reno"),
    ("Sink Waste {}", "each", 22.0, (("40mm", 1), ("50mm", 1.2)), "drain tap"),
    ("Bottle Trap {}", "each", 35.0, (("32mm", 1), ("40mm", 1.1)), "drain"),
    ("P-Trap {}", "each", 19.0, (("40mm", 1), ("50mm", 1.15)), "drain"),
    ("Floor Waste Grate", "each", 39.0, None, "drain reno"),
    ("Drain Root Treatment", "each", 65.0, None, "drain"),
    ("Silicone Sealant", "each", 12.0, None, "general"),
    ("Thread Seal Tape", "each", 4.5, None, "general"),
    ("Pipe Clips {} (pack of 10)", "each", 16.0, (("15mm", 1), ("20mm", 1.2)), "general"),
    ("Gas Cock {}", "each", 48.0, (("15mm", 1), ("20mm", 1.3)), "gas"),
    ("Gas Bayonet Fitting", "each", 95.0, None, "gas"),
    ("Gas Flexible Hose {}", "each", 65.0, (("600mm", 1), ("1200mm", 1.4)), "gas"),
    ("Gas Regulator", "each", 120.0, None, "gas"),
    ("Electric Hot Water System {}", "each", 980.0, (("125L", 1), ("250L", 1.45)), "hotwater"),
    ("Gas Storage Hot Water System {}", "each", 1350.0, (("135L", 1), ("170L", 1.2)), "hotwater"),
    ("Continuous Flow Gas Hot Water {}", "each", 1490.0, (("20L", 1), ("26L", 1.25)), "hotwater"),
    ("Heat Pump Hot Water System 270L", "each", 3150.0, None, "hotwater"),
    ("Hot Water Anode Rod", "each", 75.0, None, "hotwater"),
    ("TPR Valve", "each", 58.0, None, "hotwater"),
    ("Hot Water Element {}", "each", 85.0, (("2.4kW", 1), ("3.6kW", 1.15)), "hotwater"),
    ("Hot Water Thermostat", "each", 79.0, None, "hotwater"),
    ("Backflow Prevention Device {}", "each", 310.0, (("20mm", 1), ("25mm", 1.3)), "backflow"),
    ("Stormwater Pit 300mm", "each", 85.0, None, "roof drain"),
    ("Downpipe {} (per m)", "metre", 18.0, (("90mm", 1), ("100x50mm", 1.2)), "roof"),
    ("Quad Gutter (per m)", "metre", 24.0, None, "roof"),
    ("Gutter Bracket (pack of 10)", "each", 28.0, None, "roof"),
    ("Waterproofing Membrane (per m2)", "metre", 45.0, None, "reno"),
    # Council fees carry no GST.
    ("Plumbing Permit Fee", "fixed", 160.0, None, "reno hotwater gas permit"),
)

# Job categories: (name, colour, tags, job descriptions, work-done notes).
_CATEGORIES = (
    (
        "Blocked Drains",
        "1f77b4",
        "drain",
        (
            "Blocked kitchen sink, water backing up.",
            "Slow draining shower and basin.",
            "Sewer overflow in backyard, suspect tree roots.",
            "Toilet and floor waste gurgling when washing machine drains.",
        ),
        (
            "Cleared blockage with electric eel, flushed line and tested.",
            "Jetted sewer line, camera inspected, roots cut back.",
        ),
    ),
    (
        "Hot Water",
        "d62728",
        "hotwater",
        (
            "No hot water.",
            "Hot water system leaking from TPR valve.",
            "Replace old electric hot water system.",
            "Hot water running lukewarm, check thermostat and element.",
        ),
        (
            "Replaced element and thermostat, system heating normally.",
            "Installed new hot water system, removed old unit, compliance issued.",
        ),
    ),
    (
        "Gas Fitting",
        "ff7f0e",
        "gas",
        (
            "Install gas cooktop.",
            "Smell of gas near meter, leak check required.",
            "New gas bayonet for heater in living room.",
        ),
        (
            "Installed and pressure tested, compliance certificate issued.",
            "Found and repaired leak at regulator, tested OK.",
        ),
    ),
    (
        "Taps & Leaks",
        "2ca02c",
        "tap",
        (
            "Leaking kitchen mixer.",
            "Dripping shower tap, replace washers.",
            "Water leak under bathroom vanity.",
        ),
        ("Replaced cartridge and tested, no leaks.", "Re-washered taps, tested OK."),
    ),
    (
        "Toilets",
        "17becf",
        "toilet",
        ("Toilet running constantly.", "Toilet cistern not filling.", "Replace cracked toilet."),
        ("Replaced inlet and outlet valves, cistern working.", "Installed new toilet suite."),
    ),
    (
        "Bathroom Renovation",
        "9467bd",
        "reno",
        (
            "Quote for bathroom renovation rough-in and fit-off.",
            "Relocate shower and vanity, new waste and water points.",
        ),
        ("Rough-in complete, ready for tiler.", "Fit-off complete, all fixtures tested."),
    ),
    (
        "Roof & Gutters",
        "8c564b",
        "roof",
        ("Replace rusted gutters along front of house.", "Downpipe blocked, water overflowing."),
        ("Replaced gutter section and downpipe, tested with hose.",),
    ),
    (
        "Backflow Testing",
        "7f7f7f",
        "backflow",
        ("Annual backflow prevention device test.",),
        ("Device tested and certified, results lodged with council.",),
    ),
    (
        "Emergency Call Out",
        "e377c2",
        "emergency tap drain",
        (
            "Burst pipe, water off at meter.",
            "Flooding in laundry.",
            "Sewage coming up floor waste.",
        ),
        ("Made safe and repaired burst section, water back on.",),
    ),
)
_ACCESS_NOTES = (
    "",
    "",
    "",
    " Customer home after 3pm.",
    " Key in lockbox, code 4455.",
    " Dog in backyard.",
    " Call on arrival.",
    " Tenant to let in, contact via agent.",
)

# (job title, in the field?) for the fixed staff list.
_STAFF_ROLES = (
    ("Director", False),
    ("Office Manager", False),
    ("Service Coordinator", False),
    *((("Senior Plumber", True),) * 3),
    *((("Plumber", True),) * 6),
    *((("Gasfitter", True),) * 2),
    ("Drainer", True),
    *((("Apprentice Plumber", True),) * 3),
)
# Security roles are referenced by staff but not emulated as objects.
_ROLE_ADMIN = "3e0c9b1a-5f44-4f0e-9a53-2f1b6d7c8e01"
_ROLE_FIELD = "3e0c9b1a-5f44-4f0e-9a53-2f1b6d7c8e02"


@dataclass(frozen=True)
class _Material:
    uuid: str
    name: str
    unit: str  # "fixed" | "hour" | "each" | "metre"
    price_c: int  # ex tax, cents
    cost_c: int
    rate: int  # tax %
    tax_uuid: str
    head: str  # JSON fragment: "material_uuid":…,"name":…,
    # Job-material JSON fragments per displayed_amount_is_tax_inclusive (0, 1): prices, costs.
    prices: tuple[str, str]
    costs: tuple[str, str]

    @classmethod
    def build(
        cls, uid: str, name: str, unit: str, price_c: int, cost_c: int, rate: int, tax_uuid: str
    ) -> _Material:
        factor = (100 + rate) / 100
        head = f'"material_uuid":"{uid}","name":{json.dumps(name, ensure_ascii=False)},'

        def prices(flag: int, shown: int) -> str:
            return (
                f'"price":"{money(price_c)}","displayed_amount":"{money(shown)}",'
                f'"displayed_amount_is_tax_inclusive":"{flag}","tax_rate_uuid":"{tax_uuid}",'
            )

        def costs(shown: int) -> str:
            return f'"cost":"{money(cost_c)}","displayed_cost":"{money(shown)}"'

        return cls(
            uid,
            name,
            unit,
            price_c,
            cost_c,
            rate,
            tax_uuid,
            head,
            (prices(0, price_c), prices(1, round(price_c * factor))),
            (costs(cost_c), costs(round(cost_c * factor))),
        )


@dataclass(frozen=True)
class _Category:
    uuid: str
    name: str
    labour: tuple[_Material, ...]  # first line of a job
    parts: tuple[_Material, ...]
    descriptions: tuple[str, ...]
    work_done: tuple[str, ...]


@dataclass(frozen=True)
class _Staff:
    uuid: str
    field: bool
    labour_uuid: str


@dataclass
class _Catalogue:
    rows: dict[str, list[Row]]
    materials: list[_Material]
    categories: list[_Category]
    staff: list[_Staff]
    techs: list[_Staff]


def _catalogue(d: Dice, now_us: int) -> _Catalogue:
    """The fixed objects: tax rates, materials, categories, staff (content fixed, uuids and
    edit times from ``d``)."""
    rows: dict[str, list[Row]] = {"taxrate": [], "material": [], "category": [], "staff": []}
    old = now_us - YEAR_US  # catalogue edits are spread over the year
    for uid, name, amount, default, _ in _TAX_RATES:
        data = {"name": name, "amount": amount, "is_default_tax_rate": default}
        rows["taxrate"].append((uid, d.modified_us(now_us, old), True, dumps(data)))

    materials: list[_Material] = []
    tagged: list[tuple[str, _Material]] = []

    def add(name: str, unit: str, price: float, tags: str, number: str) -> None:
        uid = d.uuid4()
        price_c = round(price * 2) * 50 if price >= 20 else round(price * 100)
        cost_c = round(price_c * (0.35 + 0.25 * d.random()))
        free = "permit" in tags
        tax_uuid = _GST_FREE if free else GST_TAX_RATE_UUID
        inventoried = unit in ("each", "metre") and price < 500
        data = dict(MATERIAL_DEFAULTS)
        data.update(
            name=name,
            item_number=number,
            price=money(price_c),
            cost=money(cost_c),
            quantity_in_stock=d.int(0, 60) if inventoried else 0,
            item_is_inventoried=int(inventoried),
            barcode=f"93{d.int(10**10, 10**11 - 1)}" if inventoried else "",
            item_description=f"{name}, supplied" if inventoried else name,
            tax_rate_uuid=tax_uuid,
        )
        active = not d.chance(SOFT_DELETED_SHARE)
        rows["material"].append((uid, d.modified_us(now_us, old), active, dumps(data)))
        rate = 0 if free else 10
        materials.append(_Material.build(uid, name, unit, price_c, cost_c, rate, tax_uuid))
        tagged.append((tags, materials[-1]))

    for n, (name, unit, price, tags) in enumerate(_LABOUR, 1):
        add(name, unit, price, tags, f"LAB-{n:03d}")
    n = 0
    for template, unit, base, sizes, tags in _PARTS:
        for label, factor in sizes or (("", 1.0),):
            n += 1
            add(template.format(label), unit, base * factor, tags, f"PRT-{n:03d}")

    by_name = {m.name: m for m in materials}
    general = tuple(m for tags, m in tagged if "general" in tags.split())
    categories: list[_Category] = []
    for name, colour, tags, descriptions, work_done in _CATEGORIES:
        uid = d.uuid4()
        rows["category"].append(
            (uid, d.modified_us(now_us, old), True, dumps({"name": name, "colour": colour}))
        )
        wanted = set(tags.split())
        parts = tuple(
            m for t, m in tagged if wanted & set(t.split()) and m.unit in ("each", "metre")
        )
        labour = tuple(
            m for t, m in tagged if wanted & set(t.split()) and m.unit in ("fixed", "hour")
        )
        if name == "Emergency Call Out":
            labour = (by_name["Call Out Fee"], by_name["After Hours Labour (per hour)"])
        else:
            labour = (by_name["Standard Labour (per hour)"], *labour)
        categories.append(_Category(uid, name, labour, parts + general, descriptions, work_done))

    staff: list[_Staff] = []
    domain = accounts.SERVICEM8_ACCOUNT.email.split("@", 1)[1]
    lat0, lng0 = _AU_COORDS["Sydney"]
    seen: set[str] = set()
    fmt = edit_date_formatter(accounts.SERVICEM8_ACCOUNT.timezone)
    for title, in_field in _STAFF_ROLES:
        uid = d.uuid4()
        first, last = d.pick(FIRST_NAMES), d.pick(LAST_NAMES)
        login = f"{first}.{last}".lower()
        while login in seen:
            login += "1"
        seen.add(login)
        labour = by_name[
            "Apprentice Labour (per hour)"
            if "Apprentice" in title
            else "Standard Labour (per hour)"
        ]
        modified = d.modified_us(now_us, old)
        data = dict(STAFF_DEFAULTS)
        data.update(
            first=first,
            last=last,
            email=f"{login}@{domain}",
            mobile=f"04{d.int(10, 99)} {d.int(100, 999)} {d.int(100, 999)}",
            lng=round(lng0 + 0.4 * d.random() - 0.2, 6),
            lat=round(lat0 + 0.3 * d.random() - 0.15, 6),
            geo_timestamp=fmt(modified),
            job_title=title,
            color=f"{d.getrandbits(24):06x}",
            hide_from_schedule=0 if in_field else 1,
            can_receive_push_notification="1" if in_field else "0",
            security_role_uuid=_ROLE_FIELD if in_field else _ROLE_ADMIN,
            labour_material_uuid=labour.uuid,
        )
        # One former plumber stays readable as a soft-deleted record.
        rows["staff"].append((uid, modified, len(staff) != 9, dumps(data)))
        staff.append(_Staff(uid, in_field, labour.uuid))
    techs = [s for s in staff if s.field]
    return _Catalogue(rows, materials, categories, staff, techs)


# --- companies ---------------------------------------------------------------------------------


def company_records(
    rng: random.Random, count: int, now_us: int
) -> Iterator[tuple[str, int, bool, dict[str, Any]]]:
    """``count`` deterministic company records as (uuid, modified_us, active, data)."""
    d = Dice(rng)
    head_offices: list[tuple[str, str]] = []  # bounded reservoir of (uuid, name) for sites
    for i in range(count):
        uid = d.uuid4()
        suburb, state, postcode = d.pick(_AU_SUBURBS)
        street = f"{d.int(1, 420)} {d.pick(_AU_STREETS)} {d.pick(_AU_STREET_TYPES)}"
        if d.chance(0.15):
            street = f"{d.int(1, 40)}/{street}"
        roll = d.random()
        data = dict(COMPANY_DEFAULTS)
        if roll < 0.10 and head_offices:
            # A Site of an earlier head office [spec: Company.parent_company_uuid].
            parent_uuid, parent_name = d.pick(head_offices)
            data["name"] = f"{parent_name} - {suburb}"
            data["parent_company_uuid"] = parent_uuid
            data["billing_attention"] = "Accounts Payable"
        elif roll < 0.40:
            name = f"{d.pick(_BUSINESS_WORDS)} {d.pick(_AU_TRADES)} {d.pick(_AU_SUFFIX)}".strip()
            data["name"] = name
            data["abn_number"] = (
                f"{d.int(10, 99)} {d.int(100, 999)} {d.int(100, 999)} {d.int(100, 999)}"
            )
            if d.chance(0.5):
                slug = name.lower().replace(" ", "").replace("&", "and")[:24]
                data["website"] = f"https://www.{slug}.com.au"
            data["payment_terms"] = d.pick(("", "14 days", "30 days EOM"))
            if len(head_offices) < 2000:
                head_offices.append((uid, name))
            else:
                head_offices[d.int(0, 1999)] = (uid, name)
        else:
            data["name"] = f"{d.pick(FIRST_NAMES)} {d.pick(LAST_NAMES)}"
            data["is_individual"] = 1
        address = f"{street}\n{suburb} {state} {postcode}"
        data["address"] = address
        data["address_street"] = street
        data["address_city"] = suburb
        data["address_state"] = state
        data["address_postcode"] = postcode
        data["address_country"] = "Australia"
        data["billing_address"] = address if d.chance(0.8) else f"PO Box {d.int(1, 9999)}"
        # Emitted in increasing edit time (u² skew: denser towards now), so the table's physical
        # order matches the (modified, uuid) paging order and a full cursor walk reads the file
        # sequentially. Content and uuid do not depend on the position.
        fraction = 1 - (i + d.random()) / count
        modified = now_us - int(YEAR_US * fraction * fraction)
        yield uid, modified, not d.chance(SOFT_DELETED_SHARE), data


def servicem8_companies(rng: random.Random, count: int, now_us: int) -> Iterator[Row]:
    """``count`` deterministic company rows (see ``company_records``)."""
    for uid, modified, active, data in company_records(rng, count, now_us):
        yield uid, modified, active, dumps(data)


# --- contacts and jobs ------------------------------------------------------------------------


def _slug(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())[:24] or "client"


_CONTACT = json_template(
    [
        ("company_uuid", STR),
        ("first", STR),
        ("last", STR),
        ("phone", STR),
        ("mobile", STR),
        ("email", STR),
        ("type", STR),
        ("is_primary_contact", STR),
    ]
)


def _contact(d: Dice, company_uuid: str, company: dict[str, Any], k: int, now_us: int) -> Row:
    """Contact ``k`` of a company: the first is the primary billing contact [spec:
    CompanyContact.type 'BILLING'/'JOB', is_primary_contact "1"/"0"]."""
    individual = company["is_individual"]
    if individual and k == 0:
        first, _, last = company["name"].partition(" ")
    else:
        first, last = d.pick(FIRST_NAMES), d.pick(LAST_NAMES)
    if individual:
        email = f"{first}.{last}{d.int(1, 99)}@{d.pick(_MAIL_DOMAINS)}".lower()
    else:
        domain = f"{_slug(company['name'])}.com.au"
        email = f"accounts@{domain}" if k == 0 else f"{first}.{last}@{domain}".lower()
    landline = not individual or d.chance(0.3)
    data = _CONTACT % (
        company_uuid,
        first,
        last,
        f"(02) {d.int(8000, 9999)} {d.int(1000, 9999)}" if landline else "",
        f"04{d.int(10, 99)} {d.int(100, 999)} {d.int(100, 999)}",
        email,
        "BILLING" if k == 0 else "JOB",
        "1" if k == 0 else "0",
    )
    return d.uuid4(), d.modified_us(now_us), not d.chance(SOFT_DELETED_SHARE), data


# JobMaterial / JobActivity JSON, spec field order: built with % (8M+ rows at 1M clients).
_LINE = '{"job_uuid":"%s",%s"quantity":"%s",%s"sort_order":"%d",%s}'
_VISIT = (
    '{"job_uuid":"%s","staff_uuid":"%s","start_date":"%s","end_date":"%s",'
    '"activity_was_scheduled":"1","activity_was_recorded":"0","activity_was_automated":"0",'
    '"has_been_opened":"%s","has_been_opened_timestamp":"%s","travel_time_in_seconds":%d,'
    '"travel_distance_in_meters":%d,"allocated_by_staff_uuid":"","allocated_timestamp":"",'
    '"material_uuid":"%s","edit_by_staff_uuid":"%s"}'
)
# Job fields in the spec's order: per-job values, the rest constant (JOB_DEFAULTS).
_JOB_VALUES: dict[str, Any] = {
    "created_by_staff_uuid": STR,
    "date": STR,
    "company_uuid": STR,
    "billing_address": RAW,
    "status": STR,
    "lng": RAW,
    "lat": RAW,
    "category_uuid": STR,
    "purchase_order_number": STR,
    "invoice_sent": INT,
    "invoice_sent_stamp": STR,
    "geo_postcode": STR,
    "geo_state": STR,
    "geo_city": STR,
    "geo_street": STR,
    "geo_number": STR,
    "quote_date": STR,
    "quote_sent": INT,
    "quote_sent_stamp": STR,
    "work_order_date": STR,
    "job_address": RAW,
    "job_description": STR,
    "work_done_description": STR,
    "generated_job_id": STR,
    "total_invoice_amount": STR,
    "payment_processed": INT,
    "payment_processed_stamp": STR,
    "payment_received": INT,
    "payment_received_stamp": STR,
    "completion_date": STR,
    "completion_actioned_by_uuid": FRAGMENT,
    "unsuccessful_date": STR,
    "job_is_scheduled_until_stamp": STR,
}
_JOB_ORDER = (
    "created_by_staff_uuid date company_uuid billing_address status lng lat payment_date "
    "payment_method payment_amount category_uuid payment_note geo_is_valid "
    "purchase_order_number invoice_sent invoice_sent_stamp ready_to_invoice "
    "ready_to_invoice_stamp geo_country geo_postcode geo_state geo_city geo_street geo_number "
    "queue_expiry_date badges quote_date quote_sent quote_sent_stamp work_order_date "
    "active_network_request_uuid related_knowledge_articles job_address job_description "
    "work_done_description generated_job_id total_invoice_amount payment_processed "
    "payment_processed_stamp payment_received payment_received_stamp completion_date "
    "completion_actioned_by_uuid unsuccessful_date job_is_scheduled_until_stamp"
).split()
_JOB = json_template(
    [(k, _JOB_VALUES[k] if k in _JOB_VALUES else JOB_DEFAULTS[k]) for k in _JOB_ORDER]
)
_COMPLETED_BY = ',"completion_actioned_by_uuid":"%s"'
_encode_str = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(frozen=True)
class _Site:
    """What jobs copy from their company (address text already JSON-encoded)."""

    individual: bool
    billing_json: str
    address_json: str
    postcode: str
    state: str
    city: str
    street: str
    house: str
    lat: float
    lng: float

    @classmethod
    def of(cls, company: dict[str, Any]) -> _Site:
        house, _, street = company["address_street"].partition(" ")
        lat, lng = _AU_COORDS[company["address_city"]]
        return cls(
            bool(company["is_individual"]),
            _encode_str(company["billing_address"]),
            _encode_str(company["address"]),
            company["address_postcode"],
            company["address_state"],
            company["address_city"],
            street,
            house,
            lat,
            lng,
        )


# Local business hours of a visit start, in quarter hours after local midnight (7:00–15:00).
_VISIT_QUARTERS = (28, 60)
# Sydney is UTC+10 (+11 in summer): local midnight ≈ UTC 14:00 the day before.
_SYDNEY_OFFSET_US = 10 * HOUR_US


class _JobMaker:
    """Builds one job with its materials and visits (see the module docstring)."""

    def __init__(
        self,
        d: Dice,
        cat: _Catalogue,
        now_us: int,
        fmt: Any,
        sink: RowSink,
        attachments: _AttachmentMaker | None = None,
        extras: _JobExtraMaker | None = None,
    ) -> None:
        self.d = d
        self.attachments = attachments
        self.extras = extras
        self.cat = cat
        self.now_us = now_us
        self.fmt = fmt
        self.office = [s for s in cat.staff if not s.field]
        self.jobs = sink.buffer("job")
        self.lines = sink.buffer("jobmaterial")
        self.visits = sink.buffer("jobactivity")

    def make(self, company_uuid: str, site: _Site, number: int) -> None:
        d, fmt, now = self.d, self.fmt, self.now_us
        job_uuid = d.uuid4()
        modified = d.modified_us(now)
        category = d.pick(self.cat.categories)
        quote_at = wo_at = fail_at = sent_at = 0
        if d.random() < QUOTE_SHARE:
            status = "Quote"
            quote_at = modified - int(d.random() * 30 * DAY_US)
            if d.chance(0.7):
                sent_at = quote_at + int(d.random() * min(3 * DAY_US, modified - quote_at))
        else:
            roll = d.random()
            if roll < 0.60:
                status = "Completed"
                wo_at = modified - 2 * DAY_US - int(d.random() * 20 * DAY_US)
            elif roll < 0.88:
                status = "Work Order"
                wo_at = modified - int(d.random() * 20 * DAY_US)
            else:
                status = "Unsuccessful"
                fail_at = modified - int(d.random() * 10 * DAY_US)
                if d.chance(0.8):  # mostly quotes the client turned down
                    quote_at = fail_at - DAY_US - int(d.random() * 30 * DAY_US)
                else:
                    wo_at = fail_at - DAY_US - int(d.random() * 10 * DAY_US)
            if wo_at and d.chance(0.4):
                quote_at = wo_at - DAY_US - int(d.random() * 20 * DAY_US)
            if quote_at:
                sent_at = quote_at + int(d.random() * ((wo_at or fail_at) - quote_at))
        start_at = quote_at or wo_at

        # Visits (scheduled job activities) for jobs that reached Work Order.
        last_end = 0
        last_staff = ""
        if wo_at:
            if status == "Completed":
                count, window_end = d.int(1, 2), modified - DAY_US
            elif status == "Work Order":
                count, window_end = d.int(0, 2), wo_at + 14 * DAY_US
            else:
                count, window_end = d.int(0, 1), fail_at - DAY_US
            for _ in range(count):
                start = wo_at + int(d.random() * max(window_end - wo_at, 0))
                midnight = (start + _SYDNEY_OFFSET_US) // DAY_US * DAY_US - _SYDNEY_OFFSET_US
                start = midnight + d.int(*_VISIT_QUARTERS) * 15 * _MINUTE_US
                if start < wo_at:
                    start += DAY_US
                end = start + d.int(2, 8) * 30 * _MINUTE_US
                tech = d.pick(self.cat.techs)
                seen_by = min(start, now)
                allocated = wo_at + int(d.random() * max(seen_by - wo_at, 0))
                opened = start <= now or d.chance(0.5)
                opened_at = allocated + int(d.random() * max(seen_by - allocated, 0))
                self.visits.append(
                    (
                        d.uuid4(),
                        opened_at if opened else allocated,
                        not d.chance(SOFT_DELETED_SHARE),
                        _VISIT
                        % (
                            job_uuid,
                            tech.uuid,
                            fmt(start),
                            fmt(end),
                            "1" if opened else "0",
                            fmt(opened_at) if opened else NO_DATE,
                            d.int(5, 60) * 60,
                            d.int(1, 40) * 1000 + d.int(0, 999),
                            tech.labour_uuid,
                            d.pick(self.office).uuid,
                        ),
                    )
                )
                if end > last_end:
                    last_end, last_staff = end, tech.uuid

        # Line items: a labour/fee line, then parts of the category's trade.
        # Prices shown tax-inclusive to individuals, ex tax to businesses.
        incl = 1 if site.individual else 0
        total_c = 0
        labour, parts = category.labour, category.parts
        lines = self.lines
        span = modified - start_at
        for k in range(d.int(2, 6)):
            m = d.pick(labour) if k == 0 else d.pick(parts)
            unit = m.unit
            if unit == "hour":
                qty: float = d.int(1, 8) / 2
            elif unit == "metre":
                qty = d.int(1, 12)
            elif unit == "each" and d.random() < 0.3:
                qty = d.int(2, 4)
            else:
                qty = 1
            active = d.random() >= SOFT_DELETED_SHARE
            if active:
                total_c += round(qty * m.price_c * (100 + m.rate) / 100)
            data = _LINE % (job_uuid, m.head, f"{qty:g}", m.prices[incl], k + 1, m.costs[incl])
            lines.append((d.uuid4(), start_at + int(d.random() * span), active, data))

        invoice_sent = paid = exported = 0
        invoiced_at = paid_at = exported_at = done_at = 0
        work_done = ""
        if status == "Completed":
            done_at = last_end + int(d.random() * (modified - last_end))
            work_done = d.pick(category.work_done)
            if d.chance(0.9):
                invoice_sent = 1
                invoiced_at = done_at + int(d.random() * (modified - done_at))
                if d.chance(0.8):
                    paid = 1
                    paid_at = invoiced_at + int(d.random() * (modified - invoiced_at))
                if d.chance(0.7):
                    exported = 1
                    exported_at = invoiced_at + int(d.random() * (modified - invoiced_at))
        po = f"PO-{d.int(10000, 99999)}" if not site.individual and d.chance(0.4) else ""
        data = _JOB % (
            d.pick(self.cat.staff).uuid,
            fmt(start_at)[:10],
            company_uuid,
            site.billing_json,
            status,
            round(site.lng + 0.06 * d.random() - 0.03, 6),
            round(site.lat + 0.06 * d.random() - 0.03, 6),
            category.uuid,
            po,
            invoice_sent,
            fmt(invoiced_at) if invoiced_at else NO_DATE,
            site.postcode,
            site.state,
            site.city,
            site.street,
            site.house,
            fmt(quote_at) if quote_at else NO_DATE,
            1 if sent_at else 0,
            fmt(sent_at) if sent_at else NO_DATE,
            fmt(wo_at) if wo_at else NO_DATE,
            site.address_json,
            d.pick(category.descriptions) + d.pick(_ACCESS_NOTES),
            work_done,
            str(number),
            money(total_c),
            exported,
            fmt(exported_at) if exported_at else NO_DATE,
            paid,
            fmt(paid_at) if paid_at else NO_DATE,
            fmt(done_at) if done_at else NO_DATE,
            _COMPLETED_BY % last_staff if done_at else "",
            fmt(fail_at) if status == "Unsuccessful" else NO_DATE,
            fmt(last_end) if last_end else NO_DATE,
        )
        active = not d.chance(SOFT_DELETED_SHARE)
        self.jobs.append((job_uuid, modified, active, data))
        if self.attachments is not None:
            times = (start_at, sent_at, done_at, invoiced_at, modified)
            self.attachments.job(job_uuid, number, site, times)
        if self.extras is not None:
            self.extras.job(job_uuid, site, start_at, modified)


# --- attachments -----------------------------------------------------------------------------

# Attachment fields in the spec's order [spec: Attachment]; class_name (read-only) left out.
_ATTACHMENT_VALUES: dict[str, Any] = {
    "related_object": STR,
    "related_object_uuid": STR,
    "attachment_name": RAW,
    "file_type": STR,
    "attachment_source": STR,
    "tags": STR,
    "lng": RAW,
    "lat": RAW,
    "photo_width": STR,
    "photo_height": STR,
    "created_by_staff_uuid": STR,
    "timestamp": STR,
}
_ATTACHMENT_ORDER = (
    "related_object related_object_uuid attachment_name file_type attachment_source tags lng "
    "lat photo_width photo_height extracted_info is_favourite metadata created_by_staff_uuid "
    "timestamp"
).split()
_ATTACHMENT = json_template(
    [(k, _ATTACHMENT_VALUES.get(k, ATTACHMENT_DEFAULTS.get(k))) for k in _ATTACHMENT_ORDER]
)
_PHOTO_SIZES = (("4032", "3024"), ("3024", "4032"), ("1920", "1080"))
_CLIENT_FILES = ("Site plan", "Strata approval", "Backflow register", "Access instructions")


class _AttachmentMaker:
    """Files on jobs and clients, from their own dice (so they never change the jobs)."""

    def __init__(self, d: Dice, cat: _Catalogue, fmt: Any, sink: RowSink) -> None:
        self.d = d
        self.fmt = fmt
        self.staff = cat.staff
        self.techs = cat.techs
        self.rows = sink.buffer("attachment")

    def _add(
        self,
        obj: str,
        owner: str,
        name: str,
        file_type: str,
        at_us: int,
        *,
        source: str = "",
        tags: str = "",
        photo: tuple[str, str] = ("", ""),
        where: tuple[float, float] = (0.0, 0.0),
        staff: str = "",
    ) -> None:
        d = self.d
        data = _ATTACHMENT % (
            obj,
            owner,
            _encode_str(name),
            file_type,
            source,
            tags,
            where[1],
            where[0],
            photo[0],
            photo[1],
            staff or d.pick(self.staff).uuid,
            self.fmt(at_us),
        )
        self.rows.append((d.uuid4(), at_us, not d.chance(SOFT_DELETED_SHARE), data))

    def job(
        self,
        job_uuid: str,
        number: int,
        site: _Site,
        times: tuple[int, int, int, int, int],
    ) -> None:
        """A job's files. ``times``: when it started, its quote was sent, the work was done and
        it was invoiced (0 = never), and its edit; every file is dated within them."""
        d = self.d
        start_at, sent_at, done_at, invoiced_at, end_us = times
        if sent_at and d.chance(0.6):
            # Named without the extension, which file_type gives (both occur in ServiceM8).
            self._add("job", job_uuid, f"Quote {number}", ".pdf", sent_at, source="QUOTE")
        if done_at:
            for _ in range(d.int(0, 3)):
                self._add(
                    "job",
                    job_uuid,
                    f"IMG_{d.int(1000, 9999)}.jpg",
                    ".jpg",
                    start_at + int(d.random() * max(done_at - start_at, 0)),
                    tags="photo",
                    photo=d.pick(_PHOTO_SIZES),
                    where=(round(site.lat, 6), round(site.lng, 6)),
                    staff=d.pick(self.techs).uuid,
                )
        elif d.chance(0.15):
            at = start_at + int(d.random() * max(end_us - start_at, 0))
            self._add("job", job_uuid, "Job notes.txt", ".txt", at)
        if invoiced_at:
            self._add(
                "job", job_uuid, f"Invoice {number}.pdf", ".pdf", invoiced_at, source="INVOICE"
            )

    def company(self, company_uuid: str, modified_us: int) -> None:
        if self.d.chance(0.05):
            name = self.d.pick(_CLIENT_FILES)
            self._add("company", company_uuid, name, ".pdf", modified_us)


# --- job contacts, notes and bundles ------------------------------------------------------------

# (name, item number) of the pricebook bundles a job's bundle line can come from; the
# ``materialbundle`` objects themselves are referenced but not emulated (like security roles).
_BUNDLES = (
    ("Hot Water Install Kit", "KIT-HW"),
    ("Toilet Repair Kit", "KIT-WC"),
    ("Tap Service Kit", "KIT-TAP"),
    ("Gas Appliance Connection Kit", "KIT-GAS"),
)
_BUNDLE_UUIDS = (
    "5b7e2c10-3a4d-4e8f-9b61-0c2d4e6f8a01",
    "5b7e2c10-3a4d-4e8f-9b61-0c2d4e6f8a02",
    "5b7e2c10-3a4d-4e8f-9b61-0c2d4e6f8a03",
    "5b7e2c10-3a4d-4e8f-9b61-0c2d4e6f8a04",
)
# Job diary notes: (text, action required).
_JOB_NOTES = (
    ("Called customer to confirm access and parking.", ""),
    ("Quote followed up by phone, customer comparing prices.", "Follow up next week"),
    ("Parts ordered from Reece, ETA Thursday.", "Book return visit when parts arrive"),
    ("Customer asked for an invoice copy to be sent to their accountant.", ""),
    ("Water turned off at meter on arrival, restored on completion.", ""),
    ("Left a card, nobody home. SMS sent.", "Rebook"),
    ("Tenant confirmed the leak started after heavy rain.", ""),
)
_CLIENT_NOTES = (
    "Strata manager approves all quotes over $1,000 in writing.",
    "Account on 30-day terms, send invoices to accounts payable.",
    "Prefers morning appointments.",
    "Gate code changes monthly, call ahead.",
)


class _JobExtraMaker:
    """Per-job people (``jobcontact``), diary notes (``note``) and bundle lines
    (``jobmaterialbundle``), plus notes on some clients, from their own dice (so they never
    change the jobs). Each record's edit time lies between its job's start and edit times."""

    def __init__(self, d: Dice, cat: _Catalogue, fmt: Any, sink: RowSink) -> None:
        self.d = d
        self.fmt = fmt
        self.office = [s for s in cat.staff if not s.field]
        self.techs = cat.techs
        self.contacts = sink.buffer("jobcontact")
        self.notes = sink.buffer("note")
        self.bundles = sink.buffer("jobmaterialbundle")

    def _at(self, start_us: int, end_us: int) -> int:
        return start_us + int(self.d.random() * max(end_us - start_us, 0))

    def job(self, job_uuid: str, site: _Site, start_us: int, end_us: int) -> None:
        d = self.d
        # A site contact for tenanted homes; a property manager or a separate billing contact
        # for businesses [spec: JobContact.type 'JOB' | 'BILLING' | 'Property Manager'].
        if d.chance(0.2 if site.individual else 0.35):
            kind = "JOB" if site.individual else d.pick(("Property Manager", "BILLING", "JOB"))
            first, last = d.pick(FIRST_NAMES), d.pick(LAST_NAMES)
            data = dict(JOBCONTACT_DEFAULTS)
            data.update(
                job_uuid=job_uuid,
                first=first,
                last=last,
                phone="" if site.individual else f"(02) {d.int(8000, 9999)} {d.int(1000, 9999)}",
                mobile=f"04{d.int(10, 99)} {d.int(100, 999)} {d.int(100, 999)}",
                email=f"{first}.{last}@{d.pick(_MAIL_DOMAINS)}".lower(),
                type=kind,
            )
            at = self._at(start_us, end_us)
            self.contacts.append((d.uuid4(), at, not d.chance(SOFT_DELETED_SHARE), dumps(data)))
        for _ in range(d.int(0, 2)):
            text, action = d.pick(_JOB_NOTES)
            self._note("job", job_uuid, text, action, self._at(start_us, end_us))
        if d.chance(0.12):
            k = d.int(0, len(_BUNDLES) - 1)
            name, item_number = _BUNDLES[k]
            data = dict(JOBMATERIALBUNDLE_DEFAULTS)
            data.update(
                item_number=item_number,
                name=name,
                quantity=str(d.int(1, 2)),
                sort_order=d.int(7, 9),  # after the job's own lines (1–6)
                material_bundle_uuid=_BUNDLE_UUIDS[k],
                job_uuid=job_uuid,
            )
            at = self._at(start_us, end_us)
            self.bundles.append((d.uuid4(), at, not d.chance(SOFT_DELETED_SHARE), dumps(data)))

    def company(self, company_uuid: str, modified_us: int) -> None:
        if self.d.chance(0.1):
            self._note("company", company_uuid, self.d.pick(_CLIENT_NOTES), "", modified_us)

    def _note(self, obj: str, owner: str, text: str, action: str, at_us: int) -> None:
        d = self.d
        data = dict(NOTE_DEFAULTS)
        data.update(
            related_object=obj,
            related_object_uuid=owner,
            note=text,
            action_required=action,
            create_date=self.fmt(at_us),
        )
        if action and d.chance(0.5):
            data["action_completed_by_staff_uuid"] = d.pick(self.office).uuid
        data["edit_by_staff_uuid"] = d.pick(self.office if obj == "company" else self.techs).uuid
        self.notes.append((d.uuid4(), at_us, not d.chance(SOFT_DELETED_SHARE), dumps(data)))


# --- everything ------------------------------------------------------------------------------


def seed_servicem8(sink: RowSink, *, records: int, seed: int, now_us: int, mix: Mix) -> None:
    """Write the catalogues, ``records`` companies and their children into ``sink``."""
    fmt = edit_date_formatter(accounts.SERVICEM8_ACCOUNT.timezone)
    # One generator per concern, so that e.g. the jobs never change the companies.
    cat = _catalogue(Dice(random.Random(f"{seed}:servicem8:catalogue")), now_us)  # noqa: S311
    for obj, rows in cat.rows.items():
        sink.buffer(obj).extend(rows)
    company_rng = random.Random(f"{seed}:servicem8:company")  # noqa: S311 - test data
    cd = Dice(random.Random(f"{seed}:servicem8:companycontact"))  # noqa: S311
    files = _AttachmentMaker(
        Dice(random.Random(f"{seed}:servicem8:attachment")),  # noqa: S311
        cat,
        fmt,
        sink,
    )
    extras = _JobExtraMaker(
        Dice(random.Random(f"{seed}:servicem8:jobextra")),  # noqa: S311
        cat,
        fmt,
        sink,
    )
    maker = _JobMaker(
        Dice(random.Random(f"{seed}:servicem8:job")),  # noqa: S311
        cat,
        now_us,
        fmt,
        sink,
        files,
        extras,
    )
    jd = maker.d
    companies = sink.buffer("company")
    contacts = sink.buffer("companycontact")
    contacts_mean, jobs_mean = mix.contacts_per_client, mix.jobs_per_client
    job_number = FIRST_JOB_NUMBER - 1
    for i, (uid, modified, active, data) in enumerate(
        company_records(company_rng, records, now_us), 1
    ):
        companies.append((uid, modified, active, dumps(data)))
        if contacts_mean:
            for k in range(cd.near(contacts_mean)):
                contacts.append(_contact(cd, uid, data, k, now_us))
        if jobs_mean:
            count = jd.spread(jobs_mean)
            if count:
                site = _Site.of(data)
                for _ in range(count):
                    job_number += 1
                    maker.make(uid, site, job_number)
            files.company(uid, modified)
            extras.company(uid, modified)
        if i & 15 == 0:
            sink.flush()
