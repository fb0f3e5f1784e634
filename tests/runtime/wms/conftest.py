"""Fixtures for the WMS receiver tests: a recording handler double, a fixed clock, and the
receiver app served by uvicorn on loopback (one per module; the double is reset per test)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from engine.runtime.settings import Secret
from engine.runtime.wms.server import RunningServer, start_in_thread
from engine.runtime.wms.webhook import HandlerResult, WmsEvent, create_wms_app

SECRET = Secret("test-wms-secret-0123456789")
NOW = 1_700_000_000.0
EVENT_TYPES = {
    "picked": "picked",
    "packed": "pack",
    "handed_over": "handover",
    "delivered": "delivered",
}


@dataclass
class RecordingHandler:
    """Stands in for the storage/service handler (an outside system until wiring):
    records each call and answers what the test scripted per order reference."""

    answers: dict[str, HandlerResult | Exception] = field(default_factory=dict)
    calls: list[WmsEvent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: WmsEvent) -> HandlerResult:
        with self.lock:
            self.calls.append(event)
        answer = self.answers.get(
            event.order_reference, HandlerResult.applied(state="Ready_to_Ship")
        )
        if isinstance(answer, Exception):
            raise answer
        return answer


def fixed_clock() -> float:
    return NOW


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[RunningServer, RecordingHandler]]:
    double = RecordingHandler()
    app = create_wms_app(double, SECRET, event_types=EVENT_TYPES, clock=fixed_clock)
    with start_in_thread(app) as server:
        yield server, double


@pytest.fixture
def handler(receiver: tuple[RunningServer, RecordingHandler]) -> RecordingHandler:
    double = receiver[1]
    double.calls.clear()
    double.answers.clear()
    return double


@pytest.fixture
def client(receiver: tuple[RunningServer, RecordingHandler]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=receiver[0].url, timeout=10) as http:
        yield http


@pytest.fixture
def clock() -> Callable[[], float]:
    return fixed_clock
