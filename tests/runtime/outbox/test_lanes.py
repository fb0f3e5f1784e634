"""Lanes: rows of one order, or of one coalescing key (one SKU in one store), are held by one
dispatcher at a time, and the database enforces it.

- two sessions on PostgreSQL: while one holds an uncommitted lease on a lane, the other
  leases nothing of that lane (the old "live lane" check saw committed leases only);
- two real dispatcher processes on PostgreSQL against a store with latency, a backlog of
  orders each with two status pushes: no order ever gets a store state posted twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import inventory, service
from engine.runtime.db.repository import SqlOutboxRepository
from engine.runtime.db.tables import OrderLineRow, OrderRow, OutboxRow
from engine.runtime.specs import Bundle, load_bundle
from sandbox.server import start_sandbox
from tests.runtime.db.support import opened

from .support import import_orders, seed_catalogue, seed_store

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def pg(pg_server_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    from tests.conftest import fresh_pg_database

    with opened(fresh_pg_database(pg_server_url)) as pair:
        yield pair


def _order(sessions: sessionmaker[Session], ref: str) -> int:
    with sessions.begin() as s:
        row = OrderRow(reference=ref, state="New", ordered_at=T0)
        row.lines.append(OrderLineRow(sku="SKU-1", quantity=1))
        s.add(row)
        s.flush()
        return row.id


def _two_leases(sessions: sessionmaker[Session], first_limit: int) -> tuple[list[int], list[int]]:
    """Session a leases ``first_limit`` rows and keeps its transaction open while session b
    leases; both commit. Returns the ids each got."""
    a, b = sessions(), sessions()
    try:
        a.begin()
        b.begin()
        got_a = [r.id for r in SqlOutboxRepository(a).lease(first_limit, now=T0, owner="a")]
        got_b = [r.id for r in SqlOutboxRepository(b).lease(10, now=T0, owner="b")]
        a.commit()
        b.commit()
    finally:
        a.close()
        b.close()
    return got_a, got_b


@pytest.mark.postgres
def test_an_uncommitted_lease_holds_its_order_lane(
    pg: tuple[Engine, sessionmaker[Session]],
) -> None:
    _, sessions = pg
    x, y = _order(sessions, "X"), _order(sessions, "Y")
    with sessions.begin() as s:
        out = SqlOutboxRepository(s)
        ids = [
            out.enqueue("push_status", {}, at=T0, order_id=x),
            out.enqueue("push_status", {}, at=T0, order_id=x),
            out.enqueue("push_status", {}, at=T0, order_id=y),
        ]
    got_a, got_b = _two_leases(sessions, 1)
    # a holds x's first row; x's second row must wait for a (in id order), y is free
    assert got_a == [ids[0]]
    assert got_b == [ids[2]]
    # once a's lease is committed, x is still busy until a settles
    with sessions.begin() as s:
        assert SqlOutboxRepository(s).lease(10, now=T0, owner="c") == []
        assert SqlOutboxRepository(s).mark_done(ids[0], at=T0, owner="a")
    with sessions.begin() as s:
        assert [r.id for r in SqlOutboxRepository(s).lease(10, now=T0, owner="c")] == [ids[1]]


@pytest.mark.postgres
def test_an_uncommitted_lease_holds_its_sku_lane(
    pg: tuple[Engine, sessionmaker[Session]],
) -> None:
    """An expired lease of a stock push (value 5) and its newer pending twin (value 9): one
    dispatcher retakes the old row; another must not push 9 meanwhile (5 could land last)."""
    _, sessions = pg
    key = "stock:1:SKU-1"
    with sessions.begin() as s:
        out = SqlOutboxRepository(s)
        old = out.enqueue(
            "push_stock", {"quantity": 5}, at=T0 - timedelta(minutes=9), dedup_key=key
        )
        assert len(out.lease(1, now=T0 - timedelta(minutes=5), owner="gone")) == 1
        new = SqlOutboxRepository(s).enqueue("push_stock", {"quantity": 9}, at=T0, dedup_key=key)
    assert new != old
    got_a, got_b = _two_leases(sessions, 1)
    assert got_a == [old]
    assert got_b == []
    with sessions() as s:
        states = {int(i): str(st) for i, st in s.execute(select(OutboxRow.id, OutboxRow.state))}
    assert states == {old: "leased", new: "pending"}


@pytest.mark.postgres
def test_a_row_a_writer_holds_is_skipped_with_the_rest_of_its_lane(
    pg: tuple[Engine, sessionmaker[Session]],
) -> None:
    """A writer (an enqueue rewriting a pending row) holds the oldest row of order x: the
    lease neither waits for it (a wait could deadlock) nor takes x's younger row before it."""
    _, sessions = pg
    x, y = _order(sessions, "X"), _order(sessions, "Y")
    with sessions.begin() as s:
        out = SqlOutboxRepository(s)
        ids = [out.enqueue("push_status", {}, at=T0, order_id=o) for o in (x, x, y)]
    writer, a = sessions(), sessions()
    try:
        writer.begin()
        writer.execute(select(OutboxRow.id).where(OutboxRow.id == ids[0]).with_for_update())
        a.begin()
        a.execute(text("SET LOCAL lock_timeout = '3s'"))
        got = [r.id for r in SqlOutboxRepository(a).lease(10, now=T0, owner="a")]
        a.commit()
        writer.commit()
    finally:
        writer.close()
        a.close()
    assert got == [ids[2]]
    with sessions.begin() as s:
        assert [r.id for r in SqlOutboxRepository(s).lease(10, now=T0, owner="b")] == ids[:2]


