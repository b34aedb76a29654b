"""A stand-in for a Celery worker process in the end-to-end tests: it loads an Integration
from the (test) database and makes provider calls through the real HTTP layer, sharing the
token cache, the refresh lock and the rate limiter with its sibling processes.

    python -m tests.integrations.provider_worker INTEGRATION_ID CALLS START_AT [PAUSE]

It waits until START_AT (epoch seconds) so that siblings start together, makes CALLS cheap
authenticated reads (the provider's connection probe), pausing PAUSE seconds between them,
and prints one JSON line: {"ok": n, "errors": [...]}.
"""

import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from integrations.exceptions import ProviderError
    from integrations.models import Integration
    from integrations.services import provider_for

    integration_id, calls, start_at = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    provider = provider_for(Integration.objects.select_related("company").get(pk=integration_id))
    time.sleep(max(0.0, start_at - time.time()))
    ok, errors = 0, []
    for _ in range(calls):
        try:
            provider.probe()
            ok += 1
        except ProviderError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        if pause:
            time.sleep(pause)
    print(json.dumps({"ok": ok, "errors": errors}))


if __name__ == "__main__":
    main()
