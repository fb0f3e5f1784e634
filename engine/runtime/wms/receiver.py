"""The real WMS event handler: one authentic event -> ``service.apply_inbound`` (source wms).

Wiring (``omsflow serve``)::

    handler = WmsReceiver(session_factory, bundle)
    app = create_wms_app(handler, secret, event_types=bundle.channel.fulfilment.wms_events)

Each event is applied in ONE transaction by the service, found by its order reference,
with the idempotency key ``wms:<event_id>``. The event id is bound to the event's body (the
inbound event row keeps it): a resend of the same body gets the FIRST answer again, the
same status and body (202 stays 202, 409 stays 409, 200 stays 200), rebuilt from the event
row and its audit row, with nothing written; the same id with another body is 409
``reused``. A refusal is recorded by the service (audit row, inbound event, order flagged
for attention) and answered 409; a late event the lifecycle declares a no-op
(``late_events``: ``packed`` after ``picked``) is recorded, not flagged, and answered 200
``acknowledged``; an unknown reference is 404 and stores nothing (a resend once the order
exists is applied). The transaction's time is the receipt time (the receiver's clock), so
a WMS clock running ahead cannot delay the outbox; the WMS's own ``occurred_at`` is kept in
the payload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import NotFound
from engine.runtime import service
from engine.runtime.db.tables import AuditRow, InboundEventRow
from engine.runtime.service import ApplyResult, BundleLike
from engine.runtime.wms.webhook import HandlerResult, WmsEvent

__all__ = ["SOURCE", "WmsReceiver", "event_payload", "idempotency_key", "result_for"]

SOURCE: Final = "wms"


def idempotency_key(event_id: str) -> str:
    """The inbound event key of a WMS event: ``wms:<event_id>``."""
    return f"wms:{event_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def event_payload(event: WmsEvent) -> dict[str, Any]:
    """What the inbound event row keeps of ``event``: its whole body (the other fields as
    sent, ``occurred_at`` normalised). A resend is the same event when this is equal."""
    payload: dict[str, Any] = dict(event.payload)
    payload.update(
        event_id=event.event_id,
        type=event.type,
        order_reference=event.order_reference,
        occurred_at=event.occurred_at.isoformat(),
    )
    return payload


def _answer(
    outcome: str, trigger: str, state: str | None, reasons: Iterable[str]
) -> HandlerResult:
    """THE answer of an event, from what was recorded: used for the first answer and for
    every replay of it, so both are the same by construction."""
    reason = "; ".join(reasons)
    if outcome == "applied":
        return HandlerResult.applied(state=state)
    if outcome == "acknowledged":
        return HandlerResult.acknowledged(reason or "nothing to do", state=state)
    return HandlerResult.refused(
        reason or f"{trigger!r} is not allowed in state {state}", state=state
    )


def result_for(result: ApplyResult) -> HandlerResult:
    """The receiver's answer for a service result (applied / acknowledged / refused;
    a ``duplicate`` is answered by ``WmsReceiver.replay``)."""
    if result.outcome == "duplicate":
        return HandlerResult.duplicate(state=result.state)
    return _answer(
        result.outcome, result.trigger, result.state, (b.message for b in result.blockers)
    )


def _differences(first: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    return [k for k in sorted(set(first) | set(now)) if first.get(k) != now.get(k)]


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
        """Apply ``event``; raises ``NotFound`` for an unknown order reference. A resend is
        a ``duplicate`` here: ``replay`` answers it."""
        return service.apply_inbound(
            self.session_factory,
            self.bundle,
            trigger=event.trigger,
            source=SOURCE,
            idempotency_key=idempotency_key(event.event_id),
            at=self.clock(),
            reference=event.order_reference,
            store_id=self.store_id,
            payload=event_payload(event),
        )

    def replay(self, event: WmsEvent) -> HandlerResult:
        """The answer to an event whose id was seen before: the first answer again (marked
        ``replay``) when the body is the same, else ``reused``. Reads only."""
        key = idempotency_key(event.event_id)
        with self.session_factory() as session:
            row = session.scalars(
                select(InboundEventRow).where(InboundEventRow.idempotency_key == key)
            ).first()
            if row is None:  # pragma: no cover - a duplicate always has its row
                return HandlerResult.duplicate()
            audit = session.scalars(
                select(AuditRow).where(AuditRow.event_id == row.id).order_by(AuditRow.id)
            ).first()
            first = dict(row.payload or {})
            outcome, trigger = row.outcome, row.trigger
            if audit is not None:
                state = audit.to_state if outcome == "applied" else audit.from_state
                reasons = [str(b.get("message", "")) for b in (audit.blockers or [])]
        differs = _differences(first, event_payload(event))
        if differs:
            return HandlerResult.reused(
                f"event id {event.event_id!r} reused: it was first sent with another body "
                f"(different {', '.join(differs)}); a new event needs a new event id"
            )
        if audit is None:  # pragma: no cover - the event row and its audit row go together
            return HandlerResult.duplicate()
        first_answer = _answer(outcome, trigger, state, reasons)
        return HandlerResult(first_answer.outcome, first_answer.detail, first_answer.state, True)

    def __call__(self, event: WmsEvent) -> HandlerResult:
        try:
            result = self.apply(event)
        except NotFound as exc:
            return HandlerResult.unknown_order(str(exc))
        if result.duplicate:
            return self.replay(event)
        return result_for(result)
