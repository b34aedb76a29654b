"""Writing normalized provider records into the local tables, in bulk.

One `Sink` per record type says which model it fills, which fields it copies and which
parents it links to. `write_records` takes one page of records and, per sink, in dependency
order (clients before jobs before quotes before line items):

1. keeps the newest copy of each record (a record edited mid-walk can come twice), and
   resolves parents by external id with one query per parent type; a record whose parent is
   not here yet is *held* (returned to the engine, which keeps it and retries it), not dropped;
2. on PostgreSQL, COPYs the mapped rows (no model instances) into a temporary staging table
   and merges them with one `INSERT … SELECT … ON CONFLICT (integration_id, external_id)
   DO UPDATE … WHERE` statement: a row is rewritten only when its content digest changed (or
   it was swept and came back, or was deleted), never by a copy older than what is stored (a
   late, out-of-order copy); `RETURNING` counts what was created, updated and left unchanged.
   When the table already holds the integration's rows (a second full sync), the stored
   digests are read first (one indexed query) and the rows the merge would leave alone are
   not COPYed at all; after a batch that was all new (a first sync) that check is skipped.
   A batch expected to be all new (that check found none of it stored, or was skipped) is
   COPYed straight into the table under a savepoint, no staging table and no merge; if the
   database refuses it (a row stored meanwhile, a bad value), it goes to the staging table
   and the merge as above. Payloads are JSON-encoded once a page (orjson) for both the
   digest and the COPY;
3. elsewhere (SQLite: local development), reads the existing rows' digests with one query per
   batch, skips the unchanged and the stale, and upserts the rest with
   `bulk_create(update_conflicts=True)`;
4. for a sink with many-to-many links (a visit's staff), sets each written record's links to
   the rows its external ids name (ids not synced are ignored, not held): one query reads the
   current through rows, one bulk delete and one bulk insert change them;
5. if the database refuses a batch (a value too long, a broken constraint), retries its rows
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
from datetime import UTC, datetime

import orjson
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone

from integrations.base import (
    ExternalAttachment,
    ExternalClient,
    ExternalContact,
    ExternalInvoice,
    ExternalInvoiceItem,
    ExternalJob,
    ExternalJobActivity,
    ExternalJobContact,
    ExternalJobMaterial,
    ExternalLineItem,
    ExternalLocation,
    ExternalNote,
    ExternalPayment,
    ExternalPricebookCategory,
    ExternalPricebookItem,
    ExternalQuote,
    ExternalRecord,
    ExternalReference,
    ExternalStaff,
)
from portal.models import (
    Attachment,
    Client,
    Contact,
    Invoice,
    InvoiceItem,
    Job,
    JobActivity,
    JobContact,
    JobMaterial,
    Location,
    Note,
    Payment,
    PricebookCategory,
    PricebookItem,
    ReferenceRecord,
    Staff,
    SyncedModel,
)
from quotes.models import Quote, QuoteLineItem

BATCH_SIZE = 1000  # rows a bulk_create statement (the SQLite path, and the fallback)
# Rows a COPY and merge (PostgreSQL): a provider page (ServiceM8 sends 5,000) in one go.
MERGE_BATCH_SIZE = 5000


JOB_CLIENT = "job->client"  # _parent_ids' extra map for Sink.client_from_job


@dataclass(frozen=True)
class Parent:
    fk: str  # the model's FK attname, e.g. "client_id"
    attr: str  # the record attribute holding the parent's external id
    model: type[SyncedModel]


@dataclass(frozen=True)
class ManyToMany:
    field: str  # the model's ManyToManyField, e.g. "staff"
    attr: str  # the record attribute holding the related rows' external ids (a tuple)
    model: type[SyncedModel]


@dataclass(frozen=True)
class Sink:
    record_type: type[ExternalRecord]
    model: type[SyncedModel]
    fields: tuple[str, ...]
    parents: tuple[Parent, ...] = ()
    # A record that names no client takes its job's client (a ServiceTitan estimate carries
    # only its jobId): without it the quote would belong to no client and no client user
    # would ever see it.
    client_from_job: bool = False
    # Links set after the rows are written; an external id not synced (yet) is ignored.
    m2m: tuple[ManyToMany, ...] = ()

    @property
    def own_parent(self) -> Parent | None:
        """The parent that is a row of this sink's own table (a site's head office, a
        category's parent), if any."""
        return next((p for p in self.parents if p.model is self.model), None)

    def values(self, record: ExternalRecord) -> dict:
        values = {name: getattr(record, name) for name in self.fields}
        if self.record_type is ExternalClient:
            values["is_active"] = not record.deleted
        return values


