"""Stock: available = on hand - reserved, coalesced push_stock, FIFO promotion of Partial."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError
from engine.runtime import inventory, service
from engine.runtime.db.stores import save_store
from engine.runtime.db.tables import OrderRow, OutboxRow
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.specs import Bundle, load_bundle

from .db.support import opened

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    with opened(db_url) as (_engine, factory):
        with factory.begin() as s:
            save_store(s, "main", "http://127.0.0.1:1/", "K" * 32, {})
        yield factory


def _pushes(s: Session) -> list[tuple[str | None, str, int]]:
    rows = s.scalars(
        select(OutboxRow).where(OutboxRow.kind == "push_stock").order_by(OutboxRow.id)
    )
    return [(r.dedup_key, r.state, r.payload["quantity"]) for r in rows]


@pytest.mark.slow
def test_thousand_changes_give_one_pending_push_with_last_value(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as s:
        store_id = s.scalars(select(OutboxRow.id)).first()  # none yet
        assert store_id is None
        for i in range(500):
            inventory.set_on_hand(s, "A", i + 1, at=T0)
    for i in range(500):  # and across transactions
        with sessions.begin() as s:
            inventory.adjust(s, "A", -1 if i % 2 else +2, at=T0)
    with sessions() as s:
        level = inventory.levels(s, ["A"])["A"]
        assert level.on_hand == 500 + 250 * 2 - 250
        (push,) = _pushes(s)
        assert push[1:] == ("pending", level.on_hand)
        assert push[0] is not None
        assert push[0].startswith("stock:")


def test_available_never_pushed_below_zero_and_no_push_without_change(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    with sessions.begin() as s:
        inventory.set_on_hand(s, "A", 1, at=T0)
    with sessions.begin() as s:
        inventory.set_on_hand(s, "A", 1, at=T0)  # same value: no new push, same row
        with pytest.raises(ConfigError):
            inventory.adjust(s, "A", -5, at=T0)
        with pytest.raises(ConfigError):
            inventory.set_on_hand(s, "A", -1, at=T0)
    service.create_order(
        sessions,
        bundle,
        NewOrder("R1", T0, [NewLine("A", 1)]),
        idempotency_key="i:R1",
        at=T0,
    )
    with sessions.begin() as s:
        # the warehouse miscounted: on hand 0 while 1 is reserved -> available -1, pushed as 0
        inventory.set_on_hand(s, "A", 0, at=T0)
        level = inventory.levels(s, ["A"])["A"]
        assert (level.available, level.pushable) == (-1, 0)
        assert _pushes(s)[-1][1:] == ("pending", 0)
        assert len(_pushes(s)) == 1


def test_partial_orders_promoted_oldest_first_when_stock_arrives(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    def imp(ref: str, minutes: int, lines: dict[str, int]) -> None:
        order = NewOrder(
            ref, T0 + timedelta(minutes=minutes), [NewLine(k, v) for k, v in lines.items()]
        )
        res = service.create_order(sessions, bundle, order, idempotency_key=f"i:{ref}", at=T0)
        assert res.state == "Partial"

    # imported in a different order than they were placed
    imp("YOUNG", 30, {"A": 2})
    imp("OLD", 10, {"A": 2})
    imp("MID", 20, {"A": 2, "B": 1})  # also needs B: cannot be served by A alone
    imp("BIG", 5, {"A": 50})  # oldest, but cannot be served: must not block the others

    res = service.set_stock(sessions, bundle, "A", 4, at=T0)
    with sessions() as s:
        states = dict(s.execute(select(OrderRow.reference, OrderRow.state)).all())
        ids = dict(s.execute(select(OrderRow.reference, OrderRow.id)).all())
    assert res.promoted == (ids["OLD"], ids["YOUNG"])
    assert states == {"OLD": "New", "YOUNG": "New", "MID": "Partial", "BIG": "Partial"}
    assert (res.level.on_hand, res.level.reserved) == (4, 4)
    with sessions() as s:
        # the store is told what is left after the promotions, in the same commit
        assert _pushes(s)[-1][1:] == ("pending", 0)

    # a cancellation releases stock: MID (now servable) is promoted in that transaction
    service.adjust_stock(sessions, bundle, "B", +1, at=T0)
    with sessions() as s:
        assert (
            s.scalars(select(OrderRow.state).where(OrderRow.reference == "MID")).one() == "Partial"
        )
    out = service.apply_inbound(
        sessions,
        bundle,
        reference="OLD",
        trigger="seller_cancel",
        source="user",
        idempotency_key="u:OLD:cancel",
        at=T0,
    )
    assert out.promoted == (ids["MID"],)
    with sessions() as s:
        states = dict(s.execute(select(OrderRow.reference, OrderRow.state)).all())
        level = inventory.levels(s, ["A", "B"])
    assert states["MID"] == "New"
    assert states["OLD"] == "Cancelled_by_seller_inprocess"
    assert (level["A"].reserved, level["B"].reserved) == (4, 1)
