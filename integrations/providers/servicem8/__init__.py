"""ServiceM8 (https://developer.servicem8.com/): REST api_1.0 with an API key or OAuth2."""

from integrations.providers.servicem8 import webhooks  # noqa: F401 (registers the handler)
from integrations.providers.servicem8.provider import ServiceM8Provider
from integrations.registry import register

register(ServiceM8Provider)