SINKS: tuple[Sink, ...] = (
    # A site names its head office (ServiceM8 `parent_company_uuid`): a page is written head
    # offices first (`_generations`), and a site whose head office is not synced yet is held
    # and retried like any record whose parent is missing, never dropped.
    Sink(
        ExternalClient,
        Client,
        ("name", "kind", "email", "phone", "address"),
        (Parent("parent_id", "parent_external_id", Client),),
    ),
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
        ExternalLocation,
        Location,
        (
            "name",
            "street",
            "street2",
            "city",
            "region",
            "postal_code",
            "country",
            "latitude",
            "longitude",
        ),
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
        client_from_job=True,
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
    # A visit; its staff are linked after the upsert (staff come before jobs in every provider).
    Sink(
        ExternalJobActivity,
        JobActivity,
        ("starts_at", "ends_at", "status", "notes"),
        (Parent("job_id", "job_external_id", Job),),
        m2m=(ManyToMany("staff", "staff_external_ids", Staff),),
    ),
    # File metadata only: the bytes stay with the provider (portal.attachments streams them).
    Sink(
        ExternalAttachment,
        Attachment,
        ("file_name", "content_type", "size_bytes", "provider_reference"),
        (Parent("job_id", "job_external_id", Job),),
    ),
    Sink(
        ExternalJobContact,
        JobContact,
        ("role", "first_name", "last_name", "email", "phone", "mobile"),
        (Parent("job_id", "job_external_id", Job),),
    ),
    Sink(
        ExternalNote,
        Note,
        ("body", "author", "noted_at"),
        (
            Parent("job_id", "job_external_id", Job),
            Parent("client_id", "client_external_id", Client),
        ),
    ),
    Sink(
        ExternalReference,
        ReferenceRecord,
        ("kind", "name", "code", "is_active", "parent_external_id"),
    ),
    # Subcategories name their parent: a page is written parents first (`_generations`).
    Sink(
        ExternalPricebookCategory,
        PricebookCategory,
        ("name", "kind", "is_active", "sort_order"),
        (Parent("parent_id", "parent_external_id", PricebookCategory),),
    ),
    Sink(
        ExternalPricebookItem,
        PricebookItem,
        (
            "kind",
            "code",
            "name",
            "description",
            "unit_price",
            "cost",
            "unit",
            "is_taxable",
            "is_active",
        ),
        m2m=(ManyToMany("categories", "category_external_ids", PricebookCategory),),
    ),
    Sink(
        ExternalInvoice,
        Invoice,
        (
            "number",
            "status",
            "issued_on",
            "due_on",
            "subtotal",
            "tax_total",
            "total",
            "balance",
        ),
        (
            Parent("client_id", "client_external_id", Client),
            Parent("job_id", "job_external_id", Job),
        ),
        client_from_job=True,
    ),
    Sink(
        ExternalInvoiceItem,
        InvoiceItem,
        ("name", "description", "quantity", "unit_price", "total", "sort_order"),
        (Parent("invoice_id", "invoice_external_id", Invoice),),
    ),
    Sink(
        ExternalPayment,
        Payment,
        ("amount", "paid_on", "method", "payment_reference", "status"),
        (
            Parent("client_id", "client_external_id", Client),
            Parent("invoice_id", "invoice_external_id", Invoice),
        ),
    ),
)
SINK_BY_TYPE: dict[type[ExternalRecord], Sink] = {sink.record_type: sink for sink in SINKS}


