"""Shared bits for spec tests: the shipped YAML texts and small edit helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core import VOCABULARY
from engine.errors import SpecErrors
from engine.spec import MachineSpec, parse_machine

REPO = Path(__file__).resolve().parents[2]
MACHINE_PATH = REPO / "specs" / "order_lifecycle.yaml"
CHANNEL_PATH = REPO / "channels" / "prestashop.yaml"
MACHINE_TEXT = MACHINE_PATH.read_text(encoding="utf-8")
CHANNEL_TEXT = CHANNEL_PATH.read_text(encoding="utf-8")


def shipped_machine() -> MachineSpec:
    return parse_machine(MACHINE_TEXT, "order_lifecycle.yaml", vocabulary=VOCABULARY)


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, f"{old!r} not in text"
    return text.replace(old, new, 1)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing ``needle``."""
    seen = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return i
    raise AssertionError(f"{needle!r} not found")


def machine_errors(text: str, file: str = "m.yaml") -> SpecErrors:
    with pytest.raises(SpecErrors) as info:
        parse_machine(text, file, vocabulary=VOCABULARY)
    return info.value
