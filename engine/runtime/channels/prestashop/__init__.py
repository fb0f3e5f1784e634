"""engine/runtime/channels/prestashop."""

from __future__ import annotations
