"""Field mapping driven by the channel YAML: channel record <-> OMS record (OCA Mapper style).

``direct`` rules copy one (dotted) field through an optional named transform; ``extra``
rules do the same into the reserved key ``extra`` (a dict: fields the OMS model does not
know); ``defaults`` fill fields no rule maps; ``children`` map each item of a nested list
with another mapping. Pure: dicts in, dicts out. ``trace_record`` also says where each
value came from (``omsflow spec preview``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


_PARTS: dict[str, tuple[str, ...]] = {}
"""A dotted source name split once (a mapping names a few dozen; each is read per record)."""


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    parts = _PARTS.get(dotted)
    if parts is None:
        parts = _PARTS[dotted] = tuple(dotted.split("."))
    if len(parts) == 1 and type(record) is dict and dotted in record:
        return record[dotted]  # the common case: a plain field of a plain record
    current: Any = record
    for part in parts:
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
        return [v for v in value if type(v) is dict or isinstance(v, Mapping)]
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


Mapper = Callable[[Mapping[str, Any]], dict[str, Any]]

_COMPILED: dict[int, tuple[MappingSpec, Mapper]] = {}
"""``id(mapping)`` -> (the mapping, kept alive so the id stays its own; its mapper)."""


def _rule_step(
    mapping: MappingSpec, rule: FieldRule
) -> tuple[str, str, bool, Callable[[Any], Any] | None, str | None]:
    return (
        rule.target,
        rule.source,
        "." not in rule.source,
        TRANSFORMS.get(rule.transform) if rule.transform is not None else None,
        rule.transform,
    )


def _compile(mapping: MappingSpec) -> Mapper:
    """``_map`` without a trace, its per-rule work (transform look-up, path split) done
    once: ``map_record`` runs per record, and a mapping is read by a run's every record.
    Same output, same key order, same first error (tests hold it to ``_map``)."""
    name = mapping.name
    direct = tuple(_rule_step(mapping, r) for r in mapping.direct)
    extra = tuple(_rule_step(mapping, r) for r in mapping.extra)
    defaults = tuple(mapping.defaults.items())
    # (a child's mapper is looked up when used: a mapping may name itself)
    children = tuple((c.target, c.source, c.spec, c.mapping) for c in mapping.children)

    def fill(
        out: dict[str, Any],
        steps: tuple[tuple[str, str, bool, Callable[[Any], Any] | None, str | None], ...],
        record: Mapping[str, Any],
        plain: bool,
    ) -> None:
        for target, source, single, fn, transform in steps:
            if plain and single and source in record:
                raw = record[source]
            else:
                raw = _get(record, source)
                if raw is _MISSING:
                    out[target] = None
                    continue
            if transform is None:
                out[target] = raw
            elif fn is None:
                raise TransformError(f"{name}.{source}: unknown transform '{transform}'")
            else:
                try:
                    out[target] = fn(raw)
                except TransformError as exc:
                    raise TransformError(f"{name}.{source}: {exc}") from None

    def run(record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        plain = type(record) is dict
        fill(out, direct, record, plain)
        for key, value in defaults:
            if key not in out:
                out[key] = value
        for target, source, spec, child_name in children:
            if spec is None:
                raise TransformError(f"{name}: mapping '{child_name}' is not resolved")
            child = _mapper(spec)
            out[target] = [child(item) for item in _items(_get(record, source))]
        if extra:
            values: dict[str, Any] = {}
            fill(values, extra, record, plain)
            out[EXTRA] = values
        return out

    return run


def _mapper(mapping: MappingSpec) -> Mapper:
    hit = _COMPILED.get(id(mapping))
    if hit is not None and hit[0] is mapping:
        return hit[1]
    if len(_COMPILED) > 512:  # specs loaded again and again (tests): start over
        _COMPILED.clear()
    fn = _compile(mapping)
    _COMPILED[id(mapping)] = (mapping, fn)
    return fn


def map_record(mapping: MappingSpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``mapping`` to ``record``. A missing source field maps to None; the ``extra:``
    fields come under the key ``extra``.

    Raises:
        TransformError: a value could not be transformed (the message names the field).
    """
    return _mapper(mapping)(record)


def source_fields(mapping: MappingSpec) -> tuple[str, ...]:
    """The top-level fields of a record ``mapping`` reads (its rules' first path parts,
    children's too): what a caller must prepare of the record, nothing else."""
    sources = [r.source for r in (*mapping.direct, *mapping.extra)]
    sources += [c.source for c in mapping.children]
    return tuple(dict.fromkeys(source.split(".", 1)[0] for source in sources))


def trace_record(
    mapping: MappingSpec, record: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Trace]]:
    """``map_record`` plus where each value came from, in mapping order."""
    trace: list[Trace] = []
    return _map(mapping, record, trace, ""), trace
