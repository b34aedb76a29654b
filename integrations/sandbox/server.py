"""``SandboxServer``: the sandbox app on a real loopback HTTP port, in a background thread.

    with SandboxServer(tmp_path / "sandbox.sqlite3") as sandbox:
        requests.get(f"{sandbox.url}/servicem8/api_1.0/company.json", headers=…)

``port=0`` picks a free port (read it back from ``.url``/``.port``). The server is werkzeug's
threaded development server: one thread per connection, HTTP/1.1 with chunked streaming, which
is what the unbounded ServiceM8 listing needs. It is meant for loopback use by tests, the demo
and benchmarks, never for exposure to a network.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from integrations.sandbox.app import SandboxApp
from integrations.sandbox.store import Store


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log every request (tests run thousands of them)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class SandboxServer:
    """Serve a ``SandboxApp`` over the store at ``db_path`` until ``stop()``."""

    def __init__(
        self,
        db_path: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_requests: bool = False,
    ) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self.requested_port = port
        self.log_requests = log_requests
        self.store: Store | None = None
        self.app: SandboxApp | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SandboxServer is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        """Bind, then serve in a daemon thread. Returns self."""
        if self._server is not None:
            raise RuntimeError("SandboxServer is already started")
        self.store = Store(self.db_path)
        self.app = SandboxApp(self.store)
        self._server = make_server(
            self.host,
            self.requested_port,
            self.app,
            threaded=True,
            request_handler=WSGIRequestHandler if self.log_requests else _QuietHandler,
        )
        server = self._server
        self._thread = threading.Thread(
            # A short poll interval makes stop() return in ~10 ms instead of 0.5 s (tests start
            # and stop a server per test); polling 100 times a second costs nothing measurable.
            target=lambda: server.serve_forever(poll_interval=0.01),
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Block until interrupted (for ``manage.py sandbox_serve``)."""
        if self._thread is None:
            self.start()
        assert self._thread is not None  # noqa: S101 - narrowing for type checkers
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and close the store. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
