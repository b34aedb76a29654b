"""Settings for bench/api_latency.py's gunicorn: the test settings (DEBUG off) with the API
benchmark's URLs (the site's plus a bare baseline view) and any host."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "bench.api_bench_urls"
ALLOWED_HOSTS = ["*"]
