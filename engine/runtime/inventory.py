"""Stock bookkeeping per SKU: on hand, reserved, available, and the coalesced stock push.

``available = on_hand - reserved``; the value pushed to stores is floored at 0. Every change
of a SKU's available quantity enqueues ONE ``push_stock`` outbox row per store and SKU
(``dedup_key = stock:<store_id>:<sku>``): while that row is pending, later changes only
rewrite its payload, so a burst of 1,000 changes becomes one PUT carrying the last value.

Functions receive a ``Session`` and never commit. Promoting Partial orders when stock
arrives needs the lifecycle, so it lives in ``service`` (``service.set_stock`` and friends).

Stock belongs to sellable units: a simple product or a variant. A product with variants
holds none (the store keeps its own row as the sum of its variants'); ``stock set`` /
``stock adjust`` on it are refused (``require_stock_unit``).

``holds`` lists the orders that claim a SKU's units (reserved, or waiting for them): what
``service`` shorts when stock drops below what is reserved, and what ``products delete`` /
``deactivate`` name before they take a product away.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, or_, select

from engine.errors import ConfigError

from .db.direct import run
from .db.schema import INVENTORY, ORDER_LINES, ORDERS, OUTBOX, PRODUCTS, STORES, utcnow
from .db.statements import event_statements

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

PUSH_STOCK = "push_stock"


@dataclass(frozen=True)
class StockLevel:
    """One SKU's stock. ``pushable`` is what a store is told: available, never below zero."""

    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def pushable(self) -> int:
        return max(0, self.available)


def levels(session: Session, skus: Iterable[str] | None = None) -> dict[str, StockLevel]:
    """Stock of the given SKUs (unknown SKUs read as 0/0), or of every SKU with a row."""
    inv = INVENTORY.c
    query = select(inv.sku, inv.on_hand, inv.reserved)
    wanted = None if skus is None else sorted(set(skus))
    if wanted is not None:
        query = query.where(inv.sku.in_(wanted))
    found = {
        sku: StockLevel(sku, on_hand, reserved)
        for sku, on_hand, reserved in session.execute(query)
    }
    if wanted is not None:
        for sku in wanted:
            found.setdefault(sku, StockLevel(sku, 0, 0))
    return found


def stock_pushes_waiting(session: Session, store_id: int | None = None) -> int:
    """``push_stock`` rows not delivered yet (pending or leased), of one store or all."""
    query = select(func.count()).where(
        OUTBOX.c.kind == PUSH_STOCK, OUTBOX.c.state.in_(("pending", "leased"))
    )
    if store_id is not None:
        query = query.where(OUTBOX.c.store_id == store_id)
    return int(session.scalar(query) or 0)


def stock_dedup_key(store_id: int, sku: str) -> str:
    return f"stock:{store_id}:{sku}"


def enqueue_stock_push(
    session: Session,
    sku: str,
    quantity: int,
    *,
    at: datetime,
    store_ids: Sequence[int] | None = None,
) -> list[int]:
    """Enqueue (or rewrite) the pending ``push_stock`` row of ``sku`` for every store.

    Payload: ``{"sku": sku, "quantity": max(0, quantity), "store_id": id}``.
    """
    from .db.repository import SqlOutboxRepository

    ids = list(store_ids) if store_ids is not None else list(session.scalars(select(STORES.c.id)))
    outbox = SqlOutboxRepository(session)
    return [
        outbox.enqueue(
            PUSH_STOCK,
            {"sku": sku, "quantity": max(0, quantity), "store_id": store_id},
            at=at,
            store_id=store_id,
            dedup_key=stock_dedup_key(store_id, sku),
        )
        for store_id in sorted(ids)
    ]


class ParentStock(ConfigError):
    """Stock set on a product that has variants: its stock is its variants' stock (the
    store keeps the product's own row as their sum). ``variants``: their SKUs."""

    def __init__(self, sku: str, variants: Sequence[str]) -> None:
        self.sku = sku
        self.variants = tuple(variants)
        super().__init__(
            f"{sku} has variants and no stock of its own (the store sums theirs): set the "
            f"stock of each variant instead: {', '.join(self.variants)}"
        )


def variants_of(session: Session | Connection, sku: str) -> list[str]:
    """SKUs of the live variants of the product ``sku`` (empty: it holds stock itself)."""
    child, parent = PRODUCTS, PRODUCTS.alias("parent")
    return list(
        session.scalars(
            select(child.c.sku)
            .join(parent, parent.c.id == child.c.parent_id)
            .where(parent.c.sku == sku, child.c.deleted.is_(False))
            .order_by(child.c.sku)
        )
    )


def require_stock_unit(session: Session | Connection, sku: str) -> None:
    """Refuse a stock change on a product with variants (``ParentStock``)."""
    variants = variants_of(session, sku)
    if variants:
        raise ParentStock(sku, variants)


