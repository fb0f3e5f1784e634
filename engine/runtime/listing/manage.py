"""Activate, deactivate and delete listed products by SKU: the store first, then the OMS.

Each SKU is handled on its own (one failure does not stop the others). The store's product
id comes from ``ProductRow.store_ids[str(store_id)]`` (written by listing or the catalogue
sync). Activate/deactivate is a full-object PUT of ``active`` (skipped when the store already
shows it) and sets ``ProductRow.active`` on the product and its variants. Delete removes the
product (or, for a variant SKU, its combination) from the store, a 404 counting as done,
then marks the OMS rows ``deleted``, drops their ids for that store and their bindings; a
SKU deleted before is reported as done (a re-run after Ctrl-C finishes the rest).

Deleting or deactivating a SKU that open orders hold (reserved units) or wait for (Partial)
is refused before anything is changed, naming the orders (``HeldSkus``), unless ``force``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ChannelNotFound, ConfigError, OmsflowError
from engine.runtime import inventory
from engine.runtime.channels.port import ListingPort
from engine.runtime.db.tables import BindingRow, ProductRow

Action = Literal["activate", "deactivate", "delete"]


@dataclass(frozen=True)
class SkuResult:
    """What happened to one SKU."""

    sku: str
    ok: bool
    message: str
    product_id: int | None = None
    combination_id: int | None = None
    holds: tuple[inventory.Hold, ...] = ()
    """Open orders that still hold or wait for it (``force``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "ok": self.ok,
            "message": self.message,
            "product_id": self.product_id,
            "combination_id": self.combination_id,
            "orders": [h.to_json() for h in self.holds],
        }


def _orders_text(holds: Iterable[inventory.Hold]) -> str:
    """``R-1 (New, 2 reserved), R-2 (Partial, waiting)``, one entry per order."""
    per_order: dict[str, list[inventory.Hold]] = defaultdict(list)
    for h in holds:
        per_order[h.reference].append(h)
    parts = []
    for ref, hs in per_order.items():
        reserved = sum(h.reserved for h in hs)
        parts.append(f"{ref} ({hs[0].state}, {f'{reserved} reserved' if reserved else 'waiting'})")
    return ", ".join(parts)


class HeldSkus(ConfigError):
    """SKUs that open orders hold or wait for; nothing was changed. ``holds``: SKU asked
    -> the orders' claims (on it, or for a product with variants, on its variants)."""

    def __init__(self, action: str, holds: dict[str, list[inventory.Hold]]) -> None:
        self.action = action
        self.holds = holds
        shown = "; ".join(f"{sku}: {_orders_text(hs)}" for sku, hs in holds.items())
        super().__init__(
            f"products {action}: {len(holds)} SKU(s) held by open orders ({shown}); nothing "
            f"was changed (fix: ship or cancel those orders first, or pass --force to "
            f"{action} anyway)"
        )


def _ids(row: ProductRow, store_id: int) -> dict[str, Any] | None:
    entry = (row.store_ids or {}).get(str(store_id))
    return entry if isinstance(entry, dict) and entry.get("product_id") else None


def _unbind(session: Session, store_id: int, row: ProductRow) -> None:
    session.execute(
        delete(BindingRow).where(
            BindingRow.store_id == store_id,
            BindingRow.kind.in_(("product", "combination", "stock_available")),
            BindingRow.internal_id == str(row.id),
        )
    )
    ids = dict(row.store_ids or {})
    ids.pop(str(store_id), None)
    row.store_ids = ids
    row.deleted = True


