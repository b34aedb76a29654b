"""Jobber (https://developer.getjobber.com/): GraphQL only. The provider itself arrives with its
own issue; the HTTP client's rate-limit handling is part of the shared framework."""

from integrations.providers.jobber import webhooks  # noqa: F401 (registers the handler)
