"""The outbox dispatcher over real HTTP to the sandbox store, on SQLite and PostgreSQL:
stock reaches the store after one pass, bursts coalesce into one PUT, faults never lose or
double an effect, permanent failures are dead with the store's message and come back with
retry, and a change made while its twin is leased is still delivered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import service
from engine.runtime.db.tables import OutboxRow, ProductRow
from engine.runtime.outbox import DispatchStats, list_entries, retry_dead
from engine.runtime.specs import Bundle, load_bundle
from sandbox.server import SandboxServer, start_sandbox
from tests.runtime.db.support import opened

from .support import T0, dispatcher, put_count, seed_catalogue, seed_store


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    with opened(db_url) as pair:
        yield pair


@pytest.fixture
def shop() -> Iterator[SandboxServer]:
    with start_sandbox(products=20, orders=10, seed=3, hang_seconds=0.2) as server:
        yield server


def _rows(sessions: sessionmaker[Session], *states: str) -> list[OutboxRow]:
    with sessions() as s:
        q = select(OutboxRow).order_by(OutboxRow.id)
        if states:
            q = q.where(OutboxRow.state.in_(states))
        return list(s.scalars(q))


def _entries(sessions: sessionmaker[Session], dead: bool = False) -> list[dict[str, Any]]:
    with sessions() as s:
        return list_entries(s, dead=dead)


def _simple_and_variant(skus: dict[str, tuple[int, int]]) -> tuple[str, str]:
    simple = next(k for k, (_, c) in skus.items() if c == 0)
    variant = next(k for k, (_, c) in skus.items() if c != 0)
    return simple, variant


@pytest.mark.slow
def test_stock_set_reaches_the_store_after_one_pass(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    store_id = seed_store(sessions, shop)
    skus = seed_catalogue(sessions, shop, store_id)
    simple, variant = _simple_and_variant(skus)
    service.set_stock(sessions, bundle, simple, 37, at=T0)
    service.set_stock(sessions, bundle, variant, 5, at=T0)
    assert shop.store.stock_of(*skus[simple]) != 37

    with dispatcher(sessions, bundle, tmp_path) as d:
        stats = d.run_once()

    assert (stats.delivered, stats.dead, stats.retried) == (2, 0, 0)
    assert shop.store.stock_of(*skus[simple]) == 37
    assert shop.store.stock_of(*skus[variant]) == 5
    assert [r.state for r in _rows(sessions)] == ["done", "done"]
    assert _entries(sessions) == []


@pytest.mark.slow
def test_a_burst_of_1000_changes_to_one_sku_is_one_put(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    store_id = seed_store(sessions, shop)
    skus = seed_catalogue(sessions, shop, store_id)
    simple, _ = _simple_and_variant(skus)
    for qty in range(1, 1001):
        service.set_stock(sessions, bundle, simple, qty, at=T0)
    assert len(_rows(sessions)) == 1

    with dispatcher(sessions, bundle, tmp_path) as d:
        d.run_once()

    assert put_count(shop) == 1
    assert shop.store.stock_of(*skus[simple]) == 1000


def test_a_change_made_while_its_twin_is_leased_is_still_delivered(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    store_id = seed_store(sessions, shop)
    skus = seed_catalogue(sessions, shop, store_id)
    simple, _ = _simple_and_variant(skus)
    service.set_stock(sessions, bundle, simple, 5, at=T0)
    with (
        dispatcher(sessions, bundle, tmp_path) as d,
        dispatcher(sessions, bundle, tmp_path, owner="d2") as other,
    ):
        leased = d._lease(d.clock())  # first dispatcher holds the row...
        assert [x.payload["quantity"] for x in leased] == [5]
        service.set_stock(sessions, bundle, simple, 9, at=T0)  # ...a newer value arrives
        pending = _rows(sessions, "pending")
        assert [r.payload["quantity"] for r in pending] == [9]
        # a second dispatcher must not push 9 while 5 is in flight (it could land first)
        assert other.run_once().leased == 0
        d._settle(d._run_lane(leased), DispatchStats())  # 5 lands
        assert shop.store.stock_of(*skus[simple]) == 5
        assert other.run_once().delivered == 1  # then 9

    assert shop.store.stock_of(*skus[simple]) == 9
    assert put_count(shop) == 2


@pytest.mark.slow
def test_permanent_failures_are_dead_with_the_message_and_retry_brings_them_back(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, shop: SandboxServer, tmp_path: Path
) -> None:
    _, sessions = db
    store_id = seed_store(sessions, shop)
    skus = seed_catalogue(sessions, shop, store_id)
    simple, _ = _simple_and_variant(skus)
    good_ids: dict[str, Any] = {}
    with sessions.begin() as s:
        row = s.scalars(select(ProductRow).where(ProductRow.sku == simple)).one()
        good_ids = dict(row.store_ids)
        row.store_ids = {str(store_id): {"product_id": 99999, "combination_id": None}}
        s.add(ProductRow(sku="LOCAL-ONLY", name="never listed", store_ids={}))
    service.set_stock(sessions, bundle, simple, 12, at=T0)
    service.set_stock(sessions, bundle, "LOCAL-ONLY", 3, at=T0)

    with dispatcher(sessions, bundle, tmp_path) as d:
        stats = d.run_once()
        assert (stats.dead, stats.delivered) == (2, 0)
        dead = {e["sku"]: e for e in _entries(sessions, dead=True)}
        assert "product 99999" in dead[simple]["last_error"]
        assert shop.key not in dead[simple]["last_error"]
        assert "not bound to store 'main'" in dead["LOCAL-ONLY"]["last_error"]

        with sessions.begin() as s:  # the operator fixes the binding (a catalogue sync)
            s.scalars(
                select(ProductRow).where(ProductRow.sku == simple)
            ).one().store_ids = good_ids
        with sessions.begin() as s:
            assert retry_dead(s, [dead[simple]["id"]], at=T0) == 1
        assert d.run_once().delivered == 1

    assert shop.store.stock_of(*skus[simple]) == 12
    assert [e["sku"] for e in _entries(sessions, dead=True)] == ["LOCAL-ONLY"]
