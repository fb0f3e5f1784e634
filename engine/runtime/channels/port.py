"""The channel port: what the OMS's sync, outbox, effects and listing ask of a sales channel.

A channel (PrestaShop today, ``channels/prestashop/``) implements ``ChannelPort`` and
nothing else the engine calls. The records that cross the port are the channel's in a
neutral shape the engine reads: an order is an id, a channel state id, its creation and
update stamps, its lines by unit ``(product id, combination id)`` and the flat mapping the
channel spec's ``order_in`` maps (``to_mapping``); a catalogue entry is a product with its
variants and stock rows, each giving the flat mapping ``product_in``/``combination_in``
map, its category and option ids and a stock token; what goes out are the OMS's own records
after their outbound mapping (``stock_out``, ``price_out``, ``status_out``: plain field
dicts) or plain values. Wire formats, resource names and stock bodies stay behind the port:
a binding keeps the store's ids and an opaque ``stock_token`` the channel gave
(``StockPush.token``, ``stock_token``), handed back on the next write.

A store is opened by its channel's name through ``channels.registry``.

Every method raises only ``engine.errors.ChannelError`` subclasses for store failures.
The record shapes are Protocols (read-only attributes), so a channel may return its own
frozen dataclasses without copying them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from engine.errors import ChannelError, ChannelUnavailable

T = TypeVar("T")

Unit = tuple[int, int]
"""A sellable unit in a channel: ``(product id, combination id)``; 0: no combination."""

STOCK_TOKEN = "stock_token"  # noqa: S105 - a key name, not a secret
"""The key of a binding (``ProductRow.store_ids[store]``) that holds its stock token."""

StockToken = Mapping[str, Any]
"""What a channel keeps with a binding to write its stock next time (JSON; opaque to the
engine: stored and handed back, never read)."""

Written = Mapping[str, Any] | Decimal | int | str
"""An outbound write: the fields a channel mapping gives, or the plain value."""


# --------------------------------------------------------------------------- records out


class OrderLine(Protocol):
    """One line of a channel order."""

    @property
    def product_id(self) -> int: ...
    @property
    def product_attribute_id(self) -> int:
        """The combination id (0: none)."""
        ...

    @property
    def product_quantity(self) -> int: ...


class ChannelOrder(Protocol):
    """An order as a channel reads it; ``to_mapping`` is what ``order_in`` maps."""

    @property
    def id(self) -> int: ...
    @property
    def current_state(self) -> int:
        """The channel's state id (resolved from the status map's names at connect)."""
        ...

    @property
    def date_add(self) -> str | None:
        """Placed at, in the channel's clock (``YYYY-MM-DD HH:MM:SS``)."""
        ...

    @property
    def date_upd(self) -> str | None:
        """Last changed at, in the channel's clock (the changes cursor)."""
        ...

    @property
    def rows(self) -> Sequence[OrderLine]: ...
    @property
    def related(self) -> Mapping[str, Any]:
        """Customer, addresses, carrier, currency read around it (empty: none read)."""
        ...

    def to_mapping(self) -> dict[str, Any]: ...


class StateChanged(Protocol):
    """What a state write did: ``changed`` False means the channel already showed it."""

    @property
    def changed(self) -> bool: ...


class HasId(Protocol):
    """A record the channel created: the engine keeps only its id."""

    @property
    def id(self) -> int: ...


