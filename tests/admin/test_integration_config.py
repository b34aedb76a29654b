"""The integration admin form checks `config["unapproved_items"]` (what a partial quote
approval does with the items the client did not approve) against the provider's writer."""

import json

import pytest

from integrations.admin import IntegrationAdminForm
from tests import factories

pytestmark = pytest.mark.django_db


def form(integration, config) -> IntegrationAdminForm:
    data = {
        "company": integration.company_id,
        "name": "x",
        "environment": "sandbox",
        "config": json.dumps(config),
        "enabled": "on",
        "read_cache_ttl": 60,
    }
    return IntegrationAdminForm(data=data, instance=integration)


@pytest.mark.parametrize(
    ("provider", "value", "ok"),
    [
        ("servicem8", "remove", True),
        ("servicem8", "mark", True),
        ("servicem8", "hide", False),
        ("servicem8", "Mark", False),
        ("servicem8", None, False),
        ("servicetitan", "remove", True),
        ("servicetitan", "mark", False),  # a sale sells every item: only remove
    ],
)
def test_unapproved_items_must_be_a_supported_mode(provider, value, ok):
    integration = factories.IntegrationFactory(provider=provider)
    bound = form(integration, {"timezone": "Australia/Sydney", "unapproved_items": value})
    bound.is_valid()
    if ok:
        assert "config" not in bound.errors
    else:
        assert "unapproved_items must be one of" in " ".join(bound.errors["config"])


def test_a_config_without_the_setting_is_left_alone():
    integration = factories.IntegrationFactory(provider="servicem8")
    bound = form(integration, {"timezone": "Australia/Sydney"})
    bound.is_valid()
    assert "config" not in bound.errors
