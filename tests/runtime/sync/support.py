"""Helpers for sync tests: a connected store in a fresh database, table dumps by natural
keys (so two databases can be compared whatever their surrogate ids), sandbox expectations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.prestashop.connect import state_names
from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.tables import (
    AuditRow,
    BindingRow,
    BrandRow,
    CategoryRow,
    InboundEventRow,
    InventoryRow,
    OrderRow,
    ProductRow,
    SyncCursorRow,
)
from sandbox.server import SandboxServer

IMPORTED_STATE_IDS = {2, 3, 4, 5, 6}  # the sandbox's ids of the channel's imported statuses


@contextmanager
def connected(
    url: str, sandbox: SandboxServer, bundle: Any, name: str = "main"
) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    engine = dbsession.make_engine(url)
    dbsession.upgrade(engine)
    sessions = dbsession.session_factory(engine)
    with PrestaShopAdapter.from_channel(sandbox.url, sandbox.key, bundle.channel) as adapter:
        ids, missing = adapter.resolve_states(state_names(bundle.channel))
    assert not missing
    with sessions.begin() as s:
        stores.save_store(s, name, sandbox.url, sandbox.key, ids)
    try:
        yield engine, sessions
    finally:
        engine.dispose()


def small_adapter(sandbox: SandboxServer, bundle: Any, page_size: int = 20) -> PrestaShopAdapter:
    adapter = PrestaShopAdapter.from_channel(sandbox.url, sandbox.key, bundle.channel)
    adapter.page_size = page_size
    return adapter


def _slug(text: str) -> str:
    import re
    import unicodedata

    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", norm.lower()).strip("-")


def expected_skus(sandbox: SandboxServer, store_id: int = 1) -> dict[tuple[int, int], str]:
    """(product id, combination id or 0) -> the SKU the shipped channel spec's ``skus`` rule
    gives it, worked out here from the sandbox's records (not with the engine's code): a unit's
    own reference, else its own EAN-13, else ``{product_reference}-{attributes}`` (a
    combination) / ``{reference}-{product_id}`` (a product), else ``ps{store}-{pid}[-{cid}]``.
    "Own" means its product and its siblings do not carry it too."""
    st = sandbox.store
    values = {
        int(vid): _slug(str(v["name"][1] if isinstance(v["name"], dict) else v["name"]))
        for vid, v in st.tables["product_option_values"].items()
    }
    taken: set[str] = set()
    out: dict[tuple[int, int], str] = {}

    def first(*candidates: str) -> str:
        for c in candidates:
            if c and len(c) <= 64 and c not in taken:
                taken.add(c)
                return c
        raise AssertionError("no candidate")

    for pid in sorted(st.tables["products"]):
        p = st.tables["products"][pid]
        pref = str(p.get("reference") or "").strip()
        pean = str(p.get("ean13") or "").strip()
        out[(pid, 0)] = first(pref, pean, f"{pref}-{pid}" if pref else "", f"ps{store_id}-{pid}")
        combos = sorted(
            (c for c in st.tables["combinations"].values() if int(c["id_product"]) == pid),
            key=lambda c: int(c["id"]),
        )
        refs = [str(c.get("reference") or "").strip() for c in combos]
        eans = [str(c.get("ean13") or "").strip() for c in combos]
        for c, ref, ean in zip(combos, refs, eans, strict=True):
            cid = int(c["id"])
            own_ref = ref if ref and ref != pref and refs.count(ref) == 1 else ""
            own_ean = ean if ean and ean != pean and eans.count(ean) == 1 else ""
            attrs = "-".join(
                values[int(v["id"])]
                for v in (c.get("associations") or {}).get("product_option_values", [])
                if values.get(int(v["id"]))
            )
            out[(pid, cid)] = first(
                own_ref,
                own_ean,
                f"{pref}-{attrs}" if pref and attrs else "",
                f"ps{store_id}-{pid}-{cid}",
            )
    return out


def expected_catalog(sandbox: SandboxServer) -> dict[str, tuple[str | None, str, int]]:
    """SKU -> (parent SKU, price, store quantity) straight from the sandbox's records (SKUs
    as the channel spec's rule names the units: ``expected_skus``)."""
    st = sandbox.store
    skus = expected_skus(sandbox)
    out: dict[str, tuple[str | None, str, int]] = {}
    for pid, p in st.tables["products"].items():
        price = float(p["price"])
        combos = [c for c in st.tables["combinations"].values() if int(c["id_product"]) == pid]
        out[skus[(pid, 0)]] = (None, f"{price:.2f}", 0 if combos else st.stock_of(pid))
        for c in combos:
            out[skus[(pid, int(c["id"]))]] = (
                skus[(pid, 0)],
                f"{price + float(c['price']):.2f}",
                st.stock_of(pid, int(c["id"])),
            )
    return out


def expected_orders(sandbox: SandboxServer, now: datetime, days: int = 90) -> set[str]:
    cutoff = (now - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
    return {
        str(oid)
        for oid, o in sandbox.store.tables["orders"].items()
        if o["date_add"] >= cutoff and int(o["current_state"]) in IMPORTED_STATE_IDS
    }


def dump(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """The database content that matters, by natural keys (no surrogate ids, no clocks)."""
    with sessions() as s:
        sku_of = dict(s.execute(select(ProductRow.id, ProductRow.sku)).all())
        brand = dict(s.execute(select(BrandRow.id, BrandRow.name)).all())
        cat = dict(s.execute(select(CategoryRow.id, CategoryRow.name)).all())
        ref_of = dict(s.execute(select(OrderRow.id, OrderRow.external_id)).all())
        products = sorted(
            (
                p.sku,
                p.name,
                sku_of.get(p.parent_id) if p.parent_id else None,
                str(p.price),
                p.active,
                p.deleted,
                p.image_url,
                brand.get(p.brand_id) if p.brand_id else None,
                tuple(sorted(cat[c] for c in p.category_ids)),
                len(p.attribute_value_ids),
                repr(sorted(p.store_ids.items())),
            )
            for p in s.scalars(select(ProductRow))
        )
        bindings = sorted((b.kind, b.external_id) for b in s.scalars(select(BindingRow)))
        inventory = sorted((i.sku, i.on_hand, i.reserved) for i in s.scalars(select(InventoryRow)))
        orders = sorted(
            (
                o.external_id,
                o.reference,
                o.state,
                o.channel_state_id,
                o.needs_attention,
                str(o.total_paid),
                tuple((li.sku, li.quantity, li.reserved) for li in o.lines),
            )
            for o in s.scalars(select(OrderRow))
        )
        audit = sorted(
            (ref_of[a.order_id], a.trigger, a.from_state, a.to_state, a.applied, a.source)
            for a in s.scalars(select(AuditRow))
        )
        events = sorted(e.idempotency_key for e in s.scalars(select(InboundEventRow)))
        cursors = sorted(
            (c.stream, c.value)
            for c in s.scalars(select(SyncCursorRow))
            if c.stream in ("catalog.full", "orders.new")
        )
    return {
        "products": products,
        "bindings": bindings,
        "inventory": inventory,
        "orders": orders,
        "audit": audit,
        "events": events,
        "cursors": cursors,
    }
