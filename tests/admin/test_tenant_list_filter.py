"""The company and integration filters of a synced table's changelist list the user's own,
read from those tables: no SELECT DISTINCT over the synced rows, no other company's names."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import Contact
from tests import factories
from tests.admin.conftest import changelist_url

pytestmark = pytest.mark.django_db


def test_a_team_member_filters_by_their_own_integrations(admin_a, tenant_a, tenant_b):
    # (a filter with one choice is not shown: two integrations, two companies' worth)
    second = factories.IntegrationFactory(company=tenant_a.company, name="Acme second")
    factories.TeamMembershipFactory(user=tenant_a.admin, company=factories.CompanyFactory())
    with CaptureQueriesContext(connection) as queries:
        page = admin_a.get(changelist_url(Contact))
    assert page.status_code == 200
    body = page.content.decode()
    assert tenant_a.integration.name in body and second.name in body
    assert tenant_b.integration.name not in body and tenant_b.company.name not in body
    scans = [q["sql"] for q in queries if "DISTINCT" in q["sql"] and "portal_contact" in q["sql"]]
    assert scans == []


def test_a_superuser_sees_every_integration(client, operator, tenant_a, tenant_b):
    client.force_login(operator)
    body = client.get(changelist_url(Contact)).content.decode()
    assert tenant_a.integration.name in body and tenant_b.integration.name in body
