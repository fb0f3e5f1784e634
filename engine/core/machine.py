"""Compile a ``MachineSpec`` once into one ``transitions.Machine`` (a transition table).

One Machine per spec, never one per order: ``model=None``, ``auto_transitions=False``,
``send_event=True``, guards and callbacks are callables (never strings, which transitions
would resolve at fire time). Orders are fired through a throwaway ``Subject`` with
``machine.events[trigger].trigger(subject)``, so no model is ever attached (attaching
many models is quadratic in transitions 0.9).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from transitions import EventData, Machine

from engine.core.guards import GUARDS, evaluate, explain
from engine.core.outcome import Blocker, OrderSnapshot
from engine.spec.graph import reachable
from engine.spec.model import InvariantSpec, LateEventSpec, MachineSpec, TransitionSpec


@dataclass
class Subject:
    """The throwaway model one event is fired on (not slotted: transitions setattr()s)."""

    state: str
    snapshot: OrderSnapshot
    trigger: str = ""
    blockers: list[Blocker] = field(default_factory=list)
    fired: TransitionSpec | None = None


@dataclass(frozen=True)
class CompiledMachine:
    """A machine spec and its one transitions ``Machine``, plus lookup tables."""

    spec: MachineSpec
    machine: Machine
    states: frozenset[str]
    triggers: frozenset[str]
    by_trigger: Mapping[str, Mapping[str, tuple[TransitionSpec, ...]]]
    """trigger -> source state -> candidate transitions, in spec order."""
    forbidden: Mapping[tuple[str, str], InvariantSpec] = field(default_factory=dict)
    """(trigger, state) -> the declared invariant that rules the trigger out there."""
    late: Mapping[tuple[str, str], LateEventSpec] = field(default_factory=dict)
    """(trigger, state) -> the ``late_events`` entry that makes the trigger a no-op there."""

    def allowed(self, state: str) -> tuple[str, ...]:
        """Triggers with a transition from ``state`` (guards aside), in spec order."""
        return tuple(t for t in self.spec.triggers if state in self.by_trigger.get(t, {}))

    def candidates(self, trigger: str, state: str) -> tuple[TransitionSpec, ...]:
        return tuple(self.by_trigger.get(trigger, {}).get(state, ()))


def _guard(name: str, *, negate: bool) -> Callable[[EventData], bool]:
    def check(event: EventData) -> bool:
        subject = cast(Subject, event.model)
        holds = evaluate(name, subject.snapshot)
        ok = not holds if negate else holds
        if not ok:
            why = explain(name, subject.snapshot)
            detail = (
                f"'unless' excludes it ({why})"
                if negate and why
                else ("'unless' excludes it" if negate else why)
            )
            subject.blockers.append(Blocker.guard_failed(subject.trigger, name, detail))
        return ok

    return check


def _recorder(transition: TransitionSpec) -> Callable[[EventData], None]:
    def record(event: EventData) -> None:
        subject = cast(Subject, event.model)
        subject.fired = transition

    return record


def compile_machine(spec: MachineSpec) -> CompiledMachine:
    """Build the one transitions ``Machine`` for a validated ``spec``.

    Raises:
        ValueError: the spec names a guard the core does not provide (validate with
            ``engine.core.VOCABULARY`` first).
    """
    machine = Machine(
        model=None,
        states=list(spec.state_names),
        initial=None,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )
    by_trigger: dict[str, dict[str, list[TransitionSpec]]] = {}
    for t in spec.transitions:
        for g in (*t.guards, *t.unless):
            if g not in GUARDS:
                raise ValueError(
                    f"transition '{t.trigger}' (line {t.line}) names unknown guard '{g}'"
                )
        conditions: list[Any] = [_guard(g, negate=False) for g in t.guards]
        conditions += [_guard(g, negate=True) for g in t.unless]
        machine.add_transition(
            t.trigger,
            list(t.sources),
            t.dest,
            conditions=conditions,
            after=[_recorder(t)],
        )
        for src in t.sources:
            by_trigger.setdefault(t.trigger, {}).setdefault(src, []).append(t)
    forbidden: dict[tuple[str, str], InvariantSpec] = {}
    for inv in spec.invariants:
        for state in sorted(reachable(spec, [inv.from_states_after])):
            for trig in inv.triggers:
                forbidden.setdefault((trig, state), inv)
    late: dict[tuple[str, str], LateEventSpec] = {}
    for entry in spec.late_events:
        for state in sorted(reachable(spec, entry.after)):
            if not by_trigger.get(entry.trigger, {}).get(state):
                late.setdefault((entry.trigger, state), entry)
    return CompiledMachine(
        spec=spec,
        machine=machine,
        states=frozenset(spec.state_names),
        triggers=frozenset(spec.triggers),
        by_trigger={
            trig: {src: tuple(ts) for src, ts in srcs.items()} for trig, srcs in by_trigger.items()
        },
        forbidden=forbidden,
        late=late,
    )


def fire(compiled: CompiledMachine, subject: Subject) -> bool:
    """Fire ``subject.trigger`` on ``subject`` without attaching it to the machine."""
    result: bool = compiled.machine.events[subject.trigger].trigger(subject)
    return result
