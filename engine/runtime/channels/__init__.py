"""engine/runtime/channels."""

from __future__ import annotations
