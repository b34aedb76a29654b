"""django-filter building blocks for API filters, and their OpenAPI parameters.

Values the database cannot hold (ids beyond a bigint, dates beyond the calendar) are rejected
as bad input (400) before they reach a query."""

from datetime import UTC, datetime

import django_filters
from django import forms
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter

MAX_ID = 2**63 - 1
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 1, 1, tzinfo=UTC)


class BoundedDateTimeField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        try:
            value = super().to_python(value)
        except (OverflowError, ValueError) as exc:
            raise forms.ValidationError("Enter a valid ISO 8601 date and time.") from exc
        if value is None:
            return None
        if timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows.
        try:
            value = value.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError("Enter a date and time between 1900 and 9998.") from exc
        if not EARLIEST <= value <= LATEST:
            raise forms.ValidationError("Enter a date and time between 1900 and 9998.")
        return value


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedDateTimeField


class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class ApiFilterSet(django_filters.FilterSet):
    """Every filter must say what it does (`help_text`): it becomes the parameter's
    description in the OpenAPI schema."""


def filter_parameters(filterset_class) -> list[OpenApiParameter]:
    """The OpenAPI query parameters of a FilterSet (for `extend_schema(parameters=…)`)."""
    params = []
    for name, flt in filterset_class.base_filters.items():
        help_text = flt.extra.get("help_text")
        if not help_text:
            raise ValueError(f"{filterset_class.__qualname__}.{name} has no help_text")
        explode = None
        if isinstance(flt, django_filters.MultipleChoiceFilter):
            choices = [value for value, _label in flt.extra["choices"]]
            schema = {"type": "array", "items": {"type": "string", "enum": choices}}
            explode = True
        elif isinstance(flt, django_filters.ChoiceFilter):
            schema = {"type": "string", "enum": [v for v, _label in flt.extra["choices"]]}
        elif isinstance(flt, IdFilter):
            schema = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
        elif isinstance(flt, django_filters.IsoDateTimeFilter):
            schema = {"type": "string", "format": "date-time"}
        elif isinstance(flt, django_filters.BooleanFilter):
            schema = {"type": "boolean"}
        else:
            schema = {"type": "string"}
        params.append(
            OpenApiParameter(
                name=name,
                type=schema,
                location=OpenApiParameter.QUERY,
                required=False,
                explode=explode,
                description=str(help_text),
            )
        )
    return params
