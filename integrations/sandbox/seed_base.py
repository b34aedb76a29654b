"""Shared pieces of the seeder (``seed.py``): fast deterministic dice, name lists, time units.

The provider generators (``seed_servicem8.py``, ``seed_servicetitan.py``) write rows into a
``RowSink``: per-object buffers that ``seed.py`` flushes to the store ``BATCH`` rows at a time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from integrations.sandbox.store import Row

T = TypeVar("T")
SOFT_DELETED_SHARE = 0.02
SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 86_400 * SECOND_US
YEAR_US = 365 * DAY_US

FIRST_NAMES = (
    "Olivia James Charlotte Jack Amelia William Isla Noah Mia Thomas Ava Oliver Grace Lucas "
    "Chloe Henry Sophie Ethan Emily Leo Ella Liam Zoe Max Ruby Samuel Lily Daniel Harper "
    "Benjamin Matilda Joshua Evie Ryan Hannah Michael Sarah David Jessica Andrew Emma Matthew "
    "Laura Christopher Megan Nathan Rachel Luke Priya Wei Mohammed Aisha Raj Mei Connor Fatima"
).split()
LAST_NAMES = (
    "Smith Jones Williams Brown Wilson Taylor Johnson White Martin Anderson Thompson Nguyen "
    "Thomas Walker Harris Lee Ryan Robinson Kelly King Davis Wright Evans Roberts Green Hall "
    "Wood Jackson Clarke Patel Khan Lewis James Phillips Mitchell Campbell Turner Collins "
    "Edwards Murphy Chen Wang Singh Kaur Hughes OBrien Garcia Lopez Murray Stewart Baker Scott"
).split()


@dataclass(frozen=True)
class Mix:
    """How many child records each client gets (means; the counts vary per client).

    ``records`` (N) is always clients per provider; everything else scales from it through
    these ratios, except the fixed catalogues (staff, pricebook, categories, tax rates,
    business units, job types), which are seeded whatever the ratios.

    - ``contacts_per_client``: ServiceM8 ``companycontact`` and ServiceTitan ``contacts``
      (1.5 → one or two each).
    - ``jobs_per_client``: ServiceM8 ``job`` (quotes included, about a third of them) and
      ServiceTitan ``jobs`` (each with one appointment); job materials (2–6 per job) and job
      activities (0–2 per non-quote job) follow the jobs.
    - ``estimates_per_client``: ServiceTitan ``estimates``, each on one of the customer's jobs.
    """

    contacts_per_client: float = 1.5
    jobs_per_client: float = 2.0
    estimates_per_client: float = 0.5

    def __post_init__(self) -> None:
        for name in ("contacts_per_client", "jobs_per_client", "estimates_per_client"):
            value = getattr(self, name)
            if not 0 <= value <= 50:
                raise ValueError(f"{name} must be between 0 and 50, not {value}")


# Clients only: what ``seed`` produced before the other entities existed.
CLIENTS_ONLY = Mix(contacts_per_client=0, jobs_per_client=0, estimates_per_client=0)


class RowSink(Protocol):
    """Where generators put rows: ``buffer(obj)`` is the list to append (id, modified_us,
    active, data_json) rows to; ``flush()`` writes the buffers that are full."""

    def buffer(self, obj: str) -> list[Row]: ...

    def flush(self) -> None: ...


_UUID_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


class Dice:
    """Fast deterministic draws over one ``random.Random``.

    ``Random.random`` is implemented in C; ``choice``/``randint`` are Python wrappers that cost
    ~1 µs each, which adds up to minutes over tens of millions of records.
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

    def near(self, mean: float) -> int:
        """floor(mean) or ceil(mean), averaging ``mean`` (1.5 → 1 or 2)."""
        return int(mean + self.random())

    def spread(self, mean: float) -> int:
        """A count in 0..2·mean averaging ``mean`` (2 → 0–4, mostly 1–3)."""
        return int(2 * mean * self.random() + self.random())

    def uuid4(self) -> str:
        """A random version-4 UUID string (as ``uuid.uuid4()`` but from this generator)."""
        # Version 4 in bits 76–79, RFC 4122 variant in bits 62–63.
        h = "%032x" % (self.getrandbits(128) & _UUID_KEEP | _UUID_SET)  # noqa: UP031
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def modified_us(self, now_us: int, floor_us: int = 0) -> int:
        """A modified time within the past year, denser towards now (u² skew), ≥ floor_us."""
        back = int(YEAR_US * self.random() ** 2) + int(self.random() * 1_000_000)
        return max(now_us - back, floor_us)


def money(cents: int) -> str:
    """Integer cents as a 2-decimal money string (ServiceM8 types money as strings).

    Amounts are computed in integer cents so that line totals and job totals always agree.
    """
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def dollars(cents: int) -> float:
    """Integer cents as a decimal number (ServiceTitan types money as ``decimal`` numbers)."""
    return round(cents / 100, 2)


# --- JSON templates ----------------------------------------------------------------------------

STR = object()  # a string placeholder; the value must need no JSON escaping
RAW = object()  # a placeholder for JSON text (an escaped string, a number, null, …)
INT = object()  # an integer placeholder
FRAGMENT = object()  # raw text spliced in as is: "" or ',"key":value' for optional fields


def json_template(fields: Sequence[tuple[str, Any]]) -> str:
    """A ``%`` format string for a JSON object with these fields, in order.

    Each field is (name, STR | RAW | INT | FRAGMENT) for a per-record value or (name,
    constant) for a value every record shares (encoded once here). Formatting a template is
    several times cheaper than building a dict and ``json.dumps``-ing it, which matters for
    the objects seeded by the million; the tests parse every seeded record back.
    """
    parts: list[str] = []
    for name, kind in fields:
        if kind is FRAGMENT:
            if not parts:
                raise ValueError("an optional fragment cannot be the first field")
            parts.append("%s")
            continue
        key = json.dumps(name) + ":"
        if kind is STR:
            value = '"%s"'
        elif kind is RAW:
            value = "%s"
        elif kind is INT:
            value = "%d"
        else:
            value = json.dumps(kind, ensure_ascii=False).replace("%", "%%")
        parts.append(("," if parts else "") + key + value)
    return "{" + "".join(parts) + "}"
