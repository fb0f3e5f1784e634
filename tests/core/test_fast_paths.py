"""The per-record fast paths held to the general ones they stand for.

``map_record`` runs a mapping compiled once (``mapping._compile``); ``build`` a record
builder made once per record (``records._builder``). Both must give exactly what the
general code gives (``mapping._map`` without a trace, ``records._build_general``): the
same values, the same key order, the same first error with the same message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import TRANSFORMS, map_record
from engine.core.mapping import _map, source_fields
from engine.core.records import RECORDS, _build_general, build
from engine.spec.model import ChildRule, FieldRule, MappingSpec
from engine.spec.oms import oms_model
from tests.core.helpers import channel

_FIELDS = ["a", "b", "id", "price", "date", "lines", "associations", "detail", "x.y"]
_SOURCES = [*_FIELDS, "detail.a", "detail.price", "a.b.c", "lines", "missing", "rows"]
_TRANSFORM_NAMES = [None, *sorted(TRANSFORMS), "no_such_transform"]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**12),
    st.sampled_from(["", " ", "0", "1", "12", "3.000000", "2.5", "19.990000", "abc", " x "]),
    st.sampled_from(["2024-03-05 14:07:09", "0000-00-00 00:00:00", "2024-1-5 3:04:05"]),
    st.sampled_from([Decimal("1.50"), Decimal("NaN"), Decimal("-0"), 1.25, float("inf")]),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])),
    st.text(max_size=5),
)
_records: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=5),
    ),
    max_leaves=12,
)


def _rules(draw: st.DrawFn, n: int) -> tuple[FieldRule, ...]:
    return tuple(
        FieldRule(
            source=draw(st.sampled_from(_SOURCES)),
            target=draw(st.sampled_from(["t1", "t2", "t3", "extra", "lines"])),
            transform=draw(st.sampled_from(_TRANSFORM_NAMES)),
            index=i,
        )
        for i in range(n)
    )


@st.composite
def _mappings(draw: st.DrawFn, depth: int = 2) -> MappingSpec:
    children: list[ChildRule] = []
    if depth:
        for i in range(draw(st.integers(0, 2))):
            # mostly resolved; sometimes not (map_record then says so)
            spec = draw(st.one_of(_mappings(depth - 1), _mappings(depth - 1), st.none()))
            children.append(
                ChildRule(
                    source=draw(st.sampled_from(_SOURCES)),
                    target=draw(st.sampled_from(["lines", "t1", "kids"])),
                    mapping=f"child{depth}{i}",
                    spec=spec,
                    index=i,
                )
            )
    return MappingSpec(
        name=f"m{depth}",
        direct=_rules(draw, draw(st.integers(0, 5))),
        extra=_rules(draw, draw(st.integers(0, 3))),
        defaults=draw(
            st.dictionaries(st.sampled_from(["t1", "t4", "extra"]), _scalars, max_size=2)
        ),
        children=tuple(children),
    )


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        value = fn()
    except Exception as exc:  # noqa: BLE001 - compared, type and message
        return "raised", (type(exc), str(exc))
    return "gave", value


def _ordered(value: Any) -> Any:
    """``value`` with every dict as its list of items (so key order is compared too)."""
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return ("nan",) if isinstance(value, Decimal) and value.is_nan() else value


@settings(max_examples=400, deadline=None)
@given(mapping=_mappings(), record=_records)
def test_map_record_is_the_general_mapping(mapping: MappingSpec, record: Any) -> None:
    fast = _outcome(lambda: map_record(mapping, record))
    general = _outcome(lambda: _map(mapping, record, None, ""))
    assert _ordered(fast) == _ordered(general)


def test_source_fields_name_the_top_level_fields_read() -> None:
    order_in = channel().mappings["order_in"]
    fields = source_fields(order_in)
    assert {"date_add", "carrier", "order_rows", "customer", "gift_message"} <= set(fields)
    assert "carrier.name" not in fields


_MODEL = oms_model()
_FIELD_VALUES = st.one_of(_scalars, st.lists(_scalars, max_size=2))
_TYPED: dict[str, st.SearchStrategy[Any]] = {
    "text": st.one_of(st.text(max_size=70), st.integers(), st.none()),
    "decimal": st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=4), st.just("19.990000")
    ),
    "integer": st.one_of(st.integers(-5, 10**6), st.just("3")),
    "id": st.one_of(st.integers(-1, 10**6), st.just("7"), st.just("0")),
    "boolean": st.sampled_from([True, False, "1", "0"]),
    "datetime": st.one_of(
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3))])),
        st.datetimes(),
        st.just("2024-03-05 14:07:09"),
    ),
    "extra": st.dictionaries(st.text(max_size=3), _scalars, max_size=2),
}


@st.composite
def _mapped(draw: st.DrawFn, record: str, depth: int = 2) -> dict[str, Any]:
    rec = _MODEL.record(record)
    out: dict[str, Any] = {}
    for name, f in rec.fields.items():
        if not draw(st.integers(0, 3)):
            continue  # absent: the model default
        if f.record and depth and draw(st.booleans()):
            child = _mapped(f.record, depth - 1)
            out[name] = draw(st.lists(child, max_size=2) if f.type == "list" else child)
        elif f.type == "extra" and draw(st.booleans()):
            out[name] = draw(st.dictionaries(st.text(max_size=3), _scalars, max_size=2))
        elif draw(st.integers(0, 9)):
            out[name] = draw(_TYPED.get(f.type, _scalars))
        else:
            out[name] = draw(_FIELD_VALUES)
    if not draw(st.integers(0, 20)):
        out["no_such_field"] = 1
    return out


_INBOUND = ["order", "order_line", "customer", "address", "product", "variation"]


@settings(max_examples=400, deadline=None)
@given(data=st.data(), record=st.sampled_from(_INBOUND))
def test_build_is_the_general_build(data: st.DataObject, record: str) -> None:
    mapped = data.draw(_mapped(record))
    fast = _outcome(lambda: build(record, mapped, _MODEL))
    general = _outcome(lambda: _build_general(record, mapped, _MODEL))
    assert fast[0] == general[0], (fast, general)
    if fast[0] == "raised":
        assert fast == general
        return
    assert type(fast[1]) is RECORDS[record]
    assert _ordered(vars(fast[1])) == _ordered(vars(general[1]))
    assert repr(fast[1]) == repr(general[1])


def test_the_shipped_order_mapping_builds_as_the_general_path() -> None:
    order_in = channel().mappings["order_in"]
    record = {
        "reference": "ABC",
        "date_add": "2024-03-05 14:07:09",
        "date_upd": "2024-03-05T14:07:09+00:00",
        "total_paid_tax_incl": "19.990000",
        "carrier": {"name": "Post"},
        "order_rows": [{"id": "3", "product_id": "7", "product_quantity": "2"}],
        "customer": {"id": 5, "firstname": "A", "email": "a@x"},
        "gift": "0",
    }
    mapped = map_record(order_in, record)
    assert mapped == _map(order_in, record, None, "")
    assert build("order", mapped) == _build_general("order", mapped, _MODEL)


_DATES = st.sampled_from(["2024-03-31 02:30:00", "2024-10-27 02:30:00", " 2024-01-05 10:00:00"])


@settings(max_examples=300, deadline=None)
@given(
    mapping=_mappings(),
    record=st.dictionaries(st.sampled_from(_FIELDS), st.one_of(_DATES, _records), max_size=8),
    zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
)
def test_converting_only_the_dates_a_mapping_reads_maps_the_same(
    mapping: MappingSpec, record: dict[str, Any], zone: str
) -> None:
    from engine.runtime.channels.clock import ShopClock

    clock = ShopClock(zone)
    every = _outcome(lambda: map_record(mapping, clock.utc_fields(record)))
    read = _outcome(lambda: map_record(mapping, clock.utc_fields(record, source_fields(mapping))))
    assert _ordered(every) == _ordered(read)