def write_on_hand(
    conn: Connection,
    sku: str,
    *,
    at: datetime,
    quantity: int | None = None,
    delta: int = 0,
    push: bool = True,
) -> tuple[int, int, int]:
    """On hand := ``quantity`` (or += ``delta``) on prebuilt Core statements, in ``conn``'s
    transaction: the row created when missing (and locked on PostgreSQL, SQLite's ``BEGIN
    IMMEDIATE`` holds the database), written only when it changes, and one coalesced
    ``push_stock`` per store unless ``push`` is false. Returns (on hand before, on hand
    now, reserved).

    Raises:
        ConfigError: the new on hand would be negative.
    """
    st = event_statements(conn)
    postgres = conn.dialect.name == "postgresql"
    read = st.lock_inventory if postgres else st.read_stock
    found = run(conn, read, {"b_skus": [sku]}).first()
    if found is None:
        run(
            conn,
            st.create_inventory,
            [{"sku": sku, "on_hand": 0, "reserved": 0, "updated_at": utcnow()}],
        )
        if postgres:  # created now, or by a concurrent writer first: locked either way
            found = run(conn, st.lock_inventory, {"b_skus": [sku]}).one()
    before, reserved = (int(found[1]), int(found[2])) if found is not None else (0, 0)
    if quantity is None:
        now = before + delta
        if now < 0:
            raise ConfigError(f"stock adjust {delta:+d} would make {sku} on hand {now}")
    else:
        if quantity < 0:
            raise ConfigError(f"stock for {sku} cannot be negative ({quantity})")
        now = quantity
    if now != before:
        run(conn, st.set_on_hand, {"b_sku": sku, "b_on_hand": now, "b_at": at})
        if push:
            stores = run(conn, st.store_ids).scalars()
            if stores:
                run(conn, st.push_stock, push_rows(stores, sku, now - reserved, at))
    return before, now, reserved


def push_rows(
    store_ids: Sequence[int], sku: str, available: int, at: datetime
) -> list[dict[str, object]]:
    """The coalesced ``push_stock`` outbox rows of ``sku`` (one per store) for the upsert
    ``statements.push_stock``: the pending row of its dedup key takes the latest value."""
    return [
        {
            "kind": PUSH_STOCK,
            "store_id": store_id,
            "order_id": None,
            "payload": {"sku": sku, "quantity": max(0, available), "store_id": store_id},
            "dedup_key": stock_dedup_key(store_id, sku),
            "then_trigger": None,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        for store_id in store_ids
    ]


def _on_hand(
    session: Session, sku: str, *, at: datetime, push: bool, quantity: int | None, delta: int = 0
) -> StockLevel:
    """``write_on_hand`` inside the session's transaction (its pending changes flushed
    first, its copies of the stock row and of the stock pushes expired after)."""
    from .db.tables import InventoryRow, OutboxRow

    session.flush()
    _before, now, reserved = write_on_hand(
        session.connection(), sku, at=at, quantity=quantity, delta=delta, push=push
    )
    if session.identity_map:
        for obj in list(session.identity_map.values()):
            if (isinstance(obj, InventoryRow) and obj.sku == sku) or (
                isinstance(obj, OutboxRow) and obj.kind == PUSH_STOCK
            ):
                session.expire(obj)
    return StockLevel(sku, now, reserved)


def set_on_hand(
    session: Session, sku: str, quantity: int, *, at: datetime, push: bool = True
) -> StockLevel:
    """Set a SKU's on-hand count (``omsflow stock set``). ``push=False`` for values read
    from the store itself (catalogue sync), which must not echo back."""
    return _on_hand(session, sku, at=at, push=push, quantity=quantity)


def adjust(session: Session, sku: str, delta: int, *, at: datetime) -> StockLevel:
    """Add ``delta`` (may be negative) to a SKU's on-hand count (``omsflow stock adjust``)."""
    return _on_hand(session, sku, at=at, push=True, quantity=None, delta=delta)


@dataclass(frozen=True)
class Hold:
    """One order's claim on one SKU: ``reserved`` units it holds, ``outstanding`` units it
    still has to ship (a waiting order holds none but needs them)."""

    sku: str
    order_id: int
    reference: str
    state: str
    reserved: int
    outstanding: int

    def to_json(self) -> dict[str, object]:
        return {
            "sku": self.sku,
            "order_id": self.order_id,
            "reference": self.reference,
            "state": self.state,
            "reserved": self.reserved,
            "outstanding": self.outstanding,
        }


def holds(
    session: Session | Connection, skus: Iterable[str], *, waiting_states: Iterable[str] = ()
) -> list[Hold]:
    """The orders holding units of ``skus`` (a line with ``reserved > 0``), and the orders in
    ``waiting_states`` (Partial: short, waiting for stock) with units of them still to ship;
    per SKU, then oldest order first."""
    wanted = sorted(set(skus))
    if not wanted:
        return []
    waiting = sorted(set(waiting_states))
    ln, o = ORDER_LINES.c, ORDERS.c
    outstanding = ln.quantity - ln.consumed
    claim = ln.reserved > 0
    if waiting:
        claim = or_(claim, o.state.in_(waiting) & (outstanding > 0))
    found: list[Hold] = []
    for i in range(0, len(wanted), 500):
        query = (
            select(
                ln.sku, o.id, o.reference, o.state, func.sum(ln.reserved), func.sum(outstanding)
            )
            .select_from(ORDER_LINES)
            .join(ORDERS, o.id == ln.order_id)
            .where(ln.sku.in_(wanted[i : i + 500]), claim)
            .group_by(ln.sku, o.id, o.reference, o.state, o.ordered_at)
            .order_by(ln.sku, o.ordered_at, o.id)
        )
        found.extend(
            Hold(sku, oid, ref, state, int(reserved or 0), int(left or 0))
            for sku, oid, ref, state, reserved, left in session.execute(query)
        )
    return found
