"""Incremental cursors: pure functions, no database (property-tested in tests/sync).

A cursor is the newest `remote_updated_at` a *completed* run saw. The next run asks the
provider for records changed at or after `since - lookback`:

- inclusive (`>=`), so records sharing the cursor's timestamp, split across pages or written
  in the same second, are read again rather than skipped;
- a lookback window per provider, so a write that becomes visible to readers some seconds
  after its timestamp (replication lag, long transactions, clock skew) is still read;
- the re-read overlap costs nothing locally: rows whose content is unchanged are not written.

The cursor moves only when a run reads every page. A run that dies, is truncated or fails
keeps the old cursor, because pages are not ordered by modification time everywhere: a later
page could hold an older change. The new value is capped at the run's start, so a record
stamped in the future (a provider clock running ahead) cannot push the cursor past changes
still to come.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def request_since(since: datetime | None, lookback: timedelta) -> datetime | None:
    """What to ask the provider for: everything when there is no cursor."""
    return None if since is None else since - lookback


def high_water(current: datetime | None, seen: datetime | None) -> datetime | None:
    """The newest modification time among the records read so far."""
    if seen is None:
        return current
    return seen if current is None or seen > current else current


def next_since(
    since: datetime | None, seen_high_water: datetime | None, run_started_at: datetime
) -> datetime | None:
    """The cursor after a complete run: the newest change it saw (or the old cursor when it
    saw nothing newer), never later than the moment the run started."""
    candidate = high_water(since, seen_high_water)
    if candidate is None:
        return None
    return min(candidate, run_started_at)


def dump(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def load(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
