"""The one rule's entry points, under the name callers have always imported (``service``).

The implementation lives in ``engine.runtime.apply`` (one module per concept: events,
imports, stock, attention, the ORM session edge); this module only re-exports it, each
name loaded when first used (as ``apply`` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import apply
from .apply import __all__ as __all__

if TYPE_CHECKING:
    from .apply import *  # noqa: F403 - the public API, re-exported


def __getattr__(name: str) -> Any:
    value = getattr(apply, name)
    globals()[name] = value
    return value
