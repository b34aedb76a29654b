"""POST /quotes/{id}/approve|reject and GET /quotes/{id}/decisions, through quotes.services."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from quotes.models import Quote, QuoteDecision
from tests.api.conftest import quote_awaiting

pytestmark = pytest.mark.django_db

API = "/api/v1/quotes"


def test_approve_whole_quote_and_read_its_writeback_state(world, client_api):
    quote = world.home.quote
    response = client_api.post(f"{API}/{quote.pk}/approve", {"notes": "Go ahead"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["decision"] == "approve" and body["is_partial"] is False
    assert body["approved_line_item_ids"] == sorted(i.pk for i in world.home.line_items)
    assert body["writeback"]["status"] == "pending"
    quote.refresh_from_db()
    assert quote.status == Quote.Status.APPROVED
    history = client_api.get(f"{API}/{quote.pk}/decisions").json()["results"]
    assert [d["id"] for d in history] == [body["id"]]
    assert history[0]["writeback"]["status"] == "pending"
    assert client_api.get(f"{API}/{quote.pk}/").json()["decision"]["id"] == body["id"]


def test_approve_chosen_line_items(world, staff_api):
    quote, first = world.home.quote, world.home.line_items[0]
    response = staff_api.post(
        f"{API}/{quote.pk}/approve", {"line_items": [first.pk]}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["is_partial"] is True
    assert response.json()["approved_line_item_ids"] == [first.pk]


def test_reject_with_reason(world, client_api):
    quote = world.home.quote
    response = client_api.post(f"{API}/{quote.pk}/reject", {"reason": "Too dear"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["rejection_reason"] == "Too dear"


@pytest.mark.parametrize(
    ("action", "payload", "code", "field"),
    [
        ("approve", {"line_items": []}, "no_items", "line_items"),
        ("approve", {"line_items": [2**40]}, "unknown_items", "line_items"),
        ("approve", {"notes": "x" * 2001}, "too_long", "notes"),
        ("reject", {"reason": "   "}, "reason_required", "reason"),
        ("reject", {"reason": "x" * 2001}, "too_long", "reason"),
    ],
)
def test_input_the_domain_refuses_is_422(world, client_api, action, payload, code, field):
    response = client_api.post(f"{API}/{world.home.quote.pk}/{action}", payload, format="json")
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["fields"][field]
    assert not QuoteDecision.objects.exists()


@pytest.mark.parametrize(
    "payload", [{"line_items": ["a"]}, {"line_items": "all"}, {"notes": ["x"]}, []]
)
def test_malformed_input_is_400(world, client_api, payload):
    response = client_api.post(f"{API}/{world.home.quote.pk}/approve", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]


def test_reject_without_reason_field_is_400(world, client_api):
    response = client_api.post(f"{API}/{world.home.quote.pk}/reject", {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]


def test_a_second_decision_is_409(world, client_api, staff_api):
    quote = world.home.quote
    assert client_api.post(f"{API}/{quote.pk}/approve", {}, format="json").status_code == 201
    response = staff_api.post(f"{API}/{quote.pk}/reject", {"reason": "no"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_decided"


def test_expired_and_closed_quotes_are_409(world, client_api):
    expired = quote_awaiting(world.home)
    expired.valid_until = timezone.now().date() - timedelta(days=3)
    expired.save()
    response = client_api.post(f"{API}/{expired.pk}/approve", {}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "expired")
    draft = quote_awaiting(world.home)
    draft.status = Quote.Status.DRAFT
    draft.save()
    response = client_api.post(f"{API}/{draft.pk}/reject", {"reason": "x"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_open")


def test_other_tenants_quotes_are_404_and_untouched(world, client_api, staff_api):
    for api, quote in (
        (client_api, world.sibling.quote),
        (client_api, world.foreign.quote),
        (staff_api, world.foreign.quote),
    ):
        for action, payload in (("approve", {}), ("reject", {"reason": "x"})):
            response = api.post(f"{API}/{quote.pk}/{action}", payload, format="json")
            assert response.status_code == 404, response.content
        assert api.get(f"{API}/{quote.pk}/decisions").status_code == 404
    assert not QuoteDecision.objects.exists()


def test_session_writes_need_the_csrf_token(world):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(world.client_user)
    url = f"{API}/{world.home.quote.pk}/approve"
    refused = browser.post(url, {}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    token = "a" * 32  # any well-formed CSRF secret: the cookie and the header must agree
    browser.cookies["csrftoken"] = token
    accepted = browser.post(url, {}, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content
