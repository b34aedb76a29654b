"""The quotes API: list and read quotes, approve or reject one, and its decision history with
each decision's write-back state. Decisions go through quotes.services, like the portal's."""

from django.db.models import Prefetch
from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import Integration
from portal.api import filters
from portal.api.exception_handler import ApiDomainError
from portal.api.fields import SyncedOutputSerializer, datetime_formatter, decimal_formatter
from portal.api.mixins import CompanyScopedApiMixin
from portal.api.pagination import get_paginated_response
from portal.api.schema import error_response
from portal.selectors import visibility_branches
from quotes.models import Quote, QuoteDecision, QuoteLineItem
from quotes.selectors import quote_amounts, quote_list_visible_to
from quotes.services import NOTES_MAX, REASON_MAX, QuoteDecisionError, quote_approve, quote_reject
from sync.models import OutboxEvent

CONFLICT_CODES = {"already_decided", "not_open", "expired"}
MONEY = {"max_digits": 14, "decimal_places": 2}
# Columns a list page never shows (bench/api_bench_urls.py's baseline defers them; the API
# reads LIST_COLUMNS rows): loading them costs more than the query (the raw payloads'
# JSON, and a Fernet decryption of the integration's credentials on every row).
LIST_DEFERRED = (
    "raw",
    "content_hash",
    "client__raw",
    "client__content_hash",
    "integration__credentials",
    "integration__config",
)


def decision_error(exc: QuoteDecisionError) -> ApiDomainError:
    """409 when the quote's state forbids the decision, 422 when the input does."""
    return ApiDomainError(
        exc.messages[0],
        code=exc.code,
        api_status=409 if exc.code in CONFLICT_CODES else 422,
        field=exc.field,
    )


class QuoteOutputSerializer(SyncedOutputSerializer):
    client_id = serializers.IntegerField(allow_null=True, help_text="The client, if any.")
    client_name = serializers.CharField(
        source="client.name", allow_null=True, default=None, help_text="The client's name."
    )
    job_id = serializers.IntegerField(allow_null=True, help_text="The job it is for, if any.")
    provider = serializers.CharField(
        source="integration.provider", help_text="The provider it was synced from."
    )
    number = serializers.CharField(help_text="The provider's quote number (may be empty).")
    title = serializers.CharField(help_text="A short description (may be empty).")
    status = serializers.ChoiceField(choices=Quote.Status.choices, help_text="Normalized status.")
    provider_status = serializers.CharField(help_text="The provider's own status word.")
    subtotal = serializers.DecimalField(**MONEY, help_text="Total before tax, as synced.")
    tax_total = serializers.DecimalField(**MONEY, help_text="Tax, as synced.")
    total = serializers.DecimalField(**MONEY, help_text="Total, as synced.")
    prices_include_tax = serializers.BooleanField(
        help_text="Whether line prices already include tax."
    )
    currency = serializers.CharField(help_text="ISO 4217 currency code.")
    valid_until = serializers.DateField(allow_null=True, help_text="Last day it may be accepted.")
    sent_at = serializers.DateTimeField(allow_null=True, help_text="When it was sent.")

    class Meta:
        ref_name = "Quote"

    # The list reads rows, not models (LIST_COLUMNS): building 50 Quote, Client and
    # Integration instances, and DRF's per-field get_attribute, cost more than the query.
    # The declared fields above still give the schema and format the values that need it
    # (decimals, date-times in the current time zone), so the JSON is DRF's to the byte
    # (tests/api/test_quote_list_rows.py compares the two).
    def to_representation(self, row: dict) -> dict:
        money, moment = self._formatters
        return {
            "id": row["id"],
            "integration_id": row["integration_id"],
            "external_id": row["external_id"],
            "remote_updated_at": _or_none(moment, row["remote_updated_at"]),
            "created_at": moment(row["created_at"]),
            "updated_at": moment(row["updated_at"]),
            "client_id": row["client_id"],
            "client_name": row["client__name"],
            "job_id": row["job_id"],
            "provider": row["integration__provider"],
            "number": row["number"],
            "title": row["title"],
            "status": str(row["status"]),
            "provider_status": row["provider_status"],
            "subtotal": money(row["subtotal"]),
            "tax_total": money(row["tax_total"]),
            "total": money(row["total"]),
            "prices_include_tax": row["prices_include_tax"],
            "currency": row["currency"],
            "valid_until": None if row["valid_until"] is None else row["valid_until"].isoformat(),
            "sent_at": _or_none(moment, row["sent_at"]),
        }

    @cached_property
    def _formatters(self):
        # DRF's formatting of these fields, with its per-value set-up done once a page; from
        # the declared fields (their settings), not self.fields (a deep copy of all of them).
        fields = self._declared_fields
        return decimal_formatter(fields["total"]), datetime_formatter(fields["created_at"])


