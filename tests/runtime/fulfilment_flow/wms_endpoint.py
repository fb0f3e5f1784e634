"""A small stand-in for the warehouse's endpoint: a Starlette app that verifies our
signature (the same wire format as the receiver) and records what it was sent.

It is the outside system of the story tests (the WMS cannot run here), so it is a double;
it shares only ``signing.verify`` with omsflow, which is what is under test on its side.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.runtime.settings import Secret
from engine.runtime.wms.server import RunningServer, start_in_thread
from engine.runtime.wms.signing import SignatureError, verify

PATH = "/omsflow/shipments"


@dataclass
class Received:
    """One authentic request: its JSON body and headers (lower-cased names)."""

    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class WmsEndpoint:
    url: str
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, event: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.received if event is None or r.body.get("event") == event]


@contextmanager
def wms_endpoint(secret: Secret) -> Iterator[WmsEndpoint]:
    """Serve the endpoint on a free loopback port; ``.url`` is the full POST URL."""
    holder: list[WmsEndpoint] = []

    async def shipments(request: Request) -> JSONResponse:
        endpoint = holder[0]
        raw = await request.body()
        try:
            verify(secret, request.headers, raw, time.time())
        except SignatureError as exc:
            with endpoint.lock:
                endpoint.refused.append(exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=401)
        if endpoint.status >= 300:
            return JSONResponse({"error": "unavailable"}, status_code=endpoint.status)
        with endpoint.lock:
            endpoint.received.append(
                Received(json.loads(raw), {k.lower(): v for k, v in request.headers.items()})
            )
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route(PATH, shipments, methods=["POST"])])
    server: RunningServer = start_in_thread(app)
    holder.append(WmsEndpoint(server.url + PATH))
    try:
        yield holder[0]
    finally:
        server.stop()
