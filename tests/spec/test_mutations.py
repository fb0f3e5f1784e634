"""Random mutations of the shipped specs validate or fail with located SpecErrors only."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.core import VOCABULARY, OrderSnapshot, apply_event, compile_machine
from engine.errors import SpecErrors
from engine.spec import parse_channel, parse_machine
from engine.spec.source import load_text
from tests.spec.helpers import CHANNEL_TEXT, MACHINE_TEXT, shipped_machine

MACHINE_DATA = load_text(MACHINE_TEXT, "m").data
CHANNEL_DATA = load_text(CHANNEL_TEXT, "c").data
LINE = re.compile(r"^[^:]+\.yaml:\d+:\d+: .+ \(at \$[^)]*\).* \[spec\.[a-z-]+\]$")


def _paths_to_dicts(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        out.append(path)
        for k, v in node.items():
            out.extend(_paths_to_dicts(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths_to_dicts(v, (*path, i)))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(
                ["rename_state", "drop_transition", "redirect", "misspell_key", "swap_source"]
            )
        )
        states = [s["name"] for s in MACHINE_DATA["states"]]
        if kind == "misspell_key" or "transitions" not in data:
            dicts = [p for p in _paths_to_dicts(data) if _get(data, p)]
            target = _get(data, draw(st.sampled_from(dicts)))
            key = draw(st.sampled_from(sorted(map(str, target))))
            mangled = draw(st.sampled_from([key + "s", key[:-1] or "x", key[::-1], key.upper()]))
            if mangled not in target:
                target[mangled] = target.pop(key)
        elif kind == "rename_state":
            i = draw(st.integers(0, len(data["states"]) - 1))
            data["states"][i]["name"] = draw(st.sampled_from(["Paked", "No", "New2", "yes"]))
        elif kind == "drop_transition" and data["transitions"]:
            data["transitions"].pop(draw(st.integers(0, len(data["transitions"]) - 1)))
        elif kind == "redirect" and data["transitions"]:
            t = data["transitions"][draw(st.integers(0, len(data["transitions"]) - 1))]
            t.pop("internal", None)
            t["dest"] = draw(st.sampled_from([*states, "Nowhere"]))
        elif kind == "swap_source" and data["transitions"]:
            t = data["transitions"][draw(st.integers(0, len(data["transitions"]) - 1))]
            t["source"] = draw(
                st.lists(st.sampled_from([*states, "Nowhere"]), min_size=1, max_size=3)
            )
    return data


def _assert_located(exc: SpecErrors) -> None:
    assert exc.errors
    for err in exc.errors:
        assert err.location.line >= 1
        assert err.location.column >= 1
        assert LINE.match(err.line()), err.line()


@given(mutated(MACHINE_DATA))
@pytest.mark.slow
def test_mutated_machine_validates_or_fails_located(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        spec = parse_machine(text, "m.yaml", vocabulary=VOCABULARY)
    except SpecErrors as exc:
        _assert_located(exc)
        return
    compiled = compile_machine(spec)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    for trigger in spec.triggers:
        apply_event(compiled, OrderSnapshot(state=spec.initial), trigger, at=at)


@given(mutated(CHANNEL_DATA))
@pytest.mark.slow
def test_mutated_channel_validates_or_fails_located(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        parse_channel(text, "c.yaml", shipped_machine(), vocabulary=VOCABULARY)
    except SpecErrors as exc:
        _assert_located(exc)


@given(st.text(alphabet=st.sampled_from(list("ab:- \n[]{}'\"#&*!|>%@`,?")), max_size=80))
def test_arbitrary_yaml_text_never_crashes(text: str) -> None:
    try:
        parse_machine(text, "m.yaml", vocabulary=VOCABULARY)
    except SpecErrors as exc:
        _assert_located(exc)
