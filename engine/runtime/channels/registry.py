"""Channel factories by name: how the engine opens a store's channel.

A store row names its channel (``StoreRow.channel``, ``"prestashop"`` for every store so
far); ``open_channel`` builds that channel's ``ChannelPort`` from the store's URL and key,
the channel spec (its ``connection`` block) and the facts saved at connect. A channel
registers one factory (``register``): a callable, or ``"module:attribute"`` imported on
first use, so naming a channel costs no import of its HTTP client until a store of it is
opened (the CLI starts faster).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from engine.errors import ConfigError
from engine.runtime.channels.port import ChannelPort


class ChannelFactory(Protocol):
    """Build a store's channel: ``url`` and ``key`` (an ``engine.runtime.settings.Secret``)
    of the store, ``spec`` the ``ChannelSpec``, ``facts`` what the store told at connect
    (JSON; None: not saved), ``client_kw`` the client's overrides (``budgets=``: the shared
    request budget; tests and benchmarks: ``timeout=``, ``rate_limit=None``...)."""

    def __call__(
        self,
        url: str,
        key: Any,
        spec: Any,
        *,
        facts: Mapping[str, Any] | None = None,
        **client_kw: Any,
    ) -> ChannelPort: ...


_FACTORIES: dict[str, ChannelFactory | str] = {
    "prestashop": "engine.runtime.channels.prestashop.adapter:open_channel",
}
_lock = threading.Lock()


def register(name: str, factory: ChannelFactory | str) -> None:
    """Make ``name`` a channel ``open_channel`` can open (replaces an earlier factory)."""
    with _lock:
        _FACTORIES[name] = factory


def known() -> list[str]:
    """The channel names a factory is registered for, sorted."""
    with _lock:
        return sorted(_FACTORIES)


def factory(name: str) -> ChannelFactory:
    """The factory of channel ``name``; a ``ConfigError`` naming the known ones if none."""
    with _lock:
        found = _FACTORIES.get(name)
    if found is None:
        raise ConfigError(f"unknown channel {name!r} (known: {', '.join(known())})")
    if isinstance(found, str):
        module, _, attr = found.partition(":")
        loaded: ChannelFactory = getattr(importlib.import_module(module), attr)
        with _lock:
            _FACTORIES[name] = loaded
        return loaded
    return found


def open_channel(
    name: str,
    url: str,
    key: Any,
    spec: Any,
    *,
    facts: Mapping[str, Any] | None = None,
    **client_kw: Any,
) -> ChannelPort:
    """The store's channel, built by the factory registered for ``name``."""
    return factory(name)(url, key, spec, facts=facts, **client_kw)


__all__ = ["ChannelFactory", "factory", "known", "open_channel", "register"]
