"""Catalogue sync over real HTTP to the sandbox, on SQLite and PostgreSQL: exactly the
store's products and variations, idempotent re-runs, store-side edits through the delta,
deletions and deactivations, first-sight stock only."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.channels.prestashop.adapter import STOCK_FIELDS
from engine.runtime.db.tables import InventoryRow, ProductRow, SyncRunRow
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.sync import sync_catalog
from sandbox.server import SandboxServer, start_sandbox

from .support import connected, dump, expected_catalog, small_adapter


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=60, orders=0, seed=7) as server:
        yield server


def _catalog(sessions: sessionmaker[Session]) -> dict[str, tuple[str | None, str, int | None]]:
    with sessions() as s:
        parent = {p.id: p.sku for p in s.scalars(select(ProductRow))}
        stock = {i.sku: i.on_hand for i in s.scalars(select(InventoryRow))}
        return {
            p.sku: (
                parent.get(p.parent_id) if p.parent_id else None,
                f"{p.price:.2f}",
                stock.get(p.sku),
            )
            for p in s.scalars(select(ProductRow).where(ProductRow.deleted.is_(False)))
        }


@pytest.mark.slow
def test_full_sync_imports_exactly_the_store_and_a_rerun_changes_nothing(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle)
        first = sync_catalog(sessions, bundle, "main", adapter=adapter)
        expected = expected_catalog(sandbox)
        got = _catalog(sessions)
        assert set(got) == set(expected)
        for sku, (parent, price, qty) in expected.items():
            assert got[sku][:2] == (parent, price), sku
            # stock lives on simple products and combinations; parents with variations hold none
            assert got[sku][2] == (None if any(v[0] == sku for v in expected.values()) else qty)
        n_combos = len(sandbox.store.tables["combinations"])
        assert first.counts["products_created"] == len(sandbox.store.tables["products"])
        assert first.counts["combinations_created"] == n_combos
        with sessions() as s:
            combo = s.scalars(select(ProductRow).where(ProductRow.parent_id.is_not(None))).first()
            assert combo is not None
            ids = combo.store_ids[str(1)]
            assert set(ids) == {
                "product_id",
                "combination_id",
                "stock_available_id",
                "stock_token",
                "sku_source",
                "reference",
            }
            # the sandbox's combinations carry their own references: that names them
            assert ids["sku_source"] == "reference"
            assert ids["reference"] == combo.sku
            assert ids["combination_id"]
            assert ids["stock_available_id"]
            # the stock row's full body, cached for push_stock's one-request PUT
            row = sandbox.store.get("stock_availables", ids["stock_available_id"])
            assert row is not None
            assert ids["stock_token"] == {
                name: (row[name] if name == "location" else int(row[name]))
                for name in STOCK_FIELDS
            }
            assert combo.image_url
            assert "/images/products/" in combo.image_url
            assert combo.brand_id is not None
            assert combo.category_ids
        before = dump(sessions)
        again = sync_catalog(sessions, bundle, "main", full=True, adapter=adapter)
        delta = sync_catalog(sessions, bundle, "main", adapter=adapter)
        assert dump(sessions) == before
        for report in (again, delta):
            assert not {k for k in report.counts if k.endswith(("_created", "_updated"))}
        assert delta.mode == "delta"
        with sessions() as s:
            runs = s.scalars(select(SyncRunRow).order_by(SyncRunRow.id)).all()
            assert [r.status for r in runs] == ["ok", "ok", "ok"]
            assert runs[0].counts["products_created"] == first.counts["products_created"]


@pytest.mark.slow
def test_store_edits_deactivation_and_deletion_reach_the_oms(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        products = sandbox.store.tables["products"]
        with_combos = next(
            pid
            for pid in products
            if any(
                int(c["id_product"]) == pid for c in sandbox.store.tables["combinations"].values()
            )
        )
        simple = next(
            pid
            for pid in products
            if pid != with_combos
            and not any(
                int(c["id_product"]) == pid for c in sandbox.store.tables["combinations"].values()
            )
        )
        other = next(p for p in products if p not in (with_combos, simple))
        adapter.set_price(simple, Decimal("77.70"))  # PUT over HTTP: a store-side edit
        adapter.set_active(other, False)
        # the OMS is the stock master after first sight: a store quantity change is ignored
        sku = products[simple]["reference"]
        with sessions.begin() as s:
            s.get(InventoryRow, sku).on_hand = 5  # type: ignore[union-attr]
        adapter.set_stock(simple, None, 123)

        delta = sync_catalog(sessions, bundle, "main", adapter=adapter)
        assert delta.mode == "delta"
        with sessions() as s:
            row = s.scalars(select(ProductRow).where(ProductRow.sku == sku)).one()
            assert row.price == Decimal("77.70")
            off = s.scalars(
                select(ProductRow).where(ProductRow.sku == products[other]["reference"])
            ).one()
            assert off.active is False
            assert s.get(InventoryRow, sku).on_hand == 5  # type: ignore[union-attr]

        parent_sku = products[with_combos]["reference"]
        adapter.delete_product(with_combos)
        full = sync_catalog(sessions, bundle, "main", full=True, adapter=adapter)
        assert full.counts["products_deleted"] == 1
        with sessions() as s:
            parent = s.scalars(select(ProductRow).where(ProductRow.sku == parent_sku)).one()
            assert parent.deleted
            kids = s.scalars(select(ProductRow).where(ProductRow.parent_id == parent.id)).all()
            assert kids
            assert all(k.deleted for k in kids)
            assert s.scalar(
                select(func.count()).select_from(ProductRow).where(ProductRow.deleted.is_(True))
            ) == 1 + len(kids)