def sink_for(record_type: type[ExternalRecord]) -> Sink:
    sink = _SINK_OF_TYPE.get(record_type)
    if sink is not None:
        return sink
    for klass in record_type.__mro__:
        if klass in SINK_BY_TYPE:
            _SINK_OF_TYPE[record_type] = SINK_BY_TYPE[klass]
            return SINK_BY_TYPE[klass]
    raise LookupError(f"no sink for {record_type.__name__}")


_SINK_OF_TYPE: dict[type[ExternalRecord], Sink] = {}  # sink_for's answers (called per record)


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
    """The digest of a row's content: its mapped values and its payload (`values["raw"]`).
    The same for both write paths (`_digest_with_raw` is this with the payload encoded)."""
    rest = {k: v for k, v in values.items() if k != "raw"}
    return _digest_with_raw(rest, _encode(values.get("raw")))


_SORTED = orjson.OPT_SORT_KEYS


def _encode(value: object) -> bytes:
    """Compact JSON, keys sorted, as UTF-8 (orjson: C, ~10x the standard encoder). Values
    orjson refuses (an integer past 64 bits, a lone surrogate) take the standard encoder, which
    is as deterministic: the same input always gives the same text."""
    try:
        # (orjson writes datetimes itself and calls `default` for the rest, Decimals above
        # all: `str`, a C call, ~0.7 µs a row of three amounts faster than a Python function)
        return orjson.dumps(value, default=str, option=_SORTED)
    except (orjson.JSONEncodeError, TypeError):
        # (ASCII: a lone surrogate becomes a \u escape, which the database judges per row)
        text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
        return text.encode()


def _digest_with_raw(values: dict, raw_json: bytes) -> str:
    """`content_digest({**values, "raw": raw})`, given `raw` already encoded by `_encode`."""
    digest = _payload_hasher(raw_json)
    digest.update(_encode(values))
    return digest.hexdigest()


def _payload_hasher(raw_json: bytes):
    """The digest's state after the payload: a page hashes each payload once (most of the
    text) and copies the state for each table's values (a job and its quote share one). The
    payload's JSON never contains a raw newline, so the separator keeps the parts apart."""
    digest = hashlib.blake2b(raw_json, digest_size=16)
    digest.update(b"\n")
    return digest


@dataclass
class _Page:
    """What one page's sinks share."""

    # id(payload) -> (the digest's state after the payload, the payload's JSON text for the
    # COPY): a job and its quote (a material and its line item) share one payload, encoded
    # once. (Not orjson's bytes themselves: each holds a buffer many times its length.)
    raw_json: dict[int, tuple[object, str]] = field(default_factory=dict)
    # model -> {external id: primary key} of rows known to exist (found, never "missing": a
    # later sink of the page may write what an earlier lookup did not find).
    known: dict[type[SyncedModel], dict[str, int]] = field(default_factory=dict)


def write_records(integration_id: int, records: Iterable[ExternalRecord]) -> WriteResult:
    """Upsert one page of records. Call inside a transaction."""
    by_sink: dict[Sink, list[ExternalRecord]] = defaultdict(list)
    for record in records:
        by_sink[sink_for(type(record))].append(record)
    quotes = by_sink.get(SINK_BY_TYPE[ExternalQuote], [])
    result = WriteResult()
    page = _Page()
    for sink in SINKS:
        batch = by_sink.get(sink, [])
        if sink.record_type is ExternalLineItem:
            batch = _with_embedded_items(batch, quotes)
        if not batch:
            continue
        for generation in _generations(sink, batch):
            written = _write_sink(integration_id, sink, generation, page)
            result.merge(written)
            if sink.m2m:
                _write_links(
                    integration_id, sink, generation, written.settled.get(sink.model, set()), page
                )
        if sink.record_type is ExternalJobMaterial:
            by_sink[SINK_BY_TYPE[ExternalLineItem]].extend(
                _materials_as_line_items(integration_id, batch, page)
            )
    _remove_missing_embedded_items(integration_id, quotes)
    return result


