"""Issue #4, first "Done when" line: after a full sync of every ServiceM8 entity and an
incremental sync of the changes made since, the local data equals the sandbox's, record by
record (every entity, every mapped field, raw included), with no duplicates.

The changes are the awkward ones: a deletion (active 0) in every object; in every object,
updates whose edit_date falls in the same second as the entity's saved cursor (ServiceM8 has
only `gt`, so a filter on the cursor's own second would miss them); and changes made while the
incremental sync is paginating: the sandbox's `mutate_during_sync` fault re-edits records
already served on every continued page, and a hook between pages changes the data of a record
page 1 served, so both re-appear later in the same walk. The overlap window is switched off
(lookback 0) so that the same-second edits are caught by the inclusive filter itself, not
hidden by re-reading an hour.

Runs against the sandbox over loopback with the real engine and database."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
import requests

from integrations.providers.servicem8.provider import ServiceM8Provider
from integrations.sandbox import accounts
from integrations.sandbox.store import Collection
from integrations.services import provider_for
from portal.models import JobContact, Note, PricebookItem, ReferenceRecord
from sync.engine import sync_entity
from sync.models import SyncCursor, SyncRun
from sync.writers import model_for
from tests.sync.compare import differences, provider_truth
from tests.sync.conftest import sandbox_control, sandbox_stats

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT = accounts.SERVICEM8_ACCOUNT.uuid
PAGE_SIZE = 5  # > the 3 records the fault re-edits per page, so every walk ends
SAME_SECOND_EDITS = 10  # per object (fewer where an object has fewer records)
# Entities whose incremental walk gets a data change between page 1 and page 2.
HOOKED = ("jobs", "job_contacts", "notes", "pricebook_items", "materials")
# A mapped text field per object (activities: a raw-only number, their times being a schedule).
EDITED_FIELD = {
    "company": "name",
    "companycontact": "first",
    "staff": "job_title",
    "taxrate": "name",
    "category": "name",
    "material": "name",
    "job": "job_description",
    "jobcontact": "first",
    "jobactivity": "travel_time_in_seconds",
    "jobmaterialbundle": "name",
    "jobmaterial": "name",
    "attachment": "attachment_name",
    "note": "note",
}


def run(integration, entity: str, mode: str) -> SyncRun:
    return SyncRun.objects.get(
        pk=sync_entity(integration_id=integration.pk, entity=entity, mode=mode).pk
    )


def edited(data: dict, field: str, tag: str) -> dict:
    value = data.get(field)
    if isinstance(value, int):
        return {field: value + 60}
    return {field: f"{value or ''} ({tag})".strip()}


def local_rows(provider, entity: str) -> list:
    """This entity's live local rows (its kind only, for shared tables)."""
    record_type = provider.record_types(entity)[0]
    return list(
        model_for(record_type)
        .objects.filter(
            integration=provider.context.integration_id,
            remote_deleted_at__isnull=True,
            **provider.sweep_scope(entity, record_type),
        )
        .order_by("external_id")
    )


