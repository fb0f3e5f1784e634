"""Apply one trigger to one order snapshot: ``Applied`` or ``Refused``, never IO.

Refusal is an outcome, not an exception: the blockers say whether the trigger is unknown,
not allowed from the order's state, or stopped by a named guard.
"""

from __future__ import annotations

from datetime import datetime

from engine.core.effects import is_local
from engine.core.machine import CompiledMachine, Subject, fire
from engine.core.outcome import (
    Applied,
    AuditRecord,
    Blocker,
    Effect,
    OrderSnapshot,
    Outcome,
    Refused,
)
from engine.spec.model import TransitionSpec


def _refused(trigger: str, state: str, blockers: list[Blocker], at: datetime) -> Refused:
    audit = AuditRecord(
        trigger=trigger,
        from_state=state,
        to_state=state,
        applied=False,
        at=at,
        blockers=tuple(blockers),
    )
    return Refused(trigger=trigger, state=state, blockers=tuple(blockers), audit=audit)


def effects_of(transition: TransitionSpec) -> tuple[Effect, ...]:
    """The ``Effect`` values a transition declares, in order."""
    return tuple(
        Effect(kind=e.kind, params=dict(e.params), then=e.then, local=is_local(e.kind))
        for e in transition.effects
    )


def apply_event(
    compiled: CompiledMachine, snapshot: OrderSnapshot, trigger: str, *, at: datetime
) -> Outcome:
    """Fire ``trigger`` on the order described by ``snapshot``.

    Args:
        compiled: from ``compile_machine``.
        snapshot: the order's state and guard facts (``assume`` forces guards by name).
        trigger: the trigger name.
        at: when the event happened (the core reads no clock).

    Returns:
        ``Applied`` (new state, effects, audit record) or ``Refused`` (blockers with code
        ``unknown_trigger``, ``not_allowed`` or ``guard_failed``; the state is kept). A
        trigger the spec declares late from the order's state (``late_events``) is a
        ``Refused`` whose one blocker is ``late_event`` (``Refused.late``): a no-op.
    """
    state = snapshot.state
    if trigger not in compiled.triggers:
        known = tuple(compiled.spec.triggers)
        return _refused(trigger, state, [Blocker.unknown_trigger(trigger, known)], at)
    if state not in compiled.states:
        blocker = Blocker(
            "not_allowed",
            f"'{state}' is not a state of machine {compiled.spec.name}",
            {"trigger": trigger, "state": state},
        )
        return _refused(trigger, state, [blocker], at)
    if not compiled.candidates(trigger, state):
        late = compiled.late.get((trigger, state))
        if late is not None:
            # Declared in the spec: the order is already past this trigger (a warehouse
            # reporting picked, then packed). A no-op to acknowledge, not a problem.
            blocker = Blocker.late_event(trigger, state, late.after, late.description)
            return _refused(trigger, state, [blocker], at)
        blocker = Blocker.not_allowed(trigger, state)
        rule = compiled.forbidden.get((trigger, state))
        if rule is not None:
            # Name the declared rule, so an operator reads why, not only that.
            why = f" ({rule.id}: {rule.description})" if rule.description else f" ({rule.id})"
            blocker = Blocker(
                blocker.code, blocker.message + why, {**blocker.params, "invariant": rule.id}
            )
        return _refused(trigger, state, [blocker], at)

    subject = Subject(state=state, snapshot=snapshot, trigger=trigger)
    fire(compiled, subject)
    if subject.fired is None:
        blockers = subject.blockers or [
            Blocker("guard_failed", f"no guard allowed '{trigger}'", {"trigger": trigger})
        ]
        return _refused(trigger, state, blockers, at)

    effects = effects_of(subject.fired)
    new_state = subject.state
    audit = AuditRecord(
        trigger=trigger,
        from_state=state,
        to_state=new_state,
        applied=True,
        at=at,
        effects=tuple(e.kind for e in effects),
    )
    return Applied(trigger=trigger, previous=state, state=new_state, effects=effects, audit=audit)
