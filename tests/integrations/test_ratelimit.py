import os
import time
import uuid

import pytest

from integrations.exceptions import BudgetExhausted
from integrations.ratelimit import RateLimiter, RateWindow
from tests.conftest import require_service


@pytest.fixture(params=["memory", "redis"])
def backend(request, settings):
    if request.param == "redis":
        require_service(None if os.environ.get("REDIS_URL") else "REDIS_URL is not set")
        settings.REDIS_URL = os.environ["REDIS_URL"]
    else:
        settings.REDIS_URL = ""
    return request.param


def limiter(*windows: RateWindow, max_wait: float = 10) -> RateLimiter:
    return RateLimiter(
        key=f"test:{uuid.uuid4().hex}", windows=windows, provider="test", max_wait=max_wait
    )


def test_short_windows_wait_their_turn(backend):
    gate = limiter(RateWindow(5, 0.5))
    started = time.monotonic()
    waits = [gate.acquire() for _ in range(6)]
    assert waits[:5] == [0, 0, 0, 0, 0]
    assert waits[5] > 0.3
    assert time.monotonic() - started >= 0.5


def test_a_spent_daily_budget_defers_instead_of_sleeping(backend):
    gate = limiter(RateWindow(2, 0.3), RateWindow(3, 24 * 60 * 60))
    for _ in range(3):
        gate.acquire()
    started = time.monotonic()
    with pytest.raises(BudgetExhausted, match="budget of 3 calls per 86400 s") as caught:
        gate.acquire()
    assert time.monotonic() - started < 0.5
    assert caught.value.retry_after > 80_000


def test_waiting_longer_than_max_wait_defers(backend):
    gate = limiter(RateWindow(1, 60), max_wait=0.2)
    gate.acquire()
    with pytest.raises(BudgetExhausted, match="waited"):
        gate.acquire()
