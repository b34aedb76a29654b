"""Trigram index for the portal's quote search (portal/search.py). PostgreSQL only: on SQLite
(the `make run` demo) the search runs without it."""

from django.db import migrations

INDEX = (
    "CREATE INDEX IF NOT EXISTS quote_search_trgm ON quotes_quote USING gin "
    "((UPPER(number || ' ' || title)) gin_trgm_ops) WHERE remote_deleted_at IS NULL"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(INDEX)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS quote_search_trgm")


class Migration(migrations.Migration):
    dependencies = [("quotes", "0005_api_list_indexes")]
    operations = [migrations.RunPython(forwards, backwards)]
