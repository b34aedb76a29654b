"""The bulk writers: upsert on (integration, external_id), skip the unchanged, hold orphans,
isolate rows the database refuses, keep embedded line items in step."""

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
from sync.writers import write_records

pytestmark = pytest.mark.django_db

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


def test_one_insert_statement_per_batch(integration):
    records = [client(f"c{i}") for i in range(250)]
    with CaptureQueriesContext(connection) as queries:
        write_records(integration.pk, records)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    assert "ON CONFLICT" in inserts[0]["sql"]


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
    assert set(Job.objects.values_list("external_id", flat=True)) == {"j1", "j2"}


def test_long_strings_are_cut_to_the_column(integration):
    write_records(integration.pk, [client("c1", name="x" * 400)])
    row = Client.objects.get(external_id="c1")
    assert len(row.name) == 255 and row.raw["name"] == "x" * 400


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
