"""The portal's time zone (portal.middleware.user_timezone_name) in one query: the company the
user works for first, else the company of the client they belong to."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.middleware import user_timezone_name
from tests import factories

pytestmark = pytest.mark.django_db


def zone_of(user) -> tuple[str | None, int]:
    with CaptureQueriesContext(connection) as queries:
        name = user_timezone_name(user)
    return name, len(queries)


def test_a_team_members_company_comes_before_a_client_membership():
    team = factories.TeamMembershipFactory(company__timezone="Australia/Perth")
    factories.ClientMembershipFactory(
        user=team.user, client__integration__company__timezone="Pacific/Auckland"
    )
    assert zone_of(team.user) == ("Australia/Perth", 1)


def test_a_client_user_gets_their_clients_company():
    member = factories.ClientMembershipFactory(
        client__integration__company__timezone="America/Denver"
    )
    assert zone_of(member.user) == ("America/Denver", 1)


def test_the_first_team_membership_wins():
    first = factories.TeamMembershipFactory(company__timezone="Europe/Paris")
    factories.TeamMembershipFactory(user=first.user, company__timezone="Asia/Tokyo")
    assert zone_of(first.user) == ("Europe/Paris", 1)


def test_no_membership_or_no_user_has_no_zone():
    assert zone_of(factories.UserFactory()) == (None, 1)
    assert zone_of(AnonymousUser()) == (None, 0)
