"""Fault switches of the sandbox store: latency, refusals, hangs, garbled bodies, lost commits.

Two kinds, as DESIGN.md requires: faults *before* anything changed (``error_rate``: a 5xx;
``timeout_rate``: the request hangs past the client's timeout, then the connection drops)
and faults *after* a write was committed (``lost_after_commit_rate``: the store applied the
write, then answers 500 or drops the connection). ``malformed_rate`` garbles the body of an
answer the store has already produced, like a response cut in transit: on a read nothing
changed, on a write the change **is applied** (an after-commit fault as far as a client
knows). Draws come from one seeded RNG, so a run with the same seed and the same request
sequence fails the same way. Every switch can be changed at runtime.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any

from sandbox.errors import ConfigError


@dataclass
class Faults:
    """The switches; rates are probabilities in [0, 1] drawn per API request."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    lost_after_commit_rate: float = 0.0
    #: how long a "timeout" request hangs before the connection is dropped
    hang_seconds: float = 30.0
    #: status of an injected error (``error_rate`` and half of the lost-after-commit faults)
    error_status: int = 500
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        self._rng.seed(self.seed)

    def _validate(self) -> None:
        for name in ("error_rate", "timeout_rate", "malformed_rate", "lost_after_commit_rate"):
            v = getattr(self, name)
            if not 0.0 <= float(v) <= 1.0:
                raise ConfigError(f"sandbox fault {name}={v} is not a rate between 0 and 1")
        if self.latency_ms < 0 or self.hang_seconds < 0:
            raise ConfigError("sandbox fault latency_ms and hang_seconds must be >= 0")
        if not 500 <= int(self.error_status) <= 599:
            raise ConfigError(
                f"sandbox fault error_status={self.error_status} is not a 5xx status"
            )

    def draw(self, rate: float) -> bool:
        """One Bernoulli draw from the seeded RNG (no draw at all when the rate is 0)."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def choice(self) -> bool:
        with self._lock:
            return self._rng.random() < 0.5

    def snapshot(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change switches at runtime; unknown names or bad values raise ConfigError."""
        known = {f.name: f for f in fields(self) if not f.name.startswith("_")}
        old = self.snapshot()
        for name, value in changes.items():
            if name not in known:
                raise ConfigError(
                    f"unknown sandbox fault switch {name!r} (known: {', '.join(known)})"
                )
            try:
                cast = int(value) if name in ("error_status", "seed") else float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"sandbox fault {name}={value!r} is not a number") from None
            setattr(self, name, cast)
        try:
            self._validate()
        except ConfigError:
            for name, value in old.items():
                setattr(self, name, value)
            raise
        if "seed" in changes:
            with self._lock:
                self._rng.seed(self.seed)
        return self.snapshot()
