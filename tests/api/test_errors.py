"""Errors outside the API's views (no route matched, an unhandled exception) answer the API's
error shape under /api/, and the site's pages elsewhere; URLs are spelled as in the schema."""

import pytest
from django.test import Client

from quotes import apis as quote_apis

pytestmark = pytest.mark.django_db


def assert_api_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert body["error"]["fields"] == {}
    return body


def test_an_unknown_api_path_is_a_json_404(staff_api):
    assert_api_error(staff_api.get("/api/v1/nothing/"), 404, "not_found")
    assert_api_error(staff_api.get("/api/v2/quotes/"), 404, "not_found")


def test_an_action_with_a_trailing_slash_is_a_json_404_naming_the_route(staff_api, world):
    url = f"/api/v1/quotes/{world.home.quote.pk}/approve"
    body = assert_api_error(staff_api.post(f"{url}/", {}, format="json"), 404, "not_found")
    assert url in body["error"]["message"] and f"{url}/" not in body["error"]["message"]


def test_a_collection_without_its_slash_is_a_json_404_not_a_redirect(staff_api):
    for method in ("get", "post"):
        response = getattr(staff_api, method)("/api/v1/quotes")
        body = assert_api_error(response, 404, "not_found")
        assert "/api/v1/quotes/" in body["error"]["message"]
    body = assert_api_error(staff_api.get("/api/v1/integrations/1/sync-status/"), 404, "not_found")
    assert "/api/v1/integrations/1/sync-status" in body["error"]["message"]


def test_the_documented_spellings_work(staff_api, world):
    assert staff_api.get("/api/v1/quotes/").status_code == 200
    assert staff_api.get(f"/api/v1/quotes/{world.home.quote.pk}/").status_code == 200
    assert staff_api.get(f"/api/v1/quotes/{world.home.quote.pk}/decisions").status_code == 200


def test_an_unhandled_error_in_the_api_is_a_json_500(world, monkeypatch):
    def boom(self, request, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(quote_apis.QuoteListApi, "get", boom)
    browser = Client(raise_request_exception=False)
    browser.force_login(world.staff_user)
    body = assert_api_error(browser.get("/api/v1/quotes/"), 500, "server_error")
    assert "a bug" not in str(body)


def test_pages_outside_the_api_keep_their_templates(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    redirect = client.get("/quotes")  # APPEND_SLASH still applies outside the API
    assert redirect.status_code == 301 and redirect["Location"].endswith("/quotes/")