def test_one_lease_takes_a_lane_whole_and_in_order_on_sqlite(tmp_path: Path) -> None:
    with opened(f"sqlite:///{tmp_path / 'o.db'}") as (_, sessions):
        x = _order(sessions, "X")
        with sessions.begin() as s:
            out = SqlOutboxRepository(s)
            first = out.enqueue("push_status", {}, at=T0, order_id=x)
            second = out.enqueue("push_status", {}, at=T0, order_id=x)
        with sessions.begin() as s:
            assert [r.id for r in SqlOutboxRepository(s).lease(1, now=T0, owner="a")] == [first]
        with sessions.begin() as s:
            assert SqlOutboxRepository(s).lease(10, now=T0, owner="b") == []
            SqlOutboxRepository(s).mark_done(first, at=T0, owner="a")
        with sessions.begin() as s:
            assert [r.id for r in SqlOutboxRepository(s).lease(10, now=T0, owner="b")] == [second]


# --------------------------------------------------------------------------- two processes

ROUNDS = int(os.environ.get("OMSFLOW_RACE_ROUNDS", "20"))
ORDERS_PER_ROUND = 8
BATCH = 3
"""Odd, so the batches the two processes lease at one moment split orders' two rows."""


def _spawn(url: str, owner: str, tmp: Path) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OMSFLOW_") or k == "OMSFLOW_SECRET_KEY"  # the stores' seal
    }
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.runtime.outbox.dispatch_proc", url, owner, str(BATCH)],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def _open_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.state.in_(("pending", "leased")))
            )
            or 0
        )


def _fire(sessions: sessionmaker[Session], bundle: Bundle, order_id: int, trigger: str) -> None:
    res = service.apply_inbound(
        sessions,
        bundle,
        trigger=trigger,
        source="user",
        idempotency_key=f"race:{order_id}:{trigger}",
        at=datetime.now(UTC),
        order_id=order_id,
    )
    assert res.applied, res


@pytest.mark.postgres
@pytest.mark.slow
def test_two_dispatcher_processes_never_post_an_order_state_twice(
    pg: tuple[Engine, sessionmaker[Session]], bundle: Bundle, tmp_path: Path
) -> None:
    """Each round: both processes are stopped (SIGSTOP) while a backlog of orders is
    released and made ready to ship (two status pushes each, both showing Shipped by the
    time they are leased), then continued together (SIGCONT) and the backlog drained. A
    store state posted twice to one order is a double delivery across processes."""
    engine, sessions = pg
    url = engine.url.render_as_string(hide_password=False)
    with start_sandbox(
        products=12, orders=ORDERS_PER_ROUND * ROUNDS * 12, seed=11, latency_ms=25
    ) as shop:
        store_id = seed_store(sessions, shop)
        skus = seed_catalogue(sessions, shop, store_id)
        shipped = shop.store.state_id("Shipped")
        procs = [_spawn(url, owner, tmp_path) for owner in ("a", "b")]
        doubled: list[tuple[int, list[int]]] = []
        not_shipped: list[int] = []
        bad_rounds: set[int] = set()
        rounds_run = 0
        try:
            for n in range(ROUNDS):
                for p in procs:
                    p.send_signal(signal.SIGSTOP)
                before: dict[int, int] = {}
                pairs = import_orders(
                    sessions,
                    bundle,
                    shop,
                    store_id,
                    count=ORDERS_PER_ROUND,
                    offset=n * ORDERS_PER_ROUND,
                    at=datetime.now(UTC),
                )
                assert len(pairs) == ORDERS_PER_ROUND
                for order_id, ext in pairs:
                    before[ext] = len(shop.store.histories_of(ext))
                    _fire(sessions, bundle, order_id, "release")
                    _fire(sessions, bundle, order_id, "ready_to_ship")
                for p in procs:
                    p.send_signal(signal.SIGCONT)
                deadline = time.monotonic() + 60
                while _open_rows(sessions) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert _open_rows(sessions) == 0, f"round {n}: backlog not drained"
                rounds_run += 1
                for _, ext in pairs:
                    states = [
                        int(h["id_order_state"])
                        for h in shop.store.histories_of(ext)[before[ext] :]
                    ]
                    if len(states) != len(set(states)):
                        doubled.append((ext, states))
                        bad_rounds.add(n)
                    order = shop.store.get("orders", ext)
                    if order is None or int(order["current_state"]) != shipped:
                        not_shipped.append(ext)
        finally:
            for p in procs:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
            outputs = [p.communicate(timeout=60) for p in procs]
        store_stock = {sku: shop.store.stock_of(pid, cid) for sku, (pid, cid) in skus.items()}
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-2000:]
    print(
        f"race: {rounds_run} rounds x {ORDERS_PER_ROUND} orders: {len(doubled)} orders with a "
        f"state posted twice, in {len(bad_rounds)} rounds"
    )
    assert doubled == [], f"{len(doubled)} orders got a state twice: {doubled[:5]}"
    assert not_shipped == []
    with sessions() as s:
        dead = [
            f"#{r.id} {r.kind}: {r.last_error}"
            for r in s.scalars(select(OutboxRow).where(OutboxRow.state == "dead"))
        ]
        assert dead == [], dead[:3]
        assert set(s.scalars(select(OrderRow.state))) == {"Ready_to_Ship"}
        # the stock pushes of one SKU (one lane each) ended on the OMS's value
        pushed = set(
            s.scalars(
                select(OutboxRow.payload["sku"].as_string()).where(OutboxRow.kind == "push_stock")
            )
        )
        levels = inventory.levels(s, sorted(pushed))
    assert pushed
    assert {k: store_stock[k] for k in pushed} == {k: levels[k].pushable for k in pushed}
