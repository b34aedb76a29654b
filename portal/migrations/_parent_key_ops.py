"""`ParentKeysOnline`: give synced rows that need their parent one foreign key over (parent,
integration) (portal.constraints.ParentInIntegration) in place of their two single-column ones,
without locking the tables for the time it takes to check them (portal 0010, quotes 0009).

Django's own operations would, in one transaction, build each parent's (id, integration)
unique index under an ACCESS EXCLUSIVE lock, drop the old foreign keys (which locks the
integration table too: a foreign key's triggers live on both tables) and check every child row
against the new keys while holding all of it. On PostgreSQL this operation (in a non-atomic
migration) instead:

1. checks first that every child row's parent belongs to the child's integration, and stops
   with the offending tables, counts and ids if not (the sync writers never write such a
   row; hand-made data could), before changing anything;
2. builds each parent key's index CONCURRENTLY and attaches it as the unique constraint;
3. adds each new foreign key NOT VALID (a brief lock) and then validates it, which reads the
   child table under a lock that lets writes go on;
4. only then drops the old foreign keys, each in a short transaction of its own.

Every lock is taken with `lock_timeout` (30 s): a busy table makes the migration stop with an
error instead of queueing every other query behind it; rerunning it resumes (each step skips
what is already there). Reversing does the same in reverse: the old foreign keys come back
(NOT VALID, then validated) under Django's names before the new ones go. Elsewhere (SQLite,
local development) Django's own operations run as they are.
"""

from __future__ import annotations

from django.db import migrations
from django.db.migrations.operations.base import Operation

LOCK_TIMEOUT = "30s"

_CONSTRAINT_EXISTS = "SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s"

# The single-column foreign keys of `table` on `column` (whatever their names).
_SINGLE_FOREIGN_KEYS = """
SELECT c.conname FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND array_length(c.conkey, 1) = 1
  AND a.attname = %s
"""


