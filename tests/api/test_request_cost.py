"""Issue #9's per-request savings keep the behaviour: a session request's per-IP and per-user
throttles in one Redis round trip (with the per-IP phase still first), the orjson renderer's
bytes equal to DRF's, and the signed-in user's row from the cache (dropped on every save)."""

import datetime
import json
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from portal.api.renderers import OrjsonRenderer
from portal.api.throttles import _redis_client
from portal.api.user_cache import user_cache_key
from tests.api.test_auth_and_throttling import URL
from tests.api.test_throttle_round_trips import (  # noqa: F401
    read_along,
    redis_commands,
    throttle_round_trips,
    windows,
)

pytestmark = pytest.mark.django_db


def session(user) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


def test_a_session_read_checks_ip_and_user_in_one_round_trip(world, redis_commands):  # noqa: F811
    api = session(world.client_user)
    api.get(URL)  # loads the script
    redis_commands.clear()
    response = api.get(URL)
    assert response.status_code == 200
    trips = throttle_round_trips(redis_commands)
    assert [args[0] for args in trips] == ["EVALSHA"]
    keys = [str(k) for k in trips[0][3:5]]
    assert windows(trips[0]) == 2  # the per-IP window, then the per-user one
    assert len(read_along(trips[0])) == 2  # and the user's scope, read along
    assert "IpRateThrottle" in keys[0] and "UserRateThrottle" in keys[1]


def test_a_session_over_the_ip_limit_is_refused_without_counting_the_user(world, settings):
    settings.API_THROTTLE_RATE = "2/minute"
    api = session(world.client_user)
    assert [api.get(URL).status_code for _ in range(2)] == [200, 200]
    # The same IP, another signed-in user: the per-IP window refuses first.
    other = session(world.staff_user)
    over = other.get(URL)
    assert over.status_code == 429
    assert 0 < int(over["Retry-After"]) <= 60
    assert over["X-RateLimit-Remaining"] == "0"
    # The refused request did not count against the staff user's own window.
    client = _redis_client(cache)
    if client is None:
        pytest.skip("needs the Redis cache (REDIS_URL)")

    def window(user) -> int:
        prefix = settings.API_THROTTLE_CACHE_PREFIX
        return client.llen(
            cache.make_and_validate_key(f"{prefix}:UserRateThrottle:user:{user.pk}:window")
        )

    assert window(world.client_user) == 2
    assert window(world.staff_user) == 0


def test_refused_session_requests_still_count_per_ip(world, settings):
    settings.API_THROTTLE_RATE = "2/minute"
    anonymous = APIClient()
    codes = [anonymous.get(URL).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    # A signed-in user refused by a permission (a write without the CSRF token) counts too.
    settings.API_THROTTLE_CACHE_PREFIX += "-csrf"
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(world.client_user)
    url = f"/api/v1/quotes/{world.home.quote.pk}/approve"
    first = browser.post(url, {}, format="json")
    assert first.status_code == 403 and first["X-RateLimit-Remaining"] == "1"
    second = browser.post(url, {}, format="json")
    assert second.status_code == 403 and second["X-RateLimit-Remaining"] == "0"
    assert browser.post(url, {}, format="json").status_code == 429


def test_the_orjson_renderer_writes_drfs_bytes():
    data = {
        "total": Decimal("1234.50"),
        "at": datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC),
        "on": datetime.date(2026, 1, 2),
        "time": datetime.time(1, 2, 3, 4000),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "message": gettext_lazy("Not found."),
        "text": "line\u2028separator\u2029é 漢字",
        7: [1.5, None, True, (1, 2)],
    }
    assert OrjsonRenderer().render(data) == JSONRenderer().render(data)
    huge = {"n": 2**70}  # beyond orjson's integers: DRF's renderer answers
    assert OrjsonRenderer().render(huge) == JSONRenderer().render(huge)
    indented = "application/json; indent=4"
    assert OrjsonRenderer().render(data, indented) == JSONRenderer().render(data, indented)
    assert OrjsonRenderer().render(None) == b""


def test_the_api_answers_through_orjson_with_the_same_values(world, client_api):
    response = client_api.get(URL)
    assert response.status_code == 200
    body = response.content
    assert json.loads(body) == json.loads(JSONRenderer().render(response.data))
    assert body == JSONRenderer().render(response.data)


def user_queries(queries, user) -> list:
    table = user._meta.db_table
    return [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"]]


def test_the_signed_in_user_is_read_from_the_cache(world):
    user = world.client_user
    api = session(user)
    assert api.session[BACKEND_SESSION_KEY] == "portal.api.user_cache.CachedModelBackend"
    with CaptureQueriesContext(connection) as signed_in:  # primed at sign-in
        assert api.get(URL).status_code == 200
    cache.delete(user_cache_key(user.pk))
    with CaptureQueriesContext(connection) as first:
        assert api.get(URL).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert api.get(URL).status_code == 200
    assert user_queries(signed_in.captured_queries, user) == []
    assert len(user_queries(first.captured_queries, user)) == 1
    assert user_queries(second.captured_queries, user) == []


@pytest.mark.parametrize("change", ["deactivated", "password", "deleted"])
def test_a_changed_user_is_read_again(world, change):
    user = world.client_user
    api = session(user)
    assert api.get(URL).status_code == 200  # cached now
    assert cache.get(user_cache_key(user.pk)) is not None
    if change == "deactivated":
        user.is_active = False
        user.save()
    elif change == "password":
        user.set_password("another-secret-456")
        user.save()
    else:
        user.delete()
    assert cache.get(user_cache_key(user.pk)) is None
    response = api.get(URL)
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"
