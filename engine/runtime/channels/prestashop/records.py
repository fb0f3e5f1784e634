"""Typed, frozen records the PrestaShop adapter returns (never raw dicts), built from the
normalised XML/JSON shape with every PrestaShop quirk coerced here: ints as strings, falsy
fields dropped by 8.x JSON (a missing key is empty/zero), multilingual values as a string or a
list. ``to_mapping()`` gives PrestaShop field names for ``core.map_record`` (channel YAML
``mappings``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from engine.errors import ChannelProtocolError

R = TypeVar("R")

# --------------------------------------------------------------------------- coercion


def as_int(value: Any, default: int = 0) -> int:
    """PrestaShop ints arrive as int, ``"12"``, ``""``/missing (falsy, dropped) or ``None``."""
    kind = type(value)
    if kind is int:  # the common cases first: a catalogue page calls this ~50 times a product
        return value  # type: ignore[no-any-return]
    if kind is str and value:
        try:
            return int(value)  # int() itself allows surrounding whitespace
        except ValueError:
            pass
    if value is None or value == "" or value is False:
        return default
    if value is True:
        return 1
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            return int(Decimal(str(value).strip()))
        except (InvalidOperation, ValueError) as exc:
            raise ChannelProtocolError(f"prestashop: expected an integer, got {value!r}") from exc


def as_decimal(value: Any) -> Decimal:
    """Decimals arrive as ``"16.510000"`` (or a number); missing means 0."""
    if value is None or value == "" or value is False:
        return Decimal(0)
    try:
        return Decimal((value if type(value) is str else str(value)).strip())
    except InvalidOperation as exc:
        raise ChannelProtocolError(f"prestashop: expected a decimal, got {value!r}") from exc


def as_bool(value: Any) -> bool:
    """Booleans arrive as ``"0"``/``"1"``, 0/1, true/false, or missing (false)."""
    if isinstance(value, str):
        return value.strip() not in {"", "0", "false"}
    return bool(value)


def as_str(value: Any) -> str:
    if type(value) is str:  # the common case
        return value
    if value is None or value is False:
        return ""
    if isinstance(value, list):
        return language_value(value)
    return str(value)


def language_values(value: Any) -> dict[int, str]:
    """A multilingual value: a plain string (one language) or ``[{"id", "value"}]``."""
    if isinstance(value, list):
        out: dict[int, str] = {}
        for item in value:
            if isinstance(item, Mapping):
                out[as_int(item.get("id"))] = as_str(item.get("value"))
        return out
    if value is None or value == "":
        return {}
    return {0: str(value)}


def language_value(value: Any, language_id: int | None = None) -> str:
    """One language of a multilingual value: ``language_id`` if present, else the first
    non-empty one, else ``""``."""
    return _pick_language(language_values(value), language_id)


def _pick_language(values: Mapping[int, str], language_id: int | None) -> str:
    """``language_value`` of values already split by ``language_values``."""
    if language_id is not None and values.get(language_id):
        return values[language_id]
    for text in values.values():
        if text:
            return text
    return ""


def assoc_ids(data: Mapping[str, Any], name: str) -> tuple[int, ...]:
    """The ids of one association set (``associations.categories`` -> ``(2, 3, 4)``)."""
    assocs = data.get("associations") or {}
    items = assocs.get(name) if isinstance(assocs, Mapping) else None
    if not items:
        return ()
    # (a decoded page's items are plain dicts: no ABC check for those)
    return tuple(
        [
            as_int(item.get("id"))
            for item in items
            if type(item) is dict or isinstance(item, Mapping)
        ]
    )


def assoc_items(data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    assocs = data.get("associations") or {}
    items = assocs.get(name) if isinstance(assocs, Mapping) else None
    return [i for i in (items or []) if isinstance(i, Mapping)]


def _date(value: Any) -> str | None:
    """Dates stay in PrestaShop's form (``YYYY-MM-DD HH:MM:SS``, shop timezone); the zero
    date means none."""
    text = as_str(value).strip()
    if not text or text.startswith("0000-00-00"):
        return None
    return text


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class OrderState:
    id: int
    name: str
    names: Mapping[int, str] = field(default_factory=dict)
    paid: bool = False
    shipped: bool = False
    delivery: bool = False
    logable: bool = False
    deleted: bool = False
    module_name: str = ""

    @classmethod
    def from_data(cls, d: Mapping[str, Any], language_id: int | None = None) -> OrderState:
        return cls(
            id=as_int(d.get("id")),
            name=language_value(d.get("name"), language_id),
            names=language_values(d.get("name")),
            paid=as_bool(d.get("paid")),
            shipped=as_bool(d.get("shipped")),
            delivery=as_bool(d.get("delivery")),
            logable=as_bool(d.get("logable")),
            deleted=as_bool(d.get("deleted")),
            module_name=as_str(d.get("module_name")),
        )

    def to_mapping(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "paid": self.paid,
            "shipped": self.shipped,
            "delivery": self.delivery,
            "deleted": self.deleted,
        }


@dataclass(frozen=True)
class OrderRow:
    id: int
    product_id: int
    product_attribute_id: int
    product_quantity: int
    product_name: str
    product_reference: str
    product_ean13: str
    product_price: Decimal
    unit_price_tax_incl: Decimal
    unit_price_tax_excl: Decimal
    rest: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The row's other fields, as sent (``to_mapping``)."""

    @classmethod
    def from_data(cls, d: Mapping[str, Any]) -> OrderRow:
        return cls(
            id=as_int(d.get("id")),
            product_id=as_int(d.get("product_id")),
            product_attribute_id=as_int(d.get("product_attribute_id")),
            product_quantity=as_int(d.get("product_quantity")),
            product_name=as_str(d.get("product_name")),
            product_reference=as_str(d.get("product_reference")),
            product_ean13=as_str(d.get("product_ean13")),
            product_price=as_decimal(d.get("product_price")),
            unit_price_tax_incl=as_decimal(d.get("unit_price_tax_incl")),
            unit_price_tax_excl=as_decimal(d.get("unit_price_tax_excl")),
            rest=_rest(cls, d),
        )

    def to_mapping(self) -> dict[str, Any]:
        return {
            **self.rest,
            "id": self.id,
            "product_id": self.product_id,
            "product_attribute_id": self.product_attribute_id,
            "product_quantity": self.product_quantity,
            "product_name": self.product_name,
            "product_reference": self.product_reference,
            "product_ean13": self.product_ean13,
            "product_price": self.product_price,
            "unit_price_tax_incl": self.unit_price_tax_incl,
            "unit_price_tax_excl": self.unit_price_tax_excl,
        }


