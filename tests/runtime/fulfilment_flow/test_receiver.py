"""The real WMS receiver over loopback HTTP against SQLite and PostgreSQL: signed events
move orders (one transaction each), a resend gets the first answer again (a refused event
stays refused) and an event id reused with another body is 409, unauthenticated requests
change nothing, refusals are recorded and flag the order, late events (packed after
picked) are acknowledged and recorded without a flag."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from engine.runtime import service
from engine.runtime.db.tables import AuditRow, InboundEventRow, OrderRow, OutboxRow
from engine.runtime.inventory import set_on_hand
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.specs import Bundle
from engine.runtime.wms.client import send_event
from engine.runtime.wms.server import RunningServer
from engine.runtime.wms.signing import sign_request

from .conftest import SECRET, Db

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
AT = "2025-03-01T10:00:00Z"


def _order(db: Db, bundle: Bundle, ref: str, *, release: bool = True) -> None:
    with db.sessions.begin() as s:
        set_on_hand(s, f"SKU-{ref}", 5, at=T0)
    order = NewOrder(reference=ref, ordered_at=T0, lines=[NewLine(f"SKU-{ref}", 2)])
    created = service.create_order(db.sessions, bundle, order, idempotency_key=f"t:{ref}", at=T0)
    assert created.state == "New"
    if release:
        released = service.apply_inbound(
            db.sessions,
            bundle,
            reference=ref,
            trigger="release",
            source="user",
            idempotency_key=f"t:{ref}:release",
            at=T0,
        )
        assert released.state == "RFP"


def _counts(db: Db) -> dict[str, int]:
    with db.sessions() as s:
        return {
            name: int(s.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in (
                ("audit", AuditRow),
                ("inbound", InboundEventRow),
                ("outbox", OutboxRow),
            )
        }


def _order_row(db: Db, ref: str) -> OrderRow:
    with db.sessions() as s:
        row = s.scalars(select(OrderRow).where(OrderRow.reference == ref)).one()
        s.expunge(row)
        return row


def _raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _event(ref: str, type_: str = "picked", event_id: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "type": type_,
        "order_reference": ref,
        "occurred_at": "2025-03-01T10:00:00Z",
    }


def test_picked_moves_a_released_order_to_ready_to_ship_in_one_transaction(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS1")
    before = _counts(db)
    status, answer = send_event(receiver.url, SECRET, "picked", "WMS1", event_id="ev-1")
    assert status == 202
    assert answer["outcome"] == "applied"
    assert answer["state"] == "Ready_to_Ship"
    assert _order_row(db, "WMS1").state == "Ready_to_Ship"
    after = _counts(db)
    assert after["audit"] == before["audit"] + 1
    assert after["inbound"] == before["inbound"] + 1
    with db.sessions() as s:
        event = s.scalars(
            select(InboundEventRow).where(InboundEventRow.idempotency_key == "wms:ev-1")
        ).one()
        assert (event.source, event.trigger, event.outcome) == ("wms", "picked", "applied")
        assert event.payload is not None
        assert event.payload["type"] == "picked"
        kinds = [
            (r.kind, r.then_trigger)
            for r in s.scalars(select(OutboxRow).where(OutboxRow.order_id == event.order_id))
        ]
    assert ("push_status", "shipment_confirmed") in kinds


def test_the_same_event_three_times_is_one_transition(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS2")
    before = _counts(db)
    answers = [
        send_event(receiver.url, SECRET, "picked", "WMS2", event_id="ev-twice", occurred_at=AT)
        for _ in range(3)
    ]
    # every resend gets the first answer again, status and body
    assert [s for s, _ in answers] == [202, 202, 202]
    assert answers[0][1]["outcome"] == "applied"
    assert answers[1][1] == answers[0][1] == answers[2][1]
    after = _counts(db)
    assert after["audit"] == before["audit"] + 1
    assert after["inbound"] == before["inbound"] + 1
    assert after["outbox"] == before["outbox"] + 1  # push_status once (consume is local)
    assert _order_row(db, "WMS2").state == "Ready_to_Ship"


def test_unsigned_wrongly_signed_and_stale_requests_are_401_and_change_nothing(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS3")
    before = _counts(db)
    version = _order_row(db, "WMS3").version
    raw = _raw(_event("WMS3"))
    url = receiver.url + "/wms/events"
    now = time.time()
    attempts = {
        "missing": {},
        "bad_signature": sign_request("another-secret", raw, now),
        "stale": sign_request(SECRET, raw, now - 600),
    }
    for reason, headers in attempts.items():
        response = httpx.post(
            url, content=raw, headers={"Content-Type": "application/json", **headers}
        )
        assert response.status_code == 401, reason
        assert response.json()["reason"] == reason
    assert _counts(db) == before
    row = _order_row(db, "WMS3")
    assert (row.state, row.version, row.needs_attention) == ("RFP", version, False)


def test_an_event_id_reused_with_another_body_is_409_reused_and_changes_nothing(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS4")
    first = send_event(receiver.url, SECRET, "packed", "WMS4", event_id="ev-r", occurred_at=AT)
    assert first[0] == 202
    before = _counts(db)
    # a later, validly signed request reusing the id with another type is not "the same"
    status, answer = send_event(
        receiver.url, SECRET, "picked", "WMS4", event_id="ev-r", occurred_at=AT
    )
    assert (status, answer["outcome"]) == (409, "reused")
    assert answer["detail"].startswith("event id 'ev-r' reused")
    assert "different type" in answer["detail"]
    assert "\n" not in answer["detail"]
    assert _counts(db) == before
    assert _order_row(db, "WMS4").state == "Packed"
    # the same id with the same body is still the first answer
    assert (
        send_event(receiver.url, SECRET, "packed", "WMS4", event_id="ev-r", occurred_at=AT)
        == first
    )


def test_picked_for_an_unknown_order_is_404(db: Db, receiver: RunningServer) -> None:
    before = _counts(db)
    status, answer = send_event(receiver.url, SECRET, "picked", "NOPE-1")
    assert status == 404
    assert answer["outcome"] == "unknown_order"
    assert "NOPE-1" in answer["detail"]
    assert _counts(db) == before


def test_picked_while_new_is_refused_recorded_and_flagged(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS5", release=False)
    before = _counts(db)
    status, answer = send_event(receiver.url, SECRET, "picked", "WMS5", event_id="ev-new")
    assert status == 409
    assert answer["outcome"] == "refused"
    assert answer["state"] == "New"
    assert "New" in answer["detail"]
    row = _order_row(db, "WMS5")
    assert row.state == "New"
    assert row.needs_attention
    assert row.attention_reason == answer["detail"]
    after = _counts(db)
    assert after["audit"] == before["audit"] + 1
    assert after["inbound"] == before["inbound"] + 1
    assert after["outbox"] == before["outbox"]
    with db.sessions() as s:
        audit = s.scalars(
            select(AuditRow).where(AuditRow.order_id == row.id, AuditRow.trigger == "picked")
        ).one()
        assert not audit.applied
        assert (audit.source, audit.from_state, audit.to_state) == ("wms", "New", "New")
    # the same refused event again is refused again, not recorded twice
    again = send_event(receiver.url, SECRET, "picked", "WMS5", event_id="ev-new")
    assert again[0] == 409
    assert _counts(db) == after


def test_a_malformed_event_is_422_naming_the_field(db: Db, receiver: RunningServer) -> None:
    before = _counts(db)
    status, answer = send_event(receiver.url, SECRET, "teleported", "WMS6")
    assert status == 422
    assert answer["field"] == "type"
    assert "teleported" in answer["error"]
    assert _counts(db) == before


def test_handover_and_delivered_finish_the_order(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS7")
    states = [
        send_event(receiver.url, SECRET, t, "WMS7")[1]["state"]
        for t in ("packed", "picked", "handed_over", "delivered")
    ]
    assert states == ["Packed", "Ready_to_Ship", "In_transit", "Complete"]


def _post(receiver: RunningServer, body: dict[str, Any]) -> httpx.Response:
    raw = _raw(body)
    headers = {"Content-Type": "application/json", **sign_request(SECRET, raw, time.time())}
    return httpx.post(receiver.url + "/wms/events", content=raw, headers=headers)


@pytest.mark.slow
def test_a_resent_refused_event_gets_the_same_409_and_body_again(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS8", release=False)
    body = _event("WMS8", "picked", event_id="ev-refused")
    first = _post(receiver, body)
    assert first.status_code == 409
    assert first.json()["outcome"] == "refused"
    assert "Idempotent-Replay" not in first.headers
    after = _counts(db)
    # the WMS resends it (new signature, same body): it must NOT believe it went through
    for _ in range(2):
        again = _post(receiver, body)
        assert again.status_code == 409
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replay"] == "true"
    # key order and the spelling of the offset do not make another body
    respelled = {**body, "occurred_at": "2025-03-01T10:00:00+00:00"}
    reordered = dict(reversed(list(respelled.items())))
    assert _post(receiver, reordered).json() == first.json()
    assert _counts(db) == after
    assert _order_row(db, "WMS8").state == "New"


def test_picked_then_packed_leaves_no_flag_and_answers_2xx(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS9")
    picked = _post(receiver, _event("WMS9", "picked"))
    assert (picked.status_code, picked.json()["state"]) == (202, "Ready_to_Ship")
    before = _counts(db)
    packed_body = _event("WMS9", "packed", event_id="ev-late")
    packed = _post(receiver, packed_body)
    assert packed.status_code == 200
    answer = packed.json()
    assert (answer["outcome"], answer["state"]) == ("acknowledged", "Ready_to_Ship")
    assert "nothing to do" in answer["detail"]
    row = _order_row(db, "WMS9")
    assert (row.state, row.needs_attention, row.attention_reason) == (
        "Ready_to_Ship",
        False,
        None,
    )
    after = _counts(db)
    assert after["audit"] == before["audit"] + 1  # recorded in the history...
    assert after["inbound"] == before["inbound"] + 1
    assert after["outbox"] == before["outbox"]  # ...and nothing to deliver
    with db.sessions() as s:
        event = s.scalars(
            select(InboundEventRow).where(InboundEventRow.idempotency_key == "wms:ev-late")
        ).one()
        assert event.outcome == "acknowledged"
        audit = s.scalars(select(AuditRow).where(AuditRow.event_id == event.id)).one()
        assert (audit.from_state, audit.to_state, audit.applied) == (
            "Ready_to_Ship",
            "Ready_to_Ship",
            False,
        )
        assert [b["code"] for b in audit.blockers] == ["late_event"]
    # a resend of the late event gets the same 200 again
    again = _post(receiver, packed_body)
    assert (again.status_code, again.json()) == (200, answer)


def test_picked_for_a_cancelled_order_is_still_refused_and_flagged(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    _order(db, bundle, "WMS10")
    cancelled = service.apply_inbound(
        db.sessions,
        bundle,
        reference="WMS10",
        trigger="seller_cancel",
        source="user",
        idempotency_key="t:WMS10:cancel",
        at=T0,
    )
    assert cancelled.applied
    answer = _post(receiver, _event("WMS10", "picked"))
    assert (answer.status_code, answer.json()["outcome"]) == (409, "refused")
    assert _order_row(db, "WMS10").needs_attention


def test_an_event_for_an_unknown_order_is_applied_when_resent_after_the_order_exists(
    db: Db, bundle: Bundle, receiver: RunningServer
) -> None:
    body = _event("WMS11", "picked", event_id="ev-early")
    assert _post(receiver, body).status_code == 404  # nothing stored: no answer to keep
    _order(db, bundle, "WMS11")
    late = _post(receiver, body)
    assert (late.status_code, late.json()["outcome"]) == (202, "applied")
