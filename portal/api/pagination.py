"""Cursor pagination: no COUNT(*), and each page is an index walk over the view's `ordering`
(which must be unique and indexed, e.g. "-id")."""

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response


def _is_bigint(text: str) -> bool:
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and -(2**63) <= int(text) < 2**63


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
            cursor = super().decode_cursor(request)
        except Exception:  # NotFound in DRF: a malformed cursor is bad input here
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None
        # Every list is ordered by id: a position must be one (a crafted "abc" or "1.5"
        # would otherwise reach the query and fail there).
        position = cursor.position if cursor is not None else None
        if position is not None and not _is_bigint(position):
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]})
        return cursor

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


# Stands in for a branch's value while its walk is compiled once for all values of a field.
# No stored id is negative; if another parameter (a crafted cursor position) happens to equal
# it, the placeholder is not found exactly once and the plain query answers.
_BRANCH_PLACEHOLDER = -(2**62) - 7


class _Branched:
    """A list's queryset whose page is read as one index walk per branch (a field and a value,
    such as `integration_id = 3`, portal.selectors.visibility_branches) instead of one walk of
    the ordering's index that filters out other tenants' rows: each branch gives its first
    `stop` rows in the page's order past the cursor, and the page is the first `stop` of
    their union, so it holds the same rows in the same order as the plain query.

    It offers what DRF's CursorPagination.paginate_queryset uses: order_by, filter and a
    slice. The branches must cover the queryset's scope (every row it returns matches at
    least one), and the ordering must be unique (an id), as cursor pagination needs anyway.
    Each field's walk is compiled once, with a placeholder for the value (compiling the
    queryset once per branch cost more Python time than the walks saved PostgreSQL)."""

    def __init__(self, queryset: QuerySet, branches: dict[str, tuple[int, ...]]) -> None:
        self.queryset = queryset
        self.branches = branches

    def order_by(self, *fields) -> "_Branched":
        return _Branched(self.queryset.order_by(*fields), self.branches)

    def filter(self, *args, **kwargs) -> "_Branched":
        return _Branched(self.queryset.filter(*args, **kwargs), self.branches)

    def __getitem__(self, k: slice) -> QuerySet:
        if not isinstance(k, slice) or k.stop is None or k.step is not None:
            raise TypeError("a page is read by a bounded slice")
        parts: list[str] = []
        params: list = []
        for field, values in self.branches.items():
            walk = self.queryset.filter(**{field: _BRANCH_PLACEHOLDER}).values("pk")[: k.stop]
            try:
                sql, walk_params = walk.query.get_compiler(self.queryset.db).as_sql()
            except EmptyResultSet:  # a condition nothing can match: the plain query says so
                return self.queryset[k]
            at = [i for i, p in enumerate(walk_params) if p == _BRANCH_PLACEHOLDER]
            if len(at) != 1:  # the placeholder is ambiguous: the plain query, same rows
                return self.queryset[k]
            for value in values:
                parts.append(f"({sql})")
                params += [*walk_params[: at[0]], value, *walk_params[at[0] + 1 :]]
        page_ids = RawSQL(" UNION ALL ".join(parts), params)  # noqa: S611 - compiled by Django
        return self.queryset.filter(pk__in=page_ids)[k]


def get_paginated_response(
    *,
    pagination_class,
    serializer_class,
    queryset,
    request,
    view,
    ordering: str = "-id",
    context: dict | None = None,
    branches: dict[str, tuple[int, ...]] | None = None,
) -> Response:
    """One page of `queryset` as the paginated answer. `branches` (a list's scope split by
    portal.selectors.visibility_branches) reads the page as one index walk per branch."""
    paginator = pagination_class()
    paginator.ordering = ordering
    if branches and connections[queryset.db].features.supports_slicing_ordering_in_compound:
        # (SQLite, `make run`'s database, takes no LIMIT inside a UNION: the plain query)
        queryset = _Branched(queryset, branches)
    page = paginator.paginate_queryset(queryset, request, view=view)
    context = {"request": request, "view": view, **(context or {})}
    serializer = serializer_class(page, many=True, context=context)
    return paginator.get_paginated_response(serializer.data)
