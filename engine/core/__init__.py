"""engine.core: the pure engine (no IO, no clock, no randomness). Compiles machine specs into
``transitions`` machines, applies events to order snapshots, maps channel records."""

from __future__ import annotations

from engine.core.apply import apply_event, effects_of
from engine.core.effects import EFFECTS, LOCAL_EFFECTS, OUTBOX_EFFECTS, is_local
from engine.core.guards import GUARDS, all_lines_reservable
from engine.core.machine import CompiledMachine, compile_machine
from engine.core.mapping import Trace, map_record, source_fields, trace_record
from engine.core.outcome import (
    Applied,
    AuditRecord,
    Blocker,
    Effect,
    LineFact,
    OrderSnapshot,
    Outcome,
    Refused,
)
from engine.core.records import build as build_record
from engine.core.transforms import TRANSFORM_TYPES, TRANSFORMS, TransformError
from engine.spec.vocabulary import Vocabulary

VOCABULARY = Vocabulary(
    guards=frozenset(GUARDS),
    effects=EFFECTS,
    transforms=frozenset(TRANSFORMS),
    local_effects=LOCAL_EFFECTS,
    transform_types=TRANSFORM_TYPES,
)
"""Every guard, effect and transform name a spec may use."""

__all__ = [
    "EFFECTS",
    "GUARDS",
    "LOCAL_EFFECTS",
    "OUTBOX_EFFECTS",
    "TRANSFORMS",
    "TRANSFORM_TYPES",
    "VOCABULARY",
    "Applied",
    "AuditRecord",
    "Blocker",
    "CompiledMachine",
    "Effect",
    "LineFact",
    "OrderSnapshot",
    "Outcome",
    "Refused",
    "Trace",
    "TransformError",
    "all_lines_reservable",
    "apply_event",
    "build_record",
    "compile_machine",
    "effects_of",
    "is_local",
    "map_record",
    "source_fields",
    "trace_record",
]
