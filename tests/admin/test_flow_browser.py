"""The admin's whole flow in Chromium, against the provider sandbox and a real Celery worker:
configure a sandbox ServiceM8 integration; test the connection, first successfully, then with
a wrong key (a clear message), then fixed; run an import and watch the progress reach 100%;
check the dashboard's numbers against the database; make a write to the provider die on a
sandbox fault, fix the fault, and retry the dead letter from the admin.

Transactional (the live server and the worker process read the test database, PostgreSQL);
the ORM is used only before and after the browser acts. Screenshots: artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from django.db import transaction

from integrations.models import Integration
from integrations.providers.servicem8.provider import ServiceM8Provider
from integrations.sandbox import accounts
from portal.models import TeamMembership
from sync.models import OutboxEvent, SyncRun
from sync.outbox import outbox_event_enqueue
from tests import factories
from tests.browser.support import screenshot
from tests.sync.conftest import (  # noqa: F401 - fixtures
    sandbox,
    sandbox_clean,
    sandbox_control,
    sandbox_stats,
    wait_for,
    workers,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]
PASSWORD = "correct-horse-battery"  # noqa: S105 - the factories' password
API = "/servicem8/api_1.0"
ENTITIES = ServiceM8Provider.entities  # what an import offers and runs, in order
KEY = accounts.SERVICEM8_ACCOUNT.api_key


def sign_in(tab, email: str) -> None:
    tab.goto("/admin/login/")
    tab.fill("#id_username", email)
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_url("**/admin/")


def replace_credentials(tab, credentials: dict) -> None:
    tab.get_by_role("link", name="Replace credentials").click()
    tab.fill("#id_credentials", json.dumps(credentials))
    tab.click("input[type=submit]")
    tab.wait_for_url(re.compile(r".*/integration/\d+/change/$"))


def test_connect_import_check_the_dashboard_and_retry_a_dead_letter(
    page,  # noqa: F811
    sandbox_clean,  # noqa: F811
    workers,  # noqa: F811
):
    box = sandbox_clean
    # Small pages and a little latency: the import takes a few seconds, page by page.
    sandbox_control(box, "config", {"servicem8": {"page_size": 10}})
    sandbox_control(box, "faults", {"provider": "servicem8", "latency_ms": 40})
    company = factories.CompanyFactory(name="Acme Plumbing")
    admin = factories.TeamMembershipFactory(
        company=company, role=TeamMembership.Role.ADMIN, user__email="admin@acme.test"
    ).user
    workers("flow")
    sign_in(page, admin.email)

    # -- configure a sandbox ServiceM8 integration --------------------------------------------
    page.goto("/admin/integrations/integration/add/")
    page.fill("#id_name", "Acme ServiceM8 sandbox")
    page.select_option("#id_provider", "servicem8")
    page.select_option("#id_environment", "sandbox")
    page.fill("#id_new_credentials", json.dumps({"api_key": KEY}))
    # Team admins may point an integration at the provider sandbox's host (only operators
    # may use any other address: an override receives the deployment's app secrets).
    page.fill("#id_base_url_override", box.url)
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(r".*/integration/\d+/change/$"))
    integration = Integration.objects.get(company=company)
    assert integration.credentials == {"api_key": KEY} and integration.status == "active"
    assert integration.base_url_override == box.url

    # -- test the connection: right key, wrong key, right key again ---------------------------
    status = page.locator("#connection-status")
    page.click("#test-connection")
    page.wait_for_load_state()
    assert "Connected" in status.inner_text() and "ok" in status.get_attribute("class")
    screenshot(page, "flow-01-connection-ok")
    # That test learnt the account id, which keys the account's shared budget from now on:
    # the one call made before it counted under the integration's own key.
    integration.refresh_from_db()
    assert integration.external_account_id == accounts.SERVICEM8_ACCOUNT.uuid
    before_account = sandbox_stats(box, "servicem8")["requests_total"]
    assert before_account == 1

    replace_credentials(page, {"api_key": "sm8-wrong-key-000"})
    page.click("#test-connection")
    page.wait_for_load_state()
    message = status.inner_text()
    assert "failed" in status.get_attribute("class")
    assert "Connection failed" in message and "ServiceM8 refused the credentials" in message
    screenshot(page, "flow-02-connection-wrong-key")

    replace_credentials(page, {"api_key": KEY})
    page.click("#test-connection")
    page.wait_for_load_state()
    assert "Connected" in status.inner_text()
    integration.refresh_from_db()
    assert integration.status == "active"

    # -- import, watching the progress reach 100% ---------------------------------------------
    page.click("a.ops-link-import")
    page.wait_for_url("**/admin/sync/import/?integration=*")
    entities = page.locator("input[name=entities]")
    assert entities.count() == len(ENTITIES) and all(
        entities.nth(i).is_checked() for i in range(entities.count())
    )
    page.click("input[value='Start import']")
    page.wait_for_url(re.compile(r".*/admin/sync/import/\d+/$"))
    # Mid-way: some entity is running while later ones still wait.
    page.wait_for_selector("#import-progress .ops-status-running", timeout=60_000)
    screenshot(page, "flow-03-import-running")
    page.wait_for_selector("#import-state[data-state=finished]", timeout=120_000)
    bars = page.locator("#import-progress [role=progressbar]")
    assert bars.count() == len(ENTITIES)
    for i in range(len(ENTITIES)):
        assert bars.nth(i).get_attribute("aria-valuenow") == "100"
    assert page.locator("#import-progress .ops-status-success").count() == len(ENTITIES)
    screenshot(page, "flow-04-import-done")

    runs = {
        r.entity: r
        for r in SyncRun.objects.filter(integration=integration, mode="full", status="success")
    }
    assert set(runs) == set(ENTITIES)
    for entity, run in runs.items():
        row = page.locator(f'tr[data-entity="{entity}"]')
        fetched = row.locator('[data-field="fetched"]').inner_text().strip()
        assert fetched == f"{run.fetched_count} / {run.fetched_count}", entity
        assert row.locator('[data-field="written"]').inner_text().strip() == str(
            run.created_count + run.updated_count
        )

    # -- the dashboard's numbers are the database's -------------------------------------------
    page.click("#import-done a")
    page.wait_for_url("**/admin/sync/dashboard/?integration=*")
    card = page.locator(f'[data-integration="{integration.pk}"]')
    assert "ops-healthy" in card.get_attribute("class")
    for entity, run in runs.items():
        row = card.locator(f'tr[data-entity="{entity}"]')
        for field in ("fetched", "created", "updated", "deleted", "failed"):
            shown = row.locator(f'td[data-field="{field}"]').inner_text().strip()
            assert shown == str(getattr(run, f"{field}_count")), (entity, field)
        assert row.locator('[data-field="last_status"]').inner_text().strip() == "success"
        assert row.locator('[data-field="open_errors"]').inner_text().strip() == "0"
    used = int(card.locator('[data-field="budget-used"]').inner_text())
    # Against the provider's side of the count, not the function that rendered the figure:
    # every API request the sandbox received (answered or refused) since the account was
    # known (two connection tests, the import's pages, any retries).
    received = sandbox_stats(box, "servicem8")["requests_total"] - before_account
    assert used == received
    assert used >= sum(r.pages_count for r in runs.values()) + 2
    assert card.locator('[data-mode="incremental"]').count() == 1
    screenshot(page, "flow-05-dashboard")

    # -- a write dies on a sandbox fault; fix it; retry the dead letter -----------------------
    quote = next(
        j
        for j in requests.get(
            f"{box.url}{API}/job.json",
            params={"$filter": "status eq 'Quote'"},
            headers={"X-Api-Key": KEY},
            timeout=10,
        ).json()
        if str(j["active"]) == "1"
    )
    # The fault: the provider refuses every request (422), which no retry can fix.
    sandbox_control(
        box, "faults", {"provider": "servicem8", "error_rate": 1.0, "error_statuses": [422]}
    )
    with transaction.atomic():
        event = outbox_event_enqueue(
            integration=integration,
            action="quote.decide",
            aggregate_type="quotes.QuoteDecision",
            aggregate_id="flow-1",
            payload={
                "decision": "approve",
                "quote_external_id": quote["uuid"],
                "notes": "Please start Monday",
                "rejection_reason": "",
                "decided_by": "client@example.test",
            },
            idempotency_key=f"flow-decision-{quote['uuid']}",
        )

    def dead():
        """the outbox event is a dead letter"""
        return OutboxEvent.objects.filter(pk=event.pk, status="dead").exists()

    wait_for(dead, timeout=60)
    applied = sandbox_stats(box, "servicem8").get("writes_applied", {})
    assert applied.get(f"job/{quote['uuid']}", 0) == 0

    page.goto("/admin/sync/outboxevent/?dead=yes")
    row = page.locator("#result_list tbody tr", has_text="quote.decide")
    assert row.count() == 1 and "422" in row.inner_text()
    screenshot(page, "flow-06-dead-letter")
    requests.delete(f"{box.url}/_sandbox/faults", timeout=5).raise_for_status()  # fixed
    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "retry_selected")
    page.click("button[name=index]")
    page.wait_for_load_state()
    assert "Queued 1 dead event(s)" in page.locator("ul.messagelist").inner_text()

    def sent():
        """the retried event was delivered"""
        return OutboxEvent.objects.filter(pk=event.pk, status="sent").exists()

    wait_for(sent, timeout=60)
    stats = sandbox_stats(box, "servicem8")
    assert stats["writes_applied"][f"job/{quote['uuid']}"] == 1  # received once
    page.goto("/admin/sync/outboxevent/?status__exact=sent")
    assert page.locator("#result_list tbody tr", has_text="quote.decide").count() == 1
    screenshot(page, "flow-07-retried")
