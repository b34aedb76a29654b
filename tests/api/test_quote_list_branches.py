"""A scope of several integrations or clients reads each quotes page as one index walk per
integration or client (portal.api.pagination._Branched): the pages must hold exactly the rows,
in exactly the order, that the plain query gives, forwards and backwards, with filters."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import Integration
from quotes.models import Quote
from tests import factories
from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_pages(settings):
    settings.API_PAGE_SIZE = 4


@pytest.fixture
def tenants():
    company = factories.CompanyFactory(name="home")
    sm8 = factories.IntegrationFactory(company=company)
    st = factories.IntegrationFactory(company=company, provider=Integration.Provider.SERVICETITAN)
    foreign = factories.IntegrationFactory()
    head = factories.ClientFactory(integration=sm8, name="head office")
    site = factories.ClientFactory(integration=sm8, name="site", parent=head)
    st_client = factories.ClientFactory(integration=st)
    gone_client = factories.ClientFactory(integration=st, remote_deleted_at=timezone.now())
    other = factories.ClientFactory(integration=foreign)
    # Interleaved ids: every walk has other tenants' rows between its own.
    for i in range(15):
        factories.QuoteFactory(integration=sm8, client=head, status=("sent", "draft")[i % 2])
        factories.QuoteFactory(integration=foreign, client=other)
        status = ("sent", "approved")[i % 3 == 0]
        factories.QuoteFactory(integration=st, client=st_client, status=status)
        factories.QuoteFactory(integration=sm8, client=site)
        factories.QuoteFactory(integration=foreign, client=other)
    # Long runs from one walk: a page (4 + 1 rows) must come from one branch alone.
    for _ in range(6):
        factories.QuoteFactory(integration=sm8, client=head)
    for _ in range(6):
        factories.QuoteFactory(integration=st, client=st_client)
    for _ in range(6):
        factories.QuoteFactory(integration=sm8, client=site)
    factories.QuoteFactory(integration=st, client=gone_client)  # hidden: its client is deleted
    factories.QuoteFactory(integration=sm8, client=head, remote_deleted_at=timezone.now())
    staff = factories.TeamMembershipFactory(company=company).user
    head_user = factories.ClientMembershipFactory(client=head).user
    return {"staff": staff, "head_user": head_user, "sm8": sm8, "st": st, "site": site}


def expected(integrations=None, clients=None, status=None) -> list[int]:
    quotes = Quote.objects.filter(remote_deleted_at__isnull=True, client__remote_deleted_at=None)
    if integrations:
        quotes = quotes.filter(integration__in=integrations)
    if clients:
        quotes = quotes.filter(client__in=clients)
    if status:
        quotes = quotes.filter(status=status)
    return list(quotes.order_by("-id").values_list("id", flat=True))


def walk(api, url: str, link: str = "next") -> tuple[list[list[int]], str | None]:
    pages = []
    other = None
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([q["id"] for q in body["results"]])
        other = body["next" if link == "previous" else "previous"]
        url = body[link]
    return pages, other


def cursor_path(link: str) -> str:
    query = parse_qs(urlsplit(link).query)
    return "/api/v1/quotes/?" + "&".join(f"{k}={v[0]}" for k, v in query.items())


def test_a_team_members_pages_are_the_plain_querys_rows(tenants, small_pages):
    api = token_client(tenants["staff"])
    want = expected(integrations=[tenants["sm8"], tenants["st"]])
    pages, _ = walk(api, "/api/v1/quotes/")
    assert [pk for page in pages for pk in page] == want
    assert all(len(page) == 4 for page in pages[:-1])
    # Backwards from the last page, by the `previous` links.
    last = api.get("/api/v1/quotes/").json()
    while last["next"]:
        last = api.get(cursor_path(last["next"])).json()
    back, _ = walk(api, cursor_path(last["previous"]), link="previous")
    assert [pk for page in reversed(back) for pk in page] + [
        q["id"] for q in last["results"]
    ] == want


def test_filters_apply_inside_every_walk(tenants, small_pages):
    api = token_client(tenants["staff"])
    pages, _ = walk(api, "/api/v1/quotes/?status=sent")
    assert [pk for page in pages for pk in page] == expected(
        integrations=[tenants["sm8"], tenants["st"]], status="sent"
    )


def test_a_head_office_user_walks_its_clients(tenants, small_pages):
    api = token_client(tenants["head_user"])
    head = tenants["site"].parent
    pages, _ = walk(api, "/api/v1/quotes/")
    assert [pk for page in pages for pk in page] == expected(clients=[head, tenants["site"]])


needs_union_limits = pytest.mark.skipif(
    not connection.features.supports_slicing_ordering_in_compound,
    reason="the branched page needs LIMIT inside UNION (PostgreSQL; SQLite takes the plain query)",
)


@needs_union_limits
def test_the_page_is_one_query_of_index_walks(tenants, small_pages):
    api = token_client(tenants["staff"])
    api.get("/api/v1/quotes/")  # scope cached
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/quotes/").status_code == 200
    pages = [q["sql"] for q in queries if "quotes_quote" in q["sql"]]
    assert len(pages) == 1
    assert pages[0].count("UNION ALL") == 1  # two walks: one per integration


def test_one_integration_or_client_keeps_the_plain_query(tenants, small_pages):
    site_user = factories.ClientMembershipFactory(client=tenants["site"]).user
    api = token_client(site_user)
    with CaptureQueriesContext(connection) as queries:
        pages, _ = walk(api, "/api/v1/quotes/")
    assert [pk for page in pages for pk in page] == expected(clients=[tenants["site"]])
    assert not any("UNION" in q["sql"] for q in queries)


@needs_union_limits
def test_a_branched_page_is_the_plain_querys_page(tenants):
    from portal.api.pagination import _Branched
    from quotes.selectors import quote_list_visible_to

    quotes = quote_list_visible_to(user=tenants["head_user"]).values("id").order_by("-id")
    branched = _Branched(quotes, {"client_id": (tenants["site"].parent_id, tenants["site"].pk)})
    for stop in (1, 5, 50):
        page = branched[0:stop]
        assert str(page.query).count("UNION ALL") == 1  # the walks, compiled once per field
        assert list(page) == list(quotes[0:stop])


def crafted(query: str) -> str:
    import base64

    return "/api/v1/quotes/?cursor=" + base64.b64encode(query.encode()).decode()


def test_cursor_offsets_forwards_and_backwards(tenants, small_pages):
    api = token_client(tenants["staff"])
    want = expected(integrations=[tenants["sm8"], tenants["st"]])
    position = want[5]
    for offset in (0, 1, 3, 9):
        forward = api.get(crafted(f"o={offset}&p={position}"))
        assert forward.status_code == 200, forward.content
        after = [pk for pk in want if pk < position]
        assert [q["id"] for q in forward.json()["results"]] == after[offset : offset + 4]
        backward = api.get(crafted(f"o={offset}&r=1&p={position}"))
        assert backward.status_code == 200, backward.content
        before = [pk for pk in want if pk > position]  # newest first
        got = [q["id"] for q in backward.json()["results"]]
        assert got == before[::-1][offset : offset + 4][::-1]


@pytest.mark.parametrize("position", ["abc", "", "1.5", "99999999999999999999", "-" + "9" * 20])
def test_a_cursor_position_that_is_no_id_is_bad_input(tenants, position):
    for user in (tenants["staff"], tenants["head_user"]):
        response = token_client(user).get(crafted(f"p={position}"))
        assert response.status_code == 400, (position, response.content)
        assert "cursor" in str(response.json())


def test_a_position_equal_to_the_placeholder_still_answers(tenants):
    from portal.api.pagination import _BRANCH_PLACEHOLDER

    response = token_client(tenants["staff"]).get(crafted(f"p={_BRANCH_PLACEHOLDER}"))
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_without_limits_inside_a_union_the_plain_query_answers(tenants, small_pages, monkeypatch):
    """SQLite (`make run`) takes no LIMIT inside a UNION: the pages come from the plain query."""
    monkeypatch.setattr(connection.features, "supports_slicing_ordering_in_compound", False)
    with CaptureQueriesContext(connection) as queries:
        pages, _ = walk(token_client(tenants["staff"]), "/api/v1/quotes/")
    assert [pk for page in pages for pk in page] == expected(
        integrations=[tenants["sm8"], tenants["st"]]
    )
    assert not any("UNION" in q["sql"] for q in queries)
