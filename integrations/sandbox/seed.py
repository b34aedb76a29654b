"""Deterministic, realistic seed data for the sandbox.

``seed(db_path, records=N)`` creates the standard accounts (``ensure_accounts``) and N clients
per provider in the primary account:

- ServiceM8 ``company`` records (Sydney-area clients of a plumbing business): ~60 %
  individuals, ~30 % businesses (head offices), ~10 % sites of an earlier business
  (``parent_company_uuid``), with address fields, ABN, billing address;
- ServiceTitan ``customers`` (US clients of an HVAC business): ~75 % Residential, ~25 %
  Commercial, increasing int64 ids with gaps, ``createdOn`` increasing with the id, some custom
  fields, balances and do-not-mail flags, ``mergedToId`` on half of the deactivated ones.

Modified times spread over the past year, denser towards now (most edits are recent); about 2 %
of records are soft-deleted (``active`` 0/false) as both providers keep deleted records
readable (NOTES.md §1 "Deletion detection", §2 "Deletion detection").

Content is a pure function of ``seed`` (one ``random.Random`` per provider); timestamps are
relative to ``now`` (default: the current minute), so two runs with the same seed and ``now``
produce identical databases. Re-seeding without ``reset`` upserts: the same seed rewrites the
same ids. Generation is streamed in batches of ``BATCH`` rows, so memory stays flat at any
size (1,000,000 records per provider is the design point).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from integrations.sandbox import accounts
from integrations.sandbox.servicem8 import COMPANY_DEFAULTS, VENDOR_DEFAULTS
from integrations.sandbox.store import BulkLoader, Collection, Row, Store, dumps, iso_utc, to_us

BATCH = 10_000
T = TypeVar("T")
SOFT_DELETED_SHARE = 0.02
_DAY_US = 86_400 * 1_000_000
_YEAR_US = 365 * _DAY_US

_FIRST = (
    "Olivia James Charlotte Jack Amelia William Isla Noah Mia Thomas Ava Oliver Grace Lucas "
    "Chloe Henry Sophie Ethan Emily Leo Ella Liam Zoe Max Ruby Samuel Lily Daniel Harper "
    "Benjamin Matilda Joshua Evie Ryan Hannah Michael Sarah David Jessica Andrew Emma Matthew "
    "Laura Christopher Megan Nathan Rachel Luke Priya Wei Mohammed Aisha Raj Mei Connor Fatima"
).split()
_LAST = (
    "Smith Jones Williams Brown Wilson Taylor Johnson White Martin Anderson Thompson Nguyen "
    "Thomas Walker Harris Lee Ryan Robinson Kelly King Davis Wright Evans Roberts Green Hall "
    "Wood Jackson Clarke Patel Khan Lewis James Phillips Mitchell Campbell Turner Collins "
    "Edwards Murphy Chen Wang Singh Kaur Hughes OBrien Garcia Lopez Murray Stewart Baker Scott"
).split()
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
_US_CUSTOM_FIELDS = (
    (1001, "Referral Source", ("Google", "Yelp", "Neighbor", "Repeat", "Facebook", "Radio")),
    (1002, "Preferred Contact", ("Phone", "Email", "Text")),
    (1003, "Gate Code", ("#1234", "#4455", "*9090", "0000")),
)
_US_CREATOR_IDS = (5001, 5002, 5003, 5017, 5020)
# First ServiceTitan customer id, and how far back customer creation starts.
_ST_FIRST_ID = 11_000_000
_ST_HISTORY_YEARS = 4


def _now_minute() -> datetime:
    return datetime.now(tz=UTC).replace(second=0, microsecond=0)


class _Dice:
    """Fast deterministic draws over one ``random.Random``.

    ``Random.random`` is implemented in C; ``choice``/``randint`` are Python wrappers that cost
    ~1 µs each, which adds up to minutes over 2,000,000 records.
    """

    __slots__ = ("getrandbits", "random")

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random
        self.getrandbits = rng.getrandbits

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.random() * len(seq))]

    def int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + int(self.random() * (hi - lo + 1))

    def chance(self, p: float) -> bool:
        return self.random() < p

    def uuid4(self) -> str:
        """A random version-4 UUID string (as ``uuid.uuid4()`` but from this generator)."""
        bits = self.getrandbits(128)
        bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
        bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def modified_us(self, now_us: int, floor_us: int = 0) -> int:
        """A modified time within the past year, denser towards now (u² skew), ≥ floor_us."""
        back = int(_YEAR_US * self.random() ** 2) + int(self.random() * 1_000_000)
        return max(now_us - back, floor_us)


# --- accounts ----------------------------------------------------------------------------------


def ensure_accounts(store: Store) -> None:
    """Create the ServiceM8 ``vendor`` record of every standard account if it is missing.

    ``GET /vendor.json`` returns the account's own record [spec: Vendor]. ServiceTitan tenants
    need no record: the tenant only appears in URLs and tokens.
    """
    for account in accounts.SERVICEM8_ACCOUNTS:
        collection = Collection("servicem8", account.uuid, "vendor")
        if store.get(collection, account.uuid) is not None:
            continue
        data = dict(VENDOR_DEFAULTS)
        data.update(
            name=account.name,
            email=account.email,
            timezone_name=account.timezone,
            website=f"https://www.{account.email.split('@', 1)[1]}",
            billing_address="Level 1, 100 George St\nSydney NSW 2000",
            business_number="51 824 753 556",
            abn_number="51 824 753 556",
            invoice_terms="Payment due within 14 days.",
        )
        store.upsert(collection, account.uuid, data)


# --- ServiceM8 companies -----------------------------------------------------------------------


def servicem8_companies(rng: random.Random, count: int, now_us: int) -> Iterator[Row]:
    """``count`` deterministic company records (see the module docstring)."""
    d = _Dice(rng)
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
            data["name"] = f"{d.pick(_FIRST)} {d.pick(_LAST)}"
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
        modified = now_us - int(_YEAR_US * fraction * fraction)
        yield uid, modified, not d.chance(SOFT_DELETED_SHARE), dumps(data)


# --- ServiceTitan customers --------------------------------------------------------------------


def servicetitan_customers(rng: random.Random, count: int, now_us: int) -> Iterator[Row]:
    """``count`` deterministic customer records (see the module docstring)."""
    d = _Dice(rng)
    start_us = now_us - _ST_HISTORY_YEARS * _YEAR_US
    step_us = (now_us - start_us) / max(count, 1)
    customer_id = _ST_FIRST_ID
    for i in range(count):
        customer_id += d.int(1, 40)
        created_us = start_us + int((i + d.random()) * step_us)
        city, state, zip_prefix, lat, lng = d.pick(_US_CITIES)
        commercial = d.chance(0.25)
        if commercial:
            name = f"{d.pick(_LAST)} {d.pick(_US_TRADES)} {d.pick(_US_SUFFIX)}".strip()
            unit = f"Suite {d.int(100, 450)}" if d.chance(0.3) else None
        else:
            name = f"{d.pick(_FIRST)} {d.pick(_LAST)}"
            unit = f"Apt {d.int(1, 40)}" if d.chance(0.08) else None
        custom_fields = [
            {"typeId": type_id, "name": label, "value": d.pick(values)}
            for type_id, label, values in _US_CUSTOM_FIELDS
            if d.chance(0.2)
        ]
        active = not d.chance(SOFT_DELETED_SHARE)
        merged_to = None
        if not active and customer_id > _ST_FIRST_ID + 100 and d.chance(0.5):
            # "False indicates that someone has deactivated the customer record, typically upon
            # merging with another record" [spec: CustomerResponse.active].
            merged_to = d.int(_ST_FIRST_ID, customer_id - 1)
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
        yield customer_id, d.modified_us(now_us, floor_us=created_us), active, dumps(data)


# --- entry points ------------------------------------------------------------------------------


def _load(loader: BulkLoader, collection: Collection, rows: Iterator[Row]) -> int:
    """Insert generated rows in batches of ``BATCH`` (memory stays at one batch).

    Generation and insertion run in turn on one thread: overlapping them with a producer
    thread was measured to be *slower*, because ``sqlite3`` re-acquires the GIL per row.
    """
    total = 0
    for batch in itertools.batched(rows, BATCH):
        total += loader.insert(collection, batch)
    return total


def seed_store(
    store: Store,
    *,
    records: int,
    seed: int = 42,
    reset: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Seed an open store; returns counts per provider/object. See the module docstring."""
    if records < 0:
        raise ValueError("records must be >= 0")
    anchor_us = to_us(now or _now_minute())
    if reset:
        store.delete_all()
    ensure_accounts(store)
    sm8 = Collection("servicem8", accounts.SERVICEM8_ACCOUNT.uuid, "company")
    st = Collection("servicetitan", accounts.SERVICETITAN_TENANT.tenant_id, "customers")
    # A str seed is hashed deterministically by random.Random (version 2 seeding).
    sm8_rng = random.Random(f"{seed}:servicem8:company")  # noqa: S311 - test data, not security
    st_rng = random.Random(f"{seed}:servicetitan:customers")  # noqa: S311
    with store.bulk_load() as loader:
        return {
            "servicem8": {
                "company": _load(loader, sm8, servicem8_companies(sm8_rng, records, anchor_us))
            },
            "servicetitan": {
                "customers": _load(loader, st, servicetitan_customers(st_rng, records, anchor_us))
            },
        }


def seed(
    db_path: str | Path,
    *,
    records: int,
    seed: int = 42,
    reset: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Open ``db_path``, seed it (see ``seed_store``), close it; adds ``seconds`` to the result."""
    started = time.monotonic()
    store = Store(db_path)
    try:
        result = seed_store(store, records=records, seed=seed, reset=reset, now=now)
    finally:
        store.close()
    result["seconds"] = round(time.monotonic() - started, 3)
    return result
