import pytest
from portal.models import Client
from sync.engine import sync_entity
from sync.models import SyncRun
from tests.sync.conftest import sandbox_stats

pytestmark = pytest.mark.django_db(transaction=True)


def test_smoke(sm8_integration, sandbox_clean):
    run = sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="full")
    print(SyncRun.objects.values().get(pk=run.pk))
    print(Client.objects.count())
    run = sync_entity(integration_id=sm8_integration.pk, entity="clients", mode="incremental")
    print(SyncRun.objects.values().get(pk=run.pk))
    print(sandbox_stats(sandbox_clean, "servicem8"))
