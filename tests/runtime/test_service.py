"""The one rule on SQLite and PostgreSQL: one transaction per event, replays acknowledged,
stale versions retried, refusals recorded, a crash mid-way leaves nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Update, event, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import TextClause

from engine.errors import NotFound, StaleOrder
from engine.runtime import service
from engine.runtime.db.tables import (
    AuditRow,
    InboundEventRow,
    InventoryRow,
    OrderRow,
    OutboxRow,
)
from engine.runtime.inventory import set_on_hand
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.specs import Bundle, load_bundle

from .db.support import opened

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    with opened(db_url) as pair:
        yield pair


def _stock(sessions: sessionmaker[Session], **skus: int) -> None:
    with sessions.begin() as s:
        for sku, qty in skus.items():
            set_on_hand(s, sku, qty, at=T0)


def _import(
    sessions: sessionmaker[Session],
    bundle: Bundle,
    ref: str,
    lines: dict[str, int],
    minutes: int = 0,
) -> service.ApplyResult:
    order = NewOrder(
        reference=ref,
        ordered_at=T0 + timedelta(minutes=minutes),
        lines=[NewLine(sku, q) for sku, q in lines.items()],
    )
    return service.create_order(sessions, bundle, order, idempotency_key=f"import:{ref}", at=T0)


def _count(s: Session, model: Any, *where: Any) -> int:
    return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _inv(s: Session, sku: str) -> tuple[int, int]:
    row = s.get(InventoryRow, sku, populate_existing=True)
    assert row is not None
    return row.on_hand, row.reserved


def test_import_reserves_and_release_writes_state_audit_outbox_together(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle
) -> None:
    _, sessions = db
    _stock(sessions, A=5)
    res = _import(sessions, bundle, "R1", {"A": 2})
    assert (res.outcome, res.from_state, res.state) == ("applied", "Incoming", "New")
    res2 = service.apply_inbound(
        sessions,
        bundle,
        reference="R1",
        trigger="release",
        source="user",
        idempotency_key="user:R1:release",
        at=T0,
    )
    assert res2.state == "RFP"
    assert len(res2.outbox_ids) == 1
    with sessions() as s:
        order = s.scalars(select(OrderRow)).one()
        assert (order.state, order.version) == ("RFP", 3)
        assert _inv(s, "A") == (5, 2)
        audit = list(s.scalars(select(AuditRow).order_by(AuditRow.id)))
        assert [(a.trigger, a.from_state, a.to_state, a.applied, a.source) for a in audit] == [
            ("import", "Incoming", "New", True, "channel"),
            ("release", "New", "RFP", True, "user"),
        ]
        push = s.scalars(select(OutboxRow).where(OutboxRow.kind == "push_status")).one()
        assert push.payload["state"] == "RFP"
        assert push.order_id == order.id


def test_replay_is_a_duplicate_with_no_new_rows(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle
) -> None:
    _, sessions = db
    _stock(sessions, A=5)
    _import(sessions, bundle, "R1", {"A": 1})
    assert _import(sessions, bundle, "R1", {"A": 1}).duplicate
    kwargs: dict[str, Any] = {
        "reference": "R1",
        "trigger": "release",
        "source": "wms",
        "idempotency_key": "wms:evt-1",
        "at": T0,
    }
    assert service.apply_inbound(sessions, bundle, **kwargs).applied
    with sessions() as s:
        before = (_count(s, AuditRow), _count(s, OutboxRow), _count(s, InboundEventRow))
    again = service.apply_inbound(sessions, bundle, **kwargs)
    assert again.outcome == "duplicate"
    with sessions() as s:
        assert (_count(s, AuditRow), _count(s, OutboxRow), _count(s, InboundEventRow)) == before
        assert s.scalars(select(OrderRow)).one().version == 3


def test_refusal_from_channel_is_recorded_and_flags_attention(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle
) -> None:
    _, sessions = db
    _stock(sessions, A=5)
    _import(sessions, bundle, "R1", {"A": 1})
    for trig in ("release", "pack"):
        service.apply_inbound(
            sessions,
            bundle,
            reference="R1",
            trigger=trig,
            source="user",
            idempotency_key=f"u:{trig}",
            at=T0,
        )
    res = service.apply_inbound(
        sessions,
        bundle,
        reference="R1",
        trigger="buyer_cancel",
        source="channel",
        idempotency_key="ps:1:6:2025",
        at=T0,
    )
    assert res.outcome == "refused"
    assert res.blockers[0].code == "not_allowed"
    with sessions() as s:
        order = s.scalars(select(OrderRow)).one()
        assert order.state == "Packed"
        assert order.needs_attention is True
        assert "buyer_cancel" in (order.attention_reason or "")
        last = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(1)).one()
        assert (last.applied, last.source, last.blockers[0]["code"]) == (
            False,
            "channel",
            "not_allowed",
        )
        assert _count(s, OutboxRow, OutboxRow.kind == "notify_wms") == 0
    with pytest.raises(NotFound):
        service.apply_inbound(
            sessions,
            bundle,
            reference="NOPE",
            trigger="release",
            source="user",
            idempotency_key="x",
            at=T0,
        )


def _install_crash_trigger(engine: Engine) -> None:
    """A database trigger that aborts the audit insert of a 'release' event: the crash
    happens after the state write, the stock bookkeeping and the outbox rows."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER crash BEFORE INSERT ON audit WHEN NEW.\"trigger\" = 'release' "
                    "BEGIN SELECT RAISE(ABORT, 'simulated crash'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION crash() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'simulated crash'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER crash BEFORE INSERT ON audit FOR EACH ROW "
                    "WHEN (NEW.\"trigger\" = 'release') EXECUTE FUNCTION crash()"
                )
            )


