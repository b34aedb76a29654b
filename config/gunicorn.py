"""gunicorn settings for the web process (Dockerfile, docker-compose.yml):

    gunicorn config.wsgi:application --config config/gunicorn.py

Bind address and worker count come from GUNICORN_BIND (default 0.0.0.0:8000) and
GUNICORN_WORKERS (default 3). With PROMETHEUS_MULTIPROC_DIR set (prometheus_client's
multiprocess mode, see config/metrics.py), the directory is emptied when the server starts,
before any worker writes to it, and a worker's live gauges are dropped when it exits; its
counters stay, so /metrics keeps adding them up.
"""

import os
import shutil
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")  # noqa: S104 - inside the container
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
accesslog = "-"
# Webhook URLs carry an integration's secret path token: redacted in access log lines.
logger_class = "config.gunicorn_logging.RedactingLogger"


def _multiproc_dir() -> Path | None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(directory) if directory else None


def on_starting(server) -> None:
    """Empty the metrics directory: files of a previous run's processes would be added up."""
    directory = _multiproc_dir()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    if _multiproc_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
