"""ServiceM8 HTTP client: cursor pagination and ServiceM8's error bodies.

- Pagination: send `cursor=-1` first, then the `x-next-cursor` response header's value; no
  header means the last page; at most 5,000 records a page.
  https://developer.servicem8.com/docs/pagination (not in the OpenAPI file).
- One record: `GET /{object}/{uuid}.json` returns the object itself (spec: e.g.
  `/job/{uuid}.json` → components.schemas.Job), 404 when there is no such uuid.
- A file: `GET /attachment/{uuid}.file` returns an attachment's bytes
  (https://developer.servicem8.com/docs/attaching-files-to-a-job-diary uploads with `POST` to
  the same address; the OpenAPI file lists neither).
- Errors: `{"errorCode": …, "message": …}`; a 429's message says whether the per-minute or the
  per-day limit was hit (spec info.description: 180/min and 20,000/day per add-on per account).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from integrations.exceptions import BudgetExhausted, ProviderError, ProviderMalformedResponseError
from integrations.http import ApiClient, Response, paginate


class ServiceM8Client(ApiClient):
    provider = "servicem8"

    def classify_response(self, response: Response) -> ProviderError | None:
        if response.status == 429 and b"per day" in response.content:
            # The day's budget is spent: waiting seconds will not help. ServiceM8 does not say
            # when the day rolls over, so defer for an hour and let the retry find out.
            retry_at = datetime.now(tz=UTC) + timedelta(hours=1)
            return BudgetExhausted(
                "servicem8: the account's daily API limit (20,000 requests) is exceeded",
                provider=self.provider,
                status=429,
                retry_at=retry_at,
            )
        return super().classify_response(response)

    def field_errors(self, response: Response) -> dict:
        try:
            body = response.json()
        except ProviderMalformedResponseError:
            return {}
        if isinstance(body, dict) and body.get("message"):
            return {"__all__": [str(body["message"])[:500]]}
        return {}

    def iter_pages(
        self, object_name: str, *, filters: list[str] | None = None, max_pages: int = 10_000
    ) -> Iterator[list[dict]]:
        """Every record of one object, page by page. `filters` are `$filter` conditions,
        joined with `and` (ServiceM8 allows up to 10, operators eq/ne/gt/lt only)."""

        def fetch(cursor: str) -> tuple[list[dict], str | None]:
            params = {"cursor": cursor}
            if filters:
                params["$filter"] = " and ".join(filters)
            response = self.get(f"{object_name}.json", params=params, use_cache=False)
            records = response.json()
            if not isinstance(records, list):
                raise ProviderMalformedResponseError(
                    f"servicem8: {object_name}.json did not return a list", provider=self.provider
                )
            return records, response.header("x-next-cursor") or None

        yield from paginate(fetch, start="-1", max_pages=max_pages, provider=self.provider)

    def get_record(self, object_name: str, uuid: str) -> dict:
        """One record by uuid, deleted ones included (active 0). Raises ProviderNotFoundError
        on 404 and ProviderValidationError on a malformed uuid (ServiceM8 answers 400)."""
        record = self.get(f"{object_name}/{uuid}.json", use_cache=False).json()
        if not isinstance(record, dict):
            raise ProviderMalformedResponseError(
                f"servicem8: {object_name}/{{uuid}}.json did not return a record",
                provider=self.provider,
            )
        return record

    def download(self, object_name: str, uuid: str) -> Response:
        """`GET /{object}/{uuid}.file`, streamed: read it with `iter_bytes()`. Raises
        ProviderNotFoundError on 404, like any other call."""
        return self.stream(f"{object_name}/{uuid}.file", headers={"Accept": "*/*"})
