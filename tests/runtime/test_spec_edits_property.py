"""Issue 14, build 4: random spec edits over a database of orders in every state.

Each example renames, removes and adds states and transitions in the lifecycle (and the
channel's status map with it). The edited spec is either refused by validation, or the
deploy check passes exactly when no order or queued effect is stranded, and otherwise
names exactly the stranded orders. When the edit only renames states, the same edit with
``migrations: [{rename: ...}]`` is applied by ``spec migrate`` (on a copy of the
database): the check is clean after it and random walks of the new lifecycle from the
migrated states keep the lifecycle's rules (known states, no cancel after the invariant's
anchor, finals accept nothing).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import SpecErrors
from engine.runtime import service, specdeploy
from engine.runtime.db import session as dbsession
from engine.runtime.db.tables import OrderRow, OutboxRow
from engine.runtime.inventory import set_on_hand
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.specs import Bundle, load_bundle
from engine.spec import reachable
from engine.spec.graph import outgoing

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
EXAMPLES = 100
PATHS: dict[str, tuple[str, ...]] = {
    "New": (),
    "RFP": ("release",),
    "Packed": ("release", "pack"),
    "Ready_to_Ship": ("release", "picked"),
    "In_transit": ("release", "picked", "handover"),
    "Complete": ("release", "picked", "handover", "delivered"),
    "Cancel_in_Process": ("buyer_cancel",),
    "Canceled": ("buyer_cancel", "cancel_confirmed"),
    "Cancelled_by_seller_inprocess": ("seller_cancel",),
    "Cancelled_by_seller": ("seller_cancel", "cancel_confirmed"),
}
CANCELS = {"buyer_cancel", "seller_cancel"}


def _bundled() -> Bundle:
    return load_bundle(REPO / "specs", REPO / "channels")


@pytest.fixture(scope="module")
def orders_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite database with two orders in every state but the pseudo one, made by the
    bundled specs (their version recorded), with their queued effects."""
    path = tmp_path_factory.mktemp("specedits") / "orders.db"
    url = f"sqlite:///{path}"
    dbsession.ensure_schema(url)
    engine = dbsession.make_engine(url)
    factory = dbsession.session_factory(engine)
    bundle = _bundled()
    specdeploy.record_version(factory, bundle, at=T0)
    with factory.begin() as s:
        set_on_hand(s, "SKU-IN", 100, at=T0)
    at = T0
    for state, path_ in [*PATHS.items(), ("Partial", ())]:
        for copy in (1, 2):
            ref = f"{state}-{copy}"
            sku = "SKU-OUT" if state == "Partial" else "SKU-IN"
            order = NewOrder(reference=ref, ordered_at=at, lines=[NewLine(sku, 1)])
            service.create_order(factory, bundle, order, idempotency_key=f"i:{ref}", at=at)
            for trigger in path_:
                at += timedelta(seconds=1)
                result = service.apply_inbound(
                    factory,
                    bundle,
                    reference=ref,
                    trigger=trigger,
                    source="user",
                    idempotency_key=f"e:{ref}:{trigger}",
                    at=at,
                )
                assert result.applied, (ref, trigger, result.blockers)
    with factory() as s:
        states = {r.reference: r.state for r in s.scalars(select(OrderRow))}
    assert states == {f"{st_}-{c}": st_ for st_ in [*PATHS, "Partial"] for c in (1, 2)}
    engine.dispose()
    return path


# ------------------------------------------------------------------ the edits


def _rename(data: Any, old: str, new: str) -> Any:
    """Every state reference to ``old`` (values and status-map keys) renamed."""
    if isinstance(data, dict):
        return {(new if k == old else k): _rename(v, old, new) for k, v in data.items()}
    if isinstance(data, list):
        return [_rename(v, old, new) for v in data]
    return new if data == old else data


