"""Jobber GraphQL client.

- Every request is `POST /api/graphql` with JSON, a Bearer token and the required
  `X-JOBBER-GRAPHQL-VERSION` header
  (https://developer.getjobber.com/docs/using_jobbers_api/api_versioning).
- Rate limits (https://developer.getjobber.com/docs/using_jobbers_api/api_rate_limits):
  2,500 requests per 5 minutes per app and account (HTTP 429), and a query-cost leaky bucket
  that answers HTTP **200** with `errors[0].extensions.code == "THROTTLED"` when a query costs
  more than is available. Both are rate limits here; for THROTTLED the wait is the missing
  cost divided by the restore rate, from `extensions.cost.throttleStatus`.
"""

from __future__ import annotations

from typing import Any

from integrations.exceptions import (
    ProviderError,
    ProviderMalformedResponseError,
    ProviderRateLimitError,
)
from integrations.http import ApiClient, Response

API_VERSION = "2025-04-16"


class JobberClient(ApiClient):
    provider = "jobber"

    def classify_response(self, response: Response) -> ProviderError | None:
        if response.status == 200:
            throttled = self._throttle_wait(response)
            if throttled is not None:
                return ProviderRateLimitError(
                    "jobber: the query cost exceeds the available budget (THROTTLED)",
                    provider=self.provider,
                    status=200,
                    retry_after=throttled,
                )
        return super().classify_response(response)

    @staticmethod
    def _throttle_wait(response: Response) -> float | None:
        try:
            body = response.json()
        except ProviderMalformedResponseError:
            return None
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors or (errors[0].get("extensions") or {}).get("code") != "THROTTLED":
            return None
        cost = (body.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        try:
            missing = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
            return max(1.0, missing / float(status["restoreRate"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return 1.0

    def query(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        response = self.request(
            "POST",
            "",
            json_body={"query": query, "variables": variables or {}},
            headers={"X-JOBBER-GRAPHQL-VERSION": API_VERSION, "Content-Type": "application/json"},
        )
        return response.json()
