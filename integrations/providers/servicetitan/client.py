"""ServiceTitan HTTP client: page/pageSize paging and ServiceTitan's error bodies.

- Paging: `page` (1-based) and `pageSize` (1–5,000, default 50); the body says `hasMore`
  (https://partnerapis.servicetitan.io/docs/timeouts-and-pagination). We always ask for the
  maximum page size to spend as few calls as possible.
- A page that says `hasMore` but holds fewer records than its `pageSize` would make the next
  page start past records never returned (paging is by offset), so it raises PaginationError
  rather than skipping them silently.
- Server-side timeout is 100 s, so the read timeout matches it (same page).
- Errors: ApiErrorResponse `{type, title, status, traceId, errors: {field: [messages]}, data}`
  (spec: components.schemas.ApiErrorResponse, "following RFC 7807"): a 400 becomes a
  ProviderValidationError whose `field_errors` are `errors` (or the title/detail as
  "__all__") and whose `details["problem"]` keeps type, title, status, detail and traceId.
"""

from __future__ import annotations

from collections.abc import Iterator

from integrations.exceptions import PaginationError, ProviderMalformedResponseError
from integrations.http import ApiClient, Response, normalize_field_errors, paginate

MAX_PAGE_SIZE = 5000


class ServiceTitanClient(ApiClient):
    provider = "servicetitan"
    default_timeout = (5.0, 100.0)

    def field_errors(self, response: Response) -> dict[str, list[str]]:
        """ApiErrorResponse (RFC 7807 problem details) → {field: [messages]}. ASP.NET names
        a JSON-body field by its path (`$.soldBy`) or its name (`soldBy`, `SoldBy`): the `$.`
        is dropped. A problem without field errors gives its `detail` or `title` as
        "__all__" (ServiceTitan puts business-rule refusals there)."""
        try:
            body = response.json()
        except ProviderMalformedResponseError:
            return {}
        if not isinstance(body, dict):
            return {}
        errors = body.get("errors")
        if isinstance(errors, dict) and any(errors.values()):
            return {
                key.removeprefix("$.") if key != "$" else "__all__": messages
                for key, messages in normalize_field_errors(errors).items()
            }
        message = body.get("detail") or body.get("title")
        if message:
            return {"__all__": [str(message)[:500]]}
        return {}

    def iter_pages(
        self,
        path: str,
        *,
        params: dict | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_pages: int = 10_000,
    ) -> Iterator[list[dict]]:
        def fetch(page: int) -> tuple[list[dict], int | None]:
            response = self.get(
                path,
                params={**(params or {}), "page": page, "pageSize": page_size},
                use_cache=False,
            )
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ProviderMalformedResponseError(
                    f"servicetitan: {path} did not return a page of data", provider=self.provider
                )
            data = body["data"]
            if not body.get("hasMore"):
                return data, None
            expected = body.get("pageSize") or page_size
            if len(data) < min(expected, page_size):
                raise PaginationError(
                    f"servicetitan: {path} page {page} holds {len(data)} of {expected} records "
                    "but claims more; stopping rather than skipping records",
                    provider=self.provider,
                )
            return data, page + 1

        yield from paginate(fetch, start=1, max_pages=max_pages, provider=self.provider)

    def total_count(self, path: str, *, params: dict | None = None) -> int | None:
        """How many records a listing holds: one record's page with `includeTotal=true`, whose
        body's `totalCount` says (PaginatedResponse: "totalCount", null unless asked for).
        None when the body has no usable count."""
        body = self.get(
            path,
            params={**(params or {}), "page": 1, "pageSize": 1, "includeTotal": "true"},
            use_cache=False,
        ).json()
        total = body.get("totalCount") if isinstance(body, dict) else None
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            return None
        return total

    def get_record(self, path: str) -> dict:
        """One record by its path (`…/{resource}/{id}`). Raises ProviderNotFoundError on 404."""
        record = self.get(path, use_cache=False).json()
        if not isinstance(record, dict):
            raise ProviderMalformedResponseError(
                f"servicetitan: {path} did not return a record", provider=self.provider
            )
        return record
