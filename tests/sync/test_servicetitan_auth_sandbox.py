"""ServiceTitan's token lifetime against the sandbox, through the provider and the shared HTTP
layer: `expires_in` is honoured (a token is reused while it has more than 5 minutes left and
replaced once it has less), and a 401 makes the client ask for a new token and retry once."""

import time

import pytest

from integrations.services import provider_for
from tests.sync.conftest import sandbox_control, sandbox_stats

pytestmark = pytest.mark.django_db(transaction=True)


def grants(sandbox) -> int:
    return sandbox_stats(sandbox, "servicetitan")["token_grants"].get("client_credentials", 0)


def read(integration) -> None:
    provider_for(integration).probe()  # one authenticated call: GET crm customers


def test_a_token_is_reused_while_it_has_more_than_five_minutes_left(st_integration, sandbox_clean):
    sandbox_control(sandbox_clean, "config", {"servicetitan": {"access_token_ttl": 900}})
    for _ in range(3):
        read(st_integration)
    assert grants(sandbox_clean) == 1


def test_a_token_is_replaced_five_minutes_before_it_expires(st_integration, sandbox_clean):
    # The margin is min(5 minutes, half the lifetime) (integrations/auth.py): a token issued
    # for 8 s is usable for about 4 s (3 s or more: the token library rounds `expires_at`
    # down to the second), then due for replacement. (A flat 5 minutes would fetch a new
    # token on every call for any lifetime <= 300 s.)
    sandbox_control(sandbox_clean, "config", {"servicetitan": {"access_token_ttl": 8}})
    read(st_integration)
    read(st_integration)
    assert grants(sandbox_clean) == 1
    time.sleep(4.2)
    read(st_integration)
    assert grants(sandbox_clean) == 2


def test_a_401_gets_a_new_token_and_one_retry(st_integration, sandbox_clean):
    sandbox_control(sandbox_clean, "config", {"servicetitan": {"access_token_ttl": 900}})
    read(st_integration)
    assert grants(sandbox_clean) == 1
    # The token is refused once (as after an early revocation): a new one, then success.
    sandbox_control(
        sandbox_clean,
        "faults",
        {"provider": "servicetitan", "queue": [{"status": 401, "method": "GET"}]},
    )
    read(st_integration)
    assert grants(sandbox_clean) == 2
    responses = sandbox_stats(sandbox_clean, "servicetitan")["responses_by_status"]
    assert responses["401"] == 1
