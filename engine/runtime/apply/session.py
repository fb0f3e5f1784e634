"""The one rule for callers that hold ORM objects in a session (the order sync, a listing
run): the session's pending changes are flushed, the Core path runs on the session's
connection (same transaction), and the session's copies of the rows it rewrote — the
orders it moved, their lines, stock and outbox rows — are expired so they read what was
written. This edge is the only place the ORM meets the event path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from engine.runtime.db.tables import InventoryRow, OrderLineRow, OrderRow, OutboxRow

from .events import apply_on
from .imports import create_orders
from .results import ApplyResult, BundleLike, OrderImport, Settled, Source
from .stock import settle_on

ORDER_WRITTEN = (
    "state",
    "version",
    "updated_at",
    "needs_attention",
    "attention_reason",
    "attention_state",
)


def forget_written(session: Session, orders: Iterable[int | None]) -> None:
    """Expire the session's copies of rows the Core path rewrote: the state columns and
    lines of ``orders``, every stock and outbox row."""
    moved = set(orders)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, InventoryRow | OutboxRow):
            session.expire(obj)
        elif isinstance(obj, OrderRow) and sa_inspect(obj).dict.get("id") in moved:
            session.expire(obj, ORDER_WRITTEN)
        elif isinstance(obj, OrderLineRow) and sa_inspect(obj).dict.get("order_id") in moved:
            session.expire(obj, ["reserved", "consumed"])


def apply_in_session(
    session: Session,
    bundle: BundleLike,
    row: OrderRow,
    *,
    trigger: str,
    source: Source,
    idempotency_key: str,
    at: datetime,
    payload: Mapping[str, Any] | None = None,
) -> ApplyResult:
    """``events.apply_on`` for the order ``row`` inside the session's transaction (no
    commit here); ``row`` and the session's other copies are current afterwards."""
    session.flush()
    result = apply_on(
        session.connection(),
        bundle,
        trigger=trigger,
        source=source,
        idempotency_key=idempotency_key,
        at=at,
        order_id=row.id,
        payload=payload,
    )
    forget_written(session, (result.order_id, *result.promoted))
    return result


def create_orders_in(
    session: Session,
    bundle: BundleLike,
    imports: Sequence[OrderImport],
    *,
    source: Source,
    at: datetime,
) -> list[ApplyResult]:
    """``imports.create_orders`` inside the session's transaction."""
    session.flush()
    results = create_orders(session.connection(), bundle, imports, source=source, at=at)
    forget_written(session, (p for r in results for p in r.promoted))
    return results


def settle_stock(
    session: Session, bundle: BundleLike, *, skus: Iterable[str], at: datetime
) -> Settled:
    """``stock.settle_on`` inside the session's transaction (a listing run that wrote
    stock through the ORM)."""
    session.flush()
    moved = settle_on(session.connection(), bundle, skus=skus, at=at)
    forget_written(session, (*moved.shorted, *moved.promoted))
    return moved
