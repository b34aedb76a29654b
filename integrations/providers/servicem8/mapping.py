"""Pure functions from ServiceM8 JSON to normalized records.

ServiceM8 quirks handled here (NOTES.md §1, Gotchas):
- booleans arrive as 1/0 or "1"/"0";
- empty dates are "0000-00-00 00:00:00" rather than null;
- `edit_date` ("YYYY-MM-DD HH:MM:SS") carries no zone: it is the account's local time (the
  vendor's `timezone_name`), converted here to aware UTC;
- a deleted record is still returned, with `active` = 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from integrations.base import ExternalClient

PROVIDER = "servicem8"
EDIT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def as_bool(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes"}


def parse_local_datetime(value: str | None, tz: ZoneInfo) -> datetime | None:
    if not value or value.startswith("0000-00-00"):
        return None
    return datetime.strptime(value, EDIT_DATE_FORMAT).replace(tzinfo=tz).astimezone(UTC)


def format_local_datetime(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime(EDIT_DATE_FORMAT)


def _address(raw: dict) -> str:
    parts = [raw.get(f"address_{k}") for k in ("street", "city", "state", "postcode", "country")]
    joined = ", ".join(p.strip() for p in parts if p and p.strip())
    return joined or (raw.get("address") or "").strip()


def company_to_client(raw: dict, *, tz: ZoneInfo) -> ExternalClient:
    """A ServiceM8 `company` (what ServiceM8 calls a client)."""
    return ExternalClient(
        provider=PROVIDER,
        external_id=raw["uuid"],
        raw=raw,
        remote_updated_at=parse_local_datetime(raw.get("edit_date"), tz),
        deleted=not as_bool(raw.get("active", 1)),
        name=(raw.get("name") or "").strip() or "(no name)",
        kind="residential" if as_bool(raw.get("is_individual")) else "commercial",
        address=_address(raw),
        parent_external_id=raw.get("parent_company_uuid") or None,
    )
