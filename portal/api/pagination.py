"""Cursor pagination: no COUNT(*), and each page is an index walk over the view's `ordering`
(which must be unique and indexed, e.g. "-id")."""

from django.conf import settings
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response


class ApiCursorPagination(pagination.CursorPagination):
    ordering = "-id"
    cursor_query_description = "The page to return: a `next`/`previous` link's `cursor` value."
    page_size_query_param = "page_size"
    page_size_query_description = "Results per page (default and maximum set by the server)."

    def __init__(self) -> None:
        # Read per request, so settings (and tests) can change them.
        self.page_size = settings.API_PAGE_SIZE
        self.max_page_size = settings.API_MAX_PAGE_SIZE

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except Exception:  # NotFound in DRF: a malformed cursor is bad input here
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None

    def get_paginated_response_schema(self, schema):
        body = super().get_paginated_response_schema(schema)
        body["properties"]["next"]["description"] = "The next page, or null on the last page."
        body["properties"]["previous"]["description"] = (
            "The previous page, or null on the first page."
        )
        body["properties"]["results"]["description"] = (
            "This page's objects, in the list's order (newest first unless the endpoint says "
            "otherwise); at most `page_size`."
        )
        body["required"] = ["next", "previous", "results"]
        return body


def get_paginated_response(
    *,
    pagination_class,
    serializer_class,
    queryset,
    request,
    view,
    ordering: str = "-id",
    context: dict | None = None,
) -> Response:
    paginator = pagination_class()
    paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, request, view=view)
    context = {"request": request, "view": view, **(context or {})}
    serializer = serializer_class(page, many=True, context=context)
    return paginator.get_paginated_response(serializer.data)
