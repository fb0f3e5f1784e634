"""OMS prices -> the store's price: ``omsflow price set`` and the rule that picks the price.

A product has an OMS Retail Selling Price and a Selling Price; the channel spec's
``prices.sources`` names which wins (the first that is set). Setting a price enqueues one
coalesced ``push_price`` row per store the SKU is bound to (``dedup_key =
price:<store_id>:<sku>``), plus one for each variation priced on its own when a parent's
price changes (a variation's store price is an impact relative to its parent).

Functions receive a ``Session`` and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import ConfigError, NotFound

from .db.repository import SqlOutboxRepository
from .db.tables import ProductRow, StoreRow

PUSH_PRICE = "push_price"


def price_from_sources(product: Any, sources: Sequence[str]) -> Decimal | None:
    """The first of ``sources`` (attribute names) set on ``product``; None if none is."""
    for name in sources:
        value = getattr(product, name, None)
        if value is not None:
            return Decimal(str(value))
    return None


def parse_price(text: str, what: str) -> Decimal:
    """A non-negative decimal from the command line, or ConfigError naming ``what``."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ConfigError(f"{what} {text!r} is not a number (e.g. 19.90)") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{what} {text!r} must be a number >= 0")
    return value.quantize(Decimal("0.000001"))


def price_dedup_key(store_id: int, sku: str) -> str:
    return f"price:{store_id}:{sku}"


@dataclass(frozen=True)
class PriceChange:
    sku: str
    retail_selling_price: Decimal | None
    selling_price: Decimal | None
    outbox_ids: tuple[int, ...]


def _bound_stores(session: Session, row: ProductRow) -> list[int]:
    stores = {str(s.id): s.id for s in session.scalars(select(StoreRow))}
    names = {s.name: s.id for s in session.scalars(select(StoreRow))}
    found = set()
    for key in row.store_ids or {}:
        if key in stores:
            found.add(stores[key])
        elif key in names:
            found.add(names[key])
    return sorted(found)


def enqueue_price_push(session: Session, row: ProductRow, *, at: datetime) -> list[int]:
    """One coalesced push_price row per store ``row`` is bound to."""
    outbox = SqlOutboxRepository(session)
    return [
        outbox.enqueue(
            PUSH_PRICE,
            {"sku": row.sku, "store_id": store_id},
            at=at,
            store_id=store_id,
            dedup_key=price_dedup_key(store_id, row.sku),
        )
        for store_id in _bound_stores(session, row)
    ]


def set_price(
    session: Session,
    sku: str,
    *,
    retail: Decimal | None = None,
    selling: Decimal | None = None,
    at: datetime,
) -> PriceChange:
    """Set a SKU's OMS prices (``None`` keeps a price) and enqueue the store pushes.

    Raises:
        NotFound: no product has this SKU.
        ConfigError: neither price given.
    """
    if retail is None and selling is None:
        raise ConfigError("price set needs --retail and/or --selling")
    row = session.scalars(select(ProductRow).where(ProductRow.sku == sku)).one_or_none()
    if row is None or row.deleted:
        raise NotFound(f"SKU {sku!r} not found (fix: omsflow sync catalog, or check the SKU)")
    if retail is not None:
        row.retail_selling_price = retail
    if selling is not None:
        row.selling_price = selling
    row.updated_at = at
    session.flush()
    ids = enqueue_price_push(session, row, at=at)
    for child in session.scalars(select(ProductRow).where(ProductRow.parent_id == row.id)):
        if not child.deleted and (
            child.retail_selling_price is not None or child.selling_price is not None
        ):
            ids += enqueue_price_push(session, child, at=at)
    return PriceChange(row.sku, row.retail_selling_price, row.selling_price, tuple(ids))
