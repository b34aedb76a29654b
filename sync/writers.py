"""Writing normalized provider records into the local tables, in bulk.

One `Sink` per record type says which model it fills, which fields it copies and which
parents it links to. `write_records` takes one page of records and, per sink, in dependency
order (clients before jobs before quotes before line items):

1. resolves parents by external id with one query per parent type; a record whose parent is
   not here yet is *held* (returned to the engine, which keeps it and retries it), not dropped;
2. reads the existing rows' content digests with one query per batch, and skips records whose
   content is unchanged, or older than what is stored (a late, out-of-order copy);
3. upserts the rest with one `INSERT … ON CONFLICT (integration_id, external_id) DO UPDATE`
   per batch (`bulk_create(update_conflicts=True)`);
4. if the database refuses a batch (a value too long, a broken constraint), retries its rows
   one by one under savepoints so that only the bad rows fail, each with its reason.

Deletes are soft: a deleted record sets `remote_deleted_at` (kept from the first time it was
seen deleted), and every portal selector hides such rows.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import DatabaseError, models, transaction
from django.utils import timezone

from integrations.base import (
    ExternalClient,
    ExternalContact,
    ExternalJob,
    ExternalJobMaterial,
    ExternalLineItem,
    ExternalQuote,
    ExternalRecord,
    ExternalStaff,
)
from portal.models import Client, Contact, Job, JobMaterial, Staff, SyncedModel
from quotes.models import Quote, QuoteLineItem

BATCH_SIZE = 1000


@dataclass(frozen=True)
class Parent:
    fk: str  # the model's FK attname, e.g. "client_id"
    attr: str  # the record attribute holding the parent's external id
    model: type[SyncedModel]


@dataclass(frozen=True)
class Sink:
    record_type: type[ExternalRecord]
    model: type[SyncedModel]
    fields: tuple[str, ...]
    parents: tuple[Parent, ...] = ()

    def values(self, record: ExternalRecord) -> dict:
        values = {name: getattr(record, name) for name in self.fields}
        if self.record_type is ExternalClient:
            values["is_active"] = not record.deleted
        return values


SINKS: tuple[Sink, ...] = (
    Sink(ExternalClient, Client, ("name", "kind", "email", "phone", "address")),
    Sink(
        ExternalStaff,
        Staff,
        ("kind", "first_name", "last_name", "email", "phone", "title", "is_active"),
    ),
    Sink(
        ExternalContact,
        Contact,
        ("first_name", "last_name", "email", "phone", "mobile", "role", "is_primary"),
        (Parent("client_id", "client_external_id", Client),),
    ),
    Sink(
        ExternalJob,
        Job,
        (
            "number",
            "summary",
            "description",
            "status",
            "provider_status",
            "priority",
            "category",
            "address",
            "scheduled_start",
            "scheduled_end",
            "completed_at",
            "revenue",
        ),
        (Parent("client_id", "client_external_id", Client),),
    ),
    Sink(
        ExternalQuote,
        Quote,
        (
            "number",
            "title",
            "status",
            "provider_status",
            "subtotal",
            "tax_total",
            "total",
            "prices_include_tax",
            "currency",
            "valid_until",
            "sent_at",
        ),
        (
            Parent("client_id", "client_external_id", Client),
            Parent("job_id", "job_external_id", Job),
        ),
    ),
    Sink(
        ExternalJobMaterial,
        JobMaterial,
        ("name", "description", "quantity", "unit_price", "total", "sort_order"),
        (Parent("job_id", "job_external_id", Job),),
    ),
    Sink(
        ExternalLineItem,
        QuoteLineItem,
        (
            "name",
            "description",
            "quantity",
            "unit_price",
            "total",
            "is_optional",
            "sort_order",
        ),
        (Parent("quote_id", "quote_external_id", Quote),),
    ),
)
SINK_BY_TYPE: dict[type[ExternalRecord], Sink] = {sink.record_type: sink for sink in SINKS}


def sink_for(record_type: type[ExternalRecord]) -> Sink:
    for klass in record_type.__mro__:
        if klass in SINK_BY_TYPE:
            return SINK_BY_TYPE[klass]
    raise LookupError(f"no sink for {record_type.__name__}")


@dataclass
class WriteResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    # (record, what it waits for)
    held: list[tuple[ExternalRecord, str]] = field(default_factory=list)
    # (record, reason)
    failed: list[tuple[ExternalRecord, str]] = field(default_factory=list)
    # external ids written or found unchanged, per model: the records that are now in place
    settled: dict[type[SyncedModel], set[str]] = field(default_factory=lambda: defaultdict(set))

    def merge(self, other: WriteResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.held.extend(other.held)
        self.failed.extend(other.failed)
        for model, ids in other.settled.items():
            self.settled[model] |= ids


def content_digest(values: dict) -> str:
    text = json.dumps(values, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _json_default(value: object) -> str:
    if isinstance(value, datetime | Decimal):
        return str(value)
    return repr(value)


def write_records(integration_id: int, records: Iterable[ExternalRecord]) -> WriteResult:
    """Upsert one page of records. Call inside a transaction."""
    by_sink: dict[Sink, list[ExternalRecord]] = defaultdict(list)
    for record in records:
        by_sink[sink_for(type(record))].append(record)
    quotes = by_sink.get(SINK_BY_TYPE[ExternalQuote], [])
    result = WriteResult()
    for sink in SINKS:
        batch = by_sink.get(sink, [])
        if sink.record_type is ExternalLineItem:
            batch = _with_embedded_items(batch, quotes)
        if not batch:
            continue
        result.merge(_write_sink(integration_id, sink, batch))
        if sink.record_type is ExternalJobMaterial:
            by_sink[SINK_BY_TYPE[ExternalLineItem]].extend(
                _materials_as_line_items(integration_id, batch)
            )
    _remove_missing_embedded_items(integration_id, quotes)
    return result


def _with_embedded_items(
    items: list[ExternalRecord], quotes: Sequence[ExternalRecord]
) -> list[ExternalRecord]:
    embedded = [
        item
        for quote in quotes
        if isinstance(quote, ExternalQuote) and quote.line_items is not None
        for item in quote.line_items
    ]
    return [*items, *embedded]


def _materials_as_line_items(
    integration_id: int, materials: Sequence[ExternalRecord]
) -> list[ExternalLineItem]:
    """A material whose job is also a quote (ServiceM8) is that quote's line item too. Only
    quotes that exist count: a material on a plain job is not held for a quote."""
    wanted = {
        m.quote_external_id
        for m in materials
        if isinstance(m, ExternalJobMaterial) and m.quote_external_id
    }
    if not wanted:
        return []
    existing = set(
        Quote.objects.filter(integration_id=integration_id, external_id__in=wanted).values_list(
            "external_id", flat=True
        )
    )
    return [
        ExternalLineItem(
            provider=m.provider,
            external_id=m.external_id,
            raw=m.raw,
            remote_updated_at=m.remote_updated_at,
            deleted=m.deleted,
            quote_external_id=m.quote_external_id,
            name=m.name,
            description=m.description,
            quantity=m.quantity,
            unit_price=m.unit_price,
            total=m.total,
            sort_order=m.sort_order,
        )
        for m in materials
        if isinstance(m, ExternalJobMaterial) and m.quote_external_id in existing
    ]


def _remove_missing_embedded_items(integration_id: int, quotes: Sequence[ExternalRecord]) -> None:
    """A quote that lists its items in full (ServiceTitan) has lost the items it no longer
    lists: mark them deleted."""
    complete = {
        q.external_id: {item.external_id for item in q.line_items}
        for q in quotes
        if isinstance(q, ExternalQuote) and q.line_items is not None
    }
    if not complete:
        return
    now = timezone.now()
    rows = QuoteLineItem.objects.filter(
        integration_id=integration_id,
        quote__external_id__in=list(complete),
        quote__integration_id=integration_id,
        remote_deleted_at__isnull=True,
    ).values_list("id", "external_id", "quote__external_id")
    gone = [pk for pk, ext, quote_ext in rows if ext not in complete[quote_ext]]
    if gone:
        QuoteLineItem.objects.filter(id__in=gone).update(remote_deleted_at=now, updated_at=now)


def _write_sink(integration_id: int, sink: Sink, records: list[ExternalRecord]) -> WriteResult:
    result = WriteResult()
    # The newest copy of each record wins (a record edited mid-walk can come twice).
    newest: dict[str, ExternalRecord] = {}
    for record in records:
        seen = newest.get(record.external_id)
        if seen is None or _newer_or_equal(record, seen):
            newest[record.external_id] = record
    unique = list(newest.values())
    for start in range(0, len(unique), BATCH_SIZE):
        result.merge(_write_batch(integration_id, sink, unique[start : start + BATCH_SIZE]))
    return result


def _newer_or_equal(record: ExternalRecord, other: ExternalRecord) -> bool:
    if record.remote_updated_at is None or other.remote_updated_at is None:
        return True
    return record.remote_updated_at >= other.remote_updated_at


def _parent_ids(
    integration_id: int, sink: Sink, records: Sequence[ExternalRecord]
) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for parent in sink.parents:
        wanted = {getattr(r, parent.attr) for r in records} - {None, ""}
        found[parent.fk] = (
            dict(
                parent.model.objects.filter(
                    integration_id=integration_id, external_id__in=wanted
                ).values_list("external_id", "id")
            )
            if wanted
            else {}
        )
    return found


def _write_batch(integration_id: int, sink: Sink, records: list[ExternalRecord]) -> WriteResult:
    result = WriteResult()
    model = sink.model
    parents = _parent_ids(integration_id, sink, records)
    existing = {
        ext: (pk, digest, deleted_at, updated_at)
        for pk, ext, digest, deleted_at, updated_at in model.objects.filter(
            integration_id=integration_id, external_id__in=[r.external_id for r in records]
        ).values_list("id", "external_id", "content_hash", "remote_deleted_at", "remote_updated_at")
    }
    now = timezone.now()
    rows: list[tuple[ExternalRecord, SyncedModel, bool]] = []
    for record in records:
        values = sink.values(record)
        missing = None
        for parent in sink.parents:
            ext = getattr(record, parent.attr)
            if ext in (None, ""):
                values[parent.fk] = None
            elif ext in parents[parent.fk]:
                values[parent.fk] = parents[parent.fk][ext]
            else:
                missing = f"{parent.model._meta.verbose_name} {ext}"
                break
        if missing:
            result.held.append((record, missing))
            continue
        values["raw"] = record.raw
        values["remote_updated_at"] = record.remote_updated_at
        digest = content_digest({**values, "deleted": record.deleted})
        current = existing.get(record.external_id)
        if current is not None:
            _, current_digest, deleted_at, updated_at = current
            stale = (
                updated_at is not None
                and record.remote_updated_at is not None
                and record.remote_updated_at < updated_at
            )
            revived = (deleted_at is not None) != record.deleted  # swept, or undeleted
            if (current_digest == digest and not revived) or stale:
                result.unchanged += 1
                result.settled[model].add(record.external_id)
                continue
        else:
            deleted_at = None
        values["remote_deleted_at"] = (deleted_at or now) if record.deleted else None
        values["content_hash"] = digest
        _truncate(model, values)
        obj = model(integration_id=integration_id, external_id=record.external_id, **values)
        rows.append((record, obj, current is None))
        newly_deleted = record.deleted and (current is None or current[2] is None)
        result.deleted += int(newly_deleted)
    if rows:
        _upsert(model, rows, result)
    return result


def _upsert(
    model: type[SyncedModel],
    rows: list[tuple[ExternalRecord, SyncedModel, bool]],
    result: WriteResult,
) -> None:
    update_fields = [
        f.name
        for f in model._meta.concrete_fields
        if not f.primary_key and f.name not in {"integration", "external_id", "created_at"}
    ]

    def insert(objs: list[SyncedModel]) -> None:
        model.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=["integration", "external_id"],
            update_fields=update_fields,
        )

    try:
        with transaction.atomic():
            insert([obj for _, obj, _ in rows])
        ok = rows
    except DatabaseError:
        ok = []
        for row in rows:
            try:
                with transaction.atomic():
                    insert([row[1]])
                ok.append(row)
            except DatabaseError as exc:
                result.failed.append((row[0], f"the database refused it: {exc}"[:1000]))
    for record, _obj, is_new in ok:
        result.created += int(is_new)
        result.updated += int(not is_new)
        result.settled[model].add(record.external_id)


def _truncate(model: type[models.Model], values: dict) -> None:
    """Provider strings longer than our columns are cut, not allowed to fail the batch (the
    full value stays in `raw`)."""
    for name, value in values.items():
        if isinstance(value, str):
            max_length = _max_lengths(model).get(name)
            if max_length and len(value) > max_length:
                values[name] = value[:max_length]


_MAX_LENGTHS: dict[type[models.Model], dict[str, int]] = {}


def _max_lengths(model: type[models.Model]) -> dict[str, int]:
    if model not in _MAX_LENGTHS:
        _MAX_LENGTHS[model] = {
            f.attname: f.max_length
            for f in model._meta.concrete_fields
            if getattr(f, "max_length", None)
        }
    return _MAX_LENGTHS[model]


def model_for(record_type: type[ExternalRecord]) -> type[SyncedModel]:
    return sink_for(record_type).model


def unpack(mapped: ExternalRecord | tuple[ExternalRecord, ...]) -> tuple[ExternalRecord, ...]:
    return mapped if isinstance(mapped, tuple) else (mapped,)
