"""Quote decisions: a client user (or the business's staff on their behalf) approves a quote,
whole or chosen line items, or rejects it with a reason.

One transaction writes the QuoteDecision, its AuditLog entry, the quote's local status and the
OutboxEvent that carries the decision to the provider (sync.outbox delivers it, reading the
provider's state first so it takes effect once). The quote row is locked (`SELECT … FOR
UPDATE`) while deciding, and a partial unique index allows one decision in force per quote, so
two browsers deciding at the same moment give exactly one decision; the other gets
`QuoteDecisionError(code="already_decided")`. The business's staff are emailed after commit.

The portal's views and the API call the same two functions, `quote_approve` and
`quote_reject`; both take the user and look the quote up through the user's visibility scope,
so a quote the user may not see is `Quote.DoesNotExist` (a 404), never a permission error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.celery import app as celery_app
from portal.models import AuditLog, TeamMembership, User
from quotes.models import Quote, QuoteDecision, QuoteLineItem
from quotes.selectors import quote_list_visible_to
from sync.models import OutboxEvent
from sync.outbox import outbox_dead_replay, outbox_event_enqueue

logger = logging.getLogger("quotes")

NOTES_MAX = 2000
REASON_MAX = 2000
NOTIFY_TASK = "quotes.notify_decision"


class QuoteDecisionError(ValidationError):
    """A decision that cannot be taken. `code` says why (the API maps it to a status):
    already_decided, not_open, expired (409); no_items, unknown_items, reason_required,
    too_long (422). `field` names the input at fault, if any."""

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


def quote_is_expired(quote: Quote, *, today=None) -> bool:
    if quote.valid_until is None:
        return False
    return quote.valid_until < (today or quote_today(quote))


def quote_today(quote: Quote):
    """Today in the business's time zone: a quote valid until the 21st is valid all that day
    where the business is, not until midnight UTC."""
    return timezone.now().astimezone(quote.integration.company.zone).date()


def decidable_problem(quote: Quote) -> QuoteDecisionError | None:
    """Why this quote cannot be decided now, or None. (Checks the quote row only; the one
    decision in force is checked under the row lock.)"""
    if quote.status != Quote.Status.SENT:
        return QuoteDecisionError(
            f"This quote is {quote.get_status_display().lower()}; only a quote awaiting a "
            "decision can be approved or rejected.",
            code="not_open",
        )
    if quote_is_expired(quote):
        return QuoteDecisionError(
            f"This quote expired on {quote.valid_until:%-d %B %Y}; ask the business for a new one.",
            code="expired",
        )
    return None


def quote_approve(
    *,
    user: User,
    quote_id: int,
    line_item_ids: Iterable[int] | None = None,
    notes: str = "",
    ip_address: str | None = None,
) -> QuoteDecision:
    """Approve the whole quote (line_item_ids None) or the chosen line items (a non-empty
    subset of the quote's live line items; choosing all of them is a whole approval)."""
    chosen, notes, _ = decision_inputs(
        decision=QuoteDecision.Decision.APPROVE, line_item_ids=line_item_ids, notes=notes
    )
    return _decide(
        user=user,
        quote_id=quote_id,
        decision=QuoteDecision.Decision.APPROVE,
        chosen=chosen,
        notes=notes,
        reason="",
        ip_address=ip_address,
    )


def quote_reject(
    *, user: User, quote_id: int, reason: str, ip_address: str | None = None
) -> QuoteDecision:
    _, _, reason = decision_inputs(decision=QuoteDecision.Decision.REJECT, reason=reason)
    return _decide(
        user=user,
        quote_id=quote_id,
        decision=QuoteDecision.Decision.REJECT,
        chosen=None,
        notes="",
        reason=reason,
        ip_address=ip_address,
    )


def decision_inputs(
    *, decision: str, line_item_ids: Iterable | None = None, notes: str = "", reason: str = ""
) -> tuple[list[int] | None, str, str]:
    """The user's input, cleaned and checked before any database work: (chosen line item
    ids or None for the whole quote, notes, rejection reason)."""
    notes = _clean_text(notes, field="notes", limit=NOTES_MAX)
    if decision == QuoteDecision.Decision.REJECT:
        reason = _clean_text(reason, field="reason", limit=REASON_MAX)
        if not reason:
            raise QuoteDecisionError(
                "Please give a reason for rejecting the quote.",
                code="reason_required",
                field="reason",
            )
        return None, notes, reason
    return (None if line_item_ids is None else _ids(line_item_ids)), notes, ""


def decision_checks(
    *,
    quote: Quote,
    items: list[QuoteLineItem],
    in_force: bool,
    decision: str,
    chosen: list[int] | None,
) -> tuple[list[QuoteLineItem], bool]:
    """Whether this decision may be taken now, as `_decide` checks it under the row lock (the
    confirmation page runs the same checks without the lock). Returns the approved line
    items, in the quote's order, and whether the approval is partial."""
    if in_force:
        raise _already_decided()
    problem = decidable_problem(quote)
    if problem is not None:
        raise problem
    return _approved_items(items, chosen, decision)


def _clean_text(value: str | None, *, field: str, limit: int) -> str:
    value = (value or "").replace("\x00", "").strip()
    if len(value) > limit:
        raise QuoteDecisionError(
            f"Please keep this under {limit} characters.", code="too_long", field=field
        )
    return value


def _ids(values: Iterable) -> list[int]:
    ids = []
    for value in values:
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            raise QuoteDecisionError(
                f"{value!r} is not a line item id.", code="unknown_items", field="line_items"
            ) from None
    if not ids:
        raise QuoteDecisionError(
            "Choose at least one line item to approve, or reject the quote.",
            code="no_items",
            field="line_items",
        )
    return sorted(set(ids))


def _decide(
    *,
    user: User,
    quote_id: int,
    decision: str,
    chosen: list[int] | None,
    notes: str,
    reason: str,
    ip_address: str | None,
) -> QuoteDecision:
    try:
        with transaction.atomic():
            quote = (
                quote_list_visible_to(user=user)
                .select_related("integration__company")
                .select_for_update(of=("self",))
                .get(pk=quote_id)
            )
            items = list(quote.line_items.filter(remote_deleted_at__isnull=True))
            approved, partial = decision_checks(
                quote=quote,
                items=items,
                in_force=QuoteDecision.objects.filter(quote=quote, voided_at__isnull=True).exists(),
                decision=decision,
                chosen=chosen,
            )
            record = QuoteDecision.objects.create(
                quote=quote,
                decided_by=user,
                decided_at=timezone.now(),
                decision=decision,
                is_partial=partial,
                notes=notes,
                rejection_reason=reason,
                ip_address=ip_address,
            )
            record.approved_line_items.set(approved)
            record.outbox_event = outbox_event_enqueue(
                integration=quote.integration,
                action="quote.decide",
                aggregate_type="quote",
                aggregate_id=str(quote.pk),
                payload=_payload(quote, record, approved, partial, user, shown=items),
                idempotency_key=f"quote-decision:{record.pk}",
            )
            record.save(update_fields=["outbox_event", "updated_at"])
            before = {"status": quote.status}
            quote.status = _local_status(decision, partial)
            quote.save(update_fields=["status", "updated_at"])
            AuditLog.objects.create(
                company=quote.integration.company,
                actor=user,
                action=f"quote.{decision}",
                target_type="quote",
                target_id=str(quote.pk),
                target_repr=str(quote)[:255],
                before=before,
                after={
                    "status": quote.status,
                    "decision_id": record.pk,
                    "partial": partial,
                    "line_item_ids": [item.pk for item in approved],
                    "approved_total": str(sum((i.total for i in approved), Decimal("0"))),
                    "notes": notes,
                    "reason": reason,
                },
                ip_address=ip_address,
            )
            transaction.on_commit(lambda: _notify_kick(record.pk), robust=True)
    except IntegrityError as exc:  # the one-in-force index: another decision won the race
        if "quotes_decision_one_in_force" in str(exc):
            raise _already_decided() from None
        raise
    logger.info(
        "quote decided",
        extra={"quote_id": quote_id, "decision": decision, "decision_id": record.pk},
    )
    return record


def _already_decided() -> QuoteDecisionError:
    return QuoteDecisionError(
        "This quote has already been decided; the page now shows that decision.",
        code="already_decided",
    )


def _approved_items(
    items: list[QuoteLineItem], chosen: list[int] | None, decision: str
) -> tuple[list[QuoteLineItem], bool]:
    if decision == QuoteDecision.Decision.REJECT:
        return [], False
    if chosen is None:
        return items, False
    by_id = {item.pk: item for item in items}
    unknown = [i for i in chosen if i not in by_id]
    if unknown:
        raise QuoteDecisionError(
            "Some chosen line items are not on this quote: "
            + ", ".join(str(i) for i in unknown)
            + ".",
            code="unknown_items",
            field="line_items",
        )
    wanted = set(chosen)
    approved = [item for item in items if item.pk in wanted]
    return approved, len(approved) < len(items)


def _local_status(decision: str, partial: bool) -> str:
    if decision == QuoteDecision.Decision.REJECT:
        return Quote.Status.REJECTED
    return Quote.Status.PARTIALLY_APPROVED if partial else Quote.Status.APPROVED


def _payload(
    quote: Quote,
    record: QuoteDecision,
    approved: list[QuoteLineItem],
    partial: bool,
    user: User,
    *,
    shown: list[QuoteLineItem],
) -> dict:
    """What every provider's `quote.decide` action receives (provider ids, never ours).

    `shown_line_item_ids`: the quote's live line items when the client decided (what they were
    shown); a partial approval sets aside only shown items not approved, never items the
    provider gained since. Events queued before this key existed lack it (providers then act
    on every item not approved).
    """
    return {
        "decision": record.decision,
        "quote_external_id": quote.external_id,
        "quote_number": quote.number,
        "approved_line_item_ids": [i.external_id for i in approved] if partial else None,
        "shown_line_item_ids": [i.external_id for i in shown],
        "approved_line_item_names": [i.name for i in approved],
        "notes": record.notes,
        "rejection_reason": record.rejection_reason,
        "decided_by": user.get_full_name() or user.email,
        "decided_by_email": user.email,
        "decided_at": record.decided_at.isoformat(),
    }


def _notify_kick(decision_id: int) -> None:
    try:
        celery_app.send_task(NOTIFY_TASK, args=[decision_id], retry=False)
    except Exception:
        logger.warning("could not queue the decision email; sending it inline", exc_info=True)
        quote_decision_notify(decision_id=decision_id)


def quote_decision_notify(*, decision_id: int) -> int:
    """Email the business's team about a decision. Returns the number of recipients."""
    record = QuoteDecision.objects.select_related(
        "quote__integration__company", "quote__client", "decided_by"
    ).get(pk=decision_id)
    quote = record.quote
    company = quote.integration.company
    recipients = sorted(
        TeamMembership.objects.filter(company=company, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not recipients:
        return 0
    verb = "rejected" if record.decision == QuoteDecision.Decision.REJECT else "approved"
    if record.is_partial:
        verb = "partly approved"
    who = record.decided_by.get_full_name() or record.decided_by.email
    client = quote.client.name if quote.client else "A client"
    lines = [
        f"{client} {verb} quote {quote.number or quote.external_id} ({quote.title}).",
        f"Decided by {who} at {record.decided_at.astimezone(company.zone):%Y-%m-%d %H:%M %Z}.",
    ]
    if record.decision == QuoteDecision.Decision.APPROVE:
        lines.append("Approved items:")
        lines += [f"  - {item.name} ({item.total})" for item in record.approved_line_items.all()]
        if record.notes:
            lines.append(f"Notes: {record.notes}")
    else:
        lines.append(f"Reason: {record.rejection_reason}")
    lines.append(
        f"The decision is being written back to {quote.integration.get_provider_display()}."
    )
    send_mail(
        subject=f"Quote {quote.number or quote.external_id} {verb} by {client}",
        message="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    return len(recipients)


def quote_decision_retry_writeback(*, user: User, decision_id: int) -> bool:
    """Staff: send a failed write-back again now (dead or waiting to retry). Returns whether
    anything was re-queued."""
    record = QuoteDecision.objects.select_related("outbox_event", "quote__integration").get(
        pk=decision_id, quote__in=quote_list_visible_to(user=user)
    )
    event = record.outbox_event
    if event is None:
        return False
    with transaction.atomic():
        if event.status == OutboxEvent.Status.DEAD:
            replayed = outbox_dead_replay(event_ids=[event.pk]) > 0
        else:
            replayed = (
                OutboxEvent.objects.filter(pk=event.pk, status=OutboxEvent.Status.FAILED).update(
                    next_attempt_at=timezone.now()
                )
                > 0
            )
            if replayed:
                from sync.outbox import outbox_kick

                transaction.on_commit(lambda: outbox_kick(event.pk), robust=True)
        if replayed:
            AuditLog.objects.create(
                company=record.quote.integration.company,
                actor=user,
                action="outbox.retry",
                target_type="outbox_event",
                target_id=str(event.pk),
                target_repr=f"quote decision {record.pk}",
            )
    return replayed