def _drop_crash_trigger(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("DROP TRIGGER crash" + (" ON audit" if conn.dialect.name != "sqlite" else ""))
        )


def test_crash_after_state_write_leaves_nothing_half_written(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle
) -> None:
    engine, sessions = db
    _stock(sessions, A=1, B=3)
    _import(sessions, bundle, "R1", {"A": 1, "B": 2})
    # consume_stock + push_status + state: all in flight when the audit insert fails
    service.apply_inbound(
        sessions,
        bundle,
        reference="R1",
        trigger="release",
        source="user",
        idempotency_key="u:release",
        at=T0,
    )
    _install_crash_trigger(engine)
    kwargs: dict[str, Any] = {"reference": "R1", "trigger": "ready_to_ship", "source": "user"}
    _import(sessions, bundle, "R2", {"B": 1})
    with sessions() as s:
        snapshot = (_count(s, AuditRow), _count(s, OutboxRow), _count(s, InboundEventRow))
        stock_before = (_inv(s, "A"), _inv(s, "B"))
    with pytest.raises(Exception, match="simulated crash"):
        service.apply_inbound(
            sessions,
            bundle,
            reference="R2",
            trigger="release",
            source="user",
            idempotency_key="u:R2:release",
            at=T0,
        )
    with sessions() as s:
        r2 = s.scalars(select(OrderRow).where(OrderRow.reference == "R2")).one()
        assert (r2.state, r2.version) == ("New", 2)
        assert (_count(s, AuditRow), _count(s, OutboxRow), _count(s, InboundEventRow)) == snapshot
        assert (_inv(s, "A"), _inv(s, "B")) == stock_before
    _drop_crash_trigger(engine)
    # the key was not consumed by the crashed attempt: the retry applies
    assert service.apply_inbound(
        sessions,
        bundle,
        reference="R2",
        trigger="release",
        source="user",
        idempotency_key="u:R2:release",
        at=T0,
    ).applied
    res = service.apply_inbound(sessions, bundle, idempotency_key="u:rts", at=T0, **kwargs)
    assert res.state == "Ready_to_Ship"
    with sessions() as s:
        assert _inv(s, "A") == (0, 0)  # consumed
        assert _inv(s, "B") == (1, 1)  # R1's 2 consumed; R2 holds 1