def _generations(sink: Sink, batch: list[ExternalRecord]) -> list[list[ExternalRecord]]:
    """A page of a table whose rows point at each other (category → parent category): write
    the records whose parent is not in the page first, then their children, and so on, so a
    subcategory never waits for a parent that came in the same page. Other sinks: one batch."""
    own = sink.own_parent
    if own is None:
        return [batch]
    attr = own.attr
    pending = _newest(batch)  # (a record listed twice in the page: its newest copy wins)
    generations: list[list[ExternalRecord]] = []
    while pending:
        ready = [r for r in pending.values() if getattr(r, attr) not in pending]
        if not ready:  # a cycle: write the rest as they are (their parents wait or hold)
            ready = list(pending.values())
        generations.append(ready)
        for record in ready:
            pending.pop(record.external_id, None)
    return generations


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
    integration_id: int, materials: Sequence[ExternalRecord], page: _Page | None = None
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
    existing = _pks_by_external_id(Quote, integration_id, wanted, page)
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


def _uses_copy() -> bool:
    return connection.vendor == "postgresql"


def _write_sink(
    integration_id: int,
    sink: Sink,
    records: list[ExternalRecord],
    page: _Page | None = None,
) -> WriteResult:
    result = WriteResult()
    unique = list(_newest(records).values())
    if _uses_copy():
        page = page or _Page()
        for start in range(0, len(unique), MERGE_BATCH_SIZE):
            chunk = unique[start : start + MERGE_BATCH_SIZE]
            result.merge(_merge_batch(integration_id, sink, chunk, page))
        return result
    for start in range(0, len(unique), BATCH_SIZE):
        result.merge(_write_batch(integration_id, sink, unique[start : start + BATCH_SIZE]))
    return result


def _newest(records: Iterable[ExternalRecord]) -> dict[str, ExternalRecord]:
    """The newest copy of each record (a record edited mid-walk can come twice)."""
    newest: dict[str, ExternalRecord] = {}
    for record in records:
        seen = newest.get(record.external_id)
        if seen is None or _newer_or_equal(record, seen):
            newest[record.external_id] = record
    return newest


def _write_links(
    integration_id: int,
    sink: Sink,
    records: Sequence[ExternalRecord],
    settled: set[str],
    page: _Page | None = None,
) -> None:
    """Set the many-to-many links of the records now in place (`settled`: written or found
    unchanged, so a link whose target arrived later is made on the next copy) to exactly the
    rows their external ids name within the integration. Held and failed records are left
    alone. One query per lookup, one to read the through rows, then at most one bulk delete
    and one bulk insert per link."""
    newest = {ext: r for ext, r in _newest(records).items() if ext in settled}
    if not newest:
        return
    owners = _pks_by_external_id(sink.model, integration_id, set(newest), page)
    if not owners:
        return
    for link in sink.m2m:
        wanted = {ext for r in newest.values() for ext in getattr(r, link.attr)} - {None, ""}
        targets = _pks_by_external_id(link.model, integration_id, wanted, page)
        field = sink.model._meta.get_field(link.field)
        through = field.remote_field.through
        source, target = field.m2m_column_name(), field.m2m_reverse_name()
        desired = {
            (owners[ext], targets[other])
            for ext, record in newest.items()
            if ext in owners
            for other in getattr(record, link.attr)
            if other in targets
        }
        current = {
            (owner, other): pk
            for pk, owner, other in through.objects.filter(
                **{f"{source}__in": list(owners.values())}
            ).values_list("pk", source, target)
        }
        stale = [pk for pair, pk in current.items() if pair not in desired]
        if stale:
            through.objects.filter(pk__in=stale).delete()
        missing = [pair for pair in desired if pair not in current]
        if missing:
            through.objects.bulk_create(
                [through(**{source: owner, target: other}) for owner, other in sorted(missing)],
                ignore_conflicts=True,
            )


def _newer_or_equal(record: ExternalRecord, other: ExternalRecord) -> bool:
    if record.remote_updated_at is None or other.remote_updated_at is None:
        return True
    return record.remote_updated_at >= other.remote_updated_at


