"""The portal's search box: case-insensitive substring search over a few text columns and the
client's name, served by trigram indexes on PostgreSQL.

On PostgreSQL the text columns are matched as one expression, `UPPER(a || ' ' || b …) LIKE
'%Q%'`, exactly the expression of a `gin_trgm_ops` index (portal and quotes migrations
"search_trgm"), and matching clients are resolved to ids first, so the two conditions are a
BitmapOr of index scans: a search that matches nothing in 100,000 rows reads no rows.
Elsewhere (SQLite in `make run`) the same search runs as plain `icontains` filters."""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet

from portal.models import Client

MAX_CLIENT_MATCHES = 1000


def _like(text: str) -> str:
    escaped = text.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_search(
    queryset: QuerySet, query: str, *, columns: tuple[str, ...], clients: QuerySet | None = None
) -> QuerySet:
    """Rows whose `columns` (together) or whose client's name contain `query`. `clients` is
    the user's visible clients: matching names are looked up within them, so another
    company's look-alike names can neither crowd out the user's own nor cost a global scan."""
    candidates = Client.objects.all() if clients is None else clients
    client_ids = list(
        candidates.filter(name__icontains=query)
        .order_by()
        .values_list("pk", flat=True)[:MAX_CLIENT_MATCHES]
    )
    if connection.vendor != "postgresql":
        text = Q()
        for column in columns:
            text |= Q(**{f"{column}__icontains": query})
        return queryset.filter(text | Q(client_id__in=client_ids))
    table = queryset.model._meta.db_table
    expression = " || ' ' || ".join(f'"{table}"."{column}"' for column in columns)
    where = f"UPPER({expression}) LIKE %s"
    params: list = [_like(query)]
    if client_ids:
        where = f'({where} OR "{table}"."client_id" = ANY(%s))'
        params.append(client_ids)
    return queryset.extra(where=[where], params=params)  # noqa: S610 (columns are ours)
