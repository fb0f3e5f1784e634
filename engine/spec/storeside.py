"""The store's side of the channel mappings: its resources and their fields, as data.

Given to the checks by callers (like ``Vocabulary``): the runtime passes the bundled
knowledge of PrestaShop 8.x and 1.7 resources, or a connected store's live
``?schema=synopsis`` (which also sees the fields its modules add). The spec layer knows no
PrestaShop itself. Field types are the model's (``engine.spec.oms``) plus ``date`` (a
shop-local date text), ``multilingual`` and ``any``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoreField:
    name: str
    type: str = "any"
    read_only: bool = False
    versions: tuple[str, ...] = ()
    """The versions that have it, when not every version does (e.g. ``("8.x",)``)."""


@dataclass(frozen=True)
class StoreResource:
    """A resource (``orders``) or an association of one (``orders`` -> ``order_rows``)."""

    name: str
    fields: Mapping[str, StoreField]
    associations: Mapping[str, StoreResource] = field(default_factory=dict)

    def names(self) -> tuple[str, ...]:
        return (*self.fields, *self.associations)


@dataclass(frozen=True)
class StoreSide:
    """What the checks know of one channel's stores."""

    channel: str
    """The channel spec this applies to (``prestashop``)."""
    label: str
    """How messages name it: ``PrestaShop 8.x/1.7`` or ``store 'main' (PrestaShop 8.2.1)``."""
    resources: Mapping[str, StoreResource]
    roles: Mapping[str, str] = field(default_factory=dict)
    """Mapping name -> the resource it reads (inbound) or writes (outbound)."""
    writes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Outbound mapping name -> the fields the runtime's write needs it to fill."""
    live: bool = False
    """Read from a store now (every field it has, its modules' too)."""

    def resource_for(self, mapping: str) -> StoreResource | None:
        name = self.roles.get(mapping)
        return self.resources.get(name) if name else None
