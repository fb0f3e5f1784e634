"""Signed shipping details to a WMS endpoint (a small Starlette server on loopback that
checks our signature like a real WMS would), and the error mapping the outbox relies on."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.errors import ChannelAuthFailed, ChannelRejected, ChannelUnavailable
from engine.runtime.fulfilment.label import ShipTo, issue_shipment
from engine.runtime.settings import Secret
from engine.runtime.wms.client import (
    events_url,
    post_shipping_details,
    send_event,
    shipping_details_payload,
)
from engine.runtime.wms.server import RunningServer, start_in_thread
from engine.runtime.wms.signing import SignatureError, verify
from tests.runtime.fulfilment.code128 import read_code128
from tests.runtime.wms.conftest import SECRET


@dataclass
class FakeWms:
    """The WMS's shipping-details endpoint: verifies the signature, records, answers as told."""

    received: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    async def endpoint(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            verify(SECRET, request.headers, raw, time.time())
        except SignatureError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        self.received.append((json.loads(raw), dict(request.headers)))
        return JSONResponse(
            {"accepted": self.status < 300, "echo": SECRET.reveal()},
            status_code=self.status,
            headers=self.headers,
        )


@pytest.fixture(scope="module")
def wms() -> Iterator[tuple[RunningServer, FakeWms]]:
    fake = FakeWms()
    app = Starlette(routes=[Route("/shipping", fake.endpoint, methods=["POST"])])
    with start_in_thread(app) as server:
        yield server, fake


@pytest.fixture
def fake(wms: tuple[RunningServer, FakeWms]) -> FakeWms:
    wms[1].received.clear()
    wms[1].status, wms[1].headers = 200, {}
    return wms[1]


@pytest.fixture
def url(wms: tuple[RunningServer, FakeWms]) -> str:
    return wms[0].url + "/shipping"


def test_shipping_details_arrive_signed_with_a_label_that_scans(
    tmp_path: Path, fake: FakeWms, url: str
) -> None:
    shipment = issue_shipment(
        tmp_path,
        prefix="OMS",
        order_id=42,
        key="outbox:9",
        order_reference="XKBKNABJK",
        ship_to=ShipTo("Zoë", ("Paris",)),
    )
    payload = shipping_details_payload(shipment, "XKBKNABJK")
    answer = post_shipping_details(url, SECRET, payload, idempotency_key="outbox:9")
    assert answer["accepted"] is True
    [(got, headers)] = fake.received
    assert got["order_reference"] == "XKBKNABJK"
    assert (got["awb"], got["tracking_id"], got["carrier"]) == (
        shipment.awb,
        shipment.tracking_id,
        "Self ship",
    )
    assert headers["idempotency-key"] == "outbox:9"
    label = tmp_path / "received.pdf"
    label.write_bytes(base64.b64decode(got["label"]["base64"]))
    assert got["label"]["content_type"] == "application/pdf"
    assert read_code128(str(label)) == shipment.tracking_id


def test_label_by_path_or_not_at_all(tmp_path: Path) -> None:
    shipment = issue_shipment(tmp_path, prefix="OMS", order_id=1, key="k", order_reference="R")
    by_path = shipping_details_payload(shipment, "R", label="path")
    assert Path(by_path["label"]["path"]).is_file()
    assert "label" not in shipping_details_payload(shipment, "R", label="none")


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (503, {"Retry-After": "7"}, ChannelUnavailable, 7.0),
        (500, {}, ChannelUnavailable, None),
        (429, {}, ChannelUnavailable, None),
        (422, {}, ChannelRejected, None),
        (404, {}, ChannelRejected, None),
        (403, {}, ChannelAuthFailed, None),
    ],
)
def test_failures_map_to_retryable_or_not(
    fake: FakeWms,
    url: str,
    status: int,
    headers: dict[str, str],
    error: type[Exception],
    retry_after: float | None,
) -> None:
    fake.status, fake.headers = status, headers
    with pytest.raises(error) as info:
        post_shipping_details(url, SECRET, {"awb": "A"})
    exc = info.value
    assert getattr(exc, "status", None) == status
    assert getattr(exc, "retry_after", None) == retry_after
    assert getattr(exc, "retryable", None) is (error is ChannelUnavailable)
    assert SECRET.reveal() not in str(exc)  # the fake WMS echoes the secret back


@pytest.mark.slow
def test_a_wrong_secret_is_refused_by_the_wms(fake: FakeWms, url: str) -> None:
    with pytest.raises(ChannelAuthFailed, match="OMSFLOW_WMS_SECRET"):
        post_shipping_details(url, Secret("other"), {"awb": "A"})
    assert fake.received == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_wms_is_retryable() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/shipping"
    with pytest.raises(ChannelUnavailable, match="unreachable"):
        post_shipping_details(url, SECRET, {"awb": "A"})
    with pytest.raises(ChannelUnavailable):
        send_event(url, SECRET, "picked", "R")


def test_a_timeout_is_retryable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ChannelUnavailable, match="timed out"):
        post_shipping_details(
            "http://wms.invalid/x", SECRET, {}, transport=httpx.MockTransport(slow)
        )


def test_send_event_signs_what_it_sends() -> None:
    seen: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, text="accepted")

    status, body = send_event(
        "http://127.0.0.1:9/",
        SECRET,
        "picked",
        "R1",
        event_id="e1",
        occurred_at="2024-05-01T10:00:00+02:00",
        now=1_700_000_000,
        transport=httpx.MockTransport(capture),
    )
    assert (status, body) == (202, {"text": "accepted"})
    [request] = seen
    assert request.url.path == "/wms/events"
    verify(SECRET, request.headers, request.content, 1_700_000_000)
    assert json.loads(request.content) == {
        "event_id": "e1",
        "type": "picked",
        "order_reference": "R1",
        "occurred_at": "2024-05-01T10:00:00+02:00",
    }


def test_events_url() -> None:
    assert events_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/wms/events"
    assert events_url("http://h:1/custom/path") == "http://h:1/custom/path"
    with pytest.raises(ValueError, match="http"):
        events_url("127.0.0.1:8000")