def _remove(machine: dict[str, Any], channel: dict[str, Any], name: str) -> None:
    machine["states"] = [s for s in machine["states"] if s["name"] != name]
    kept = []
    for t in machine["transitions"]:
        sources = [t["source"]] if isinstance(t["source"], str) else list(t["source"])
        sources = [s for s in sources if s != name]
        if t.get("dest") == name or not sources:
            continue
        kept.append({**t, "source": sources})
    machine["transitions"] = kept
    machine["invariants"] = [
        i for i in machine.get("invariants", []) if i["forbid"]["from_states_after"] != name
    ]
    late = []
    for le in machine.get("late_events", []):
        after = [le["after"]] if isinstance(le["after"], str) else list(le["after"])
        after = [a for a in after if a != name]
        if after:
            late.append({**le, "after": after})
    machine["late_events"] = late
    channel["status_map"]["outbound"].pop(name, None)


Edit = tuple[str, ...]
STATES = [*PATHS, "Partial"]
edits = st.lists(
    st.one_of(
        st.tuples(st.just("rename"), st.sampled_from(STATES), st.sampled_from(["Zed", "Qux"])),
        st.tuples(st.just("remove"), st.sampled_from(STATES)),
        st.tuples(st.just("add"), st.sampled_from(["Held", "Review"]), st.sampled_from(STATES)),
        st.tuples(st.just("link"), st.sampled_from(STATES), st.sampled_from(STATES)),
    ),
    min_size=1,
    max_size=3,
)


