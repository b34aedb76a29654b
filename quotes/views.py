"""The client portal's quote pages and dashboard. Views are thin: a selector builds the context,
a service (quotes.services) takes the decision. Every lookup goes through the user's visibility
scope, so someone else's quote is a 404."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from portal.exports import csv_response
from portal.paging import keyset_page
from portal.search import text_search
from portal.selectors import client_list_visible_to, job_list_visible_to
from portal.views import client_ip
from quotes.models import Quote, QuoteDecision, QuoteLineItem
from quotes.selectors import (
    decision_in_force,
    quote_amounts,
    quote_list_awaiting_decision,
    quote_list_visible_to,
)
from quotes.services import (
    QuoteDecisionError,
    decidable_problem,
    decision_checks,
    decision_inputs,
    quote_approve,
    quote_decision_retry_writeback,
    quote_reject,
)

PAGE_SIZE = 50
QUOTE_FILTERS = {
    "awaiting": "Awaiting a decision",
    "decided": "Decided",
    "all": "All quotes",
}


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Quotes awaiting a decision first, then upcoming and recent jobs."""
    now = timezone.now()
    jobs = job_list_visible_to(user=request.user)
    context = {
        "clients": list(client_list_visible_to(user=request.user)[:21]),
        "awaiting_quotes": list(quote_list_awaiting_decision(user=request.user)[:20]),
        "upcoming_jobs": list(
            jobs.filter(scheduled_start__gte=now).order_by("scheduled_start", "id")[:10]
        ),
        "recent_jobs": list(
            jobs.filter(scheduled_start__lt=now).order_by("-scheduled_start", "-id")[:10]
        ),
    }
    return render(request, "portal/dashboard.html", context)


def _filtered_quotes(request: HttpRequest):
    """The quotes list's rows (shown or exported): visibility scope, the "show" filter and
    the search."""
    show = request.GET.get("show", "awaiting")
    if show not in QUOTE_FILTERS:
        show = "awaiting"
    query = (request.GET.get("q") or "").replace("\x00", "").strip()[:100]
    if show == "awaiting":
        quotes = quote_list_awaiting_decision(user=request.user)
    else:
        quotes = quote_list_visible_to(user=request.user).order_by("-sent_at", "-id")
        if show == "decided":
            from django.db.models import Exists

            quotes = quotes.filter(Exists(decision_in_force()))
    if query:
        quotes = text_search(
            quotes,
            query,
            columns=("number", "title"),
            clients=client_list_visible_to(user=request.user),
        )
    return quotes, show, query


@login_required
def quote_list(request: HttpRequest) -> HttpResponse:
    quotes, show, query = _filtered_quotes(request)
    page = keyset_page(
        quotes,
        request.GET.get("after"),
        size=PAGE_SIZE,
        field="valid_until" if show == "awaiting" else "sent_at",
        descending=show != "awaiting",
    )
    return render(
        request,
        "quotes/quote_list.html",
        {"page": page, "show": show, "filters": QUOTE_FILTERS, "q": query},
    )


@login_required
def quote_export(request: HttpRequest) -> HttpResponse:
    """The quotes list, as filtered, as CSV."""
    quotes, show, _query = _filtered_quotes(request)
    zone = timezone.get_current_timezone()  # the business's; the rows stream after we return
    rows = (
        [
            q.number,
            q.title,
            q.client.name if q.client else "",
            q.get_status_display(),
            q.currency,
            q.total,
            q.valid_until.isoformat() if q.valid_until else "",
            q.sent_at.astimezone(zone).isoformat() if q.sent_at else "",
        ]
        for q in quotes.iterator(chunk_size=2000)
    )
    header = ["number", "title", "client", "status", "currency", "total", "valid_until", "sent_at"]
    return csv_response(f"quotes-{show}.csv", header, rows)


def _quote_for(request: HttpRequest, pk: int) -> Quote:
    decisions = QuoteDecision.objects.select_related("decided_by", "outbox_event").prefetch_related(
        "approved_line_items"
    )
    try:
        return (
            quote_list_visible_to(user=request.user)
            .select_related("job", "integration__company")
            .prefetch_related(
                Prefetch(
                    "line_items",
                    queryset=QuoteLineItem.objects.filter(remote_deleted_at__isnull=True),
                    to_attr="live_items",
                ),
                Prefetch("decisions", queryset=decisions, to_attr="all_decisions"),
            )
            .get(pk=pk)
        )
    except Quote.DoesNotExist:
        raise Http404("No such quote") from None


def _is_team_member(request: HttpRequest, quote: Quote) -> bool:
    user = request.user
    return (
        user.is_superuser
        or user.team_memberships.filter(company_id=quote.integration.company_id).exists()
    )


