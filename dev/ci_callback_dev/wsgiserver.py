"""A WSGI app served on 127.0.0.1:0 in a daemon thread: the plumbing the local fakes share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


class LocalWSGIServer:
    """Subclasses implement ``_wsgi(environ, start_response)``; this starts and stops it."""

    def __init__(self) -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _wsgi(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:  # pragma: no cover
        raise NotImplementedError

    def start(self):  # type: ignore[no-untyped-def]
        from werkzeug.serving import WSGIRequestHandler, make_server

        class _QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._server.server_port)
