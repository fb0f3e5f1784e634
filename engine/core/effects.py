"""The effect vocabulary: names a spec may declare on transitions, and which are local.

Local effects (stock bookkeeping) are applied by the runtime inside the event's
transaction; all others are outbox effects, delivered after commit.
"""

from __future__ import annotations

LOCAL_EFFECTS: frozenset[str] = frozenset({"reserve_stock", "release_stock", "consume_stock"})
"""Applied inside the event's transaction."""

OUTBOX_EFFECTS: frozenset[str] = frozenset(
    {"push_status", "request_awb", "push_tracking", "notify_wms", "push_stock"}
)
"""Delivered through the outbox after commit."""

EFFECTS: frozenset[str] = LOCAL_EFFECTS | OUTBOX_EFFECTS


def is_local(kind: str) -> bool:
    """True for effects applied inside the event's transaction."""
    return kind in LOCAL_EFFECTS
