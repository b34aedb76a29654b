"""A provider's refusal by field (OutboxEvent.field_errors) in a quote's decision history: the
API's `writeback.field_errors` and the quote page, for the business's team only."""

import pytest
from django.urls import reverse

from sync.models import OutboxEvent

pytestmark = pytest.mark.django_db

API = "/api/v1/quotes"
REFUSAL = {
    "soldBy": ["Technician with id 7012 is not active."],
    "items[0].price": ["The field price must be greater than or equal to 0."],
}


def refused_decision(world, client_api) -> OutboxEvent:
    quote = world.home.quote
    response = client_api.post(f"{API}/{quote.pk}/approve", {}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["writeback"]["field_errors"] == {}
    event = OutboxEvent.objects.get()
    # As the relay leaves an event the provider refused (sync.outbox._failed).
    OutboxEvent.objects.filter(pk=event.pk).update(
        status=OutboxEvent.Status.DEAD,
        last_error="ProviderValidationError: servicetitan: refused",
        field_errors=REFUSAL,
    )
    return event


def test_the_team_reads_the_field_errors_in_the_decision_history(world, client_api, staff_api):
    refused_decision(world, client_api)
    quote = world.home.quote
    history = staff_api.get(f"{API}/{quote.pk}/decisions").json()["results"]
    assert history[0]["writeback"]["status"] == "dead"
    assert history[0]["writeback"]["field_errors"] == REFUSAL
    detail = staff_api.get(f"{API}/{quote.pk}/").json()
    assert detail["decision"]["writeback"]["field_errors"] == REFUSAL


def test_client_users_do_not_see_the_providers_reasons(world, client_api):
    refused_decision(world, client_api)
    quote = world.home.quote
    history = client_api.get(f"{API}/{quote.pk}/decisions").json()["results"]
    assert history[0]["writeback"]["status"] == "dead"
    assert history[0]["writeback"]["field_errors"] == {}
    assert (
        client_api.get(f"{API}/{quote.pk}/").json()["decision"]["writeback"]["field_errors"] == {}
    )


def test_the_quote_page_shows_the_field_errors_to_the_team(world, client_api, client):
    refused_decision(world, client_api)
    page = reverse("quotes:detail", args=[world.home.quote.pk])
    client.force_login(world.staff_user)
    html = client.get(page).content.decode()
    assert (
        "<code>items[0].price</code>: The field price must be greater than or equal to 0." in html
    )
    assert "<code>soldBy</code>" in html
    client.force_login(world.client_user)
    html = client.get(page).content.decode()
    assert "Failed" in html and "soldBy" not in html and "items[0].price" not in html
