"""portal.api.fields' formatters give DRF's own strings, to the byte, for the values a list
page formats: amounts of any scale, date-times in UTC or another current time zone, naive
ones, None."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework import serializers

from portal.api.fields import datetime_formatter, decimal_formatter

AMOUNTS = [
    Decimal("1234.50"),
    Decimal("1234.5"),
    Decimal("0"),
    Decimal("-0.005"),
    Decimal("0.015"),
    Decimal("9999999999.99"),
    Decimal("1E+3"),
    1.25,
    "7.1",
]
MOMENTS = [
    datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 30, 0, 7, tzinfo=UTC),
    datetime(2026, 10, 4, 1, 59, tzinfo=UTC) - timedelta(hours=12),  # Sydney's DST change
    datetime(2026, 3, 1, 12, 30, tzinfo=ZoneInfo("Asia/Kolkata")),  # aware, not in UTC
    datetime(2026, 3, 1, 12, 30),  # noqa: DTZ001 - naive: DRF makes it aware in the zone
    None,
]


@pytest.mark.parametrize("places", [2, 4])
def test_amounts_match_drf(places):
    field = serializers.DecimalField(max_digits=14, decimal_places=places)
    fast = decimal_formatter(field)
    for value in AMOUNTS:
        assert fast(value) == field.to_representation(value), value


def test_unusual_decimal_fields_get_drf_itself():
    field = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False)
    assert decimal_formatter(field) == field.to_representation


@pytest.mark.parametrize("zone", ["UTC", "Australia/Sydney", "America/St_Johns"])
def test_moments_match_drf_in_the_current_time_zone(zone):
    field = serializers.DateTimeField(allow_null=True)
    with timezone.override(zone):
        fast = datetime_formatter(field)
        for value in MOMENTS:
            assert fast(value) == field.to_representation(value), value
        assert fast(MOMENTS[0]).endswith("Z") is (zone == "UTC")


def test_a_field_with_its_own_format_gets_drf_itself():
    field = serializers.DateTimeField(format="%Y")
    assert datetime_formatter(field) == field.to_representation
