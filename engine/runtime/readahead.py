"""Reading ahead: a thread takes the next items of a slow iterator (store pages) while the
caller works on the current one, with a bounded queue between them. Used by the PrestaShop
adapter's catalogue streams and by the order sync's pages."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def read_ahead(items: Iterable[T], depth: int = 1) -> Generator[T, None, None]:
    """Yield ``items`` while a thread already reads the next ``depth`` of them (the store
    answers the next page while this one is written). Errors surface in order; leaving the
    loop early stops the reader after the item it is on."""
    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((False, exc))

    thread = threading.Thread(target=run, name="omsflow-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = q.get()
            if not ok:
                raise value
            if value is done:
                return
            yield value
    finally:
        stop.set()
