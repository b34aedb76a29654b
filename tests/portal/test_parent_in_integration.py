"""A synced row that needs its parent (a job's materials, a quote's line items…) has one
foreign key over (parent, integration) (portal.constraints.ParentInIntegration): the database
refuses a row whose parent is missing or belongs to another integration, and a parent deleted
behind Django's back, on PostgreSQL and on SQLite alike. Django's own deletes cascade."""

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from portal.constraints import ParentInIntegration
from portal.models import (
    Attachment,
    Invoice,
    InvoiceItem,
    Job,
    JobActivity,
    JobContact,
    JobMaterial,
    SyncedChild,
)
from quotes.models import Quote, QuoteLineItem
from tests import factories

pytestmark = pytest.mark.django_db

CHILDREN = {
    JobMaterial: "job",
    JobActivity: "job",
    JobContact: "job",
    Attachment: "job",
    QuoteLineItem: "quote",
    InvoiceItem: "invoice",
}


def checked(operation) -> None:
    """Run `operation` and the deferred constraint checks (at commit otherwise), in a savepoint
    that a refusal rolls back."""
    with transaction.atomic():
        operation()
        connection.check_constraints()


def parent_of(model, integration):
    if model is QuoteLineItem:
        return factories.QuoteFactory(integration=integration)
    if model is InvoiceItem:
        return Invoice.objects.create(integration=integration, external_id="inv-1")
    return factories.JobFactory(integration=integration)


def child(model, parent, integration, external_id="child-1"):
    extra = {"file_name": "a.pdf"} if model is Attachment else {}
    return model.objects.create(
        integration=integration,
        external_id=external_id,
        **{CHILDREN[model]: parent},
        **extra,
    )


def test_every_synced_child_declares_its_key():
    children = {
        model
        for model in apps.get_models()
        if issubclass(model, SyncedChild) and not model._meta.abstract
    }
    assert children == set(CHILDREN)
    for model, field in CHILDREN.items():
        keys = [c for c in model._meta.constraints if isinstance(c, ParentInIntegration)]
        assert [k.field for k in keys] == [field], model
        parent = model._meta.get_field(field)
        assert parent.db_constraint is False and not parent.null
        assert model._meta.get_field("integration").db_constraint is False
        names = {c.name for c in parent.related_model._meta.constraints}
        assert f"{parent.related_model._meta.db_table}_parent_key" in names


@pytest.mark.parametrize("model", list(CHILDREN), ids=lambda m: m.__name__)
def test_a_parent_of_the_same_integration_is_taken(model, integration):
    parent = parent_of(model, integration)
    checked(lambda: child(model, parent, integration))
    assert model.objects.filter(integration=integration).count() == 1


@pytest.mark.parametrize("model", list(CHILDREN), ids=lambda m: m.__name__)
def test_a_parent_of_another_integration_is_refused(model, integration, company):
    other = factories.IntegrationFactory(company=company)
    parent = parent_of(model, other)
    with pytest.raises(IntegrityError):
        checked(lambda: child(model, parent, integration))
    assert not model.objects.exists()


@pytest.mark.parametrize("model", list(CHILDREN), ids=lambda m: m.__name__)
def test_a_missing_parent_is_refused(model, integration):
    parent = parent_of(model, integration)
    fk = model._meta.get_field(CHILDREN[model]).attname

    def orphan():
        model.objects.create(
            integration=integration,
            external_id="orphan",
            **{fk: parent.pk + 1000},
            **({"file_name": "a.pdf"} if model is Attachment else {}),
        )

    with pytest.raises(IntegrityError):
        checked(orphan)


def test_a_parent_deleted_behind_djangos_back_is_refused(integration):
    job = factories.JobFactory(integration=integration)
    child(JobMaterial, job, integration)
    table = connection.ops.quote_name(Job._meta.db_table)

    def delete():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [job.pk])  # noqa: S608

    with pytest.raises(IntegrityError):
        checked(delete)
    assert JobMaterial.objects.filter(job=job).count() == 1


def test_django_deletes_cascade_to_the_children(integration):
    quote = factories.QuoteFactory(integration=integration)
    factories.QuoteLineItemFactory(integration=integration, quote=quote)
    job = factories.JobFactory(integration=integration)
    child(JobMaterial, job, integration)
    checked(lambda: (quote.delete(), job.delete()))
    assert not QuoteLineItem.objects.exists() and not JobMaterial.objects.exists()
    assert not Quote.objects.filter(pk=quote.pk).exists()


def test_model_validation_names_the_constraint(integration, company):
    other = factories.IntegrationFactory(company=company)
    job = factories.JobFactory(integration=other)
    material = JobMaterial(integration=integration, external_id="m-1", job=job, name="Pipe")
    with pytest.raises(ValidationError) as caught:
        material.full_clean()
    assert "portal_jobmaterial_job_in_integration" in str(caught.value)
    material.integration = other
    material.full_clean()  # (the same integration: valid)


def test_the_constraint_deconstructs_and_compares():
    key = ParentInIntegration(field="job", name="k")
    path, args, kwargs = key.deconstruct()
    assert path == "portal.constraints.ParentInIntegration"
    assert ParentInIntegration(*args, **kwargs) == key
    assert ParentInIntegration(field="quote", name="k") != key
    assert "field='job'" in repr(key)


def test_the_keys_are_checked_at_commit(integration):
    """Deferred, as Django's own foreign keys: a child may be written before its parent within
    a transaction (the catalogue says so on PostgreSQL, the table's SQL on SQLite)."""
    tables = [model._meta.db_table for model in CHILDREN]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT conrelid::regclass::text, condeferrable, condeferred FROM pg_constraint "
                "WHERE contype = 'f' AND conname LIKE '%%_in_integration'"
            )
            found = {table: (d, dd) for table, d, dd in cursor.fetchall()}
            assert found == dict.fromkeys(tables, (True, True))
        else:
            for table in tables:
                cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [table])
                (sql,) = cursor.fetchone()
                assert "_in_integration" in sql and "DEFERRABLE INITIALLY DEFERRED" in sql
    job_pk = factories.JobFactory(integration=integration).pk + 100

    def child_first():
        JobMaterial.objects.create(
            integration=integration, external_id="early", job_id=job_pk, name="Pipe"
        )
        factories.JobFactory(integration=integration, id=job_pk)

    checked(child_first)
    assert JobMaterial.objects.get(external_id="early").job_id == job_pk


def test_the_system_check_names_a_missing_parent_key():
    key = ParentInIntegration(field="job", name="k")
    assert key.check(JobMaterial, connection) == []
    assert key.check(Job, connection)[0].id == "portal.E001"  # (Job has no "job" field)
    wrong = ParentInIntegration(field="name", name="k")
    assert "is not a foreign key" in wrong.check(JobMaterial, connection)[0].msg
    # Quote's parent key is there; a Client-parented key has none to reference.
    from portal.models import Contact

    missing = ParentInIntegration(field="client", name="k").check(Contact, connection)
    assert "needs a unique constraint on (id, integration)" in missing[0].msg
