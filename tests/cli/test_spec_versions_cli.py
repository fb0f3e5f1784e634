"""Issue 14: spec changes meet the orders in flight, through the CLI on SQLite and PostgreSQL.

The Packed -> Boxed rename in a copy of the lifecycle (and the channel that names it):
without a migration ``spec check`` names the state, the file and line and the number of
orders, ``omsflow run`` refuses to start in one line; with ``migrations: [{rename: {Packed:
Boxed}}]`` ``spec migrate`` moves the order with an audit row naming the spec change, and
``orders fire REF picked`` works. Every history entry carries its spec version.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from cli import main, omsflow
from engine.runtime import service
from engine.runtime.db import session as dbsession
from engine.runtime.db.tables import AuditRow, OrderRow, OutboxRow, SpecVersionRow
from engine.runtime.inventory import set_on_hand
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.settings import Settings
from engine.runtime.specs import load_bundle

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    dbsession.ensure_schema(db_url)
    return tmp_path


def _run(*args: str) -> Result:
    return CliRunner().invoke(omsflow, list(args), catch_exceptions=True)


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _orders(*refs: str) -> None:
    """Orders in New, through the service, under the specs of the working folder."""
    bundle = load_bundle()
    engine, sessions = dbsession.open_database(Settings.from_env())
    try:
        with sessions.begin() as s:
            set_on_hand(s, "SKU-1", 10, at=T0)
        for ref in refs:
            order = NewOrder(reference=ref, ordered_at=T0, lines=[NewLine("SKU-1", 1)])
            service.create_order(sessions, bundle, order, idempotency_key=f"t:{ref}", at=T0)
    finally:
        engine.dispose()


def _renamed_copy(folder: Path, migrations: str = "") -> None:
    """specs/ and channels/ in the working folder: the bundled ones with Packed renamed."""
    for kind, name in (("specs", "order_lifecycle.yaml"), ("channels", "prestashop.yaml")):
        (folder / kind).mkdir(exist_ok=True)
        text = (REPO / kind / name).read_text(encoding="utf-8")
        text = re.sub(r"\bPacked\b", "Boxed", text)
        if kind == "specs" and migrations:
            text += "\nmigrations:\n" + migrations
        (folder / kind / name).write_text(text, encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(needle):
            return number
    raise AssertionError(needle)


@pytest.mark.slow
def test_packed_to_boxed_without_then_with_a_migration(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _orders("P1", "N1")
    for trigger in ("release", "pack"):
        assert _run("orders", "fire", "P1", trigger).exit_code == 0
    before = json.loads(_run("orders", "show", "P1", "--json").output)
    old_version = before["spec_version"]
    assert old_version
    assert all(h["spec_version"] == old_version for h in before["history"])

    _renamed_copy(env)
    # spec validate: the files are fine, the orders in flight are not
    validated = _run("spec", "validate")
    assert validated.exit_code == 1
    assert "deploy.state-gone" in validated.output

    checked = _run("spec", "check")
    assert checked.exit_code == 1
    line = _line_of(env / "specs" / "order_lifecycle.yaml", "states:")
    problem = [ln for ln in checked.output.splitlines() if "state-gone" in ln]
    assert len(problem) == 1
    assert problem[0].startswith(f"specs/order_lifecycle.yaml:{line}:1: 1 order in state 'Packed'")
    assert "(P1)" in problem[0]
    assert "rename: {Packed: Boxed}" in problem[0]
    doc = json.loads(_run("spec", "check", "--json").output)
    assert [(p["code"], p["orders"]) for p in doc["problems"]] == [("deploy.state-gone", ["P1"])]

    code, out, err = _main(capsys, "run", "--once")
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: omsflow run refuses to start")
    assert "'Packed'" in lines[0]
    assert "spec migrate" in lines[0]
    assert "--allow-stranded" in lines[0]
    assert "Traceback" not in err

    _renamed_copy(env, "  - rename: {Packed: Boxed}\n")
    pending = _run("spec", "check")
    assert pending.exit_code == 1
    assert "deploy.migration-pending" in pending.output
    dry = _run("spec", "migrate", "--dry-run")
    assert dry.exit_code == 0
    assert "would move P1: Packed -> Boxed" in dry.output
    assert json.loads(_run("orders", "show", "P1", "--json").output)["state"] == "Packed"

    migrated = _run("spec", "migrate", "--json")
    assert migrated.exit_code == 0, migrated.output
    report = json.loads(migrated.output)
    assert [(m["reference"], m["from"], m["to"]) for m in report["moved"]] == [
        ("P1", "Packed", "Boxed")
    ]
    assert report["stranded"] == []
    assert _run("spec", "check").exit_code == 0
    again = json.loads(_run("spec", "migrate", "--json").output)
    assert again["moved"] == []  # idempotent

    fired = _run("orders", "fire", "P1", "picked")
    assert fired.exit_code == 0, fired.output
    assert "Boxed -> Ready_to_Ship" in fired.output

    after = json.loads(_run("orders", "show", "P1", "--json").output)
    new_version = report["spec_version"]
    assert new_version != old_version
    assert after["spec_version"] == new_version
    history = [
        (h["trigger"], h["from_state"], h["to_state"], h["spec_version"]) for h in after["history"]
    ]
    assert history == [
        ("import", "Incoming", "New", old_version),
        ("release", "New", "RFP", old_version),
        ("pack", "RFP", "Packed", old_version),
        ("spec_migration", "Packed", "Boxed", new_version),
        ("picked", "Boxed", "Ready_to_Ship", new_version),
    ]
    migration = after["history"][3]
    assert migration["source"] == "system"
    assert "spec change" in migration["spec_change"]
    assert "rename Packed -> Boxed" in (migration["spec_change"])
    # outbox rows name the spec version that queued them; the database kept both specs
    engine, sessions = dbsession.open_database(Settings.from_env())
    try:
        with sessions() as s:
            queued = s.execute(
                select(OutboxRow.payload, OutboxRow.spec_version).where(
                    OutboxRow.order_id == after["id"]
                )
            ).all()
            assert {(p["trigger"], v) for p, v in queued} == {
                ("release", old_version),
                ("picked", new_version),
            }
            kept = {r.version: r for r in s.scalars(select(SpecVersionRow))}
            assert {old_version, new_version} <= set(kept)
            assert "Boxed" in kept[new_version].machine_text
            assert "Boxed" not in kept[old_version].machine_text
            assert kept[new_version].label == "1"
            audit = s.scalars(select(AuditRow).where(AuditRow.trigger == "spec_migration")).one()
            assert audit.spec_version == new_version
            assert s.scalar(select(OrderRow.state).where(OrderRow.reference == "N1")) == "New"
    finally:
        engine.dispose()
    code, out, err = _main(capsys, "run", "--once", "--no-schedule")
    assert code == 0
    assert "refuses" not in err


@pytest.mark.slow
def test_allow_stranded_starts_anyway(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _orders("P2")
    for trigger in ("release", "pack"):
        assert _run("orders", "fire", "P2", trigger).exit_code == 0
    _renamed_copy(env)
    code, _out, err = _main(capsys, "run", "--once", "--no-schedule", "--allow-stranded")
    assert code == 0
    assert "refuses" not in err


@pytest.mark.slow
def test_a_migration_back_before_packed_is_refused_with_the_invariant(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Packed orders merged into RFP would be cancellable again: validate refuses it and
    names the invariant; spec migrate refuses it too and moves nothing."""
    _orders("P3")
    for trigger in ("release", "pack"):
        assert _run("orders", "fire", "P3", trigger).exit_code == 0
    _renamed_copy(env, "  - merge: {into: RFP, states: [Packed]}\n")
    validated = _run("spec", "validate")
    assert validated.exit_code == 1
    refusal = [ln for ln in validated.output.splitlines() if "breaks-invariant" in ln]
    assert len(refusal) == 1
    assert refusal[0].startswith("specs/order_lifecycle.yaml:")
    assert "no_cancel_after_packed" in refusal[0]
    assert "'Packed' to 'RFP'" in refusal[0]
    code, _out, err = _main(capsys, "spec", "migrate")
    assert code != 0
    assert "no_cancel_after_packed" in err
    assert json.loads(_run("orders", "show", "P3", "--json").output)["state"] == "Packed"


