"""engine/runtime/db."""

from __future__ import annotations
