"""The admin's sync status dashboard: its numbers are the database's."""

import re
import uuid
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from integrations.providers.servicem8.provider import ServiceM8Provider
from integrations.ratelimit import RateLimiter
from integrations.services import provider_for
from sync.alerts import failing_entities
from sync.dashboard import sync_dashboard
from sync.models import OutboxEvent, SyncError, SyncRun
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration(company, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # creates its beat schedules
        return factories.IntegrationFactory(
            company=company, external_account_id=f"acct-{uuid.uuid4().hex[:8]}"
        )


@pytest.fixture
def signed_in(client, integration):
    client.force_login(factories.TeamMembershipFactory(company=integration.company).user)
    return client


def add_run(integration, entity, status, *, ago, seconds=30, mode="full", **counts):
    started = timezone.now() - ago
    return SyncRun.objects.create(
        integration=integration,
        entity=entity,
        mode=mode,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        heartbeat_at=started,
        **counts,
    )


def cell(page: str, integration_id: int, entity: str, field: str) -> str:
    block = page.split(f'data-integration="{integration_id}"', 1)[1]
    row = block.split(f'<tr data-entity="{entity}">', 1)[1].split("</tr>", 1)[0]
    match = re.search(rf'data-field="{field}">(.*?)</(?:td|span)>', row, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def card_classes(page: str, integration_id: int) -> set[str]:
    """The classes of the integration's card (its opening tag)."""
    match = re.search(rf'<div class="([^"]*)" data-integration="{integration_id}">', page)
    return set(match.group(1).split())


def badge(page: str, integration_id: int) -> str:
    block = page.split(f'data-integration="{integration_id}"', 1)[1]
    return re.search(r'<span class="ops-badge [^"]*">([^<]*)</span>', block).group(1)


def test_entity_rows_match_the_runs_and_errors(signed_in, integration):
    ok = add_run(integration, "clients", "success", ago=timedelta(hours=5), fetched_count=60)
    last = add_run(
        integration,
        "clients",
        "partial",
        ago=timedelta(hours=1),
        mode="incremental",
        fetched_count=7,
        created_count=2,
        updated_count=3,
        deleted_count=1,
        failed_count=1,
    )
    SyncError.objects.create(run=last, integration=integration, entity="clients", message="bad")
    SyncError.objects.create(
        integration=integration, entity="clients", message="old", resolved_at=timezone.now()
    )
    page = signed_in.get("/admin/sync/dashboard/").content.decode()

    assert cell(page, integration.pk, "clients", "last_success") == (
        f"{timezone.localtime(ok.finished_at):%Y-%m-%d %H:%M}"
    )
    assert cell(page, integration.pk, "clients", "last_status") == "partial"
    for field, value in [
        ("fetched", 7),
        ("created", 2),
        ("updated", 3),
        ("deleted", 1),
        ("failed", 1),
        ("open_errors", 1),
    ]:
        assert cell(page, integration.pk, "clients", field) == str(value), field
    assert cell(page, integration.pk, "jobs", "last_success") == "never"
    # Open errors are a warning: the card is healthy (not "unhealthy", which contains it).
    assert "ops-healthy" in card_classes(page, integration.pk)
    assert "ops-unhealthy" not in card_classes(page, integration.pk)
    assert badge(page, integration.pk) == "healthy"
    assert 'id="unhealthy-count"' not in page
    assert "1 record(s) failed to sync" in page


def test_next_runs_come_from_the_beat_schedules(signed_in, integration):
    [status] = sync_dashboard(integrations=type(integration).objects.filter(pk=integration.pk))
    modes = {s.mode: s for s in status.schedules}
    assert set(modes) == {"incremental", "full"}
    now = timezone.now()
    assert now <= modes["incremental"].next_run_at <= now + timedelta(minutes=15)
    assert now <= modes["full"].next_run_at <= now + timedelta(days=1)
    page = signed_in.get("/admin/sync/dashboard/").content.decode()
    assert 'data-mode="incremental"' in page and 'data-mode="full"' in page


def test_budget_used_is_the_rate_limiters_count(signed_in, integration):
    limiter = RateLimiter(
        key=provider_for(integration).context.rate_limit_key,
        windows=ServiceM8Provider.rate_limits,
        provider="servicem8",
    )
    for _ in range(7):
        limiter.acquire()
    [status] = sync_dashboard(integrations=type(integration).objects.filter(pk=integration.pk))
    assert (status.budget.used, status.budget.limit) == (7, 20_000)
    page = signed_in.get("/admin/sync/dashboard/").content.decode()
    assert '<span data-field="budget-used">7</span> / 20000 calls in the last 24 hours' in page


def test_unhealthy_integrations_stand_out(signed_in, integration, company, settings):
    for hours in range(settings.ALERT_SYNC_FAILURES_IN_A_ROW):
        add_run(integration, "jobs", "failed", ago=timedelta(hours=hours + 1))
    reauth = factories.IntegrationFactory(company=company, status="needs_reauth")
    budget = factories.IntegrationFactory(company=company)
    deferred = add_run(budget, "clients", "deferred", ago=timedelta(minutes=5))
    SyncRun.objects.filter(pk=deferred.pk).update(retry_at=timezone.now() + timedelta(hours=3))
    OutboxEvent.objects.create(
        integration=budget,
        action="quote.decide",
        aggregate_type="q",
        aggregate_id="1",
        idempotency_key="k1",
        status="dead",
    )
    healthy = factories.IntegrationFactory(company=company)

    statuses = {
        s.integration.pk: s
        for s in sync_dashboard(integrations=type(integration).objects.filter(company=company))
    }
    assert any("Failing repeatedly" in p for p in statuses[integration.pk].problems)
    assert any("Needs reauthorization" in p for p in statuses[reauth.pk].problems)
    assert any("Out of API budget" in p for p in statuses[budget.pk].problems)
    assert any("dead letters" in w for w in statuses[budget.pk].warnings)
    assert statuses[healthy.pk].healthy

    page = signed_in.get("/admin/sync/dashboard/").content.decode()
    assert "3 unhealthy" in page
    assert badge(page, integration.pk) == "unhealthy" and badge(page, healthy.pk) == "healthy"
    assert "ops-unhealthy" in card_classes(page, integration.pk)
    # Unhealthy first.
    assert page.index(f'data-integration="{healthy.pk}"') > page.index(
        f'data-integration="{reauth.pk}"'
    )


def test_the_chart_adds_up_a_week_of_runs(signed_in, integration):
    add_run(integration, "clients", "success", ago=timedelta(days=1), seconds=40, fetched_count=10)
    add_run(integration, "jobs", "failed", ago=timedelta(days=1), seconds=20, fetched_count=5)
    add_run(integration, "clients", "success", ago=timedelta(days=3), fetched_count=8)
    add_run(integration, "clients", "success", ago=timedelta(days=30), fetched_count=999)
    [status] = sync_dashboard(integrations=type(integration).objects.filter(pk=integration.pk))
    assert len(status.days) == 7
    week = timezone.now() - timedelta(days=6)
    expected = SyncRun.objects.filter(
        integration=integration, started_at__gte=week.replace(hour=0, minute=0)
    ).aggregate(n=Sum("fetched_count"))["n"]
    assert sum(d.records for d in status.days) == expected == 23
    assert sum(d.failed for d in status.days) == 1
    assert sum(d.duration_seconds for d in status.days) == 90
    page = signed_in.get("/admin/sync/dashboard/").content.decode()
    assert "<svg" in page and page.count('<rect class="bar') == 7
    assert "15 records in 2 run(s), 1 failed, 60 s syncing" in page


def test_each_company_sees_only_its_integrations(client, integration):
    other = factories.IntegrationFactory()
    client.force_login(factories.TeamMembershipFactory(company=integration.company).user)
    page = client.get("/admin/sync/dashboard/").content.decode()
    assert f'data-integration="{integration.pk}"' in page
    assert f'data-integration="{other.pk}"' not in page
    assert client.get(f"/admin/sync/dashboard/?integration={other.pk}").status_code == 404
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/sync/dashboard/").content.decode()
    assert f'data-integration="{other.pk}"' in page


def test_the_admin_links_to_the_pages(signed_in, integration, client):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    assert "/admin/sync/dashboard/" in client.get("/admin/").content.decode()
    change = client.get(f"/admin/integrations/integration/{integration.pk}/change/")
    assert f"/admin/sync/import/?integration={integration.pk}" in change.content.decode()


def test_failing_repeatedly_is_the_alerts_rule_and_setting(signed_in, integration, settings):
    """One rule for the dashboard and the alert: running, deferred and cancelled runs neither
    count nor break the streak, and ALERT_SYNC_FAILURES_IN_A_ROW sets its length."""
    settings.ALERT_SYNC_FAILURES_IN_A_ROW = 3
    add_run(integration, "jobs", "failed", ago=timedelta(hours=5), error_summary="boom 1")
    add_run(integration, "jobs", "failed", ago=timedelta(hours=4), error_summary="boom 2")
    add_run(integration, "jobs", "cancelled", ago=timedelta(hours=3))
    add_run(integration, "jobs", "failed", ago=timedelta(hours=2), error_summary="boom 3")
    add_run(integration, "jobs", "deferred", ago=timedelta(hours=1))
    only = type(integration).objects.filter(pk=integration.pk)

    assert failing_entities(integration_id=integration.pk) == {"jobs": "boom 3"}
    [status] = sync_dashboard(integrations=only)
    assert not status.healthy
    assert status.problems == ["Failing repeatedly: the last 3 runs of jobs failed. boom 3"]
    page = signed_in.get("/admin/sync/dashboard/").content.decode()
    assert badge(page, integration.pk) == "unhealthy"

    # A longer threshold: neither the alert nor the dashboard calls it failing any more.
    settings.ALERT_SYNC_FAILURES_IN_A_ROW = 4
    assert failing_entities(integration_id=integration.pk) == {}
    [status] = sync_dashboard(integrations=only)
    assert status.healthy
    # A shorter one: two are enough.
    settings.ALERT_SYNC_FAILURES_IN_A_ROW = 2
    [status] = sync_dashboard(integrations=only)
    assert status.problems == ["Failing repeatedly: the last 2 runs of jobs failed. boom 3"]
    # A success in between breaks the streak for both.
    add_run(integration, "jobs", "success", ago=timedelta(minutes=30))
    assert failing_entities(integration_id=integration.pk) == {}
    [status] = sync_dashboard(integrations=only)
    assert status.healthy
