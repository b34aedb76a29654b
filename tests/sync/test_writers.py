"""The bulk writers: upsert on (integration, external_id), skip the unchanged, hold orphans,
isolate rows the database refuses, keep embedded line items in step.

Every test runs on both write paths: COPY into a staging table and merge (PostgreSQL), and
bulk_create (SQLite, and the one-row-at-a-time fallback)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.base import (
    ExternalClient,
    ExternalJob,
    ExternalJobMaterial,
    ExternalLineItem,
    ExternalQuote,
)
from portal.models import Client, Job, JobMaterial
from quotes.models import Quote, QuoteLineItem
from sync import writers
from sync.writers import write_records

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["copy", "bulk_create"])
def write_path(request, monkeypatch):
    if request.param == "copy":
        if connection.vendor != "postgresql":
            pytest.skip("COPY and merge is the PostgreSQL path")
    else:
        monkeypatch.setattr(writers, "_uses_copy", lambda: False)
    return request.param


T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def client(ext, name="Acme", at=T0, deleted=False):
    return ExternalClient(
        provider="servicem8",
        external_id=ext,
        raw={"uuid": ext, "name": name},
        remote_updated_at=at,
        deleted=deleted,
        name=name,
    )


def job(ext, client_ext, status="scheduled", at=T0):
    return ExternalJob(
        provider="servicem8",
        external_id=ext,
        raw={"uuid": ext, "status": status},
        remote_updated_at=at,
        client_external_id=client_ext,
        status=status,
        revenue=Decimal("12.50"),
    )


def test_creates_then_skips_unchanged_then_updates(integration):
    result = write_records(integration.pk, [client("c1"), client("c2")])
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    stamp = Client.objects.get(external_id="c1").updated_at

    result = write_records(integration.pk, [client("c1"), client("c2")])
    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
    assert Client.objects.get(external_id="c1").updated_at == stamp  # not rewritten

    later = T0 + timedelta(minutes=1)
    result = write_records(integration.pk, [client("c1", name="Acme Pty", at=later)])
    assert (result.created, result.updated) == (0, 1)
    assert Client.objects.get(external_id="c1").name == "Acme Pty"
    assert Client.objects.filter(integration=integration).count() == 2


def test_one_insert_statement_per_batch(integration, write_path):
    records = [client(f"c{i}") for i in range(2500)]
    with CaptureQueriesContext(connection) as queries:
        write_records(integration.pk, records)
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    if write_path == "copy":  # a first page is COPYed straight into the table: no INSERT
        assert inserts == []
    else:
        assert len(inserts) == 3  # 1,000 rows a statement
    assert all("ON CONFLICT" in sql for sql in inserts)
    assert Client.objects.filter(integration=integration).count() == 2500

    later = T0 + timedelta(minutes=1)
    with CaptureQueriesContext(connection) as queries:
        result = write_records(integration.pk, [client(f"c{i}", "New", later) for i in range(2500)])
    assert result.updated == 2500
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    if write_path == "copy":  # stored rows are COPYed to the staging table and merged once
        assert len(inserts) == 1 and inserts[0].startswith("WITH merged AS (INSERT")
    else:
        assert len(inserts) == 3
    assert all("ON CONFLICT" in sql for sql in inserts)


def _merged(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]


def test_a_batch_of_new_rows_is_copied_straight_into_the_table(integration, write_path):
    """A first sync: no row of the batch is stored, so (on PostgreSQL) it is COPYed into the
    table itself: no staging table, no merge, and the rows, stamps and counts are what the
    merge would have made."""
    page = [client(f"c{i}") for i in range(200)] + [client("gone", deleted=True)]
    with CaptureQueriesContext(connection) as queries:
        result = write_records(integration.pk, page)
    assert (result.created, result.updated, result.unchanged, result.deleted) == (201, 0, 0, 1)
    assert result.settled[Client] == {r.external_id for r in page}
    if write_path == "copy":
        sql = " ".join(q["sql"] for q in queries.captured_queries)
        assert _merged(queries) == [] and "sync_stage_" not in sql
    row = Client.objects.get(integration=integration, external_id="c7")
    assert len(row.content_hash) == 32  # (the merge's digest: the rewrite below is unchanged)
    assert (row.name, row.raw, row.remote_updated_at, row.is_active) == (
        "Acme",
        {"uuid": "c7", "name": "Acme"},
        T0,
        True,
    )
    assert row.remote_deleted_at is None
    gone = Client.objects.get(integration=integration, external_id="gone")
    assert gone.remote_deleted_at is not None and gone.is_active is False
    if write_path == "copy":  # one stamp, as the merge sets them
        assert row.created_at == row.updated_at
        assert gone.remote_deleted_at == gone.updated_at == gone.created_at

    # The next new batch goes the same way (the check before the COPY is skipped) …
    with CaptureQueriesContext(connection) as queries:
        result = write_records(integration.pk, [client(f"n{i}") for i in range(50)])
    assert (result.created, result.updated, result.unchanged) == (50, 0, 0)
    if write_path == "copy":
        assert _merged(queries) == []
        assert not any("content_hash" in q["sql"] for q in queries.captured_queries)

    # … and writing the same rows again changes nothing, deleted ones included.
    stamp = Client.objects.get(integration=integration, external_id="c7").updated_at
    result = write_records(integration.pk, page)
    assert (result.created, result.updated, result.unchanged, result.deleted) == (0, 0, 201, 0)
    assert result.settled[Client] == {r.external_id for r in page}
    assert Client.objects.get(integration=integration, external_id="c7").updated_at == stamp
    assert Client.objects.get(external_id="gone").remote_deleted_at == gone.remote_deleted_at
    assert Client.objects.filter(integration=integration).count() == 251


def test_a_row_stored_behind_the_writers_back_falls_back_to_the_merge(integration, write_path):
    """After a batch that was all new the writers expect new rows and COPY straight into the
    table; a row stored meanwhile (a webhook's re-fetch) makes the database refuse the COPY,
    and the whole batch goes through the merge instead: nothing lost, nothing doubled."""
    write_records(integration.pk, [client("c0")])
    if write_path == "copy":
        assert writers._EXPECT_STORED[(integration.pk, Client)] is False
    Client.objects.create(integration=integration, external_id="c2", name="Webhook", raw={})
    page = [client("c1"), client("c2", name="Listed"), client("c3", deleted=True)]
    with CaptureQueriesContext(connection) as queries:
        result = write_records(integration.pk, page)
    assert (result.created, result.updated, result.unchanged, result.deleted) == (2, 1, 0, 1)
    assert result.settled[Client] == {"c1", "c2", "c3"}
    assert result.failed == []
    if write_path == "copy":
        assert len(_merged(queries)) == 1  # the fallback: staged and merged
        assert writers._EXPECT_STORED[(integration.pk, Client)] is True
    rows = {c.external_id: c for c in Client.objects.filter(integration=integration)}
    assert sorted(rows) == ["c0", "c1", "c2", "c3"]
    assert rows["c2"].name == "Listed" and len(rows["c2"].content_hash) == 32
    assert rows["c3"].remote_deleted_at is not None
    assert rows["c1"].remote_deleted_at is None

    result = write_records(integration.pk, page)
    assert (result.created, result.updated, result.unchanged, result.deleted) == (0, 0, 3, 0)


def test_unchanged_rows_are_checked_before_the_copy_and_never_merged(integration, write_path):
    """A second full sync: the stored digests are read first (one query) and only the
    changed rows are COPYed and merged; a page with nothing changed merges nothing. (After
    a batch that was all new, the next one goes straight to the merge, which finds the rows
    stored: the batches after it are checked first.)"""
    write_records(integration.pk, [client(f"c{i}") for i in range(300)])
    result = write_records(integration.pk, [client(f"c{i}") for i in range(300)])
    assert (result.created, result.updated, result.unchanged) == (0, 0, 300)
    with CaptureQueriesContext(connection) as queries:
        result = write_records(integration.pk, [client(f"c{i}") for i in range(300)])
    assert (result.created, result.updated, result.unchanged) == (0, 0, 300)
    assert result.settled[Client] == {f"c{i}" for i in range(300)}
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert inserts == []

    later = T0 + timedelta(minutes=1)
    page = [client(f"c{i}", name="Renamed", at=later) for i in range(10)]
    page += [client(f"c{i}") for i in range(10, 300)]
    with CaptureQueriesContext(connection) as queries:
        result = write_records(integration.pk, page)
    assert (result.created, result.updated, result.unchanged) == (0, 10, 290)
    if write_path == "copy":
        merges = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
        assert len(merges) == 1
    assert Client.objects.filter(integration=integration, name="Renamed").count() == 10


@pytest.mark.parametrize("expect_stored", [True, False])
def test_the_check_before_the_copy_judges_rows_as_the_merge_does(
    integration, monkeypatch, expect_stored
):
    """Whether the writers check the stored digests first (they expect stored rows) or go
    straight to the merge (a first sync), every kind of row comes out the same."""

    class Hint(dict):
        def get(self, key, default=None):
            return expect_stored

    later = T0 + timedelta(minutes=5)
    write_records(
        integration.pk,
        [client("same"), client("renamed"), client("deleted"), client("newer", at=later)],
    )
    write_records(integration.pk, [client("swept")])
    Client.objects.filter(external_id="swept").update(remote_deleted_at=T0)  # a sweep
    monkeypatch.setattr(writers, "_EXPECT_STORED", Hint())
    result = write_records(
        integration.pk,
        [
            client("same"),
            client("renamed", name="Renamed", at=T0 + timedelta(seconds=1)),
            client("deleted", at=T0 + timedelta(seconds=1), deleted=True),
            client("newer", name="Older copy", at=T0),  # older than stored: left alone
            client("swept"),  # listed again: comes back
            client("new"),
        ],
    )
    assert (result.created, result.updated, result.unchanged, result.deleted) == (1, 3, 2, 1)
    assert result.settled[Client] == {"same", "renamed", "deleted", "newer", "swept", "new"}
    rows = {c.external_id: c for c in Client.objects.filter(integration=integration)}
    assert rows["renamed"].name == "Renamed" and rows["newer"].name == "Acme"
    assert rows["deleted"].remote_deleted_at is not None
    assert rows["swept"].remote_deleted_at is None


def test_counts_created_updated_and_unchanged_in_one_page(integration):
    write_records(integration.pk, [client(f"c{i}") for i in range(300)])
    later = T0 + timedelta(minutes=1)
    page = [client(f"c{i}", name="Renamed", at=later) for i in range(100)]  # changed
    page += [client(f"c{i}") for i in range(100, 300)]  # as stored
    page += [client(f"n{i}") for i in range(50)]  # new
    result = write_records(integration.pk, page)
    assert (result.created, result.updated, result.unchanged) == (50, 100, 200)
    assert result.settled[Client] == {r.external_id for r in page}
    assert Client.objects.filter(integration=integration, name="Renamed").count() == 100


def test_an_unchanged_record_is_not_rewritten_even_when_newer(integration):
    """The content digest decides: a new `edit_date` alone changes `remote_updated_at`, which
    is content, so the row is rewritten; the very same record is not."""
    write_records(integration.pk, [client("c1")])
    row = Client.objects.get(external_id="c1")
    result = write_records(integration.pk, [client("c1")])
    assert result.unchanged == 1
    again = Client.objects.get(external_id="c1")
    assert (again.updated_at, again.content_hash) == (row.updated_at, row.content_hash)
    assert len(row.content_hash) == 32


def test_both_paths_agree_on_the_content_digest(integration, write_path, monkeypatch):
    """Rows written by one path are unchanged for the other: switching database (or falling
    back) never rewrites a table."""
    write_records(integration.pk, [client("c1"), job("j1", "c1")])
    other = write_path != "copy"
    if other and connection.vendor != "postgresql":
        pytest.skip("only one path here")
    monkeypatch.setattr(writers, "_uses_copy", lambda: other)
    result = write_records(integration.pk, [client("c1"), job("j1", "c1")])
    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)


def test_the_digest_of_a_preencoded_payload_is_content_digest():
    values = {
        "name": 'Acmé ,"remote_updated_at": {"raw":',
        "client_id": 7,
        "revenue": Decimal("1.50"),
        "remote_updated_at": T0,
        "scheduled_start": None,
        "deleted": False,
        "is_active": True,
    }
    raw = {"uuid": "x", "nested": {"b": 1, "a": [1, "é"]}, "amount": "2.00"}
    expected = writers.content_digest({**values, "raw": raw})
    assert writers._digest_with_raw(values, writers._encode(raw)) == expected
    assert writers._digest_with_raw({}, writers._encode({})) == writers.content_digest({"raw": {}})


def test_the_digest_text_of_amounts_and_stamps_is_pinned():
    """Stored digests stay valid only while the text they hash stays the same: amounts as
    their exact decimal text, stamps as orjson's ISO 8601, keys sorted."""
    values = {"total": Decimal("25.00"), "quantity": Decimal("2.0000"), "at": T0, "n": 3}
    assert writers._encode(values) == (
        b'{"at":"%s","n":3,"quantity":"2.0000","total":"25.00"}' % T0.isoformat().encode()
    )
    assert writers._encode({"big": 2**70}) == b'{"big":%d}' % 2**70  # (the standard encoder)


def test_an_older_copy_never_replaces_a_newer_one(integration):
    later = T0 + timedelta(minutes=5)
    write_records(integration.pk, [client("c1", name="New", at=later)])
    result = write_records(integration.pk, [client("c1", name="Old", at=T0)])
    assert result.unchanged == 1
    assert Client.objects.get(external_id="c1").name == "New"


def test_the_newest_duplicate_in_a_page_wins(integration):
    later = T0 + timedelta(seconds=1)
    write_records(integration.pk, [client("c1", "Later", at=later), client("c1", "Earlier")])
    assert Client.objects.get(external_id="c1").name == "Later"


def test_deleted_records_are_soft_deleted_once(integration):
    write_records(integration.pk, [client("c1")])
    result = write_records(
        integration.pk, [client("c1", at=T0 + timedelta(seconds=5), deleted=True)]
    )
    assert result.deleted == 1
    row = Client.objects.get(external_id="c1")
    assert row.remote_deleted_at is not None and row.is_active is False
    first = row.remote_deleted_at
    result = write_records(
        integration.pk, [client("c1", at=T0 + timedelta(seconds=9), deleted=True)]
    )
    assert result.deleted == 0
    assert Client.objects.get(external_id="c1").remote_deleted_at == first


def test_a_row_swept_away_comes_back_when_listed_again(integration):
    write_records(integration.pk, [client("c1")])
    Client.objects.filter(external_id="c1").update(remote_deleted_at=T0)  # what a sweep does
    result = write_records(integration.pk, [client("c1")])  # same content
    assert (result.updated, result.unchanged) == (1, 0)
    assert Client.objects.get(external_id="c1").remote_deleted_at is None


def test_a_record_first_seen_deleted_counts_as_deleted(integration):
    result = write_records(integration.pk, [client("c1", deleted=True), client("c2")])
    assert (result.created, result.deleted) == (2, 1)
    assert Client.objects.get(external_id="c1").is_active is False


def test_parents_are_resolved_by_external_id(integration):
    write_records(integration.pk, [client("c1"), job("j1", "c1")])
    q = ExternalQuote(
        provider="servicem8",
        external_id="j1",
        raw={"uuid": "j1"},
        client_external_id="c1",
        job_external_id="j1",
        status="sent",
    )
    orphan = ExternalQuote(
        provider="servicem8",
        external_id="j2",
        raw={"uuid": "j2"},
        client_external_id="c1",
        job_external_id="j-missing",
    )
    result = write_records(integration.pk, [q, orphan])
    assert [(r.external_id, why) for r, why in result.held] == [("j2", "job j-missing")]
    row = Quote.objects.get(external_id="j1")
    assert (row.client.external_id, row.job.external_id) == ("c1", "j1")
    assert row.client.integration_id == row.job.integration_id == integration.pk
    assert result.settled[Quote] == {"j1"}


def test_parents_of_another_integration_do_not_count(integration):
    from tests import factories

    other = factories.IntegrationFactory(company=integration.company)
    write_records(other.pk, [client("c1")])
    result = write_records(integration.pk, [job("j1", "c1")])
    assert [r.external_id for r, _ in result.held] == ["j1"]


def test_a_child_before_its_parent_is_held_not_dropped(integration):
    result = write_records(integration.pk, [job("j1", "c-missing")])
    assert [(r.external_id, why) for r, why in result.held] == [("j1", "client c-missing")]
    assert not Job.objects.exists()
    # Parent and child in one page: the parent is written first.
    result = write_records(integration.pk, [job("j1", "c1"), client("c1")])
    assert result.held == []
    assert Job.objects.get(external_id="j1").client.external_id == "c1"


def test_a_row_the_database_refuses_fails_alone(integration):
    bad = ExternalJob(
        provider="servicem8",
        external_id="j-bad",
        raw={},
        status="not-a-status",  # violates the status check constraint
    )
    result = write_records(integration.pk, [job("j1", None), bad, job("j2", None)])
    assert [r.external_id for r, _ in result.failed] == ["j-bad"]
    assert "constraint" in result.failed[0][1]
    assert set(Job.objects.values_list("external_id", flat=True)) == {"j1", "j2"}
    assert (result.created, result.settled[Job]) == (2, {"j1", "j2"})


def test_a_value_the_column_cannot_hold_fails_alone(integration):
    """Refused while staging (the COPY), not only by the merge's constraints."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores any number in a decimal column")
    huge = ExternalJob(
        provider="servicem8",
        external_id="j-huge",
        raw={},
        revenue=Decimal("1e15"),  # numeric(12, 2)
    )
    write_records(integration.pk, [job("j1", None)])
    later = T0 + timedelta(minutes=1)
    result = write_records(integration.pk, [job("j1", None, "completed", later), huge])
    assert [r.external_id for r, _ in result.failed] == ["j-huge"]
    assert (result.created, result.updated) == (0, 1)
    assert Job.objects.get(external_id="j1").status == "completed"


def test_a_refused_row_becomes_a_sync_error_and_the_page_goes_on(integration):
    from django.utils import timezone

    from sync.engine import _apply_page, _Run
    from sync.models import SyncError, SyncRun

    class Provider:
        def record_id(self, entity, raw):
            return raw["uuid"]

        def map_record(self, entity, raw):
            return ExternalJob(
                provider="servicem8", external_id=raw["uuid"], raw=raw, status=raw["status"]
            )

    now = timezone.now()
    run = SyncRun.objects.create(
        integration=integration, entity="jobs", mode="full", started_at=now, heartbeat_at=now
    )
    state = _Run(integration=integration, provider=Provider(), entity="jobs", run=run, seen=None)
    raws = [{"uuid": f"j{i}", "status": "scheduled"} for i in range(5)]
    raws[2]["status"] = "not-a-status"
    _apply_page(state, raws, retrying_held=False)
    run.refresh_from_db()
    assert (run.created_count, run.failed_count) == (4, 1)
    error = SyncError.objects.get(run=run)
    assert error.external_id == "j2" and "refused" in error.message
    assert Job.objects.filter(integration=integration).count() == 4


def test_long_strings_are_cut_to_the_column(integration):
    long = ExternalClient(
        provider="servicem8",
        external_id="c1",
        raw={"uuid": "c1", "name": "x" * 400},
        name="x" * 400,
        phone="9" * 80,
        address="a" * 5000,  # a text column: kept whole
    )
    result = write_records(integration.pk, [long])
    assert result.failed == []
    row = Client.objects.get(external_id="c1")
    assert len(row.name) == 255 and row.raw["name"] == "x" * 400
    assert (len(row.phone), len(row.address)) == (50, 5000)
    assert write_records(integration.pk, [long]).unchanged == 1


def quote(ext, items, at=T0):
    return ExternalQuote(
        provider="servicetitan",
        external_id=ext,
        raw={"id": ext, "items": [i.external_id for i in items]},
        remote_updated_at=at,
        status="sent",
        total=Decimal("100.00"),
        line_items=tuple(items),
    )


def item(ext, quote_ext, name="Valve"):
    return ExternalLineItem(
        provider="servicetitan",
        external_id=ext,
        raw={"id": ext},
        quote_external_id=quote_ext,
        name=name,
        total=Decimal("50.00"),
    )


def test_embedded_line_items_follow_their_quote(integration):
    write_records(integration.pk, [quote("q1", [item("i1", "q1"), item("i2", "q1")])])
    assert QuoteLineItem.objects.filter(remote_deleted_at__isnull=True).count() == 2
    later = T0 + timedelta(minutes=1)
    write_records(integration.pk, [quote("q1", [item("i2", "q1", "Pump")], at=later)])
    live = QuoteLineItem.objects.filter(remote_deleted_at__isnull=True)
    assert [(i.external_id, i.name) for i in live] == [("i2", "Pump")]


def test_servicem8_materials_become_line_items_of_quote_jobs(integration):
    def material(ext, job_ext):
        return ExternalJobMaterial(
            provider="servicem8",
            external_id=ext,
            raw={"uuid": ext},
            job_external_id=job_ext,
            quote_external_id=job_ext,
            name="Tap",
            total=Decimal("9.99"),
        )

    quote_job = ExternalQuote(
        provider="servicem8",
        external_id="j-quote",
        raw={},
        job_external_id="j-quote",
        status="sent",
    )
    write_records(integration.pk, [job("j-quote", None), quote_job, job("j-plain", None)])
    result = write_records(integration.pk, [material("m1", "j-quote"), material("m2", "j-plain")])
    assert result.held == []
    assert set(JobMaterial.objects.values_list("external_id", flat=True)) == {"m1", "m2"}
    assert list(QuoteLineItem.objects.values_list("external_id", "quote__external_id")) == [
        ("m1", "j-quote")
    ]
    assert Quote.objects.get().job.external_id == "j-quote"


def test_a_new_run_forgets_the_last_runs_hint(integration, write_path):
    """A worker lives for many runs: after a first sync left "all new" behind, the next run
    checks the stored digests before it COPYs, instead of a COPY the database refuses."""
    write_records(integration.pk, [client("c0"), client("c1")])
    writers.forget_hints(integration.pk)
    assert (integration.pk, Client) not in writers._EXPECT_STORED
    with CaptureQueriesContext(connection) as queries:
        result = write_records(integration.pk, [client("c0"), client("c1", name="New")])
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    if write_path == "copy":
        checks = [
            q for q in queries.captured_queries if q["sql"].startswith('SELECT "external_id"')
        ]
        assert len(checks) == 1  # the stored digests, read before any COPY
        assert len(_merged(queries)) == 1


def test_a_lone_surrogate_fails_its_record_and_the_page_goes_on(integration, write_path):
    """JSON may carry "\\ud83d" alone (half an emoji pair), which Python decodes to a string
    no database can store: that record fails with its reason, the rest are written."""
    bad = client("bad", name="Caf\ud83d")
    result = write_records(integration.pk, [client("ok1"), bad, client("ok2")])
    assert result.created == 2
    assert [record.external_id for record, _reason in result.failed] == ["bad"]
    assert "surrogate" in result.failed[0][1] or "encode" in result.failed[0][1]
    assert set(Client.objects.values_list("external_id", flat=True)) == {"ok1", "ok2"}


def test_new_rows_beside_unchanged_ones_are_copied_straight_in(integration, write_path):
    """An incremental page: some rows stored and unchanged, the rest new. The unchanged are
    left out by their digests and the new ones go straight in, no merge; the next batch is
    still checked first (something was stored)."""
    write_records(integration.pk, [client("c0"), client("c1")])
    writers.forget_hints(integration.pk)
    with CaptureQueriesContext(connection) as queries:
        result = write_records(integration.pk, [client("c0"), client("c1"), client("n0")])
    assert (result.created, result.updated, result.unchanged) == (1, 0, 2)
    assert result.settled[Client] == {"c0", "c1", "n0"}
    if write_path == "copy":
        assert _merged(queries) == []
        assert writers._EXPECT_STORED[(integration.pk, Client)] is True
    assert Client.objects.filter(integration=integration).count() == 3


def test_datetimes_keep_their_instant_and_microseconds(integration):
    """The COPY formats datetimes itself (`_datetime_text`): every zone, with and without
    microseconds, lands as the same instant; so do the created/updated stamps."""
    from zoneinfo import ZoneInfo

    sydney = ZoneInfo("Australia/Sydney")
    start = datetime(2026, 7, 1, 8, 30, 15, 123456, tzinfo=sydney)
    end = datetime(2026, 7, 1, 10, 0, tzinfo=sydney)
    at = datetime(2026, 5, 1, 9, 0, 0, 7, tzinfo=UTC)
    write_records(integration.pk, [client("c1")])
    record = ExternalJob(
        provider="servicem8",
        external_id="j1",
        raw={"uuid": "j1"},
        remote_updated_at=at,
        client_external_id="c1",
        status="scheduled",
        scheduled_start=start,
        scheduled_end=end,
        completed_at=datetime(2026, 7, 1, 0, 0, tzinfo=UTC),
        revenue=Decimal("1"),
    )
    before = datetime.now(UTC)
    assert write_records(integration.pk, [record]).created == 1
    stored = Job.objects.get(external_id="j1")
    assert stored.scheduled_start == start
    assert stored.scheduled_start.microsecond == 123456
    assert stored.scheduled_end == end
    assert stored.completed_at == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    assert stored.remote_updated_at == at
    after = datetime.now(UTC)
    assert before <= stored.created_at <= after and before <= stored.updated_at <= after
    # … and the digest saw the datetimes as they were: the same copy is unchanged.
    assert write_records(integration.pk, [record]).unchanged == 1


def test_datetimes_with_offsets_in_seconds_or_at_the_edge_of_time(integration):
    """orjson writes whole-minute offsets: a zone's local mean time (Paris before 1911:
    +00:09:21) is turned to UTC before it is formatted; a value that UTC cannot hold goes to
    psycopg as it is."""
    from datetime import timezone as fixed
    from zoneinfo import ZoneInfo

    cases = {
        "paris-1850": datetime(1850, 1, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris")),
        "odd-offset": datetime(2026, 1, 1, 12, 0, tzinfo=fixed(timedelta(hours=1, seconds=61))),
        "year-one": datetime(1, 1, 1, 12, 0, tzinfo=UTC),
    }
    for ext, at in cases.items():
        write_records(
            integration.pk,
            [
                ExternalClient(
                    provider="servicem8",
                    external_id=ext,
                    raw={"uuid": ext},
                    remote_updated_at=at,
                    name=ext,
                )
            ],
        )
        assert Client.objects.get(external_id=ext).remote_updated_at == at, ext
    assert writers._datetime_text(datetime(1, 1, 1, 0, 30, tzinfo=fixed(timedelta(hours=1)))) == (
        datetime(1, 1, 1, 0, 30, tzinfo=fixed(timedelta(hours=1)))
    )


def test_lookups_by_external_id_take_any_characters(integration):
    """Parents are looked up by a JSON list of external ids (`_any_of`): ids with quotes,
    commas, braces, backslashes and non-ASCII text still find their rows."""
    odd = ['a"b', "c,d", "{e}", "f\\g", "h i", "ünï ✓", "NULL", "'q'"]
    write_records(integration.pk, [client(ext) for ext in odd])
    jobs = [job(f"job-{i}", ext) for i, ext in enumerate(odd)]
    result = write_records(integration.pk, jobs)
    assert result.created == len(odd) and not result.held
    pairs = set(Job.objects.values_list("external_id", "client__external_id"))
    assert pairs == {(f"job-{i}", ext) for i, ext in enumerate(odd)}


def test_any_of_falls_back_to_an_array_for_ids_json_cannot_carry():
    assert writers._any_of(["a", "b"])[1] == '["a","b"]'
    assert writers._any_of(["a", "\ud83d"]) == ("ANY(%s)", ["a", "\ud83d"])
