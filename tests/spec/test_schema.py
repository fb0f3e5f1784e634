"""Bundled schemas: published, closed, in step with the builder's keys; located errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.errors import SpecErrors
from engine.spec import build, parse_channel
from engine.spec.schema import SCHEMA_IDS, schema, schema_text
from tests.spec.helpers import (
    CHANNEL_TEXT,
    MACHINE_TEXT,
    line_of,
    machine_errors,
    replace_once,
    shipped_machine,
)


@pytest.mark.parametrize("kind", ["machine", "channel"])
def test_schema_is_valid_draft_2020_12_with_published_id(kind: str) -> None:
    doc = json.loads(schema_text(kind))
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == SCHEMA_IDS[kind]


@pytest.mark.parametrize(("text", "kind"), [(MACHINE_TEXT, "machine"), (CHANNEL_TEXT, "channel")])
def test_shipped_yaml_points_editors_at_the_schema(text: str, kind: str) -> None:
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={SCHEMA_IDS[kind]}"


def _objects(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            out.append((path, node))
        for k, v in node.items():
            out.extend(_objects(v, f"{path}/{k}"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_objects(v, f"{path}/{i}"))
    return out


@pytest.mark.parametrize("kind", ["machine", "channel"])
def test_every_object_with_properties_is_closed(kind: str) -> None:
    for path, obj in _objects(schema(kind)):
        assert obj.get("additionalProperties") is False, path


def _props(kind: str, *where: str) -> frozenset[str]:
    node: Any = schema(kind)
    for w in where:
        node = node[w]
    return frozenset(node["properties"])


@pytest.mark.parametrize(
    ("keys", "kind", "where"),
    [
        (build.MACHINE_KEYS, "machine", ()),
        (build.STATE_KEYS, "machine", ("$defs", "state")),
        (build.TRANSITION_KEYS, "machine", ("$defs", "transition")),
        (build.EFFECT_KEYS, "machine", ("$defs", "effect", "oneOf", 1)),
        (build.INVARIANT_KEYS, "machine", ("$defs", "invariant")),
        (build.FORBID_KEYS, "machine", ("$defs", "invariant", "properties", "forbid")),
        (build.CHANNEL_KEYS, "channel", ()),
        (build.CONNECTION_KEYS, "channel", ("properties", "connection")),
        (build.SCHEDULE_KEYS, "channel", ("properties", "schedules")),
        (build.MAPPING_KEYS, "channel", ("$defs", "mapping")),
        (build.PRICES_KEYS, "channel", ("properties", "prices")),
        (build.FULFILMENT_KEYS, "channel", ("properties", "fulfilment")),
        (build.SKUS_KEYS, "channel", ("properties", "skus")),
    ],
)
def test_builder_keys_equal_schema_properties(
    keys: frozenset[str], kind: str, where: tuple[Any, ...]
) -> None:
    node: Any = schema(kind)
    for w in where:
        node = node[w]
    assert keys == frozenset(node["properties"])


def test_misspelled_key_points_at_the_key_with_did_you_mean() -> None:
    text = replace_once(
        MACHINE_TEXT, "    guards: [all_lines_reservable]", "    gaurds: [all_lines_reservable]"
    )
    [err] = machine_errors(text).errors
    assert err.code == "spec.unknown-key"
    assert (err.location.line, err.location.column) == (line_of(text, "gaurds:"), 5)
    assert err.location.json_path == "$.transitions[0].gaurds"
    assert err.hint == "did you mean 'guards'?"
    assert err.line().startswith(f"m.yaml:{line_of(text, 'gaurds:')}:5: unknown key 'gaurds'")


def test_misspelled_key_inside_an_effect_object() -> None:
    text = replace_once(MACHINE_TEXT, "{kind: push_status, then:", "{kind: push_status, thne:")
    errs = machine_errors(text).errors
    assert [e.code for e in errs] == ["spec.unknown-key"]
    assert errs[0].hint == "did you mean 'then'?"
    assert errs[0].location.line == line_of(text, "thne:")


def test_missing_required_key_points_at_the_parent() -> None:
    text = replace_once(MACHINE_TEXT, "  - trigger: stock_short\n", "  - trigger_: stock_short\n")
    codes = sorted(e.code for e in machine_errors(text).errors)
    assert codes == ["spec.missing-key", "spec.unknown-key"]


def test_wrong_type_and_bad_duration_are_located() -> None:
    text = replace_once(CHANNEL_TEXT, "new_orders: {every: 5m}", "new_orders: {every: soon}")
    text = replace_once(text, "verify_tls: true", "verify_tls: yes")
    with pytest.raises(SpecErrors) as info:
        parse_channel(text, "c.yaml", shipped_machine())
    errs = info.value.errors
    lines = {e.location.line for e in errs}
    assert line_of(text, "every: soon") in lines
    assert line_of(text, "verify_tls: yes") in lines
    assert all(e.code in {"spec.invalid-value", "spec.invalid-type"} for e in errs)


def test_every_problem_of_a_load_is_collected() -> None:
    text = replace_once(
        MACHINE_TEXT, "    guards: [all_lines_reservable]", "    gaurds: [all_lines_reservable]"
    )
    text = replace_once(text, "  - name: Packed\n", "  - name: Packed\n    finl: true\n")
    assert len(machine_errors(text).errors) == 2
