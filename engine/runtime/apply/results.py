"""What the one rule takes in and gives back: the new orders to import, the result of an
event, of a stock change, and the error of a stock change below what orders hold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from engine.core import Blocker
from engine.errors import ConfigError
from engine.runtime import inventory

Source = Literal["channel", "wms", "user", "system"]
SOURCES: frozenset[str] = frozenset({"channel", "wms", "user", "system"})
ATTENTION_SOURCES: frozenset[str] = frozenset({"channel", "wms"})
"""A refusal of an event from these sources flags the order for an operator."""


class BundleLike(Protocol):
    """What the one rule needs of ``engine.runtime.specs.Bundle``."""

    @property
    def compiled(self) -> Any: ...
    @property
    def machine(self) -> Any: ...


def spec_of(bundle: BundleLike) -> str | None:
    """The spec version a bundle carries (``specs.Bundle.spec_version``; None if none)."""
    version = getattr(bundle, "spec_version", None)
    return version if isinstance(version, str) else None


@dataclass(frozen=True)
class ApplyResult:
    """What happened to one inbound event.

    ``outcome``: ``applied`` | ``refused`` | ``acknowledged`` (a late event the spec
    declares a no-op from the order's state: recorded, not flagged) | ``duplicate``
    (idempotency key seen before: nothing written).
    """

    outcome: Literal["applied", "refused", "acknowledged", "duplicate"]
    trigger: str
    idempotency_key: str
    order_id: int | None = None
    reference: str | None = None
    from_state: str | None = None
    state: str | None = None
    blockers: tuple[Blocker, ...] = ()
    effects: tuple[str, ...] = ()
    outbox_ids: tuple[int, ...] = ()
    promoted: tuple[int, ...] = ()
    """Partial orders moved to New because this event released stock."""
    attempts: int = 1

    @property
    def applied(self) -> bool:
        return self.outcome == "applied"

    @property
    def duplicate(self) -> bool:
        return self.outcome == "duplicate"

    @property
    def acknowledged(self) -> bool:
        return self.outcome == "acknowledged"


@dataclass(frozen=True)
class NewLine:
    sku: str
    quantity: int
    unit_price: Decimal | None = None
    name: str | None = None
    external_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """The channel spec's ``extra:`` fields of the line (JSON-safe)."""


@dataclass(frozen=True)
class NewOrder:
    """An order to import (from a store sync, a test or the demo)."""

    reference: str
    ordered_at: datetime
    lines: Sequence[NewLine]
    store_id: int | None = None
    external_id: str | None = None
    currency: str | None = None
    total_paid: Decimal | None = None
    total_products: Decimal | None = None
    total_shipping: Decimal | None = None
    payment: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    shipping_address: Mapping[str, Any] = field(default_factory=dict)
    invoice_address: Mapping[str, Any] = field(default_factory=dict)
    carrier: str | None = None
    customer_phone: str | None = None
    total_discounts: Decimal | None = None
    total_wrapping: Decimal | None = None
    total_paid_tax_excl: Decimal | None = None
    channel_state: str | None = None
    channel_state_id: int | None = None
    channel_updated_at: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    """The channel spec's ``extra:`` fields of the order (JSON-safe)."""


@dataclass(frozen=True)
class OrderImport:
    """One order of an import batch: the order, its import trigger, its event key."""

    order: NewOrder
    trigger: str
    idempotency_key: str
    adopt_stock: bool = False
    """The store's quantity already excludes this open order's units (the first backfill):
    they count as on hand for its guard, and reserving puts them back (``core.stock.book``)."""


@dataclass(frozen=True)
class StockResult:
    level: inventory.StockLevel
    promoted: tuple[int, ...] = ()
    shorted: tuple[int, ...] = ()
    """Orders moved to Partial (``stock_short``) because the stock dropped below what they
    held, newest first."""
    references: Mapping[int, str] = field(default_factory=dict)
    """Order id -> reference, for the promoted and shorted orders."""


@dataclass(frozen=True)
class Settled:
    """What a stock change did to orders: shorted (to Partial) and promoted (to New)."""

    shorted: tuple[int, ...] = ()
    promoted: tuple[int, ...] = ()
    references: Mapping[int, str] = field(default_factory=dict)


class StockHeld(ConfigError):
    """A stock change below what orders the lifecycle cannot short hold (released to the
    warehouse: ``stock_short`` does not leave their state). ``holds``: those orders."""

    def __init__(self, what: str, sku: str, held: int, holds: Sequence[inventory.Hold]) -> None:
        self.sku = sku
        self.held = held
        self.holds = tuple(holds)
        shown = ", ".join(f"{h.reference} ({h.state}, {h.reserved})" for h in self.holds[:10])
        more = f" and {len(self.holds) - 10} more" if len(self.holds) > 10 else ""
        super().__init__(
            f"{what}: {held} unit(s) of {sku} are held by order(s) already past New: "
            f"{shown}{more}; on hand cannot go below {held} (fix: set at least {held}, or "
            "cancel one of those orders first)"
        )
