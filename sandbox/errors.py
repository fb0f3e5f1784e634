"""The sandbox's one error class: it shares no code with the engine (import-linter contract in
pyproject.toml), so it does not raise ``engine.errors.ConfigError``; ``omsflow sandbox serve``
turns this one into the engine's one-line error."""

from __future__ import annotations


class ConfigError(ValueError):
    """A sandbox setting (generate/serve options, fault switches, keys) is invalid; the
    message is one line naming the setting."""
