"""The YAML loader: marks per path for keys and values, duplicates, YAML 1.1 booleans."""

from __future__ import annotations

from engine.spec.source import json_path, load_text


def test_marks_point_at_values_and_keys() -> None:
    doc = load_text("a:\n  b: [x, y]\n  'c d': 1\n", "f.yaml")
    assert doc.problems == []
    assert doc.values[("a", "b", 1)] == (2, 10)
    assert doc.keys[("a", "b")] == (2, 3)
    assert doc.locate(("a", "b"), key=True).line == 2
    loc = doc.locate(("a", "c d"))
    assert (loc.line, loc.column, loc.json_path) == (3, 10, "$.a['c d']")


def test_locate_falls_back_to_the_nearest_ancestor() -> None:
    doc = load_text("a:\n  b: 1\n", "f.yaml")
    loc = doc.locate(("a", "missing", 3))
    assert (loc.line, loc.json_path) == (2, "$.a.missing[3]")


def test_yaml_11_booleans_stay_strings() -> None:
    doc = load_text(
        "states: [yes, no, on, off, Yes, NO, y, n]\nflag: true\nother: False\nq: 'true'\n", "f"
    )
    assert doc.data["states"] == ["yes", "no", "on", "off", "Yes", "NO", "y", "n"]
    assert doc.data["flag"] is True
    assert doc.data["other"] is False
    assert doc.data["q"] == "true"


def test_status_map_keys_named_like_booleans_stay_strings() -> None:
    doc = load_text("outbound:\n  No: On\n  Off: null\n", "f")
    assert doc.data == {"outbound": {"No": "On", "Off": None}}


def test_numbers_and_nulls() -> None:
    doc = load_text("a: 1\nb: 0.2\nc: ~\nd:\ne: 1s\nf: '5'\n", "f")
    assert doc.data == {"a": 1, "b": 0.2, "c": None, "d": None, "e": "1s", "f": "5"}


def test_duplicate_key_is_located_at_the_second_key() -> None:
    doc = load_text("a: 1\nb: 2\na: 3\n", "f.yaml")
    [problem] = doc.problems
    assert problem.code == "spec.duplicate-key"
    assert (problem.location.line, problem.location.column) == (3, 1)
    assert "first defined on line 1" in problem.message
    assert doc.data == {"a": 1, "b": 2}


def test_syntax_error_is_one_located_problem() -> None:
    doc = load_text("a: [1, 2\nb: 3\n", "bad.yaml")
    [problem] = doc.problems
    assert problem.code == "spec.yaml-syntax"
    assert problem.location.file == "bad.yaml"
    assert problem.location.line >= 2
    assert problem.line().startswith("bad.yaml:")


def test_recursive_alias_is_a_problem_not_a_crash() -> None:
    doc = load_text("a: &x [1, *x]\n", "f")
    assert [p.code for p in doc.problems] == ["spec.recursive-alias"]


def test_empty_file() -> None:
    assert [p.code for p in load_text("", "f").problems] == ["spec.empty"]


def test_json_path_rendering() -> None:
    assert json_path(()) == "$"
    assert json_path(("transitions", 0, "source")) == "$.transitions[0].source"
    assert json_path(("inbound", "Payment accepted")) == "$.inbound['Payment accepted']"