def _or_none(format_value, value):
    return None if value is None else format_value(value)


# The columns QuoteOutputSerializer.to_representation reads (a values() row per quote).
LIST_COLUMNS = (
    "id",
    "integration_id",
    "external_id",
    "remote_updated_at",
    "created_at",
    "updated_at",
    "client_id",
    "client__name",
    "job_id",
    "integration__provider",
    "number",
    "title",
    "status",
    "provider_status",
    "subtotal",
    "tax_total",
    "total",
    "prices_include_tax",
    "currency",
    "valid_until",
    "sent_at",
)


class QuoteLineItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The line item's id (for a partial approval).")
    name = serializers.CharField(help_text="What is offered.")
    description = serializers.CharField(help_text="Details (may be empty).")
    quantity = serializers.DecimalField(max_digits=12, decimal_places=4, help_text="Quantity.")
    unit_price = serializers.DecimalField(**MONEY, help_text="Unit price.")
    total = serializers.DecimalField(**MONEY, help_text="Line total.")
    is_optional = serializers.BooleanField(help_text="An optional extra the client may choose.")

    class Meta:
        ref_name = "QuoteLineItem"


class QuoteAmountsSerializer(serializers.Serializer):
    subtotal = serializers.DecimalField(**MONEY, help_text="Subtotal to show.")
    tax = serializers.DecimalField(**MONEY, help_text="Tax to show.")
    total = serializers.DecimalField(**MONEY, help_text="Total to show.")
    tax_rate = serializers.DecimalField(
        max_digits=12, decimal_places=6, help_text="Tax as a fraction of the subtotal."
    )

    class Meta:
        ref_name = "QuoteAmounts"


class QuoteDecisionOutputSerializer(serializers.Serializer):
    class WritebackSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=OutboxEvent.Status.choices,
            help_text="pending, sending, sent, failed (will retry) or dead (needs a person).",
        )
        attempts = serializers.IntegerField(help_text="Delivery attempts so far.")
        next_attempt_at = serializers.DateTimeField(
            allow_null=True, help_text="When the next attempt is due, if one is."
        )
        sent_at = serializers.DateTimeField(
            allow_null=True, help_text="When the provider accepted it."
        )
        field_errors = serializers.SerializerMethodField(
            help_text=(
                'The provider\'s refusal by field, {field: [messages]} ("__all__" for the '
                "request as a whole; nested fields as the provider names them, e.g. "
                '"items[0].price"). Empty unless the last attempt was refused; shown to '
                "the business's team only (empty for client users)."
            )
        )

        class Meta:
            ref_name = "QuoteDecisionWriteback"

        def get_field_errors(self, event) -> dict[str, list[str]]:
            request = self.context.get("request")
            if not event.field_errors or request is None:
                return {}
            if not _sees_provider_errors(request, event.integration_id):
                return {}
            return {
                str(field): [str(m) for m in (messages if isinstance(messages, list) else [])]
                for field, messages in event.field_errors.items()
            }

    id = serializers.IntegerField(help_text="The decision's id.")
    quote_id = serializers.IntegerField(help_text="The quote decided.")
    decision = serializers.ChoiceField(
        choices=QuoteDecision.Decision.choices, help_text="approve or reject."
    )
    decided_at = serializers.DateTimeField(help_text="When it was decided.")
    decided_by = serializers.SerializerMethodField(help_text="Who decided (name or email).")
    is_partial = serializers.BooleanField(help_text="Approval of chosen line items only.")
    approved_line_item_ids = serializers.SerializerMethodField(
        help_text="The line items approved (empty for a rejection)."
    )
    notes = serializers.CharField(help_text="The approver's notes (may be empty).")
    rejection_reason = serializers.CharField(help_text="Why it was rejected (empty if approved).")
    voided_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Set when the provider re-opened the quote; the decision is then history.",
    )
    writeback = WritebackSerializer(
        source="outbox_event",
        allow_null=True,
        help_text="Delivery of the decision to the provider (null if none was needed).",
    )

    class Meta:
        ref_name = "QuoteDecision"

    def get_decided_by(self, decision) -> str:
        user = decision.decided_by
        return user.get_full_name() or user.email

    def get_approved_line_item_ids(self, decision) -> list[int]:
        return sorted(item.pk for item in decision.approved_line_items.all())


