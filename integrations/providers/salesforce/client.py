"""Salesforce REST client.

- Over the org's rolling 24-hour API allocation Salesforce answers **HTTP 403** with
  `[{"errorCode": "REQUEST_LIMIT_EXCEEDED", …}]`, not 429
  (https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm):
  that is a spent budget, so the work is deferred (BudgetExhausted), not failed.
- Every response carries `Sforce-Limit-Info: api-usage=USED/ALLOWED`; `last_usage` keeps the
  latest reading for the budget display and for throttling before the wall.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from integrations.exceptions import BudgetExhausted, ProviderError
from integrations.http import ApiClient, Response

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceClient(ApiClient):
    provider = "salesforce"
    last_usage: tuple[int, int] | None = None

    def classify_response(self, response: Response) -> ProviderError | None:
        match = _USAGE.search(response.header("Sforce-Limit-Info") or "")
        if match:
            self.last_usage = (int(match[1]), int(match[2]))
        if response.status == 403 and b"REQUEST_LIMIT_EXCEEDED" in response.content:
            # The allocation is a rolling 24 h window; calls free up gradually. Try again in
            # an hour rather than hammering a spent budget.
            return BudgetExhausted(
                "salesforce: the org's 24-hour API request allocation is spent "
                "(REQUEST_LIMIT_EXCEEDED)",
                provider=self.provider,
                status=403,
                retry_at=datetime.now(tz=UTC) + timedelta(hours=1),
            )
        return super().classify_response(response)
