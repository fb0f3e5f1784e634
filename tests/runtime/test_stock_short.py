"""Stock below what is reserved (issue 13, stock rules): the newest orders go to Partial
through the lifecycle's ``stock_short`` in the stock change's transaction; orders past New
keep their units and a change below them is refused. Real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import inventory, service
from engine.runtime.db.stores import save_store
from engine.runtime.db.tables import AuditRow, OrderRow, OutboxRow
from engine.runtime.service import NewLine, NewOrder, StockHeld
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


def _order(
    sessions: sessionmaker[Session], bundle: Bundle, ref: str, minutes: int, **lines: int
) -> int:
    placed = NewOrder(
        ref, T0 + timedelta(minutes=minutes), [NewLine(k, v) for k, v in lines.items()]
    )
    res = service.create_order(sessions, bundle, placed, idempotency_key=f"i:{ref}", at=T0)
    assert res.order_id is not None
    return res.order_id


def _states(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as s:
        return dict(s.execute(select(OrderRow.reference, OrderRow.state)).all())


def _level(sessions: sessionmaker[Session], sku: str) -> tuple[int, int, int]:
    with sessions() as s:
        level = inventory.levels(s, [sku])[sku]
    return level.on_hand, level.reserved, level.available


def _pushed(sessions: sessionmaker[Session], sku: str) -> int:
    with sessions() as s:
        row = s.scalars(
            select(OutboxRow).where(OutboxRow.kind == "push_stock", OutboxRow.state == "pending")
        ).all()
    (push,) = [r for r in row if r.payload["sku"] == sku]
    return int(push.payload["quantity"])


@pytest.mark.slow
def test_set_below_reserved_moves_the_newest_orders_to_partial_and_back(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    service.set_stock(sessions, bundle, "A", 6, at=T0)
    # imported out of order: placement time decides, not import order
    mid = _order(sessions, bundle, "MID", 20, A=2)
    old = _order(sessions, bundle, "OLD", 10, A=2)
    new = _order(sessions, bundle, "NEW", 30, A=2)
    assert set(_states(sessions).values()) == {"New"}

    res = service.set_stock(sessions, bundle, "A", 3, at=T0)
    assert res.shorted == (new, mid)  # newest first, only as many as needed
    assert res.references == {new: "NEW", mid: "MID"}
    assert _states(sessions) == {"OLD": "New", "MID": "Partial", "NEW": "Partial"}
    assert _level(sessions, "A") == (3, 2, 1)
    assert (res.level.on_hand, res.level.reserved) == (3, 2)
    assert _pushed(sessions, "A") == 1  # the store is told what is left, in the same commit
    with sessions() as s:
        audit = s.scalars(
            select(AuditRow).where(AuditRow.trigger == "stock_short").order_by(AuditRow.id)
        ).all()
        assert [(a.order_id, a.from_state, a.to_state, a.source) for a in audit] == [
            (new, "New", "Partial", "system"),
            (mid, "New", "Partial", "system"),
        ]
    assert old not in res.shorted

    # the mirror: stock arriving serves the oldest waiting order first
    back = service.adjust_stock(sessions, bundle, "A", +1, at=T0)
    assert back.promoted == (mid,)
    assert _states(sessions) == {"OLD": "New", "MID": "New", "NEW": "Partial"}
    assert _level(sessions, "A") == (4, 4, 0)


def test_adjust_down_shorts_and_the_release_serves_waiting_orders_on_other_skus(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    service.set_stock(sessions, bundle, "A", 1, at=T0)
    service.set_stock(sessions, bundle, "B", 1, at=T0)
    both = _order(sessions, bundle, "BOTH", 30, A=1, B=1)
    waiting = _order(sessions, bundle, "WAIT-B", 10, B=1)
    assert _states(sessions) == {"BOTH": "New", "WAIT-B": "Partial"}

    res = service.adjust_stock(sessions, bundle, "A", -1, at=T0)
    assert res.shorted == (both,)
    assert res.promoted == (waiting,)  # BOTH gave B back: WAIT-B takes it
    assert res.references[waiting] == "WAIT-B"
    assert _states(sessions) == {"BOTH": "Partial", "WAIT-B": "New"}
    assert _level(sessions, "A") == (0, 0, 0)
    assert _level(sessions, "B") == (1, 1, 0)


def test_units_held_past_new_refuse_a_lower_stock_and_nothing_is_written(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    service.set_stock(sessions, bundle, "A", 3, at=T0)
    released = _order(sessions, bundle, "REL", 10, A=2)
    _order(sessions, bundle, "FRESH", 20, A=1)
    out = service.apply_inbound(
        sessions,
        bundle,
        order_id=released,
        trigger="release",
        source="user",
        idempotency_key="u:rel",
        at=T0,
    )
    assert out.state == "RFP"

    for change in (
        lambda: service.set_stock(sessions, bundle, "A", 1, at=T0),
        lambda: service.adjust_stock(sessions, bundle, "A", -2, at=T0),
    ):
        with pytest.raises(StockHeld) as refused:
            change()
        assert "REL (RFP, 2)" in str(refused.value)
        assert "cannot go below 2" in str(refused.value)
        assert refused.value.exit_code == 78
        assert [h.reference for h in refused.value.holds] == ["REL"]
        # nothing written: FRESH keeps its units, on hand unchanged
        assert _states(sessions) == {"REL": "RFP", "FRESH": "New"}
        assert _level(sessions, "A") == (3, 3, 0)

    res = service.set_stock(sessions, bundle, "A", 2, at=T0)  # exactly what REL holds
    assert [res.references[i] for i in res.shorted] == ["FRESH"]
    assert _level(sessions, "A") == (2, 2, 0)


def test_more_stock_is_never_refused_even_while_still_below_what_is_held(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    service.set_stock(sessions, bundle, "A", 5, at=T0)
    released = _order(sessions, bundle, "REL", 10, A=5)
    service.apply_inbound(sessions, bundle, order_id=released, trigger="release",
                          source="user", idempotency_key="u:rel", at=T0)  # fmt: skip
    with sessions.begin() as s:  # a miscount recorded before these rules (or by hand)
        inventory.set_on_hand(s, "A", 1, at=T0)
    up = service.adjust_stock(sessions, bundle, "A", +2, at=T0)
    assert (up.level.on_hand, up.level.available) == (3, -2)
    assert service.set_stock(sessions, bundle, "A", 4, at=T0).level.on_hand == 4
    with pytest.raises(StockHeld):
        service.set_stock(sessions, bundle, "A", 2, at=T0)  # down again: refused


@pytest.mark.slow
def test_available_never_below_zero_after_any_sequence_of_changes(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    """A fixed pseudo-random walk of stock changes over orders of two SKUs."""
    import random

    rng = random.Random(13)
    service.set_stock(sessions, bundle, "A", 5, at=T0)
    service.set_stock(sessions, bundle, "B", 5, at=T0)
    for n in range(12):
        lines = {"A": rng.randint(1, 3)} if n % 3 else {"A": 1, "B": rng.randint(1, 2)}
        _order(sessions, bundle, f"O{n}", rng.randint(0, 500), **lines)
    for _ in range(25):
        sku = rng.choice("AB")
        service.set_stock(sessions, bundle, sku, rng.randint(0, 12), at=T0)
        for s in "AB":
            assert _level(sessions, s)[2] >= 0
    with sessions() as s:
        for order in s.scalars(select(OrderRow)):
            held = {line.reserved == line.quantity for line in order.lines}
            # New holds every line; Partial holds nothing
            assert held == ({True} if order.state == "New" else {False}), order.reference


@pytest.mark.slow
def test_concurrent_stock_sets_and_imports_keep_the_books_straight(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    """Two threads lower and raise stock while two import orders: every SKU's reserved
    equals what its lines hold, nothing is promised twice, New orders hold every line and
    Partial ones none (PostgreSQL: row locks; SQLite: one writer at a time)."""
    import random
    import threading

    service.set_stock(sessions, bundle, "A", 10, at=T0)
    service.set_stock(sessions, bundle, "B", 10, at=T0)
    errors: list[BaseException] = []

    def setter(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(25):
                service.set_stock(sessions, bundle, rng.choice("AB"), rng.randint(0, 12), at=T0)
        except StockHeld:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def importer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for n in range(25):
                lines = {"A": rng.randint(1, 3)} if n % 2 else {"A": 1, "B": rng.randint(1, 2)}
                _order(sessions, bundle, f"T{seed}-{n}", rng.randint(0, 500), **lines)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=setter, args=(i,)) for i in (1, 2)]
    threads += [threading.Thread(target=importer, args=(i,)) for i in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    with sessions() as s:
        orders = list(s.scalars(select(OrderRow)))
        held = {"A": 0, "B": 0}
        for order in orders:
            for line in order.lines:
                held[line.sku] += line.reserved
            holds_all = {line.reserved == line.quantity for line in order.lines}
            assert holds_all == ({True} if order.state == "New" else {False}), order.reference
        levels = inventory.levels(s, ["A", "B"])
    assert len(orders) == 50
    for sku in "AB":
        assert levels[sku].reserved == held[sku]
        assert levels[sku].available >= 0
