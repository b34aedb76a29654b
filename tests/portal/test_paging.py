"""Keyset paging walks every row exactly once, in order, across ties and NULLs, both ways."""

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone

from portal.paging import keyset_page
from quotes.models import Quote
from tests import factories

pytestmark = pytest.mark.django_db


def walk(queryset, **kwargs):
    seen, token, pages = [], None, 0
    while True:
        page = keyset_page(queryset, token, size=4, **kwargs)
        seen += [row.pk for row in page.object_list]
        pages += 1
        assert pages < 50
        if not page.has_next:
            return seen
        token = page.next_token


@pytest.mark.parametrize(
    ("field", "descending", "order"),
    [
        ("valid_until", False, ("valid_until", "pk")),  # NULLs last
        ("sent_at", True, ("-sent_at", "-pk")),  # NULLs first
    ],
)
def test_walk_matches_the_full_ordering(field, descending, order):
    integration = factories.IntegrationFactory()
    now = timezone.now()
    for n in range(23):
        factories.QuoteFactory(
            integration=integration,
            valid_until=None if n % 5 == 0 else date(2026, 1, 1) + timedelta(days=n % 3),
            sent_at=None if n % 4 == 0 else now - timedelta(hours=n % 3),
        )
    queryset = Quote.objects.filter(integration=integration)
    expected = list(queryset.order_by(*order).values_list("pk", flat=True))
    assert walk(queryset, field=field, descending=descending) == expected


def test_a_tampered_token_is_the_first_page():
    integration = factories.IntegrationFactory()
    factories.QuoteFactory(integration=integration)
    page = keyset_page(
        Quote.objects.all(), "%%not-base64", size=4, field="sent_at", descending=True
    )
    assert page.is_first and len(page.object_list) == 1


def test_list_pages_link_onwards(client):
    member = factories.ClientMembershipFactory()
    for _ in range(55):
        factories.QuoteFactory(integration=member.client.integration, client=member.client)
    client.force_login(member.user)
    first = client.get("/quotes/?show=all").content.decode()
    assert "Next page" in first
    token = first.split("after=")[1].split('"')[0].replace("&amp;", "&")
    second = client.get(f"/quotes/?show=all&after={token}").content.decode()
    assert "First page" in second and "Next" not in second
    assert len(re.findall(r'href="/quotes/\d+/"', second)) == 5
