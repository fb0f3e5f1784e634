"""omsflow: a declarative state-machine engine connecting an OMS to sales channels.

Each layer exposes its own API: ``engine.spec`` (pure: YAML -> validated spec objects),
``engine.core`` (pure: compiled machines, apply_event, mapping) and ``engine.runtime``
(the IO edge: storage, channels, outbox, servers).
"""

from __future__ import annotations

__version__ = "0.1.0"
