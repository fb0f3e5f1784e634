"""engine/runtime/wms."""

from __future__ import annotations