class Named(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


class ChannelCategory(Named, Protocol):
    @property
    def is_root_category(self) -> bool: ...
    @property
    def parent_id(self) -> int:
        """0: none."""
        ...

    @property
    def active(self) -> bool: ...


class ChannelOption(Named, Protocol):
    """An attribute group (``Size``); ``public_name``: what shoppers see ('' : ``name``)."""

    @property
    def public_name(self) -> str: ...


class ChannelOptionValue(Named, Protocol):
    """An attribute value (``M``) of the group ``option_id``."""

    @property
    def option_id(self) -> int: ...


# --------------------------------------------------------------------------- catalogue in


class CatalogVariant(Protocol):
    """A product's variant (a combination): ``to_mapping`` is what ``combination_in``
    maps (``names``: only those top-level fields, for a mapping that reads a few)."""

    @property
    def id(self) -> int: ...
    @property
    def option_value_ids(self) -> Sequence[int]: ...
    @property
    def image_ids(self) -> Sequence[int]:
        """Its own images, first shown first (empty: the product's cover)."""
        ...

    def to_mapping(self, names: Iterable[str] | None = None) -> dict[str, Any]: ...


class CatalogProduct(Protocol):
    """A product: ``to_mapping`` is what ``product_in`` maps."""

    @property
    def id(self) -> int: ...
    @property
    def category_ids(self) -> Sequence[int]: ...
    @property
    def date_upd(self) -> str | None:
        """Last changed at, in the channel's clock (the catalogue's delta cursor)."""
        ...

    def to_mapping(self, names: Iterable[str] | None = None) -> dict[str, Any]: ...


class CatalogStock(Protocol):
    """The channel's stock of one unit."""

    @property
    def id(self) -> int:
        """The channel's id of the stock row (kept with the binding)."""
        ...

    @property
    def combination_id(self) -> int:
        """0: the product's own stock."""
        ...

    @property
    def quantity(self) -> int: ...
    @property
    def token(self) -> StockToken:
        """What the binding keeps for ``push_stock`` (opaque to the engine)."""
        ...


class CatalogEntry(Protocol):
    """One product as the catalogue read gives it: the product, its variants (by id),
    its stock rows (the product's own and per variant) and its cover image."""

    @property
    def product(self) -> CatalogProduct: ...
    @property
    def combinations(self) -> Sequence[CatalogVariant]: ...
    @property
    def stock(self) -> Sequence[CatalogStock]: ...
    @property
    def cover_image_url(self) -> str | None: ...

    def image_url(self, image_id: int) -> str:
        """The URL of one of the product's images (a variant's ``image_ids``)."""
        ...


@dataclass(frozen=True)
class ListedCombination:
    """A variant of a product found by SKU (``listed_products``)."""

    id: int
    sku: str
    option_value_ids: tuple[int, ...]
    price_impact: Decimal


@dataclass(frozen=True)
class ListedProduct:
    """A product found in the channel by SKU, as listing compares and binds it."""

    id: int
    sku: str
    name: str
    price: Decimal
    active: bool
    category_id: int
    brand_id: int
    """0: none."""
    has_image: bool
    combinations: tuple[ListedCombination, ...]
    stock: Mapping[int, tuple[int, int]]
    """combination id (0: the product) -> (stock row id, quantity)."""


@dataclass(frozen=True)
class StockPush:
    """What ``push_stock`` did: the quantity written, whether it was only confirmed by
    reading the channel back (``read_back``: the write's answer was lost) and the token to
    keep with the binding (None: keep the one given)."""

    quantity: int
    read_back: bool = False
    token: StockToken | None = None


@dataclass(frozen=True)
class ClockRead:
    """What ``read_clock`` found: the zone the channel writes its dates in (IANA name), the
    channel's own clock when it answered (UTC; None: not sent), the facts to merge into
    the store's saved facts (None: nothing new), the counts to add to the run's report and
    the warnings worth logging."""

    timezone: str
    server_time: datetime | None = None
    facts: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------- the port


class OrderPort(Protocol):
    """Orders: read new and changed ones, write their state and tracking number."""

    page_size: int

    def resolve_states(
        self, names: Iterable[str], state_keys: Mapping[str, int] | None = None
    ) -> tuple[dict[str, int], list[str]]:
        """The channel's state id of each status-map name, and the names it lacks."""
        ...

    def order_states(self) -> Sequence[Named]:
        """The channel's order states (id, name in its default language), read now."""
        ...

    def first_order_id_since(self, date_add: str) -> int | None: ...

    def orders_since_id(
        self, cursor_id: int, *, states: Iterable[int] | None = None
    ) -> Iterator[ChannelOrder]: ...

    def orders_changed_since(
        self, date_upd: str, *, states: Iterable[int] | None = None
    ) -> Iterator[ChannelOrder]: ...

    def read_related(
        self, orders: Sequence[ChannelOrder], cache: dict[str, dict[int, Any]]
    ) -> list[ChannelOrder]:
        """A page of the channel's own orders with what the mappings read around them
        (``related``: customer, addresses...), read in bulk; ``cache``: the run's reads,
        by kind and id (a channel that reads nothing around its orders returns them)."""
        ...

    def set_order_state(
        self,
        order_id: int,
        state_id: int,
        *,
        send_email: bool | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> StateChanged:
        """Move the order to ``state_id`` at most once (``fields``: ``status_out``'s)."""
        ...

    def set_tracking_number(
        self, order_id: int, number: str, *, send_email: bool = False
    ) -> object: ...

    def tracking_numbers(self, order_id: int) -> list[str]:
        """The tracking numbers the channel shows on the order (read back after a write)."""
        ...


class StockPricePort(Protocol):
    """Absolute writes of a unit's stock and price (delivering one twice is harmless)."""

    def push_stock(
        self, product_id: int, combination_id: int | None, write: Written, *, token: Any = None
    ) -> StockPush:
        """Set the unit's stock (``write``: ``stock_out``'s fields or the quantity),
        using ``token`` (from the binding; any value, validated by the channel) to skip a
        read when it can; a write whose answer was lost is read back, never retried
        blindly."""
        ...

    def set_price(self, product_id: int, price: Written) -> object: ...

    def set_combination_price_impact(self, combination_id: int, impact: Written) -> object: ...

    def product_price(self, product_id: int) -> Decimal | None:
        """The product's price as the channel shows it (None: not found)."""
        ...

    def combination_price(self, combination_id: int) -> Decimal | None: ...


class ReferencePort(Protocol):
    """The channel's categories, brands (manufacturers) and options (attribute groups and
    their values), each read whole."""

    def categories(self) -> Sequence[ChannelCategory]: ...
    def manufacturers(self) -> Sequence[Named]: ...
    def product_options(self) -> Sequence[ChannelOption]: ...
    def product_option_values(self) -> Sequence[ChannelOptionValue]: ...


class CatalogPort(ReferencePort, Protocol):
    """Reading the catalogue: every product in id order, the changed ones, some by id."""

    page_size: int

    def catalog_pages(self, *, after_id: int = 0) -> Iterator[Sequence[CatalogEntry]]:
        """Every product after ``after_id``, a page at a time, in id order (a full sync
        resumes from the last id of its last committed page)."""
        ...

    def products_changed_since(self, date_upd: str) -> Iterator[CatalogEntry]:
        """Products whose ``date_upd`` (the channel's clock) is after ``date_upd``."""
        ...

    def get_products(self, product_ids: Iterable[int]) -> Sequence[CatalogEntry]:
        """These products (batched reads); those the channel no longer has are left out."""
        ...

    def products_with_combinations_after(self, combination_id: int) -> set[int]:
        """Ids of the products with a variant whose id is above ``combination_id`` (a
        channel may add a variant without touching its product's ``date_upd``)."""
        ...

    def kept_stock_token(self, cached: Any, fresh: StockToken | None) -> Any:
        """The token a binding keeps when a read gave ``fresh`` and it held ``cached``:
        ``cached`` when only the quantity differs (not a change of the row), else
        ``fresh``."""
        ...


class ListingPort(ReferencePort, Protocol):
    """Creating and editing catalogue entries (listing, brands, activate/delete)."""

    @property
    def home_category_id(self) -> int:
        """The category new categories go under and an uncategorised product is put in;
        it and the root categories below its id are never matched by name."""
        ...

    def concurrently(self, jobs: Sequence[Callable[[], T]]) -> list[T]: ...

    @property
    def concurrency(self) -> int:
        """How many requests the channel takes at once (listing's thread count)."""
        ...

    def requests_by_method(self) -> dict[str, int]: ...

    def listed_products(self, references: Iterable[str]) -> dict[str, ListedProduct]:
        """Products whose SKU is one of ``references`` (batched reads)."""
        ...

    def create_category(self, *, name: str, parent_id: int = 2, active: bool = True) -> HasId: ...
    def create_manufacturer(self, *, name: str, active: bool = True) -> Named: ...
    def rename_manufacturer(self, manufacturer_id: int, name: str) -> object: ...
    def create_product_option(
        self, *, name: str, public_name: str | None = None, group_type: str = "select"
    ) -> HasId: ...
    def create_product_option_value(
        self, *, option_id: int, name: str, color: str = ""
    ) -> HasId: ...

    def create_product(
        self,
        *,
        name: str,
        reference: str,
        price: Decimal | float | str,
        category_id: int = 2,
        category_ids: Sequence[int] = (),
        manufacturer_id: int = 0,
        active: bool = True,
        ean13: str = "",
        description: str = "",
        weight: Decimal | float | str = 0,
        with_combinations: bool = False,
    ) -> HasId: ...

    def update_product(
        self,
        product_id: int,
        *,
        name: str | None = None,
        description: str | None = None,
        price: Decimal | float | str | None = None,
        active: bool | None = None,
        category_id: int | None = None,
        manufacturer_id: int | None = None,
    ) -> None: ...

    def create_combination(
        self,
        *,
        product_id: int,
        reference: str,
        price_impact: Decimal | float | str = 0,
        option_value_ids: Sequence[int] = (),
        minimal_quantity: int = 1,
        default_on: bool = False,
        ean13: str = "",
    ) -> HasId: ...

    def write_stock(self, product_id: int, quantities: Mapping[int, int]) -> dict[int, int]:
        """Set several stock rows of one product; combination id -> stock row id."""
        ...

    def upload_image(
        self,
        product_id: int,
        filename: str,
        content: bytes,
        content_type: str = "image/jpeg",
        *,
        first: bool = False,
    ) -> int: ...

    def set_active(self, product_id: int, active: bool) -> object: ...
    def delete_product(self, product_id: int) -> None: ...
    def delete_combination(self, combination_id: int) -> None: ...


class ChannelPort(OrderPort, StockPricePort, CatalogPort, ListingPort, Protocol):
    """Everything the engine calls on a channel (see the module docstring)."""

    def read_clock(self, saved: Mapping[str, Any] | None) -> ClockRead:
        """The channel's clock and facts at the start of a run; ``saved``: the store's
        saved facts (JSON), None when none are saved yet."""
        ...

    @property
    def requests_sent(self) -> int:
        """Requests sent so far (a sync run reports its own share)."""
        ...

    def close(self) -> None: ...


__all__ = [
    "STOCK_TOKEN",
    "CatalogEntry",
    "CatalogPort",
    "CatalogProduct",
    "CatalogStock",
    "CatalogVariant",
    "ChannelCategory",
    "ChannelOption",
    "ChannelOptionValue",
    "ChannelOrder",
    "ChannelPort",
    "ClockRead",
    "HasId",
    "ListedCombination",
    "ListedProduct",
    "ListingPort",
    "Named",
    "OrderLine",
    "OrderPort",
    "ReferencePort",
    "StateChanged",
    "StockPricePort",
    "StockPush",
    "StockToken",
    "Unit",
    "Written",
]


def checked_write(write: Callable[[], T], shows: Callable[[], bool]) -> T | None:
    """``write()``; when it fails in a way that may hide a success (``ChannelUnavailable``),
    read the store back with ``shows()``: ``None`` when the store shows the write applied,
    else the write's own error is raised (the outbox retries it; the next attempt reads or
    compares before writing again). A failing read-back counts as "not shown"."""
    try:
        return write()
    except ChannelUnavailable:
        try:
            applied = shows()
        except ChannelError:
            applied = False
        if not applied:
            raise
        return None
