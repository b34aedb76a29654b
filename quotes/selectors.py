from django.db.models import Exists, F, OuterRef, QuerySet

from portal.models import User
from quotes.models import Quote, QuoteDecision


def quote_list_for_user(*, user: User) -> QuerySet[Quote]:
    return Quote.objects.filter(
        client__memberships__user=user,
        client__remote_deleted_at__isnull=True,
        remote_deleted_at__isnull=True,
    ).select_related("client")


def quote_list_awaiting_decision(*, user: User) -> QuerySet[Quote]:
    """Sent quotes with no decision in force, soonest expiry first."""
    decided = QuoteDecision.objects.filter(quote=OuterRef("pk"), voided_at__isnull=True)
    return (
        quote_list_for_user(user=user)
        .filter(status=Quote.Status.SENT)
        .filter(~Exists(decided))
        .order_by(F("valid_until").asc(nulls_last=True), "-id")
    )
