"""ServiceM8 sites (`company.parent_company_uuid`) are written linked to their head office:
head offices first within a page, and a site whose head office is not synced yet is held,
not dropped, and linked once the head office arrives."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from integrations.base import ExternalClient
from portal.models import Client
from sync import writers
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


def company(uuid, parent=None, *, deleted=False):
    raw = {"uuid": uuid, "name": f"Co {uuid}", "parent_company_uuid": parent or ""}
    return ExternalClient(
        provider="servicem8",
        external_id=uuid,
        raw=raw,
        remote_updated_at=T0,
        deleted=deleted,
        name=f"Co {uuid}",
        parent_external_id=parent,
    )


def test_a_page_with_sites_before_their_head_office_links_them(integration, write_path):
    page = [company("site-1", parent="hq"), company("site-2", parent="hq"), company("hq")]
    with transaction.atomic():
        result = write_records(integration.pk, page)
    assert result.created == 3 and not result.held
    rows = {c.external_id: c for c in Client.objects.filter(integration=integration)}
    assert rows["hq"].parent_id is None
    assert rows["site-1"].parent_id == rows["hq"].pk
    assert rows["site-2"].parent_id == rows["hq"].pk
    assert set(rows["hq"].sites.values_list("external_id", flat=True)) == {"site-1", "site-2"}


def test_a_site_whose_head_office_is_not_synced_yet_is_held_then_linked(integration, write_path):
    with transaction.atomic():
        first = write_records(integration.pk, [company("site-1", parent="hq")])
    assert [(r.external_id, reason) for r, reason in first.held] == [("site-1", "client hq")]
    assert not Client.objects.filter(integration=integration, external_id="site-1").exists()
    with transaction.atomic():
        write_records(integration.pk, [company("hq")])
        retried = write_records(integration.pk, [r for r, _ in first.held])
    assert retried.created == 1 and not retried.held
    site = Client.objects.get(integration=integration, external_id="site-1")
    assert site.parent.external_id == "hq"


def test_a_site_moved_to_no_head_office_is_unlinked(integration, write_path):
    with transaction.atomic():
        write_records(integration.pk, [company("hq"), company("site-1", parent="hq")])
    moved = company("site-1")
    moved = ExternalClient(
        **{**moved.__dict__, "remote_updated_at": datetime(2026, 5, 2, tzinfo=UTC)}
    )
    with transaction.atomic():
        result = write_records(integration.pk, [moved])
    assert result.updated == 1
    assert Client.objects.get(integration=integration, external_id="site-1").parent_id is None
