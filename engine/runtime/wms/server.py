"""Run an ASGI app (the WMS receiver) under uvicorn in a background thread on loopback.

For tests, demos and ``omsflow serve`` in-process use: ``with start_in_thread(app) as srv:
httpx.post(srv.url + "/wms/events", ...)``. Port 0 picks a free port; the socket is bound
before the thread starts, so ``url`` is valid as soon as the function returns.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["RunningServer", "start_in_thread"]


@dataclass
class RunningServer:
    """A uvicorn server in a daemon thread; ``stop()`` (or leaving the ``with``) ends it."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 10.0
) -> RunningServer:
    """Start ``app`` on ``host:port`` and wait until it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{actual_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"server on {host}:{actual_port} did not start")
        time.sleep(0.01)
    return RunningServer(f"http://{host}:{actual_port}", server, thread)
