"""Stock changes and the orders they move, in the change's transaction.

Stock arriving (``set_stock``, ``adjust_stock``, a listing writing a higher stock) promotes
Partial orders to New, oldest first (``events.promote_on``): the coalesced stock push then
carries the value after those reservations, so a store is never told about units already
promised to waiting orders, and a crash cannot leave the stock changed but the waiting
orders forgotten.

The mirror: stock dropping below what is reserved fires ``stock_short`` on the NEWEST
orders holding the SKU, one at a time, until available is back at 0 or above. Orders the
lifecycle cannot short (past New: released to the warehouse) keep their units: a change
below what they hold is refused (``StockHeld``), so available never goes below 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from engine.core import stock as core_stock
from engine.core.stock import Row
from engine.runtime import inventory
from engine.runtime.db.direct import run
from engine.runtime.db.statements import EventStatements, event_statements

from .events import STOCK_ARRIVED, apply_on, promote_on, read_order
from .results import BundleLike, Settled, StockHeld, StockResult
from .tx import on_connection

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

STOCK_SHORT = "stock_short"


def _sources_of(bundle: BundleLike, trigger: str) -> frozenset[str]:
    """The states ``trigger`` leaves from in the lifecycle."""
    return frozenset(
        source for t in bundle.machine.transitions if t.trigger == trigger for source in t.sources
    )


def shortable_states(bundle: BundleLike) -> frozenset[str]:
    """States whose orders can be moved to Partial (``stock_short`` leaves from them)."""
    return _sources_of(bundle, STOCK_SHORT)


def waiting_states(bundle: BundleLike) -> frozenset[str]:
    """States whose orders wait for stock (``stock_arrived`` leaves from them)."""
    return _sources_of(bundle, STOCK_ARRIVED)


def require_unheld(
    conn: Connection | Session,
    bundle: BundleLike,
    on_hand: Mapping[str, int],
    what: str,
    *,
    before: Mapping[str, int] | None = None,
) -> None:
    """Raise ``StockHeld`` when a SKU's new on hand is below what orders that cannot be
    shorted hold. With ``before`` (the on hand until now), only a SKU whose stock goes down
    is checked: more stock is never refused, even while still short."""
    shortable = shortable_states(bundle)
    for sku, quantity in sorted(on_hand.items()):
        if before is not None and quantity >= before.get(sku, 0):
            continue
        firm = [h for h in inventory.holds(conn, [sku]) if h.state not in shortable]
        held = sum(h.reserved for h in firm)
        if quantity < held:
            raise StockHeld(what, sku, held, firm)


def _row(conn: Connection, st: EventStatements, sku: str) -> list[int]:
    found = run(conn, st.read_stock, {"b_skus": [sku]}).first()
    return [found[1], found[2]] if found is not None else [0, 0]


def short_on(
    conn: Connection,
    bundle: BundleLike,
    *,
    skus: Iterable[str],
    at: datetime,
    known: Mapping[str, Row] | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Fire ``stock_short`` on the newest orders (latest ``ordered_at``) holding units of each
    SKU whose available quantity is below 0, one order at a time, until it is 0 or above —
    the mirror of ``promote_on``, through the one rule. An order shorted gives back all its
    lines' units; Partial orders the release can now serve are promoted by the same rule
    (oldest first). ``known``: stock rows as the caller just wrote them in this transaction
    (read here otherwise). Returns (shorted, promoted) order ids."""
    shortable = sorted(shortable_states(bundle))
    if not shortable:
        return (), ()
    st = event_statements(conn)
    shorted: list[int] = []
    promoted: list[int] = []
    for sku in sorted(set(skus)):
        tried: list[int] = []
        row = known[sku] if known is not None and sku in known else _row(conn, st, sku)
        while core_stock.available({sku: row}, sku) < 0:
            oid = run(
                conn, st.newest_holding, {"b_states": shortable, "b_tried": tried, "b_sku": sku}
            ).scalar()
            if oid is None:
                break
            tried.append(oid)
            order = read_order(conn, st, order_id=oid)
            if order is None:  # pragma: no cover - read in this transaction
                continue
            result = apply_on(
                conn,
                bundle,
                trigger=STOCK_SHORT,
                source="system",
                idempotency_key=f"system:{STOCK_SHORT}:{oid}:{order.version}",
                at=at,
                order=order,
            )
            if result.applied:
                shorted.append(oid)
                promoted.extend(result.promoted)
            row = _row(conn, st, sku)
    return tuple(shorted), tuple(promoted)