def _pks_by_external_id(
    model: type[SyncedModel], integration_id: int, wanted: set[str], page: _Page | None = None
) -> dict[str, int]:
    """external id -> primary key of the integration's rows among `wanted`, in one query (none
    when the page already found them all)."""
    if not wanted:
        return {}
    if page is not None:
        known = page.known.setdefault(model, {})
        found = {ext: known[ext] for ext in wanted if ext in known}
        if len(found) < len(wanted):
            found.update(_pks_by_external_id(model, integration_id, wanted - found.keys()))
            known.update(found)
        return found
    if _uses_copy():
        table = connection.ops.quote_name(model._meta.db_table)
        any_ids, ids = _any_of(wanted)
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT external_id, id FROM {table} "  # noqa: S608 - a model's table name
                f"WHERE integration_id = %s AND external_id = {any_ids}",
                [integration_id, ids],
            )
            return dict(cur.fetchall())
    return dict(
        model.objects.filter(integration_id=integration_id, external_id__in=wanted).values_list(
            "external_id", "id"
        )
    )


def _any_of(external_ids: Iterable[str]) -> tuple[str, object]:
    """`= ANY(…)`'s operand for a lookup by thousands of external ids, and its parameter: one
    JSON text (encoded in C) that the server unpacks, instead of psycopg's array dumper,
    which formats each element in Python (~20 ms for a page's 5,000 ids against ~1 ms). As
    a parameter, not a literal, the array also keeps the planner on the (integration,
    external id) index rather than filtering every row of the integration. Ids orjson cannot
    encode (a lone surrogate) go as the array they were."""
    ids = list(external_ids)
    try:
        return "ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))", orjson.dumps(ids).decode()
    except TypeError:  # (orjson.JSONEncodeError)
        return "ANY(%s)", ids


def _parent_ids(
    integration_id: int, sink: Sink, records: Sequence[ExternalRecord], page: _Page | None = None
) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for parent in sink.parents:
        wanted = {getattr(r, parent.attr) for r in records} - {None, ""}
        found[parent.fk] = _pks_by_external_id(parent.model, integration_id, wanted, page)
    if sink.client_from_job and found.get("job_id"):
        job_ids = [
            found["job_id"][r.job_external_id]
            for r in records
            if not r.client_external_id and r.job_external_id in found["job_id"]
        ]
        found[JOB_CLIENT] = (
            {
                str(pk): client_id
                for pk, client_id in Job.objects.filter(pk__in=job_ids).values_list(
                    "pk", "client_id"
                )
            }
            if job_ids
            else {}
        )
    return found


def _resolve_parents(
    sink: Sink, record: ExternalRecord, parents: dict[str, dict[str, int]], values: dict
) -> str | None:
    """Set the record's parent keys in `values`; returns what it waits for, if a parent is
    missing."""
    for parent in sink.parents:
        ext = getattr(record, parent.attr)
        if ext in (None, ""):
            values[parent.fk] = None
        elif ext in parents[parent.fk]:
            values[parent.fk] = parents[parent.fk][ext]
        else:
            return f"{parent.model._meta.verbose_name} {ext}"
    if sink.client_from_job and values.get("client_id") is None and values.get("job_id"):
        values["client_id"] = parents.get(JOB_CLIENT, {}).get(str(values["job_id"]))
    return None


# -- PostgreSQL: COPY into a staging table, merge with one INSERT … ON CONFLICT ----------------


@dataclass(frozen=True)
class _MergePlan:
    stage: str  # the session's temporary staging table for this model
    columns: tuple[str, ...]  # staged columns, in COPY order
    limits: tuple[tuple[int, int], ...]  # (column index, max length) of bounded strings
    datetimes: tuple[int, ...]  # column indexes of the datetimes (`_datetime_text`)
    create_sql: str
    copy_sql: str
    merge_sql: str
    # COPY straight into the table, for a batch expected to be all new (`_copy_new`).
    insert_copy_sql: str


# What a row the database cannot take raises: the database's refusal, or a string it cannot
# encode before sending (a lone UTF-16 surrogate, which a JSON "\\ud83d" escape decodes to).
_REFUSED = (DatabaseError, UnicodeEncodeError)

_PLANS: dict[Sink, _MergePlan] = {}