def test_a_queued_effect_the_spec_no_longer_knows(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """release queues push_status; a spec whose effects no longer include it strands the
    queued row (named with its order), and rename_effect carries it over."""
    _orders("E1")
    assert _run("orders", "fire", "E1", "release").exit_code == 0
    (env / "specs").mkdir()
    lifecycle = (REPO / "specs" / "order_lifecycle.yaml").read_text(encoding="utf-8")
    (env / "specs" / "order_lifecycle.yaml").write_text(
        lifecycle.replace("push_status", "notify_wms"), encoding="utf-8"
    )
    shutil.copytree(REPO / "channels", env / "channels")
    checked = _run("spec", "check", "--json")
    doc = json.loads(checked.output)
    gone = [p for p in doc["problems"] if p["code"] == "deploy.effect-gone"]
    assert len(gone) == 1
    assert gone[0]["orders"] == ["E1"]
    assert gone[0]["outbox_count"] == 1
    assert "'push_status'" in gone[0]["message"]


@pytest.mark.slow
def test_an_order_the_new_spec_strands_is_served_by_its_own_spec_version(env: Path) -> None:
    """The in-flight rule: no migration declared for Packed, so the Packed order keeps
    being served by the spec version it is on; once it reaches a state the new spec has,
    the newest spec applies again (and the deploy check is clean)."""
    _orders("P4", "R4")
    for ref, triggers in (("P4", ("release", "pack")), ("R4", ("release",))):
        for trigger in triggers:
            assert _run("orders", "fire", ref, trigger).exit_code == 0
    old_version = json.loads(_run("orders", "show", "P4", "--json").output)["spec_version"]
    _renamed_copy(env)
    assert _run("spec", "check").exit_code == 1
    fired = _run("orders", "fire", "P4", "picked")
    assert fired.exit_code == 0, fired.output
    assert "Packed -> Ready_to_Ship" in fired.output
    doc = json.loads(_run("orders", "show", "P4", "--json").output)
    assert doc["history"][-1]["spec_version"] == old_version
    assert doc["spec_version"] == old_version
    # R4 is in RFP, a state the new spec has: the newest spec serves it (pack -> Boxed)
    packed = _run("orders", "fire", "R4", "pack")
    assert packed.exit_code == 0, packed.output
    assert "RFP -> Boxed" in packed.output
    new = json.loads(_run("orders", "show", "R4", "--json").output)
    assert new["spec_version"] not in (None, old_version)
    delivered = _run("orders", "fire", "P4", "handover")
    assert "Ready_to_Ship -> In_transit" in delivered.output
    after = json.loads(_run("orders", "show", "P4", "--json").output)
    assert after["history"][-1]["spec_version"] == new["spec_version"]
    assert _run("spec", "check").exit_code == 0


def test_simulate_from_a_migrated_state_and_the_diagrams_show_the_migration(env: Path) -> None:
    _renamed_copy(env, "  - rename: {Packed: Boxed}\n")
    simulated = _run("spec", "simulate", "--from", "Packed", "--events", "picked,handover")
    assert simulated.exit_code == 0, simulated.output
    lines = simulated.output.splitlines()
    assert lines[1] == "spec_migration: Packed -> Boxed  (declared migration: rename)"
    assert lines[2].startswith("picked: Boxed -> Ready_to_Ship")
    assert lines[-1] == "final state: In_transit"
    doc = json.loads(
        _run("spec", "simulate", "--from", "Packed", "--events", "pack", "--json").output
    )
    assert doc["steps"][0]["migration"] == "rename"
    assert doc["refused"]["state"] == "Boxed"  # pack is not enabled from Boxed
    mermaid = _run("spec", "graph", "--format", "mermaid").output
    assert "    Packed --> Boxed : migration rename" in mermaid
    assert 'state "Packed (gone)" as Packed' in mermaid
    dot = _run("spec", "graph", "--format", "dot").output
    assert '"Packed" -> "Boxed" [label="migration rename", style=dashed];' in dot
