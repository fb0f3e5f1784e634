"""Activate, deactivate and delete listed products by SKU: the store first, then the OMS.

Each SKU is handled on its own (one failure does not stop the others). The store's product
id comes from ``ProductRow.store_ids[str(store_id)]`` (written by listing or the catalogue
sync). Activate/deactivate is a full-object PUT of ``active`` (skipped when the store already
shows it) and sets ``ProductRow.active`` on the product and its variants. Delete removes the
product (or, for a variant SKU, its combination) from the store, a 404 counting as done,
then marks the OMS rows ``deleted``, drops their ids for that store and their bindings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ChannelNotFound, OmsflowError
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
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

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "ok": self.ok,
            "message": self.message,
            "product_id": self.product_id,
            "combination_id": self.combination_id,
        }


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
    adapter: PrestaShopAdapter,
    skus: Sequence[str],
    action: Action,
) -> list[SkuResult]:
    """Activate, deactivate or delete each SKU in the store, then record it in the OMS."""
    out: list[SkuResult] = []
    for sku in dict.fromkeys(skus):
        try:
            out.append(_one(session_factory, store_id, adapter, sku, action))
        except OmsflowError as exc:
            out.append(SkuResult(sku, False, str(exc)))
    return out


def _one(
    session_factory: sessionmaker[Session],
    store_id: int,
    adapter: PrestaShopAdapter,
    sku: str,
    action: Action,
) -> SkuResult:
    with session_factory() as session, session.begin():
        row = session.scalars(select(ProductRow).where(ProductRow.sku == sku)).one_or_none()
        if row is None:
            return SkuResult(sku, False, f"SKU {sku!r} is not in the OMS catalogue")
        entry = _ids(row, store_id)
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


__all__ = ["Action", "SkuResult", "change_products"]
