"""Synced tables keep one index on integration_id (the unique (integration_id, external_id)
one's prefix) and none on remote_deleted_at alone (portal 0008, quotes 0007), and keep their
foreign key to the integration."""

import pytest
from django.apps import apps
from django.db import connection

from portal.models import SyncedModel

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


def test_the_foreign_keys_to_the_integration_stay():
    tables = synced_tables()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = 'integrations_integration'::regclass AND conrelid::regclass::text "
            "= ANY(%s)",
            [tables],
        )
        assert sorted(row[0] for row in cursor.fetchall()) == tables
