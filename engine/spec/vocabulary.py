"""The names a spec may use (guards, effects, transforms), given to the checks by callers.

The spec layer never imports the functions behind these names: ``engine.core`` builds its
``VOCABULARY`` from its registries and the runtime passes it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TransformType:
    """What a transform takes and gives, in the model's field types (``engine.spec.oms``).

    ``output`` None: the value keeps its type (``none_if_zero``, ``none_if_empty``)."""

    inputs: frozenset[str]
    output: str | None
    description: str = ""


@dataclass(frozen=True)
class Vocabulary:
    """Known names; an empty set for a kind means "do not check that kind"."""

    guards: frozenset[str] = field(default_factory=frozenset)
    effects: frozenset[str] = field(default_factory=frozenset)
    transforms: frozenset[str] = field(default_factory=frozenset)
    local_effects: frozenset[str] = field(default_factory=frozenset)
    """Effects applied inside the event's transaction (stock bookkeeping)."""
    transform_types: Mapping[str, TransformType] = field(default_factory=dict)
    """Per transform, the types it takes and gives (unlisted: not type-checked)."""
