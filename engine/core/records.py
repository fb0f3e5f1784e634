"""Typed OMS records, built from a mapping's output and nothing else.

One frozen dataclass per record of the OMS model (``engine/spec/schemas/oms.v1.json``,
``engine.spec.oms``), with exactly the model's fields (a test keeps them equal). ``build``
turns ``map_record``'s dict into one: each field coerced to its model type (text, integer,
decimal, boolean, datetime in UTC, store id with 0 as none), child lists and records built
with their own record, ``extra`` made JSON-safe. The runtime reads these attributes; it
never reads a mapping target by a name of its own. Outbound records (stock, price, status)
go the other way: ``as_source`` gives the dict an outbound mapping reads. Pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from engine.core.mapping import map_record
from engine.core.transforms import TransformError, to_bool, to_datetime, to_decimal, to_int
from engine.spec.model import MappingSpec
from engine.spec.oms import FieldModel, OmsModel, oms_model

# --------------------------------------------------------------------------- inbound


@dataclass(frozen=True)
class OrderLineRecord:
    external_id: int | None = None
    product_id: int | None = None
    combination_id: int | None = None
    name: str | None = None
    quantity: int | None = None
    unit_price: Decimal | None = None
    weight: Decimal | None = None
    tax_rate: Decimal | None = None
    ean13: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerRecord:
    external_id: int | None = None
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    company: str | None = None
    phone: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str | None:
        text = " ".join(p for p in (self.firstname, self.lastname) if p)
        return text or None


@dataclass(frozen=True)
class AddressRecord:
    external_id: int | None = None
    firstname: str | None = None
    lastname: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    postcode: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    phone: str | None = None
    phone_mobile: str | None = None
    country_iso: str | None = None
    vat_number: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str | None:
        text = " ".join(p for p in (self.firstname, self.lastname) if p)
        return text or None


@dataclass(frozen=True)
class OrderRecord:
    reference: str | None = None
    ordered_at: datetime | None = None
    updated_at: datetime | None = None
    total_paid: Decimal | None = None
    total_products: Decimal | None = None
    total_shipping: Decimal | None = None
    payment_method: str | None = None
    lines: tuple[OrderLineRecord, ...] = ()
    customer: CustomerRecord | None = None
    shipping_address: AddressRecord | None = None
    invoice_address: AddressRecord | None = None
    carrier: str | None = None
    currency: str | None = None
    total_discounts: Decimal | None = None
    total_wrapping: Decimal | None = None
    total_paid_tax_excl: Decimal | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductRecord:
    reference: str | None = None
    ean13: str | None = None
    name: str | None = None
    price: Decimal | None = None
    active: bool | None = None
    brand_id: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VariationRecord:
    reference: str | None = None
    ean13: str | None = None
    price_impact: Decimal | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- outbound


@dataclass(frozen=True)
class StockRecord:
    sku: str
    available: int


@dataclass(frozen=True)
class PriceRecord:
    sku: str
    price: Decimal | None
    retail_selling_price: Decimal | None = None
    selling_price: Decimal | None = None
    impact: Decimal | None = None


@dataclass(frozen=True)
class StatusRecord:
    order_id: int
    reference: str
    state: str
    state_id: int


RECORDS: Mapping[str, type[Any]] = {
    "order": OrderRecord,
    "order_line": OrderLineRecord,
    "customer": CustomerRecord,
    "address": AddressRecord,
    "product": ProductRecord,
    "variation": VariationRecord,
    "stock": StockRecord,
    "price": PriceRecord,
    "status": StatusRecord,
}
"""Model record name -> its dataclass."""


_JSON_PLAIN = frozenset({str, int, float, bool, type(None)})


def json_safe(value: Any) -> Any:
    """A mapped value as JSON keeps it: decimals as text, dates as ISO text."""
    if type(value) in _JSON_PLAIN:  # most values: kept as they are (no ABC checks)
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _coerce(f: FieldModel, value: Any, owner: str, model: OmsModel) -> Any:
    """``value`` as field ``f`` of the record ``owner`` (``order``, ``order.lines[0]``)
    takes it; the error names ``owner.field`` (built only then: this runs per field)."""
    if f.type == "record" and isinstance(value, list | tuple) and len(value) <= 1:
        # a child mapping gives a list: a record field takes its one item (none: empty)
        value = value[0] if value else None
    if value is None:
        return () if f.type == "list" else ({} if f.type == "extra" else None)
    kind = f.type
    if kind == "text" and type(value) is str:  # the common case, no checks to make
        return value[: f.max_length] if f.max_length else value
    try:
        if kind == "text":
            if isinstance(value, bool) or not isinstance(value, str | int | Decimal | float):
                raise TransformError(f"{value!r} is not a text")
            text = str(value)
            return text[: f.max_length] if f.max_length else text
        if kind == "integer":
            return to_int(value)
        if kind == "id":
            number = to_int(value)
            if number is not None and number < 0:
                raise TransformError(f"{value!r} is not a store id")
            return number or None
        if kind == "decimal":
            if isinstance(value, float):
                value = repr(value)
            return to_decimal(value)
        if kind == "boolean":
            return to_bool(value)
        if kind == "datetime":
            return to_datetime(value)
        if kind == "list" and f.record:
            if not isinstance(value, list | tuple):
                raise TransformError(f"{value!r} is not a list")
            return tuple(
                build(f.record, item, model, where=f"{owner}.{f.name}[{i}]")
                for i, item in enumerate(value)
            )
        if kind == "record" and f.record:
            return build(f.record, value, model, where=f"{owner}.{f.name}")
        if kind == "extra":
            if not isinstance(value, Mapping):
                raise TransformError(f"{value!r} is not a set of fields")
            return json_safe(value)
    except TransformError as exc:
        raise TransformError(f"{owner}.{f.name}: {exc}") from None
    return value


def build(
    record: str,
    mapped: Mapping[str, Any],
    model: OmsModel | None = None,
    *,
    where: str | None = None,
) -> Any:
    """The typed ``record`` from a mapping's output: every model field, coerced to its type
    (a field the mapping does not give: its model default, else empty).

    Raises:
        TransformError: a value does not fit its field (the message names record and field),
            or ``mapped`` holds a field the model does not know.
    """
    model = model or oms_model()
    return _builder(record, model)(mapped, where)


Builder = Callable[[Mapping[str, Any], "str | None"], Any]

_BUILDERS: dict[tuple[str, int], tuple[OmsModel, Builder]] = {}
"""``(record, id(model))`` -> (the model, kept alive so the id stays its own; its builder)."""


def _builder(record: str, model: OmsModel) -> Builder:
    hit = _BUILDERS.get((record, id(model)))
    if hit is not None and hit[0] is model:
        return hit[1]
    if len(_BUILDERS) > 512:  # models parsed again and again (tests): start over
        _BUILDERS.clear()
    fn = _make_builder(record, model)
    _BUILDERS[(record, id(model))] = (model, fn)
    return fn


def _make_builder(record: str, model: OmsModel) -> Builder:
    """``_build_general`` for one record of one model, with the field list walked once:
    the values a mapping gives most (a text, a typed decimal, date or id, nothing) are
    taken as ``_coerce`` would take them, without the call; any other goes through
    ``_coerce``. Same values and the same first error (tests hold it to the general)."""
    rec = model.record(record)
    cls = RECORDS.get(record)
    if cls is None:  # no typed record: the general path says so where it always did
        return lambda mapped, where: _build_general(record, mapped, model, where=where)
    fields = rec.fields
    steps = tuple(
        (name, f, f.default if f.has_default else None, f.type, f.max_length)
        for name, f in fields.items()
    )
    # the dataclass's own __init__ only stores the fields (frozen: through object's
    # __setattr__), so the instance is filled directly when it has exactly the model's
    # fields, in its order, and nothing runs after (no __post_init__, no slots)
    direct = (
        tuple(fields) == tuple(getattr(cls, "__dataclass_fields__", ()))
        and not hasattr(cls, "__post_init__")
        and not hasattr(cls, "__slots__")
    )

    def run(mapped: Mapping[str, Any], where: str | None) -> Any:
        if type(mapped) is not dict and not isinstance(mapped, Mapping):
            raise TransformError(f"{where or record}: {mapped!r} is not a record")
        for key in mapped:
            if key not in fields:
                raise TransformError(f"{where or record}: the OMS {record} has no field '{key}'")
        owner = where or record
        values: dict[str, Any] = {}
        get = mapped.get
        for name, f, default, kind, max_length in steps:
            value = get(name, default)
            vtype = type(value)
            if value is None:
                values[name] = () if kind == "list" else ({} if kind == "extra" else None)
            elif vtype is str and kind == "text":
                values[name] = value[:max_length] if max_length else value
            elif (
                (vtype is Decimal and kind == "decimal" and value.is_finite())
                or (vtype is datetime and kind == "datetime" and value.tzinfo is not None)
                or (vtype is int and (kind == "integer" or (kind == "id" and value > 0)))
            ):
                values[name] = value
            else:
                values[name] = _coerce(f, value, owner, model)
        if direct:
            obj = object.__new__(cls)
            obj.__dict__.update(values)
            return obj
        return cls(**values)

    return run


def _build_general(
    record: str,
    mapped: Mapping[str, Any],
    model: OmsModel | None = None,
    *,
    where: str | None = None,
) -> Any:
    """``build`` field by field through ``_coerce`` (what ``_make_builder`` stands for)."""
    model = model or oms_model()
    rec = model.record(record)
    if not isinstance(mapped, Mapping):
        raise TransformError(f"{where or record}: {mapped!r} is not a record")
    unknown = [k for k in mapped if k not in rec.fields]
    if unknown:
        raise TransformError(f"{where or record}: the OMS {record} has no field '{unknown[0]}'")
    owner = where or record
    values: dict[str, Any] = {}
    for name, f in rec.fields.items():
        value = mapped.get(name, f.default if f.has_default else None)
        values[name] = _coerce(f, value, owner, model)
    return RECORDS[record](**values)


def as_source(rec: Any) -> dict[str, Any]:
    """An outbound record as the dict its mapping reads (``map_record``'s input)."""
    kind = type(rec)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(rec))
        if isinstance(rec, type):  # (a dataclass itself, not an instance: not cached)
            return {name: getattr(rec, name) for name in names}
        _FIELD_NAMES[kind] = names
    return {name: getattr(rec, name) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
"""A dataclass's field names, by class (``dataclasses.fields`` per record is slow)."""


def to_store(mapping: MappingSpec | None, rec: Any) -> dict[str, Any] | None:
    """The store fields an outbound ``mapping`` makes of the OMS record ``rec`` (None
    without a mapping: the caller writes its own default)."""
    if mapping is None:
        return None
    return map_record(mapping, as_source(rec))
