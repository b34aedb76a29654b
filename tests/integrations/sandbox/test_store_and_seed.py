"""The SQLite store, the seeder, and the sandbox's import wall."""

from __future__ import annotations

import ast
import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integrations.sandbox import accounts
from integrations.sandbox.seed import seed
from integrations.sandbox.store import Collection, Condition, Store, to_us

SANDBOX_DIR = Path(__file__).resolve().parents[3] / "integrations" / "sandbox"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SM8 = Collection("servicem8", accounts.SERVICEM8_ACCOUNT.uuid, "company")
ST = Collection("servicetitan", accounts.SERVICETITAN_TENANT.tenant_id, "customers")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store.sqlite3")
    yield store
    store.close()


def test_keyset_paging_is_stable_with_equal_modified_times(store):
    col = Collection("p", "a", "thing")
    for i in range(25):
        # Five records share each modified time: the id breaks the tie.
        store.upsert(col, f"id-{i:02d}", {"n": i}, modified_us=1_000 + i // 5)
    seen, after = [], None
    while True:
        page = store.list_keyset(col, after=after, limit=4)
        seen.extend(r.id for r in page)
        if len(page) < 4:
            break
        after = (page[-1].modified_us, page[-1].id)
    assert sorted(seen) == [f"id-{i:02d}" for i in range(25)]
    assert len(seen) == 25
    assert list(store.iter_keyset(col, batch=3)) == store.list_keyset(col, limit=100)


def test_conditions(store):
    col = Collection("p", "a", "thing")
    for i in range(10):
        store.upsert(col, i, {"n": i, "s": f"v{i}"}, modified_us=i * 10, active=i % 3 != 0)
    ids = lambda conds: [r.id for r in store.list_offset(col, conditions=conds, limit=100)]  # noqa: E731
    assert ids([Condition("active", "eq", 0)]) == [0, 3, 6, 9]
    assert ids([Condition("modified", "ge", 50), Condition("modified", "lt", 70)]) == [5, 6]
    assert ids([Condition("modified", "outside", (20, 80))]) == [0, 1, 8, 9]
    assert ids([Condition("data.n", "gt", 7, cast="real")]) == [8, 9]
    assert ids([Condition("data.s", "eq", "v4", cast="text")]) == [4]
    assert ids([Condition("data.s", "outside", ("v2", "v8"), cast="text")]) == [0, 1, 8, 9]
    assert ids([Condition("id", "in", [2, 4, 99])]) == [2, 4]
    assert ids([Condition("id", "in", [])]) == []
    assert store.count(col, conditions=[Condition("active", "eq", 1)]) == 6
    assert [r.id for r in store.list_offset(col, order=[("id", True)], offset=2, limit=3)] == [
        7,
        6,
        5,
    ]
    with pytest.raises(ValueError, match="unknown condition field"):
        store.list_offset(col, conditions=[Condition("data; DROP", "eq", 1)], limit=1)


def test_listing_uses_the_modified_index(store):
    seed(store.path, records=50, now=NOW)
    with store._connection() as conn:
        plan = " ".join(
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id, modified, active, data FROM records "
                "WHERE cid = ? AND (modified, id) > (?, ?) ORDER BY modified, id LIMIT 10",
                (store.collection_id(SM8), 0, ""),
            )
        )
    assert "records_modified" in plan and "TEMP B-TREE" not in plan


def test_single_use_token_has_exactly_one_winner(store):
    store.token_create("r1", kind="refresh", provider="p", account="a", client_id="c")
    winners = []
    barrier = threading.Barrier(8)

    def consume() -> None:
        barrier.wait()
        if store.token_consume("r1", kind="refresh", provider="p") is not None:
            winners.append(1)

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert winners == [1]
    assert store.token_get("r1", kind="refresh", provider="p").used is True
    assert store.token_get("r1", kind="access", provider="p") is None


def test_counter_is_monotonic_above_floor(store):
    assert store.counter_next("c", floor=100) == 101
    assert store.counter_next("c", floor=5) == 102
    assert store.counter_next("c", floor=500) == 501