def test_stale_version_is_retried_then_surfaced(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle
) -> None:
    engine, sessions = db
    _stock(sessions, A=5)
    oid = _import(sessions, bundle, "R1", {"A": 1}).order_id
    bumps = {"left": 2, "busy": 0}

    orders = OrderRow.__table__

    def concurrent_writer(conn: Connection, clause: Any, *_args: Any) -> None:
        # Just before our write of the order, "another process" commits a change to it.
        if bumps["left"] <= 0 or bumps["busy"]:
            return
        writes_order = (isinstance(clause, Update) and clause.table is orders) or (
            # PostgreSQL writes an event's rows in one statement (statements.write_event)
            isinstance(clause, TextClause) and "UPDATE orders" in clause.text
        )
        if not writes_order:
            return
        bumps["left"] -= 1
        bumps["busy"] = 1
        bump = update(OrderRow).where(OrderRow.id == oid).values(version=OrderRow.version + 1)
        try:
            if engine.dialect.name == "sqlite":  # one writer: same connection, same effect
                conn.execute(bump)
            else:
                with engine.begin() as other:
                    other.execute(bump)
        finally:
            bumps["busy"] = 0

    event.listen(engine, "before_execute", concurrent_writer)
    try:
        res = service.apply_inbound(
            sessions,
            bundle,
            order_id=oid,
            trigger="release",
            source="user",
            idempotency_key="u:release",
            at=T0,
        )
        assert res.applied
        assert res.attempts == 3
        bumps["left"] = 100
        with pytest.raises(StaleOrder):
            service.apply_inbound(
                sessions,
                bundle,
                order_id=oid,
                trigger="pack",
                source="user",
                idempotency_key="u:pack",
                at=T0,
            )
    finally:
        event.remove(engine, "before_execute", concurrent_writer)
    with sessions() as s:
        order = s.get(OrderRow, oid)
        assert order is not None
        assert order.state == "RFP"
        assert _count(s, AuditRow, AuditRow.trigger == "release") == 1
        assert _count(s, AuditRow, AuditRow.trigger == "pack") == 0
        assert _count(s, InboundEventRow, InboundEventRow.idempotency_key == "u:pack") == 0


def test_apply_in_session_keeps_the_sessions_objects_current(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle
) -> None:
    """``apply_in_session`` writes through the session's connection: the order, its lines,
    the stock and the promoted Partial order the caller already loaded read what was
    written, the caller can go on changing the order, and a replay is a duplicate."""
    _, sessions = db
    _stock(sessions, A=1)
    _import(sessions, bundle, "R1", {"A": 1})
    assert _import(sessions, bundle, "R2", {"A": 1}, minutes=1).state == "Partial"
    with sessions.begin() as s:
        rows = {r.reference: r for r in s.scalars(select(OrderRow))}
        r1, r2 = rows["R1"], rows["R2"]
        stock = s.get(InventoryRow, "A")
        assert stock is not None
        assert (stock.reserved, r1.lines[0].reserved) == (1, 1)
        r1.channel_state = "cancelled in store"  # pending change: flushed first
        kwargs: dict[str, Any] = {
            "trigger": "buyer_cancel",
            "source": "channel",
            "idempotency_key": "ps:R1:cancel",
            "at": T0,
        }
        res = service.apply_in_session(s, bundle, r1, **kwargs)
        assert (res.outcome, res.state, res.promoted) == ("applied", "Cancel_in_Process", (r2.id,))
        assert (r1.state, r1.version, r1.lines[0].reserved) == ("Cancel_in_Process", 4, 0)
        assert (r2.state, r2.lines[0].reserved, stock.reserved) == ("New", 1, 1)
        r1.channel_state_id = 6
        s.flush()  # the version the ORM holds is the one written: no StaleOrder
        assert service.apply_in_session(s, bundle, r1, **kwargs).duplicate
    with sessions() as s:
        again = s.scalars(select(OrderRow).where(OrderRow.reference == "R1")).one()
        assert (again.channel_state, again.channel_state_id, again.version) == (
            "cancelled in store",
            6,
            5,
        )
        assert _count(s, InboundEventRow, InboundEventRow.idempotency_key == "ps:R1:cancel") == 1
