"""A second channel implements ``ChannelPort`` and nothing else.

``FakeChannel`` below knows no PrestaShop: mypy (strict) checks that it is a
``ChannelPort``; the order sync's entry point imports one order through it into a real
SQLite database (no network), and the catalogue sync binds its product and variants. The
PrestaShop adapter's own conformance is checked by mypy in
``channels/prestashop/adapter.py`` (``as_port``), which the tooling test runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from engine.errors import ConfigError
from engine.runtime.channels import registry
from engine.runtime.channels.port import (
    ChannelPort,
    ClockRead,
    HasId,
    ListedProduct,
    Named,
    StockPush,
)
from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.tables import BindingRow, InventoryRow, OrderRow, ProductRow
from engine.runtime.effects.base import ProductInfo
from engine.runtime.specs import load_bundle
from engine.runtime.sync import sync_catalog, sync_orders

T = TypeVar("T")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PAID = 10  # the fake channel's id of its "Payment accepted" state


@dataclass(frozen=True)
class FakeLine:
    product_id: int
    product_attribute_id: int
    product_quantity: int
    name: str = ""


@dataclass(frozen=True)
class FakeOrder:
    id: int
    current_state: int
    date_add: str | None
    date_upd: str | None
    rows: tuple[FakeLine, ...] = ()
    reference: str = ""
    related: Mapping[str, Any] = field(default_factory=dict)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "date_add": self.date_add,
            "date_upd": self.date_upd,
            "current_state": self.current_state,
            "total_paid_tax_incl": "9.00",
            "order_rows": [
                {
                    "id": i + 1,
                    "product_id": r.product_id,
                    "product_attribute_id": r.product_attribute_id,
                    "product_quantity": r.product_quantity,
                    "product_name": r.name,
                }
                for i, r in enumerate(self.rows)
            ],
        }


@dataclass(frozen=True)
class FakeVariant:
    id: int
    reference: str
    option_value_ids: tuple[int, ...] = ()
    image_ids: tuple[int, ...] = ()

    def to_mapping(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        return {"reference": self.reference, "price": "1.50"}


@dataclass(frozen=True)
class FakeProduct:
    id: int
    reference: str
    name: str
    category_ids: tuple[int, ...] = ()
    date_upd: str | None = "2026-03-01 09:00:00"

    def to_mapping(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        return {"reference": self.reference, "name": self.name, "price": "10", "active": "1"}


@dataclass(frozen=True)
class FakeStock:
    id: int
    combination_id: int
    quantity: int

    @property
    def token(self) -> dict[str, Any]:
        return {"row": self.id, "quantity": self.quantity}


@dataclass(frozen=True)
class FakeEntry:
    product: FakeProduct
    combinations: tuple[FakeVariant, ...]
    stock: tuple[FakeStock, ...]
    cover_image_url: str | None = None

    def image_url(self, image_id: int) -> str:
        return f"https://fake.invalid/img/{image_id}"


@dataclass(frozen=True)
class FakeCategory:
    id: int
    name: str
    parent_id: int = 0
    active: bool = True
    is_root_category: bool = False


@dataclass(frozen=True)
class FakeOption:
    id: int
    name: str
    public_name: str = ""


@dataclass(frozen=True)
class FakeOptionValue:
    id: int
    name: str
    option_id: int


@dataclass(frozen=True)
class Changed:
    changed: bool


@dataclass(frozen=True)
class Made:
    id: int
    name: str = ""


class FakeChannel:
    """An in-memory channel: orders to read, and a log of the writes it was asked for."""

    page_size = 100
    home_category_id = 1

    def __init__(
        self, orders: Sequence[FakeOrder] = (), catalog: Sequence[FakeEntry] = ()
    ) -> None:
        self.orders = list(orders)
        self.catalog = list(catalog)
        self.writes: list[tuple[str, Any]] = []
        self.calls = 0

    # -- orders
    def resolve_states(
        self, names: Iterable[str], state_keys: Mapping[str, int] | None = None
    ) -> tuple[dict[str, int], list[str]]:
        known = {"Payment accepted": PAID}
        wanted = list(names)
        return {n: known[n] for n in wanted if n in known}, [n for n in wanted if n not in known]

    def order_states(self) -> list[Named]:
        return [Made(PAID, "Payment accepted")]

    def first_order_id_since(self, date_add: str) -> int | None:
        self.calls += 1
        ids = [o.id for o in self.orders if (o.date_add or "") >= date_add]
        return min(ids) if ids else None

    def orders_since_id(
        self, cursor_id: int, *, states: Iterable[int] | None = None
    ) -> Iterator[FakeOrder]:
        self.calls += 1
        wanted = set(states or ())
        yield from (
            o
            for o in self.orders
            if o.id > cursor_id and (not wanted or o.current_state in wanted)
        )

    def orders_changed_since(
        self, date_upd: str, *, states: Iterable[int] | None = None
    ) -> Iterator[FakeOrder]:
        self.calls += 1
        yield from (o for o in self.orders if (o.date_upd or "") > date_upd)

    def read_related(self, orders: Sequence[Any], cache: dict[str, dict[int, Any]]) -> list[Any]:
        return list(orders)

    def set_order_state(
        self,
        order_id: int,
        state_id: int,
        *,
        send_email: bool | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Changed:
        self.writes.append(("state", (order_id, state_id)))
        return Changed(True)

    def set_tracking_number(self, order_id: int, number: str, *, send_email: bool = False) -> None:
        self.writes.append(("tracking", (order_id, number)))

    def tracking_numbers(self, order_id: int) -> list[str]:
        return [n for kind, (o, n) in self.writes if kind == "tracking" and o == order_id]

    # -- stock and price
    def push_stock(
        self,
        product_id: int,
        combination_id: int | None,
        write: Mapping[str, Any] | Decimal | int | str,
        *,
        token: Any = None,
    ) -> StockPush:
        quantity = int(write["quantity"]) if isinstance(write, Mapping) else int(write)
        self.writes.append(("stock", (product_id, combination_id, quantity)))
        return StockPush(quantity, token={"seen": quantity})

    def set_price(self, product_id: int, price: Mapping[str, Any] | Decimal | int | str) -> None:
        self.writes.append(("price", (product_id, price)))

    def set_combination_price_impact(
        self, combination_id: int, impact: Mapping[str, Any] | Decimal | int | str
    ) -> None:
        self.writes.append(("impact", (combination_id, impact)))

    def product_price(self, product_id: int) -> Decimal | None:
        return None

    def combination_price(self, combination_id: int) -> Decimal | None:
        return None

    # -- reference data and the catalogue
    def categories(self) -> list[FakeCategory]:
        return [FakeCategory(3, "Mugs")]

    def manufacturers(self) -> list[Named]:
        return []

    def product_options(self) -> list[FakeOption]:
        return [FakeOption(1, "Size")]

    def product_option_values(self) -> list[FakeOptionValue]:
        return [FakeOptionValue(11, "S", 1), FakeOptionValue(12, "L", 1)]

    def catalog_pages(self, *, after_id: int = 0) -> Iterator[list[FakeEntry]]:
        self.calls += 1
        page = [e for e in self.catalog if e.product.id > after_id]
        if page:
            yield page

    def products_changed_since(self, date_upd: str) -> Iterator[FakeEntry]:
        self.calls += 1
        yield from (e for e in self.catalog if (e.product.date_upd or "") > date_upd)

    def get_products(self, product_ids: Iterable[int]) -> list[FakeEntry]:
        wanted = set(product_ids)
        return [e for e in self.catalog if e.product.id in wanted]

    def products_with_combinations_after(self, combination_id: int) -> set[int]:
        return {
            e.product.id for e in self.catalog for c in e.combinations if c.id > combination_id
        }

    def kept_stock_token(self, cached: Any, fresh: Mapping[str, Any] | None) -> Any:
        return cached if isinstance(cached, Mapping) and fresh is not None else fresh

    # -- listing

    def concurrently(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        return [job() for job in jobs]

    @property
    def concurrency(self) -> int:
        return 1

    def requests_by_method(self) -> dict[str, int]:
        return {"GET": self.calls}

    def listed_products(self, references: Iterable[str]) -> dict[str, ListedProduct]:
        return {}

    def create_category(self, *, name: str, parent_id: int = 2, active: bool = True) -> HasId:
        return Made(1, name)

    def create_manufacturer(self, *, name: str, active: bool = True) -> Named:
        return Made(1, name)

    def rename_manufacturer(self, manufacturer_id: int, name: str) -> None:
        self.writes.append(("brand", (manufacturer_id, name)))

    def create_product_option(
        self, *, name: str, public_name: str | None = None, group_type: str = "select"
    ) -> HasId:
        return Made(1, name)

    def create_product_option_value(self, *, option_id: int, name: str, color: str = "") -> HasId:
        return Made(1, name)

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
    ) -> HasId:
        return Made(1, name)

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
    ) -> None:
        return None

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
    ) -> HasId:
        return Made(1, reference)

    def write_stock(self, product_id: int, quantities: Mapping[int, int]) -> dict[int, int]:
        return {}

    def upload_image(
        self,
        product_id: int,
        filename: str,
        content: bytes,
        content_type: str = "image/jpeg",
        *,
        first: bool = False,
    ) -> int:
        return 1

    def set_active(self, product_id: int, active: bool) -> None:
        return None

    def delete_product(self, product_id: int) -> None:
        return None

    def delete_combination(self, combination_id: int) -> None:
        return None

    # -- a run's bookkeeping
    def read_clock(self, saved: Mapping[str, Any] | None) -> ClockRead:
        return ClockRead("UTC", server_time=NOW, notes=("fake_clock_read",))

    @property
    def requests_sent(self) -> int:
        return self.calls

    def close(self) -> None:
        return None


def as_port(channel: FakeChannel) -> ChannelPort:
    """What mypy checks below: the fake is a ``ChannelPort``."""
    return channel


@pytest.mark.slow
def test_the_fake_channel_type_checks_as_a_port() -> None:
    from mypy import api

    root = Path(__file__).resolve().parents[3]
    out, err, code = api.run(["--config-file", str(root / "pyproject.toml"), __file__])
    assert code == 0, out + err


def test_the_order_sync_imports_an_order_through_the_fake_channel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fake.db'}"
    bundle = load_bundle()
    engine = dbsession.make_engine(url)
    try:
        dbsession.upgrade(engine)
        sessions = dbsession.session_factory(engine)
        with sessions.begin() as s:
            store = stores.save_store(
                s, "fake", "https://fake.invalid", "k" * 32, {"Payment accepted": PAID}
            )
            mug = ProductRow(
                sku="MUG",
                name="Mug",
                store_ids={str(store.id): {"product_id": 7, "combination_id": None}},
            )
            s.add(mug)
            s.flush()
            s.add(
                BindingRow(
                    store_id=store.id, kind="product", external_id="7", internal_id=str(mug.id)
                )
            )
            s.add(InventoryRow(sku="MUG", on_hand=5, reserved=0))
        fake = FakeChannel(
            [
                FakeOrder(
                    id=41,
                    current_state=PAID,
                    date_add="2026-03-01 10:00:00",
                    date_upd="2026-03-01 10:00:00",
                    rows=(FakeLine(7, 0, 2, "Mug"),),
                    reference="FAKE41",
                )
            ]
        )
        report = sync_orders(sessions, bundle, "fake", adapter=as_port(fake), now=NOW)
        assert report.counts["orders_created"] == 1
        assert report.counts["fake_clock_read"] == 1
        with sessions() as s:
            order = s.scalars(select(OrderRow)).one()
            assert (order.external_id, order.reference, order.state) == ("41", "FAKE41", "New")
            assert [(li.sku, li.quantity, li.reserved) for li in order.lines] == [("MUG", 2, 2)]
            assert s.get(InventoryRow, "MUG").reserved == 2  # type: ignore[union-attr]
        again = sync_orders(sessions, bundle, "fake", adapter=fake, now=NOW)
        assert "orders_created" not in again.counts
        assert fake.writes == []  # reading orders writes nothing to the channel
    finally:
        engine.dispose()


def test_the_catalogue_sync_binds_a_fake_channels_product_and_variants(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fake.db'}"
    bundle = load_bundle()
    engine = dbsession.make_engine(url)
    try:
        dbsession.upgrade(engine)
        sessions = dbsession.session_factory(engine)
        with sessions.begin() as s:
            store = stores.save_store(
                s, "fake", "https://fake.invalid", "k" * 32, {"Payment accepted": PAID}
            )
        tee = FakeEntry(
            FakeProduct(7, "TEE", "Tee", category_ids=(3,)),
            (FakeVariant(70, "TEE-S", (11,), image_ids=(5,)), FakeVariant(71, "TEE-L", (12,))),
            (FakeStock(100, 0, 9), FakeStock(101, 70, 4), FakeStock(102, 71, 5)),
        )
        fake = FakeChannel(catalog=[tee])
        report = sync_catalog(sessions, bundle, "fake", adapter=as_port(fake))
        assert report.mode == "full"
        assert report.counts["products_created"] == 1
        assert report.counts["combinations_created"] == 2
        with sessions() as s:
            rows = {r.sku: r for r in s.scalars(select(ProductRow))}
            assert sorted(rows) == ["TEE", "TEE-L", "TEE-S"]
            small = rows["TEE-S"]
            assert small.parent_id == rows["TEE"].id
            assert small.name == "Tee - Size : S"
            assert small.price == Decimal("11.50")
            assert small.image_url == "https://fake.invalid/img/5"
            binding = small.store_ids[str(store.id)]
            assert (binding["product_id"], binding["combination_id"]) == (7, 70)
            assert binding["stock_available_id"] == 101
            assert binding["stock_token"] == {"row": 101, "quantity": 4}
            on_hand = {i.sku: i.on_hand for i in s.scalars(select(InventoryRow))}
            assert on_hand == {"TEE-S": 4, "TEE-L": 5}
        again = sync_catalog(sessions, bundle, "fake", adapter=fake)
        assert again.mode == "delta"
        assert "rows_updated" not in again.counts
        assert fake.writes == []  # reading the catalogue writes nothing to the channel
    finally:
        engine.dispose()


def test_a_store_of_a_registered_channel_opens_through_its_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeChannel(
        catalog=[FakeEntry(FakeProduct(8, "CUP", "Cup"), (), (FakeStock(1, 0, 3),))]
    )
    opened: list[tuple[str, Any]] = []

    def open_fake(
        url: str, key: Any, spec: Any, *, facts: Mapping[str, Any] | None = None, **kw: Any
    ) -> ChannelPort:
        opened.append((url, facts))
        return fake

    monkeypatch.setitem(registry._FACTORIES, "fake", open_fake)
    assert "fake" in registry.known()
    engine = dbsession.make_engine(f"sqlite:///{tmp_path / 'fake.db'}")
    try:
        dbsession.upgrade(engine)
        sessions = dbsession.session_factory(engine)
        with sessions.begin() as s:
            stores.save_store(s, "fake", "https://fake.invalid", "k" * 32, {}, channel="fake")
        report = sync_catalog(sessions, load_bundle(), "fake")
        assert opened == [("https://fake.invalid", None)]
        assert report.counts["products_created"] == 1
    finally:
        engine.dispose()


def test_an_unknown_channel_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        registry.open_channel("shopify", "https://x.invalid", "k", None)
    assert str(err.value) == "unknown channel 'shopify' (known: prestashop)"


def test_a_binding_written_before_tokens_hands_its_stock_body_over_as_the_token() -> None:
    old = ProductInfo(1, "MUG", None, {"1": {"product_id": 7, "stock": {"id": 3}}})
    new = ProductInfo(1, "MUG", None, {"1": {"product_id": 7, "stock_token": {"id": 4}}})
    assert (old.binding(1) or {})["stock_token"] == {"id": 3}
    assert (new.binding(1) or {})["stock_token"] == {"id": 4}
