"""Named guards: pure functions over an ``OrderSnapshot`` that a spec names in ``guards:``.

A guard returns ``True`` when the transition may fire. ``snapshot.assume`` forces a guard's
outcome by name (``omsflow spec simulate --assume``) and wins over the function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.core.outcome import OrderSnapshot

Guard = Callable[[OrderSnapshot], bool]


def all_lines_reservable(snapshot: OrderSnapshot) -> bool:
    """Every line can be reserved in full now. An order without lines is reservable."""
    return all(line.reservable >= line.quantity for line in snapshot.lines)


def short_lines(snapshot: OrderSnapshot) -> list[str]:
    """SKUs whose line cannot be reserved in full (for blocker messages)."""
    return [line.sku for line in snapshot.lines if line.reservable < line.quantity]


GUARDS: Mapping[str, Guard] = {
    "all_lines_reservable": all_lines_reservable,
}


def evaluate(name: str, snapshot: OrderSnapshot) -> bool:
    """The outcome of guard ``name`` for ``snapshot``, honouring ``snapshot.assume``.

    Raises:
        KeyError: no guard has that name (validated specs never name one).
    """
    if name in snapshot.assume:
        return bool(snapshot.assume[name])
    return GUARDS[name](snapshot)


def explain(name: str, snapshot: OrderSnapshot) -> str:
    """Why guard ``name`` failed, in a few words (empty if nothing useful to say)."""
    if name in snapshot.assume:
        return f"assumed {str(bool(snapshot.assume[name])).lower()}"
    if name == "all_lines_reservable":
        short = short_lines(snapshot)
        return "short: " + ", ".join(short) if short else ""
    return ""
