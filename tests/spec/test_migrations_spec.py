"""The lifecycle's ``migrations:`` in the pure spec layer: schema, builder, meaning checks
and the invariant check against the spec the orders were under."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.core import VOCABULARY
from engine.errors import SpecErrors
from engine.spec import MachineSpec, check_migration_invariants, load_text, parse_machine

LIFECYCLE = (Path(__file__).resolve().parents[2] / "specs" / "order_lifecycle.yaml").read_text(
    encoding="utf-8"
)
BOXED = re.sub(r"\bPacked\b", "Boxed", LIFECYCLE)


def _with(migrations: str, base: str = BOXED) -> str:
    return base + "\nmigrations:\n" + migrations


def _codes(text: str) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        parse_machine(text, "m.yaml", vocabulary=VOCABULARY)
    return [e.code for e in info.value.errors]


def _previous() -> MachineSpec:
    return parse_machine(LIFECYCLE, "old.yaml", vocabulary=VOCABULARY)


def test_every_kind_builds_into_moves() -> None:
    text = _with(
        "  - rename: {Packed: Boxed}\n"
        "  - merge: {into: RFP, states: [Picking, Waiting]}\n"
        "  - removed: {Parked: New}\n"
        "  - rename_effect: {push_state: push_status}\n"
    )
    spec = parse_machine(text, "m.yaml", vocabulary=VOCABULARY)
    assert [(m.kind, m.moves) for m in spec.migrations] == [
        ("rename", (("Packed", "Boxed"),)),
        ("merge", (("Picking", "RFP"), ("Waiting", "RFP"))),
        ("removed", (("Parked", "New"),)),
        ("rename_effect", (("push_state", "push_status"),)),
    ]
    assert spec.state_moves() == {
        "Packed": "Boxed",
        "Picking": "RFP",
        "Waiting": "RFP",
        "Parked": "New",
    }
    assert spec.effect_moves() == {"push_state": "push_status"}
    assert spec.migrations[0].line == text.splitlines().index("  - rename: {Packed: Boxed}") + 1


def test_a_migration_out_of_a_state_the_spec_still_has_is_refused() -> None:
    assert _codes(_with("  - rename: {RFP: Boxed}\n")) == ["spec.migration-source-exists"]


def test_a_migration_into_an_unknown_or_pseudo_state_is_refused() -> None:
    with pytest.raises(SpecErrors) as info:
        parse_machine(_with("  - rename: {Packed: Boxd}\n"), "m.yaml", vocabulary=VOCABULARY)
    (error,) = info.value.errors
    assert error.code == "spec.unknown-state"
    assert "Boxed" in (error.hint or "")
    assert _codes(_with("  - removed: {Packed: Incoming}\n")) == ["spec.migration-to-pseudo"]


def test_two_kinds_in_one_entry_and_twice_the_same_state_are_refused() -> None:
    with pytest.raises(SpecErrors) as info:
        parse_machine(
            _with("  - {rename: {Packed: Boxed}, removed: {Packed: RFP}}\n"),
            "m.yaml",
            vocabulary=VOCABULARY,
        )
    (error,) = info.value.errors
    assert error.code == "spec.invalid-value"
    assert "one of rename, removed, merge, rename_effect" in error.message
    codes = _codes(_with("  - rename: {Packed: Boxed}\n  - removed: {Packed: RFP}\n"))
    assert codes == ["spec.duplicate-migration"]


def test_an_effect_rename_names_a_known_effect() -> None:
    assert _codes(_with("  - rename_effect: {push_state: push_stat}\n")) == ["spec.unknown-effect"]


def test_a_move_back_before_an_invariant_is_refused_naming_it() -> None:
    text = _with("  - merge: {into: RFP, states: [Packed]}\n")
    spec = parse_machine(text, "m.yaml", vocabulary=VOCABULARY)
    problems = check_migration_invariants(spec, load_text(text, "m.yaml"), _previous())
    assert len(problems) == 1
    (problem,) = problems
    assert problem.code == "spec.migration-breaks-invariant"
    assert "no_cancel_after_packed" in problem.message
    assert problem.location.line == len(text.splitlines())


@pytest.mark.parametrize(
    "migration", ["  - rename: {Packed: Boxed}\n", "  - removed: {Packed: Ready_to_Ship}\n"]
)
def test_moves_that_keep_the_invariant_pass(migration: str) -> None:
    text = _with(migration)
    spec = parse_machine(text, "m.yaml", vocabulary=VOCABULARY)
    assert check_migration_invariants(spec, load_text(text, "m.yaml"), _previous()) == []