@dataclass(frozen=True)
class Order:
    id: int
    reference: str
    current_state: int
    id_customer: int
    id_currency: int
    id_carrier: int
    id_address_delivery: int
    id_address_invoice: int
    id_lang: int
    id_shop: int
    module: str
    payment: str
    valid: bool
    date_add: str | None
    date_upd: str | None
    total_paid: Decimal
    total_paid_tax_incl: Decimal
    total_paid_tax_excl: Decimal
    total_products: Decimal
    total_products_wt: Decimal
    total_shipping: Decimal
    total_shipping_tax_incl: Decimal
    total_shipping_tax_excl: Decimal
    total_discounts: Decimal
    shipping_number: str
    rows: tuple[OrderRow, ...] = ()
    rest: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The order's other fields as sent (``gift_message``, ``note``, a module's), for the
    mappings (``to_mapping``)."""
    related: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """What the adapter read around the order (``PrestaShopAdapter.with_related``):
    ``customer``, ``delivery_address``, ``invoice_address``, ``carrier``, ``currency``
    (``resources.order_reads``), given to the mappings as associations."""

    @classmethod
    def from_data(cls, d: Mapping[str, Any]) -> Order:
        return cls(
            id=as_int(d.get("id")),
            reference=as_str(d.get("reference")),
            current_state=as_int(d.get("current_state")),
            id_customer=as_int(d.get("id_customer")),
            id_currency=as_int(d.get("id_currency")),
            id_carrier=as_int(d.get("id_carrier")),
            id_address_delivery=as_int(d.get("id_address_delivery")),
            id_address_invoice=as_int(d.get("id_address_invoice")),
            id_lang=as_int(d.get("id_lang")),
            id_shop=as_int(d.get("id_shop")),
            module=as_str(d.get("module")),
            payment=as_str(d.get("payment")),
            valid=as_bool(d.get("valid")),
            date_add=_date(d.get("date_add")),
            date_upd=_date(d.get("date_upd")),
            total_paid=as_decimal(d.get("total_paid")),
            total_paid_tax_incl=as_decimal(d.get("total_paid_tax_incl")),
            total_paid_tax_excl=as_decimal(d.get("total_paid_tax_excl")),
            total_products=as_decimal(d.get("total_products")),
            total_products_wt=as_decimal(d.get("total_products_wt")),
            total_shipping=as_decimal(d.get("total_shipping")),
            total_shipping_tax_incl=as_decimal(d.get("total_shipping_tax_incl")),
            total_shipping_tax_excl=as_decimal(d.get("total_shipping_tax_excl")),
            total_discounts=as_decimal(d.get("total_discounts")),
            shipping_number=as_str(d.get("shipping_number")),
            rows=tuple(OrderRow.from_data(r) for r in assoc_items(d, "order_rows")),
            rest=_rest(cls, d),
        )

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.rest)
        out.update({name: getattr(self, name) for name in _ORDER_OWN})
        out["order_rows"] = [row.to_mapping() for row in self.rows]
        out.update(self.related)
        return out


@dataclass(frozen=True)
class OrderHistory:
    id: int
    id_order: int
    id_order_state: int
    id_employee: int
    date_add: str | None

    @classmethod
    def from_data(cls, d: Mapping[str, Any]) -> OrderHistory:
        return cls(
            id=as_int(d.get("id")),
            id_order=as_int(d.get("id_order")),
            id_order_state=as_int(d.get("id_order_state")),
            id_employee=as_int(d.get("id_employee")),
            date_add=_date(d.get("date_add")),
        )

    def to_mapping(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class OrderCarrier:
    id: int
    id_order: int
    id_carrier: int
    id_order_invoice: int
    weight: Decimal
    shipping_cost_tax_excl: Decimal
    shipping_cost_tax_incl: Decimal
    tracking_number: str
    date_add: str | None

    @classmethod
    def from_data(cls, d: Mapping[str, Any]) -> OrderCarrier:
        return cls(
            id=as_int(d.get("id")),
            id_order=as_int(d.get("id_order")),
            id_carrier=as_int(d.get("id_carrier")),
            id_order_invoice=as_int(d.get("id_order_invoice")),
            weight=as_decimal(d.get("weight")),
            shipping_cost_tax_excl=as_decimal(d.get("shipping_cost_tax_excl")),
            shipping_cost_tax_incl=as_decimal(d.get("shipping_cost_tax_incl")),
            tracking_number=as_str(d.get("tracking_number")),
            date_add=_date(d.get("date_add")),
        )

    def to_mapping(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class Category:
    id: int
    id_parent: int
    name: str
    link_rewrite: str
    active: bool
    level_depth: int
    is_root_category: bool
    position: int
    date_upd: str | None
    child_ids: tuple[int, ...] = ()

    @classmethod
    def from_data(cls, d: Mapping[str, Any], language_id: int | None = None) -> Category:
        return cls(
            id=as_int(d.get("id")),
            id_parent=as_int(d.get("id_parent")),
            name=language_value(d.get("name"), language_id),
            link_rewrite=language_value(d.get("link_rewrite"), language_id),
            active=as_bool(d.get("active")),
            level_depth=as_int(d.get("level_depth")),
            is_root_category=as_bool(d.get("is_root_category")),
            position=as_int(d.get("position")),
            date_upd=_date(d.get("date_upd")),
            child_ids=assoc_ids(d, "categories"),
        )

    @property
    def parent_id(self) -> int:
        return self.id_parent

    def to_mapping(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["child_ids"] = list(self.child_ids)
        return out


@dataclass(frozen=True)
class Manufacturer:
    id: int
    name: str
    active: bool
    date_upd: str | None

    @classmethod
    def from_data(cls, d: Mapping[str, Any]) -> Manufacturer:
        return cls(
            id=as_int(d.get("id")),
            name=as_str(d.get("name")),
            active=as_bool(d.get("active")),
            date_upd=_date(d.get("date_upd")),
        )

    def to_mapping(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class ProductOption:
    """An attribute group (``product_options``), e.g. Size or Color."""

    id: int
    name: str
    public_name: str
    group_type: str
    is_color_group: bool
    position: int
    value_ids: tuple[int, ...] = ()

    @classmethod
    def from_data(cls, d: Mapping[str, Any], language_id: int | None = None) -> ProductOption:
        return cls(
            id=as_int(d.get("id")),
            name=language_value(d.get("name"), language_id),
            public_name=language_value(d.get("public_name"), language_id),
            group_type=as_str(d.get("group_type")),
            is_color_group=as_bool(d.get("is_color_group")),
            position=as_int(d.get("position")),
            value_ids=assoc_ids(d, "product_option_values"),
        )

    def to_mapping(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["value_ids"] = list(self.value_ids)
        return out


@dataclass(frozen=True)
class ProductOptionValue:
    """An attribute value (``product_option_values``), e.g. S; ``id_attribute_group`` is its
    option."""

    id: int
    id_attribute_group: int
    name: str
    color: str
    position: int

    @classmethod
    def from_data(cls, d: Mapping[str, Any], language_id: int | None = None) -> ProductOptionValue:
        return cls(
            id=as_int(d.get("id")),
            id_attribute_group=as_int(d.get("id_attribute_group")),
            name=language_value(d.get("name"), language_id),
            color=as_str(d.get("color")),
            position=as_int(d.get("position")),
        )

    @property
    def option_id(self) -> int:
        return self.id_attribute_group

    def to_mapping(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class StockRef:
    """A ``stock_availables`` association item of a product: row id + combination id."""

    id: int
    id_product_attribute: int


@dataclass(frozen=True)
class Product:
    id: int
    reference: str
    name: str
    price: Decimal
    active: bool
    id_manufacturer: int
    manufacturer_name: str
    id_category_default: int
    id_default_image: int
    id_default_combination: int
    ean13: str
    weight: Decimal
    date_add: str | None
    date_upd: str | None
    category_ids: tuple[int, ...] = ()
    combination_ids: tuple[int, ...] = ()
    image_ids: tuple[int, ...] = ()
    option_value_ids: tuple[int, ...] = ()
    stock_refs: tuple[StockRef, ...] = ()
    names: Mapping[int, str] = field(default_factory=dict)
    rest: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The product's other fields as sent (a module's too), for the mappings."""

    @classmethod
    def from_data(cls, d: Mapping[str, Any], language_id: int | None = None) -> Product:
        names = language_values(d.get("name"))
        return cls(
            id=as_int(d.get("id")),
            reference=as_str(d.get("reference")),
            name=_pick_language(names, language_id),
            price=as_decimal(d.get("price")),
            active=as_bool(d.get("active")),
            id_manufacturer=as_int(d.get("id_manufacturer")),
            manufacturer_name=as_str(d.get("manufacturer_name")),
            id_category_default=as_int(d.get("id_category_default")),
            id_default_image=as_int(d.get("id_default_image")),
            id_default_combination=as_int(d.get("id_default_combination")),
            ean13=as_str(d.get("ean13")),
            weight=as_decimal(d.get("weight")),
            date_add=_date(d.get("date_add")),
            date_upd=_date(d.get("date_upd")),
            category_ids=assoc_ids(d, "categories"),
            combination_ids=assoc_ids(d, "combinations"),
            image_ids=assoc_ids(d, "images"),
            option_value_ids=assoc_ids(d, "product_option_values"),
            stock_refs=tuple(
                StockRef(as_int(i.get("id")), as_int(i.get("id_product_attribute")))
                for i in assoc_items(d, "stock_availables")
            ),
            names=names,
            rest=_rest(cls, d),
        )

    def to_mapping(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The product's fields by PrestaShop name (``names``: only those, for a mapping
        that reads a few of ~80)."""
        if names is not None:
            return _project(self, names, _PRODUCT_OWN, _PRODUCT_LISTS)
        out = dict(self.rest)
        out.update((name, getattr(self, name)) for name in _PRODUCT_OWN)
        for key in _PRODUCT_LISTS:
            out[key] = list(out[key])
        return out


@dataclass(frozen=True)
class Combination:
    """A product variant; ``price`` is the *impact* on the product's base price."""

    id: int
    id_product: int
    reference: str
    ean13: str
    price: Decimal
    weight: Decimal
    minimal_quantity: int
    default_on: bool
    option_value_ids: tuple[int, ...] = ()
    image_ids: tuple[int, ...] = ()
    rest: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The combination's other fields as sent, for the mappings."""

    @property
    def price_impact(self) -> Decimal:
        return self.price

    @classmethod
    def from_data(cls, d: Mapping[str, Any]) -> Combination:
        return cls(
            id=as_int(d.get("id")),
            id_product=as_int(d.get("id_product")),
            reference=as_str(d.get("reference")),
            ean13=as_str(d.get("ean13")),
            price=as_decimal(d.get("price")),
            weight=as_decimal(d.get("weight")),
            minimal_quantity=as_int(d.get("minimal_quantity"), 1),
            default_on=as_bool(d.get("default_on")),
            option_value_ids=assoc_ids(d, "product_option_values"),
            image_ids=assoc_ids(d, "images"),
            rest=_rest(cls, d),
        )

    def to_mapping(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The combination's fields by PrestaShop name (``names``: only those)."""
        if names is not None:
            return _project(self, names, _COMBINATION_OWN, _COMBINATION_LISTS)
        out = {**self.rest, **vars(self)}
        out.pop("rest", None)
        out["option_value_ids"] = list(self.option_value_ids)
        out["image_ids"] = list(self.image_ids)
        return out


@dataclass(frozen=True)
class StockAvailable:
    """A stock row; ``id_product_attribute`` 0 is the product-level row."""

    id: int
    id_product: int
    id_product_attribute: int
    quantity: int
    depends_on_stock: bool
    out_of_stock: int
    id_shop: int
    id_shop_group: int
    location: str = ""

    @classmethod
    def from_data(cls, d: Mapping[str, Any]) -> StockAvailable:
        return cls(
            id=as_int(d.get("id")),
            id_product=as_int(d.get("id_product")),
            id_product_attribute=as_int(d.get("id_product_attribute")),
            quantity=as_int(d.get("quantity")),
            depends_on_stock=as_bool(d.get("depends_on_stock")),
            out_of_stock=as_int(d.get("out_of_stock")),
            id_shop=as_int(d.get("id_shop")),
            id_shop_group=as_int(d.get("id_shop_group")),
            location=as_str(d.get("location")),
        )

    @property
    def combination_id(self) -> int:
        return self.id_product_attribute

    @property
    def token(self) -> dict[str, Any]:
        """The stock token a binding keeps (``port.StockToken``): the row's complete
        writable body (``adapter.STOCK_FIELDS``, JSON-safe), so ``push_stock`` can PUT it
        without reading the row first."""
        return {
            "id": self.id,
            "id_product": self.id_product,
            "id_product_attribute": self.id_product_attribute,
            "id_shop": self.id_shop,
            "id_shop_group": self.id_shop_group,
            "quantity": self.quantity,
            "depends_on_stock": int(self.depends_on_stock),
            "out_of_stock": self.out_of_stock,
            "location": self.location,
        }

    def to_mapping(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class CatalogItem:
    """One product as the catalogue read returns it (a ``port.CatalogEntry``): the
    product, its combinations, its stock rows (product-level and per combination) and the
    cover image URL."""

    product: Product
    combinations: tuple[Combination, ...]
    stock: tuple[StockAvailable, ...]
    cover_image_url: str | None
    api_url: str = ""
    """The webservice's root (``https://shop/api``): images are under it."""

    def image_url(self, image_id: int) -> str:
        """``{api}/images/products/<id>/<image_id>`` (needs the key to fetch)."""
        return f"{self.api_url}/images/products/{self.product.id}/{image_id}"

    def quantity(self, combination_id: int = 0) -> int | None:
        for row in self.stock:
            if row.id_product_attribute == combination_id:
                return row.quantity
        return None


def _rest(cls: Any, d: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``d`` the record ``cls`` does not type (a store's other fields, its
    modules' fields), as the store sent them: ``to_mapping`` hands them to the mappings."""
    typed = _typed_fields(cls)
    return {k: v for k, v in d.items() if k not in typed}


@functools.cache
def _typed_fields(cls: Any) -> frozenset[str]:
    return frozenset((*cls.__dataclass_fields__, "associations"))


_ORDER_OWN = tuple(n for n in Order.__dataclass_fields__ if n not in {"rows", "rest", "related"})
_PRODUCT_OWN = tuple(
    n for n in Product.__dataclass_fields__ if n not in {"stock_refs", "names", "rest"}
)
_PRODUCT_LISTS = frozenset({"category_ids", "combination_ids", "image_ids", "option_value_ids"})
_COMBINATION_OWN = tuple(n for n in Combination.__dataclass_fields__ if n != "rest")
_COMBINATION_LISTS = frozenset({"option_value_ids", "image_ids"})


def _project(
    record: Any, names: Iterable[str], own: Sequence[str], lists: frozenset[str]
) -> dict[str, Any]:
    """``record.to_mapping()`` restricted to ``names`` (absent names stay absent)."""
    out: dict[str, Any] = {}
    rest = record.rest
    for name in names:
        if name in own:
            value = getattr(record, name)
            out[name] = list(value) if name in lists else value
        elif name in rest:
            out[name] = rest[name]
    return out


def with_fields(record: R, **changes: Any) -> R:
    """``dataclasses.replace(record, **changes)`` for these records (frozen, every field
    set by ``__init__``, nothing run after it): the fields copied as they are, without
    ``replace``'s per-call field walk and ``__init__`` (a page of orders does this for
    each order and each of its rows). Any other class goes through ``replace``."""
    cls: Any = type(record)
    if not _plain_record(cls):
        return dataclasses.replace(record, **changes)  # type: ignore[type-var]
    fields = cls.__dataclass_fields__
    for name in changes:
        if name not in fields:  # replace's error for an unknown field
            return dataclasses.replace(record, **changes)  # type: ignore[type-var]
    new: R = object.__new__(cls)
    state = new.__dict__
    state.update(record.__dict__)
    state.update(changes)
    return new


@functools.cache
def _plain_record(cls: Any) -> bool:
    """A frozen dataclass whose instances hold exactly their fields, all set by
    ``__init__`` (no ``__post_init__``, ``InitVar``, ``init=False`` field or slots)."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__slots__"):
        return False
    if hasattr(cls, "__post_init__") or not getattr(cls, "__dataclass_params__").frozen:  # noqa: B009
        return False
    fields = dataclasses.fields(cls)  # (ClassVar and InitVar pseudo-fields left out)
    return len(fields) == len(cls.__dataclass_fields__) and all(f.init for f in fields)


def records_of(cls: Any, items: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Build records of ``cls`` from normalised items (skipping ids-only entries)."""
    return [cls.from_data(item) for item in items]
