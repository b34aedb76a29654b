"""Shared plumbing for every app's API: authentication, the tenancy mixin, pagination,
filters, throttles, the error format and schema helpers."""