def change_products(
    session_factory: sessionmaker[Session],
    store_id: int,
    adapter: ListingPort,
    skus: Sequence[str],
    action: Action,
    *,
    force: bool = False,
    waiting_states: Iterable[str] = (),
    progress: Callable[[int, int, str], None] | None = None,
) -> list[SkuResult]:
    """Activate, deactivate or delete each SKU in the store, then record it in the OMS.

    Args:
        force: delete/deactivate also SKUs that open orders hold or wait for.
        waiting_states: states whose orders wait for stock (``service.waiting_states``).
        progress: ``(done, total, sku)`` after each SKU.

    Raises:
        HeldSkus: delete/deactivate of SKUs open orders hold, without ``force``; nothing
            was changed.
    """
    wanted = list(dict.fromkeys(skus))
    held: dict[str, list[inventory.Hold]] = {}
    if action in ("delete", "deactivate"):
        held = _held(session_factory, wanted, waiting_states)
        if held and not force:
            raise HeldSkus(action, held)
    out: list[SkuResult] = []
    for done, sku in enumerate(wanted, start=1):
        try:
            result = _one(session_factory, store_id, adapter, sku, action)
        except OmsflowError as exc:
            result = SkuResult(sku, False, str(exc))
        if sku in held and result.ok:
            result = SkuResult(
                result.sku,
                result.ok,
                f"{result.message} (forced: open orders still hold it: {_orders_text(held[sku])})",
                result.product_id,
                result.combination_id,
                tuple(held[sku]),
            )
        out.append(result)
        if progress:
            progress(done, len(wanted), sku)
    return out


def _held(
    session_factory: sessionmaker[Session], skus: Sequence[str], waiting_states: Iterable[str]
) -> dict[str, list[inventory.Hold]]:
    """SKU asked -> the open orders' claims on it (a product: also on its variants)."""
    waiting = tuple(waiting_states)
    out: dict[str, list[inventory.Hold]] = {}
    with session_factory() as session:
        for sku in skus:
            row = session.scalars(select(ProductRow).where(ProductRow.sku == sku)).one_or_none()
            if row is None or row.deleted:
                continue
            units = [sku, *session.scalars(select(ProductRow.sku).where(
                ProductRow.parent_id == row.id, ProductRow.deleted.is_(False)))]  # fmt: skip
            found = inventory.holds(session, units, waiting_states=waiting)
            if found:
                out[sku] = found
    return out


def _one(
    session_factory: sessionmaker[Session],
    store_id: int,
    adapter: ListingPort,
    sku: str,
    action: Action,
) -> SkuResult:
    with session_factory() as session, session.begin():
        row = session.scalars(select(ProductRow).where(ProductRow.sku == sku)).one_or_none()
        if row is None:
            return SkuResult(sku, False, f"SKU {sku!r} is not in the OMS catalogue")
        entry = _ids(row, store_id)
        if row.deleted and action == "delete":
            return SkuResult(sku, True, "already deleted")
        if entry is None or row.deleted:
            return SkuResult(sku, False, f"SKU {sku!r} is not listed in this store")
        pid = int(entry["product_id"])
        cid = int(entry.get("combination_id") or 0) or None
        children = list(session.scalars(select(ProductRow).where(ProductRow.parent_id == row.id)))
        if action in ("activate", "deactivate"):
            if cid is not None:
                return SkuResult(
                    sku,
                    False,
                    f"{sku} is a variant; PrestaShop activates whole products "
                    f"({action} its parent SKU instead)",
                    pid,
                    cid,
                )
            active = action == "activate"
            adapter.set_active(pid, active)
            for r in (row, *children):
                r.active = active
            return SkuResult(sku, True, f"{action}d product {pid}", pid)
        try:
            if cid is not None:
                adapter.delete_combination(cid)
            else:
                adapter.delete_product(pid)
        except ChannelNotFound:
            pass  # already gone from the store: finish the OMS side
        for r in (row, *([] if cid is not None else children)):
            _unbind(session, store_id, r)
        what = f"combination {cid} of product {pid}" if cid else f"product {pid}"
        return SkuResult(sku, True, f"deleted {what}", pid, cid)


__all__ = ["Action", "HeldSkus", "SkuResult", "change_products"]
