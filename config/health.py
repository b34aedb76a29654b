"""Health endpoints for orchestrators and operators.

/health          liveness and version
/health/live     liveness only (the process answers)
/health/ready    database and broker reachable, migrations applied; 503 otherwise
/health/detailed each component's status and response time, and each integration's last
                 connection test (staff session or `Authorization: Bearer HEALTH_CHECK_TOKEN`)
"""

import hmac
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection


def _check_database() -> str | None:
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return None


def _check_migrations() -> str | None:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return f"{len(plan)} migration(s) not applied" if plan else None


def _check_broker() -> str | None:
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    with Connection(
        settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=2
    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return None


def _check_cache() -> str | None:
    key = "health:probe"
    cache.set(key, "ok", 10)
    return None if cache.get(key) == "ok" else "cache did not return what was stored"


def _run(check: Callable[[], str | None]) -> dict:
    started = time.perf_counter()
    try:
        problem = check()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; say which
        problem = f"{type(exc).__name__}: {exc}"[:300]
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    result = {"status": "ok" if problem is None else "error", "response_time_ms": elapsed_ms}
    if problem:
        result["error"] = problem
    return result


READY_CHECKS = {
    "database": _check_database,
    "migrations": _check_migrations,
    "broker": _check_broker,
}


def _readiness() -> tuple[bool, dict]:
    components = {}
    for name, check in READY_CHECKS.items():
        if name == "migrations" and components["database"]["status"] != "ok":
            components[name] = {
                "status": "error",
                "response_time_ms": 0.0,
                "error": "not checked: the database is unreachable",
            }
            continue
        components[name] = _run(check)
    return all(c["status"] == "ok" for c in components.values()), components


@never_cache
@require_GET
@transaction.non_atomic_requests
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "version": settings.APP_VERSION})


@never_cache
@require_GET
@transaction.non_atomic_requests
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
@transaction.non_atomic_requests
def ready(request: HttpRequest) -> JsonResponse:
    ok, components = _readiness()
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "components": components},
        status=200 if ok else 503,
    )


def _may_see_details(request: HttpRequest) -> bool:
    token = settings.HEALTH_CHECK_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())
    try:
        user = getattr(request, "user", None)
        return bool(user and user.is_authenticated and user.is_staff)
    except DatabaseError:
        # The session's user lives in the database; without it only the token works.
        return False


@never_cache
@require_GET
@transaction.non_atomic_requests
def detailed(request: HttpRequest) -> JsonResponse:
    if not _may_see_details(request):
        return JsonResponse({"message": "Authentication required"}, status=401)
    ok, components = _readiness()
    components["cache"] = _run(_check_cache)
    ok = ok and components["cache"]["status"] == "ok"
    integrations: list[dict] | dict
    if components["database"]["status"] == "ok":
        from integrations.selectors import integration_health_list

        integrations = integration_health_list()
    else:
        integrations = []
    return JsonResponse(
        {
            "status": "ok" if ok else "unavailable",
            "version": settings.APP_VERSION,
            "components": components,
            "integrations": integrations,
        },
        status=200 if ok else 503,
    )