def _sees_provider_errors(request, integration_id: int) -> bool:
    """Operators and the integration's company's team see a provider's refusal; client users
    don't (the quote page hides the error from them too). Cached on the request."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    cache = getattr(request, "_provider_error_scope", None)
    if cache is None:
        teams = set(user.team_memberships.values_list("company_id", flat=True))
        cache = request._provider_error_scope = {"teams": teams, "integrations": {}}
    companies = cache["integrations"]
    if integration_id not in companies:
        companies[integration_id] = (
            Integration.objects.filter(pk=integration_id)
            .values_list("company_id", flat=True)
            .first()
        )
    return companies[integration_id] in cache["teams"]


def decisions_of(quote_id: int):
    return (
        QuoteDecision.objects.filter(quote_id=quote_id)
        .select_related("decided_by", "outbox_event")
        .prefetch_related("approved_line_items")
        .order_by("-decided_at", "-id")
    )


class QuoteListApi(CompanyScopedApiMixin, APIView):
    class Filter(filters.ApiFilterSet):
        status = filters.django_filters.MultipleChoiceFilter(
            choices=Quote.Status.choices, help_text="Only quotes in these statuses (repeatable)."
        )
        client = filters.IdFilter(field_name="client_id", help_text="Only this client's quotes.")
        updated_since = filters.DateTimeFilter(
            field_name="updated_at",
            lookup_expr="gte",
            help_text="Only quotes changed at or after this time (ISO 8601).",
        )

        class Meta:
            model = Quote
            fields = ["status", "client", "updated_since"]

    OutputSerializer = QuoteOutputSerializer

    @extend_schema(
        operation_id="quotes_list",
        summary="List quotes",
        parameters=filters.filter_parameters(Filter),
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        quotes = self.filter_queryset(quote_list_visible_to(user=request.user), self.Filter)
        return get_paginated_response(
            pagination_class=self.pagination_class,
            serializer_class=self.OutputSerializer,
            queryset=quotes.values(*LIST_COLUMNS),
            request=request,
            view=self,
            branches=visibility_branches(request.user, client_field="client_id"),
        )


class QuoteDetailApi(CompanyScopedApiMixin, APIView):
    class OutputSerializer(QuoteOutputSerializer):
        line_items = QuoteLineItemOutputSerializer(many=True, help_text="The quote's lines.")
        amounts = serializers.SerializerMethodField(
            help_text="Subtotal, tax and total to show (derived from the lines when the "
            "provider gives no subtotal)."
        )
        decision = serializers.SerializerMethodField(
            help_text="The decision in force, or null while none is."
        )

        class Meta:
            ref_name = "QuoteDetail"

        # A Quote instance with line items and decisions: DRF's field-by-field representation.
        to_representation = serializers.Serializer.to_representation

        @extend_schema_field(QuoteAmountsSerializer)
        def get_amounts(self, quote):
            return QuoteAmountsSerializer(quote_amounts(quote, quote.line_items.all())).data

        @extend_schema_field(QuoteDecisionOutputSerializer(allow_null=True))
        def get_decision(self, quote):
            in_force = quote.decisions_in_force
            if not in_force:
                return None
            return QuoteDecisionOutputSerializer(in_force[0], context=self.context).data

    @extend_schema(operation_id="quotes_retrieve", summary="One quote", responses=OutputSerializer)
    def get(self, request, pk: int):
        quotes = quote_list_visible_to(user=request.user).prefetch_related(
            Prefetch(
                "line_items",
                queryset=QuoteLineItem.objects.filter(remote_deleted_at__isnull=True),
            ),
            Prefetch(
                "decisions",
                queryset=QuoteDecision.objects.filter(voided_at__isnull=True)
                .select_related("decided_by", "outbox_event")
                .prefetch_related("approved_line_items"),
                to_attr="decisions_in_force",
            ),
        )
        quote = self.get_visible_object(quotes, pk=pk)
        # The request goes in the context: the decision's field errors depend on who asks.
        return Response(self.OutputSerializer(quote, context={"request": request}).data)


class QuoteApproveApi(CompanyScopedApiMixin, APIView):
    class InputSerializer(serializers.Serializer):
        line_items = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=filters.MAX_ID),
            required=False,
            allow_null=True,
            help_text="Ids of the line items to approve; leave out (or null) to approve the "
            "whole quote. Choosing every line is a whole approval.",
        )
        notes = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text=f"Notes for the business (up to {NOTES_MAX} characters).",
        )

        class Meta:
            ref_name = "QuoteApproveInput"

    @extend_schema(
        operation_id="quotes_approve",
        summary="Approve a quote, whole or chosen line items",
        request=InputSerializer,
        responses={
            201: QuoteDecisionOutputSerializer,
            409: error_response("Already decided, no longer open, or expired."),
            422: error_response("No or unknown line items, or notes too long."),
        },
    )
    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            decision = quote_approve(
                user=request.user,
                quote_id=pk,
                line_item_ids=serializer.validated_data.get("line_items"),
                notes=serializer.validated_data["notes"],
                ip_address=self.client_ip(),
            )
        except QuoteDecisionError as exc:
            raise decision_error(exc) from exc
        decision = decisions_of(pk).get(pk=decision.pk)
        return Response(
            QuoteDecisionOutputSerializer(decision).data, status=status.HTTP_201_CREATED
        )


class QuoteRejectApi(CompanyScopedApiMixin, APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            allow_blank=True,
            trim_whitespace=False,
            help_text=f"Why the quote is rejected (required, up to {REASON_MAX} characters).",
        )

        class Meta:
            ref_name = "QuoteRejectInput"

    @extend_schema(
        operation_id="quotes_reject",
        summary="Reject a quote with a reason",
        request=InputSerializer,
        responses={
            201: QuoteDecisionOutputSerializer,
            409: error_response("Already decided, no longer open, or expired."),
            422: error_response("No reason given, or the reason is too long."),
        },
    )
    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            decision = quote_reject(
                user=request.user,
                quote_id=pk,
                reason=serializer.validated_data["reason"],
                ip_address=self.client_ip(),
            )
        except QuoteDecisionError as exc:
            raise decision_error(exc) from exc
        decision = decisions_of(pk).get(pk=decision.pk)
        return Response(
            QuoteDecisionOutputSerializer(decision).data, status=status.HTTP_201_CREATED
        )


class QuoteDecisionListApi(CompanyScopedApiMixin, APIView):
    @extend_schema(
        operation_id="quotes_decisions_list",
        summary="A quote's decisions, newest first, with their write-back state",
        responses=QuoteDecisionOutputSerializer(many=True),
    )
    def get(self, request, pk: int):
        quote = self.get_visible_object(quote_list_visible_to(user=request.user), pk=pk)
        return get_paginated_response(
            pagination_class=self.pagination_class,
            serializer_class=QuoteDecisionOutputSerializer,
            queryset=decisions_of(quote.pk),
            request=request,
            view=self,
        )
