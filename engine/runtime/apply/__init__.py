"""The one rule (DESIGN.md "The one rule"): applying an event is ONE transaction.

- ``events``: one event on one order (``apply_on`` in a transaction, ``apply_inbound`` in
  its own), and the oldest-first promotion of Partial orders it may cause;
- ``imports``: a batch of new orders (``create_orders``); one order is a batch of one
  (``create_order``);
- ``stock``: stock changes (``set_stock``, ``adjust_stock``) and the orders they short or
  promote, in the change's transaction;
- ``attention``: ``orders ack`` and a dead effect's flag;
- ``session``: the same, for callers that hold ORM objects in a session;
- ``rows`` / ``results`` / ``tx``: the values written, the values returned, the retried
  transaction.
The arithmetic of stock and reservations is pure, in ``engine.core.stock``.

Names are imported from their module when first used (``__getattr__``): ``omsflow stock
set`` loads ``stock`` and what it needs, not the batch import, the ORM session edge or the
attention flags (``tests/cli/test_startup.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .attention import ACK_TRIGGER, Acknowledgement, acknowledge_attention, flag_dead_effect
    from .events import (
        PARTIAL,
        STOCK_ARRIVED,
        apply_inbound,
        apply_on,
        promote_on,
    )
    from .imports import create_order, create_orders
    from .results import (
        ATTENTION_SOURCES,
        SOURCES,
        ApplyResult,
        BundleLike,
        NewLine,
        NewOrder,
        OrderImport,
        Settled,
        Source,
        StockHeld,
        StockResult,
        spec_of,
    )
    from .rows import MAX_REASON, country_of, unknown_trigger_message
    from .session import apply_in_session, create_orders_in, settle_stock
    from .stock import (
        STOCK_SHORT,
        adjust_stock,
        change_stock,
        require_unheld,
        set_stock,
        settle_on,
        short_on,
        shortable_states,
        waiting_states,
    )
    from .tx import MAX_ATTEMPTS, RETRIED_SQLSTATES, rolled_back_whole

__all__ = [
    "ACK_TRIGGER",
    "ATTENTION_SOURCES",
    "MAX_ATTEMPTS",
    "MAX_REASON",
    "PARTIAL",
    "RETRIED_SQLSTATES",
    "SOURCES",
    "STOCK_ARRIVED",
    "STOCK_SHORT",
    "Acknowledgement",
    "ApplyResult",
    "BundleLike",
    "NewLine",
    "NewOrder",
    "OrderImport",
    "Settled",
    "Source",
    "StockHeld",
    "StockResult",
    "acknowledge_attention",
    "adjust_stock",
    "apply_in_session",
    "apply_inbound",
    "apply_on",
    "change_stock",
    "country_of",
    "create_order",
    "create_orders",
    "create_orders_in",
    "flag_dead_effect",
    "promote_on",
    "require_unheld",
    "rolled_back_whole",
    "set_stock",
    "settle_on",
    "settle_stock",
    "short_on",
    "shortable_states",
    "spec_of",
    "unknown_trigger_message",
    "waiting_states",
]

_HOME = {
    "ACK_TRIGGER": "attention",
    "ATTENTION_SOURCES": "results",
    "Acknowledgement": "attention",
    "ApplyResult": "results",
    "BundleLike": "results",
    "MAX_ATTEMPTS": "tx",
    "MAX_REASON": "rows",
    "NewLine": "results",
    "NewOrder": "results",
    "OrderImport": "results",
    "PARTIAL": "events",
    "RETRIED_SQLSTATES": "tx",
    "SOURCES": "results",
    "STOCK_ARRIVED": "events",
    "STOCK_SHORT": "stock",
    "Settled": "results",
    "Source": "results",
    "StockHeld": "results",
    "StockResult": "results",
    "acknowledge_attention": "attention",
    "adjust_stock": "stock",
    "apply_in_session": "session",
    "apply_inbound": "events",
    "apply_on": "events",
    "change_stock": "stock",
    "country_of": "rows",
    "create_order": "imports",
    "create_orders": "imports",
    "create_orders_in": "session",
    "flag_dead_effect": "attention",
    "promote_on": "events",
    "require_unheld": "stock",
    "rolled_back_whole": "tx",
    "set_stock": "stock",
    "settle_on": "stock",
    "settle_stock": "session",
    "short_on": "stock",
    "shortable_states": "stock",
    "spec_of": "results",
    "unknown_trigger_message": "rows",
    "waiting_states": "stock",
}
"""Each public name: the module of this package that defines it."""


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
