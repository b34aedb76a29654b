"""Admin operations: alerts, operators, OAuth connect (documented in .env.example)."""

from config.env import env

# Operators of the deployment: they get every integration's alerts (besides each company's
# team admins). Comma-separated email addresses.
ADMINS = env.list("DJANGO_ADMINS", default=[])

# Alert once per incident when an entity's sync has failed this many runs in a row…
ALERT_SYNC_FAILURES_IN_A_ROW = env.int("ALERT_SYNC_FAILURES_IN_A_ROW", default=3)
# …and when an integration has at least this many dead-lettered outbox events.
ALERT_DEAD_LETTERS_THRESHOLD = env.int("ALERT_DEAD_LETTERS_THRESHOLD", default=10)

# OAuth authorization-code "Connect": how long a started connection may take before its
# `state` expires (seconds). The scopes asked for are the provider's (`oauth_scopes`), or
# `<KEY>_OAUTH_SCOPES` from the environment (integrations.conf).
INTEGRATION_OAUTH_STATE_MAX_AGE = env.int("INTEGRATION_OAUTH_STATE_MAX_AGE", default=600)

# host:port pairs ("host:*" for any port) a company's team admins may point an integration's
# base URL at: the provider sandbox of `make run`. Any other override is for operators
# (superusers) only. Production defaults to none (config/settings/production.py).
INTEGRATION_SANDBOX_HOSTS = env.list(
    "INTEGRATION_SANDBOX_HOSTS", default=["127.0.0.1:8765", "localhost:8765"]
)

# The public address of this deployment (scheme and host, e.g. https://fieldbridge.example.com):
# the base of the webhook callback URLs subscribed at providers from the admin
# (/webhooks/<provider>/<integration id>/<token>/). Empty: subscribing is refused with a message.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="").strip().rstrip("/")
