"""A status map may name a PrestaShop order state by its configuration key (``PS_OS_SHIPPING``)
or by its name (``Shipped``); both forms validate, mix, and a state named twice is caught."""

from __future__ import annotations

import pytest

from engine.core import VOCABULARY
from engine.errors import SpecErrors
from engine.spec import parse_channel
from engine.spec.statuses import canonical_status, is_state_key, state_key_for
from tests.spec.helpers import CHANNEL_TEXT, line_of, replace_once, shipped_machine


def _parse(text: str):
    return parse_channel(text, "c.yaml", shipped_machine(), vocabulary=VOCABULARY)


def test_keys_and_default_names_are_one_state() -> None:
    assert state_key_for("PS_OS_SHIPPING") == "PS_OS_SHIPPING"
    assert state_key_for("Shipped") == "PS_OS_SHIPPING"
    assert state_key_for("  payment ACCEPTED ") == "PS_OS_PAYMENT"
    assert state_key_for("PS_OS_PAYPAL_PENDING") == "PS_OS_PAYPAL_PENDING"  # a module's key
    assert state_key_for("Expédié") is None  # a custom name: resolved by name at connect
    assert is_state_key("PS_OS_CANCELED")
    assert not is_state_key("Canceled")
    assert canonical_status("Canceled") == canonical_status("PS_OS_CANCELED")
    assert canonical_status("Ready for pickup") == "ready for pickup"


def test_a_spec_written_with_configuration_keys_is_valid() -> None:
    text = CHANNEL_TEXT
    for name, key in [
        ("Payment accepted", "PS_OS_PAYMENT"),
        ("Processing in progress", "PS_OS_PREPARATION"),
        ("Shipped", "PS_OS_SHIPPING"),
        ("Delivered", "PS_OS_DELIVERED"),
        ("Canceled", "PS_OS_CANCELED"),
    ]:
        text = text.replace(f": {name}\n", f": {key}\n").replace(f"{name}: {{", f"{key}: {{")
        text = text.replace(f"[{name},", f"[{key},").replace(f" {name},", f" {key},")
        text = text.replace(f" {name}]", f" {key}]")
    assert "Payment accepted" not in text.split("status_map:")[1].split("schedules:")[0]
    spec = _parse(text)
    assert spec.status_map.outbound["Ready_to_Ship"] == "PS_OS_SHIPPING"
    assert "PS_OS_DELIVERED" in spec.status_map.inbound
    assert spec.status_map.imported[0] == "PS_OS_PAYMENT"


def test_forms_may_mix_between_imported_and_inbound() -> None:
    text = replace_once(
        CHANNEL_TEXT,
        "imported: [Payment accepted, Processing in progress,",
        "imported: [PS_OS_PAYMENT, PS_OS_PREPARATION,",
    )
    spec = _parse(text)
    assert spec.status_map.inbound_key("PS_OS_PAYMENT") == "Payment accepted"
    assert spec.status_map.inbound_key("PS_OS_PREPARATION") == "Processing in progress"
    assert spec.status_map.inbound_key("Payment accepted") == "Payment accepted"
    assert spec.status_map.inbound_key("PS_OS_REFUND") is None


def test_one_state_named_twice_in_inbound_is_an_error() -> None:
    text = replace_once(
        CHANNEL_TEXT,
        "    Canceled: {import: import_canceled, change: buyer_cancel}\n",
        "    Canceled: {import: import_canceled, change: buyer_cancel}\n"
        "    PS_OS_CANCELED: {import: import_canceled, change: null}\n",
    )
    with pytest.raises(SpecErrors) as info:
        _parse(text)
    (err,) = info.value.errors
    assert err.code == "spec.duplicate-status"
    assert "'PS_OS_CANCELED'" in str(err)
    assert "'Canceled'" in str(err)
    assert err.location.line == line_of(text, "PS_OS_CANCELED: {")