def test_full_then_incremental_equals_the_sandbox(sm8_integration, sandbox_clean, monkeypatch):
    sandbox = sandbox_clean
    provider = provider_for(sm8_integration)
    entities = provider.entities
    assert set(entities) >= {
        "job_contacts",
        "notes",
        "job_categories",
        "tax_rates",
        "material_bundles",
        "pricebook_items",
    }

    # 1. A full sync of every entity, in dependency order.
    for entity in entities:
        full = run(sm8_integration, entity, "full")
        assert (full.status, full.failed_count, full.held_count) == ("success", 0, 0), entity
        assert full.swept, entity
    assert differences(sm8_integration) == []
    for entity in entities:
        assert local_rows(provider, entity), f"nothing synced for {entity}"
    kinds = set(ReferenceRecord.objects.values_list("kind", flat=True))
    assert kinds == {"job_category", "tax_rate", "material_bundle"}
    assert PricebookItem.objects.filter(integration=sm8_integration, kind="material").exists()
    assert JobContact.objects.filter(integration=sm8_integration).exists()
    assert Note.objects.filter(integration=sm8_integration, client__isnull=False).exists()

    # 2. Changes at the sandbox.
    store = sandbox.store
    deleted: dict[str, str] = {}
    same_second: dict[str, list[str]] = {}
    for entity in entities:
        obj = ServiceM8Provider.objects[entity]
        collection = Collection("servicem8", ACCOUNT, obj)
        cursor = SyncCursor.objects.get(integration=sm8_integration, entity=entity)
        since = datetime.fromisoformat(cursor.value["since"])
        rows = [r for r in local_rows(provider, entity) if r.remote_updated_at < since]
        assert len(rows) >= 2, entity
        # Updates within the cursor's own second (edit_date has whole seconds).
        in_second = int(since.timestamp()) * 1_000_000 + 300_000
        for row in rows[:SAME_SECOND_EDITS][: len(rows) - 1]:
            record = store.get(collection, row.raw["uuid"])
            data = {**record.data, **edited(record.data, EDITED_FIELD[obj], "same second")}
            store.upsert(
                collection, record.id, data, active=bool(record.active), modified_us=in_second
            )
            same_second.setdefault(entity, []).append(row.external_id)
        # A deletion: active 0, edit_date now.
        victim = rows[-1]
        response = requests.delete(
            f"{sandbox.url}/_sandbox/records/servicem8/{obj}/{victim.raw['uuid']}", timeout=10
        )
        response.raise_for_status()
        deleted[entity] = victim.external_id

    # Changes while the incremental sync pages: the fault re-edits served records on every
    # continued page; the hook edits the data of a record page 1 served, between pages.
    sandbox_control(sandbox, "config", {"servicem8": {"page_size": PAGE_SIZE}})
    sandbox_control(sandbox, "faults", {"provider": "servicem8", "mutate_during_sync": True})
    hooked: dict[str, str] = {}
    original_pages = ServiceM8Provider.pages

    def pages(self, entity, *, updated_since=None):
        for number, page in enumerate(original_pages(self, entity, updated_since=updated_since)):
            yield page
            if number == 0 and updated_since is not None and entity in HOOKED:
                assert len(page) == PAGE_SIZE, f"{entity}: the walk has one page only"
                obj = ServiceM8Provider.objects[entity]
                uuid = page[0]["uuid"]
                field = EDITED_FIELD[obj]
                sandbox_control(
                    sandbox,
                    f"records/servicem8/{obj}",
                    {"id": uuid, "data": edited(page[0], field, "edited mid-walk")},
                )
                hooked[entity] = uuid

    monkeypatch.setattr(ServiceM8Provider, "pages", pages)
    monkeypatch.setattr(ServiceM8Provider, "cursor_lookback_seconds", 0)

    # 3. The incremental sync.
    for entity in entities:
        incremental = run(sm8_integration, entity, "incremental")
        assert (incremental.status, incremental.failed_count) == ("success", 0), entity
        assert incremental.fetched_count >= len(same_second[entity]) + 1, entity
    assert set(hooked) == set(HOOKED)
    assert sandbox_stats(sandbox, "servicem8")["faults_injected"]["mutate_during_sync"] > 0

    # 4. Equal, record by record, with no duplicates.
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10).raise_for_status()
    sandbox_control(sandbox, "config", {"servicem8": {"page_size": 5000}})
    assert differences(sm8_integration) == []
    truth = provider_truth(sm8_integration)
    for model, records in truth.items():
        ids = list(model.objects.filter(integration=sm8_integration).values_list("external_id"))
        assert not [i for i, n in Counter(ids).items() if n > 1], model.__name__
        assert len(ids) == len(records), model.__name__
    for entity in entities:
        model = model_for(provider.record_types(entity)[0])
        rows = model.objects.filter(integration=sm8_integration)
        assert rows.get(external_id=deleted[entity]).remote_deleted_at is not None, entity
        field = EDITED_FIELD[ServiceM8Provider.objects[entity]]
        for external_id in same_second[entity]:
            raw = rows.get(external_id=external_id).raw
            assert "(same second)" in str(raw[field]) or field == "travel_time_in_seconds"
    for entity, uuid in hooked.items():
        model = model_for(provider.record_types(entity)[0])
        raw = model.objects.get(integration=sm8_integration, external_id=uuid).raw
        assert "(edited mid-walk)" in raw[EDITED_FIELD[ServiceM8Provider.objects[entity]]]
