"""AWB numbers and tracking ids: deterministic, unique per order, PrestaShop-valid, checked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.runtime.fulfilment.awb import (
    PRESTASHOP_TRACKING_RE,
    allocate_numbers,
    is_valid_awb,
    is_valid_tracking_id,
    luhn_check_digit,
)

keys = st.text(min_size=1, max_size=60)
order_ids = st.integers(min_value=0, max_value=10**10 - 1)


def test_luhn_matches_the_published_example() -> None:
    # ISO/IEC 7812 example: 7992739871 -> check digit 3.
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("0") == "0"


def test_a_retried_effect_gets_the_same_numbers() -> None:
    first = allocate_numbers("OMS", 42, "outbox:17:generate_awb")
    again = allocate_numbers("OMS", 42, "outbox:17:generate_awb")
    assert first == again
    assert first.awb.startswith("OMS0000000042")
    assert first.tracking_id.startswith("OMST")
    assert first.awb != first.tracking_id


def test_another_shipment_key_or_prefix_gives_other_numbers() -> None:
    base = allocate_numbers("OMS", 42, "k1")
    assert allocate_numbers("OMS", 42, "k2") != base  # (1 in 100 keys would collide)
    assert allocate_numbers("OMS", 43, "k1").awb != base.awb
    assert allocate_numbers("ACME", 42, "k1").awb.startswith("ACME")


def test_prefix_is_normalised_and_validated() -> None:
    assert allocate_numbers(" oms ", 1, "k").awb.startswith("OMS")
    for bad in ("", "1AB", "OM-S", "ABCDEFGHIJK"):
        with pytest.raises(ConfigError, match="awb_prefix"):
            allocate_numbers(bad, 1, "k")


def test_empty_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        allocate_numbers("OMS", 1, "")
    with pytest.raises(ValueError, match="order_id"):
        allocate_numbers("OMS", " ", "k")
    with pytest.raises(ValueError, match="12-digit"):
        allocate_numbers("OMS", 10**10, "k")


@given(order_ids, keys, st.sampled_from(["OMS", "A", "SHOP2024", "Z9Z9Z9Z9Z9"]))
@pytest.mark.slow
def test_numbers_are_valid_for_prestashop_and_self_checking(
    order_id: int, key: str, prefix: str
) -> None:
    n = allocate_numbers(prefix, order_id, key)
    assert is_valid_awb(n.awb, prefix)
    assert is_valid_tracking_id(n.tracking_id, prefix)
    assert PRESTASHOP_TRACKING_RE.match(n.tracking_id)
    assert PRESTASHOP_TRACKING_RE.match(n.awb)
    assert len(n.tracking_id) <= 64
    assert len(n.awb) <= 64


@given(order_ids, order_ids, keys, keys)
def test_distinct_integer_orders_never_share_numbers(a: int, b: int, ka: str, kb: str) -> None:
    na, nb = allocate_numbers("OMS", a, ka), allocate_numbers("OMS", b, kb)
    if a != b:
        assert na.awb != nb.awb
        assert na.tracking_id != nb.tracking_id


@given(st.text(min_size=1, max_size=30).filter(str.strip), keys)
def test_string_order_ids_are_deterministic(order_id: str, key: str) -> None:
    assert allocate_numbers("OMS", order_id, key) == allocate_numbers("OMS", order_id, key)


@given(order_ids, keys, st.data())
def test_any_single_digit_error_is_detected(order_id: int, key: str, data: st.DataObject) -> None:
    n = allocate_numbers("OMS", order_id, key)
    for value, check in ((n.awb, is_valid_awb), (n.tracking_id, is_valid_tracking_id)):
        digit_positions = [i for i, ch in enumerate(value) if ch.isdigit()]
        i = data.draw(st.sampled_from(digit_positions))
        new = data.draw(st.sampled_from([d for d in "0123456789" if d != value[i]]))
        assert not check(value[:i] + new + value[i + 1 :])


def test_validators_check_shape_and_prefix() -> None:
    n = allocate_numbers("OMS", 7, "k")
    assert not is_valid_awb(n.awb, "ACME")
    assert not is_valid_awb(n.awb + "0")
    assert not is_valid_tracking_id(n.awb)
