"""The quotes list serializes values() rows by hand: the JSON must be DRF's field-by-field
representation of the same quotes, to the byte."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from quotes.apis import LIST_COLUMNS, QuoteOutputSerializer
from quotes.models import Quote
from tests import factories

pytestmark = pytest.mark.django_db


def test_rows_render_as_drf_renders_the_models():
    now = timezone.now()
    factories.QuoteFactory(
        title="full",
        total=Decimal("1234.5"),
        subtotal=Decimal("1122.27"),
        tax_total=Decimal("0"),
        valid_until=now.date() + timedelta(days=3),
        sent_at=now,
        remote_updated_at=now - timedelta(days=1, microseconds=7),
        prices_include_tax=True,
    )
    factories.QuoteFactory(title="", client=None, sent_at=None, valid_until=None)
    quotes = Quote.objects.select_related("client", "integration").order_by("-id")

    class DrfSerializer(QuoteOutputSerializer):
        to_representation = serializers.Serializer.to_representation

        class Meta:
            ref_name = None

    by_hand = QuoteOutputSerializer(list(quotes.values(*LIST_COLUMNS)), many=True).data
    by_drf = DrfSerializer(list(quotes), many=True).data
    assert JSONRenderer().render(by_hand) == JSONRenderer().render(by_drf)
    assert by_hand[0]["client_name"] is None


def test_the_list_answers_with_those_rows(world, client_api):
    response = client_api.get("/api/v1/quotes/")
    assert response.status_code == 200
    assert response.json()["results"][0]["client_name"] == world.home.client.name
