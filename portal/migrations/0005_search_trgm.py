"""Trigram index for the portal's job search (portal/search.py). PostgreSQL only: on SQLite
(the `make run` demo) the search runs without it."""

from django.db import migrations

INDEX = (
    "CREATE INDEX IF NOT EXISTS job_search_trgm ON portal_job USING gin "
    "((UPPER(number || ' ' || summary || ' ' || address)) gin_trgm_ops) "
    "WHERE remote_deleted_at IS NULL"
)
CLIENT_INDEX = (
    "CREATE INDEX IF NOT EXISTS client_name_trgm ON portal_client USING gin "
    "((UPPER(name::text)) gin_trgm_ops)"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(INDEX)
        schema_editor.execute(CLIENT_INDEX)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS job_search_trgm")
        schema_editor.execute("DROP INDEX IF EXISTS client_name_trgm")


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_api_token")]
    operations = [migrations.RunPython(forwards, backwards)]
