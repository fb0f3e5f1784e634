"""Orders through the outbox: release and ready_to_ship push the store's status, the
follow-ups make the AWB, write the tracking number and tell a WMS; with the store failing
20 %, timing out 5 % and losing 5 % of writes after commit, every effect lands exactly once;
two dispatchers on PostgreSQL never deliver a row twice."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.runtime import service
from engine.runtime.db.tables import OrderRow, OutboxRow, ShipmentRow
from engine.runtime.pricing import set_price
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.wms.server import start_in_thread
from sandbox.server import SandboxServer, start_sandbox
from tests.runtime.db.support import opened

from .support import T0, dispatcher, import_orders, put_count, seed_catalogue, seed_store


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    with opened(db_url) as pair:
        yield pair


class WmsEndpoint:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []

    async def post(self, request: Request) -> JSONResponse:
        self.received.append(
            (request.headers.get("idempotency-key", ""), json.loads(await request.body()))
        )
        return JSONResponse({"ok": True})


@pytest.fixture
def wms() -> Iterator[tuple[str, WmsEndpoint]]:
    endpoint = WmsEndpoint()
    app = Starlette(routes=[Route("/shipping", endpoint.post, methods=["POST"])])
    server = start_in_thread(app, "127.0.0.1")
    try:
        yield server.url + "/shipping", endpoint
    finally:
        server.stop()


def _fire(sessions: sessionmaker[Session], bundle: Bundle, order_id: int, trigger: str) -> None:
    res = service.apply_inbound(
        sessions,
        bundle,
        trigger=trigger,
        source="user",
        idempotency_key=f"t:{order_id}:{trigger}",
        at=T0,
        order_id=order_id,
    )
    assert res.applied, res


def _run_story(
    sessions: sessionmaker[Session],
    bundle: Bundle,
    shop: SandboxServer,
    tmp: Path,
    environ: dict[str, str],
    *,
    orders: int,
    stock_skus: int,
) -> tuple[list[tuple[int, int]], dict[str, tuple[int, int]]]:
    store_id = seed_store(sessions, shop)
    skus = seed_catalogue(sessions, shop, store_id)
    pairs = import_orders(sessions, bundle, shop, store_id, count=orders)
    for order_id, _ in pairs:
        _fire(sessions, bundle, order_id, "release")
        _fire(sessions, bundle, order_id, "ready_to_ship")
    simple = [k for k, (_, c) in skus.items() if c == 0][:stock_skus]
    for n, sku in enumerate(simple):
        service.set_stock(sessions, bundle, sku, 100 + n, at=T0)
    with dispatcher(sessions, bundle, tmp, environ=environ, client_kw={"timeout": 1.0}) as d:
        stats = d.drain(timeout=90)
    assert stats.dead == 0, stats.errors
    with sessions() as s:
        assert s.scalars(select(OutboxRow).where(OutboxRow.state != "done")).all() == []
    return pairs, {sku: skus[sku] for sku in simple}


def _check_store(
    sessions: sessionmaker[Session],
    shop: SandboxServer,
    pairs: list[tuple[int, int]],
    stock: dict[str, tuple[int, int]],
    before: dict[int, list[int]],
) -> None:
    shipped = shop.store.state_id("Shipped")
    with sessions() as s:
        for order_id, ext in pairs:
            states = [int(h["id_order_state"]) for h in shop.store.histories_of(ext)]
            # both pushes (release, ready_to_ship) were queued before the dispatcher ran:
            # push_status shows the order's state at delivery, so the store goes straight
            # to Shipped, once, as in a fault-free run
            assert states == [*before[ext], shipped], (ext, states)
            shipment = s.scalars(select(ShipmentRow).where(ShipmentRow.order_id == order_id)).one()
            carriers = [
                c for c in shop.store.records("order_carriers") if int(c["id_order"]) == ext
            ]
            assert carriers[0]["tracking_number"] == shipment.tracking_id
            assert s.get(OrderRow, order_id).state == "Ready_to_Ship"  # type: ignore[union-attr]
    for n, (pid, cid) in enumerate(stock.values()):
        assert shop.store.stock_of(pid, cid) == 100 + n


def test_the_shipping_chain_reaches_the_store_and_the_wms(
    db: tuple[Engine, sessionmaker[Session]],
    bundle: Bundle,
    tmp_path: Path,
    wms: tuple[str, WmsEndpoint],
) -> None:
    _, sessions = db
    url, endpoint = wms
    environ = {"OMSFLOW_WMS_URL": url, "OMSFLOW_WMS_SECRET": "s3cret-for-tests"}
    with start_sandbox(products=15, orders=30, seed=5) as shop:
        before = {
            int(o["id"]): [int(h["id_order_state"]) for h in shop.store.histories_of(int(o["id"]))]
            for o in shop.store.records("orders")
        }
        pairs, stock = _run_story(
            sessions, bundle, shop, tmp_path, environ, orders=2, stock_skus=2
        )
        _check_store(sessions, shop, pairs, stock, before)
    assert len(endpoint.received) == 2
    with sessions() as s:
        for key, doc in endpoint.received:
            shipment = s.scalars(select(ShipmentRow).where(ShipmentRow.awb == doc["awb"])).one()
            assert key.startswith("outbox:")
            assert doc["tracking_id"] == shipment.tracking_id
            assert doc["carrier"] == "Self ship"
            assert base64.b64decode(doc["label"]["base64"]).startswith(b"%PDF")
            assert Path(str(shipment.label_path)).parent == tmp_path / "labels"


@pytest.mark.slow
def test_with_store_faults_every_effect_lands_exactly_once(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, tmp_path: Path
) -> None:
    _, sessions = db
    with start_sandbox(
        products=15,
        orders=30,
        seed=5,
        error_rate=0.2,
        timeout_rate=0.05,
        lost_after_commit_rate=0.05,
        hang_seconds=0.2,
        fault_seed=42,
    ) as shop:
        before = {
            int(o["id"]): [int(h["id_order_state"]) for h in shop.store.histories_of(int(o["id"]))]
            for o in shop.store.records("orders")
        }
        pairs, stock = _run_story(sessions, bundle, shop, tmp_path, {}, orders=5, stock_skus=30)
        injected = dict(shop.state.injected)
        _check_store(sessions, shop, pairs, stock, before)
    assert injected.get("error", 0) > 0, injected
    assert injected.get("timeout", 0) > 0, injected


@pytest.mark.slow
def test_writes_lost_after_commit_are_not_applied_twice(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, tmp_path: Path
) -> None:
    _, sessions = db
    with start_sandbox(products=15, orders=30, seed=5, lost_after_commit_rate=1.0) as shop:
        before = {
            int(o["id"]): [int(h["id_order_state"]) for h in shop.store.histories_of(int(o["id"]))]
            for o in shop.store.records("orders")
        }
        store_id = seed_store(sessions, shop)
        skus = seed_catalogue(sessions, shop, store_id)
        [(order_id, ext)] = import_orders(sessions, bundle, shop, store_id, count=1)
        _fire(sessions, bundle, order_id, "release")
        sku = next(k for k, (_, c) in skus.items() if c == 0)
        service.set_stock(sessions, bundle, sku, 77, at=T0)
        with dispatcher(sessions, bundle, tmp_path) as d:
            first = d.run_once()  # every write is applied, then answered 500 or dropped
            # the status push re-read the state, the stock PUT read the row back: done
            assert (first.delivered, first.retried, first.dead) == (first.leased, 0, 0), first
        processing = shop.store.state_id("Processing in progress")
        assert [int(h["id_order_state"]) for h in shop.store.histories_of(ext)] == [
            *before[ext],
            processing,
        ]
        assert shop.store.stock_of(*skus[sku]) == 77
        assert shop.state.injected["lost_after_commit"] >= 2


@pytest.mark.postgres
@pytest.mark.slow
def test_two_dispatchers_on_postgres_never_deliver_a_row_twice(
    pg_server_url: str, bundle: Bundle, tmp_path: Path
) -> None:
    from tests.conftest import fresh_pg_database

    with (
        opened(fresh_pg_database(pg_server_url)) as (_, sessions),
        start_sandbox(products=60, orders=5, seed=9, latency_ms=5) as shop,
    ):
        store_id = seed_store(sessions, shop)
        skus = seed_catalogue(sessions, shop, store_id)
        targets = list(skus)[:120]
        for n, sku in enumerate(targets):
            service.set_stock(sessions, bundle, sku, 500 + n, at=T0)
        results: dict[str, Any] = {}
        # both start draining at the same moment: on a loaded machine one thread could
        # otherwise drain all 120 rows while the other was still building its dispatcher
        together = threading.Barrier(2, timeout=60)

        def run(owner: str) -> None:
            with dispatcher(sessions, bundle, tmp_path, owner=owner, batch=10) as d:
                together.wait()
                results[owner] = d.drain(timeout=120)

        threads = [threading.Thread(target=run, args=(o,)) for o in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with sessions() as s:
            owners = Counter(s.scalars(select(OutboxRow.lease_owner)))
            assert set(s.scalars(select(OutboxRow.state))) == {"done"}
        assert put_count(shop) == len(targets)  # one PUT per row: nobody delivered twice
        assert results["a"].delivered + results["b"].delivered == len(targets)
        assert owners["a"] > 0, owners
        assert owners["b"] > 0, owners
        for n, sku in enumerate(targets):
            assert shop.store.stock_of(*skus[sku]) == 500 + n


@pytest.mark.slow
def test_garbled_answers_are_retried_and_nothing_goes_dead(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, tmp_path: Path
) -> None:
    """A 2xx answer cut in transit (the sandbox's ``malformed`` switch: on a write, the
    change IS applied) is retried like an outage, and a write is read back before it is
    retried: no effect dead, every order Shipped once in the store, every AWB made and its
    tracking number in the store, every stock value there."""
    _, sessions = db
    with start_sandbox(products=15, orders=60, seed=5, malformed_rate=0.3, fault_seed=7) as shop:
        before = {
            int(o["id"]): [int(h["id_order_state"]) for h in shop.store.histories_of(int(o["id"]))]
            for o in shop.store.records("orders")
        }
        pairs, stock = _run_story(sessions, bundle, shop, tmp_path, {}, orders=8, stock_skus=12)
        injected = dict(shop.state.injected)
        _check_store(sessions, shop, pairs, stock, before)
    assert injected.get("malformed", 0) >= 10, injected


@pytest.mark.slow
def test_an_applied_write_whose_answer_is_lost_is_read_back_not_dead_lettered(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, tmp_path: Path
) -> None:
    """Every write the store applies is answered 500, dropped or garbled, and the outbox has
    ONE attempt per effect: the status, stock, price and tracking writes are read back and
    delivered, no dead letter for a write the store shows."""
    _, sessions = db
    with start_sandbox(products=15, orders=30, seed=5, lost_after_commit_rate=1.0) as shop:
        store_id = seed_store(sessions, shop)
        skus = seed_catalogue(sessions, shop, store_id)
        [(order_id, ext)] = import_orders(sessions, bundle, shop, store_id, count=1)
        _fire(sessions, bundle, order_id, "release")
        _fire(sessions, bundle, order_id, "ready_to_ship")
        simple = [k for k, (_, c) in skus.items() if c == 0][:3]
        with sessions.begin() as s:
            for n, sku in enumerate(simple):
                set_price(s, sku, retail=Decimal(f"{20 + n}.50"), at=T0)
        for n, sku in enumerate(simple):
            service.set_stock(sessions, bundle, sku, 40 + n, at=T0)
        with dispatcher(sessions, bundle, tmp_path, max_attempts=1) as d:
            stats = d.drain(timeout=60)
        assert stats.dead == 0, stats.errors
        kinds = Counter(
            r.kind for r in _all_rows(sessions) if r.state == "done" and r.kind != "request_awb"
        )
        # + the stock push of the order's own line (consume_stock) and notify_wms (no WMS)
        assert kinds == {
            "push_status": 2,
            "push_stock": 4,
            "push_price": 3,
            "push_tracking": 1,
            "notify_wms": 1,
        }
        order = shop.store.get("orders", ext)
        assert order is not None
        assert int(order["current_state"]) == shop.store.state_id("Shipped")
        with sessions() as s:
            tracking = s.scalars(select(ShipmentRow.tracking_id)).one()
        [carrier] = [c for c in shop.store.records("order_carriers") if int(c["id_order"]) == ext]
        assert carrier["tracking_number"] == tracking
        for n, sku in enumerate(simple):
            pid, _ = skus[sku]
            assert shop.store.stock_of(pid, 0) == 40 + n
            product = shop.store.get("products", pid)
            assert product is not None
            assert Decimal(str(product["price"])) == Decimal(f"{20 + n}.5")
        assert shop.state.injected["lost_after_commit"] >= 9


def _all_rows(sessions: sessionmaker[Session]) -> list[OutboxRow]:
    with sessions() as s:
        return list(s.scalars(select(OutboxRow)))
