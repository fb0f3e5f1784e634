"""The attention flag an operator sees: ``orders ack`` clears it (with an audit row), and
an effect that went dead raises a sticky one (``flag_dead_effect``). A refused channel or
WMS event raises one through the one rule (``events.apply_on``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import LifecycleError
from engine.runtime.db.repository import SqlOrderRepository
from engine.runtime.db.statements import ORDERS
from engine.runtime.db.tables import AuditRow, InboundEventRow, OrderRow

from .rows import MAX_REASON
from .session import ORDER_WRITTEN
from .tx import in_session

ACK_TRIGGER = "ack_attention"


@dataclass(frozen=True)
class Acknowledgement:
    """``orders ack``: the flag that was cleared, on which order, by whom, when."""

    order_id: int
    reference: str
    state: str
    reason: str | None
    by: str
    note: str | None
    at: datetime


def acknowledge_attention(
    session_factory: sessionmaker[Session],
    *,
    reference: str,
    by: str,
    at: datetime,
    note: str | None = None,
    store_id: int | None = None,
) -> Acknowledgement:
    """Clear an order's attention flag, with an audit row (trigger ``ack_attention``, the
    state kept) whose inbound event carries who, the note and the reason cleared — one
    transaction.

    Raises:
        NotFound: no such order.
        LifecycleError: the order is not flagged.
    """

    def work(session: Session) -> Acknowledgement:
        row = SqlOrderRepository(session).by_reference(reference, store_id=store_id)
        if not row.needs_attention:
            raise LifecycleError(
                f"order {row.reference} is not flagged for attention; nothing to acknowledge "
                "(see: omsflow orders list --attention)"
            )
        reason = row.attention_reason
        event = InboundEventRow(
            idempotency_key=f"user:ack:{uuid.uuid4()}",
            source="user",
            trigger=ACK_TRIGGER,
            order_id=row.id,
            payload={"by": by, "note": note, "cleared": reason},
            received_at=at,
            outcome="applied",
        )
        session.add(event)
        session.flush()
        session.add(
            AuditRow(
                order_id=row.id,
                event_id=event.id,
                trigger=ACK_TRIGGER,
                from_state=row.state,
                to_state=row.state,
                applied=True,
                source="user",
                effects=[],
                blockers=[],
                at=at,
            )
        )
        row.needs_attention = False
        row.attention_reason = None
        row.attention_state = None
        row.updated_at = at
        session.flush()
        return Acknowledgement(row.id, row.reference, row.state, reason, by, note, at)

    done, _ = in_session(session_factory, work, what=f"ack {reference}")
    return done


def flag_dead_effect(session: Session, order_id: int, reason: str, *, at: datetime) -> bool:
    """Flag ``order_id`` because one of its effects went dead, inside the caller's
    transaction (the outbox's settle). The flag is sticky (no ``attention_state``): moving
    on does not clear it, ``orders ack`` does. An existing reason is kept, this one added;
    one atomic UPDATE that bumps the version (no read-modify-write race)."""
    orders = ORDERS
    o = orders.c
    written = session.execute(
        update(orders)
        .where(o.id == order_id)
        .values(
            needs_attention=True,
            attention_state=None,
            attention_reason=case(
                (
                    and_(o.needs_attention.is_(True), o.attention_reason.is_not(None)),
                    func.substr(o.attention_reason + "; " + reason, 1, MAX_REASON),
                ),
                else_=reason[:MAX_REASON],
            ),
            version=o.version + 1,
            updated_at=at,
        ),
        execution_options={"synchronize_session": False},
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, OrderRow) and sa_inspect(obj).dict.get("id") == order_id:
            session.expire(obj, ORDER_WRITTEN)
    return bool(getattr(written, "rowcount", 0))
