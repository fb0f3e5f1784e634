"""engine/spec."""

from __future__ import annotations
