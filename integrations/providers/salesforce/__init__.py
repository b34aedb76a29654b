"""Salesforce (REST + SOQL). The provider itself arrives with its own issue; the HTTP client's
rate-limit handling is part of the shared framework."""
