"""Django's PostgreSQL backend with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before its first use in each
request (and each Celery task) with `SELECT 1`: a round trip to the server every time, about a
tenth of an API list request's time on the benchmark machine (bench/README.md). This backend
answers the same question from the client side when the connection is idle: a server that
ended the session (a restart, `pg_terminate_backend`, an idle timeout, a failover that closed
the socket) has sent its FATAL message or closed the socket, so the socket is readable; a
healthy idle session has nothing to say. A readable socket means "unusable", and Django
reconnects before the request's first query, exactly as after a failed `SELECT 1`.

Anything but an idle connection (inside a transaction, or in an error state) still gets
Django's `SELECT 1`. What neither check catches quickly is a server that vanished without
closing the socket (a network partition): `SELECT 1` would wait for TCP to give up as well.

It also reads `timestamptz` values with psycopg's C loader when the session is in UTC (as
Django sets it with USE_TZ): Django's own loader is a Python subclass that parses each value
in Python and then replaces its tzinfo with UTC, about 2 µs a value (a 50-quote API page has
150), where the C loader already returns `datetime.timezone.utc` values for a UTC session.
"""

import select
from functools import cache

from django.conf import settings
from django.db.backends.postgresql import base
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID
from django.utils.asyncio import async_unsafe
from psycopg import adapt, pq

try:  # psycopg's C speed-ups (psycopg[binary] or psycopg[c])
    from psycopg_binary._psycopg import TimestamptzLoader as _CTimestamptzLoader
except ImportError:  # pragma: no cover - the pure-Python build: Django's loader stays
    try:
        from psycopg_c._psycopg import TimestamptzLoader as _CTimestamptzLoader
    except ImportError:
        _CTimestamptzLoader = None


@cache
def _adapters(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    adapters = adapt.AdaptersMap(template)
    adapters.register_loader("timestamptz", _CTimestamptzLoader)
    return adapters


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        # Only for a UTC session: the C loader returns the session zone's tzinfo, which for
        # "UTC" is datetime.timezone.utc (psycopg._tz), exactly what Django's loader returns.
        if (
            _CTimestamptzLoader is not None
            and settings.USE_TZ
            and self.timezone_name == "UTC"
            and "context" in params
        ):
            params["context"] = _adapters(params["context"])
        return params

    @async_unsafe
    def create_cursor(self, name=None):
        """Django's create_cursor, without its per-cursor check of the loader's zone when the
        connection reads timestamptz with the C loader (which has no `timezone` attribute to
        compare; the session is in UTC for the connection's life, as its values)."""
        loader = self.connection.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT)
        if _CTimestamptzLoader is None or loader is not _CTimestamptzLoader:
            return super().create_cursor(name)
        if not name:
            return self.connection.cursor()
        if self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            return base.ServerSideCursor(
                self.connection, name=name, scrollable=False, withhold=self.connection.autocommit
            )
        return self.connection.cursor(name, scrollable=False, withhold=self.connection.autocommit)

    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.pgconn.status != pq.ConnStatus.OK:
            return False
        if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        try:
            poller = select.poll()
            poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
            ready = poller.poll(0)
        except (OSError, ValueError):  # no socket to poll: let the server answer instead
            return super().is_usable()
        return not ready