def _edit(ops: list[Edit]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The edited lifecycle and channel data, and the renames done (old -> new)."""
    machine = yaml.safe_load((REPO / "specs" / "order_lifecycle.yaml").read_text())
    channel = yaml.safe_load((REPO / "channels" / "prestashop.yaml").read_text())
    renames: dict[str, str] = {}
    names = lambda: {s["name"] for s in machine["states"]}  # noqa: E731
    for op in ops:
        if op[0] == "rename" and op[1] in names() and op[2] not in names():
            machine, channel = _rename(machine, op[1], op[2]), _rename(channel, op[1], op[2])
            renames = {o: (op[2] if n == op[1] else n) for o, n in renames.items()}
            renames[op[1]] = op[2]
        elif op[0] == "remove" and op[1] in names():
            _remove(machine, channel, op[1])
            renames = {o: n for o, n in renames.items() if n != op[1]}
        elif op[0] == "add" and op[1] not in names() and op[2] in names():
            machine["states"].append({"name": op[1], "final": True})
            machine["transitions"].append(
                {"trigger": f"to_{op[1].lower()}", "source": op[2], "dest": op[1]}
            )
            channel["status_map"]["outbound"][op[1]] = None
        elif op[0] == "link" and op[1] in names() and op[2] in names():
            machine["transitions"].append(
                {
                    "trigger": f"jump_{op[1].lower()}_{op[2].lower()}",
                    "source": op[1],
                    "dest": op[2],
                }
            )
    return machine, channel, renames


def _write(machine: dict[str, Any], channel: dict[str, Any]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="specedit-"))
    for kind, name, data in (
        ("specs", "order_lifecycle.yaml", machine),
        ("channels", "prestashop.yaml", channel),
    ):
        (folder / kind).mkdir()
        (folder / kind / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def _oracle(factory: sessionmaker[Session], bundle: Bundle) -> set[str]:
    """The orders the edited spec strands, computed from the rows."""
    machine = bundle.machine
    known = set(machine.state_names)
    kinds = {e.kind for t in machine.transitions for e in t.effects} | specdeploy.SYSTEM_EFFECTS
    stranded: set[str] = set()
    with factory() as s:
        for ref, state in s.execute(select(OrderRow.reference, OrderRow.state)):
            if state not in known:
                stranded.add(ref)
                continue
            spec_state = machine.state(state)
            if not (spec_state.final or spec_state.pseudo) and not [
                t for t in outgoing(machine, state) if t.dest is not None
            ]:
                stranded.add(ref)
        for ref, kind, then in s.execute(
            select(OrderRow.reference, OutboxRow.kind, OutboxRow.then_trigger)
            .join(OrderRow, OrderRow.id == OutboxRow.order_id)
            .where(OutboxRow.state.in_(specdeploy.LIVE_OUTBOX))
        ):
            if kind not in kinds or (then is not None and then not in machine.triggers):
                stranded.add(ref)
    return stranded


counts: dict[str, int] = {"examples": 0, "refused": 0, "clean": 0, "stranded": 0, "migrated": 0}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=edits, data=st.data())
@pytest.mark.slow
def test_random_spec_edits_pass_the_check_or_name_the_stranded_orders(
    orders_db: Path, tmp_path: Path, ops: list[Edit], data: st.DataObject
) -> None:
    counts["examples"] += 1
    machine, channel, renames = _edit(ops)
    note(f"edits {ops}, renames {renames}")
    folder = _write(machine, channel)
    try:
        try:
            bundle = load_bundle(folder / "specs", folder / "channels")
        except SpecErrors:
            counts["refused"] += 1
            event("refused by validation")
            return
        url = f"sqlite:///{orders_db}"
        engine = dbsession.make_engine(url)
        factory = dbsession.session_factory(engine)
        try:
            with factory() as s:
                problems = specdeploy.check(s, bundle)
            expected = _oracle(factory, bundle)
        finally:
            engine.dispose()
        reported = {ref for p in problems for ref in p.orders}
        assert reported == expected
        assert (problems == []) == (expected == set())
        for p in problems:  # every line located in the edited files
            assert p.error.location.file.endswith((".yaml",))
            assert p.error.location.line >= 1
        if not problems:
            counts["clean"] += 1
            event("check clean")
            return
        counts["stranded"] += 1
        event("stranded orders reported")
        gone = {ref.rsplit("-", 1)[0] for ref in expected}
        if renames and gone <= set(renames) and _only_renames(ops):
            _migrate_then_walk(orders_db, folder, machine, channel, renames, data)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _only_renames(ops: list[Edit]) -> bool:
    return all(op[0] in ("rename", "add", "link") for op in ops)


def _migrate_then_walk(
    orders_db: Path,
    folder: Path,
    machine: dict[str, Any],
    channel: dict[str, Any],
    renames: dict[str, str],
    data: st.DataObject,
) -> None:
    """The same edit with its renames declared: spec migrate on a copy of the database,
    the check is clean, and random walks from the migrated states keep the rules."""
    machine = {**machine, "migrations": [{"rename": dict(renames)}]}
    migrated = _write(machine, channel)
    copy = migrated / "orders.db"
    shutil.copy(orders_db, copy)
    try:
        bundle = load_bundle(migrated / "specs", migrated / "channels")
        engine = dbsession.make_engine(f"sqlite:///{copy}")
        factory = dbsession.session_factory(engine)
        try:
            report = specdeploy.migrate(factory, bundle, at=T0 + timedelta(days=1))
            moved = {m["reference"]: m["to"] for m in report.moved}
            assert {ref.rsplit("-", 1)[0] for ref in moved} == set(renames) & set(STATES)
            with factory() as s:
                assert specdeploy.check(s, bundle) == []
            counts["migrated"] += 1
            event("migrated, check clean")
            _walk(factory, bundle, moved, data)
        finally:
            engine.dispose()
    finally:
        shutil.rmtree(migrated, ignore_errors=True)


def _walk(
    factory: sessionmaker[Session], bundle: Bundle, moved: dict[str, str], data: st.DataObject
) -> None:
    spec = bundle.machine
    triggers = sorted(spec.triggers)
    guarded = set()
    for inv in spec.invariants:
        guarded |= reachable(spec, [inv.from_states_after])
    at = T0 + timedelta(days=2)
    for ref, state in sorted(moved.items()):
        history = [state]
        for step in range(data.draw(st.integers(0, 6), label=f"steps {ref}")):
            trigger = data.draw(st.sampled_from(triggers), label=f"{ref} #{step}")
            at += timedelta(seconds=1)
            result = service.apply_inbound(
                factory,
                bundle,
                reference=ref,
                trigger=trigger,
                source="user",
                idempotency_key=f"w:{ref}:{step}",
                at=at,
            )
            assert result.state in spec.state_names
            if result.applied:
                assert result.from_state is not None
                assert not spec.state(result.from_state).final
                if trigger in CANCELS:
                    assert result.from_state not in guarded, (ref, history, trigger)
                history.append(result.state or "")


def test_report_example_counts() -> None:
    """Runs after the property (file order): the counts, for the report."""
    if counts["examples"]:
        print(f"\nspec-edit examples: {counts}")
