"""Typed OMS records from a mapping's output: coerced to the model's types, extra fields
JSON-safe, unknown fields refused; outbound records read by the outbound mappings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.core import TransformError, build_record, map_record, trace_record
from engine.core.records import (
    OrderLineRecord,
    OrderRecord,
    StatusRecord,
    StockRecord,
    to_store,
)
from tests.core.helpers import channel
from tests.core.test_mapping import ORDER


def test_an_order_is_built_from_the_mapping_output_only() -> None:
    rec = build_record("order", map_record(channel().mappings["order_in"], ORDER))
    assert isinstance(rec, OrderRecord)
    assert rec.reference == "XKBKNABJK"
    assert rec.ordered_at == datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)
    assert rec.total_paid == Decimal("61.800000")
    assert rec.payment_method == "Bank wire"
    first = {"reference": "demo_1", "unit_price_tax_excl": "15.933333"}
    second = {"reference": "demo_2", "unit_price_tax_excl": None}
    tee = (Decimal("0.350000"), Decimal("20.000"), "4006381333931")
    assert rec.lines == (
        OrderLineRecord(11, 1, None, "Tee", 2, Decimal("19.120000"), *tee, first),
        OrderLineRecord(12, 2, 9, "Mug", 1, Decimal("14.000000"), None, None, None, second),
    )
    assert rec.extra["customer_id"] == "2"
    assert rec.extra["currency_id"] == "1"
    assert rec.customer is None
    assert rec.shipping_address is None
    assert rec.invoice_address is None


def test_the_customer_and_addresses_read_around_the_order_become_records() -> None:
    order = {
        **ORDER,
        "customer": {"id": "2", "firstname": "Дмитрий", "lastname": "Иванов", "email": "d@x.ru"},
        "delivery_address": {
            "id": "5",
            "firstname": "Zoë",
            "lastname": "Ørsted",
            "address1": "Østerbrogade 12",
            "postcode": "2100",
            "city": "København Ø",
            "country_iso": "DK",
            "country": "Denmark",
            "vat_number": "DK12345678",
        },
        "invoice_address": None,
        "carrier": {"id": 2, "name": "My carrier"},
        "currency": {"id": 1, "iso_code": "EUR", "name": "Euro"},
    }
    rec = build_record("order", map_record(channel().mappings["order_in"], order))
    assert rec.customer is not None
    assert rec.customer.full_name == "Дмитрий Иванов"
    assert rec.customer.external_id == 2
    ship = rec.shipping_address
    assert ship is not None
    assert (ship.external_id, ship.full_name, ship.city) == (5, "Zoë Ørsted", "København Ø")
    assert (ship.country_iso, ship.country, ship.vat_number) == ("DK", "Denmark", "DK12345678")
    assert rec.invoice_address is None
    assert (rec.carrier, rec.currency) == ("My carrier", "EUR")


@pytest.mark.parametrize(
    ("record", "mapped", "field", "expected"),
    [
        ("order_line", {"product_id": "0"}, "product_id", None),  # PrestaShop's "no id"
        ("order_line", {"product_id": 7}, "product_id", 7),
        ("order_line", {"quantity": "3.000000"}, "quantity", 3),
        ("order", {"total_paid": 12.5}, "total_paid", Decimal("12.5")),
        (
            "order",
            {"ordered_at": "2024-03-05T14:07:09+01:00"},
            "ordered_at",
            datetime(2024, 3, 5, 13, 7, 9, tzinfo=UTC),
        ),
        ("order", {"reference": "R" * 80}, "reference", "R" * 64),
        ("product", {"active": "0"}, "active", False),
        (
            "order",
            {"extra": {"paid": Decimal("1.50"), "at": datetime(2024, 1, 1, tzinfo=UTC)}},
            "extra",
            {"paid": "1.50", "at": "2024-01-01T00:00:00+00:00"},
        ),
    ],
)
def test_values_are_coerced_to_their_model_type(
    record: str, mapped: dict[str, object], field: str, expected: object
) -> None:
    assert getattr(build_record(record, mapped), field) == expected


@pytest.mark.parametrize(
    ("record", "mapped", "words"),
    [
        ("order", {"total_pad": "1"}, "the OMS order has no field 'total_pad'"),
        ("order_line", {"quantity": "2.5"}, "order_line.quantity"),
        ("order", {"lines": [{"quantity": "x"}]}, "order.lines[0].quantity"),
        ("product", {"name": True}, "product.name"),
        ("order_line", {"product_id": "-3"}, "not a store id"),
    ],
)
def test_values_that_do_not_fit_name_record_and_field(
    record: str, mapped: dict[str, object], words: str
) -> None:
    with pytest.raises(TransformError, match=words.replace("[", r"\[").replace("]", r"\]")):
        build_record(record, mapped)


def test_outbound_mappings_read_the_oms_records() -> None:
    mappings = channel().mappings
    assert to_store(mappings["stock_out"], StockRecord("SKU-1", 7)) == {"quantity": 7}
    status = StatusRecord(order_id=5, reference="XKB", state="RFP", state_id=3)
    assert to_store(mappings["status_out"], status) == {"id_order": 5, "id_order_state": 3}
    assert to_store(None, status) is None


def test_trace_says_where_each_value_came_from() -> None:
    _out, trace = trace_record(channel().mappings["order_in"], ORDER)
    by_path = {t.path: t for t in trace}
    assert by_path["total_paid"].source == "total_paid_tax_incl"
    assert by_path["total_paid"].transform == "decimal"
    assert by_path["lines[1].quantity"].source == "order_rows[1].product_quantity"
    assert by_path["extra.customer_id"].raw == "2"
    read_around = {"carrier", "currency", "total_discounts", "total_wrapping"}
    read_around |= {"total_paid_tax_excl"}
    # the second row has no order_details record in this sample
    read_around |= {"lines[1].weight", "lines[1].tax_rate", "lines[1].ean13"}
    missing = {t.path for t in trace if not t.found}
    assert {p for p in missing if "extra" not in p} == read_around
    assert not by_path["carrier"].found  # nothing read around this record: said so
