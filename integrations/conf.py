"""App-level provider settings from the environment, as `<KEY>_<NAME>` (SERVICEM8_CLIENT_ID,
SERVICETITAN_APP_KEY…), after anymail's get_anymail_setting. Per-company credentials live only
in Integration.credentials."""

import os

from django.core.exceptions import ImproperlyConfigured

UNSET = object()


def integration_setting(key: str, name: str, default=UNSET):
    var = f"{key}_{name}".upper()
    value = os.environ.get(var)
    if value:
        return value
    if default is UNSET:
        raise ImproperlyConfigured(f"Set {var} in the environment")
    return default
