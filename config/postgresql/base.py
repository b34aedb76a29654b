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
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
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
