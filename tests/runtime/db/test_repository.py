"""Repositories on SQLite and PostgreSQL: bindings, optimistic locking, outbox lifecycle,
coalescing, and SKIP LOCKED leases across two sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import NotFound, StaleOrder
from engine.runtime.db.repository import (
    SqlBindingRepository,
    SqlOrderRepository,
    SqlOutboxRepository,
)
from engine.runtime.db.stores import save_store
from engine.runtime.db.tables import OrderLineRow, OrderRow, OutboxRow

from .support import opened

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    with opened(db_url) as pair:
        yield pair


def _order(session: Session, ref: str = "REF1") -> OrderRow:
    row = OrderRow(reference=ref, state="New", ordered_at=T0)
    row.lines.append(OrderLineRow(sku="SKU-1", quantity=2))
    session.add(row)
    session.flush()
    return row


def test_bindings_round_trip_and_rebind(db: tuple[Engine, sessionmaker[Session]]) -> None:
    _, sessions = db
    with sessions.begin() as s:
        store = save_store(s, "main", "http://127.0.0.1:1/", "K" * 32, {})
        b = SqlBindingRepository(s)
        b.bind(store.id, "product", "12", "SKU-1")
        b.bind(store.id, "product", "12", "SKU-1")  # idempotent
        assert b.to_internal(store.id, "product", "12") == "SKU-1"
        assert b.to_external(store.id, "product", "SKU-1") == "12"
        assert b.to_internal(store.id, "product", "13") is None
        b.bind(store.id, "product", "12", "SKU-2")
        assert b.to_internal(store.id, "product", "12") == "SKU-2"
        assert b.all(store.id, "product") == {"12": "SKU-2"}


def test_version_increments_and_stale_write_is_refused(
    db: tuple[Engine, sessionmaker[Session]],
) -> None:
    """The one rule's optimistic lock: an event bumps the version; an order written by
    someone else between the read and the write is ``StaleOrder`` (nothing written)."""
    from engine.runtime.apply import apply_inbound, apply_on
    from engine.runtime.apply.events import read_order
    from engine.runtime.db.statements import event_statements
    from engine.runtime.specs import load_bundle

    bundle = load_bundle()
    engine, sessions = db
    with sessions.begin() as s:
        oid = _order(s).id
    kw: dict[str, object] = {"source": "user", "at": T0, "order_id": oid}
    assert apply_inbound(sessions, bundle, trigger="release", idempotency_key="k1", **kw).applied  # type: ignore[arg-type]
    with engine.connect() as conn, pytest.raises(StaleOrder):  # noqa: PT012 - the write fails
        order = read_order(conn, event_statements(conn), order_id=oid)
        assert order is not None
        assert order.version == 2
        # another writer changes the order between our read and our write
        conn.execute(
            update(OrderRow).where(OrderRow.id == oid).values(version=OrderRow.version + 1)
        )
        apply_on(conn, bundle, trigger="pack", idempotency_key="k2", order=order, **kw)  # type: ignore[arg-type]
    with sessions() as s:
        assert s.get(OrderRow, oid).state == "RFP"  # type: ignore[union-attr]
        with pytest.raises(NotFound):
            SqlOrderRepository(s).by_reference("NOPE")
        assert SqlOrderRepository(s).by_reference("REF1").id == oid
        assert SqlOrderRepository(s).by_reference(f"#{oid}").id == oid


def test_outbox_enqueue_lease_fail_done_dead_retry(
    db: tuple[Engine, sessionmaker[Session]],
) -> None:
    _, sessions = db
    with sessions.begin() as s:
        oid = _order(s).id
        out = SqlOutboxRepository(s)
        ids = [
            out.enqueue(
                "push_status",
                {"state": "Ready_to_Ship", "x": 1},
                at=T0,
                order_id=oid,
                then_trigger="shipment_confirmed",
            ),
            out.enqueue("notify_wms", {"state": "Ready_to_Ship"}, at=T0, order_id=oid),
        ]
    with sessions.begin() as s:
        first = s.get(OutboxRow, ids[0])
        assert first is not None
        assert first.payload == {"state": "Ready_to_Ship", "x": 1}
        assert first.then_trigger == "shipment_confirmed"
        assert first.state == "pending"
        assert SqlOutboxRepository(s).lease(10, now=T0 - timedelta(seconds=1), owner="w") == []
        leased = SqlOutboxRepository(s).lease(10, now=T0, owner="w1", lease_seconds=30)
        assert [r.id for r in leased] == ids
        assert all(r.attempts == 1 for r in leased)
    with sessions.begin() as s:
        out = SqlOutboxRepository(s)
        # still leased: nobody else gets them before the lease expires
        assert out.lease(10, now=T0 + timedelta(seconds=10), owner="w2") == []
        assert out.mark_done(ids[0], at=T0, owner="w2") is False  # not w2's lease
        assert out.mark_done(ids[0], at=T0, owner="w1") is True
        assert out.mark_failed(
            ids[1], "timeout", at=T0, retry_at=T0 + timedelta(seconds=5), owner="w1"
        )
    with sessions.begin() as s:
        out = SqlOutboxRepository(s)
        assert out.lease(10, now=T0 + timedelta(seconds=4), owner="w1") == []
        again = out.lease(10, now=T0 + timedelta(seconds=5), owner="w1")
        assert [r.id for r in again] == [ids[1]]
        assert again[0].attempts == 2
        assert out.mark_dead(ids[1], "400 rejected", at=T0, owner="w1")
    with sessions.begin() as s:
        out = SqlOutboxRepository(s)
        assert out.lease(10, now=T0 + timedelta(days=1), owner="w1") == []
        assert out.retry(None, at=T0 + timedelta(days=1)) == 1
        with pytest.raises(NotFound):
            out.retry([999999], at=T0)
        back = s.get(OutboxRow, ids[1])
        assert back is not None
        assert (back.state, back.attempts, back.last_error) == ("pending", 0, "400 rejected")


def test_expired_lease_is_taken_over(db: tuple[Engine, sessionmaker[Session]]) -> None:
    _, sessions = db
    with sessions.begin() as s:
        eid = SqlOutboxRepository(s).enqueue("push_stock", {"quantity": 1}, at=T0)
        assert len(SqlOutboxRepository(s).lease(5, now=T0, owner="dead", lease_seconds=1)) == 1
    with sessions.begin() as s:
        taken = SqlOutboxRepository(s).lease(5, now=T0 + timedelta(seconds=2), owner="alive")
        assert [(r.id, r.lease_owner, r.attempts) for r in taken] == [(eid, "alive", 2)]
        assert SqlOutboxRepository(s).mark_done(eid, at=T0, owner="dead") is False


@pytest.mark.slow
def test_coalescing_keeps_one_pending_row_per_key(
    db: tuple[Engine, sessionmaker[Session]],
) -> None:
    _, sessions = db
    with sessions.begin() as s:
        out = SqlOutboxRepository(s)
        ids = {
            out.enqueue("push_stock", {"quantity": q}, at=T0, dedup_key="stock:1:A")
            for q in range(1000)
        }
        assert len(ids) == 1
        other = out.enqueue("push_stock", {"quantity": 5}, at=T0, dedup_key="stock:1:B")
        assert other not in ids
    with sessions.begin() as s:
        rows = list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))
        assert [(r.dedup_key, r.payload["quantity"]) for r in rows] == [
            ("stock:1:A", 999),
            ("stock:1:B", 5),
        ]
        # while A is being delivered, a new change makes a new pending row ...
        SqlOutboxRepository(s).lease(1, now=T0, owner="w")
        newer = SqlOutboxRepository(s).enqueue(
            "push_stock", {"quantity": 7}, at=T0, dedup_key="stock:1:A"
        )
        assert newer not in ids
    with sessions.begin() as s:
        # ... and a failed delivery of the old value is superseded, not retried.
        out = SqlOutboxRepository(s)
        (old_id,) = ids
        assert out.mark_failed(old_id, "timeout", at=T0, retry_at=T0, owner="w")
        old = s.get(OutboxRow, old_id)
        assert old is not None
        assert old.state == "done"
        assert old.last_error == f"superseded by outbox #{newer}"
        pending = s.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.state == "pending")
        )
        assert pending == 2


@pytest.mark.postgres
def test_two_sessions_never_lease_the_same_row(pg_server_url: str) -> None:
    from tests.conftest import fresh_pg_database

    with opened(fresh_pg_database(pg_server_url)) as (_engine, sessions):
        with sessions.begin() as s:
            out = SqlOutboxRepository(s)
            for i in range(10):
                out.enqueue("push_stock", {"i": i}, at=T0)
        a = sessions()
        b = sessions()
        try:
            a.begin()
            b.begin()
            got_a = [r.id for r in SqlOutboxRepository(a).lease(6, now=T0, owner="a")]
            # a holds row locks until commit; b must skip them, not wait, not double-lease
            got_b = [r.id for r in SqlOutboxRepository(b).lease(6, now=T0, owner="b")]
            assert len(got_a) == 6
            assert len(got_b) == 4
            assert not set(got_a) & set(got_b)
            a.commit()
            b.commit()
        finally:
            a.close()
            b.close()
        with sessions() as s:
            owners = dict(s.execute(select(OutboxRow.id, OutboxRow.lease_owner)).all())
            assert sorted(owners.values()) == ["a"] * 6 + ["b"] * 4
