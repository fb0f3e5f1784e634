"""Order sync over real HTTP to the sandbox, on SQLite and PostgreSQL: exactly the orders of
the window in the imported statuses, through the right import triggers; store status changes
become lifecycle triggers (Delivered, Canceled), a cancellation after Packed is refused,
recorded and flagged; re-runs change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import service
from engine.runtime.db.tables import AuditRow, InventoryRow, OrderRow
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.sync import sync_catalog, sync_orders
from sandbox.server import SandboxServer, start_sandbox

from .support import connected, dump, expected_orders, small_adapter

NOW = datetime.now(UTC).replace(microsecond=0)
IMPORT_STATE = {
    2: {"New", "Partial"},
    3: {"RFP"},
    4: {"In_transit"},
    5: {"Complete"},
    6: {"Canceled"},
}


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=40, orders=80, seed=11, now=NOW) as server:
        yield server


def _audits(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditRow)) or 0)


@pytest.mark.slow
def test_backfill_imports_exactly_the_window_and_reruns_change_nothing(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle, page_size=10)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        report = sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        expected = expected_orders(sandbox, NOW)
        with sessions() as s:
            rows = s.scalars(select(OrderRow)).all()
            assert {r.external_id for r in rows} == expected
            for r in rows:
                store_state = int(
                    sandbox.store.tables["orders"][int(r.external_id or 0)]["current_state"]
                )
                assert r.state in IMPORT_STATE[store_state], (r.external_id, r.state)
                assert r.lines
                assert r.channel_state_id == store_state
            reserved = s.scalar(select(func.sum(InventoryRow.reserved))) or 0
            held = sum(li.reserved for r in rows for li in r.lines)
            assert reserved == held
            assert all(
                li.reserved == li.quantity for r in rows if r.state == "New" for li in r.lines
            )
            assert any(r.state == "New" for r in rows)
        assert report.counts["orders_created"] == len(expected)
        before, audits = dump(sessions), _audits(sessions)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        again = sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        assert "orders_created" not in again.counts
        assert dump(sessions) == before
        assert _audits(sessions) == audits


@pytest.mark.slow
def test_store_status_changes_fire_their_triggers_once(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle, page_size=10)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        with sessions() as s:
            by_state: dict[str, list[str]] = {}
            for r in s.scalars(select(OrderRow).order_by(OrderRow.id)):
                by_state.setdefault(r.state, []).append(r.external_id or "")
        shipped = by_state["In_transit"][0]
        news = by_state["New"]
        assert len(news) >= 2, "the seed must give two New orders"
        to_cancel, to_pack = news[0], news[1]
        for trigger in ("release", "pack"):
            result = service.apply_inbound(
                sessions,
                bundle,
                trigger=trigger,
                source="user",
                idempotency_key=f"user:{trigger}:{to_pack}",
                at=datetime.now(UTC),
                reference=_ref(sessions, to_pack),
            )
            assert result.applied
        delivered, canceled = 5, 6
        adapter.set_order_state(int(shipped), delivered)  # POST order_histories over HTTP
        adapter.set_order_state(int(to_cancel), canceled)
        adapter.set_order_state(int(to_pack), canceled)
        report = sync_orders(sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC))
        assert report.counts["changes_applied"] == 2
        assert report.counts["changes_refused"] == 1
        with sessions() as s:
            state = {r.external_id: r for r in s.scalars(select(OrderRow))}
            assert state[shipped].state == "Complete"
            assert state[to_cancel].state in {"Cancel_in_Process", "Canceled"}
            packed = state[to_pack]
            assert packed.state == "Packed"
            assert packed.needs_attention
            assert packed.attention_reason
            refused = s.scalars(
                select(AuditRow).where(AuditRow.order_id == packed.id, AuditRow.applied.is_(False))
            ).all()
            assert [(a.trigger, a.source) for a in refused] == [("buyer_cancel", "channel")]
        audits = _audits(sessions)
        again = sync_orders(sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC))
        assert not {k for k in again.counts if k.startswith("changes_")}
        assert _audits(sessions) == audits


def _ref(sessions: sessionmaker[Session], external_id: str) -> str:
    with sessions() as s:
        return str(
            s.scalars(select(OrderRow.reference).where(OrderRow.external_id == external_id)).one()
        )


@pytest.mark.slow
def test_each_stream_runs_alone_on_its_own_schedule(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    # The daemon's new_orders job (every 5 min) must not apply status changes early: those
    # belong to the status_changes job (every 30 min), as the channel spec schedules them.
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle, page_size=10)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        with sessions() as s:
            shipped = s.scalars(
                select(OrderRow.external_id).where(OrderRow.state == "In_transit")
            ).first()
        assert shipped
        adapter.set_order_state(int(shipped), 5)  # Delivered, in the store
        new_only = sync_orders(
            sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC), streams=("new",)
        )
        assert not {k for k in new_only.counts if k.startswith("changes_")}
        with sessions() as s:
            state = s.scalar(select(OrderRow.state).where(OrderRow.external_id == shipped))
        assert state == "In_transit"
        changes_only = sync_orders(
            sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC), streams=("changes",)
        )
        assert changes_only.counts["changes_applied"] == 1
        with sessions() as s:
            state = s.scalar(select(OrderRow.state).where(OrderRow.external_id == shipped))
        assert state == "Complete"


@pytest.mark.slow
def test_the_first_backfill_adopts_open_orders_without_changing_the_stores_stock(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    # The store's quantities already exclude its open orders' units. Adopting those orders
    # reserves the units and puts them back on hand: every SKU's available quantity is still
    # what the store shows, and no stock push is queued to "correct" the store.
    from engine.runtime.db.tables import OutboxRow, ProductRow

    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle, page_size=10)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        with sessions() as s:
            stock = {r.sku: r for r in s.scalars(select(InventoryRow))}
            held = {sku for sku, r in stock.items() if r.reserved > 0}
            assert held, "the seed must give open orders that reserve stock"
            assert not s.scalars(select(OrderRow).where(OrderRow.state == "Partial")).all()
            for product in s.scalars(select(ProductRow).where(ProductRow.sku.in_(held))):
                ids = next(iter(product.store_ids.values()))
                in_store = sandbox.store.stock_of(
                    int(ids["product_id"]), int(ids.get("combination_id") or 0)
                )
                row = stock[product.sku]
                assert row.on_hand - row.reserved == in_store, product.sku
            pushes = s.scalars(select(OutboxRow).where(OutboxRow.kind == "push_stock")).all()
            assert pushes == []
