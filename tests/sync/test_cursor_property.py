"""Property test of the incremental cursor rules (sync/cursor.py) against a simulated provider.

The simulated provider keeps versions of records stamped with whole seconds (so many share a
timestamp), makes each version visible to readers only after a delay (replication lag, long
transactions), and lists records changed at or after a time, in keyset pages ordered by
(timestamp, id) like ServiceM8, or by id like ServiceTitan. Writes land between the pages of a
run (a record edited mid-walk moves past the reader), and runs may be killed part-way.

Whatever the interleaving, once writes stop and everything is visible, one more complete run
leaves the local copy equal to the provider's: no record lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sync import cursor

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
LOOKBACK = 5  # seconds; the simulated visibility lag never exceeds it
IDS = 6


def at(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


@dataclass
class Provider:
    order: str  # "ts" (keyset on timestamp, id) or "id"
    # id -> versions [(ts, visible_at)], oldest first
    versions: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def write(self, record_id: int, now: int, lag: int) -> None:
        self.versions.setdefault(record_id, []).append((now, now + lag))

    def visible(self, now: int) -> dict[int, int]:
        seen = {}
        for record_id, versions in self.versions.items():
            shown = [ts for ts, visible_at in versions if visible_at <= now]
            if shown:
                seen[record_id] = shown[-1]
        return seen

    def latest(self) -> dict[int, int]:
        return {record_id: versions[-1][0] for record_id, versions in self.versions.items()}

    def page(self, now: int, since: datetime | None, after: tuple | None, size: int):
        rows = [
            (ts, record_id)
            for record_id, ts in self.visible(now).items()
            if since is None or at(ts) >= since
        ]
        key = (lambda r: (r[0], r[1])) if self.order == "ts" else (lambda r: r[1])
        rows.sort(key=key)
        if after is not None:
            rows = [r for r in rows if key(r) > after]
        chunk = rows[:size]
        return chunk, (key(chunk[-1]) if len(rows) > size else None)


@dataclass
class Reader:
    lookback: int = LOOKBACK
    since: datetime | None = None
    local: dict[int, int] = field(default_factory=dict)

    def run(self, provider: Provider, clock: list[int], page_size: int, steps, kill_after):
        started = clock[0]
        asked = cursor.request_since(self.since, timedelta(seconds=self.lookback))
        high_water = None
        after = None
        pages = 0
        while True:
            rows, after = provider.page(clock[0], asked, after, page_size)
            for ts, record_id in rows:
                # The writers never let an older copy replace a newer one.
                self.local[record_id] = max(ts, self.local.get(record_id, ts))
                high_water = cursor.high_water(high_water, at(ts))
            pages += 1
            if after is None:
                break
            if kill_after is not None and pages >= kill_after:
                return  # killed: pages applied, cursor untouched
            for record_id, lag, tick in steps.pop(0) if steps else []:
                clock[0] += tick
                provider.write(record_id, clock[0], lag)
        self.since = cursor.next_since(self.since, high_water, at(started))


write = st.tuples(st.integers(0, IDS - 1), st.integers(0, LOOKBACK), st.integers(0, 1))
step = st.one_of(
    st.tuples(st.just("write"), write),
    st.tuples(st.just("tick"), st.integers(0, 3)),
    st.tuples(
        st.just("run"),
        st.tuples(
            st.integers(1, 3),  # page size
            st.lists(st.lists(write, max_size=3), max_size=4),  # writes between pages
            st.one_of(st.none(), st.integers(1, 3)),  # killed after N pages
        ),
    ),
)


def simulate(order: str, steps, reader: Reader) -> tuple[dict, dict]:
    provider = Provider(order=order)
    clock = [0]
    for kind, arg in steps:
        if kind == "write":
            record_id, lag, tick = arg
            clock[0] += tick
            provider.write(record_id, clock[0], lag)
        elif kind == "tick":
            clock[0] += arg
        else:
            page_size, between, kill_after = arg
            reader.run(provider, clock, page_size, list(between), kill_after)
    # Writes stop; everything becomes visible; one more complete run.
    clock[0] += LOOKBACK + 1
    reader.run(provider, clock, 2, [], None)
    return provider.latest(), reader.local


@settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(order=st.sampled_from(["ts", "id"]), steps=st.lists(step, max_size=30))
@example(  # equal timestamps across a page boundary, then a late-visible write
    order="ts",
    steps=[
        ("write", (0, 0, 0)),
        ("write", (1, 0, 0)),
        ("write", (2, 0, 0)),
        ("run", (1, [], None)),
        ("write", (3, 4, 1)),
        ("write", (4, 0, 0)),
        ("run", (1, [[(0, 0, 1)]], None)),
    ],
)
def test_no_record_is_lost(order, steps):
    truth, local = simulate(order, steps, Reader())
    assert local == truth


def test_the_property_has_teeth():
    """Without the lookback the same simulation loses a late-visible write: the test above
    would catch a cursor that forgot it."""
    steps = [
        ("write", (0, 0, 0)),
        ("write", (1, 3, 1)),  # stamped at 1, visible at 4
        ("write", (2, 0, 1)),  # stamped at 2, visible at once
        ("tick", 1),
        ("run", (5, [], None)),  # at 3: sees 0 and 2, not 1; cursor -> 2
    ]
    truth, local = simulate("ts", steps, Reader(lookback=0))
    assert local != truth
    truth, local = simulate("ts", steps, Reader())
    assert local == truth


@pytest.mark.parametrize(
    ("since", "high_water", "started", "expected"),
    [
        (None, None, 10, None),
        (None, 5, 10, 5),
        (7, 5, 10, 7),  # never moves back
        (None, 50, 10, 10),  # a timestamp from the future is capped at the run's start
        (50, None, 10, 10),  # a cursor in the future heals
    ],
)
def test_next_since(since, high_water, started, expected):
    value = cursor.next_since(
        at(since) if since is not None else None,
        at(high_water) if high_water is not None else None,
        at(started),
    )
    assert value == (at(expected) if expected is not None else None)