def _quote_context(request: HttpRequest, quote: Quote, **extra) -> dict:
    in_force = next((d for d in quote.all_decisions if d.voided_at is None), None)
    problem = None if in_force else decidable_problem(quote)
    amounts = quote_amounts(quote, quote.live_items)
    return {
        "amounts": amounts,
        "quote": quote,
        "items": quote.live_items,
        "decision": in_force,
        "history": [d for d in quote.all_decisions if d.voided_at is not None],
        "can_decide": in_force is None and problem is None,
        "problem": problem.messages[0] if problem else "",
        "tax_rate": amounts["tax_rate"],
        "is_team_member": _is_team_member(request, quote),
        "provider_name": quote.integration.get_provider_display(),
        **extra,
    }


@login_required
def quote_detail(request: HttpRequest, pk: int) -> HttpResponse:
    quote = _quote_for(request, pk)
    return render(request, "quotes/quote_detail.html", _quote_context(request, quote))


@login_required
@require_http_methods(["GET", "POST"])
def quote_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Two steps, both plain forms (no script needed): `step=review` shows what will be sent;
    `step=confirm` takes the decision."""
    quote = _quote_for(request, pk)
    if request.method == "GET":  # e.g. back from signing in again: start from the quote
        return redirect("quotes:detail", pk=quote.pk)
    action = request.POST.get("action")
    step = request.POST.get("step", "review")
    if action not in {"approve_all", "approve_selected", "reject"}:
        messages.error(request, "Choose whether to approve or reject the quote.")
        return redirect("quotes:detail", pk=quote.pk)
    chosen = request.POST.getlist("line_items") if action == "approve_selected" else None
    notes = request.POST.get("notes", "")
    reason = request.POST.get("reason", "")
    context = _quote_context(request, quote, action=action, notes=notes, reason=reason)
    try:
        if step == "confirm":
            if action == "reject":
                quote_reject(
                    user=request.user,
                    quote_id=quote.pk,
                    reason=reason,
                    ip_address=client_ip(request),
                )
                messages.success(request, "You rejected the quote. The business has been told.")
            else:
                decision = quote_approve(
                    user=request.user,
                    quote_id=quote.pk,
                    line_item_ids=chosen,
                    notes=notes,
                    ip_address=client_ip(request),
                )
                messages.success(
                    request,
                    "You approved the chosen items. The business has been told."
                    if decision.is_partial
                    else "You approved the quote. The business has been told.",
                )
            return redirect("quotes:detail", pk=quote.pk)
        context.update(_review(quote, action, chosen, notes, reason))
    except QuoteDecisionError as exc:
        if exc.code in {"already_decided", "not_open", "expired"}:
            # The quote changed under the user (another browser decided it, or it expired):
            # show it as it is now, with the reason on top.
            messages.error(request, exc.messages[0])
            return redirect("quotes:detail", pk=quote.pk)
        context["form_error"] = exc.messages[0]
        context["error_field"] = exc.field
        return render(request, "quotes/quote_detail.html", context, status=422)
    return render(request, "quotes/quote_confirm.html", context)


def _review(quote: Quote, action: str, chosen, notes: str, reason: str) -> dict:
    """What the confirmation page shows, after the service's own checks."""
    decision = (
        QuoteDecision.Decision.REJECT if action == "reject" else QuoteDecision.Decision.APPROVE
    )
    chosen, _, _ = decision_inputs(
        decision=decision, line_item_ids=chosen, notes=notes, reason=reason
    )
    items = quote.live_items
    approved, _ = decision_checks(
        quote=quote,
        items=items,
        in_force=any(d.voided_at is None for d in quote.all_decisions),
        decision=decision,
        chosen=chosen,
    )
    if decision == QuoteDecision.Decision.REJECT:
        return {"approved": [], "approved_subtotal": None}
    subtotal = sum((item.total for item in approved), Decimal("0"))
    amounts = quote_amounts(quote, items)  # the same figures the quote page shows
    if len(approved) == len(items):
        tax, total = amounts["tax"], amounts["total"]
    else:
        tax = (subtotal * amounts["tax_rate"]).quantize(Decimal("0.01"))
        total = subtotal + tax
    return {
        "approved": approved,
        "chosen_ids": [item.pk for item in approved] if chosen is not None else [],
        "approved_subtotal": subtotal,
        "approved_tax": tax,
        "approved_total": total,
    }


@login_required
@require_POST
def quote_retry_writeback(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff only: send a failed write-back again."""
    quote = _quote_for(request, pk)
    if not _is_team_member(request, quote):
        raise Http404("No such quote")
    decision = next((d for d in quote.all_decisions if d.voided_at is None), None)
    if decision and quote_decision_retry_writeback(user=request.user, decision_id=decision.pk):
        messages.success(request, "The decision will be sent again now.")
    else:
        messages.info(request, "There is nothing to retry: the write-back is not failed.")
    return redirect("quotes:detail", pk=quote.pk)
