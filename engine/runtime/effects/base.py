"""What an effect handler receives and returns: the delivery, its prefetched context, errors.

A handler is ``(ctx: EffectContext, d: Delivery) -> str | None`` (an optional note for the
log). It must be idempotent: the outbox may deliver it again after a crash, an expired
lease or a store that applied a write and then answered 500. It raises
``engine.errors.ChannelError`` (``retryable`` decides retry vs dead), ``EffectFailed``
(permanent: dead with the message), anything else (retried as transient). A write whose
answer was lost (``ChannelUnavailable``: timeout, dropped connection, 5xx after commit, a
garbled 2xx body) may have been applied: ``checked_write`` (channels/port.py) reads the store
back before the failure is reported, so an applied write is never retried blindly nor
dead-lettered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from engine.errors import OmsflowError
from engine.runtime.channels.port import STOCK_TOKEN
from engine.runtime.db.repository import lane_of

if TYPE_CHECKING:
    from engine.runtime.channels.port import ChannelPort
    from engine.runtime.db.stores import StoreRecord


T = TypeVar("T")


class EffectFailed(OmsflowError):
    """A permanent failure of one effect (unbound SKU, unknown state): dead-lettered."""


class AdapterSource(Protocol):
    """What handlers need of ``outbox.AdapterPool``."""

    def adapter(self, store_id: int) -> ChannelPort: ...
    def store(self, store_id: int) -> StoreRecord: ...


@dataclass(frozen=True)
class OrderInfo:
    """The order an effect belongs to, read when its batch was leased."""

    id: int
    reference: str
    store_id: int | None
    external_id: str | None
    state: str
    customer_name: str | None = None
    shipping_address: Mapping[str, Any] = field(default_factory=dict)
    carrier: str | None = None
    """The store's carrier of the order (printed as the label's service)."""
    items: int | None = None
    """Units on the order (the label's item count)."""
    weight_kg: Decimal | None = None
    """The parcel's weight: each line's unit weight x quantity (None: no line has one)."""


@dataclass(frozen=True)
class ProductInfo:
    """A SKU's catalogue facts the stock and price effects need."""

    id: int
    sku: str
    parent_id: int | None
    store_ids: Mapping[str, Any]
    price: Decimal | None = None
    retail_selling_price: Decimal | None = None
    selling_price: Decimal | None = None
    has_children: bool = False

    def binding(self, store_id: int, store_name: str | None = None) -> Mapping[str, Any] | None:
        """``{"product_id", "combination_id", "stock_available_id", "stock_token", "key"}`` in
        this store, or None. ``stock_token`` is what the channel asked to keep for its next
        stock write (``ChannelPort.push_stock``; opaque here; None when never given; a
        binding written before tokens holds it as ``stock``); ``key`` is the ``store_ids``
        key.

        Keyed by the store id (as a string); the store name and the short keys
        ``product``/``combination`` are read too."""
        key = str(store_id)
        raw = self.store_ids.get(key)
        if raw is None and store_name is not None:
            key = store_name
            raw = self.store_ids.get(store_name)
        if not isinstance(raw, Mapping):
            return None
        product = raw.get("product_id", raw.get("product"))
        if not product:
            return None
        combination = raw.get("combination_id", raw.get("combination"))
        return {
            "product_id": int(product),
            "combination_id": int(combination) if combination else None,
            "stock_available_id": raw.get("stock_available_id"),
            "stock_token": raw.get(STOCK_TOKEN, raw.get("stock")),
            "key": key,
        }


@dataclass(frozen=True)
class Delivery:
    """One leased outbox row, detached from the session."""

    id: int
    kind: str
    order_id: int | None
    store_id: int | None
    payload: Mapping[str, Any]
    dedup_key: str | None
    then_trigger: str | None
    attempts: int
    order: OrderInfo | None = None
    product: ProductInfo | None = None
    parent: ProductInfo | None = None

    @property
    def lane(self) -> str:
        """Effects in one lane are delivered one after another, in id order, and only one
        dispatcher holds rows of a lane at a time (``repository.lane_of``)."""
        return lane_of(self.order_id, self.dedup_key, self.id)


@dataclass(frozen=True)
class EffectContext:
    """Everything a handler may use; shared by every worker thread."""

    session_factory: sessionmaker[Session]
    bundle: Any
    adapters: AdapterSource
    label_dir: Path
    clock: Callable[[], datetime]
    environ: Mapping[str, str]

    @property
    def channel(self) -> Any:
        return self.bundle.channel


Handler = Callable[[EffectContext, Delivery], "str | None"]
