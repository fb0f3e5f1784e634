"""engine.spec: YAML specs -> validated, immutable spec objects (pure: stdlib, PyYAML,
jsonschema). Every problem of a load is collected and raised as one ``SpecErrors``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import Location, SpecError, SpecErrors
from engine.spec import schema as _schema
from engine.spec.build import (
    build_channel,
    build_machine,
    machine_buildable,
    parse_days,
    parse_duration,
)
from engine.spec.checks import check_channel, check_machine, check_migration_invariants
from engine.spec.graph import reachable, to_dot, to_mermaid
from engine.spec.model import (
    CatalogRateSpec,
    ChannelSpec,
    ChildRule,
    ConnectionSpec,
    EffectSpec,
    FieldRule,
    FulfilmentSpec,
    InboundRule,
    InvariantSpec,
    LabelSpec,
    LateEventSpec,
    MachineSpec,
    MappingSpec,
    MigrationSpec,
    PricesSpec,
    RateSpec,
    RetrySpec,
    SchedulesSpec,
    StateSpec,
    StatusMapSpec,
    TransitionSpec,
)
from engine.spec.source import Document, load_file, load_text
from engine.spec.storeside import StoreField, StoreResource, StoreSide
from engine.spec.vocabulary import Vocabulary

__all__ = [
    "CatalogRateSpec",
    "ChannelSpec",
    "ChildRule",
    "ConnectionSpec",
    "EffectSpec",
    "FieldRule",
    "FulfilmentSpec",
    "InboundRule",
    "InvariantSpec",
    "LabelSpec",
    "LateEventSpec",
    "Location",
    "MachineSpec",
    "MappingSpec",
    "MigrationSpec",
    "PricesSpec",
    "RateSpec",
    "RetrySpec",
    "SchedulesSpec",
    "SpecError",
    "SpecErrors",
    "StateSpec",
    "StatusMapSpec",
    "StoreField",
    "StoreResource",
    "StoreSide",
    "TransitionSpec",
    "Validation",
    "Vocabulary",
    "check_migration_invariants",
    "load_channel",
    "load_machine",
    "parse_channel",
    "parse_days",
    "parse_duration",
    "parse_machine",
    "reachable",
    "schema_text",
    "spec_files",
    "to_dot",
    "to_mermaid",
    "validate_files",
]

schema_text = _schema.schema_text


def _machine_from(doc: Document, vocabulary: Vocabulary | None) -> MachineSpec:
    """Schema problems, then the meaning of whatever the schema accepted (every problem of
    the file in one run; see ``Document.broken``)."""
    problems = list(doc.problems)
    if doc.data is None:
        raise SpecErrors(problems)
    problems.extend(_schema.validate(doc, "machine"))
    if not machine_buildable(doc):
        raise SpecErrors(problems)
    spec, built = build_machine(doc)
    problems.extend(built)
    problems.extend(check_machine(spec, doc, vocabulary))
    if problems:
        raise SpecErrors(problems)
    return spec


def _channel_from(
    doc: Document,
    machine: MachineSpec,
    vocabulary: Vocabulary | None,
    store: StoreSide | None = None,
) -> ChannelSpec:
    problems = list(doc.problems)
    if doc.data is None:
        raise SpecErrors(problems)
    problems.extend(_schema.validate(doc, "channel"))
    if not isinstance(doc.data, dict):
        raise SpecErrors(problems)
    spec, built = build_channel(doc)
    problems.extend(built)
    problems.extend(check_channel(spec, doc, machine, vocabulary, store))
    if problems:
        raise SpecErrors(problems)
    return spec


def load_machine(path: str | Path, *, vocabulary: Vocabulary | None = None) -> MachineSpec:
    """Load and check a machine spec file.

    Args:
        path: the YAML file.
        vocabulary: guard/effect names the engine knows (``engine.core.VOCABULARY``);
            None skips the name checks.

    Raises:
        SpecErrors: every located problem of the file.
    """
    return _machine_from(load_file(str(path)), vocabulary)


def parse_machine(
    text: str, file: str = "<machine>", *, vocabulary: Vocabulary | None = None
) -> MachineSpec:
    """Like ``load_machine`` for YAML text; ``file`` names it in messages."""
    return _machine_from(load_text(text, file), vocabulary)


def load_channel(
    path: str | Path,
    machine: MachineSpec,
    *,
    vocabulary: Vocabulary | None = None,
    store: StoreSide | None = None,
) -> ChannelSpec:
    """Load a channel spec file and cross-check it against ``machine``, its mappings against
    the OMS model and, when given, the store side (``StoreSide`` of its channel).

    Raises:
        SpecErrors: every located problem of the file.
    """
    return _channel_from(load_file(str(path)), machine, vocabulary, store)


def parse_channel(
    text: str,
    file: str = "<channel>",
    machine: MachineSpec | None = None,
    *,
    vocabulary: Vocabulary | None = None,
    store: StoreSide | None = None,
) -> ChannelSpec:
    """Like ``load_channel`` for YAML text."""
    if machine is None:
        raise TypeError("parse_channel needs the machine to cross-check against")
    return _channel_from(load_text(text, file), machine, vocabulary, store)


def spec_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus ``*.yaml``/``*.yml`` inside folders named (sorted, no repeats)."""
    out: list[Path] = []
    for p in map(Path, paths):
        found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p]
        out.extend(f for f in found if f not in out)
    return out


@dataclass
class Validation:
    """What ``validate_files`` found: loaded specs and every problem."""

    machines: list[MachineSpec] = field(default_factory=list)
    channels: list[ChannelSpec] = field(default_factory=list)
    problems: list[SpecError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_files(
    files: Sequence[str | Path],
    *,
    vocabulary: Vocabulary | None = None,
    fallback_machines: Sequence[MachineSpec] = (),
    stores: Sequence[StoreSide] = (),
) -> Validation:
    """Validate machine and channel files together (a file with a ``channel:`` key is a
    channel; it is cross-checked against the machine it names, looked up among the machines
    given, then ``fallback_machines``, and against the ``stores`` side of its channel)."""
    sides = {s.channel: s for s in stores}
    result = Validation()
    docs = [load_file(str(f)) for f in files]
    result.files = [d.file for d in docs]
    channel_docs: list[Document] = []
    for doc in docs:
        if isinstance(doc.data, dict) and "channel" in doc.data:
            channel_docs.append(doc)
            continue
        try:
            result.machines.append(_machine_from(doc, vocabulary))
        except SpecErrors as exc:
            result.problems.extend(exc.errors)
    by_name = {m.name: m for m in fallback_machines}
    by_name.update({m.name: m for m in result.machines})
    for doc in channel_docs:
        assert isinstance(doc.data, dict)  # noqa: S101 - narrowed above
        wanted = doc.data.get("machine")
        machine = by_name.get(str(wanted)) if wanted is not None else None
        if machine is None:
            if not any(p.location.file != doc.file for p in result.problems):
                result.problems.append(
                    doc.error(
                        "spec.unknown-machine",
                        f"no valid machine spec named '{wanted}' to check this channel against",
                        ("machine",),
                    )
                )
            continue
        try:
            side = sides.get(str(doc.data.get("channel")))
            result.channels.append(_channel_from(doc, machine, vocabulary, side))
        except SpecErrors as exc:
            result.problems.extend(exc.errors)
    result.problems = SpecErrors(result.problems).errors
    return result
