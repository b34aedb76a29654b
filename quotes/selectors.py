from django.db.models import Exists, F, OuterRef, QuerySet

from portal.models import User
from portal.selectors import visibility_q
from quotes.models import Quote, QuoteDecision


def quote_list_visible_to(*, user: User) -> QuerySet[Quote]:
    """Live quotes of live clients that the user may see (see portal.selectors)."""
    quotes = Quote.objects.filter(remote_deleted_at__isnull=True).exclude(
        client__remote_deleted_at__isnull=False
    )
    scope = visibility_q(user, client_field="client_id")
    if scope is not None:
        quotes = quotes.filter(scope)
    return quotes.select_related("client", "integration")


def decision_in_force():
    return QuoteDecision.objects.filter(quote=OuterRef("pk"), voided_at__isnull=True)


def quote_list_awaiting_decision(*, user: User) -> QuerySet[Quote]:
    """Sent quotes with no decision in force, soonest expiry first."""
    from django.db.models import Q
    from django.utils import timezone

    # Expired quotes cannot be decided, so they are not "awaiting". "Today" is the active time
    # zone's: the business's on portal pages (portal.middleware), UTC elsewhere.
    today = timezone.localdate()
    return (
        quote_list_visible_to(user=user)
        .filter(status=Quote.Status.SENT)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .filter(~Exists(decision_in_force()))
        .order_by(F("valid_until").asc(nulls_last=True), "id")
    )


def quote_amounts(quote: Quote, items) -> dict:
    """Subtotal, tax, total and tax rate to show for a quote. Providers that give no ex-tax
    subtotal (ServiceM8 gives only the job's tax-inclusive total) get one from the line items:
    subtotal = the items' sum, tax = total - subtotal."""
    from decimal import Decimal

    subtotal, tax, total = quote.subtotal, quote.tax_total, quote.total
    items_sum = sum((item.total for item in items), Decimal("0"))
    if not subtotal and items:
        subtotal = items_sum
        tax = max(total - items_sum, Decimal("0")) if not quote.prices_include_tax else tax
    if not total:
        total = subtotal + (Decimal("0") if quote.prices_include_tax else tax)
    rate = (tax / subtotal) if subtotal and not quote.prices_include_tax else Decimal("0")
    return {"subtotal": subtotal, "tax": tax, "total": total, "tax_rate": rate}
