"""Budget (issue #4): ServiceM8 allows 20,000 requests a day, so a full sync of an entity
with N records makes exactly ceil(N / 5,000) list calls: cursor pages of up to 5,000 records
[NOTES.md §1; spec: "x-next-cursor"], never a smaller page. Against the sandbox over loopback,
at its default (real) page size."""

from __future__ import annotations

import math
import time

import pytest
import requests

from portal.models import PricebookItem
from sync.engine import sync_entity
from tests.sync.conftest import sandbox_stats

pytestmark = pytest.mark.django_db(transaction=True)
API = "/servicem8/api_1.0"
KEY = {"X-Api-Key": "sm8-sandbox-api-key"}
PAGE = 5_000
LIST = f"GET {API}/material.json"


def test_a_full_sync_makes_ceil_n_over_5000_list_calls(sm8_integration, sandbox_clean):
    sandbox = sandbox_clean
    config = requests.get(f"{sandbox.url}/_sandbox/config", timeout=10).json()
    assert config["servicem8"]["page_size"] == PAGE  # the real page size, not a small one
    seeded = requests.get(f"{sandbox.url}{API}/material.json", headers=KEY, timeout=30).json()
    # One record past a full page: the smallest N that needs a second page.
    wanted = PAGE + 1
    started = time.monotonic()
    with requests.Session() as session:
        for n in range(wanted - len(seeded)):
            session.post(
                f"{sandbox.url}/_sandbox/records/servicem8/material",
                json={"data": {"name": f"Budget item {n:05d}", "price": "1.00", "active": 1}},
                timeout=10,
            ).raise_for_status()
    seeding = time.monotonic() - started
    requests.post(f"{sandbox.url}/_sandbox/stats/reset", timeout=10).raise_for_status()

    run = sync_entity(integration_id=sm8_integration.pk, entity="pricebook_items", mode="full")

    calls = sandbox_stats(sandbox, "servicem8")["requests_by_path"]
    assert calls.get(LIST) == math.ceil(wanted / PAGE) == 2, (calls, run)
    assert PricebookItem.objects.filter(integration=sm8_integration, kind="material").count() == (
        wanted
    )
    assert seeding < 60, f"seeding {wanted} records took {seeding:.1f} s"
