"""API tokens (hashed at rest, revocable, expiring; created in the admin) and rate limits."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portal.api.tokens import api_token_create, api_token_revoke
from portal.models import ApiToken
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/quotes/"


def bearer(raw: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_tokens_are_stored_hashed_and_work(world):
    token, raw = api_token_create(user=world.client_user, name="erp")
    row = ApiToken.objects.values().get(pk=token.pk)
    assert raw not in str(row) and raw.split("_")[1] == row["prefix"]
    assert bearer(raw).get(URL).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("how", ["revoked", "expired", "tampered", "garbage", "inactive"])
def test_dead_tokens_are_401(world, how):
    token, raw = api_token_create(user=world.client_user, name="erp")
    if how == "revoked":
        api_token_revoke(token=token)
    elif how == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    elif how == "tampered":
        raw = raw[:-2] + ("AA" if not raw.endswith("AA") else "BB")
    elif how == "garbage":
        raw = "not-a-token"
    else:
        world.client_user.is_active = False
        world.client_user.save()
    response = bearer(raw).get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "authentication_failed"


def test_anonymous_is_401():
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_admin_creates_a_token_and_shows_it_once(world, client):
    admin = factories.UserFactory(is_superuser=True, is_staff=True)
    client.force_login(admin)
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%d")
    response = client.post(
        "/admin/portal/apitoken/add/",
        {
            "user": world.client_user.pk,
            "name": "ERP",
            "expires_at_0": expires,
            "expires_at_1": "12:00:00",
        },
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    raw = next(m.split("is: ")[1].split(" ")[0] for m in shown if "fb_" in m)
    token = ApiToken.objects.get(name="ERP")
    assert raw not in str(ApiToken.objects.values().get(pk=token.pk))
    assert bearer(raw).get(URL).status_code == 200
    page = client.get(f"/admin/portal/apitoken/{token.pk}/change/").content.decode()
    assert raw not in page


def test_responses_carry_rate_limit_headers_and_429_has_retry_after(world, settings):
    settings.API_THROTTLE_RATE = "3/minute"
    _token, raw = api_token_create(user=world.client_user, name="erp")
    api = bearer(raw)
    remaining = []
    for _ in range(3):
        response = api.get(URL)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        assert 0 < int(response["X-RateLimit-Reset"]) <= 60
        remaining.append(int(response["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    over = api.get(URL)
    assert over.status_code == 429
    assert 0 < int(over["Retry-After"]) <= 60
    assert over["X-RateLimit-Remaining"] == "0"
    assert over.json()["error"]["code"] == "throttled"


def test_writes_have_a_stricter_limit(world, settings):
    settings.API_THROTTLE_WRITE_RATE = "2/minute"
    _token, raw = api_token_create(user=world.client_user, name="erp")
    api = bearer(raw)
    url = f"/api/v1/quotes/{world.home.quote.pk}/reject"
    codes = [api.post(url, {"reason": ""}, format="json").status_code for _ in range(3)]
    assert codes == [422, 422, 429]
    assert api.get(URL).status_code == 200  # reads still allowed


def test_the_limit_is_per_ip_as_well(world, settings):
    settings.API_THROTTLE_RATE = "2/minute"
    apis = []
    for user in (world.client_user, world.staff_user, factories.UserFactory()):
        _token, raw = api_token_create(user=user, name="erp")
        apis.append(bearer(raw))
    codes = [api.get(URL).status_code for api in apis]
    assert codes == [200, 200, 429]


def test_unauthenticated_requests_carry_the_rate_limit_headers(settings):
    settings.API_THROTTLE_RATE = "5/minute"
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response["X-RateLimit-Limit"] == "5"
    assert response["X-RateLimit-Remaining"] == "4"


def test_bad_tokens_are_throttled_per_ip_before_any_token_lookup(world, settings):
    """DRF authenticates before throttling: without the per-IP check first, every bad token
    would be a 401 and a database lookup, forever."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.API_THROTTLE_RATE = "3/minute"
    api = bearer("fb_0123456789ab_not-the-secret")
    for remaining in ("2", "1", "0"):
        response = api.get(URL)
        assert response.status_code == 401
        assert response["X-RateLimit-Remaining"] == remaining
    with CaptureQueriesContext(connection) as queries:
        over = api.get(URL)
    assert over.status_code == 429
    assert 0 < int(over["Retry-After"]) <= 60
    assert over["X-RateLimit-Limit"] == "3" and over["X-RateLimit-Remaining"] == "0"
    assert over.json()["error"]["code"] == "throttled"
    assert not [q for q in queries.captured_queries if "portal_apitoken" in q["sql"]]
    # A good token from the same address is refused too: the limit is the address's.
    _token, raw = api_token_create(user=world.client_user, name="erp")
    assert bearer(raw).get(URL).status_code == 429
