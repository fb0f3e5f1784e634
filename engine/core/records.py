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
from collections.abc import Mapping
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


def json_safe(value: Any) -> Any:
    """A mapped value as JSON keeps it: decimals as text, dates as ISO text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _coerce(f: FieldModel, value: Any, where: str, model: OmsModel) -> Any:
    if f.type == "record" and isinstance(value, list | tuple) and len(value) <= 1:
        # a child mapping gives a list: a record field takes its one item (none: empty)
        value = value[0] if value else None
    if value is None:
        return () if f.type == "list" else ({} if f.type == "extra" else None)
    kind = f.type
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
                build(f.record, item, model, where=f"{where}[{i}]") for i, item in enumerate(value)
            )
        if kind == "record" and f.record:
            return build(f.record, value, model, where=where)
        if kind == "extra":
            if not isinstance(value, Mapping):
                raise TransformError(f"{value!r} is not a set of fields")
            return json_safe(value)
    except TransformError as exc:
        raise TransformError(f"{where}: {exc}") from None
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
    rec = model.record(record)
    if not isinstance(mapped, Mapping):
        raise TransformError(f"{where or record}: {mapped!r} is not a record")
    unknown = [k for k in mapped if k not in rec.fields]
    if unknown:
        raise TransformError(f"{where or record}: the OMS {record} has no field '{unknown[0]}'")
    values: dict[str, Any] = {}
    for name, f in rec.fields.items():
        value = mapped.get(name, f.default if f.has_default else None)
        values[name] = _coerce(f, value, f"{where or record}.{name}", model)
    return RECORDS[record](**values)


def as_source(rec: Any) -> dict[str, Any]:
    """An outbound record as the dict its mapping reads (``map_record``'s input)."""
    return {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)}


def to_store(mapping: MappingSpec | None, rec: Any) -> dict[str, Any] | None:
    """The store fields an outbound ``mapping`` makes of the OMS record ``rec`` (None
    without a mapping: the caller writes its own default)."""
    if mapping is None:
        return None
    return map_record(mapping, as_source(rec))
