"""Serializer bases shared by the apps' output serializers, and DRF's value formatting made
cheap for lists read as rows."""

import datetime
import decimal
import zoneinfo
from collections.abc import Callable

from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

UTC_ZONE = zoneinfo.ZoneInfo("UTC")


def decimal_formatter(field: serializers.DecimalField) -> Callable:
    """`field.to_representation`, with what DRF works out for every value (the decimal
    context and quantum) worked out once: a page of 50 rows formats 150 amounts. The same
    string to the byte; any configuration this does not cover gets DRF's own method."""
    coerce = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
    if not coerce or field.localize or field.normalize_output or field.decimal_places is None:
        return field.to_representation
    context = decimal.getcontext().copy()
    if field.max_digits is not None:
        context.prec = field.max_digits
    quantum = decimal.Decimal(".1") ** field.decimal_places
    rounding, slow = field.rounding, field.to_representation

    def to_representation(value):
        if type(value) is not decimal.Decimal:
            return slow(value)
        return f"{value.quantize(quantum, rounding=rounding, context=context):f}"

    return to_representation


def datetime_formatter(field: serializers.DateTimeField) -> Callable:
    """`field.to_representation` for aware datetimes, with the time zone (the current one,
    looked up through asgiref's context locals on every value by DRF) read once: call it
    within the request. Naive values and other formats get DRF's own method."""
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
    slow = field.to_representation
    if zone is None or not isinstance(output_format, str) or output_format.lower() != ISO_8601:
        return slow

    def to_representation(value):
        if not value or isinstance(value, str) or value.utcoffset() is None:
            return slow(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def in_utc(value):
        # The API's zone (the portal's middleware leaves /api/ in UTC), and the database's
        # values are in UTC already: no zone conversion, the naive ISO form plus "Z".
        if not value or isinstance(value, str) or value.tzinfo is not datetime.UTC:
            return to_representation(value)
        return value.replace(tzinfo=None).isoformat() + "Z"

    return in_utc if zone in (datetime.UTC, UTC_ZONE) else to_representation


class SyncedOutputSerializer(serializers.Serializer):
    """The fields every record synced from a provider carries."""

    id = serializers.IntegerField(help_text="Fieldbridge's id of this record.")
    integration_id = serializers.IntegerField(
        help_text="The integration (provider connection) this record was synced from."
    )
    external_id = serializers.CharField(help_text="The provider's id of this record.")
    remote_updated_at = serializers.DateTimeField(
        allow_null=True, help_text="When the provider last changed it, if it says."
    )
    created_at = serializers.DateTimeField(help_text="When Fieldbridge first synced it.")
    updated_at = serializers.DateTimeField(help_text="When Fieldbridge last changed it.")
