"""The site's URLs plus the API benchmark's baseline: a bare Django view answering the quotes
list's first page from the same query (`quote_list_visible_to`, newest first, the same columns
as values() rows, 50 a page, one extra row to know there is a next page) as plain JSON, with
no DRF in the way.

It is served the way the API's list is, so that only DRF and the API's own work tell them
apart: under /api/ (the portal's time-zone middleware skips /api/ paths: UTC, no time-zone
lookup), outside a transaction (as every read-only API view, portal.api.mixins), with the
user's scope from the shared cache (as the API reads it, portal.selectors.user_scope)."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import handler404, handler500  # noqa: F401 - the site's error handlers
from config.urls import urlpatterns as site_urlpatterns
from quotes.apis import LIST_COLUMNS
from quotes.selectors import quote_list_visible_to

PAGE = 50


@transaction.non_atomic_requests
def quote_page_baseline(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "sign in"}, status=401)
    request.user.share_scope_cache = True  # as CompanyScopedApiMixin.perform_authentication
    # The same query as the API's list: the visible quotes, newest first, as values() rows of
    # the same columns (the API reads rows, not models, since its serializer was made cheap).
    quotes = quote_list_visible_to(user=request.user).values(*LIST_COLUMNS)
    rows = list(quotes.order_by("-id")[: PAGE + 1])
    results = [
        {
            "id": q["id"],
            "integration_id": q["integration_id"],
            "external_id": q["external_id"],
            "remote_updated_at": q["remote_updated_at"],
            "created_at": q["created_at"],
            "updated_at": q["updated_at"],
            "client_id": q["client_id"],
            "client_name": q["client__name"],
            "job_id": q["job_id"],
            "provider": q["integration__provider"],
            "number": q["number"],
            "title": q["title"],
            "status": q["status"],
            "provider_status": q["provider_status"],
            "subtotal": q["subtotal"],
            "tax_total": q["tax_total"],
            "total": q["total"],
            "prices_include_tax": q["prices_include_tax"],
            "currency": q["currency"],
            "valid_until": q["valid_until"],
            "sent_at": q["sent_at"],
        }
        for q in rows[:PAGE]
    ]
    next_link = f"?after={rows[PAGE - 1]['id']}" if len(rows) > PAGE else None
    return JsonResponse(
        {"next": next_link, "previous": None, "results": results}, encoder=DjangoJSONEncoder
    )


urlpatterns = [path("api/bench/quotes-baseline/", quote_page_baseline), *site_urlpatterns]
