"""The shared pieces the providers' newer entities build on: a category tree written in one
page, sweeps limited to one kind of a shared table, bookings queued through the outbox, and
the relay keeping a booking (and a provider's field errors) in step with its event."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from integrations import registry
from integrations.base import (
    ExternalPricebookCategory,
    ExternalPricebookItem,
    ExternalReference,
)
from integrations.exceptions import ProviderValidationError
from portal import bookings
from portal.models import Booking, PricebookCategory, PricebookItem, ReferenceRecord
from sync import outbox, writers
from sync.models import OutboxEvent, SyncRun
from sync.writers import write_records

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["copy", "bulk_create"])
def write_path(request, monkeypatch):
    if request.param == "copy":
        if connection.vendor != "postgresql":
            pytest.skip("COPY and merge is the PostgreSQL path")
    else:
        monkeypatch.setattr(writers, "_uses_copy", lambda: False)
    return request.param


def category(ext, parent=None, name=None):
    return ExternalPricebookCategory(
        provider="servicetitan",
        external_id=ext,
        raw={"id": ext},
        remote_updated_at=T0,
        name=name or f"Category {ext}",
        parent_external_id=parent,
    )


def test_a_category_tree_in_one_page_is_written_parents_first(integration, write_path):
    # Children listed before their parents, three levels deep.
    page = [category("c3", parent="c2"), category("c2", parent="c1"), category("c1")]
    with transaction.atomic():
        result = write_records(integration.pk, page)
    assert result.created == 3 and not result.held
    rows = {c.external_id: c for c in PricebookCategory.objects.select_related("parent")}
    assert rows["c1"].parent is None
    assert rows["c2"].parent == rows["c1"]
    assert rows["c3"].parent == rows["c2"]


def test_items_link_to_their_categories(integration, write_path):
    with transaction.atomic():
        write_records(integration.pk, [category("c1"), category("c2", parent="c1")])
        write_records(
            integration.pk,
            [
                ExternalPricebookItem(
                    provider="servicetitan",
                    external_id="material:7",
                    raw={"id": 7},
                    kind="material",
                    code="PIPE-15",
                    name="Copper pipe 15 mm",
                    unit_price=Decimal("12.40"),
                    cost=Decimal("7.10"),
                    category_external_ids=("c2", "not-synced"),
                )
            ],
        )
    item = PricebookItem.objects.get()
    assert item.unit_price == Decimal("12.40") and item.cost == Decimal("7.10")
    assert [c.external_id for c in item.categories.all()] == ["c2"]


def reference(kind, pid, name="x"):
    return ExternalReference(
        provider="servicetitan",
        external_id=f"{kind}:{pid}",
        raw={"id": pid},
        kind=kind,
        name=name,
    )


def test_a_full_run_sweeps_only_its_own_kind(integration, monkeypatch):
    """Two entities write ReferenceRecord; a complete full run of one must not delete the
    other's rows (Provider.sweep_scope)."""
    from sync import engine

    with transaction.atomic():
        write_records(
            integration.pk,
            [reference("job_type", 1), reference("job_type", 2), reference("zone", 1)],
        )

    class Provider:
        entities = ("job_types",)

        def record_types(self, entity):
            return (ExternalReference,)

        def sweep_scope(self, entity, record_type):
            return {"kind": "job_type"}

    run = SyncRun.objects.create(
        integration=integration, entity="job_types", mode="full", started_at=datetime.now(UTC)
    )
    seen = engine.SeenIds()
    seen.add(ReferenceRecord, "job_type:1")
    state = engine._Run(
        integration=integration, provider=Provider(), entity="job_types", run=run, seen=seen
    )
    engine._sweep(state)
    live = set(
        ReferenceRecord.objects.filter(remote_deleted_at__isnull=True).values_list(
            "external_id", flat=True
        )
    )
    assert live == {"job_type:1", "zone:1"}


BOOKING = {
    "customer_name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+61 2 5550 1234",
    "street": "1 Analytical Way",
    "city": "Sydney",
    "region": "NSW",
    "postal_code": "2000",
    "country": "au",
    "summary": "Leaking hot water system",
    "scheduled_start": "2026-12-01T09:00:00+11:00",
    "scheduled_end": "2026-12-01T11:00:00+11:00",
    "options": {"business_unit_id": 1},
}


