"""`make run`'s demo: after seed_demo and demo_sync against the sandbox, the demo client user
has quotes awaiting a decision from both sandbox providers."""

import pytest
from django.core.management import call_command

from portal.models import User
from quotes.selectors import quote_list_awaiting_decision

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_client_user_has_quotes_from_both_providers(sandbox_clean, capsys):
    call_command("seed_demo", password="demo-pass-123", sandbox_url=sandbox_clean.url)
    call_command("demo_sync")
    out = capsys.readouterr().out
    user = User.objects.get(email="client@demo.fieldbridge.test")
    providers = {q.integration.provider for q in quote_list_awaiting_decision(user=user)}
    assert providers == {"servicem8", "servicetitan"}, out
    assert "ServiceM8" in out and "ServiceTitan" in out
    assert "demo-pass-123" in out and "client@demo.fieldbridge.test" in out
