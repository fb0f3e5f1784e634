"""The WMS event receiver: a Starlette app that authenticates, validates and hands over.

``POST /wms/events`` takes ``{"event_id", "type", "order_reference", "occurred_at", ...}``
signed as in ``engine.runtime.wms.signing``. In order:

1. signature and timestamp (401 ``unauthenticated``; the handler is NOT called);
2. the body: JSON object, required string fields, ``occurred_at`` ISO-8601 with an
   offset, ``type`` known to the channel spec's ``fulfilment.wms_events`` (422
   ``invalid``, the message names the field);
3. the handler, with a ``WmsEvent`` (``type`` already mapped to its lifecycle trigger).

``GET /health`` answers ``{"status": "ok"}`` for probes.

The seam — how the real handler is wired (storage/service side)::

    def handle(event: WmsEvent) -> HandlerResult:
        # one transaction via engine.runtime.service.apply_inbound, idempotency key
        # f"wms:{event.event_id}", trigger event.trigger, at=event.occurred_at
        ...
        return HandlerResult.applied(state=new_state)

    app = create_wms_app(handle, settings.wms_secret, event_types=channel.fulfilment.wms_events)

The handler decides the outcome (``HandlerResult``): ``applied`` -> 202, ``acknowledged``
(a late event, a no-op) -> 200, ``unknown_order`` -> 404, ``refused`` -> 409 with the
reason, ``reused`` (an event id sent before with another body) -> 409, ``duplicate`` -> 202
"already applied" (for handlers that keep no first answer). It may also just raise:
``DuplicateEvent`` -> duplicate, ``NotFound`` -> unknown_order,
``TransitionRefused``/``UnknownTrigger`` -> refused, ``StaleOrder`` -> 503 with
``Retry-After`` (the WMS retries). Idempotency by ``event_id`` is the handler's job
(stored with the transition): the real handler (``receiver.WmsReceiver``) answers a resend
with the FIRST answer again, marked ``replay`` (header ``Idempotent-Replay: true``); this
layer passes every authentic event through, replays included. A plain function runs in
Starlette's thread pool; an ``async def`` is awaited. README.md "The WMS contract" is the
wire contract.
"""

from __future__ import annotations

import enum
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.errors import (
    ConfigError,
    DuplicateEvent,
    NotFound,
    StaleOrder,
    TransitionRefused,
    UnknownTrigger,
)
from engine.runtime.settings import Secret
from engine.runtime.wms.signing import SignatureError, verify

__all__ = [
    "EVENTS_PATH",
    "HEALTH_PATH",
    "MAX_BODY_BYTES",
    "REPLAY_HEADER",
    "HandlerResult",
    "InvalidEvent",
    "Outcome",
    "WmsEvent",
    "WmsEventHandler",
    "build_event",
    "create_wms_app",
    "parse_event",
]

log = logging.getLogger("omsflow.wms")

EVENTS_PATH = "/wms/events"
HEALTH_PATH = "/health"
MAX_BODY_BYTES = 64 * 1024
REQUIRED_FIELDS = ("event_id", "type", "order_reference", "occurred_at")
_MAX_FIELD_LENGTH = 200


class Outcome(enum.StrEnum):
    """What became of an authentic, well-formed event."""

    APPLIED = "applied"
    ACKNOWLEDGED = "acknowledged"
    DUPLICATE = "duplicate"
    UNKNOWN_ORDER = "unknown_order"
    REFUSED = "refused"
    REUSED = "reused"


_STATUS = {
    Outcome.APPLIED: 202,
    Outcome.ACKNOWLEDGED: 200,
    Outcome.DUPLICATE: 202,
    Outcome.UNKNOWN_ORDER: 404,
    Outcome.REFUSED: 409,
    Outcome.REUSED: 409,
}
REPLAY_HEADER = "Idempotent-Replay"
"""Set to ``true`` on the answer to a resent event (the body is the first answer's)."""


