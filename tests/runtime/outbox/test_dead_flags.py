"""A dead effect flags its order: the sandbox store refuses every request (its fault
switch ``error_rate=1``), the status push of a released order runs out of attempts and goes
dead, and the order is flagged with the reason; moving on does not clear that flag,
``acknowledge_attention`` does. SQLite and PostgreSQL, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import service
from engine.runtime.channels.ratelimit import RetryPolicy
from engine.runtime.db.tables import OrderRow, OutboxRow
from engine.runtime.specs import Bundle, load_bundle
from sandbox.server import start_sandbox
from tests.runtime.db.support import opened

from .support import T0, dispatcher, import_orders, seed_catalogue, seed_store


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    with opened(db_url) as pair:
        yield pair


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


def _order(sessions: sessionmaker[Session], order_id: int) -> OrderRow:
    with sessions() as s:
        row = s.get(OrderRow, order_id)
        assert row is not None
        s.expunge(row)
        return row


@pytest.mark.slow
def test_a_dead_status_push_flags_its_order_with_the_reason(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle, tmp_path: Path
) -> None:
    _, sessions = db
    with start_sandbox(products=15, orders=30, seed=5) as shop:
        store_id = seed_store(sessions, shop)
        seed_catalogue(sessions, shop, store_id)
        [(order_id, _ext)] = import_orders(sessions, bundle, shop, store_id, count=1)
        _fire(sessions, bundle, order_id, "release")
        shop.faults.update({"error_rate": 1.0})  # the store answers 500 to everything
        with dispatcher(
            sessions,
            bundle,
            tmp_path,
            max_attempts=2,
            client_kw={"retry": RetryPolicy(attempts=1), "timeout": 1.0},
        ) as d:
            stats = d.drain(timeout=30)
        assert stats.dead >= 1, stats
        with sessions() as s:
            push = s.scalars(
                select(OutboxRow).where(
                    OutboxRow.order_id == order_id, OutboxRow.kind == "push_status"
                )
            ).one()
            assert push.state == "dead"
            assert push.last_error
        row = _order(sessions, order_id)
        assert row.needs_attention
        assert row.attention_reason == f"push_status #{push.id} is dead: {push.last_error}"
        assert "gave up after 2 attempts" in row.attention_reason
        assert row.attention_state is None  # sticky: only an operator clears it
        # the order moves on; the store still never got "Processing in progress"
        shop.faults.update({"error_rate": 0.0})
        _fire(sessions, bundle, order_id, "ready_to_ship")
        assert _order(sessions, order_id).needs_attention
    ack = service.acknowledge_attention(
        sessions, reference=f"#{order_id}", by="ops", note="store fixed", at=T0
    )
    assert ack.reason == row.attention_reason
    assert not _order(sessions, order_id).needs_attention
