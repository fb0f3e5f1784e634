"""The bundled JSON Schemas and schema validation that yields located ``SpecError``s.

Schemas ship inside the package (``engine/spec/schemas``) and are read through
``importlib.resources``. Every schema error becomes one located problem with a stable code;
an unknown key points at the key itself and names the closest allowed key.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from engine.errors import SpecError
from engine.spec.source import Document, did_you_mean

SCHEMA_IDS = {
    "machine": "https://omsflow.dev/schemas/machine.v1.json",
    "channel": "https://omsflow.dev/schemas/channel.v1.json",
}


@cache
def schema_text(kind: str) -> str:
    """The schema document for ``machine`` or ``channel``, as shipped."""
    if kind not in SCHEMA_IDS:
        raise ValueError(f"unknown schema kind {kind!r}; expected one of {sorted(SCHEMA_IDS)}")
    return (resources.files("engine.spec") / "schemas" / f"{kind}.v1.json").read_text("utf-8")


@cache
def schema(kind: str) -> dict[str, Any]:
    """The parsed schema for ``machine`` or ``channel``."""
    doc: dict[str, Any] = json.loads(schema_text(kind))
    return doc


@cache
def _validator(kind: str) -> Draft202012Validator:
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


def _translate(error: ValidationError, doc: Document) -> list[SpecError]:
    path = list(error.absolute_path)
    v = error.validator
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
        return [doc.error("spec.missing-key", error.message, path)]
    if v == "enum":
        choices = [str(c) for c in error.validator_value]
        hint = did_you_mean(str(error.instance), choices)
        return [
            doc.error(
                "spec.invalid-value",
                f"{_short(error.instance)} is not one of {', '.join(choices)}",
                path,
                hint=hint,
            )
        ]
    if v == "type":
        want = error.validator_value
        want_text = " or ".join(want) if isinstance(want, list) else str(want)
        return [
            doc.error(
                "spec.invalid-type",
                f"{_short(error.instance)} is not of type {want_text}",
                path,
            )
        ]
    if v == "pattern":
        return [
            doc.error(
                "spec.invalid-value",
                f"{_short(error.instance)} does not match {error.validator_value!r}",
                path,
            )
        ]
    if v in ("oneOf", "anyOf"):
        return [
            doc.error("spec.invalid-value", f"{_short(error.instance)} is not valid here", path)
        ]
    return [doc.error("spec.invalid-value", error.message, path)]


def validate(doc: Document, kind: str) -> list[SpecError]:
    """Every schema problem of ``doc`` as located ``SpecError``s (empty when valid)."""
    problems: list[SpecError] = []
    for error in _validator(kind).iter_errors(doc.data):
        for leaf in _leaf_errors(error):
            problems.extend(_translate(leaf, doc))
    return problems
