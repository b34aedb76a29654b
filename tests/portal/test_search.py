"""The search box: substrings of the text columns or of the client's name, case-insensitive,
LIKE wildcards taken literally, within the user's scope."""

import pytest

from portal.search import text_search
from quotes.models import Quote
from tests import factories

pytestmark = pytest.mark.django_db


def test_substring_client_name_and_literal_wildcards():
    integration = factories.IntegrationFactory()
    acme = factories.ClientFactory(integration=integration, name="Acme Plumbing")
    other = factories.ClientFactory(integration=integration, name="Bayside")
    by_title = factories.QuoteFactory(integration=integration, client=other, title="Hot Water 50%")
    by_client = factories.QuoteFactory(integration=integration, client=acme, title="Tap")
    by_number = factories.QuoteFactory(integration=integration, client=other, number="Q-7781")
    factories.QuoteFactory(integration=integration, client=other, title="Hot Water 500")

    def found(query):
        quotes = Quote.objects.filter(integration=integration)
        return set(text_search(quotes, query, columns=("number", "title")))

    assert found("water 50%") == {by_title}  # "%" is a literal, not a wildcard
    assert found("ACME") == {by_client}
    assert found("778") == {by_number}
    assert found("nothing like it") == set()
    assert found("_") == set()


def test_the_search_box_stays_within_the_users_scope(client):
    member = factories.ClientMembershipFactory()
    factories.QuoteFactory(title="Secret boiler", number="Q-SECRET")  # another tenant
    mine = factories.QuoteFactory(
        integration=member.client.integration, client=member.client, title="Boiler service"
    )
    client.force_login(member.user)
    page = client.get("/quotes/?show=all&q=boiler").content.decode()
    assert mine.number in page and "Q-SECRET" not in page
