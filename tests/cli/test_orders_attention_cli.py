"""``orders fire`` with a mistyped trigger and ``orders ack``: through click and ``main()``
(the error boundary), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from cli import main, omsflow
from engine.runtime import service
from engine.runtime.db import session as dbsession
from engine.runtime.db.tables import AuditRow, InboundEventRow, OrderRow, OutboxRow
from engine.runtime.inventory import set_on_hand
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.settings import Settings
from engine.runtime.specs import load_bundle

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)


def _run(*args: str) -> Result:
    return CliRunner().invoke(omsflow, list(args), catch_exceptions=True)


def _order(ref: str, *, refused_pick: bool = False) -> None:
    """An order in New (optionally flagged by a refused WMS pick), through the service."""
    bundle = load_bundle()
    engine, sessions = dbsession.open_database(Settings.from_env())
    try:
        with sessions.begin() as s:
            set_on_hand(s, f"SKU-{ref}", 3, at=T0)
        order = NewOrder(reference=ref, ordered_at=T0, lines=[NewLine(f"SKU-{ref}", 1)])
        service.create_order(sessions, bundle, order, idempotency_key=f"t:{ref}", at=T0)
        if refused_pick:
            service.apply_inbound(
                sessions,
                bundle,
                reference=ref,
                trigger="picked",
                source="wms",
                idempotency_key=f"wms:{ref}",
                at=T0,
            )
    finally:
        engine.dispose()


def _counts() -> tuple[int, int, int, int]:
    engine, sessions = dbsession.open_database(Settings.from_env())
    try:
        with sessions() as s:
            version = s.scalars(select(func.sum(OrderRow.version))).one()
            return (
                *(
                    int(s.scalar(select(func.count()).select_from(m)) or 0)
                    for m in (AuditRow, InboundEventRow, OutboxRow)
                ),
                int(version or 0),
            )  # type: ignore[return-value]
    finally:
        engine.dispose()


def test_a_mistyped_trigger_writes_nothing_and_suggests_the_right_one(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _order("F1")
    before = _counts()
    with pytest.raises(SystemExit) as info:
        main(["orders", "fire", "F1", "relase"])
    assert info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: order F1: 'relase' is not a trigger of order_lifecycle (did you mean "
        "'release'?); allowed from New: stock_short, release, buyer_cancel, seller_cancel"
    ]
    assert _counts() == before  # no audit row, no event row, no version bump
    shown = json.loads(_run("orders", "show", "F1", "--json").stdout)
    assert [h["trigger"] for h in shown["history"]] == ["import"]


def test_a_late_manual_trigger_is_acknowledged_not_refused(env: None) -> None:
    _order("F2")
    assert _run("orders", "fire", "F2", "release").exit_code == 0
    assert _run("orders", "fire", "F2", "ready_to_ship").exit_code == 0
    late = _run("orders", "fire", "F2", "pack")
    assert late.exit_code == 0, late.output
    assert late.stdout.startswith("order F2: pack: 'pack' came after the order was already")
    shown = json.loads(_run("orders", "show", "F2", "--json").stdout)
    assert shown["history"][-1]["outcome"] == "acknowledged"
    assert not shown["needs_attention"]
    text = _run("orders", "show", "F2").stdout
    assert "\tpack\tReady_to_Ship -> Ready_to_Ship\tacknowledged: 'pack' came after" in text


def test_orders_ack_clears_the_flag_and_keeps_who_when_and_why(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _order("K1", refused_pick=True)
    _order("K2", refused_pick=True)
    listed = json.loads(_run("orders", "list", "--attention", "--json").stdout)
    assert [o["reference"] for o in listed["orders"]] == ["K1", "K2"]
    reason = listed["orders"][0]["attention_reason"]
    done = _run("orders", "ack", "K1", "--note", "picked the wrong bin", "--by", "ann", "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert (doc["reference"], doc["state"], doc["by"], doc["note"], doc["cleared"]) == (
        "K1",
        "New",
        "ann",
        "picked the wrong bin",
        reason,
    )
    listed = json.loads(_run("orders", "list", "--attention", "--json").stdout)
    assert [o["reference"] for o in listed["orders"]] == ["K2"]
    shown = json.loads(_run("orders", "show", "K1", "--json").stdout)
    last = shown["history"][-1]
    assert (last["trigger"], last["by"], last["note"], last["cleared"], last["source"]) == (
        "ack_attention",
        "ann",
        "picked the wrong bin",
        reason,
        "user",
    )
    assert last["at"]
    text = _run("orders", "show", "K1").stdout
    assert "attention cleared by ann: picked the wrong bin" in text
    assert "needs attention" not in text
    # acknowledging again is a mistake said in one line
    with pytest.raises(SystemExit) as info:
        main(["orders", "ack", "K1"])
    assert info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: order K1 is not flagged for attention")
    plain = _run("orders", "ack", "K2")
    assert plain.exit_code == 0
    assert plain.stdout.startswith("order K2 (New): attention cleared by ")