@dataclass(frozen=True)
class WmsEvent:
    """An authenticated, validated WMS event. ``payload``: the body's other fields."""

    event_id: str
    type: str
    trigger: str
    order_reference: str
    occurred_at: datetime
    payload: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class HandlerResult:
    """The handler's verdict. ``state``: the order's state afterwards, if known;
    ``detail``: the refusal reason or any note for the caller; ``replay``: this is the
    first answer to the same event, given again."""

    outcome: Outcome
    detail: str | None = None
    state: str | None = None
    replay: bool = False

    @classmethod
    def applied(cls, state: str | None = None, detail: str | None = None) -> HandlerResult:
        return cls(Outcome.APPLIED, detail, state)

    @classmethod
    def acknowledged(cls, detail: str, state: str | None = None) -> HandlerResult:
        return cls(Outcome.ACKNOWLEDGED, detail, state)

    @classmethod
    def reused(cls, detail: str) -> HandlerResult:
        return cls(Outcome.REUSED, detail)

    @classmethod
    def duplicate(cls, state: str | None = None) -> HandlerResult:
        return cls(Outcome.DUPLICATE, "already applied", state)

    @classmethod
    def unknown_order(cls, detail: str | None = None) -> HandlerResult:
        return cls(Outcome.UNKNOWN_ORDER, detail or "no such order")

    @classmethod
    def refused(cls, reason: str, state: str | None = None) -> HandlerResult:
        return cls(Outcome.REFUSED, reason, state)

    @property
    def status_code(self) -> int:
        return _STATUS[self.outcome]


class WmsEventHandler(Protocol):
    """Applies one event (sync or ``async``); see the module docstring for the contract."""

    def __call__(self, event: WmsEvent) -> HandlerResult | Awaitable[HandlerResult]: ...


class InvalidEvent(ValueError):
    """A request body that is not a valid WMS event; ``problems``: (field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


def _text_field(body: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> str:
    if name not in body:
        problems.append((name, "is required"))
        return ""
    value = body[name]
    if not isinstance(value, str):
        problems.append((name, f"must be a string, not {type(value).__name__}"))
        return ""
    value = value.strip()
    if not value:
        problems.append((name, "must not be empty"))
    elif len(value) > _MAX_FIELD_LENGTH:
        problems.append((name, f"is longer than {_MAX_FIELD_LENGTH} characters"))
    return value


def parse_event(raw: bytes, event_types: Mapping[str, str]) -> WmsEvent:
    """Validate a request body into a ``WmsEvent``; raises ``InvalidEvent`` naming each field."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent([("body", f"is not valid JSON ({exc.__class__.__name__})")]) from None
    if not isinstance(body, dict):
        raise InvalidEvent([("body", "must be a JSON object")])
    problems: list[tuple[str, str]] = []
    event_id = _text_field(body, "event_id", problems)
    type_ = _text_field(body, "type", problems)
    reference = _text_field(body, "order_reference", problems)
    stamp = _text_field(body, "occurred_at", problems)
    if type_ and type_ not in event_types:
        known = ", ".join(sorted(event_types))
        problems.append(("type", f"unknown WMS event type {type_!r} (known: {known})"))
    occurred_at: datetime | None = None
    if stamp:
        try:
            occurred_at = datetime.fromisoformat(stamp)
        except ValueError:
            problems.append(("occurred_at", f"{stamp!r} is not an ISO-8601 timestamp"))
        else:
            if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
                problems.append(
                    ("occurred_at", f"{stamp!r} needs a UTC offset (e.g. 2024-05-01T10:00:00Z)")
                )
    if problems or occurred_at is None:
        raise InvalidEvent(problems)
    extra = {k: v for k, v in body.items() if k not in REQUIRED_FIELDS}
    return WmsEvent(
        event_id=event_id,
        type=type_,
        trigger=event_types[type_],
        order_reference=reference,
        occurred_at=occurred_at,
        payload=MappingProxyType(extra),
    )


