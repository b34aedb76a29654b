"""Synced tables keep one index on integration_id (the unique (integration_id, external_id)
one's prefix) and none on remote_deleted_at alone (portal 0008, quotes 0007), and keep their
foreign key to the integration (or, a row that needs its parent, one over both); their
payloads compress with lz4 (portal 0009, quotes 0008)."""

import re

import pytest
from django.apps import apps
from django.db import connection

from portal.models import SyncedChild, SyncedModel

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's catalogue"),
]


def synced_tables() -> list[str]:
    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, SyncedModel) and not model._meta.abstract
    )


def test_no_single_column_integration_or_deletion_index():
    tables = synced_tables()
    assert "portal_job" in tables and "quotes_quotelineitem" in tables
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [tables]
        )
        indexes = cursor.fetchall()
    single = [
        (table, definition)
        for table, definition in indexes
        if definition.endswith(("btree (integration_id)", "btree (remote_deleted_at)"))
    ]
    assert single == []
    for table in tables:  # the unique index that serves integration_id lookups is there
        assert any(
            t == table and "UNIQUE" in d and "(integration_id, external_id)" in d
            for t, d in indexes
        ), table


def test_every_synced_row_keeps_a_foreign_key_to_its_integration():
    """Directly, or (a row that needs its parent: portal.constraints.ParentInIntegration)
    through one foreign key over (parent, integration) to a parent that has its own."""
    tables = synced_tables()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text, "
            "pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid::regclass::text = ANY(%s)",
            [tables],
        )
        keys = cursor.fetchall()
    direct = {t for t, target, _ in keys if target == "integrations_integration"}
    pattern = re.compile(
        r"FOREIGN KEY \(\w+_id, integration_id\) REFERENCES \w+\(id, integration_id\) "
        "DEFERRABLE INITIALLY DEFERRED"
    )
    through = {t: target for t, target, definition in keys if pattern.fullmatch(definition)}
    children = {
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, SyncedChild) and not model._meta.abstract
    }
    assert set(through) == children and "portal_jobmaterial" in children
    assert direct == set(tables) - children
    assert all(target in direct for target in through.values())
    for table in children:  # … and no foreign key of one column to the parent either
        assert [t for t, _, _ in keys if t == table] == [table], table


def test_payloads_are_compressed_with_lz4(integration):
    """portal 0009 / quotes 0008: every synced table's `raw` compresses with lz4 (on a server
    built with it, as every CI and production image here is), and a large payload written by
    the sync's COPY is stored so."""
    from integrations.base import ExternalClient
    from portal.migrations._raw_compression import _LZ4_AVAILABLE
    from sync.writers import write_records

    tables = synced_tables()
    with connection.cursor() as cursor:
        cursor.execute(_LZ4_AVAILABLE)
        if not cursor.fetchone()[0]:  # (never in CI: PostgreSQL 15 built with lz4)
            pytest.skip("this PostgreSQL has no lz4: the migration leaves pglz")
        cursor.execute(
            "SELECT c.relname, a.attcompression FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE a.attname = 'raw' AND c.relname = ANY(%s)",
            [tables],
        )
        methods = dict(cursor.fetchall())
    assert set(methods) == set(tables)
    assert set(methods.values()) == {"l"}, methods

    raw = {"uuid": "c-big", "notes": [f"line {i} of a long history" for i in range(300)]}
    client = ExternalClient(provider="servicem8", external_id="c-big", raw=raw, name="Big")
    assert write_records(integration.pk, [client]).created == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(raw) FROM portal_client WHERE external_id = 'c-big'"
        )
        assert cursor.fetchone()[0] == "lz4"
