"""db.direct.run: the event path's statements on the DBAPI cursor give what SQLAlchemy's
Connection.execute gives (values written and read back, row counts, RETURNING, errors)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import IntegrityError

from engine.runtime.db import direct
from engine.runtime.db.statements import AUDIT, EVENTS, event_statements

from .support import opened

AT = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with opened(db_url) as (eng, _factory):
        yield eng


def _order(conn: Any, st: Any) -> int:
    return int(
        conn.execute(
            st.insert_order,
            {
                "reference": "R1",
                "state": "New",
                "version": 1,
                "ordered_at": AT,
                "facts": {"vip": True},
                "shipping_address": {},
                "invoice_address": {},
                "extra": {},
                "needs_attention": False,
                "created_at": AT,
                "updated_at": AT,
            },
        ).scalar_one()
    )


def _event(key: str, order_id: int) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "source": "user",
        "trigger": "release",
        "order_id": order_id,
        "payload": {"a": [1, "x"]},
        "received_at": AT,
        "outcome": "applied",
    }


def test_same_rows_as_sqlalchemy(engine: Engine) -> None:
    with engine.begin() as conn:
        st = event_statements(conn)
        oid = _order(conn, st)
        conn.execute(
            st.insert_lines,
            [{"order_id": oid, "sku": "A", "quantity": 2, "reserved": 0, "consumed": 0}],
        )
        # a read with JSON, Boolean and joined columns: as SQLAlchemy reads it
        ours = direct.run(conn, st.read_by_id, {"b_id": oid}).all()
        theirs = [tuple(r) for r in conn.execute(st.read_by_id, {"b_id": oid})]
        assert ours == theirs
        assert ours[0][5] == {"vip": True}
        assert ours[0][13] is False
        # RETURNING, ON CONFLICT DO NOTHING: a replay returns no row
        first = direct.run(conn, st.insert_event, _event("k1", oid)).scalar()
        assert isinstance(first, int)
        assert direct.run(conn, st.insert_event, _event("k1", oid)).first() is None
        row = conn.execute(select(EVENTS).where(EVENTS.c.id == first)).mappings().one()
        assert row["payload"] == {"a": [1, "x"]}
        assert row["received_at"] == AT  # stored as SQLAlchemy stores it: reads back aware
        # an update with constants of its own (needs_attention=True) and a row count
        flagged = direct.run(
            conn,
            st.update_attention,
            {
                "b_id": oid,
                "b_version": 1,
                "b_next": 2,
                "b_at": AT,
                "b_reason": "why",
                "b_flag_state": "New",
            },
        )
        assert flagged.rowcount == 1
        stale = direct.run(
            conn, st.update_refused, {"b_id": oid, "b_version": 1, "b_next": 2, "b_at": AT}
        )
        assert stale.rowcount == 0
        state = direct.run(conn, st.read_by_id, {"b_id": oid}).all()[0]
        assert (state[4], state[13], state[14]) == (2, True, "why")
        # executemany, an expanding IN list
        direct.run(
            conn,
            st.create_inventory,
            [{"sku": s, "on_hand": 3, "reserved": 1, "updated_at": AT} for s in ("A", "B")],
        )
        got = direct.run(conn, st.read_stock, {"b_skus": ["A", "B", "C"]}).all()
        assert sorted(got) == [("A", 3, 1), ("B", 3, 1)]
        audit = {
            "order_id": oid,
            "event_id": first,
            "trigger": "release",
            "from_state": "New",
            "to_state": "New",
            "applied": False,
            "source": "user",
            "effects": [],
            "blockers": [{"code": "x"}],
            "at": AT,
            "spec_version": None,
        }
        direct.run(conn, st.insert_audit, audit)
        stored = conn.execute(select(AUDIT.c.blockers, AUDIT.c.applied)).one()
        assert tuple(stored) == ([{"code": "x"}], False)


def test_errors_are_sqlalchemys(engine: Engine) -> None:
    with engine.begin() as conn:
        st = event_statements(conn)
        oid = _order(conn, st)
        direct.run(conn, st.insert_new_event, _event("k1", oid))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        direct.run(conn, event_statements(conn).insert_new_event, _event("k1", oid))
    with engine.begin() as conn:  # the failed transaction rolled back; the engine works on
        assert direct.run(conn, event_statements(conn).seen, {"b_key": "k1"}).scalar()


def test_listeners_see_every_statement(engine: Engine) -> None:
    seen: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", log)
    try:
        with engine.begin() as conn:
            direct.run(conn, event_statements(conn).store_ids)
    finally:
        event.remove(engine, "before_cursor_execute", log)
    assert any("FROM stores" in s for s in seen)


def test_one_order_import_writes_what_a_batch_writes(engine: Engine) -> None:
    """PostgreSQL writes a batch of one in one statement (statements.write_import): lines
    in their order with prices and extras, the event, the audit row, as a batch of two."""
    from decimal import Decimal

    from sqlalchemy.orm import Session

    from engine.runtime.apply import NewLine, NewOrder, OrderImport, create_orders
    from engine.runtime.db.statements import LINES, ORDERS
    from engine.runtime.specs import load_bundle

    bundle = load_bundle()

    def order(ref: str) -> NewOrder:
        return NewOrder(
            reference=ref,
            ordered_at=AT,
            lines=[
                NewLine("Z", 2, unit_price=Decimal("12.50"), name="zed", extra={"k": [1]}),
                NewLine("A", 1, unit_price=None, external_id="e1"),
            ],
            facts={"vip": True},
        )

    def stored(conn: Any, ref: str) -> list[Any]:
        oid = conn.execute(select(ORDERS.c.id).where(ORDERS.c.reference == ref)).scalar_one()
        lines = conn.execute(
            select(
                LINES.c.sku,
                LINES.c.name,
                LINES.c.quantity,
                LINES.c.reserved,
                LINES.c.unit_price,
                LINES.c.external_id,
                LINES.c.extra,
            )
            .where(LINES.c.order_id == oid)
            .order_by(LINES.c.id)
        ).all()
        audit = conn.execute(
            select(AUDIT.c.trigger, AUDIT.c.to_state, AUDIT.c.source, AUDIT.c.at).where(
                AUDIT.c.order_id == oid
            )
        ).all()
        return [[tuple(r) for r in lines], [tuple(r) for r in audit]]

    with Session(engine) as s, s.begin():
        conn = s.connection()
        create_orders(
            conn, bundle, [OrderImport(order("ONE"), "import", "k:one")], source="user", at=AT
        )
        create_orders(
            conn,
            bundle,
            [
                OrderImport(order("TWO"), "import", "k:two"),
                OrderImport(order("X"), "import", "k:x"),
            ],
            source="user",
            at=AT,
        )
        one, two = stored(conn, "ONE"), stored(conn, "TWO")
    assert one == two
    assert [line[0] for line in one[0]] == ["Z", "A"]
    assert one[0][0][4] == Decimal("12.50")
    assert one[0][0][6] == {"k": [1]}
    assert one[1][0][3] == AT


def test_sqlite_insert_ids_in_order_across_rows_naming_other_columns(tmp_path: Any) -> None:
    """One executemany per run of rows naming the same columns; the ids come back in
    parameter order and each row holds its own values (a row naming fewer columns is not
    bound with the first row's names)."""
    with opened(f"sqlite:///{tmp_path / 'oms.db'}") as (eng, _factory):
        with eng.begin() as conn:
            first = _order(conn, event_statements(eng))
            rows = [_event("a", first), _event("b", first), _event("c", first)]
            rows[1] = {k: v for k, v in rows[1].items() if k != "payload"}
            ids = direct.sqlite_insert_ids(conn, EVENTS, rows)
        with eng.connect() as conn:
            got = conn.execute(
                select(EVENTS.c.id, EVENTS.c.idempotency_key, EVENTS.c.payload).order_by(
                    EVENTS.c.id
                )
            ).all()
    assert [(i, k) for i, k, _p in got] == list(zip(ids, ["a", "b", "c"], strict=True))
    assert [p for _i, _k, p in got] == [{"a": [1, "x"]}, None, {"a": [1, "x"]}]
