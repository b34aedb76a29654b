"""Record-by-record comparison of the local copy with what the provider serves now."""

from collections import defaultdict

from integrations.base import ExternalJobMaterial, ExternalQuote
from integrations.services import provider_for
from portal.models import JobMaterial
from quotes.models import Quote, QuoteLineItem
from sync.models import HeldRecord
from sync.writers import SINKS, model_for


def provider_truth(integration) -> dict:
    provider = provider_for(integration)
    truth: dict = defaultdict(dict)
    for entity in provider.entities:
        for record in provider.iter_records(entity):
            truth[model_for(type(record))][record.external_id] = record
            if isinstance(record, ExternalQuote) and record.line_items is not None:
                for item in record.line_items:
                    truth[QuoteLineItem][item.external_id] = item
    for external_id, material in truth.get(JobMaterial, {}).items():
        if isinstance(material, ExternalJobMaterial) and material.quote_external_id in truth.get(
            Quote, {}
        ):
            truth[QuoteLineItem][external_id] = material
    return truth


def differences(integration) -> list[str]:
    """Every way the local copy differs from the provider; [] when they are equal."""
    problems = []
    held = set(HeldRecord.objects.filter(integration=integration).values_list("external_id"))
    if held:
        problems.append(f"{len(held)} record(s) still held: {sorted(held)[:5]}")
    for model, records in provider_truth(integration).items():
        rows = {row.external_id: row for row in model.objects.filter(integration=integration)}
        for external_id, record in records.items():
            row = rows.get(external_id)
            label = f"{model.__name__} {external_id}"
            if row is None:
                problems.append(f"{label}: missing locally")
                continue
            if (row.remote_deleted_at is not None) != record.deleted:
                problems.append(f"{label}: deleted locally={row.remote_deleted_at}")
            if row.remote_updated_at != record.remote_updated_at:
                problems.append(
                    f"{label}: updated {row.remote_updated_at} != {record.remote_updated_at}"
                )
            for name in next(s for s in SINKS if s.model is model).fields:
                if not hasattr(row, name) or not hasattr(record, name):
                    continue
                want, have = getattr(record, name, None), getattr(row, name)
                if isinstance(want, str) and isinstance(have, str):
                    want = want[: len(have)] if len(want) > len(have) else want
                if want != have:
                    problems.append(f"{label}: {name} {have!r} != {want!r}")
            if row.raw != dict(record.raw):
                problems.append(f"{label}: raw differs")
        for external_id, row in rows.items():
            if external_id not in records and row.remote_deleted_at is None:
                problems.append(f"{model.__name__} {external_id}: live locally, gone at provider")
    return problems
