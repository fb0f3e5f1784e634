"""The effect registry: effect kind -> handler that delivers it to a store or a WMS.

``handler_for(kind)`` returns the handler (``effects.base.Handler``); handlers live one
module per family (``status``: push_status; ``stock``: push_stock, push_price;
``fulfilment``: request_awb, push_tracking, notify_wms) and register themselves with
``@register(kind)``. The outbox dispatcher is the only caller.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import (
    Delivery,
    EffectContext,
    EffectFailed,
    Handler,
    OrderInfo,
    ProductInfo,
)

__all__ = [
    "HANDLERS",
    "Delivery",
    "EffectContext",
    "EffectFailed",
    "Handler",
    "OrderInfo",
    "ProductInfo",
    "handler_for",
    "register",
]

HANDLERS: dict[str, Handler] = {}


def register(kind: str) -> Callable[[Handler], Handler]:
    """Decorator: make ``fn`` the handler of effect ``kind``."""

    def wrap(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return wrap


def handler_for(kind: str) -> Handler:
    """The handler of ``kind``; ``EffectFailed`` when no handler delivers it."""
    try:
        return HANDLERS[kind]
    except KeyError:
        known = ", ".join(sorted(HANDLERS))
        raise EffectFailed(f"no handler delivers effect {kind!r} (known: {known})") from None


# Handlers register on import (after the registry exists).
from . import fulfilment, status, stock  # noqa: E402

__all__ += ["fulfilment", "status", "stock"]
