"""portal 0010 / quotes 0009 on PostgreSQL (portal/migrations/_parent_key_ops.py): rows whose
parent is in another integration stop the migration before anything changes, with the tables,
counts and ids; once fixed it adds the keys, validated, and drops the old ones; reversing
restores the old foreign keys under Django's names."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from portal.models import JobMaterial
from tests import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the online steps' catalogue"),
]

BEFORE = [("portal", "0009_raw_lz4"), ("quotes", "0008_raw_lz4")]
AFTER = [("portal", "0010_parent_in_integration"), ("quotes", "0009_parent_in_integration")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def foreign_keys(table: str) -> dict[str, tuple[str, bool]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = %s::regclass",
            [table],
        )
        return {name: (definition, valid) for name, definition, valid in cursor.fetchall()}


def test_mismatched_rows_stop_it_then_it_adds_the_keys_and_reverses(company):
    first = factories.IntegrationFactory(company=company)
    second = factories.IntegrationFactory(company=company)
    job = factories.JobFactory(integration=first)
    material = JobMaterial.objects.create(
        integration=first, external_id="m-1", job=job, name="Pipe"
    )
    try:
        migrate(BEFORE)
        old = foreign_keys("portal_jobmaterial")
        assert sorted(d for d, _ in old.values()) == [
            "FOREIGN KEY (integration_id) REFERENCES integrations_integration(id) "
            "DEFERRABLE INITIALLY DEFERRED",
            "FOREIGN KEY (job_id) REFERENCES portal_job(id) DEFERRABLE INITIALLY DEFERRED",
        ]
        with connection.cursor() as cursor:  # (the old keys allow it: both rows exist)
            cursor.execute(
                "UPDATE portal_jobmaterial SET integration_id = %s WHERE id = %s",
                [second.pk, material.pk],
            )
        with pytest.raises(RuntimeError) as caught:
            migrate([AFTER[0]])
        assert (
            f"portal_jobmaterial: 1 row(s) whose job_id is not a row of portal_job in the "
            f"same integration (ids {material.pk})" in str(caught.value)
        )
        assert foreign_keys("portal_jobmaterial") == old  # nothing changed
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_constraint WHERE conname = 'portal_job_parent_key'"
            )
            assert cursor.fetchone() == (0,)
            cursor.execute(
                "UPDATE portal_jobmaterial SET integration_id = %s WHERE id = %s",
                [first.pk, material.pk],
            )
        migrate(AFTER)
        assert foreign_keys("portal_jobmaterial") == {
            "portal_jobmaterial_job_in_integration": (
                "FOREIGN KEY (job_id, integration_id) REFERENCES portal_job(id, integration_id) "
                "DEFERRABLE INITIALLY DEFERRED",
                True,
            )
        }
        migrate(BEFORE)
        assert foreign_keys("portal_jobmaterial") == old
    finally:
        migrate(AFTER)
