"""push_stock over real HTTP to the sandbox after a real catalogue sync: one PUT per change
and no read, from the stock row cached with the binding; the store's row keeps every other
field (a PUT nulls absent ones); a value back at the cached quantity is read first and not
written when the store shows it; a missing, gone or refused cached row falls back to
read-then-PUT and refreshes the cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import service
from engine.runtime.db.tables import OutboxRow, ProductRow
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.sync import sync_catalog
from sandbox.server import SandboxServer, start_sandbox
from tests.runtime.db.support import opened

from .support import T0, dispatcher, seed_store

OTHER_FIELDS = (
    "id_product",
    "id_product_attribute",
    "id_shop",
    "id_shop_group",
    "depends_on_stock",
    "out_of_stock",
    "location",
)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    with opened(db_url) as pair:
        yield pair


@pytest.fixture
def shop() -> Iterator[SandboxServer]:
    with start_sandbox(products=12, orders=0, seed=5) as server:
        yield server


def _count(shop: SandboxServer, method: str) -> int:
    return int(shop.state.counts.get(("stock_availables", method), 0))


def _synced(
    sessions: sessionmaker[Session], bundle: Bundle, shop: SandboxServer
) -> dict[str, ProductRow]:
    """Sync the catalogue; SKU -> row of every stock-holding SKU (simple or combination)."""
    seed_store(sessions, shop)
    sync_catalog(sessions, bundle, "main")
    with sessions() as s:
        rows = list(s.scalars(select(ProductRow)))
        parents = {r.parent_id for r in rows if r.parent_id is not None}
        return {r.sku: r for r in rows if r.id not in parents}


def _stock_row(shop: SandboxServer, row: ProductRow) -> dict[str, Any]:
    ids = next(iter(row.store_ids.values()))
    rec = shop.store.stock_row(ids["product_id"], ids["combination_id"] or 0)
    assert rec is not None
    return dict(rec)


def _cached(sessions: sessionmaker[Session], sku: str) -> dict[str, Any] | None:
    with sessions() as s:
        row = s.scalars(select(ProductRow).where(ProductRow.sku == sku)).one()
        stock: dict[str, Any] | None = next(iter(row.store_ids.values())).get("stock_token")
        return stock


@pytest.mark.slow
def test_each_change_is_one_put_and_the_row_keeps_its_other_fields(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    # store-side settings the full-object PUT must carry back unchanged
    for i, rec in enumerate(shop.store.records("stock_availables")):
        rec["out_of_stock"] = str(i % 3)
        rec["location"] = f"aisle {i}"
    rows = _synced(sessions, bundle, shop)
    before = {sku: _stock_row(shop, r) for sku, r in rows.items()}
    for i, sku in enumerate(sorted(rows)):
        service.set_stock(sessions, bundle, sku, 500 + i, at=T0)
    gets, puts = _count(shop, "GET"), _count(shop, "PUT")

    with dispatcher(sessions, bundle, tmp_path) as d:
        stats = d.run_once()

    assert (stats.delivered, stats.dead) == (len(rows), 0)
    assert _count(shop, "PUT") - puts == len(rows)
    assert _count(shop, "GET") == gets  # no read at all
    for i, sku in enumerate(sorted(rows)):
        after = _stock_row(shop, rows[sku])
        assert int(after["quantity"]) == 500 + i
        assert {f: after[f] for f in OTHER_FIELDS} == {f: before[sku][f] for f in OTHER_FIELDS}
        assert after["id_shop"] != "0"


@pytest.mark.slow
def test_a_value_back_at_the_cached_quantity_is_read_and_written_only_if_different(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    rows = _synced(sessions, bundle, shop)
    same, moved = sorted(rows)[:2]
    synced_same = int(_stock_row(shop, rows[same])["quantity"])
    synced_moved = int(_stock_row(shop, rows[moved])["quantity"])
    # a burst that ends where it began; and a SKU the store changed since the sync
    service.set_stock(sessions, bundle, same, synced_same + 5, at=T0)
    service.set_stock(sessions, bundle, same, synced_same, at=T0)
    shop.store.stock_row(*_ids(rows[moved]))["quantity"] = str(synced_moved + 9)  # type: ignore[index]
    service.set_stock(sessions, bundle, moved, synced_moved + 1, at=T0)
    service.set_stock(sessions, bundle, moved, synced_moved, at=T0)
    gets, puts = _count(shop, "GET"), _count(shop, "PUT")

    with dispatcher(sessions, bundle, tmp_path) as d:
        stats = d.run_once()

    assert (stats.delivered, stats.dead) == (2, 0)
    assert _count(shop, "GET") - gets == 2  # both verified
    assert _count(shop, "PUT") - puts == 1  # only the one the store differs on
    assert int(_stock_row(shop, rows[same])["quantity"]) == synced_same
    assert int(_stock_row(shop, rows[moved])["quantity"]) == synced_moved


def _ids(row: ProductRow) -> tuple[int, int]:
    ids = next(iter(row.store_ids.values()))
    return int(ids["product_id"]), int(ids["combination_id"] or 0)


@pytest.mark.slow
def test_without_a_cached_row_it_reads_once_then_puts_directly(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    rows = _synced(sessions, bundle, shop)
    sku = sorted(rows)[0]
    with sessions.begin() as s:  # a binding written by listing: ids only
        row = s.scalars(select(ProductRow).where(ProductRow.sku == sku)).one()
        row.store_ids = {
            k: {n: v for n, v in b.items() if n != "stock_token"} for k, b in row.store_ids.items()
        }
    before = _stock_row(shop, rows[sku])

    with dispatcher(sessions, bundle, tmp_path) as d:
        service.set_stock(sessions, bundle, sku, 71, at=T0)
        gets, puts = _count(shop, "GET"), _count(shop, "PUT")
        d.run_once()
        assert (_count(shop, "GET") - gets, _count(shop, "PUT") - puts) == (1, 1)
        cached = _cached(sessions, sku)
        assert cached is not None
        assert cached["id"] == int(before["id"])

        service.set_stock(sessions, bundle, sku, 72, at=T0)
        gets, puts = _count(shop, "GET"), _count(shop, "PUT")
        d.run_once()
        assert (_count(shop, "GET") - gets, _count(shop, "PUT") - puts) == (0, 1)

    after = _stock_row(shop, rows[sku])
    assert int(after["quantity"]) == 72
    assert {f: after[f] for f in OTHER_FIELDS} == {f: before[f] for f in OTHER_FIELDS}


@pytest.mark.slow
def test_a_gone_or_refused_cached_row_falls_back_to_reading_the_store(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    rows = _synced(sessions, bundle, shop)
    gone, refused = sorted(rows)[:2]
    with sessions.begin() as s:  # a cached row id the store no longer has
        row = s.scalars(select(ProductRow).where(ProductRow.sku == gone)).one()
        key, binding = next(iter(row.store_ids.items()))
        row.store_ids = {
            key: {**binding, "stock_token": {**binding["stock_token"], "id": 999_999}}
        }
    # the store switched this row to advanced stock management since the sync
    shop.store.stock_row(*_ids(rows[refused]))["depends_on_stock"] = "1"  # type: ignore[index]
    service.set_stock(sessions, bundle, gone, 33, at=T0)
    service.set_stock(sessions, bundle, refused, 34, at=T0)

    with dispatcher(sessions, bundle, tmp_path) as d:
        stats = d.run_once()

    assert (stats.delivered, stats.dead) == (1, 1)
    assert int(_stock_row(shop, rows[gone])["quantity"]) == 33
    cached = _cached(sessions, gone)
    assert cached is not None
    assert cached["id"] == int(_stock_row(shop, rows[gone])["id"])
    with sessions() as s:
        dead = s.scalars(select(OutboxRow).where(OutboxRow.state == "dead")).one()
    assert "depends on" in (dead.last_error or "")
    assert int(_stock_row(shop, rows[refused])["quantity"]) != 34


@pytest.mark.slow
def test_small_batches_in_flight_together_deliver_every_change_once(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    rows = _synced(sessions, bundle, shop)
    skus = sorted(rows)
    for i, sku in enumerate(skus):
        service.set_stock(sessions, bundle, sku, 900 + i, at=T0)
    # a second value for a few SKUs while the first is pending: coalesced, still one row
    for sku in skus[:3]:
        service.set_stock(sessions, bundle, sku, 7, at=T0)
    puts = _count(shop, "PUT")

    with dispatcher(sessions, bundle, tmp_path, batch=2, pipeline=3) as d:
        stats = d.run_once()

    assert (stats.delivered, stats.dead, stats.lost) == (len(skus), 0, 0)
    assert stats.batches == -(-len(skus) // 2)
    assert _count(shop, "PUT") - puts == len(skus)
    for i, sku in enumerate(skus):
        want = 7 if i < 3 else 900 + i
        assert int(_stock_row(shop, rows[sku])["quantity"]) == want
    with sessions() as s:
        assert {r.state for r in s.scalars(select(OutboxRow))} == {"done"}