@pytest.fixture
def job_capable(monkeypatch):
    """The integration's provider class can create jobs, whatever the tests' provider is."""
    from integrations.base import Capability
    from integrations.registry import get

    def fake_get(key):
        cls = get(key)
        return type(
            cls.__name__, (cls,), {"capabilities": cls.capabilities | {Capability.WRITE_JOB_CREATE}}
        )

    monkeypatch.setattr(registry, "get", fake_get)


def test_booking_input_is_checked_field_by_field(integration, job_capable):
    bad = {**BOOKING, "customer_name": " ", "email": "nope", "country": "Australia"}
    bad |= {"priority": "asap", "scheduled_end": "2026-12-01T08:00:00+11:00"}
    with pytest.raises(ValidationError) as caught:
        bookings.booking_create(integration=integration, data=bad)
    errors = caught.value.message_dict
    assert set(errors) == {"customer_name", "email", "country", "priority", "scheduled_end"}
    assert not Booking.objects.exists() and not OutboxEvent.objects.exists()


def test_a_naive_time_is_refused(integration, job_capable):
    with pytest.raises(ValidationError) as caught:
        bookings.booking_create(
            integration=integration, data={**BOOKING, "scheduled_start": "2026-12-01T09:00"}
        )
    assert "scheduled_start" in caught.value.message_dict


def test_a_provider_that_cannot_create_jobs_is_refused(integration, monkeypatch):
    from integrations.registry import get

    def no_jobs(key):
        cls = get(key)
        return type(cls.__name__, (cls,), {"capabilities": frozenset()})

    monkeypatch.setattr(registry, "get", no_jobs)
    with pytest.raises(ValidationError) as caught:
        bookings.booking_create(integration=integration, data=BOOKING)
    assert "integration" in caught.value.message_dict


class FakeProvider:
    def __init__(self, outcome):
        self.outcome = outcome
        self.calls = []

    def perform(self, action, payload, *, idempotency_key):
        self.calls.append((action, payload, idempotency_key))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_a_booking_is_queued_then_created_by_the_relay(integration, job_capable, monkeypatch):
    with transaction.atomic():
        booking = bookings.booking_create(integration=integration, data=BOOKING)
    assert booking.status == "pending" and booking.country == "AU"
    event = booking.outbox_event
    assert event.action == "job.create" and event.idempotency_key == f"booking:{booking.reference}"
    assert event.payload["address"]["city"] == "Sydney"
    assert event.payload["job"]["scheduled_start"] == "2026-12-01T09:00:00+11:00"
    provider = FakeProvider({"job_id": "J-77", "customer_id": "C-1", "created": True})
    monkeypatch.setattr(outbox, "provider_for", lambda integration: provider)
    outbox.outbox_deliver(event_id=event.pk)
    booking.refresh_from_db()
    assert booking.status == "created" and booking.external_job_id == "J-77"
    assert provider.calls[0][0] == "job.create"


def test_a_refused_booking_keeps_the_field_errors_and_can_be_replayed(
    integration, job_capable, monkeypatch
):
    with transaction.atomic():
        booking = bookings.booking_create(integration=integration, data=BOOKING)
    refusal = ProviderValidationError(
        "servicetitan: 400", provider="servicetitan", field_errors={"jobTypeId": ["Required"]}
    )
    monkeypatch.setattr(outbox, "provider_for", lambda integration: FakeProvider(refusal))
    event = outbox.outbox_deliver(event_id=booking.outbox_event_id)
    assert event.status == "dead" and event.field_errors == {"jobTypeId": ["Required"]}
    booking.refresh_from_db()
    assert booking.status == "failed"
    outbox.outbox_dead_replay(event_ids=[event.pk])
    booking.refresh_from_db()
    assert booking.status == "pending"
    monkeypatch.setattr(outbox, "provider_for", lambda integration: FakeProvider({"job_id": "J-9"}))
    event = outbox.outbox_deliver(event_id=event.pk)
    assert event.status == "sent" and event.field_errors == {}
    booking.refresh_from_db()
    assert booking.status == "created" and booking.external_job_id == "J-9"
