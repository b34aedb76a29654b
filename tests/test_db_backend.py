"""config.postgresql: Django's PostgreSQL backend whose per-request health check reads the idle
connection's socket instead of sending `SELECT 1`."""

import time

import psycopg
import pytest
from django.core.signals import request_started
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL backend"),
]


def _other_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"] or "postgres",
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    )


def _last_query(pid: int) -> str:
    with _other_connection() as other:
        return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[
            0
        ]


def test_the_site_uses_the_backend():
    assert connection.settings_dict["ENGINE"] == "config.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_healthy_idle_connection_is_usable_without_a_round_trip():
    connection.ensure_connection()
    assert connection.is_usable()  # a first check (or one after a long idle spell) asks
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'fieldbridge-marker'")
    pid = connection.connection.info.backend_pid
    assert connection.is_usable()
    # The server saw no query after ours (Django's own check would have sent SELECT 1).
    assert _last_query(pid) == "SELECT 'fieldbridge-marker'"


def test_after_a_long_idle_spell_the_server_is_asked(monkeypatch):
    from config.postgresql import base

    connection.ensure_connection()
    assert connection.is_usable()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'idle-marker'")
    pid = connection.connection.info.backend_pid
    monkeypatch.setattr(base, "IDLE_SECONDS", 0.0)  # (as if IDLE_SECONDS had passed)
    assert connection.is_usable()
    assert _last_query(pid) == "SELECT 1"


def test_a_connection_the_server_ended_is_replaced_before_the_next_query():
    connection.ensure_connection()
    assert connection.is_usable()  # checked just now: the next check reads the socket
    pid = connection.connection.info.backend_pid
    with _other_connection() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not connection.is_usable()

    # What Django does at the start of each request: the next query reconnects, no error.
    request_started.send(sender=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_inside_a_transaction_the_server_is_asked():
    from django.db import transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 'in-transaction'")
        pid = connection.connection.info.backend_pid
        assert connection.is_usable()
        assert _last_query(pid) == "SELECT 1"


def test_timestamps_are_read_by_the_c_loader_in_utc():
    import datetime

    from django.db import transaction
    from psycopg import pq

    from config.postgresql.base import _CTimestamptzLoader
    from portal.models import Company

    company = Company.objects.create(name="Stamp", slug="stamp")
    loader = connection.connection.adapters.get_loader(1184, pq.Format.TEXT)  # timestamptz
    assert _CTimestamptzLoader is not None and loader is _CTimestamptzLoader
    with connection.cursor() as cursor:
        cursor.execute("SELECT '2026-11-22 10:11:12.5+10'::timestamptz")
        (value,) = cursor.fetchone()
    assert value == datetime.datetime(2026, 11, 22, 0, 11, 12, 500000, tzinfo=datetime.UTC)
    assert value.tzinfo is datetime.UTC  # as Django's own loader gives it
    stored = Company.objects.values_list("created_at", flat=True).get(pk=company.pk)
    assert stored.tzinfo is datetime.UTC
    with transaction.atomic():  # a server-side (named) cursor reads them the same way
        (streamed,) = Company.objects.filter(pk=company.pk).values_list("created_at", flat=True)
        assert list(
            Company.objects.filter(pk=company.pk)
            .values_list("created_at", flat=True)
            .iterator(chunk_size=1)
        ) == [streamed]


def test_settings_that_stop_saying_utc_get_djangos_loader(settings):
    import datetime

    connection.ensure_connection()  # opened with the C loader
    settings.USE_TZ = False
    with connection.cursor() as cursor:
        cursor.execute("SELECT '2026-11-22 10:11:12+00'::timestamptz")
        (value,) = cursor.fetchone()
    assert value == datetime.datetime(2026, 11, 22, 10, 11, 12)  # noqa: DTZ001 - naive, as Django gives it
