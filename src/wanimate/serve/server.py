"""Running the app: in the foreground for ``wanimate serve``, in a thread for tests and the benchmark."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

from wanimate.serve.config import ServeConfig, is_loopback


def serve(config: ServeConfig, *, log_level: str = "info") -> None:
    """Validate, then serve until interrupted (the worker process starts and stops with the server)."""
    import uvicorn

    from wanimate.serve.app import create_app

    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, timeout_graceful_shutdown=10)


class BackgroundServer:
    """The full server on a free loopback port, in a thread of this process.

    The socket is bound here and handed to uvicorn, so there is no window in which another
    process could take the port between choosing and binding it.
    """

    def __init__(self, config: ServeConfig, *, worker: bool = True, startup_timeout: float = 30.0) -> None:
        import uvicorn

        from wanimate.serve.app import create_app

        if not is_loopback(config.host):
            raise ValueError("BackgroundServer binds to loopback only")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(config, worker=worker)
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=5))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self._startup_timeout = startup_timeout

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=60)
        self.sock.close()
