"""HubSpot (https://developers.hubspot.com/): CRM v3. Only the webhook handler exists so far;
the Provider class arrives with its own issue."""

from integrations.providers.hubspot import webhooks  # noqa: F401 (registers the handler)
