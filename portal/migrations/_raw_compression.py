"""Compress synced tables' `raw` payloads with lz4 instead of pglz (portal 0009, quotes 0008).

A job's payload (~1.7 kB of JSON, ~2 kB as jsonb) crosses PostgreSQL's TOAST threshold, so the
server compresses it on every insert and update, and pglz was ~4% of the server's CPU in a
first sync (bench/sync_throughput.py, perf); lz4 compresses and decompresses several times as
fast, for a slightly larger result. `ALTER COLUMN … SET COMPRESSION` changes the catalog only:
no rewrite, and stored values keep their method until they are next written. PostgreSQL 14+
built with lz4 only (Debian's and the official images are); elsewhere, and on SQLite, nothing
changes. Reversing sets the column back to the server's default method. Each ALTER takes a
brief ACCESS EXCLUSIVE lock on its table (it waits for a sync's transaction on that table to
end): the migration is not atomic, so each table's lock is released as soon as it is set.
"""

from django.db import migrations

_LZ4_AVAILABLE = """
SELECT current_setting('server_version_num')::int >= 140000
   AND EXISTS (
       SELECT 1 FROM pg_settings
       WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)
   )
"""


def _synced_tables(apps, app_label: str) -> list[str]:
    """The app's synced tables (portal.models.SyncedModel's fields) in the migration's state."""
    return [
        model._meta.db_table
        for model in apps.get_app_config(app_label).get_models()
        if {"integration", "external_id", "raw", "content_hash"}
        <= {field.name for field in model._meta.get_fields()}
    ]


def raw_compression(app_label: str) -> migrations.RunPython:
    def set_method(apps, schema_editor, method: str) -> None:
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(_LZ4_AVAILABLE)
            if not cursor.fetchone()[0]:
                return
            quote = connection.ops.quote_name
            for table in _synced_tables(apps, app_label):
                cursor.execute(
                    f"ALTER TABLE {quote(table)} ALTER COLUMN raw SET COMPRESSION {method}"
                )

    def forward(apps, schema_editor):
        set_method(apps, schema_editor, "lz4")

    def backward(apps, schema_editor):
        set_method(apps, schema_editor, "default")

    return migrations.RunPython(forward, backward, elidable=False)
