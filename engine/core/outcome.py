"""Value types that flow in and out of the pure core: snapshots, events, outcomes.

Nothing here does IO. The runtime builds an ``OrderSnapshot`` from storage, the core's
``apply_event`` returns ``Applied`` or ``Refused``, and the runtime persists the outcome
(state, audit row, outbox rows) in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class LineFact:
    """One order line as the guards see it: how many are wanted and how many can be had."""

    sku: str
    quantity: int
    reservable: int
    """Units the OMS could reserve for this line now (available stock + what it holds already)."""


@dataclass(frozen=True)
class OrderSnapshot:
    """What the core may know about an order when an event is applied."""

    state: str
    lines: tuple[LineFact, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Extra facts for guards (e.g. ``has_wms``); never IO handles."""
    assume: Mapping[str, bool] = field(default_factory=dict)
    """Guard outcomes forced by the caller (``omsflow spec simulate --assume``)."""


@dataclass(frozen=True)
class Effect:
    """Something to do because a transition was applied, e.g. ``push_status``."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    then: str | None = None
    """Follow-up trigger to fire on this order once the effect was delivered successfully."""
    local: bool = False
    """Applied inside the event's transaction (stock bookkeeping), not through the outbox."""


@dataclass(frozen=True)
class Blocker:
    """Why a trigger was not applied. ``code`` is stable: tests and scripts match on it."""

    code: str
    """``unknown_trigger`` | ``not_allowed`` | ``guard_failed`` | ``late_event`` (the order is
    already past the trigger and the spec declares it a no-op there: acknowledged)."""
    message: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def unknown_trigger(cls, trigger: str, known: tuple[str, ...] = ()) -> Blocker:
        return cls(
            "unknown_trigger",
            f"'{trigger}' is not a trigger of this machine",
            {"trigger": trigger, "known": list(known)},
        )

    @classmethod
    def not_allowed(cls, trigger: str, state: str) -> Blocker:
        return cls(
            "not_allowed",
            f"'{trigger}' is not allowed from state {state}",
            {"trigger": trigger, "state": state},
        )

    @classmethod
    def late_event(
        cls, trigger: str, state: str, after: tuple[str, ...], why: str = ""
    ) -> Blocker:
        msg = f"'{trigger}' came after the order was already {state}: nothing to do"
        if why:
            msg += f" ({why})"
        return cls("late_event", msg, {"trigger": trigger, "state": state, "after": list(after)})

    @classmethod
    def guard_failed(cls, trigger: str, guard: str, detail: str = "") -> Blocker:
        msg = f"guard '{guard}' refused '{trigger}'"
        if detail:
            msg += f": {detail}"
        return cls("guard_failed", msg, {"trigger": trigger, "guard": guard})


@dataclass(frozen=True)
class AuditRecord:
    """One audit-trail entry; written for applied *and* refused events."""

    trigger: str
    from_state: str
    to_state: str
    applied: bool
    at: datetime
    effects: tuple[str, ...] = ()
    blockers: tuple[Blocker, ...] = ()


@dataclass(frozen=True)
class Applied:
    """The trigger fired: the order moves to ``state`` and ``effects`` are due."""

    trigger: str
    previous: str
    state: str
    effects: tuple[Effect, ...]
    audit: AuditRecord


@dataclass(frozen=True)
class Refused:
    """The trigger did not fire; the order keeps ``state``. ``blockers`` says why."""

    trigger: str
    state: str
    blockers: tuple[Blocker, ...]
    audit: AuditRecord

    @property
    def late(self) -> bool:
        """The trigger came after the order was already past it, where the spec declares it
        a no-op (``late_events``): to be acknowledged, not treated as a refusal."""
        return bool(self.blockers) and all(b.code == "late_event" for b in self.blockers)


Outcome = Applied | Refused