def _merge_plan(sink: Sink) -> _MergePlan:
    if sink in _PLANS:
        return _PLANS[sink]
    quote = connection.ops.quote_name
    model = sink.model
    columns = (
        "external_id",
        *sink.fields,
        *(("is_active",) if sink.record_type is ExternalClient else ()),
        *(p.fk for p in sink.parents),
        "raw",
        "remote_updated_at",
        "remote_deleted_at",
        "content_hash",
    )
    max_lengths = _max_lengths(model)
    limits = tuple(
        (i, max_lengths[c])
        for i, c in enumerate(columns)
        # (an external id too long for its column is refused, as before: never cut to another)
        if c in max_lengths and c not in ("external_id", "content_hash")
    )
    datetimes = tuple(
        i
        for i, c in enumerate(columns)
        if isinstance(model._meta.get_field(c), models.DateTimeField)
    )
    table, stage = quote(model._meta.db_table), quote(f"sync_stage_{model._meta.db_table}")
    listed = ", ".join(quote(c) for c in columns)
    kept = ("external_id", "remote_deleted_at")
    updates = [f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns if c not in kept]
    updates += [
        '"updated_at" = EXCLUDED."updated_at"',
        # A deletion keeps the time it was first seen; an undeleted record clears it.
        '"remote_deleted_at" = CASE WHEN EXCLUDED."remote_deleted_at" IS NULL THEN NULL '
        'ELSE COALESCE(t."remote_deleted_at", EXCLUDED."remote_deleted_at") END',
    ]
    plan = _MergePlan(
        stage=stage,
        columns=columns,
        limits=limits,
        datetimes=datetimes,
        # Same column types as the table (so the COPY converts as an INSERT would), none of
        # its constraints: the merge is where the database judges the rows.
        create_sql=(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} AS "  # noqa: S608 - names from models
            f"SELECT {listed} FROM {table} WITH NO DATA"
        ),
        copy_sql=f"COPY {stage} ({listed}) FROM STDIN",
        merge_sql=(
            f"WITH merged AS (INSERT INTO {table} AS t "  # noqa: S608 - names from models
            f'("integration_id", "created_at", "updated_at", {listed}) '
            f"SELECT %(integration)s, %(now)s, %(now)s, {listed} FROM {stage} "
            'ON CONFLICT ("integration_id", "external_id") DO UPDATE SET '
            + ", ".join(updates)
            # Rewrite only what changed, was swept and came back, or was deleted …
            + ' WHERE (t."content_hash" IS DISTINCT FROM EXCLUDED."content_hash" '
            'OR (t."remote_deleted_at" IS NULL) <> (EXCLUDED."remote_deleted_at" IS NULL)) '
            # … and never with a copy older than the stored one.
            'AND NOT COALESCE(EXCLUDED."remote_updated_at" < t."remote_updated_at", FALSE) '
            'RETURNING (xmax = 0) AS created, "remote_deleted_at" = %(now)s AS gone) '
            "SELECT count(*), count(*) FILTER (WHERE created), count(*) FILTER (WHERE gone) "
            "FROM merged"
        ),
        insert_copy_sql=(
            f'COPY {table} ({listed}, "integration_id", "created_at", "updated_at") FROM STDIN'
        ),
    )
    _PLANS[sink] = plan
    return plan


