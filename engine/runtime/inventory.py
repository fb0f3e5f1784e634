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

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from engine.errors import ConfigError

from .db.repository import SqlInventoryRepository, SqlOutboxRepository
from .db.tables import InventoryRow, OrderLineRow, OrderRow, OutboxRow, ProductRow, StoreRow

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


def _level(row: InventoryRow) -> StockLevel:
    return StockLevel(row.sku, row.on_hand, row.reserved)


def levels(session: Session, skus: Iterable[str] | None = None) -> dict[str, StockLevel]:
    """Stock of the given SKUs (unknown SKUs read as 0/0), or of every SKU with a row."""
    query = select(InventoryRow)
    wanted = None if skus is None else sorted(set(skus))
    if wanted is not None:
        query = query.where(InventoryRow.sku.in_(wanted))
    found = {row.sku: _level(row) for row in session.scalars(query)}
    if wanted is not None:
        for sku in wanted:
            found.setdefault(sku, StockLevel(sku, 0, 0))
    return found


def stock_pushes_waiting(session: Session, store_id: int | None = None) -> int:
    """``push_stock`` rows not delivered yet (pending or leased), of one store or all."""
    query = select(func.count()).where(
        OutboxRow.kind == PUSH_STOCK, OutboxRow.state.in_(("pending", "leased"))
    )
    if store_id is not None:
        query = query.where(OutboxRow.store_id == store_id)
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
    ids = list(store_ids) if store_ids is not None else list(session.scalars(select(StoreRow.id)))
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


class _Change:
    """Locks the SKUs' rows, remembers their available quantities, and on ``finish`` pushes
    the SKUs whose available quantity changed."""

    def __init__(self, session: Session, skus: Iterable[str]) -> None:
        self.session = session
        self.rows = SqlInventoryRepository(session).lock(skus)
        self.before = {sku: row.on_hand - row.reserved for sku, row in self.rows.items()}

    def finish(self, *, at: datetime, push: bool = True) -> set[str]:
        changed = {
            sku for sku, row in self.rows.items() if row.on_hand - row.reserved != self.before[sku]
        }
        for sku in sorted(changed):
            self.rows[sku].updated_at = at
            if push:
                row = self.rows[sku]
                enqueue_stock_push(self.session, sku, row.on_hand - row.reserved, at=at)
        self.session.flush()
        return changed


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


def variants_of(session: Session, sku: str) -> list[str]:
    """SKUs of the live variants of the product ``sku`` (empty: it holds stock itself)."""
    parent = aliased(ProductRow)
    return list(
        session.scalars(
            select(ProductRow.sku)
            .join(parent, parent.id == ProductRow.parent_id)
            .where(parent.sku == sku, ProductRow.deleted.is_(False))
            .order_by(ProductRow.sku)
        )
    )


def require_stock_unit(session: Session, sku: str) -> None:
    """Refuse a stock change on a product with variants (``ParentStock``)."""
    variants = variants_of(session, sku)
    if variants:
        raise ParentStock(sku, variants)


def set_on_hand(
    session: Session, sku: str, quantity: int, *, at: datetime, push: bool = True
) -> StockLevel:
    """Set a SKU's on-hand count (``omsflow stock set``). ``push=False`` for values read
    from the store itself (catalogue sync), which must not echo back."""
    if quantity < 0:
        raise ConfigError(f"stock for {sku} cannot be negative ({quantity})")
    change = _Change(session, [sku])
    change.rows[sku].on_hand = quantity
    change.finish(at=at, push=push)
    return _level(change.rows[sku])


def adjust(session: Session, sku: str, delta: int, *, at: datetime) -> StockLevel:
    """Add ``delta`` (may be negative) to a SKU's on-hand count (``omsflow stock adjust``)."""
    change = _Change(session, [sku])
    row = change.rows[sku]
    if row.on_hand + delta < 0:
        raise ConfigError(
            f"stock adjust {delta:+d} would make {sku} on hand {row.on_hand + delta}"
        )
    row.on_hand += delta
    change.finish(at=at)
    return _level(row)


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
    session: Session, skus: Iterable[str], *, waiting_states: Iterable[str] = ()
) -> list[Hold]:
    """The orders holding units of ``skus`` (a line with ``reserved > 0``), and the orders in
    ``waiting_states`` (Partial: short, waiting for stock) with units of them still to ship;
    per SKU, then oldest order first."""
    wanted = sorted(set(skus))
    if not wanted:
        return []
    waiting = sorted(set(waiting_states))
    outstanding = OrderLineRow.quantity - OrderLineRow.consumed
    claim = OrderLineRow.reserved > 0
    if waiting:
        claim = or_(claim, OrderRow.state.in_(waiting) & (outstanding > 0))
    found: list[Hold] = []
    for i in range(0, len(wanted), 500):
        query = (
            select(
                OrderLineRow.sku,
                OrderRow.id,
                OrderRow.reference,
                OrderRow.state,
                func.sum(OrderLineRow.reserved),
                func.sum(outstanding),
            )
            .join(OrderRow, OrderRow.id == OrderLineRow.order_id)
            .where(OrderLineRow.sku.in_(wanted[i : i + 500]), claim)
            .group_by(
                OrderLineRow.sku,
                OrderRow.id,
                OrderRow.reference,
                OrderRow.state,
                OrderRow.ordered_at,
            )
            .order_by(OrderLineRow.sku, OrderRow.ordered_at, OrderRow.id)
        )
        found.extend(
            Hold(sku, oid, ref, state, int(reserved or 0), int(left or 0))
            for sku, oid, ref, state, reserved, left in session.execute(query)
        )
    return found
