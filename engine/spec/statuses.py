"""The two ways a channel spec may name a PrestaShop order state, and how they relate.

A status map entry names a state either by PrestaShop's own configuration key
(``PS_OS_SHIPPING``: the id PrestaShop itself uses, whatever the state is called in the
store's languages) or by its name (``Shipped``, or any name the store shows, in any of its
languages). A name that is the default English name of a key's state (``Shipped`` for
``PS_OS_SHIPPING``) stands for that key, so ``Shipped`` still finds the shipping state of a
store whose states are named in French. Pure data and functions: no IO.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

STATE_KEY_RE = re.compile(r"^PS_OS_[A-Z0-9_]+$")

#: PrestaShop's order-state configuration keys -> the default English name of their state
#: (install/data/xml/order_state.xml and configuration.xml of 1.7 / 8.x). Keys that share a
#: state (PS_OS_OUTOFSTOCK and PS_OS_OUTOFSTOCK_PAID) are listed once, by the older key.
DEFAULT_STATE_KEYS: Mapping[str, str] = {
    "PS_OS_CHEQUE": "Awaiting check payment",
    "PS_OS_PAYMENT": "Payment accepted",
    "PS_OS_PREPARATION": "Processing in progress",
    "PS_OS_SHIPPING": "Shipped",
    "PS_OS_DELIVERED": "Delivered",
    "PS_OS_CANCELED": "Canceled",
    "PS_OS_REFUND": "Refunded",
    "PS_OS_ERROR": "Payment error",
    "PS_OS_OUTOFSTOCK": "On backorder (paid)",
    "PS_OS_BANKWIRE": "Awaiting bank wire payment",
    "PS_OS_WS_PAYMENT": "Remote payment accepted",
    "PS_OS_OUTOFSTOCK_UNPAID": "On backorder (not paid)",
    "PS_OS_COD_VALIDATION": "Awaiting Cash On Delivery validation",
}
_BY_NAME = {name.casefold(): key for key, name in DEFAULT_STATE_KEYS.items()}


def is_state_key(text: str) -> bool:
    """``PS_OS_SHIPPING`` (any ``PS_OS_*`` key, also one a module added) -> True."""
    return bool(STATE_KEY_RE.match(text.strip()))


def state_key_for(text: str) -> str | None:
    """The configuration key a status map entry stands for: the key itself, the key whose
    default state has this English name (case-insensitive), or None (a custom name)."""
    raw = text.strip()
    if is_state_key(raw):
        return raw
    return _BY_NAME.get(raw.casefold())


def canonical_status(text: str) -> str:
    """One spelling per state, to compare entries written in either form: the key when
    there is one, else the name folded for case."""
    return state_key_for(text) or text.strip().casefold()


__all__ = [
    "DEFAULT_STATE_KEYS",
    "STATE_KEY_RE",
    "canonical_status",
    "is_state_key",
    "state_key_for",
]
