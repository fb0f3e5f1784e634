"""engine/runtime/sandbox."""

from __future__ import annotations
