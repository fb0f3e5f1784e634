"""The WMS receiver's HTTP contract: 401 before anything, 422 naming the field, the handler's
verdict as 202/404/409, replays passed through. All over real HTTP on loopback (uvicorn)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from engine.errors import ConfigError, DuplicateEvent, NotFound, StaleOrder, TransitionRefused
from engine.runtime.settings import Secret
from engine.runtime.wms.client import send_event
from engine.runtime.wms.server import start_in_thread
from engine.runtime.wms.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_request
from engine.runtime.wms.webhook import (
    HandlerResult,
    InvalidEvent,
    WmsEvent,
    build_event,
    create_wms_app,
)
from tests.runtime.wms.conftest import EVENT_TYPES, NOW, SECRET, RecordingHandler


def _event(**overrides: Any) -> dict[str, Any]:
    body = {
        "event_id": "evt-1",
        "type": "picked",
        "order_reference": "XKBKNABJK",
        "occurred_at": "2024-05-01T10:00:00Z",
        "picker": "anna",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def _post(
    client: httpx.Client,
    body: bytes | dict[str, Any],
    *,
    secret: Secret = SECRET,
    at: float = NOW,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signed = sign_request(secret, raw, at) if headers is None else headers
    return client.post("/wms/events", content=raw, headers=signed)


def test_a_signed_event_reaches_the_handler_once(
    client: httpx.Client, handler: RecordingHandler
) -> None:
    response = _post(client, _event())
    assert response.status_code == 202
    assert response.json() == {
        "outcome": "applied",
        "event_id": "evt-1",
        "type": "picked",
        "trigger": "picked",
        "order_reference": "XKBKNABJK",
        "state": "Ready_to_Ship",
    }
    assert handler.calls == [
        WmsEvent(
            "evt-1",
            "picked",
            "picked",
            "XKBKNABJK",
            datetime(2024, 5, 1, 10, tzinfo=UTC),
            {"picker": "anna"},
        )
    ]


def test_the_type_is_mapped_to_its_trigger(
    client: httpx.Client, handler: RecordingHandler
) -> None:
    assert _post(client, _event(type="packed")).json()["trigger"] == "pack"
    assert handler.calls[0].trigger == "pack"


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("wrong_secret", "bad_signature"),
        ("no_headers", "missing"),
        ("no_signature", "missing"),
        ("garbled", "malformed"),
        ("stale", "stale"),
        ("future", "stale"),
        ("body_changed", "bad_signature"),
    ],
)
def test_unauthenticated_requests_get_401_and_change_nothing(
    client: httpx.Client, handler: RecordingHandler, how: str, reason: str
) -> None:
    raw = json.dumps(_event()).encode()
    good = sign_request(SECRET, raw, NOW)
    headers = {
        "wrong_secret": sign_request(Secret("not-the-secret"), raw, NOW),
        "no_headers": {},
        "no_signature": {TIMESTAMP_HEADER: good[TIMESTAMP_HEADER]},
        "garbled": {**good, SIGNATURE_HEADER: "sha256=zz"},
        "stale": sign_request(SECRET, raw, NOW - 301),
        "future": sign_request(SECRET, raw, NOW + 301),
        "body_changed": good,
    }[how]
    body = raw.replace(b"XKBKNABJK", b"XKBKNABJL") if how == "body_changed" else raw
    response = _post(client, body, headers=headers)
    assert response.status_code == 401
    assert response.json()["outcome"] == "unauthenticated"
    assert response.json()["reason"] == reason
    assert SECRET.reveal() not in response.text
    assert handler.calls == []


def test_an_unsigned_malformed_body_is_401_not_422(
    client: httpx.Client, handler: RecordingHandler
) -> None:
    response = client.post("/wms/events", content=b"not json")
    assert response.status_code == 401
    assert handler.calls == []


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"\xff\xfe", "body", "not valid JSON"),
        (b"[1, 2]", "body", "JSON object"),
        (_event(event_id=...), "event_id", "event_id: is required"),
        (_event(event_id=17), "event_id", "must be a string, not int"),
        (_event(order_reference="  "), "order_reference", "must not be empty"),
        (_event(order_reference="X" * 201), "order_reference", "longer than 200"),
        (_event(type="teleported"), "type", "unknown WMS event type 'teleported'"),
        (_event(occurred_at="yesterday"), "occurred_at", "not an ISO-8601"),
        (_event(occurred_at="2024-05-01T10:00:00"), "occurred_at", "needs a UTC offset"),
        (_event(occurred_at=None), "occurred_at", "must be a string, not NoneType"),
    ],
)
def test_malformed_bodies_get_422_naming_the_field(
    client: httpx.Client, handler: RecordingHandler, body: Any, field: str, fragment: str
) -> None:
    response = _post(client, body)
    assert response.status_code == 422
    assert response.json()["outcome"] == "invalid"
    assert response.json()["field"] == field
    assert fragment in response.json()["error"]
    assert handler.calls == []


def test_every_bad_field_is_listed(client: httpx.Client) -> None:
    response = _post(client, {"type": "nope", "occurred_at": "x"})
    assert response.status_code == 422
    assert response.json()["fields"] == ["event_id", "order_reference", "type", "occurred_at"]


@pytest.mark.parametrize(
    ("answer", "status", "outcome", "detail"),
    [
        (HandlerResult.unknown_order(), 404, "unknown_order", "no such order"),
        (
            HandlerResult.refused("picked is not allowed in New", state="New"),
            409,
            "refused",
            "picked is not allowed in New",
        ),
        (HandlerResult.duplicate(state="Ready_to_Ship"), 202, "duplicate", "already applied"),
        (NotFound("order XKBKNABJK not found"), 404, "unknown_order", "order XKBKNABJK not found"),
        (
            TransitionRefused("cannot pick after Packed"),
            409,
            "refused",
            "cannot pick after Packed",
        ),
        (DuplicateEvent("wms:evt-1"), 202, "duplicate", "already applied"),
        (
            HandlerResult.acknowledged("'pack' came after ...", state="Ready_to_Ship"),
            200,
            "acknowledged",
            "'pack' came after ...",
        ),
        (HandlerResult.reused("event id 'e' reused"), 409, "reused", "event id 'e' reused"),
    ],
)
def test_the_handlers_verdict_decides_the_answer(
    client: httpx.Client,
    handler: RecordingHandler,
    answer: Any,
    status: int,
    outcome: str,
    detail: str,
) -> None:
    handler.answers["XKBKNABJK"] = answer
    response = _post(client, _event())
    assert response.status_code == status
    assert response.json()["outcome"] == outcome
    assert response.json()["detail"] == detail
    assert len(handler.calls) == 1


def test_a_replayed_answer_is_marked_by_a_header_only(
    client: httpx.Client, handler: RecordingHandler
) -> None:
    first = HandlerResult.refused("no", state="New")
    handler.answers["XKBKNABJK"] = first
    fresh = _post(client, _event())
    handler.answers["XKBKNABJK"] = HandlerResult(first.outcome, first.detail, first.state, True)
    replayed = _post(client, _event())
    assert (fresh.status_code, replayed.status_code) == (409, 409)
    assert fresh.json() == replayed.json()
    assert "Idempotent-Replay" not in fresh.headers
    assert replayed.headers["Idempotent-Replay"] == "true"


def test_a_concurrent_change_asks_the_wms_to_retry(
    client: httpx.Client, handler: RecordingHandler
) -> None:
    handler.answers["XKBKNABJK"] = StaleOrder("version 3 != 4")
    response = _post(client, _event())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


def test_a_crashing_handler_is_a_500_without_details(
    client: httpx.Client, handler: RecordingHandler
) -> None:
    handler.answers["XKBKNABJK"] = RuntimeError("db password is hunter2")
    response = _post(client, _event())
    assert response.status_code == 500
    assert "hunter2" not in response.text


def test_a_replayed_event_id_is_passed_through(
    client: httpx.Client, handler: RecordingHandler
) -> None:
    for _ in range(3):
        assert _post(client, _event()).status_code == 202
    assert [c.event_id for c in handler.calls] == ["evt-1"] * 3


def test_oversized_bodies_are_refused(client: httpx.Client, handler: RecordingHandler) -> None:
    response = _post(client, _event(note="x" * 70_000))
    assert response.status_code == 413
    assert handler.calls == []


def test_health_and_methods(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/wms/events").status_code == 405


def test_async_handlers_are_awaited(clock: Callable[[], float]) -> None:
    seen: list[str] = []

    async def handle(event: WmsEvent) -> HandlerResult:
        seen.append(event.event_id)
        return HandlerResult.applied()

    app = create_wms_app(handle, SECRET, event_types=EVENT_TYPES, clock=clock)
    with start_in_thread(app) as server, httpx.Client(base_url=server.url) as http:
        assert _post(http, _event()).status_code == 202
    assert seen == ["evt-1"]


def test_the_factory_refuses_to_run_without_a_secret(handler: RecordingHandler) -> None:
    with pytest.raises(ConfigError, match="OMSFLOW_WMS_SECRET"):
        create_wms_app(handler, Secret(""), event_types=EVENT_TYPES)
    with pytest.raises(ConfigError, match="wms_events"):
        create_wms_app(handler, SECRET, event_types={})


def test_with_the_client_and_real_clocks() -> None:
    # Real clock on both sides; the client signs, uvicorn serves on loopback.
    handler = RecordingHandler()
    app = create_wms_app(handler, SECRET, event_types=EVENT_TYPES)
    handler.answers["NEWORDER1"] = HandlerResult.refused("picked is not allowed in New", "New")
    handler.answers["NOSUCHREF"] = HandlerResult.unknown_order()
    with start_in_thread(app) as server:
        assert httpx.get(server.url + "/health").json() == {"status": "ok"}
        status, body = send_event(
            server.url, SECRET, "picked", "XKBKNABJK", event_id="e-42", extra={"picker": "anna"}
        )
        assert (status, body["outcome"], body["trigger"]) == (202, "applied", "picked")
        assert send_event(server.url, SECRET, "picked", "NEWORDER1")[0] == 409
        assert send_event(server.url, SECRET, "picked", "NOSUCHREF")[0] == 404
        status, body = send_event(server.url, Secret("wrong"), "picked", "XKBKNABJK")
        assert (status, body["outcome"]) == (401, "unauthenticated")
        status, body = send_event(server.url + "/wms/events", SECRET, "lost", "XKBKNABJK")
        assert (status, body["field"]) == (422, "type")
    assert [c.order_reference for c in handler.calls] == ["XKBKNABJK", "NEWORDER1", "NOSUCHREF"]
    assert handler.calls[0].event_id == "e-42"
    assert handler.calls[0].payload == {"picker": "anna"}
    assert handler.calls[0].occurred_at.tzinfo is not None


def test_build_event_for_direct_application() -> None:
    at = datetime(2024, 5, 1, 10, tzinfo=UTC)
    event = build_event(
        "packed", "R1", EVENT_TYPES, event_id="cli-1", occurred_at=at, payload={"by": "cli"}
    )
    assert event == WmsEvent("cli-1", "packed", "pack", "R1", at, {"by": "cli"})
    with pytest.raises(InvalidEvent, match="type: unknown WMS event type"):
        build_event("lost", "R1", EVENT_TYPES, event_id="x", occurred_at=at)
    with pytest.raises(InvalidEvent, match=r"occurred_at: .* needs a UTC offset"):
        build_event("picked", "R1", EVENT_TYPES, event_id="x", occurred_at=at.replace(tzinfo=None))
