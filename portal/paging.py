"""Paging for the portal's lists without COUNT(*) and without OFFSET: each page fetches one row
more than it shows (so it knows a next page exists) starting from the previous page's last sort
key, so page 1,000 costs what page 1 costs. Counting or skipping 100,000 rows on every request
would cost more than rendering the page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

# -- keyset paging: "Next" links that carry the last row's sort key ------------------------------


@dataclass
class KeysetPage:
    object_list: list
    next_token: str | None
    is_first: bool

    @property
    def has_next(self) -> bool:
        return self.next_token is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or not self.is_first


def _encode(value, pk: int) -> str:
    import base64
    import json

    raw = json.dumps([value.isoformat() if value is not None else None, pk])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(token: str | None, field) -> tuple[bool, object, int] | None:
    """(ok, value, pk) from a token; None for no token or one that does not parse."""
    import base64
    import binascii
    import json

    from django.utils.dateparse import parse_date, parse_datetime

    if not token:
        return None
    try:
        raw, pk = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        pk = int(pk)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        return None
    if raw is None:
        return (True, None, pk)
    parse = parse_datetime if field.get_internal_type() == "DateTimeField" else parse_date
    try:
        value = parse(str(raw))
    except ValueError:
        return None
    return None if value is None else (True, value, pk)


def keyset_page(
    queryset: QuerySet, token: str | None, *, size: int, field: str, descending: bool
) -> KeysetPage:
    """The page after `token` of `queryset` ordered by (`field`, pk), both ascending or both
    descending, with NULLs where PostgreSQL puts them by default (last ascending, first
    descending). Each page is an index range scan from the cursor on, whatever its depth:
    `(field, id) > (v, i)` row comparisons, plus the NULL block when the walk reaches it.
    A token that does not parse is the first page."""
    from django.db.models import Q

    model_field = queryset.model._meta.get_field(field)
    column = f'"{queryset.model._meta.db_table}"."{model_field.column}"'
    pk_column = f'"{queryset.model._meta.db_table}"."{queryset.model._meta.pk.column}"'
    order = (f"-{field}", "-pk") if descending else (field, "pk")
    queryset = queryset.order_by(*order)
    cursor = _decode(token, model_field)
    null = Q(**{f"{field}__isnull": True})
    if cursor is None:
        parts = [queryset]
    else:
        _, value, pk = cursor
        op = "<" if descending else ">"
        after = {"pk__lt": pk} if descending else {"pk__gt": pk}
        if value is None:
            parts = [queryset.filter(null, **after)]
            if descending:  # NULLs come first: every non-NULL row is still ahead
                parts.append(queryset.exclude(null))
        else:
            beyond = queryset.extra(  # noqa: S610 (columns are ours, values are parameters)
                where=[f"({column}, {pk_column}) {op} (%s, %s)"], params=[value, pk]
            )
            parts = [beyond] if descending else [beyond, queryset.filter(null)]
    rows: list = []
    for part in parts:
        if len(rows) > size:
            break
        rows += list(part[: size + 1 - len(rows)])
    page, more = rows[:size], len(rows) > size
    next_token = _encode(getattr(page[-1], field), page[-1].pk) if more and page else None
    return KeysetPage(object_list=page, next_token=next_token, is_first=cursor is None)
