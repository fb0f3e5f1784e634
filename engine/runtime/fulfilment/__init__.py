"""engine/runtime/fulfilment."""

from __future__ import annotations
