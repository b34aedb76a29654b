"""Page-number paging without COUNT(*): fetch one row more than the page to know whether a next
page exists. Counting 100,000 rows on every request costs more than rendering the page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

MAX_PAGE = 10_000


@dataclass
class Page:
    object_list: list
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def page_of(queryset: QuerySet, number, *, size: int) -> Page:
    """The `number`th page (1-based; anything unparsable or out of range is page 1)."""
    try:
        number = int(number)
    except (TypeError, ValueError):
        number = 1
    number = min(max(number, 1), MAX_PAGE)
    offset = (number - 1) * size
    if offset:
        # A deep page: walk the ordering's index for ids only (an index-only scan), then load
        # just those rows, rather than building and discarding `offset` full rows.
        ids = list(queryset.values_list("pk", flat=True)[offset : offset + size + 1])
        by_id = {row.pk: row for row in queryset.filter(pk__in=ids)} if ids else {}
        rows = [by_id[pk] for pk in ids if pk in by_id]
    else:
        rows = list(queryset[offset : offset + size + 1])
    if not rows and number > 1:  # past the end: show the first page rather than nothing
        return page_of(queryset, 1, size=size)
    return Page(object_list=rows[:size], number=number, has_next=len(rows) > size)
