"""Attention flags through the one rule, on SQLite and PostgreSQL: a refused WMS event
flags its order in the state it was refused in and the flag clears when the order moves on;
a dead effect's flag is sticky; ``acknowledge_attention`` clears with an audit row; a late
event is recorded without a flag; an unknown trigger is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import LifecycleError, UnknownTrigger
from engine.runtime import service
from engine.runtime.db.tables import AuditRow, InboundEventRow, OrderRow, OutboxRow
from engine.runtime.inventory import set_on_hand
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
        yield factory


def _order(sessions: sessionmaker[Session], bundle: Bundle, ref: str) -> None:
    with sessions.begin() as s:
        set_on_hand(s, f"SKU-{ref}", 5, at=T0)
    order = NewOrder(reference=ref, ordered_at=T0, lines=[NewLine(f"SKU-{ref}", 1)])
    assert service.create_order(sessions, bundle, order, idempotency_key=f"t:{ref}", at=T0).applied


def _fire(
    sessions: sessionmaker[Session], bundle: Bundle, ref: str, trigger: str, source: Any, key: str
) -> service.ApplyResult:
    return service.apply_inbound(
        sessions,
        bundle,
        reference=ref,
        trigger=trigger,
        source=source,
        idempotency_key=key,
        at=T0,
    )


def _flag(sessions: sessionmaker[Session], ref: str) -> tuple[bool, str | None, str | None]:
    with sessions() as s:
        row = s.scalars(select(OrderRow).where(OrderRow.reference == ref)).one()
        return row.needs_attention, row.attention_reason, row.attention_state


def _counts(sessions: sessionmaker[Session]) -> tuple[int, ...]:
    with sessions() as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (AuditRow, InboundEventRow, OutboxRow)
        )


def test_a_refusal_flag_clears_when_the_order_moves_on(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    _order(sessions, bundle, "A1")
    refused = _fire(sessions, bundle, "A1", "picked", "wms", "wms:early")
    assert refused.outcome == "refused"
    flagged, reason, state = _flag(sessions, "A1")
    assert (flagged, state) == (True, "New")
    assert reason
    assert "picked" in reason
    # another refusal in the same state keeps it flagged
    _fire(sessions, bundle, "A1", "picked", "wms", "wms:early-2")
    assert _flag(sessions, "A1")[0]
    # the operator releases it: the order moved on, the refused pick no longer applies
    assert _fire(sessions, bundle, "A1", "release", "user", "user:release").applied
    assert _flag(sessions, "A1") == (False, None, None)
    with sessions() as s:  # the refusal itself stays in the history
        audit = [(a.trigger, a.applied) for a in s.scalars(select(AuditRow).order_by(AuditRow.id))]
    assert audit == [("import", True), ("picked", False), ("picked", False), ("release", True)]


def test_an_internal_transition_does_not_clear_a_flag(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    _order(sessions, bundle, "A2")
    assert _fire(sessions, bundle, "A2", "release", "user", "u:1").applied
    assert _fire(sessions, bundle, "A2", "picked", "wms", "w:1").applied
    assert _fire(sessions, bundle, "A2", "buyer_cancel", "channel", "c:1").outcome == "refused"
    assert _flag(sessions, "A2")[2] == "Ready_to_Ship"
    # the AWB follow-up stays in Ready_to_Ship: the order has not moved on
    assert _fire(sessions, bundle, "A2", "shipment_confirmed", "system", "s:1").applied
    assert _flag(sessions, "A2")[0]
    assert _fire(sessions, bundle, "A2", "handover", "wms", "w:2").applied
    assert not _flag(sessions, "A2")[0]


def test_a_dead_effect_flag_is_sticky_and_acknowledge_clears_it_with_an_audit_row(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    _order(sessions, bundle, "A3")
    assert _fire(sessions, bundle, "A3", "release", "user", "u:1").applied
    with sessions() as s:
        order_id = s.scalars(select(OrderRow.id).where(OrderRow.reference == "A3")).one()
    with sessions.begin() as s:
        assert service.flag_dead_effect(s, order_id, "push_status #9 is dead: 500", at=T0)
    assert _flag(sessions, "A3") == (True, "push_status #9 is dead: 500", None)
    # a later refusal adds its reason, the flag stays sticky
    assert _fire(sessions, bundle, "A3", "delivered", "wms", "w:0").outcome == "refused"
    flagged, reason, state = _flag(sessions, "A3")
    assert (flagged, state) == (True, None)
    assert reason is not None
    assert reason.startswith("push_status #9 is dead: 500; ")
    # moving on does not deliver what the store never got: still flagged
    assert _fire(sessions, bundle, "A3", "picked", "wms", "w:1").applied
    assert _flag(sessions, "A3")[0]
    ack = service.acknowledge_attention(
        sessions, reference="A3", by="ops-ann", note="pushed by hand", at=T0
    )
    assert (ack.reference, ack.state, ack.by) == ("A3", "Ready_to_Ship", "ops-ann")
    assert ack.reason == reason
    assert _flag(sessions, "A3") == (False, None, None)
    with sessions() as s:
        audit = s.scalars(select(AuditRow).order_by(AuditRow.id.desc())).first()
        assert audit is not None
        assert (audit.trigger, audit.from_state, audit.to_state, audit.source, audit.at) == (
            "ack_attention",
            "Ready_to_Ship",
            "Ready_to_Ship",
            "user",
            T0,
        )
        event = s.get(InboundEventRow, audit.event_id)
        assert event is not None
        assert event.payload == {
            "by": "ops-ann",
            "note": "pushed by hand",
            "cleared": reason,
        }
    with pytest.raises(LifecycleError, match="A3 is not flagged"):
        service.acknowledge_attention(sessions, reference="A3", by="ops-ann", at=T0)


def test_a_late_event_is_recorded_as_acknowledged_and_not_flagged(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    _order(sessions, bundle, "A4")
    assert _fire(sessions, bundle, "A4", "release", "user", "u:1").applied
    assert _fire(sessions, bundle, "A4", "picked", "wms", "w:1").applied
    late = _fire(sessions, bundle, "A4", "pack", "wms", "w:2")
    assert (late.outcome, late.state) == ("acknowledged", "Ready_to_Ship")
    assert [b.code for b in late.blockers] == ["late_event"]
    assert _flag(sessions, "A4") == (False, None, None)
    with sessions() as s:
        event = s.scalars(select(InboundEventRow).where(InboundEventRow.idempotency_key == "w:2"))
        assert event.one().outcome == "acknowledged"


def test_an_unknown_trigger_writes_nothing_and_says_what_was_meant(
    sessions: sessionmaker[Session], bundle: Bundle
) -> None:
    _order(sessions, bundle, "A5")
    before = _counts(sessions)
    with sessions() as s:
        version = s.scalars(select(OrderRow.version).where(OrderRow.reference == "A5")).one()
    with pytest.raises(UnknownTrigger) as info:
        _fire(sessions, bundle, "A5", "relase", "user", "user:typo")
    message = str(info.value)
    assert "\n" not in message
    assert "did you mean 'release'?" in message
    assert "allowed from New: stock_short, release, buyer_cancel, seller_cancel" in message
    assert _counts(sessions) == before
    with sessions() as s:
        assert s.scalars(select(OrderRow.version).where(OrderRow.reference == "A5")).one() == (
            version
        )
