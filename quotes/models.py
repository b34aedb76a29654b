from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from portal.models import (
    MONEY,
    QUANTITY,
    Client,
    Job,
    SyncedChild,
    SyncedModel,
    TimeStampedModel,
    in_integration,
    parent_key,
)


class Quote(SyncedModel):
    """A priced proposal to a client: a ServiceM8 job with status Quote, a ServiceTitan estimate,
    a Jobber Quote, and so on."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        APPROVED = "approved", "Approved"
        PARTIALLY_APPROVED = "partially_approved", "Partially approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="quotes", null=True, blank=True
    )
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, related_name="quotes", null=True, blank=True
    )
    number = models.CharField(max_length=64, blank=True)
    title = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    provider_status = models.CharField(max_length=64, blank=True)
    subtotal = models.DecimalField(**MONEY, default=Decimal("0.00"))
    tax_total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    # Whether the provider's line prices already include tax (ServiceM8 accounts may).
    prices_include_tax = models.BooleanField(default=False)
    currency = models.CharField(max_length=3, default="USD")
    valid_until = models.DateField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta(SyncedModel.Meta):
        ordering = ["-sent_at", "-id"]
        # The portal's lists walk these in page order (awaiting: soonest expiry first; all:
        # newest first), so a page of 50 reads ~50 index entries whatever the row count.
        indexes = [
            models.Index(
                fields=["client", "status", "valid_until", "id"],
                condition=Q(remote_deleted_at__isnull=True),
                name="quote_client_awaiting_idx",
            ),
            models.Index(
                fields=["integration", "status", "valid_until", "id"],
                condition=Q(remote_deleted_at__isnull=True),
                name="quote_integ_awaiting_idx",
            ),
            models.Index(
                fields=["client", "sent_at", "id"],
                condition=Q(remote_deleted_at__isnull=True),
                name="quote_client_sent_idx",
            ),
            models.Index(
                fields=["integration", "sent_at", "id"],
                condition=Q(remote_deleted_at__isnull=True),
                name="quote_integ_sent_idx",
            ),
            # The API's cursor pages (newest id first) walk these.
            models.Index(
                fields=["client", "id"],
                condition=Q(remote_deleted_at__isnull=True),
                name="quote_client_id_idx",
            ),
            models.Index(
                fields=["integration", "id"],
                condition=Q(remote_deleted_at__isnull=True),
                name="quote_integ_id_idx",
            ),
        ]
        constraints = [
            *SyncedModel.Meta.constraints,
            parent_key("quotes_quote"),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "draft",
                        "sent",
                        "approved",
                        "partially_approved",
                        "rejected",
                        "expired",
                        "cancelled",
                    ]
                ),
                name="quotes_quote_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="quotes_quote_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return self.number or self.title or self.external_id


class QuoteLineItem(SyncedChild):
    quote = models.ForeignKey(
        Quote, on_delete=models.CASCADE, related_name="line_items", db_constraint=False
    )
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    quantity = models.DecimalField(**QUANTITY, default=Decimal("1"))
    unit_price = models.DecimalField(**MONEY, default=Decimal("0.00"))
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    is_optional = models.BooleanField(default=False)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta(SyncedModel.Meta):
        ordering = ["sort_order", "id"]
        constraints = [
            *SyncedModel.Meta.constraints,
            in_integration("quotes_quotelineitem", "quote"),
        ]

    def __str__(self) -> str:
        return self.name


class QuoteDecision(TimeStampedModel):
    """A client user's approval (whole or chosen line items) or rejection of a quote, and the
    state of its write-back to the provider (its OutboxEvent). At most one decision per quote
    is in force."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    quote = models.ForeignKey(Quote, on_delete=models.PROTECT, related_name="decisions")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quote_decisions"
    )
    decided_at = models.DateTimeField()
    decision = models.CharField(max_length=8, choices=Decision.choices)
    approved_line_items = models.ManyToManyField(
        QuoteLineItem, related_name="approving_decisions", blank=True
    )
    # An approval of chosen line items (approved_line_items) rather than the whole quote.
    is_partial = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    rejection_reason = models.TextField(blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # The provider write-back: its state (pending, sending, sent, failed, dead) is the event's.
    outbox_event = models.OneToOneField(
        "sync.OutboxEvent",
        on_delete=models.PROTECT,
        related_name="quote_decision",
        null=True,
        blank=True,
    )
    # Set when the provider re-opened the quote, so a new decision may be taken; kept as history.
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-decided_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["quote"],
                condition=Q(voided_at__isnull=True),
                name="quotes_decision_one_in_force",
            ),
            models.CheckConstraint(
                condition=Q(decision="approve", rejection_reason="")
                | (Q(decision="reject") & ~Q(rejection_reason="")),
                name="quotes_decision_reason_iff_reject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.quote}"