def _digest(path: Path) -> str:
    store = Store(path)
    try:
        digest = hashlib.sha256()
        for col in (SM8, ST):
            for record in store.iter_keyset(col):
                digest.update(repr(tuple(record)).encode())
        return digest.hexdigest()
    finally:
        store.close()


def test_seed_is_deterministic(tmp_path):
    seed(tmp_path / "a.sqlite3", records=300, seed=42, now=NOW)
    seed(tmp_path / "b.sqlite3", records=300, seed=42, now=NOW)
    seed(tmp_path / "c.sqlite3", records=300, seed=43, now=NOW)
    assert _digest(tmp_path / "a.sqlite3") == _digest(tmp_path / "b.sqlite3")
    assert _digest(tmp_path / "a.sqlite3") != _digest(tmp_path / "c.sqlite3")
    # Re-seeding the same seed without reset rewrites the same ids (no growth).
    seed(tmp_path / "a.sqlite3", records=300, seed=42, now=NOW)
    store = Store(tmp_path / "a.sqlite3")
    try:
        assert store.count(SM8) == 300 and store.count(ST) == 300
    finally:
        store.close()


def test_seeded_data_is_realistic(tmp_path):
    result = seed(tmp_path / "s.sqlite3", records=2000, now=NOW)
    assert result["servicem8"]["company"] == 2000
    assert result["servicetitan"]["customers"] == 2000
    store = Store(tmp_path / "s.sqlite3")
    try:
        companies = list(store.iter_keyset(SM8))
        customers = store.list_offset(ST, limit=5000)
    finally:
        store.close()
    year_ago = to_us(NOW - timedelta(days=366))
    for rows in (companies, customers):
        inactive = sum(1 for r in rows if not r.active)
        assert 10 <= inactive <= 70  # ~2 %
        assert all(year_ago <= r.modified_us <= to_us(NOW) for r in rows)
        recent = sum(1 for r in rows if r.modified_us >= to_us(NOW - timedelta(days=90)))
        assert recent > len(rows) / 4  # skewed towards now
    uuids = {r.id for r in companies}
    sites = [r.data for r in companies if r.data["parent_company_uuid"]]
    assert 100 <= len(sites) <= 300 and all(s["parent_company_uuid"] in uuids for s in sites)
    individuals = sum(r.data["is_individual"] for r in companies)
    assert 1000 <= individuals <= 1400
    ids = [r.id for r in customers]
    assert ids == sorted(set(ids)) and all(isinstance(i, int) for i in ids)
    for r in customers:
        data = r.data
        assert data["type"] in ("Residential", "Commercial")
        assert set(data["address"]) >= {"street", "unit", "city", "state", "zip", "country"}
        created = datetime.fromisoformat(data["createdOn"])
        assert to_us(created) <= r.modified_us
    merged = [r for r in customers if r.data["mergedToId"] is not None]
    assert merged and all(not r.active for r in merged)


def test_reset_wipes_records(tmp_path):
    db = tmp_path / "r.sqlite3"
    seed(db, records=40, now=NOW)
    seed(db, records=5, now=NOW, reset=True)
    store = Store(db)
    try:
        assert store.count(SM8) == 5
        # The account (vendor) record is recreated after a reset.
        vendor = Collection("servicem8", accounts.SERVICEM8_ACCOUNT.uuid, "vendor")
        assert store.get(vendor, accounts.SERVICEM8_ACCOUNT.uuid) is not None
    finally:
        store.close()


# Top-level packages the sandbox must not import; any "integrations.*" outside the sandbox
# (integrations.providers, integrations.models, …) is forbidden too.
FORBIDDEN_ROOTS = {"django", "rest_framework", "portal", "quotes", "sync", "config"}


def test_sandbox_imports_nothing_from_the_project_or_django():
    """STYLE.md §1: the sandbox is written from the docs, independently of the clients."""
    offenders = []
    modules = sorted(SANDBOX_DIR.glob("*.py"))
    for path in modules:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                outside_sandbox = root == "integrations" and not name.startswith(
                    "integrations.sandbox"
                )
                if root in FORBIDDEN_ROOTS or outside_sandbox:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
    assert {p.name for p in modules} >= {"app.py", "store.py", "servicem8.py", "servicetitan.py"}
