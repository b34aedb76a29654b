"""Diagnostic task: proves a worker is consuming, can reach the database, and returns results."""

import socket

from celery import shared_task


@shared_task(name="portal.ping")
def ping(payload: dict) -> dict:
    from config.logging import request_id_var
    from portal.models import Company

    return {
        "echo": payload,
        "worker": socket.gethostname(),
        "companies": Company.objects.count(),
        "request_id": request_id_var.get(),
    }
