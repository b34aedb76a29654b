"""Drop the single-column `integration_id` and `remote_deleted_at` indexes of synced tables
without locking the tables (portal 0008, quotes 0007).

Django's own AlterField(db_index=False) on the foreign key drops and re-adds the foreign-key
constraint, which re-checks every row while the table is locked, in the same transaction as
every other table's. Here the migration changes Django's state only, and the database work is
`DROP INDEX CONCURRENTLY` of the indexes found by their definition (one plain btree column,
whatever their names), one at a time outside a transaction; reversing creates them again
CONCURRENTLY under Django's names. Elsewhere (SQLite, local development) the indexes stay:
harmless, and Django's next rebuild of such a table follows the state.
"""

from django.db import migrations

COLUMNS = ("integration_id", "remote_deleted_at")

_FIND = """
SELECT i.relname
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
WHERE t.relname = %s AND x.indnatts = 1 AND NOT x.indisunique AND NOT x.indisprimary
  AND x.indpred IS NULL AND x.indexprs IS NULL AND a.attname = ANY(%s)
"""


def drop_indexes(app_label: str, model_names: list[str]) -> migrations.RunPython:
    def tables(apps) -> list[str]:
        return [apps.get_model(app_label, name)._meta.db_table for name in model_names]

    def forward(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            for table in tables(apps):
                cursor.execute(_FIND, [table, list(COLUMNS)])
                for (name,) in cursor.fetchall():
                    cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}")

    def backward(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            for table in tables(apps):
                for column in COLUMNS:
                    name = schema_editor._create_index_name(table, [column])
                    cursor.execute(
                        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote(name)} "
                        f"ON {quote(table)} ({quote(column)})"
                    )

    return migrations.RunPython(forward, backward, atomic=False)
