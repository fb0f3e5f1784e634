"""Field mapping driven by the channel YAML: channel record <-> OMS record (OCA Mapper style).

``direct`` rules copy one (dotted) field through an optional named transform; ``extra``
rules do the same into the reserved key ``extra`` (a dict: fields the OMS model does not
know); ``defaults`` fill fields no rule maps; ``children`` map each item of a nested list
with another mapping. Pure: dicts in, dicts out. ``trace_record`` also says where each
value came from (``omsflow spec preview``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.core.transforms import TRANSFORMS, TransformError
from engine.spec.model import FieldRule, MappingSpec

_MISSING = object()
EXTRA = "extra"
"""The key ``map_record`` puts the ``extra:`` fields under (no model field has this name)."""


@dataclass(frozen=True)
class Trace:
    """Where one mapped value came from."""

    path: str
    """The target, e.g. ``total_paid``, ``lines[0].quantity``, ``extra.gift_message``."""
    source: str
    """The source field (``total_paid_tax_incl``, ``order_rows[0].product_name``) or
    ``default``."""
    transform: str | None
    raw: Any
    """The source value before the transform (None when the record lacks the field)."""
    value: Any
    found: bool = True
    """False: the store record has no such field (the value is empty)."""


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    current: Any = record
    for part in dotted.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, Mapping)
            and "associations" in current
            and part in (current["associations"] or {})
        ):
            # PrestaShop nests lines under "associations"; a rule may name them directly.
            current = current["associations"][part]
        else:
            return _MISSING
    return current


def _items(value: Any) -> list[Mapping[str, Any]]:
    """A child collection as a list of records: a list, one record, or a wrapper dict
    holding one list (XML-shaped ``{"order_row": [...]}``)."""
    if value is None or value is _MISSING or value == "":
        return []
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, Mapping)]
    if isinstance(value, Mapping):
        if len(value) == 1:
            (inner,) = value.values()
            if isinstance(inner, list | tuple):
                return [v for v in inner if isinstance(v, Mapping)]
            if isinstance(inner, Mapping):
                return [inner]
        return [value]
    return []


def _apply(mapping: MappingSpec, rule: FieldRule, record: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(raw, value)``; raw is ``_MISSING`` when the record lacks the source."""
    raw = _get(record, rule.source)
    if raw is _MISSING:
        return raw, None
    if rule.transform is None:
        return raw, raw
    fn = TRANSFORMS.get(rule.transform)
    if fn is None:
        raise TransformError(f"{mapping.name}.{rule.source}: unknown transform '{rule.transform}'")
    try:
        return raw, fn(raw)
    except TransformError as exc:
        raise TransformError(f"{mapping.name}.{rule.source}: {exc}") from None


def _map(
    mapping: MappingSpec,
    record: Mapping[str, Any],
    trace: list[Trace] | None,
    prefix: str,
    src_prefix: str = "",
) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def note(path: str, source: str, rule: FieldRule | None, raw: Any, value: Any) -> None:
        if trace is not None:
            trace.append(
                Trace(
                    path=prefix + path,
                    source=source if rule is None else src_prefix + source,
                    transform=rule.transform if rule else None,
                    raw=None if raw is _MISSING else raw,
                    value=value,
                    found=raw is not _MISSING,
                )
            )

    for rule in mapping.direct:
        raw, value = _apply(mapping, rule, record)
        out[rule.target] = value
        note(rule.target, rule.source, rule, raw, value)
    for key, value in mapping.defaults.items():
        if key not in out:
            out[key] = value
            note(key, "default", None, value, value)
    for child in mapping.children:
        if child.spec is None:
            raise TransformError(f"{mapping.name}: mapping '{child.mapping}' is not resolved")
        items = _items(_get(record, child.source))
        out[child.target] = [
            _map(
                child.spec,
                item,
                trace,
                f"{prefix}{child.target}[{i}].",
                f"{src_prefix}{child.source}[{i}].",
            )
            for i, item in enumerate(items)
        ]
    if mapping.extra:
        extra: dict[str, Any] = {}
        for rule in mapping.extra:
            raw, value = _apply(mapping, rule, record)
            extra[rule.target] = value
            note(f"{EXTRA}.{rule.target}", rule.source, rule, raw, value)
        out[EXTRA] = extra
    return out


def map_record(mapping: MappingSpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``mapping`` to ``record``. A missing source field maps to None; the ``extra:``
    fields come under the key ``extra``.

    Raises:
        TransformError: a value could not be transformed (the message names the field).
    """
    return _map(mapping, record, None, "")


def trace_record(
    mapping: MappingSpec, record: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Trace]]:
    """``map_record`` plus where each value came from, in mapping order."""
    trace: list[Trace] = []
    return _map(mapping, record, trace, ""), trace
