"""apply_event on the shipped lifecycle: DESIGN.md's table row by row, and every blocker."""

from __future__ import annotations

import pytest

from engine.core import (
    Applied,
    LineFact,
    OrderSnapshot,
    Refused,
    apply_event,
    compile_machine,
)
from engine.core.machine import Subject, fire
from tests.core.helpers import AT, compiled

OK = (LineFact("A", 2, 5), LineFact("B", 1, 1))
SHORT = (LineFact("A", 2, 5), LineFact("B", 3, 1))


def run(state: str, trigger: str, lines: tuple[LineFact, ...] = OK) -> Applied | Refused:
    return apply_event(compiled(), OrderSnapshot(state=state, lines=lines), trigger, at=AT)


def applied(state: str, trigger: str, lines: tuple[LineFact, ...] = OK) -> Applied:
    out = run(state, trigger, lines)
    assert isinstance(out, Applied), out
    return out


@pytest.mark.parametrize(
    ("state", "trigger", "dest"),
    [
        ("New", "stock_short", "Partial"),
        ("New", "release", "RFP"),
        ("RFP", "pack", "Packed"),
        ("RFP", "picked", "Ready_to_Ship"),
        ("Packed", "picked", "Ready_to_Ship"),
        ("RFP", "ready_to_ship", "Ready_to_Ship"),
        ("Packed", "ready_to_ship", "Ready_to_Ship"),
        ("Ready_to_Ship", "handover", "In_transit"),
        ("Ready_to_Ship", "delivered", "Complete"),
        ("In_transit", "delivered", "Complete"),
        ("New", "buyer_cancel", "Cancel_in_Process"),
        ("Partial", "buyer_cancel", "Cancel_in_Process"),
        ("RFP", "buyer_cancel", "Cancel_in_Process"),
        ("New", "seller_cancel", "Cancelled_by_seller_inprocess"),
        ("RFP", "seller_cancel", "Cancelled_by_seller_inprocess"),
        ("Cancel_in_Process", "cancel_confirmed", "Canceled"),
        ("Cancelled_by_seller_inprocess", "cancel_confirmed", "Cancelled_by_seller"),
        ("Partial", "stock_arrived", "New"),
    ],
)
def test_lifecycle_table(state: str, trigger: str, dest: str) -> None:
    out = applied(state, trigger)
    assert (out.previous, out.state) == (state, dest)
    assert out.audit.applied
    assert out.audit.at == AT
    assert out.audit.to_state == dest


def test_import_decided_by_all_lines_reservable() -> None:
    assert applied("Incoming", "import", OK).state == "New"
    assert applied("Incoming", "import", SHORT).state == "Partial"
    assert applied("Incoming", "import", ()).state == "New"  # an empty order is reservable


def test_assume_overrides_the_guard() -> None:
    snap = OrderSnapshot(state="Incoming", lines=OK, assume={"all_lines_reservable": False})
    out = apply_event(compiled(), snap, "import", at=AT)
    assert isinstance(out, Applied)
    assert out.state == "Partial"
    snap = OrderSnapshot(state="Incoming", lines=SHORT, assume={"all_lines_reservable": True})
    out = apply_event(compiled(), snap, "import", at=AT)
    assert isinstance(out, Applied)
    assert out.state == "New"


def test_effects_are_declared_with_local_flag_and_follow_up() -> None:
    out = applied("RFP", "picked")
    assert [(e.kind, e.local, e.then) for e in out.effects] == [
        ("consume_stock", True, None),
        ("push_status", False, "shipment_confirmed"),
    ]
    assert out.audit.effects == ("consume_stock", "push_status")
    cancel = applied("New", "buyer_cancel")
    assert cancel.effects[1].params == {"event": "cancel"}


def test_internal_transition_keeps_the_state() -> None:
    out = applied("In_transit", "shipment_confirmed")
    assert out.state == "In_transit"
    assert [e.kind for e in out.effects] == ["request_awb"]


def test_unknown_trigger() -> None:
    out = run("New", "teleport")
    assert isinstance(out, Refused)
    assert out.state == "New"
    [b] = out.blockers
    assert b.code == "unknown_trigger"
    assert "import" in b.params["known"]