class ParentKeysOnline(Operation):
    """`operations` are the AlterField (db_constraint=False) and AddConstraint operations
    Django would run, in order: the parents' `parent_key` constraints first, then the
    children's fields and `ParentInIntegration` constraints. Django's state follows them;
    on PostgreSQL the database work is the online sequence above."""

    reduces_to_sql = False
    reversible = True

    def __init__(self, operations: list[Operation]) -> None:
        self.operations = operations

    def deconstruct(self):
        return (self.__class__.__qualname__, [], {"operations": self.operations})

    def describe(self) -> str:
        return "One foreign key over (parent, integration) for synced rows, added online"

    def state_forwards(self, app_label, state):
        for operation in self.operations:
            operation.state_forwards(app_label, state)

    # -- where the state says what to do --------------------------------------------------

    def _plan(self, app_label, state):
        """(parent keys: [(table, name, columns)], children: [(table, name, columns,
        parent table, parent columns, parent link field, integration field)]) in `state`."""
        from portal.constraints import ParentInIntegration  # (the app's code, not state)

        parents, children = [], []
        for operation in self.operations:
            if not isinstance(operation, migrations.AddConstraint):
                continue
            model = state.apps.get_model(app_label, operation.model_name)
            constraint = operation.constraint
            if isinstance(constraint, ParentInIntegration):
                link = model._meta.get_field(constraint.field)
                integration = model._meta.get_field("integration")
                parent = link.related_model._meta
                children.append(
                    (
                        model._meta.db_table,
                        constraint.name,
                        (link.column, integration.column),
                        parent.db_table,
                        (link.target_field.column, parent.get_field("integration").column),
                        link,
                        integration,
                        model,
                    )
                )
            else:
                columns = [model._meta.get_field(f).column for f in constraint.fields]
                parents.append((model._meta.db_table, constraint.name, columns))
        return parents, children

    def _delegate(self, app_label, schema_editor, from_state, to_state, forwards: bool):
        """Django's own operations (SQLite), as SeparateDatabaseAndState runs them."""
        if forwards:
            state = from_state
            for operation in self.operations:
                after = state.clone()
                operation.state_forwards(app_label, after)
                operation.database_forwards(app_label, schema_editor, state, after)
                state = after
            return
        states = [to_state]
        for operation in self.operations:
            after = states[-1].clone()
            operation.state_forwards(app_label, after)
            states.append(after)
        for operation, before, after in reversed(
            list(zip(self.operations, states[:-1], states[1:], strict=True))
        ):
            operation.database_backwards(app_label, schema_editor, after, before)

    # -- PostgreSQL ---------------------------------------------------------------------

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            self._delegate(app_label, schema_editor, from_state, to_state, forwards=True)
            return
        if connection.in_atomic_block:
            raise RuntimeError("ParentKeysOnline needs a migration with atomic = False")
        parents, children = self._plan(app_label, to_state)
        quote = schema_editor.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
            try:
                _check_rows(cursor, quote, children)
                for table, name, columns in parents:
                    cursor.execute(_CONSTRAINT_EXISTS, [table, name])
                    if cursor.fetchone():
                        continue
                    listed = ", ".join(map(quote, columns))
                    cursor.execute(
                        f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {quote(name)} "
                        f"ON {quote(table)} ({listed})"
                    )
                    cursor.execute(
                        f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} "
                        f"UNIQUE USING INDEX {quote(name)}"
                    )
                for table, name, columns, parent, targets, link, integration, _ in children:
                    cursor.execute(_CONSTRAINT_EXISTS, [table, name])
                    if not cursor.fetchone():
                        cursor.execute(
                            f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} "
                            f"FOREIGN KEY ({', '.join(map(quote, columns))}) "
                            f"REFERENCES {quote(parent)} ({', '.join(map(quote, targets))}) "
                            "DEFERRABLE INITIALLY DEFERRED NOT VALID"
                        )
                    cursor.execute(f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {quote(name)}")
                for table, _, _, _, _, link, integration, _ in children:
                    for field in (link, integration):
                        cursor.execute(_SINGLE_FOREIGN_KEYS, [table, field.column])
                        for (old,) in cursor.fetchall():
                            cursor.execute(
                                f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(old)}"
                            )
            finally:
                cursor.execute("RESET lock_timeout")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            self._delegate(app_label, schema_editor, from_state, to_state, forwards=False)
            return
        if connection.in_atomic_block:
            raise RuntimeError("ParentKeysOnline needs a migration with atomic = False")
        parents, children = self._plan(app_label, from_state)
        quote = schema_editor.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
            try:
                for table, name, _, _, _, link, integration, model in children:
                    # The old foreign keys, under Django's names, in the earlier state.
                    before = to_state.apps.get_model(app_label, model._meta.model_name)
                    for field_name in (link.name, integration.name):
                        field = before._meta.get_field(field_name)
                        old = str(  # (quoted)
                            schema_editor._fk_constraint_name(
                                before, field, "_fk_%(to_table)s_%(to_column)s"
                            )
                        )
                        cursor.execute(_CONSTRAINT_EXISTS, [table, old.strip('"')])
                        if not cursor.fetchone():
                            target = field.target_field
                            cursor.execute(
                                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {old} "
                                f"FOREIGN KEY ({quote(field.column)}) REFERENCES "
                                f"{quote(target.model._meta.db_table)} "
                                f"({quote(target.column)}) DEFERRABLE INITIALLY DEFERRED "
                                "NOT VALID"
                            )
                        cursor.execute(f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {old}")
                    cursor.execute(
                        f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {quote(name)}"
                    )
                for table, name, _ in parents:
                    cursor.execute(
                        f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {quote(name)}"
                    )
            finally:
                cursor.execute("RESET lock_timeout")


def _check_rows(cursor, quote, children) -> None:
    """Stop, before any change, if a child row's parent is missing or belongs to another
    integration: what the new keys would refuse (the tables, counts and a few ids)."""
    problems = []
    for table, _, columns, parent, targets, _, _, _ in children:
        link, integration = columns
        target_id, target_integration = targets
        cursor.execute(
            f"SELECT c.id FROM {quote(table)} c WHERE NOT EXISTS ("  # noqa: S608 - model names
            f"SELECT 1 FROM {quote(parent)} p WHERE p.{quote(target_id)} = c.{quote(link)} "
            f"AND p.{quote(target_integration)} = c.{quote(integration)}) ORDER BY c.id"
        )
        ids = [row[0] for row in cursor.fetchall()]
        if ids:
            shown = ", ".join(map(str, ids[:10])) + (", …" if len(ids) > 10 else "")
            problems.append(
                f"{table}: {len(ids)} row(s) whose {link} is not a row of {parent} in the "
                f"same integration (ids {shown})"
            )
    if problems:
        raise RuntimeError(
            "Cannot add the (parent, integration) foreign keys; fix or delete these rows "
            "first:\n" + "\n".join(problems)
        )
