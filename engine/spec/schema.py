"""The bundled JSON Schemas and schema validation that yields located ``SpecError``s.

Schemas ship inside the package (``engine/spec/schemas``) and are read through
``importlib.resources``. Every schema error becomes one located problem with a stable code;
an unknown key points at the key itself and names the closest allowed key.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from engine.errors import SpecError
from engine.spec.source import Document, did_you_mean

if TYPE_CHECKING:  # jsonschema is imported on first validation (0.1 s a process otherwise)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_IDS = {
    "machine": "https://omsflow.dev/schemas/machine.v1.json",
    "channel": "https://omsflow.dev/schemas/channel.v1.json",
    "oms": "https://omsflow.dev/schemas/oms.v1.json",
}
"""Bundled schemas: the two spec kinds, and the OMS model the channel mappings fill
(``oms``: records and their fields, see ``engine.spec.oms``)."""


@cache
def schema_text(kind: str) -> str:
    """The schema document for ``machine``, ``channel`` or ``oms``, as shipped."""
    if kind not in SCHEMA_IDS:
        raise ValueError(f"unknown schema kind {kind!r}; expected one of {sorted(SCHEMA_IDS)}")
    return (resources.files("engine.spec") / "schemas" / f"{kind}.v1.json").read_text("utf-8")


@cache
def schema(kind: str) -> dict[str, Any]:
    """The parsed schema for ``machine``, ``channel`` or ``oms``."""
    doc: dict[str, Any] = json.loads(schema_text(kind))
    return doc


@cache
def _validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    s = schema(kind)
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _leaf_errors(error: ValidationError) -> list[ValidationError]:
    """For oneOf/anyOf, the branch errors that match the instance's shape."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    # Prefer errors from branches whose type fits, i.e. anything but a top-level type error.
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errs
        for errs in by_branch.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    if len(fitting) == 1:
        out: list[ValidationError] = []
        for sub in fitting[0]:
            out.extend(_leaf_errors(sub))
        return out
    return [error]


def _allowed_keys(error: ValidationError) -> list[str]:
    props = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    return list(props)


_TYPE_WORDS = {
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a set of keys and values",
    "array": "a list",
    "null": "empty",
}


def _expected(schema_node: Any) -> str | None:
    """What a schema node wants, in the integrator's words (``x-expected``), if it says."""
    if isinstance(schema_node, dict):
        text = schema_node.get("x-expected")
        return str(text) if text else None
    return None


def _translate(error: ValidationError, doc: Document) -> list[SpecError]:
    path = list(error.absolute_path)
    v = error.validator
    shown = _short(error.instance)
    if v == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(error)
        extras = [k for k in error.instance if k not in allowed]
        return [
            doc.error(
                "spec.unknown-key",
                f"unknown key '{k}'",
                [*path, k],
                key=True,
                hint=did_you_mean(str(k), allowed),
            )
            for k in extras
        ]
    if v == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        return [doc.error("spec.missing-key", f"'{k}' is required here", path) for k in missing]
    if v == "enum":
        choices = [str(c) for c in error.validator_value]
        hint = did_you_mean(str(error.instance), choices)
        return [
            doc.error(
                "spec.invalid-value",
                f"{shown} is not one of: {', '.join(choices)}",
                path,
                hint=hint,
            )
        ]
    if v == "type":
        want = error.validator_value
        wants = want if isinstance(want, list) else [want]
        want_text = " or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in wants)
        return [doc.error("spec.invalid-type", f"{shown} is not {want_text}", path)]
    expected = _expected(error.schema)
    if v == "pattern":
        wanted = expected or f"of the form {error.validator_value!r}"
        return [doc.error("spec.invalid-value", f"{shown} is not {wanted}", path)]
    if v in ("minimum", "exclusiveMinimum"):
        word = "at least" if v == "minimum" else "more than"
        return [
            doc.error(
                "spec.invalid-value",
                f"{shown} is too small: must be {word} {error.validator_value}",
                path,
            )
        ]
    if v in ("minItems", "minLength"):
        what = "item" if v == "minItems" else "character"
        n = error.validator_value
        return [
            doc.error(
                "spec.invalid-value",
                f"{shown} is too short: give at least {n} {what}{'s' if n != 1 else ''}",
                path,
            )
        ]
    if v in ("minProperties", "maxProperties") and expected:
        return [doc.error("spec.invalid-value", f"{shown} is not {expected}", path)]
    if v in ("oneOf", "anyOf"):
        wanted = expected or "valid here"
        return [doc.error("spec.invalid-value", f"{shown} is not {wanted}", path)]
    return [doc.error("spec.invalid-value", error.message, path)]


def _refused_paths(error: ValidationError) -> list[tuple[Any, ...]]:
    """The parts of the document a schema error makes untrustworthy: the object holding an
    unknown key (a misspelt key may be meant as a real one), the place of a missing key,
    the value itself otherwise. An unknown top-level key refuses only that key."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        if path:
            return [path]
        allowed = _allowed_keys(error)
        return [(k,) for k in error.instance if k not in allowed]
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [(*path, k) for k in error.validator_value if k not in present]
    return [path]


def validate(doc: Document, kind: str) -> list[SpecError]:
    """Every schema problem of ``doc`` as located ``SpecError``s (empty when valid).

    Also records in ``doc.broken`` the parts the schema refused, so the builder and the
    meaning checks can still look at the rest of the file (every problem in one run)."""
    problems: list[SpecError] = []
    broken: set[tuple[Any, ...]] = set(doc.broken)
    for error in _validator(kind).iter_errors(doc.data):
        for leaf in _leaf_errors(error):
            problems.extend(_translate(leaf, doc))
            broken.update(_refused_paths(leaf))
    doc.broken = frozenset(broken)
    return problems
