"""Stock and reservation arithmetic: pure functions over in-memory rows (no IO).

A stock row is ``[on hand, reserved]`` (a two-item list the booking changes in place);
``available = on hand - reserved``. An order line holds ``reserved`` units and has had
``consumed`` units taken off on hand (shipped). The runtime reads the rows, calls these,
and writes what changed, in the event's transaction:

- ``snapshot``: the order as the guards see it (each line's ``reservable``);
- ``book``: one local effect (``reserve_stock`` / ``release_stock`` / ``consume_stock``);
- ``needs`` / ``servable``: whether a waiting order can be served now (oldest-first
  promotion asks this of each Partial order in turn);
- ``held_by``: the units lines hold of a SKU (a stock change may not go below what orders
  that cannot be shorted hold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.core.outcome import LineFact, OrderSnapshot

RESERVE = "reserve_stock"
RELEASE = "release_stock"
CONSUME = "consume_stock"

Row = list[int]
"""``[on hand, reserved]`` of one SKU."""


@dataclass
class Line:
    """An order line as it is booked (``id`` 0: not written yet)."""

    id: int
    sku: str
    quantity: int
    reserved: int = 0
    consumed: int = 0

    @property
    def outstanding(self) -> int:
        """Units still to reserve: wanted minus held minus already shipped."""
        return max(0, self.quantity - self.reserved - self.consumed)


def snapshot(
    state: str,
    lines: Sequence[Line],
    stock: Mapping[str, Sequence[int]],
    facts: Mapping[str, Any] | None = None,
) -> OrderSnapshot:
    """The order as the core sees it: a line's ``reservable`` = available stock + what the
    line already holds (minus what earlier lines of the same order need of that SKU). A SKU
    without a row has nothing available."""
    spare = {line.sku: 0 for line in lines}
    for sku in spare:
        row = stock.get(sku)
        if row is not None:
            spare[sku] = row[0] - row[1]
    out = []
    for line in lines:
        out.append(LineFact(line.sku, line.quantity, max(0, spare[line.sku]) + line.reserved))
        spare[line.sku] -= line.outstanding
    return OrderSnapshot(state=state, lines=tuple(out), facts=dict(facts or {}))


def book(
    kind: str, lines: Sequence[Line], stock: MutableMapping[str, Row], *, adopt: bool = False
) -> set[str]:
    """One local effect on ``lines`` and their ``stock`` rows, in place; returns the SKUs
    whose available quantity changed. Reserve holds what a line still needs; release gives
    back what it holds; consume takes the outstanding units off on hand and reserved.
    ``adopt`` (an open order adopted from the store, whose units the store's quantity had
    already taken off): reserving also puts those units back on hand. A row missing from
    ``stock`` is created at ``[0, 0]``."""
    rows = {line.sku: stock.setdefault(line.sku, [0, 0]) for line in lines}
    before = {sku: row[0] - row[1] for sku, row in rows.items()}
    for line in lines:
        row = rows[line.sku]
        if kind == RESERVE:
            need = line.outstanding
            if need > 0:
                row[1] += need
                line.reserved += need
                if adopt:
                    row[0] += need
        elif kind == RELEASE:
            if line.reserved:
                row[1] = max(0, row[1] - line.reserved)
                line.reserved = 0
        elif kind == CONSUME:
            outstanding = line.quantity - line.consumed
            if outstanding <= 0:
                continue
            row[1] = max(0, row[1] - line.reserved)
            row[0] = max(0, row[0] - outstanding)
            line.consumed += outstanding
            line.reserved = 0
    return {sku for sku, row in rows.items() if row[0] - row[1] != before[sku]}


def adopting(stock: Mapping[str, Sequence[int]], lines: Iterable[Line]) -> dict[str, Row]:
    """Copies of ``stock`` with an adopted order's units back on hand (for its guard)."""
    out = {sku: list(row) for sku, row in stock.items()}
    for line in lines:
        if line.sku in out:
            out[line.sku][0] += line.quantity
    return out


def needs(lines: Iterable[Line]) -> dict[str, int]:
    """Units per SKU the lines still have to reserve."""
    out: dict[str, int] = {}
    for line in lines:
        out[line.sku] = out.get(line.sku, 0) + line.outstanding
    return out


def servable(lines: Iterable[Line], stock: Mapping[str, Sequence[int]]) -> bool:
    """Every line can be reserved in full from the available stock (a SKU without a row
    has none). Oldest-first promotion asks this of each waiting order in turn: an older
    order that cannot be served does not block a younger one that can."""
    for sku, qty in needs(lines).items():
        row = stock.get(sku)
        available = row[0] - row[1] if row is not None else 0
        if available < qty:
            return False
    return True


def available(stock: Mapping[str, Sequence[int]], sku: str) -> int:
    """``on hand - reserved`` of ``sku`` (0 without a row)."""
    row = stock.get(sku)
    return row[0] - row[1] if row is not None else 0


def pushable(row: Sequence[int]) -> int:
    """What a store is told: available, never below zero."""
    return max(0, row[0] - row[1])