def build_event(
    type_: str,
    order_reference: str,
    event_types: Mapping[str, str],
    *,
    event_id: str,
    occurred_at: datetime,
    payload: Mapping[str, Any] | None = None,
) -> WmsEvent:
    """A ``WmsEvent`` without HTTP (``omsflow wms apply``), validated like a request body;
    raises ``InvalidEvent`` naming the field."""
    body = dict(payload or {})
    body.update(
        event_id=event_id,
        type=type_,
        order_reference=order_reference,
        occurred_at=occurred_at.isoformat(),
    )
    return parse_event(json.dumps(body).encode(), event_types)


def _is_async(handler: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - a callable object's async __call__
    )


def create_wms_app(
    handler: WmsEventHandler,
    secret: Secret,
    *,
    event_types: Mapping[str, str],
    clock: Callable[[], float] = time.time,
    tolerance_seconds: float = 300,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The receiver app. ``event_types``: WMS type -> lifecycle trigger (the channel spec's
    ``fulfilment.wms_events``); ``clock``: unix seconds, injectable for tests."""
    if not isinstance(secret, Secret) or not secret:
        raise ConfigError("the WMS receiver needs a secret (fix: set OMSFLOW_WMS_SECRET)")
    if not event_types:
        raise ConfigError("fulfilment.wms_events is empty: the receiver would refuse every event")
    types = MappingProxyType(dict(event_types))
    is_async = _is_async(handler)

    async def events(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return _error(413, "too_large", f"body is larger than {max_body_bytes} bytes")
        raw = await request.body()
        if len(raw) > max_body_bytes:
            return _error(413, "too_large", f"body is larger than {max_body_bytes} bytes")
        try:
            verify(secret, request.headers, raw, clock(), tolerance=tolerance_seconds)
        except SignatureError as exc:
            log.warning("wms event refused (401 %s) from %s", exc.reason, _peer(request))
            return _error(401, "unauthenticated", str(exc), reason=exc.reason)
        try:
            event = parse_event(raw, types)
        except InvalidEvent as exc:
            fields = [f for f, _ in exc.problems]
            return _error(
                422, "invalid", str(exc), field=fields[0] if fields else "body", fields=fields
            )
        result = await _call(event)
        if isinstance(result, JSONResponse):
            return result
        log.info(
            "wms event %s %s %s -> %s%s",
            event.event_id,
            event.type,
            event.order_reference,
            result.outcome.value,
            " (replay)" if result.replay else "",
        )
        body: dict[str, Any] = {
            "outcome": result.outcome.value,
            "event_id": event.event_id,
            "type": event.type,
            "trigger": event.trigger,
            "order_reference": event.order_reference,
        }
        if result.state is not None:
            body["state"] = result.state
        if result.detail is not None:
            body["detail"] = result.detail
        response = JSONResponse(body, status_code=result.status_code)
        if result.replay:
            response.headers[REPLAY_HEADER] = "true"
        return response

    async def _call(event: WmsEvent) -> HandlerResult | JSONResponse:
        try:
            if is_async:
                outcome = await handler(event)  # type: ignore[misc]
            else:
                outcome = await run_in_threadpool(handler, event)
        except DuplicateEvent:
            return HandlerResult.duplicate()
        except NotFound as exc:
            return HandlerResult.unknown_order(str(exc) or None)
        except (TransitionRefused, UnknownTrigger) as exc:
            return HandlerResult.refused(str(exc))
        except StaleOrder:
            resp = _error(503, "retry", "the order changed concurrently; retry")
            resp.headers["Retry-After"] = "1"
            return resp
        except Exception:
            log.exception("wms handler failed on event %s", event.event_id)
            return _error(500, "error", "internal error while applying the event")
        if not isinstance(outcome, HandlerResult):
            log.error("wms handler returned %r, not a HandlerResult", type(outcome).__name__)
            return _error(500, "error", "internal error while applying the event")
        return outcome

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(EVENTS_PATH, events, methods=["POST"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
        ]
    )


def _error(status: int, outcome: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"outcome": outcome, "error": message, **extra}, status_code=status)


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
