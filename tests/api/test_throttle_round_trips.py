"""The throttles of a phase cost one Redis round trip (a Lua script), and the non-Redis
fallback (the file cache of `make run`) limits the same way."""

import pytest
import redis
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from portal.api.tokens import api_token_create
from tests.api.test_auth_and_throttling import URL, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_commands(monkeypatch):
    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs the Redis cache (REDIS_URL)")
    sent = []
    original = redis.Redis.execute_command

    def spy(self, *args, **options):
        sent.append(args)
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", spy)
    return sent


def throttle_round_trips(sent) -> list:
    return [
        args
        for args in sent
        if args[0] in {"EVALSHA", "EVAL"} or any("api-throttle" in str(a) for a in args[1:])
    ]


def windows(trip) -> int:
    """How many throttle windows an EVALSHA checked (its other keys are read along)."""
    numkeys = int(trip[2])
    return int(trip[3 + numkeys + 2])


def read_along(trip) -> list[str]:
    return [str(key) for key in trip[3 + windows(trip) : 3 + int(trip[2])]]


def test_a_read_checks_its_throttles_in_one_round_trip_per_phase(world, redis_commands):
    _token, raw = api_token_create(user=world.client_user, name="erp")
    api = bearer(raw)
    api.get(URL)  # loads the script
    redis_commands.clear()
    response = api.get(URL)
    assert response.status_code == 200
    trips = throttle_round_trips(redis_commands)
    # One before authentication (per IP), one after it (per user); the write throttles skip GETs.
    assert [args[0] for args in trips] == ["EVALSHA", "EVALSHA"]
    assert [windows(args) for args in trips] == [1, 1]  # one window each
    # After authentication the user's scope is read along: no round trip of its own.
    assert read_along(trips[0]) == []
    assert [("user-scope" in key) for key in read_along(trips[1])] == [True, True]
    assert not [
        args
        for args in redis_commands
        if args[0] in {"MGET", "GET"} and any("user-scope" in str(a) for a in args[1:])
    ]


def test_a_write_checks_two_throttles_per_round_trip(world, redis_commands):
    _token, raw = api_token_create(user=world.client_user, name="erp")
    api = bearer(raw)
    url = f"/api/v1/quotes/{world.home.quote.pk}/reject"
    api.post(url, {"reason": ""}, format="json")
    redis_commands.clear()
    api.post(url, {"reason": ""}, format="json")
    trips = throttle_round_trips(redis_commands)
    assert [args[0] for args in trips] == ["EVALSHA", "EVALSHA"]
    assert [windows(args) for args in trips] == [2, 2]  # the general and the write window


@pytest.fixture
def local_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"}
    }
    yield
    cache.clear()


def test_without_redis_the_limits_and_headers_are_the_same(world, settings, local_cache):
    settings.API_THROTTLE_RATE = "3/minute"
    _token, raw = api_token_create(user=world.client_user, name="erp")
    api = bearer(raw)
    remaining = []
    for _ in range(3):
        response = api.get(URL)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        remaining.append(int(response["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    over = api.get(URL)
    assert over.status_code == 429
    assert 0 < int(over["Retry-After"]) <= 60
