"""A head office's client users see its sites' jobs and quotes; a site's users do not see the
head office's (portal.selectors.user_scope). A deleted or inactive site grants nothing."""

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.selectors import job_list_visible_to
from quotes.selectors import quote_list_visible_to
from tests import factories
from tests.api.conftest import make_tenant, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def offices():
    hq = make_tenant("HQ")
    site = make_tenant("SITE", company=hq.company, integration=hq.integration)
    other = make_tenant("OTHER", company=hq.company, integration=hq.integration)
    site.client.parent = hq.client
    site.client.save(update_fields=["parent"])
    hq_user = factories.ClientMembershipFactory(client=hq.client).user
    site_user = factories.ClientMembershipFactory(client=site.client).user
    return hq, site, other, hq_user, site_user


def _quote_ids(api) -> set[int]:
    response = api.get(reverse("api:quotes:list"))
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_head_office_user_sees_its_sites_quotes_and_jobs(offices):
    hq, site, other, hq_user, _ = offices
    api = token_client(hq_user)
    assert _quote_ids(api) == {hq.quote.pk, site.quote.pk}
    assert api.get(reverse("api:quotes:detail", args=[site.quote.pk])).status_code == 200
    assert api.get(reverse("api:quotes:detail", args=[other.quote.pk])).status_code == 404
    assert set(job_list_visible_to(user=hq_user).values_list("pk", flat=True)) == {
        hq.job.pk,
        site.job.pk,
    }


def test_a_site_user_does_not_see_the_head_office(offices):
    hq, site, _, _, site_user = offices
    api = token_client(site_user)
    assert _quote_ids(api) == {site.quote.pk}
    assert api.get(reverse("api:quotes:detail", args=[hq.quote.pk])).status_code == 404
    assert set(job_list_visible_to(user=site_user).values_list("pk", flat=True)) == {site.job.pk}


@pytest.mark.parametrize("change", ["deleted", "inactive"])
def test_a_deleted_or_inactive_site_grants_nothing(offices, change):
    hq, site, _, hq_user, _ = offices
    if change == "deleted":
        site.client.remote_deleted_at = timezone.now()
    else:
        site.client.is_active = False
    site.client.save()
    # (the quote itself stays live: only the parent link must not reach it)
    visible = set(quote_list_visible_to(user=hq_user).values_list("pk", flat=True))
    assert visible == {hq.quote.pk}
