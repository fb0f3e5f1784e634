"""``records.with_fields`` (what ``with_related`` gives each order and row) is
``dataclasses.replace``: the same record, the same errors, still frozen."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.channels.prestashop.records import Order, OrderRow, with_fields

_values = st.dictionaries(st.sampled_from(["note", "gift", "detail"]), st.text(max_size=4))
_row_data = st.fixed_dictionaries(
    {"id": st.integers(1, 99), "product_id": st.sampled_from(["3", 4, ""])},
    optional={"product_quantity": st.sampled_from(["2", 1]), "extra": st.text(max_size=3)},
)
_order_data = st.fixed_dictionaries(
    {"id": st.integers(1, 999), "date_add": st.sampled_from(["2024-03-05 14:07:09", ""])},
    optional={
        "total_paid": st.sampled_from(["19.990000", "0"]),
        "gift_message": st.text(max_size=4),
        "associations": st.fixed_dictionaries({"order_rows": st.lists(_row_data, max_size=2)}),
    },
)


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert a == b
    assert repr(a) == repr(b)
    assert list(vars(a).items()) == list(vars(b).items())


@settings(max_examples=200, deadline=None)
@given(data=_order_data, rest=_values, related=_values)
def test_with_fields_is_replace(
    data: dict[str, Any], rest: dict[str, str], related: dict[str, str]
) -> None:
    order = Order.from_data(data)
    rows = tuple(with_fields(r, rest={**r.rest, **rest}) for r in order.rows)
    for got, row in zip(rows, order.rows, strict=True):
        _same(got, dataclasses.replace(row, rest={**row.rest, **rest}))
    got = with_fields(order, rows=rows, related=related)
    _same(got, dataclasses.replace(order, rows=rows, related=related))
    assert got.related == related
    assert got.rest == order.rest
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.id = 3  # type: ignore[misc]


def test_an_unknown_field_or_another_class_is_replace_itself() -> None:
    row = OrderRow.from_data({"id": 1})
    with pytest.raises(TypeError):
        with_fields(row, no_such_field=1)

    @dataclass(frozen=True)
    class Checked:
        n: int
        doubled: int = field(init=False)

        def __post_init__(self) -> None:
            object.__setattr__(self, "doubled", self.n * 2)

    assert with_fields(Checked(2), n=5).doubled == 10