def test_not_allowed_cancel_after_packed() -> None:
    out = run("Packed", "buyer_cancel")
    assert isinstance(out, Refused)
    assert out.state == "Packed"
    assert out.audit.to_state == "Packed"
    assert not out.audit.applied
    assert [b.code for b in out.blockers] == ["not_allowed"]


def test_not_allowed_from_an_unknown_state() -> None:
    out = run("Limbo", "release")
    assert isinstance(out, Refused)
    assert out.blockers[0].code == "not_allowed"


def test_guard_failed_names_the_guard() -> None:
    out = run("Partial", "stock_arrived", SHORT)
    assert isinstance(out, Refused)
    assert out.state == "Partial"
    [b] = out.blockers
    assert b.code == "guard_failed"
    assert b.params["guard"] == "all_lines_reservable"
    assert "all_lines_reservable" in b.message
    assert "B" in b.message


def test_final_states_accept_nothing() -> None:
    c = compiled()
    for state in c.spec.final_states:
        assert c.allowed(state) == ()
        for trigger in c.spec.triggers:
            assert isinstance(run(state, trigger), Refused)


def test_one_machine_per_spec_and_no_model_is_ever_attached() -> None:
    c = compiled()
    for _ in range(50):
        applied("Incoming", "import")
        run("Packed", "buyer_cancel")
    assert c.machine.models == []
    assert c.machine.auto_transitions is False
    assert not any(name.startswith("to_") for name in c.machine.events)


def test_fire_uses_machine_events_trigger_on_a_throwaway_subject() -> None:
    """Pins the firing choice: ``machine.events[trigger].trigger(subject)`` without add_model."""
    c = compiled()
    subject = Subject(state="New", snapshot=OrderSnapshot(state="New"), trigger="release")
    assert fire(c, subject) is True
    assert subject.state == "RFP"
    assert subject.fired is not None
    assert subject.fired.trigger == "release"
    assert c.machine.models == []
    assert not hasattr(subject, "may_release")  # add_model would have decorated it


def test_compile_rejects_a_guard_the_core_does_not_know() -> None:
    from dataclasses import replace

    spec = compiled().spec
    bad = replace(spec, transitions=(replace(spec.transitions[0], guards=("nope",)),))
    with pytest.raises(ValueError, match="nope"):
        compile_machine(bad)


def test_a_refusal_ruled_out_by_an_invariant_names_the_rule() -> None:
    from datetime import UTC, datetime

    from engine.core import apply_event
    from engine.core.outcome import OrderSnapshot, Refused
    from engine.runtime.specs import load_bundle

    compiled = load_bundle().compiled
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for state in ("Packed", "Ready_to_Ship", "In_transit"):
        out = apply_event(compiled, OrderSnapshot(state=state), "buyer_cancel", at=at)
        assert isinstance(out, Refused)
        assert out.blockers[0].code == "not_allowed"
        assert out.blockers[0].params["invariant"] == "no_cancel_after_packed"
        assert "no_cancel_after_packed" in out.blockers[0].message
    # A refusal no invariant explains carries no invariant.
    out = apply_event(compiled, OrderSnapshot(state="New"), "pack", at=at)
    assert isinstance(out, Refused)
    assert "invariant" not in out.blockers[0].params


def test_a_late_warehouse_event_is_a_no_op_the_spec_declares() -> None:
    # picked then packed (the usual order on a floor): packed finds the order past it
    out = run("Ready_to_Ship", "pack")
    assert isinstance(out, Refused)
    assert out.late
    [b] = out.blockers
    assert b.code == "late_event"
    assert b.params == {"trigger": "pack", "state": "Ready_to_Ship", "after": ["Packed"]}
    assert out.state == out.audit.to_state == "Ready_to_Ship"
    for state, trigger in (("Complete", "delivered"), ("Complete", "picked")):
        late = run(state, trigger)
        assert isinstance(late, Refused), (state, trigger)
        assert late.late, (state, trigger)


def test_an_event_that_does_not_fit_is_still_a_refusal_not_a_late_one() -> None:
    # picked on a cancelled order, or packed before release: a real problem
    for state, trigger in (("Canceled", "picked"), ("New", "pack"), ("Packed", "buyer_cancel")):
        out = run(state, trigger)
        assert isinstance(out, Refused)
        assert not out.late
        assert out.blockers[0].code == "not_allowed"
