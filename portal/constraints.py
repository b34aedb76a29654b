"""`ParentInIntegration`: one foreign key over (parent, integration) for a synced row that
cannot exist without its parent (a job's materials, a quote's line items…).

Two single-column foreign keys (parent, integration) make the database check two rows for
every row a sync writes, at commit: an index lookup and a row lock each, the integration's
one row locked by every writer at once. While the ServiceM8 benchmark wrote job materials and
line items, those checks were ~30% of PostgreSQL's CPU; one key instead of two took its first
full sync from ~45 s to ~43 s (bench/README.md). One foreign key over both columns, against
the parent's own (id, integration) unique key, is checked once a row and says more than the
two did: the parent exists *and* belongs to the row's integration (so the row's integration
exists too, through the parent's own foreign key). The model keeps both as Django relations
(`db_constraint=False`: no database constraint of their own), and Django's deletes cascade
as before; the database refuses anything that would leave a row without its parent.

The parent model needs `UniqueConstraint(fields=["id", "integration"])` (a foreign key
references a unique key; `check` says so when it is missing). PostgreSQL and SQLite both take
the constraint, deferred to the commit like Django's own foreign keys. Renaming the parent
link needs the constraint removed and added again (a migration's state keeps `field`)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.db.models import BaseConstraint, UniqueConstraint


class ParentInIntegration(BaseConstraint):
    default_violation_error_message = (
        "Constraint “%(name)s” is violated: the parent is not a row of the same integration."
    )

    def __init__(
        self, *, field: str, name: str, violation_error_code=None, violation_error_message=None
    ):
        super().__init__(
            name=name,
            violation_error_code=violation_error_code,
            violation_error_message=violation_error_message,
        )
        self.field = field

    def _references(self, model, schema_editor) -> str:
        quote = schema_editor.quote_name
        fk = model._meta.get_field(self.field)
        parent = fk.related_model._meta
        columns = (fk.column, model._meta.get_field("integration").column)
        targets = (fk.target_field.column, parent.get_field("integration").column)
        return (
            f"FOREIGN KEY ({', '.join(map(quote, columns))}) "
            f"REFERENCES {quote(parent.db_table)} ({', '.join(map(quote, targets))})"
            # (checked at commit, as Django's own foreign keys are, on both databases)
            " DEFERRABLE INITIALLY DEFERRED"
        )

    def constraint_sql(self, model, schema_editor) -> str:
        return f"CONSTRAINT {schema_editor.quote_name(self.name)} " + self._references(
            model, schema_editor
        )

    def create_sql(self, model, schema_editor) -> str:
        table = schema_editor.quote_name(model._meta.db_table)
        return f"ALTER TABLE {table} ADD {self.constraint_sql(model, schema_editor)}"

    def remove_sql(self, model, schema_editor):
        return schema_editor._delete_constraint_sql(schema_editor.sql_delete_fk, model, self.name)

    def validate(self, model, instance, exclude=None, using=DEFAULT_DB_ALIAS):
        fk = model._meta.get_field(self.field)
        if exclude and {fk.name, "integration"} & set(exclude):
            return
        integration = model._meta.get_field("integration")
        parent_id = getattr(instance, fk.attname)
        integration_id = getattr(instance, integration.attname)
        if parent_id is None or integration_id is None:
            return  # (the fields' own validation says what is missing)
        parents = fk.related_model._base_manager.using(using)
        lookup = {fk.target_field.attname: parent_id, integration.attname: integration_id}
        if not parents.filter(**lookup).exists():
            raise ValidationError(
                self.get_violation_error_message(), code=self.violation_error_code
            )

    def check(self, model, connection):
        """System check: `field` is a foreign key, both models have an `integration`, and
        the parent has the (its key, integration) unique key the database needs."""
        from django.core import checks
        from django.core.exceptions import FieldDoesNotExist

        def error(message: str) -> list:
            return [checks.Error(message, obj=model, id="portal.E001")]

        try:
            fk = model._meta.get_field(self.field)
            model._meta.get_field("integration")
        except FieldDoesNotExist as exc:
            return error(f"{self.name}: {exc}")
        if not fk.many_to_one:
            return error(f"{self.name}: {self.field!r} is not a foreign key")
        parent = fk.related_model._meta
        wanted = {fk.target_field.name, "integration"}
        keys = [
            c
            for c in parent.constraints
            if isinstance(c, UniqueConstraint) and c.condition is None and set(c.fields) == wanted
        ]
        if not keys:
            return error(
                f"{self.name}: {parent.label} needs a unique constraint on "
                f"({fk.target_field.name}, integration) for this foreign key to reference"
            )
        return []

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        kwargs["field"] = self.field
        return path, args, kwargs

    def __eq__(self, other):
        if isinstance(other, ParentInIntegration):
            return (
                self.name == other.name
                and self.field == other.field
                and self.violation_error_code == other.violation_error_code
                and self.violation_error_message == other.violation_error_message
            )
        return super().__eq__(other)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: field={self.field!r} name={self.name!r}>"
