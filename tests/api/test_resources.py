"""The read endpoints: what each role sees, filters, includes, pagination, errors."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.models import Job
from tests import factories
from tests.api.conftest import FOREIGN, SIBLING

pytestmark = pytest.mark.django_db

API = "/api/v1"


def names(response, key="id"):
    assert response.status_code == 200, response.content
    return [row[key] for row in response.json()["results"]]


def test_client_user_sees_only_their_clients_records(world, client_api):
    assert names(client_api.get(f"{API}/clients/")) == [world.home.client.pk]
    assert names(client_api.get(f"{API}/jobs/")) == [world.home.job.pk]
    assert names(client_api.get(f"{API}/quotes/")) == [world.home.quote.pk]
    assert names(client_api.get(f"{API}/contacts/")) == [world.home.contact.pk]
    assert names(client_api.get(f"{API}/staff/")) == []
    assert names(client_api.get(f"{API}/companies/")) == []


def test_staff_see_their_whole_company(world, staff_api):
    home, sibling = world.home, world.sibling
    assert set(names(staff_api.get(f"{API}/clients/"))) == {home.client.pk, sibling.client.pk}
    assert set(names(staff_api.get(f"{API}/jobs/"))) == {home.job.pk, sibling.job.pk}
    assert set(names(staff_api.get(f"{API}/staff/"))) == {home.staff.pk, sibling.staff.pk}
    assert names(staff_api.get(f"{API}/companies/")) == [home.company.pk]
    body = staff_api.get(f"{API}/companies/{home.company.pk}/").json()
    assert body["name"] == home.company.name


def test_superusers_see_everything(world):
    from tests.api.conftest import token_client

    admin = token_client(factories.UserFactory(is_superuser=True, is_staff=True))
    assert len(names(admin.get(f"{API}/companies/"))) >= 2
    assert world.foreign.quote.pk in names(admin.get(f"{API}/quotes/"))


def test_job_filters(world, staff_api):
    home = world.home
    later = factories.JobFactory(
        integration=home.integration,
        client=home.client,
        status=Job.Status.COMPLETED,
        scheduled_start=timezone.now() + timedelta(days=10),
    )
    url = f"{API}/jobs/"
    assert names(staff_api.get(url, {"status": "completed"})) == [later.pk]
    assert set(names(staff_api.get(url, {"status": ["completed", "pending"]}))) == {
        later.pk,
        home.job.pk,
        world.sibling.job.pk,
    }
    assert set(names(staff_api.get(url, {"client": world.sibling.client.pk}))) == {
        world.sibling.job.pk
    }
    since = (timezone.now() + timedelta(days=5)).isoformat()
    assert names(staff_api.get(url, {"scheduled_from": since})) == [later.pk]
    assert later.pk not in names(staff_api.get(url, {"scheduled_to": since}))
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert names(staff_api.get(url, {"updated_since": future})) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "nonsense"}, "status"),
        ({"client": "abc"}, "client"),
        ({"client": str(2**70)}, "client"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"scheduled_from": "0001-01-01T00:00:00-23:59"}, "scheduled_from"),
        ({"include": "activities,secrets"}, "include"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_bad_filter_values_are_400_with_field_details(world, staff_api, params, field):
    response = staff_api.get(f"{API}/jobs/", params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert field in error["fields"] and error["fields"][field]


def test_includes_are_left_out_unless_asked_for(world, client_api):
    plain = client_api.get(f"{API}/jobs/{world.home.job.pk}/").json()
    assert not {"activities", "materials", "attachments"} & set(plain)
    full = client_api.get(
        f"{API}/jobs/{world.home.job.pk}/", {"include": "activities,materials,attachments"}
    ).json()
    assert full["activities"][0]["notes"] == "home visit"
    assert full["activities"][0]["staff"][0]["name"] == "home tech"
    assert full["materials"][0]["name"] == "home pipe"
    assert full["attachments"][0]["file_name"] == "home.pdf"
    listed = client_api.get(f"{API}/jobs/", {"include": "materials"}).json()["results"]
    assert listed[0]["materials"][0]["name"] == "home pipe"
    assert "activities" not in listed[0]


def test_cursor_pagination_walks_every_row_without_counting(world, staff_api, settings):
    settings.API_PAGE_SIZE = 2
    for _ in range(3):
        factories.QuoteFactory(integration=world.home.integration, client=world.home.client)
    seen, url = [], f"{API}/quotes/"
    with CaptureQueriesContext(connection) as queries:
        while url:
            body = staff_api.get(url).json()
            assert len(body["results"]) <= 2
            seen += [row["id"] for row in body["results"]]
            url = body["next"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 5
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def test_page_size_is_capped(world, staff_api, settings):
    settings.API_MAX_PAGE_SIZE = 1
    assert len(names(staff_api.get(f"{API}/quotes/", {"page_size": 50}))) == 1


def test_quote_detail_has_lines_amounts_and_no_decision_yet(world, client_api):
    body = client_api.get(f"{API}/quotes/{world.home.quote.pk}/").json()
    assert [i["id"] for i in body["line_items"]] == [i.pk for i in world.home.line_items]
    assert body["amounts"]["total"] == "100.00"
    assert body["decision"] is None


def test_quote_filters(world, staff_api):
    url = f"{API}/quotes/"
    assert names(staff_api.get(url, {"status": "approved"})) == []
    assert set(names(staff_api.get(url, {"client": world.home.client.pk}))) == {world.home.quote.pk}
    bad = staff_api.get(url, {"updated_since": "2020-02-30T00:00:00Z"})
    assert bad.status_code == 400 and "updated_since" in bad.json()["error"]["fields"]


def test_deleted_records_are_not_served(world, client_api):
    world.home.quote.remote_deleted_at = timezone.now()
    world.home.quote.save()
    assert client_api.get(f"{API}/quotes/{world.home.quote.pk}/").status_code == 404


def test_no_response_leaks_other_tenants(world, client_api, staff_api):
    for path in (
        "clients/",
        "jobs/?include=activities,materials,attachments",
        "quotes/",
        "contacts/",
        "staff/",
        "companies/",
    ):
        assert FOREIGN not in client_api.get(f"{API}/{path}").content.decode()
        assert SIBLING not in client_api.get(f"{API}/{path}").content.decode()
        assert FOREIGN not in staff_api.get(f"{API}/{path}").content.decode()


def test_unknown_ids_are_a_json_404(world, staff_api):
    response = staff_api.get(f"{API}/quotes/{2**62}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_extreme_but_valid_time_zone_offsets_are_accepted(world, staff_api):
    # Found by Schemathesis: PostgreSQL refuses offsets beyond ±15:59.
    response = staff_api.get(f"{API}/contacts/", {"updated_since": "2497-08-06T11:30:31+20:45"})
    assert response.status_code == 200
    assert response.json()["results"] == []
