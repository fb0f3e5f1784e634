"""The real WMS event handler: one authentic event -> ``service.apply_inbound`` (source wms).

Wiring (``omsflow serve``)::

    handler = WmsReceiver(session_factory, bundle)
    app = create_wms_app(handler, secret, event_types=bundle.channel.fulfilment.wms_events)

Each event is applied in ONE transaction by the service, found by its order reference,
with the idempotency key ``wms:<event_id>``: a replayed event is a duplicate (202, nothing
written), a refusal is recorded by the service (audit row, inbound event, order flagged
for attention) and answered 409, an unknown reference 404. The transaction's time is the
receipt time (the receiver's clock), so a WMS clock running ahead cannot delay the
outbox; the WMS's own ``occurred_at`` is kept in the inbound event's payload.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from engine.errors import NotFound
from engine.runtime import service
from engine.runtime.service import ApplyResult, BundleLike
from engine.runtime.wms.webhook import HandlerResult, WmsEvent

__all__ = ["SOURCE", "WmsReceiver", "idempotency_key", "result_for"]

SOURCE: Final = "wms"


def idempotency_key(event_id: str) -> str:
    """The inbound event key of a WMS event: ``wms:<event_id>``."""
    return f"wms:{event_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def result_for(result: ApplyResult) -> HandlerResult:
    """The receiver's answer for a service result (applied / duplicate / refused)."""
    if result.outcome == "applied":
        return HandlerResult.applied(state=result.state)
    if result.outcome == "duplicate":
        return HandlerResult.duplicate(state=result.state)
    reason = "; ".join(b.message for b in result.blockers) or (
        f"{result.trigger!r} is not allowed in state {result.state}"
    )
    return HandlerResult.refused(reason, state=result.state)


class WmsReceiver:
    """A ``WmsEventHandler`` backed by the database (see the module docstring).

    ``store_id`` narrows references to one store (references are unique per store);
    ``clock`` gives the transaction time (UTC ``datetime``), injectable for tests.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        bundle: BundleLike,
        *,
        store_id: int | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.session_factory = session_factory
        self.bundle = bundle
        self.store_id = store_id
        self.clock = clock

    def apply(self, event: WmsEvent) -> ApplyResult:
        """Apply ``event``; raises ``NotFound`` for an unknown order reference."""
        payload: dict[str, Any] = dict(event.payload)
        payload.update(
            event_id=event.event_id,
            type=event.type,
            order_reference=event.order_reference,
            occurred_at=event.occurred_at.isoformat(),
        )
        return service.apply_inbound(
            self.session_factory,
            self.bundle,
            trigger=event.trigger,
            source=SOURCE,
            idempotency_key=idempotency_key(event.event_id),
            at=self.clock(),
            reference=event.order_reference,
            store_id=self.store_id,
            payload=payload,
        )

    def __call__(self, event: WmsEvent) -> HandlerResult:
        try:
            result = self.apply(event)
        except NotFound as exc:
            return HandlerResult.unknown_order(str(exc))
        return result_for(result)
