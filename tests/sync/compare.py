"""Record-by-record comparison of the local copy with what the provider serves now."""

from collections import defaultdict

import requests

from integrations.base import ExternalJobMaterial, ExternalQuote
from integrations.services import provider_for
from portal.models import Client, Job, JobMaterial
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


# --- independent check: the sandbox's raw ServiceTitan records, read without the mapper -------


def servicetitan_raw(sandbox_url: str, module: str, path: str) -> list[dict]:
    """Every record of a ServiceTitan list, read with plain HTTP GETs (no provider code, no
    mapper): a token from the sandbox's auth server, then `page` by `page` until `hasMore` is
    false, inactive records included where the list has `active`."""
    from integrations.sandbox import accounts

    tenant = accounts.SERVICETITAN_TENANT
    token = requests.post(
        f"{sandbox_url}/servicetitan-auth/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
        timeout=10,
    )
    token.raise_for_status()
    headers = {
        "Authorization": f"Bearer {token.json()['access_token']}",
        "ST-App-Key": accounts.SERVICETITAN_APP_KEY,
    }
    params = {"pageSize": 5000}
    if path in {"customers", "estimates"}:  # the lists with `active` (2022 specs)
        params["active"] = "Any"
    records: list[dict] = []
    page = 1
    while True:
        response = requests.get(
            f"{sandbox_url}/servicetitan/{module}/v2/tenant/{tenant.tenant_id}/{path}",
            params={**params, "page": page},
            headers=headers,
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        records.extend(body["data"])
        if not body["hasMore"]:
            return records
        page += 1


def servicetitan_raw_differences(integration, sandbox_url: str) -> list[str]:
    """Key fields per core entity, the database against the sandbox's raw records: customer
    name and active flag, job number and status word, estimate total (sum of its items'
    totals: the 2022 schema has no subtotal/tax) and item count, appointment start. Written
    from the spec's field names, independently of the provider's mapper, so a mapper bug that
    the sync-against-itself comparison (`differences`) would repeat on both sides shows here."""
    from datetime import datetime
    from decimal import Decimal

    from portal.models import JobActivity

    problems: list[str] = []

    def compare(label: str, raws: list[dict], model, key, local, want) -> None:
        rows = {r.external_id: r for r in model.objects.filter(integration=integration)}
        for raw in raws:
            external_id = key(raw)
            row = rows.get(external_id)
            if row is None:
                problems.append(f"{label} {external_id}: missing locally")
                continue
            have, expected = local(row), want(raw)
            if have != expected:
                problems.append(f"{label} {external_id}: {have!r} != sandbox {expected!r}")

    def moment(value: str | None):
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

    compare(
        "customer",
        servicetitan_raw(sandbox_url, "crm", "customers"),
        Client,
        lambda r: str(r["id"]),
        lambda row: (row.name, row.remote_deleted_at is None),
        lambda r: (r["name"], bool(r["active"])),
    )
    compare(
        "job",
        servicetitan_raw(sandbox_url, "jpm", "jobs"),
        Job,
        lambda r: str(r["id"]),
        lambda row: (row.number, row.provider_status),
        lambda r: (r["jobNumber"], r["jobStatus"]),
    )
    compare(
        "estimate",
        servicetitan_raw(sandbox_url, "sales", "estimates"),
        Quote,
        lambda r: str(r["id"]),
        lambda row: (row.total, row.line_items.filter(remote_deleted_at__isnull=True).count()),
        lambda r: (
            sum((Decimal(str(i["total"])) for i in r.get("items") or ()), Decimal("0")).quantize(
                Decimal("0.01")
            ),
            len(r.get("items") or ()),
        ),
    )
    compare(
        "appointment",
        servicetitan_raw(sandbox_url, "jpm", "appointments"),
        JobActivity,
        lambda r: str(r["id"]),
        lambda row: row.starts_at,
        lambda r: moment(r.get("start")),
    )
    return problems
