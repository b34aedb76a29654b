"""Pure functions from ServiceTitan JSON to normalized records.

Times are ISO 8601 in UTC (spec: "Modified on (UTC)"); deactivated records come back with
`active: false` when listed with `active=Any`; merged customers carry `mergedToId`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from integrations.base import ExternalClient

PROVIDER = "servicetitan"


def parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _address(address: dict | None) -> str:
    if not address:
        return ""
    street = " ".join(p for p in (address.get("street"), address.get("unit")) if p)
    parts = (
        street,
        address.get("city"),
        address.get("state"),
        address.get("zip"),
        address.get("country"),
    )
    return ", ".join(p.strip() for p in parts if p and str(p).strip())


def customer_to_client(raw: dict) -> ExternalClient:
    kind = {"residential": "residential", "commercial": "commercial"}.get(
        str(raw.get("type") or "").lower(), "unknown"
    )
    merged_to = raw.get("mergedToId")
    return ExternalClient(
        provider=PROVIDER,
        external_id=str(raw["id"]),
        raw=raw,
        remote_updated_at=parse_datetime(raw.get("modifiedOn")),
        deleted=raw.get("active") is False,
        name=(raw.get("name") or "").strip() or "(no name)",
        kind=kind,
        address=_address(raw.get("address")),
        parent_external_id=str(merged_to) if merged_to else None,
    )
