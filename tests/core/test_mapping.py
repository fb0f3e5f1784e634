"""Transforms and map_record driven by the shipped PrestaShop channel mappings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import TRANSFORMS, VOCABULARY, TransformError, map_record
from tests.core.helpers import channel


def test_vocabulary_names() -> None:
    assert VOCABULARY.guards == {"all_lines_reservable"}
    assert {"reserve_stock", "release_stock", "consume_stock"} == VOCABULARY.local_effects
    assert {"push_status", "request_awb", "push_tracking", "notify_wms", "push_stock"} <= (
        VOCABULARY.effects - VOCABULARY.local_effects
    )
    assert set(TRANSFORMS) == VOCABULARY.transforms


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("decimal", "19.990000", Decimal("19.990000")),
        ("decimal", "", None),
        ("int", "3", 3),
        ("int", "3.000000", 3),
        ("strip", "  SKU-1 ", "SKU-1"),
        ("bool", "1", True),
        ("bool", "0", False),
        ("datetime", "2024-03-05 14:07:09", datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)),
        ("datetime", "0000-00-00 00:00:00", None),
        ("first_language", "Mug", "Mug"),
        ("first_language", [{"id": "1", "value": "Mug"}, {"id": "2", "value": "Tasse"}], "Mug"),
        ("first_language", {"language": [{"id": "1", "value": "Mug"}]}, "Mug"),
        ("first_language", {"language": {"id": "1", "value": "Mug"}}, "Mug"),
        ("none_if_zero", "0", None),
        ("none_if_zero", "12", "12"),
        ("none_if_empty", "  ", None),
        ("none_if_empty", "x", "x"),
    ],
)
def test_transforms(name: str, raw: object, expected: object) -> None:
    assert TRANSFORMS[name](raw) == expected


@pytest.mark.parametrize(
    ("name", "raw"), [("decimal", "abc"), ("int", "2.5"), ("bool", "maybe"), ("datetime", "x")]
)
def test_bad_values_raise_transform_error(name: str, raw: str) -> None:
    with pytest.raises(TransformError, match=name):
        TRANSFORMS[name](raw)


ORDER = {
    "id": "7",
    "reference": "XKBKNABJK",
    "date_add": "2024-03-05 14:07:09",
    "date_upd": "2024-03-06 09:00:00",
    "total_paid_tax_incl": "61.800000",
    "total_products": "53.000000",
    "total_shipping": "8.800000",
    "id_customer": "2",
    "id_currency": "1",
    "payment": "Bank wire",
    "associations": {
        "order_rows": [
            {
                "id": "11",
                "product_reference": " demo_1 ",
                "product_name": "Tee",
                "product_quantity": "2",
                "unit_price_tax_incl": "19.120000",
                "unit_price_tax_excl": "15.933333",
                "product_ean13": "4006381333931",
                "product_id": "1",
                "product_attribute_id": "0",
                # the order_details record the adapter puts on each row
                "detail": {
                    "id": "11",
                    "product_weight": "0.350000",
                    "tax_rate": "20.000",
                    "product_ean13": "4006381333931",
                },
            },
            {
                "id": "12",
                "product_reference": "demo_2",
                "product_name": "Mug",
                "product_quantity": "1",
                "unit_price_tax_incl": "14.000000",
                "product_id": "2",
                "product_attribute_id": "9",
            },
        ]
    },
}


def test_order_mapping_with_children() -> None:
    out = map_record(channel().mappings["order_in"], ORDER)
    assert out["reference"] == "XKBKNABJK"
    assert out["ordered_at"] == datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)
    assert out["total_paid"] == Decimal("61.800000")
    assert out["lines"] == [
        {
            "external_id": "11",
            "product_id": "1",
            "combination_id": None,
            "name": "Tee",
            "quantity": 2,
            "unit_price": Decimal("19.120000"),
            "weight": Decimal("0.350000"),
            "tax_rate": Decimal("20.000"),
            "ean13": "4006381333931",
            "extra": {"reference": "demo_1", "unit_price_tax_excl": Decimal("15.933333")},
        },
        {
            "external_id": "12",
            "product_id": "2",
            "combination_id": "9",
            "name": "Mug",
            "quantity": 1,
            "unit_price": Decimal("14.000000"),
            "weight": None,
            "tax_rate": None,
            "ean13": None,
            "extra": {"reference": "demo_2", "unit_price_tax_excl": None},
        },
    ]
    assert out["extra"] == {
        "customer_id": "2",
        "currency_id": "1",
        "total_products_tax_incl": None,
        "total_shipping_tax_excl": None,
        "carrier_tax_rate": None,
        "gift": None,
        "gift_message": None,
        "customer_message": None,
    }
    # no customer, addresses, carrier or currency read around this record: left empty
    assert out["customer"] == []
    assert out["shipping_address"] == []
    assert out["carrier"] is None


def test_children_accept_xml_shaped_wrappers_and_missing_fields() -> None:
    record = {"order_rows": {"order_row": {"product_reference": "A", "product_quantity": "1"}}}
    out = map_record(channel().mappings["order_in"], record)
    assert out["reference"] is None
    assert [line["extra"]["reference"] for line in out["lines"]] == ["A"]


def test_bad_value_names_the_field() -> None:
    with pytest.raises(TransformError, match=r"order_in\.total_paid_tax_incl"):
        map_record(channel().mappings["order_in"], {**ORDER, "total_paid_tax_incl": "n/a"})


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    )
)
def test_datetime_reads_every_store_date_and_its_unpadded_form(moment: datetime) -> None:
    """The fast ISO parser and the strptime fallback agree: a store's zero-padded date and
    the same instant without padding read as the same UTC instant."""
    padded = moment.strftime("%Y-%m-%d %H:%M:%S")
    unpadded = (
        f"{moment.year}-{moment.month}-{moment.day} {moment.hour}:{moment.minute}:{moment.second}"
    )
    want = moment.replace(tzinfo=UTC)
    assert TRANSFORMS["datetime"](padded) == want
    assert TRANSFORMS["datetime"](unpadded) == want


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(0, 6))
def test_int_and_decimal_read_the_same_number_every_way_it_is_written(n: int, places: int) -> None:
    """The fast paths (digits-only text, an already typed Decimal) give what the general
    path gives: ``"3"``, ``"0003"``, ``"3.000000"`` and ``Decimal("3")`` are all 3."""
    written = [str(n), f"{n:.{places}f}"]
    if n >= 0:
        written.append(str(n).zfill(12))
    for text in written:
        assert TRANSFORMS["int"](text) == n
        assert TRANSFORMS["decimal"](text) == Decimal(text)
        typed = Decimal(text)
        assert TRANSFORMS["decimal"](typed) is typed
    with pytest.raises(TransformError):
        TRANSFORMS["decimal"](Decimal("NaN"))