def _merge_batch(
    integration_id: int, sink: Sink, records: list[ExternalRecord], page: _Page
) -> WriteResult:
    result = WriteResult()
    plan = _merge_plan(sink)
    parents = _parent_ids(integration_id, sink, records, page)
    raw_json = page.raw_json
    is_client = sink.record_type is ExternalClient
    fields = sink.fields
    now = timezone.now()
    rows: list[list] = []
    staged: list[ExternalRecord] = []
    for record in records:
        values = {name: getattr(record, name) for name in fields}
        if is_client:
            values["is_active"] = not record.deleted
        if sink.parents:
            missing = _resolve_parents(sink, record, parents, values)
            if missing:
                result.held.append((record, missing))
                continue
        raw = record.raw
        encoded = raw_json.get(id(raw))
        if encoded is None:
            payload = _encode(raw)
            encoded = raw_json[id(raw)] = (_payload_hasher(payload), payload.decode())
        values["remote_updated_at"] = record.remote_updated_at
        values["deleted"] = record.deleted
        hasher = encoded[0].copy()
        hasher.update(_encode(values))
        digest = hasher.hexdigest()
        del values["deleted"]
        row = [record.external_id, *values.values()]
        # (values holds the staged columns from `fields` to `remote_updated_at`, in order)
        row.insert(len(row) - 1, encoded[1])
        row.append(now if record.deleted else None)
        row.append(digest)
        for index, max_length in plan.limits:
            value = row[index]
            if isinstance(value, str) and len(value) > max_length:
                row[index] = value[:max_length]  # the full value stays in `raw`
        for index in plan.datetimes:
            if row[index] is not None:
                row[index] = _datetime_text(row[index])
        rows.append(row)
        staged.append(record)
    if not rows:
        return result
    key = (integration_id, sink.model)
    all_new = not _EXPECT_STORED.get(key, True)
    skipped: list[str] = []
    if not all_new:
        rows, staged, skipped, kept_stored = _without_unchanged(integration_id, sink, rows, staged)
        result.unchanged += len(skipped)
        result.settled[sink.model].update(skipped)
        if not rows:
            _EXPECT_STORED[key] = True
            return result
        # What is left is all new (e.g. an incremental page: some unchanged, some new)?
        all_new = not kept_stored
    if all_new and _copy_new(plan, integration_id, rows, now):
        result.created = len(rows)
        result.deleted = sum(1 for record in staged if record.deleted)
        result.settled[sink.model].update(r.external_id for r in staged)
        # Skip the next batch's check only after a batch with nothing stored (a first sync).
        _EXPECT_STORED[key] = bool(skipped)
        return result
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(plan.create_sql)
            cur.execute(f"TRUNCATE {plan.stage}")
            # (psycopg's own COPY, past Django's cursor: wrapped for Django's error classes)
            with connection.wrap_database_errors, cur.cursor.copy(plan.copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(plan.merge_sql, {"integration": integration_id, "now": now})
            written, created, deleted = cur.fetchone()
    except _REFUSED:
        # A row the database refuses: find it (and only it) one row at a time.
        fallback = _write_batch(integration_id, sink, staged, one_by_one=True)
        fallback.held[:0] = result.held
        fallback.unchanged += result.unchanged  # (rows found unchanged before the COPY)
        fallback.settled[sink.model] |= result.settled.get(sink.model, set())
        return fallback
    result.created = created
    result.updated = written - created
    result.unchanged += len(rows) - written
    result.deleted = deleted
    result.settled[sink.model].update(r.external_id for r in staged)
    # Rows already stored (created < rows): check the next batch's digests before its COPY.
    _EXPECT_STORED[key] = created < len(rows)
    return result


def _datetime_text(value: datetime) -> str | datetime:
    """A datetime as the COPY's text, ISO 8601 with its offset ("2026-01-02T03:04:05.6+00:00",
    or without one for a naive value, which the server reads in the session's zone as it
    would psycopg's text): orjson formats it in C, ~2.5 times as fast as psycopg's dumper.
    orjson writes an offset in whole minutes, so an aware value in another zone is turned
    to UTC first (a zone's local mean time before 1900 has seconds: Paris was +00:09:21); one
    that cannot be (the first hours of year 1) goes to psycopg as it is."""
    zone = value.tzinfo
    if zone is not None and zone is not UTC:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            return value
    return orjson.dumps(value)[1:-1].decode()


def _copy_new(plan: _MergePlan, integration_id: int, rows: list[list], now: datetime) -> bool:
    """COPY rows expected to be all new straight into the table, stamped as the merge stamps
    them, under a savepoint; True if the database took them all. A row already stored (a
    webhook's re-fetch behind the hint's back) breaks the unique constraint; that, or any row
    the database refuses, rolls the savepoint back and the batch goes to the staging table and
    the merge (and its one-by-one fallback) instead."""
    try:
        with (
            transaction.atomic(),
            connection.cursor() as cur,
            connection.wrap_database_errors,
            cur.cursor.copy(plan.insert_copy_sql) as copy,
        ):
            # The same three values on every row, formatted once (a datetime costs psycopg
            # ~4 µs a value to format: two a row were a fifth of the COPY's client time).
            stamped = _datetime_text(now)
            stamps = (str(integration_id), stamped, stamped)
            for row in rows:
                copy.write_row((*row, *stamps))
    except _REFUSED:
        return False
    return True


# (integration id, model) -> whether the next batch's rows are likely stored already (a
# second full sync) and worth checking before the COPY; False after a batch that was all new
# (a first sync), where the check finds nothing and the batch is COPYed straight into the
# table (`_copy_new`). Only a hint: a wrong guess costs one query or one refused COPY (the
# merge then judges every row as always), never a wrong write.
_EXPECT_STORED: dict[tuple[int, type[SyncedModel]], bool] = {}


def forget_hints(integration_id: int) -> None:
    """Start a run without the last run's hints (sync.engine calls it): a worker process
    lives for many runs, and a hint of "all new" left by a first sync would make the next
    run's first batch of each table try a COPY that its stored rows make the database
    refuse. Without a hint a batch's stored digests are checked first, as always."""
    for key in [key for key in _EXPECT_STORED if key[0] == integration_id]:
        del _EXPECT_STORED[key]


def _without_unchanged(
    integration_id: int, sink: Sink, rows: list[list], staged: list[ExternalRecord]
) -> tuple[list[list], list[ExternalRecord], list[str], bool]:
    """Drop the rows the merge would leave as they are, by the stored digests (one indexed
    query): same content and deletion state, or older than the stored copy. The rest go to
    the COPY and merge; returns (rows, their records, external ids of the rows dropped,
    whether any row kept is stored: if none is, they can be COPYed straight in)."""
    table = connection.ops.quote_name(sink.model._meta.db_table)
    any_ids, ids = _any_of([row[0] for row in rows])
    with connection.cursor() as cur:
        cur.execute(
            'SELECT "external_id", "content_hash", "remote_deleted_at" IS NOT NULL, '  # noqa: S608 - a model's table name
            f'"remote_updated_at" FROM {table} '
            f'WHERE "integration_id" = %s AND "external_id" = {any_ids}',
            [integration_id, ids],
        )
        stored = {ext: (digest, gone, at) for ext, digest, gone, at in cur.fetchall()}
    if not stored:
        return rows, staged, [], False
    kept_rows: list[list] = []
    kept: list[ExternalRecord] = []
    skipped: list[str] = []
    kept_stored = False
    for row, record in zip(rows, staged, strict=True):
        current = stored.get(row[0])
        if current is not None:
            digest, gone, at = current
            newer = record.remote_updated_at
            stale = at is not None and newer is not None and newer < at
            if stale or (digest == row[-1] and gone == record.deleted):
                skipped.append(row[0])
                continue
            kept_stored = True
        kept_rows.append(row)
        kept.append(record)
    return kept_rows, kept, skipped, kept_stored


# -- elsewhere (and the one-by-one fallback): bulk_create(update_conflicts=True) ----------------


def _write_batch(
    integration_id: int,
    sink: Sink,
    records: list[ExternalRecord],
    *,
    one_by_one: bool = False,
) -> WriteResult:
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
        missing = _resolve_parents(sink, record, parents, values)
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
        _upsert(model, rows, result, one_by_one=one_by_one)
    return result


def _upsert(
    model: type[SyncedModel],
    rows: list[tuple[ExternalRecord, SyncedModel, bool]],
    result: WriteResult,
    *,
    one_by_one: bool = False,
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

    ok: list[tuple[ExternalRecord, SyncedModel, bool]] = []
    try:
        if one_by_one:
            raise DatabaseError("the batch was refused already")
        with transaction.atomic():
            insert([obj for _, obj, _ in rows])
        ok = rows
    except _REFUSED:
        for row in rows:
            try:
                with transaction.atomic():
                    insert([row[1]])
                ok.append(row)
            except _REFUSED as exc:
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