def settle_on(
    conn: Connection,
    bundle: BundleLike,
    *,
    skus: Iterable[str],
    at: datetime,
    known: Mapping[str, Row] | None = None,
) -> Settled:
    """After the on hand of ``skus`` changed (in ``conn``'s transaction): short the newest
    orders of each SKU whose available went below 0 (``short_on``; ``known``: the rows as
    just written, if the caller has them), then promote the Partial orders its stock can
    now serve (``promote_on``)."""
    wanted = set(skus)
    shorted, promoted = short_on(conn, bundle, skus=wanted, at=at, known=known)
    promoted += promote_on(conn, bundle, skus=wanted, at=at) if wanted else ()
    moved = sorted({*shorted, *promoted})
    refs: dict[int, str] = {}
    if moved:
        st = event_statements(conn)
        refs = {int(i): str(r) for i, r in run(conn, st.references, {"b_ids": moved})}
    return Settled(shorted, promoted, refs)


def change_stock(
    conn: Connection,
    bundle: BundleLike,
    sku: str,
    *,
    at: datetime,
    quantity: int | None = None,
    delta: int = 0,
) -> StockResult:
    """On hand := ``quantity`` (or += ``delta``) in ``conn``'s transaction
    (``inventory.write_on_hand``: the row locked, one coalesced push per store), a lower
    value below the firm holds refused, then the newest orders shorted or Partial orders
    promoted."""
    before, now, reserved = inventory.write_on_hand(
        conn, sku, at=at, quantity=quantity, delta=delta
    )
    what = (
        f"stock set {sku} {quantity}" if quantity is not None else f"stock adjust {sku} {delta:+d}"
    )
    require_unheld(conn, bundle, {sku: now}, what, before={sku: before})
    moved = settle_on(conn, bundle, skus={sku}, at=at, known={sku: [now, reserved]})
    if moved.shorted or moved.promoted:
        on_hand, held = _row(conn, st=event_statements(conn), sku=sku)
    else:
        on_hand, held = now, reserved
    level = inventory.StockLevel(sku, on_hand, held)
    return StockResult(level, moved.promoted, moved.shorted, moved.references)


def set_stock(
    session_factory: sessionmaker[Session] | Engine,
    bundle: BundleLike,
    sku: str,
    quantity: int,
    *,
    at: datetime,
) -> StockResult:
    """``omsflow stock set``: on hand := quantity, then short the newest orders (stock below
    what is reserved) or promote Partial orders (stock above); one transaction.

    Raises:
        StockHeld: ``quantity`` is below what orders past New hold; nothing is written.
    """
    return on_connection(
        session_factory,
        lambda conn: change_stock(conn, bundle, sku, at=at, quantity=quantity),
        what=f"stock set {sku}",
    )[0]


def adjust_stock(
    session_factory: sessionmaker[Session] | Engine,
    bundle: BundleLike,
    sku: str,
    delta: int,
    *,
    at: datetime,
) -> StockResult:
    """``omsflow stock adjust``: on hand += delta, then short or promote as ``set_stock``;
    one transaction.

    Raises:
        StockHeld: the new on hand is below what orders past New hold; nothing is written.
    """
    return on_connection(
        session_factory,
        lambda conn: change_stock(conn, bundle, sku, at=at, delta=delta),
        what=f"stock adjust {sku}",
    )[0]
