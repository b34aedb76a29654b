"""ServiceTitan (https://developer.servicetitan.io/): REST v2, tenant in the path."""

from integrations.providers.servicetitan import webhooks  # noqa: F401 (registers the handler)
from integrations.providers.servicetitan.provider import ServiceTitanProvider
from integrations.registry import register

register(ServiceTitanProvider)
