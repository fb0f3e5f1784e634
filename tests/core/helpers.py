"""The compiled shipped lifecycle and channel, shared by core tests."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from engine.core import VOCABULARY, CompiledMachine, compile_machine
from engine.spec import ChannelSpec, load_channel, load_machine
from tests.spec.helpers import CHANNEL_PATH, MACHINE_PATH

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@cache
def compiled() -> CompiledMachine:
    return compile_machine(load_machine(MACHINE_PATH, vocabulary=VOCABULARY))


@cache
def channel() -> ChannelSpec:
    return load_channel(CHANNEL_PATH, compiled().spec, vocabulary=VOCABULARY)
