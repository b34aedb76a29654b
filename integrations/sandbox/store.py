"""SQLite storage for the provider sandbox: records, paging cursors, OAuth tokens and counters.

One SQLite file (path chosen by the caller) holds everything that must survive a restart of the
sandbox server; run-time knobs (config, faults, stats, rate-limit windows) live in memory in
``app.py``. Only the stdlib ``sqlite3`` module is used.

Records
    A generic record store keyed by (provider, account, object, id). Each (provider, account,
    object) triple is a *collection* with a small integer id (table ``collections``), so the
    1,000,000-row tables don't repeat three strings per row and per index entry. A record row
    holds:

    - ``id``: declared without a type, so it has no column affinity and keeps the Python type it
      was written with: ``int`` for ServiceTitan's int64 ids (sorting numerically), ``str`` for
      ServiceM8 uuids. Callers must look records up with the same type they stored.
    - ``modified``: last-modified instant, **UTC** microseconds since the epoch. Providers render
      it in their own format (ServiceM8 ``edit_date`` in the account's zone, ServiceTitan
      ``modifiedOn`` in UTC) at response time, so bumping it never rewrites the JSON.
    - ``active``: 1/0; providers soft-delete (NOTES.md §1 "Deletion detection", §2).
    - ``data``: the rest of the payload as compact JSON object text, *without* the id, active
      and modified fields (the provider modules splice those in when rendering).

    Indexes: the primary key (collection, id) and (collection, modified, id), i.e. the
    (provider, account, object, modified, id) index that incremental filters and keyset paging
    use. Listings are always paged in SQL (``LIMIT``, keyset or ``OFFSET``); nothing loads a
    whole collection.

Cursors
    Opaque ServiceM8-style paging tokens, stored server-side so that an unknown token can be
    rejected. A cursor remembers the keyset position (modified, id) of the last record served.

Tokens
    OAuth authorization codes, access tokens and refresh tokens, with expiry, scope and a
    ``used`` flag. Consuming a code or refresh token is one atomic ``UPDATE … WHERE used = 0``,
    so two concurrent refreshes with the same token cannot both win (rotation must be strict).

Counters
    Named monotonically increasing integers (e.g. the next ServiceTitan id for a record created
    through the control API).

Thread safety: connections come from a small pool and each is used by one thread at a time;
the database runs in WAL mode so readers never block the writer.
"""

from __future__ import annotations

import json
import operator
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

RecordId = str | int
# A record as a plain tuple (id, modified_us, active, data_json), for bulk loading.
Row = tuple[RecordId, int, bool, str]

# Rows per SELECT when a listing is streamed (the no-cursor ServiceM8 listing, seeding).
STREAM_BATCH = 5000
# Cursors older than this are pruned (ServiceM8 does not document a cursor lifetime).
CURSOR_MAX_AGE_SECONDS = 24 * 3600
_MAX_IDLE_CONNECTIONS = 16

