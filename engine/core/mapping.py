"""Field mapping driven by the channel YAML: channel record <-> OMS record (OCA Mapper style).

``direct`` rules copy one (dotted) field through an optional named transform; ``children``
map each item of a nested list with another mapping. Pure: dicts in, dicts out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.transforms import TRANSFORMS, TransformError
from engine.spec.model import MappingSpec

_MISSING = object()


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


def map_record(mapping: MappingSpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``mapping`` to ``record``. A missing source field maps to None.

    Raises:
        TransformError: a value could not be transformed (the message names the field).
    """
    out: dict[str, Any] = {}
    for rule in mapping.direct:
        value = _get(record, rule.source)
        if value is _MISSING:
            out[rule.target] = None
            continue
        if rule.transform is not None:
            fn = TRANSFORMS.get(rule.transform)
            if fn is None:
                raise TransformError(
                    f"{mapping.name}.{rule.source}: unknown transform '{rule.transform}'"
                )
            try:
                value = fn(value)
            except TransformError as exc:
                raise TransformError(f"{mapping.name}.{rule.source}: {exc}") from None
        out[rule.target] = value
    for child in mapping.children:
        if child.spec is None:
            raise TransformError(f"{mapping.name}: mapping '{child.mapping}' is not resolved")
        out[child.target] = [
            map_record(child.spec, item) for item in _items(_get(record, child.source))
        ]
    return out
