"""engine/runtime/listing."""

from __future__ import annotations
