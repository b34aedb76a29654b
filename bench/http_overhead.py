"""What the shared HTTP layer costs per provider call, measured against the sandbox.

    .venv/bin/python bench/http_overhead.py [--calls 2000]

Starts the sandbox in its own process (so it does not share our GIL), turns its rate limits
off, then times the same cheap call (ServiceM8 `GET vendor.json`, one small record) three ways:
a bare `requests.Session`, the HTTP layer without the rate limiter, and the HTTP layer with the
shared limiter (Redis when REDIS_URL is set, else in-process) at limits it never reaches. It
prints the median and p95 per call in µs, calls per second, and the layer's overhead (median
minus the bare median).
"""

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def interleaved(modes: dict, calls: int, rounds: int = 20) -> dict[str, tuple[list[float], float]]:
    """Run the modes in alternating rounds, so drift on the machine (other load, the sandbox
    warming up) falls on every mode alike."""
    for call in modes.values():  # warm connections and caches
        for _ in range(50):
            call()
    results = {name: ([], 0.0) for name in modes}
    per_round = max(1, calls // rounds)
    for _ in range(rounds):
        for name, call in modes.items():
            samples, total = results[name]
            started = time.perf_counter()
            for _ in range(per_round):
                t0 = time.perf_counter()
                call()
                samples.append((time.perf_counter() - t0) * 1e6)
            results[name] = (samples, total + time.perf_counter() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    import requests
    from django.conf import settings

    from integrations.base import ProviderContext
    from integrations.providers.servicem8.provider import ServiceM8Provider
    from integrations.ratelimit import RateWindow
    from integrations.sandbox.accounts import SERVICEM8_ACCOUNT

    port = free_port()
    db = Path(tempfile.mkdtemp()) / "bench-sandbox.sqlite3"
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "sandbox_serve", "--port", str(port), "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{root}/_sandbox/stats", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        requests.post(f"{root}/_sandbox/config", json={"enforce_rate_limits": False}, timeout=5)

        session = requests.Session()
        url = f"{root}/servicem8/api_1.0/vendor.json"
        headers = {"X-Api-Key": SERVICEM8_ACCOUNT.api_key}

        def bare():
            response = session.get(url, headers=headers, timeout=(5, 30))
            response.raise_for_status()
            response.json()

        def layer(limited: bool):
            provider = ServiceM8Provider(
                ProviderContext(
                    integration_id=f"bench-{limited}-{time.time_ns()}",
                    base_url_override=root,
                    credentials={"api_key": SERVICEM8_ACCOUNT.api_key},
                    rate_limit_enabled=limited,
                )
            )
            # Limits far above what the run reaches: measure the bookkeeping, not waiting.
            provider.rate_limits = (RateWindow(10**7, 60), RateWindow(10**8, 86400))
            client = provider.get_client()
            return lambda: client.get("vendor.json").json()

        # The per-call log line is part of the layer, but writing it to a terminal would
        # measure the terminal: keep the records, drop the output.
        logging.getLogger("integrations.http").handlers = [logging.NullHandler()]
        logging.getLogger("integrations.http").propagate = False
        limiter_name = f"HTTP layer + limiter ({'Redis' if settings.REDIS_URL else 'in-process'})"
        results = interleaved(
            {
                "bare requests.Session": bare,
                "HTTP layer, no limiter": layer(False),
                limiter_name: layer(True),
            },
            args.calls,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)

    base = statistics.median(results["bare requests.Session"][0])
    print(f"{args.calls} calls each, ServiceM8 GET vendor.json against the sandbox on loopback")
    print(f"{'':42} {'median µs':>10} {'p95 µs':>9} {'calls/s':>8} {'overhead µs':>12}")
    for name, (samples, total) in results.items():
        median = statistics.median(samples)
        p95 = statistics.quantiles(samples, n=20)[18]
        print(
            f"{name:42} {median:10.0f} {p95:9.0f} {len(samples) / total:8.0f} {median - base:12.0f}"
        )


if __name__ == "__main__":
    main()
