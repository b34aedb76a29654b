"""Django's PostgreSQL backend with a health check that mostly costs no round trip, and
timestamps read in C.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before its first use in each
request (and each Celery task) with `SELECT 1`: a round trip to the server every time, about a
tenth of an API list request's time on the benchmark machine (bench/README.md). This backend
answers the same question from the client side when the connection was checked less than
IDLE_SECONDS ago (a busy worker checks it at every request) and is idle: a server that ended
the session (a restart, `pg_terminate_backend`, an idle timeout, a failover that closed the
socket) has sent its FATAL message or closed the socket, so the socket is readable; a healthy
idle session has nothing to say. A readable socket means "unusable", and Django reconnects
before the request's first query, exactly as after a failed `SELECT 1`.

A connection left alone longer than that, one inside a transaction or in an error state, and
any platform without `select.poll` still get Django's `SELECT 1`: after a long idle spell a
NAT or load balancer may have dropped the flow silently, which only a send reveals.

It also reads `timestamptz` values with psycopg's own C loader when the session is in UTC (as
Django sets it with USE_TZ and TIME_ZONE "UTC"): Django's loader is a Python subclass that
parses each value in Python and then replaces its tzinfo, about 2 µs a value (a 50-quote API
page has 150), where the C loader already returns `datetime.timezone.utc` values for a UTC
session. Otherwise (and with psycopg's pure-Python build) Django's loaders are used as ever.
"""

import select
import time
from functools import cache

from django.conf import settings
from django.db.backends.postgresql import base
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.utils.asyncio import async_unsafe
from psycopg import _cmodule, adapt, pq

# The C loader psycopg itself uses (psycopg_c or psycopg_binary), None for the Python build.
_CTimestamptzLoader = getattr(_cmodule._psycopg, "TimestamptzLoader", None)

# A connection checked less than this long ago is checked by its socket alone.
IDLE_SECONDS = 10.0


@cache
def _adapters(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    adapters = adapt.AdaptersMap(template)
    adapters.register_loader("timestamptz", _CTimestamptzLoader)
    return adapters


class DatabaseWrapper(base.DatabaseWrapper):
    _checked_at = 0.0  # monotonic time of this connection's last health check

    def _utc_session(self) -> bool:
        return bool(settings.USE_TZ) and self.timezone_name == "UTC"

    def get_connection_params(self):
        params = super().get_connection_params()
        # Only for a UTC session: the C loader returns the session zone's tzinfo, which for
        # "UTC" is datetime.timezone.utc (psycopg._tz), exactly what Django's loader returns.
        if _CTimestamptzLoader is not None and self._utc_session() and "context" in params:
            params["context"] = _adapters(params["context"])
        return params

    @async_unsafe
    def create_cursor(self, name=None):
        """Django's create_cursor. With the C loader on the connection, Django's per-cursor
        comparison of the loader's zone cannot run (the C loader has no `timezone`): a cursor
        gets Django's loader only when the settings no longer say UTC (tests overriding
        USE_TZ or TIME_ZONE on a connection opened before), as Django would give it."""
        loader = self.connection.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT)
        if _CTimestamptzLoader is None or loader is not _CTimestamptzLoader:
            return super().create_cursor(name)
        if not name:
            cursor = self.connection.cursor()
        elif self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            cursor = base.ServerSideCursor(
                self.connection, name=name, scrollable=False, withhold=self.connection.autocommit
            )
        else:
            cursor = self.connection.cursor(
                name, scrollable=False, withhold=self.connection.autocommit
            )
        if not self._utc_session():
            register_tzloader(self.timezone, cursor)
        return cursor

    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.pgconn.status != pq.ConnStatus.OK:
            return False
        now = time.monotonic()
        recent, self._checked_at = now - self._checked_at < IDLE_SECONDS, now
        if not recent or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        try:
            poller = select.poll()
            poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
            ready = poller.poll(0)
        except Exception:  # no poll() here, or no socket to poll: let the server answer
            return super().is_usable()
        return not ready