# The (provider, account, object, modified, id) index, via the collection id. Named so that a
# bulk load can drop it and rebuild it in one sorted pass.
_RECORDS_MODIFIED_INDEX = (
    "CREATE INDEX IF NOT EXISTS records_modified ON records (cid, modified, id)"
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS collections (
    cid INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    object TEXT NOT NULL,
    UNIQUE (provider, account, object)
);
CREATE TABLE IF NOT EXISTS records (
    cid INTEGER NOT NULL REFERENCES collections (cid),
    id NOT NULL,
    modified INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    data TEXT NOT NULL,
    PRIMARY KEY (cid, id)
);
{_RECORDS_MODIFIED_INDEX};
CREATE TABLE IF NOT EXISTS cursors (
    token TEXT PRIMARY KEY,
    cid INTEGER NOT NULL,
    after_modified INTEGER,
    after_id,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cursors_created ON cursors (created);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    redirect_uri TEXT,
    expires_at REAL,
    used INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# Comparison operators a Condition may use, mapped to SQL. Never interpolate anything else:
# the SQL built with f-strings below (``noqa: S608``) only ever splices these fixed fragments
# and column names from fixed lists; every value is a bound parameter.
_SQL_OPS = {"eq": "=", "ne": "!=", "gt": ">", "lt": "<", "ge": ">=", "le": "<="}
# "data.<key>" or a nested "data.<key>.<key>…" (e.g. ServiceTitan's ``status.name``).
_DATA_FIELD = re.compile(r"^data\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)$")


def now_us() -> int:
    """Current UTC time in microseconds since the epoch (the store's ``modified`` unit)."""
    return time.time_ns() // 1000


def to_us(value: datetime) -> int:
    """Convert an aware datetime to UTC microseconds since the epoch."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the sandbox stores UTC instants only")
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    """Convert UTC microseconds since the epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(value // 1_000_000, tz=UTC).replace(microsecond=value % 1_000_000)


# One shared encoder: json.dumps() with non-default options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


# "YYYY-MM-DDT" per UTC day number, for iso_utc (bounded: cleared when full).
_ISO_DAYS: dict[int, str] = {}


def iso_utc(value_us: int) -> str:
    """UTC instant as fixed-width ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (text order = time order).

    The date part is cached per day and the time computed with ``divmod``: about 6x cheaper
    than ``datetime.strftime``, which matters when rendering or seeding millions of records.
    """
    secs, micros = divmod(value_us, 1_000_000)
    day, rem = divmod(secs, 86400)
    date = _ISO_DAYS.get(day)
    if date is None:
        if len(_ISO_DAYS) >= 100_000:
            _ISO_DAYS.clear()
        date = _ISO_DAYS[day] = "%04d-%02d-%02dT" % time.gmtime(day * 86400)[:3]  # noqa: UP031
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    return "%s%02d:%02d:%02d.%06dZ" % (date, hours, minutes, seconds, micros)  # noqa: UP031


def dumps(data: dict[str, Any]) -> str:
    """Compact JSON text, the form record data is stored in."""
    return _ENCODER.encode(data)


@dataclass(frozen=True)
class Collection:
    """The (provider, account, object) triple that scopes record ids."""

    provider: str
    account: str
    object: str


class Record(NamedTuple):
    """One stored record. ``data_json`` excludes the id, active and modified fields.

    A NamedTuple built straight from the SQLite row (listing 5,000 of them per page is hot).
    ``active`` is SQLite's 1/0 for rows read back: test it for truth, don't compare to True.
    """

    id: RecordId
    modified_us: int
    active: int
    data_json: str

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.data_json)

    @property
    def modified(self) -> datetime:
        return from_us(self.modified_us)


@dataclass(frozen=True)
class Condition:
    """One filter on a listing.

    ``field`` is ``"id"``, ``"modified"`` (UTC µs), ``"active"`` (0/1) or ``"data.<name>"``
    (a key of the JSON data; ``"data.a.b"`` reaches into nested objects). ``op`` is
    eq/ne/gt/lt/ge/le, ``"in"`` with a list value, or ``"outside"`` with a (lo, hi) value
    meaning "not lo <= x < hi". ``cast`` applies to data fields only: ``"real"`` compares
    numerically, ``"text"`` as text, None compares the raw JSON value.
    """

    field: str
    op: str
    value: Any
    cast: str | None = None


@dataclass(frozen=True)
class CursorState:
    """A stored ServiceM8 paging cursor: the collection and the last position served."""

    token: str
    cid: int
    after: tuple[int, RecordId] | None


@dataclass(frozen=True)
class Token:
    """An OAuth code, access token or refresh token."""

    token: str
    kind: str
    provider: str
    account: str
    client_id: str
    scope: str
    redirect_uri: str | None
    expires_at: float | None
    used: bool

    def expired(self, at: float | None = None) -> bool:
        return self.expires_at is not None and (at or time.time()) >= self.expires_at

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


def _compile_conditions(conditions: Sequence[Condition]) -> tuple[str, list[Any]]:
    """SQL ``AND …`` fragment and parameters for ``conditions`` (column names are fixed)."""
    sql: list[str] = []
    params: list[Any] = []
    for cond in conditions:
        match = _DATA_FIELD.match(cond.field)
        if cond.field in ("id", "modified", "active"):
            expr = cond.field
        elif match:
            # The JSON path is a bound parameter, so a field name can never inject SQL.
            expr = "json_extract(data, ?)"
            params.append(f"$.{match.group(1)}")
            if cond.cast == "real":
                expr = f"CAST({expr} AS REAL)"
            elif cond.cast == "text":
                expr = f"CAST({expr} AS TEXT)"
        else:
            raise ValueError(f"unknown condition field {cond.field!r}")
        if cond.op == "in":
            values = list(cond.value)
            if not values:
                sql.append(" AND 0")
                # Drop the json path parameter added above: the expression is not used.
                if match:
                    params.pop()
                continue
            sql.append(f" AND {expr} IN ({','.join('?' * len(values))})")
            params.extend(values)
        elif cond.op == "outside":
            # value = (lo, hi): expr < lo OR expr >= hi (a half-open interval's complement).
            lo, hi = cond.value
            sql.append(f" AND NOT ({expr} >= ? AND {expr} < ?)")
            # A data field's json path parameter is needed again for the second comparison.
            params.extend([lo, *params[-1:], hi] if match else [lo, hi])
        elif cond.op in _SQL_OPS:
            sql.append(f" AND {expr} {_SQL_OPS[cond.op]} ?")
            params.append(cond.value)
        else:
            raise ValueError(f"unknown condition operator {cond.op!r}")
    return "".join(sql), params


def _order_sql(order: Sequence[tuple[str, bool]]) -> tuple[str, list[Any]]:
    """``ORDER BY`` clause for [(field, descending)], always ending with id as a tie-break."""
    parts: list[str] = []
    params: list[Any] = []
    for field, desc in order:
        match = _DATA_FIELD.match(field)
        if field in ("id", "modified", "active"):
            expr = field
        elif match:
            expr = "json_extract(data, ?)"
            params.append(f"$.{match.group(1)}")
        else:
            raise ValueError(f"unknown order field {field!r}")
        parts.append(f"{expr} {'DESC' if desc else 'ASC'}")
    if not any(field == "id" for field, _ in order):
        parts.append("id ASC")
    return " ORDER BY " + ", ".join(parts), params


_record = Record._make


def _token(row: sqlite3.Row | tuple) -> Token:
    return Token(
        token=row[0],
        kind=row[1],
        provider=row[2],
        account=row[3],
        client_id=row[4],
        scope=row[5],
        redirect_uri=row[6],
        expires_at=row[7],
        used=bool(row[8]),
    )


# Column list of the tokens table, in Token field order (column names, not a secret).
_TOKEN_COLUMNS = ", ".join(
    ("token", "kind", "provider", "account", "client_id", "scope", "redirect_uri")
    + ("expires_at", "used")
)


_by_id = operator.itemgetter(1)
_UPSERT = "INSERT OR REPLACE INTO records (cid, id, modified, active, data) VALUES (?,?,?,?,?)"


class BulkLoader:
    """Batch inserter handed out by ``Store.bulk_load`` (one connection, one thread).

    Batches are written inside one transaction that is committed every ``COMMIT_ROWS`` rows
    (and when the load ends). In WAL mode every commit appends each page it dirtied to the
    log, and random uuids dirty a primary-key leaf page per row: committing per 10,000-row
    batch wrote ~4 KB of log per row, twice the cost of the inserts themselves. Rows still in
    an open transaction are lost if seeding fails (seeding again is the remedy).
    """

    COMMIT_ROWS = 300_000

    def __init__(self, store: Store, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn
        self._pending = 0
        self._open = False

    def insert(self, collection: Collection, rows: Sequence[Row]) -> int:
        """Upsert one batch of (id, modified_us, active, data_json) rows.

        The batch is inserted in id order: random uuids hit the primary-key index all over,
        and walking it once left to right is cheaper than random order.
        """
        cid = self._store.collection_id(collection, create=False)
        if cid is None:
            # A new collection is registered on another connection: no write may be pending.
            self.commit()
            cid = self._store.collection_id(collection)
        params = [(cid, rid, modified, int(active), data) for rid, modified, active, data in rows]
        params.sort(key=_by_id)
        conn = self._conn
        if not self._open:
            conn.execute("BEGIN IMMEDIATE")
            self._open = True
        try:
            conn.executemany(_UPSERT, params)
        except BaseException:
            self.rollback()
            raise
        self._pending += len(params)
        if self._pending >= self.COMMIT_ROWS:
            self.commit()
        return len(params)

    def commit(self) -> None:
        if self._open:
            self._conn.execute("COMMIT")
            self._open = False
            self._pending = 0

    def rollback(self) -> None:
        if self._open:
            self._conn.execute("ROLLBACK")
            self._open = False
            self._pending = 0


class Store:
    """Thread-safe SQLite store; see the module docstring for the tables."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        self._cids: dict[Collection, int] = {}
        self._cursor_creates = 0
        with self._connection() as conn:
            # WAL lets the threaded server read while a control request or the seeder writes.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    # --- connections ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        # 16 MiB page cache per pooled connection (at most 16 idle ones).
        conn.execute("PRAGMA cache_size=-16384")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a pooled connection (autocommit mode) for the duration of the block."""
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            with self._lock:
                keep = not self._closed and len(self._idle) < _MAX_IDLE_CONNECTIONS
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error)."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close idle connections; connections in use are closed when they are returned."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # --- collections ---------------------------------------------------------------------------

    def collection_id(self, collection: Collection, *, create: bool = True) -> int | None:
        """The integer id of a collection, created on first use unless ``create`` is False."""
        cid = self._cids.get(collection)
        if cid is not None:
            return cid
        key = (collection.provider, collection.account, collection.object)
        with self._connection() as conn:
            row = conn.execute(
                "SELECT cid FROM collections WHERE provider = ? AND account = ? AND object = ?",
                key,
            ).fetchone()
            if row is None:
                if not create:
                    return None
                conn.execute(
                    "INSERT OR IGNORE INTO collections (provider, account, object) VALUES (?,?,?)",
                    key,
                )
                row = conn.execute(
                    "SELECT cid FROM collections WHERE provider = ? AND account = ? AND object = ?",
                    key,
                ).fetchone()
        with self._lock:
            self._cids[collection] = row[0]
        return row[0]

    # --- records -------------------------------------------------------------------------------

    def get(self, collection: Collection, record_id: RecordId) -> Record | None:
        """One record, or None. Soft-deleted records are returned (with ``active`` False)."""
        cid = self.collection_id(collection, create=False)
        if cid is None:
            return None
        with self._connection() as conn:
            row = conn.execute(
                "SELECT id, modified, active, data FROM records WHERE cid = ? AND id = ?",
                (cid, record_id),
            ).fetchone()
        return _record(row) if row else None

    def upsert(
        self,
        collection: Collection,
        record_id: RecordId,
        data: dict[str, Any],
        *,
        active: bool = True,
        modified_us: int | None = None,
    ) -> Record:
        """Insert or replace one record; ``modified`` defaults to now."""
        cid = self.collection_id(collection)
        record = Record(
            record_id, now_us() if modified_us is None else modified_us, int(active), dumps(data)
        )
        with self._write() as conn:
            conn.execute(
                _UPSERT, (cid, record.id, record.modified_us, int(record.active), record.data_json)
            )
        return record

    def insert_many(self, collection: Collection, rows: Iterable[Record]) -> int:
        """Upsert many records in one transaction. Returns the count."""
        cid = self.collection_id(collection)
        params = [(cid, r.id, r.modified_us, int(r.active), r.data_json) for r in rows]
        with self._write() as conn:
            conn.executemany(_UPSERT, params)
        return len(params)

    @contextmanager
    def bulk_load(self) -> Iterator[BulkLoader]:
        """A loader for seeding millions of rows quickly, on one dedicated connection.

        The (collection, modified, id) index is dropped for the duration and rebuilt after: one
        sorted build is several times faster than a million random index inserts. Queries made
        meanwhile by a running server still work, just without that index (and see the rows
        as of the loader's last commit). The loader's connection has a large page cache (up to
        512 MiB, which holds the dirty pages between commits) and ``synchronous=OFF`` (a crash
        mid-seed only means seeding again).
        """
        conn = self._open()
        loader = BulkLoader(self, conn)
        try:
            conn.execute("PRAGMA cache_size=-524288")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("DROP INDEX IF EXISTS records_modified")
            try:
                yield loader
            except BaseException:
                loader.rollback()
                raise
            loader.commit()
        finally:
            try:
                conn.execute(_RECORDS_MODIFIED_INDEX)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()

    def set_active(
        self,
        collection: Collection,
        record_id: RecordId,
        active: bool,
        *,
        modified_us: int | None = None,
    ) -> Record | None:
        """Set the active flag and bump ``modified`` (a soft delete when False)."""
        cid = self.collection_id(collection, create=False)
        if cid is None:
            return None
        with self._write() as conn:
            row = conn.execute(
                "UPDATE records SET active = ?, modified = ? WHERE cid = ? AND id = ? "
                "RETURNING id, modified, active, data",
                (int(active), now_us() if modified_us is None else modified_us, cid, record_id),
            ).fetchone()
        return _record(row) if row else None

    def touch(
        self, collection: Collection, record_ids: Sequence[RecordId], *, modified_us: int
    ) -> int:
        """Set ``modified`` on the given records (fault injection: edits during a sync)."""
        cid = self.collection_id(collection, create=False)
        if cid is None or not record_ids:
            return 0
        with self._write() as conn:
            cur = conn.executemany(
                "UPDATE records SET modified = ? WHERE cid = ? AND id = ?",
                [(modified_us, cid, rid) for rid in record_ids],
            )
            return cur.rowcount

    def delete_all(self, provider: str | None = None) -> None:
        """Hard-delete every record and cursor (of one provider, or of all)."""
        with self._write() as conn:
            if provider is None:
                conn.execute("DELETE FROM records")
                conn.execute("DELETE FROM cursors")
            else:
                sub = "SELECT cid FROM collections WHERE provider = ?"
                conn.execute(f"DELETE FROM records WHERE cid IN ({sub})", (provider,))  # noqa: S608
                conn.execute(f"DELETE FROM cursors WHERE cid IN ({sub})", (provider,))  # noqa: S608

    def list_keyset(
        self,
        collection: Collection,
        *,
        conditions: Sequence[Condition] = (),
        after: tuple[int, RecordId] | None = None,
        limit: int,
    ) -> list[Record]:
        """Up to ``limit`` records ordered by (modified, id), strictly after ``after``.

        Keyset paging on the (collection, modified, id) index: every page costs the same no
        matter how deep into the collection it is.
        """
        cid = self.collection_id(collection, create=False)
        if cid is None:
            return []
        where, params = _compile_conditions(conditions)
        sql = "SELECT id, modified, active, data FROM records WHERE cid = ?"
        args: list[Any] = [cid]
        if after is not None:
            sql += " AND (modified, id) > (?, ?)"
            args.extend(after)
        sql += where + " ORDER BY modified, id LIMIT ?"
        args.extend(params)
        args.append(limit)
        with self._connection() as conn:
            return [_record(row) for row in conn.execute(sql, args)]

    def iter_keyset(
        self,
        collection: Collection,
        *,
        conditions: Sequence[Condition] = (),
        batch: int = STREAM_BATCH,
    ) -> Iterator[Record]:
        """Every matching record in (modified, id) order, fetched ``batch`` rows at a time.

        The connection is returned to the pool between batches, so a slow consumer (a client
        reading a streamed response) never pins a connection or loads the collection.
        """
        after: tuple[int, RecordId] | None = None
        while True:
            page = self.list_keyset(collection, conditions=conditions, after=after, limit=batch)
            yield from page
            if len(page) < batch:
                return
            after = (page[-1].modified_us, page[-1].id)

    def last_served(
        self, collection: Collection, *, upto: tuple[int, RecordId], limit: int
    ) -> list[Record]:
        """The ``limit`` records at or before keyset position ``upto`` (newest first)."""
        cid = self.collection_id(collection, create=False)
        if cid is None:
            return []
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id, modified, active, data FROM records WHERE cid = ? "
                "AND (modified, id) <= (?, ?) ORDER BY modified DESC, id DESC LIMIT ?",
                (cid, upto[0], upto[1], limit),
            )
            return [_record(row) for row in rows]

    def list_offset(
        self,
        collection: Collection,
        *,
        conditions: Sequence[Condition] = (),
        order: Sequence[tuple[str, bool]] = (("id", False),),
        offset: int = 0,
        limit: int,
    ) -> list[Record]:
        """Up to ``limit`` records after skipping ``offset``, in ``order`` (page/pageSize APIs)."""
        cid = self.collection_id(collection, create=False)
        if cid is None:
            return []
        where, params = _compile_conditions(conditions)
        order_sql, order_params = _order_sql(order)
        sql = (
            "SELECT id, modified, active, data FROM records WHERE cid = ?"  # noqa: S608
            + where
            + order_sql
            + " LIMIT ? OFFSET ?"
        )
        with self._connection() as conn:
            rows = conn.execute(sql, [cid, *params, *order_params, limit, offset])
            return [_record(row) for row in rows]

    def count(self, collection: Collection, *, conditions: Sequence[Condition] = ()) -> int:
        """Number of matching records."""
        cid = self.collection_id(collection, create=False)
        if cid is None:
            return 0
        where, params = _compile_conditions(conditions)
        with self._connection() as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM records WHERE cid = ?" + where,  # noqa: S608
                [cid, *params],
            ).fetchone()[0]

    def max_int_id(self, collection: Collection) -> int:
        """Largest integer id in the collection (0 when empty)."""
        cid = self.collection_id(collection, create=False)
        if cid is None:
            return 0
        with self._connection() as conn:
            row = conn.execute(
                "SELECT MAX(id) FROM records WHERE cid = ? AND typeof(id) = 'integer'", (cid,)
            ).fetchone()
        return row[0] or 0

    def max_data_int(self, collection: Collection, key: str) -> int:
        """Largest value of the JSON data field ``key`` read as an integer (0 when none).

        A full scan of the collection (no index on data fields): meant for rare writes such as
        numbering a new ServiceM8 job, not for listings.
        """
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"invalid data key {key!r}")
        cid = self.collection_id(collection, create=False)
        if cid is None:
            return 0
        with self._connection() as conn:
            row = conn.execute(
                "SELECT MAX(CAST(json_extract(data, ?) AS INTEGER)) FROM records WHERE cid = ?",
                (f"$.{key}", cid),
            ).fetchone()
        return row[0] or 0

    # --- cursors -------------------------------------------------------------------------------

    def cursor_create(
        self, collection: Collection, token: str, after: tuple[int, RecordId] | None
    ) -> str:
        """Store a paging cursor positioned after ``after`` (None = before the first record)."""
        cid = self.collection_id(collection)
        created = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO cursors (token, cid, after_modified, after_id, created) "
                "VALUES (?,?,?,?,?)",
                (token, cid, after[0] if after else None, after[1] if after else None, created),
            )
            self._cursor_creates += 1
            if self._cursor_creates % 1000 == 0:
                conn.execute(
                    "DELETE FROM cursors WHERE created < ?", (created - CURSOR_MAX_AGE_SECONDS,)
                )
        return token

    def cursor_get(self, token: str) -> CursorState | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT token, cid, after_modified, after_id FROM cursors WHERE token = ?",
                (token,),
            ).fetchone()
        if row is None:
            return None
        after = None if row[2] is None else (row[2], row[3])
        return CursorState(token=row[0], cid=row[1], after=after)

    # --- tokens --------------------------------------------------------------------------------

    def token_create(
        self,
        token: str,
        *,
        kind: str,
        provider: str,
        account: str,
        client_id: str,
        scope: str = "",
        redirect_uri: str | None = None,
        expires_at: float | None = None,
    ) -> Token:
        """Store a new code/access/refresh token."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tokens (token, kind, provider, account, client_id, scope, "
                "redirect_uri, expires_at, used, created) VALUES (?,?,?,?,?,?,?,?,0,?)",
                (
                    token,
                    kind,
                    provider,
                    account,
                    client_id,
                    scope,
                    redirect_uri,
                    expires_at,
                    time.time(),
                ),
            )
        return Token(
            token, kind, provider, account, client_id, scope, redirect_uri, expires_at, False
        )

    def token_get(self, token: str, *, kind: str, provider: str) -> Token | None:
        """The token if it exists with this kind and provider (expired or used ones included)."""
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens "  # noqa: S608
                "WHERE token = ? AND kind = ? AND provider = ?",
                (token, kind, provider),
            ).fetchone()
        return _token(row) if row else None

    def token_consume(self, token: str, *, kind: str, provider: str) -> Token | None:
        """Atomically mark a single-use token used; None if unknown or already used.

        The ``used = 0`` guard in the UPDATE makes this race-free across threads and processes:
        exactly one caller gets the row back.
        """
        with self._write() as conn:
            row = conn.execute(
                f"UPDATE tokens SET used = 1 WHERE token = ? AND kind = ? AND provider = ? "  # noqa: S608
                f"AND used = 0 RETURNING {_TOKEN_COLUMNS}",
                (token, kind, provider),
            ).fetchone()
        return _token(row) if row else None

    # --- counters ------------------------------------------------------------------------------

    def counter_next(self, name: str, *, floor: int = 0) -> int:
        """Next value of a named counter, always greater than ``floor`` and than any earlier."""
        with self._write() as conn:
            return conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, ? + 1) "
                "ON CONFLICT (name) DO UPDATE SET value = MAX(value + 1, excluded.value) "
                "RETURNING value",
                (name, floor),
            ).fetchone()[0]
