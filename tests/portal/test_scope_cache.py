"""The user's scope (portal.selectors.user_scope) is cached across requests, and any change of
membership or integration applies on the very next request."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/quotes/"


@pytest.fixture(autouse=True)
def _generous_throttle(settings):
    settings.API_THROTTLE_RATE = "100000/minute"


def titles(api) -> set[str]:
    response = api.get(URL)
    assert response.status_code == 200
    return {quote["title"] for quote in response.json()["results"]}


def scope_queries(api) -> int:
    with CaptureQueriesContext(connection) as queries:
        api.get(URL)
    return len([q for q in queries.captured_queries if "membership" in q["sql"]])


def signed_in(user) -> APIClient:
    api = APIClient()
    api.force_login(user)  # a fresh user object per request, as in production
    return api


def test_the_scope_is_read_once_then_cached():
    quote = factories.QuoteFactory(title="mine")
    user = factories.ClientMembershipFactory(client=quote.client).user
    api = signed_in(user)
    assert titles(api) == {"mine"}
    assert scope_queries(api) == 0


def test_a_new_client_membership_is_visible_on_the_next_request():
    mine = factories.QuoteFactory(title="mine")
    other = factories.QuoteFactory(title="other")
    user = factories.ClientMembershipFactory(client=mine.client).user
    api = signed_in(user)
    assert titles(api) == {"mine"}
    membership = factories.ClientMembershipFactory(user=user, client=other.client)
    assert titles(api) == {"mine", "other"}
    membership.delete()
    assert titles(api) == {"mine"}


def test_team_memberships_and_new_integrations_apply_at_once():
    company = factories.CompanyFactory()
    first = factories.QuoteFactory(title="first", integration__company=company)
    user = factories.UserFactory()
    api = signed_in(user)
    assert titles(api) == set()
    team = factories.TeamMembershipFactory(user=user, company=company)
    assert titles(api) == {"first"}
    factories.QuoteFactory(title="second", integration__company=company)
    assert titles(api) == {"first", "second"}  # a new integration of the company
    team.delete()
    assert titles(api) == set()
    assert first.pk


def test_an_integration_sync_save_keeps_the_cache():
    quote = factories.QuoteFactory(title="mine")
    user = factories.ClientMembershipFactory(client=quote.client).user
    api = signed_in(user)
    titles(api)
    integration = quote.integration
    integration.save(update_fields=["updated_at"])
    assert scope_queries(api) == 0
