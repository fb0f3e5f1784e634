"""Stateful property: random triggers with random guard outcomes on the compiled lifecycle."""

from __future__ import annotations

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.core import Applied, OrderSnapshot, Refused, apply_event
from engine.spec import reachable
from tests.core.helpers import AT, channel, compiled

SPEC = compiled().spec
TRIGGERS = [*SPEC.triggers, "teleport"]
CANCELS = {"buyer_cancel", "seller_cancel"}
AFTER_PACKED = reachable(SPEC, ["Packed"])
# (trigger, state) pairs the spec's late_events make no-ops: the order is already past them
LATE = {
    (entry.trigger, state) for entry in SPEC.late_events for state in reachable(SPEC, entry.after)
}
CANCEL_STATES = {
    "Cancel_in_Process",
    "Canceled",
    "Cancelled_by_seller_inprocess",
    "Cancelled_by_seller",
}
# At least 200 examples even when a smaller profile is loaded (CI loads 300).
EXAMPLES = max(200, settings().max_examples)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = SPEC.initial
        self.history: list[str] = [self.state]

    @rule(trigger=st.sampled_from(TRIGGERS), reservable=st.booleans())
    def fire(self, trigger: str, reservable: bool) -> None:
        before = self.state
        snap = OrderSnapshot(state=before, assume={"all_lines_reservable": reservable})
        out = apply_event(compiled(), snap, trigger, at=AT)
        if isinstance(out, Refused):
            assert out.state == before
            assert out.audit.to_state == before
            assert out.blockers
            assert not out.audit.applied
            assert out.audit.effects == ()
            if trigger == "teleport":
                assert out.blockers[0].code == "unknown_trigger"
            # a late event is exactly a declared (trigger, state) pair, and nothing else
            assert out.late == ((trigger, before) in LATE), (trigger, before, out.blockers)
            if out.late:
                event(f"late {trigger}")
            return
        assert isinstance(out, Applied)
        assert (trigger, before) not in LATE, f"{trigger} applied where it is declared late"
        assert out.previous == before
        assert before not in SPEC.final_states, "a final state accepted a trigger"
        if before in AFTER_PACKED:
            assert trigger not in CANCELS, f"{trigger} applied in {before}, after Packed"
        declared = [
            t
            for t in SPEC.transitions
            if t.trigger == trigger and before in t.sources and (t.dest or before) == out.state
        ]
        assert declared, "the outcome matches no declared transition"
        assert [e.kind for e in out.effects] in [[e.kind for e in t.effects] for t in declared]
        if trigger == "import":
            assert out.state == ("New" if reservable else "Partial")
        self.state = out.state
        self.history.append(out.state)
        event(f"reached {out.state}")

    @precondition(lambda self: self.state in SPEC.final_states)
    @rule(trigger=st.sampled_from(TRIGGERS))
    def final_accepts_nothing(self, trigger: str) -> None:
        out = apply_event(compiled(), OrderSnapshot(state=self.state), trigger, at=AT)
        assert isinstance(out, Refused)
        assert out.state == self.state

    @invariant()
    def state_is_known_and_mapped(self) -> None:
        assert self.state in SPEC.state_names
        if not SPEC.state(self.state).pseudo:
            assert self.state in channel().status_map.outbound

    @invariant()
    def never_cancelled_once_packed(self) -> None:
        late = [i for i, s in enumerate(self.history) if s in AFTER_PACKED]
        if late:
            assert not CANCEL_STATES & set(self.history[late[0] :])


Lifecycle.TestCase.settings = settings(settings(), max_examples=EXAMPLES, stateful_step_count=30)
TestLifecycle = Lifecycle.TestCase
TestLifecycle.pytestmark = [pytest.mark.slow]  # type: ignore[attr-defined]
