"""The edges of the fulfilment flow over real HTTP (sandbox store, WMS receiver, WMS
endpoint, dispatcher) on SQLite and PostgreSQL: replays, forged requests, refusals,
cancellations before and after Packed, seller cancellations, and the store being down."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli import omsflow
from engine.runtime.db.tables import AuditRow, InboundEventRow, OutboxRow
from engine.runtime.inventory import levels
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.wms.client import send_event
from engine.runtime.wms.signing import sign_request

from .conftest import SECRET
from .story import World, world


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def w(db_url: str, bundle: Bundle, tmp_path: Path) -> Iterator[World]:
    with world(db_url, bundle, tmp_path) as it:
        # settle what the import queued (stock pushes) so each test counts its own writes
        assert it.dispatch().dead == 0
        yield it


def _released(w: World, n: int = 1) -> list[int]:
    exts = w.orders_in("New")[:n]
    for ext in exts:
        assert w.fire(ext, "release").applied
    assert w.dispatch().dead == 0
    assert [w.store_state(e) for e in exts] == ["Processing in progress"] * n
    return exts


def _counts(w: World) -> tuple[int, int, int]:
    with w.sessions() as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (AuditRow, InboundEventRow, OutboxRow)
        )


@pytest.mark.slow
def test_the_same_signed_event_three_times_is_one_transition_and_one_store_post(
    w: World,
) -> None:
    (ext,) = _released(w)
    ref = w.order(ext).reference
    body = json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "picked",
            "order_reference": ref,
            "occurred_at": "2025-03-01T10:00:00+00:00",
        }
    ).encode()
    headers = {"Content-Type": "application/json", **sign_request(SECRET, body, time.time())}
    posts = w.history_posts()
    responses = [
        httpx.post(w.receiver.url + "/wms/events", content=body, headers=headers) for _ in range(3)
    ]
    answers = [r.json() for r in responses]
    assert [r.status_code for r in responses] == [202, 202, 202]
    assert answers[0]["outcome"] == "applied"
    assert answers[1] == answers[0] == answers[2]  # the first answer, given again
    assert [r.headers.get("Idempotent-Replay") for r in responses] == [None, "true", "true"]
    assert w.dispatch().dead == 0
    assert w.store_state(ext) == "Shipped"
    assert w.history_posts() == posts + 1  # one order_histories POST: Shipped, once
    picked = [a for a in w.audit(ext) if a[0] == "picked"]
    assert picked == [("picked", "RFP", "Ready_to_Ship", True, "wms")]
    assert len(w.wms.bodies()) == 1


@pytest.mark.slow
def test_forged_requests_change_nothing_anywhere(w: World) -> None:
    (ext,) = _released(w)
    ref = w.order(ext).reference
    before, posts = _counts(w), w.history_posts()
    body = json.dumps(
        {
            "event_id": "forged-1",
            "type": "picked",
            "order_reference": ref,
            "occurred_at": "2025-03-01T10:00:00Z",
        }
    ).encode()
    for headers in ({}, sign_request("not-the-secret", body, time.time())):
        response = httpx.post(w.receiver.url + "/wms/events", content=body, headers=headers)
        assert response.status_code == 401
    assert _counts(w) == before
    stats = w.dispatch()
    assert stats.leased == 0
    assert (w.order(ext).state, w.store_state(ext), w.history_posts()) == (
        "RFP",
        "Processing in progress",
        posts,
    )
    assert w.wms.bodies() == []


@pytest.mark.slow
def test_picked_while_new_is_refused_recorded_and_flagged(w: World) -> None:
    ext = w.orders_in("New")[0]
    order = w.order(ext)
    status, answer = send_event(w.receiver.url, SECRET, "picked", order.reference)
    assert (status, answer["outcome"], answer["state"]) == (409, "refused", "New")
    after = w.order(ext)
    assert (after.state, after.needs_attention) == ("New", True)
    assert after.attention_reason == answer["detail"]
    assert w.audit(ext)[-1] == ("picked", "New", "New", False, "wms")
    assert w.dispatch().leased == 0
    assert w.store_state(ext) == "Payment accepted"


def _attention(db_url: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", db_url)
    res = CliRunner().invoke(omsflow, ["orders", "list", "--attention", "--json"])
    assert res.exit_code == 0, res.output
    rows: list[dict[str, object]] = json.loads(res.stdout)["orders"]
    return rows


@pytest.mark.slow
def test_a_store_cancellation_after_packed_is_refused_recorded_and_listed(
    w: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ext,) = _released(w)
    ref = w.order(ext).reference
    assert send_event(w.receiver.url, SECRET, "packed", ref)[1]["state"] == "Packed"
    w.store_marks(ext, "Canceled")
    counts = w.sync()
    assert counts.get("changes_refused") == 1
    order = w.order(ext)
    assert order.state == "Packed"
    assert order.needs_attention
    assert all(line.reserved == line.quantity for line in order.lines)  # still held
    assert w.audit(ext)[-1] == ("buyer_cancel", "Packed", "Packed", False, "channel")
    listed = {r["reference"]: r for r in _attention(db_url, monkeypatch)}
    assert listed[ref]["state"] == "Packed"
    assert listed[ref]["attention_reason"] == order.attention_reason
    assert order.attention_reason == (
        "'buyer_cancel' is not allowed from state Packed (no_cancel_after_packed: "
        "No cancellation once the order is Packed or anything after it.)"
    )
    # the order can still ship: the refusal changed nothing but the flag
    assert send_event(w.receiver.url, SECRET, "picked", ref)[1]["state"] == "Ready_to_Ship"


@pytest.mark.slow
def test_a_store_cancellation_before_packed_releases_stock_and_tells_the_wms(w: World) -> None:
    (ext,) = _released(w)
    order = w.order(ext)
    skus = [line.sku for line in order.lines]
    w.store_marks(ext, "Canceled")
    assert w.sync().get("changes_applied") == 1
    assert w.order(ext).state == "Cancel_in_Process"
    assert all(line.reserved == 0 for line in w.order(ext).lines)
    posts = w.history_posts()
    assert w.dispatch().dead == 0
    assert w.order(ext).state == "Canceled"
    assert w.wms.bodies("cancel") == [{"event": "cancel", "order_reference": order.reference}]
    assert w.history_posts() == posts  # nothing pushed back to the store
    with w.sessions() as s:
        now = levels(s, skus)
    for sku in skus:
        assert w.store_stock(sku) == now[sku].pushable  # the released units were pushed


@pytest.mark.slow
def test_a_seller_cancellation_is_never_pushed_to_the_store(w: World) -> None:
    (ext,) = _released(w)
    ref = w.order(ext).reference
    posts = w.history_posts()
    result = w.fire(ext, "seller_cancel")
    assert result.state == "Cancelled_by_seller_inprocess"
    assert w.dispatch().dead == 0
    assert w.order(ext).state == "Cancelled_by_seller"
    assert w.wms.bodies("cancel") == [{"event": "cancel", "order_reference": ref}]
    assert w.history_posts() == posts
    assert w.store_state(ext) == "Processing in progress"
    pushes = [kind for kind, _ in w.outbox(ext) if kind == "push_status"]
    assert pushes == ["push_status"]  # the release's, nothing for the cancellation


@pytest.mark.slow
def test_when_the_store_is_down_the_effects_wait_and_arrive_once_it_is_back(w: World) -> None:
    (ext,) = _released(w)
    ref = w.order(ext).reference
    posts = w.history_posts()
    assert w.set_faults(error_rate=1.0)["error_rate"] == 1.0
    status, answer = send_event(w.receiver.url, SECRET, "picked", ref)
    assert (status, answer["state"]) == (202, "Ready_to_Ship")  # the receiver needs no store
    stats = w.dispatch(drain=False)
    assert stats.retried >= 1
    assert stats.delivered == 0
    assert stats.dead == 0
    waiting = [(k, s) for k, s in w.outbox(ext) if s != "done"]
    assert waiting == [("push_status", "pending")]
    assert (w.store_state(ext), w.history_posts()) == ("Processing in progress", posts)
    assert w.wms.bodies() == []

    w.set_faults(error_rate=0.0)
    stats = w.dispatch()
    assert stats.dead == 0, stats.errors
    assert w.store_state(ext) == "Shipped"
    assert w.history_posts() == posts + 1
    assert w.store_tracking(ext) == [w.shipment(ext).tracking_id]
    assert [b["tracking_id"] for b in w.wms.bodies()] == [w.shipment(ext).tracking_id]
    assert all(state == "done" for _, state in w.outbox(ext))


@pytest.mark.slow
def test_handover_keeps_the_store_shipped_and_delivered_completes_from_in_transit(
    w: World,
) -> None:
    (ext,) = _released(w)
    ref = w.order(ext).reference
    assert send_event(w.receiver.url, SECRET, "picked", ref)[0] == 202
    assert w.dispatch().dead == 0
    posts = w.history_posts()
    status, answer = send_event(w.receiver.url, SECRET, "handed_over", ref)
    assert (status, answer["state"]) == (202, "In_transit")
    assert w.dispatch().leased == 0
    assert (w.store_state(ext), w.history_posts()) == ("Shipped", posts)
    w.store_marks(ext, "Delivered")
    assert w.sync().get("changes_applied") == 1
    assert w.order(ext).state == "Complete"
