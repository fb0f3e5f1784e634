"""Seed an OMS database from a sandbox store's own objects (until catalogue/order sync
is used here): the store row, products with their store ids, stock, a few orders."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import service
from engine.runtime.db.stores import save_store
from engine.runtime.db.tables import ProductRow
from engine.runtime.inventory import set_on_hand
from engine.runtime.outbox import AdapterPool, Dispatcher
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.specs import Bundle
from sandbox.server import SandboxServer

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PS_NAMES = ("Payment accepted", "Processing in progress", "Shipped", "Delivered", "Canceled")


def seed_store(sessions: sessionmaker[Session], server: SandboxServer) -> int:
    state_ids = {name: server.store.state_id(name) for name in PS_NAMES}
    with sessions.begin() as s:
        return save_store(s, "main", server.url, server.key, state_ids).id


def seed_catalogue(
    sessions: sessionmaker[Session], server: SandboxServer, store_id: int
) -> dict[str, tuple[int, int]]:
    """Every sandbox product/combination as a ProductRow bound to the store, with its
    stock as on hand (not pushed). Returns SKU -> (product id, combination id)."""
    from tests.runtime.sync.support import expected_skus

    store = server.store
    named = expected_skus(server, store_id)  # as the channel's SKU rule names the units
    skus: dict[str, tuple[int, int]] = {}
    with sessions.begin() as s:
        for p in list(store.records("products")):
            pid = int(p["id"])
            ref = named[(pid, 0)]
            name = (
                next(iter(p["name"].values())) if isinstance(p["name"], dict) else str(p["name"])
            )
            parent = ProductRow(
                sku=ref,
                name=name,
                store_ids={str(store_id): {"product_id": pid, "combination_id": None}},
                price=p.get("price"),
            )
            s.add(parent)
            s.flush()
            combos = store.combinations_of(pid)
            if not combos:
                skus[ref] = (pid, 0)
                set_on_hand(s, ref, store.stock_of(pid), at=T0, push=False)
            for cid in combos:
                c = store.get("combinations", cid)
                assert c is not None
                cref = named[(pid, cid)]
                s.add(
                    ProductRow(
                        sku=cref,
                        name=f"{name} {cid}",
                        parent_id=parent.id,
                        store_ids={str(store_id): {"product_id": pid, "combination_id": cid}},
                    )
                )
                skus[cref] = (pid, cid)
                set_on_hand(s, cref, store.stock_of(pid, cid), at=T0, push=False)
    return skus


def import_orders(
    sessions: sessionmaker[Session],
    bundle: Bundle,
    server: SandboxServer,
    store_id: int,
    *,
    count: int,
    state: str = "Payment accepted",
    offset: int = 0,
    at: datetime = T0,
) -> list[tuple[int, int]]:
    """Import ``count`` sandbox orders in ``state`` (stock topped up so they are New),
    skipping the first ``offset`` of them. Returns (OMS order id, store order id) pairs."""
    from tests.runtime.sync.support import expected_skus

    named = expected_skus(server, store_id)  # lines name units by the store's ids

    def sku(row: dict[str, Any]) -> str:
        return named[(int(row["product_id"]), int(row["product_attribute_id"]))]

    wanted = server.store.state_id(state)
    picked = [o for o in server.store.records("orders") if int(o["current_state"]) == wanted]
    out = []
    for o in picked[offset : offset + count]:
        rows = o["associations"]["order_rows"]
        with sessions.begin() as s:
            for r in rows:
                set_on_hand(s, sku(r), 1000, at=at, push=False)
        res = service.create_order(
            sessions,
            bundle,
            NewOrder(
                reference=str(o["reference"]),
                ordered_at=at,
                store_id=store_id,
                external_id=str(o["id"]),
                lines=[NewLine(sku(r), int(r["product_quantity"])) for r in rows],
                customer_name="Ada Lovelace",
                shipping_address={"address1": "1 Loop St", "city": "Localhost"},
            ),
            idempotency_key=f"import:{o['id']}",
            at=at,
        )
        assert res.applied, res
        assert res.order_id is not None
        out.append((res.order_id, int(o["id"])))
    return out


@contextmanager
def dispatcher(
    sessions: sessionmaker[Session],
    bundle: Bundle,
    tmp: Path,
    *,
    owner: str = "d1",
    environ: dict[str, str] | None = None,
    **kw: Any,
) -> Iterator[Dispatcher]:
    client_kw = {"rate_limit": None, "timeout": 2.0, **kw.pop("client_kw", {})}
    with (
        AdapterPool(sessions, bundle.channel, **client_kw) as pool,
        Dispatcher(
            sessions,
            bundle,
            owner=owner,
            adapters=pool,
            label_dir=tmp / "labels",
            environ=environ or {},
            **kw,
        ) as d,
    ):
        yield d


def put_count(server: SandboxServer, resource: str = "stock_availables") -> int:
    return int(server.state.counts.get((resource, "PUT"), 0))
