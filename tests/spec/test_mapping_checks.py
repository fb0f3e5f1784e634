"""Mappings that mean what they say (issue 11): every ``to:``/``from:`` is checked against
the declared OMS model and PrestaShop's resources, with one located line per problem; a file
with schema errors still gets its meaning checks."""

from __future__ import annotations

import dataclasses
import json

import pytest
from jsonschema import Draft202012Validator

from engine.core import VOCABULARY
from engine.core.records import RECORDS
from engine.errors import SpecError, SpecErrors
from engine.runtime.channels.prestashop import resources
from engine.spec import parse_channel, parse_machine
from engine.spec.oms import model_text, oms_model
from engine.spec.schema import SCHEMA_IDS
from tests.spec.helpers import (
    CHANNEL_TEXT,
    MACHINE_TEXT,
    line_of,
    replace_once,
    shipped_machine,
)

STORE = resources.bundled()


def errors(text: str, file: str = "c.yaml") -> list[SpecError]:
    with pytest.raises(SpecErrors) as info:
        parse_channel(text, file, shipped_machine(), vocabulary=VOCABULARY, store=STORE)
    return info.value.errors


def by_code(errs: list[SpecError], code: str) -> list[SpecError]:
    return [e for e in errs if e.code == code]


def test_shipped_channel_is_valid_against_model_and_bundled_store() -> None:
    parse_channel(CHANNEL_TEXT, "c.yaml", shipped_machine(), vocabulary=VOCABULARY, store=STORE)


def test_oms_model_is_a_published_schema_and_its_records_are_the_typed_ones() -> None:
    doc = json.loads(model_text())
    Draft202012Validator.check_schema(doc)
    assert doc["$id"] == SCHEMA_IDS["oms"]
    model = oms_model()
    assert set(model.records) == {
        "order",
        "order_line",
        "customer",
        "address",
        "product",
        "variation",
        "stock",
        "price",
        "status",
    }
    for name, rec in model.records.items():
        assert [f.name for f in dataclasses.fields(RECORDS[name])] == list(rec.fields), name
        for f in rec.fields.values():
            assert f.type in {
                *oms_model().records,
                "text",
                "integer",
                "decimal",
                "boolean",
                "datetime",
                "id",
                "list",
                "record",
                "extra",
            }, (name, f.name)
    assert {r.record for r in model.roles.values()} <= set(model.records)


def test_the_rename_experiment_is_a_located_error_naming_total_paid() -> None:
    text = replace_once(CHANNEL_TEXT, "to: total_paid, transform", "to: total_pad, transform")
    errs = errors(text)
    [unknown] = by_code(errs, "spec.unknown-field")
    assert (unknown.location.line, unknown.location.json_path) == (
        line_of(text, "to: total_pad"),
        "$.mappings.order_in.direct[3].to",
    )
    assert "'total_pad'" in unknown.message
    assert unknown.hint == "did you mean 'total_paid'?"
    [missing] = by_code(errs, "spec.missing-field")
    assert "'total_paid'" in missing.message
    assert missing.location.line == line_of(text, "  order_in:") + 1  # its direct:
    assert missing.line().startswith(f"c.yaml:{missing.location.line}:")


def test_deleting_a_required_mapping_is_a_located_error() -> None:
    text = replace_once(CHANNEL_TEXT, "      - {from: payment, to: payment_method}\n", "")
    [err] = errors(text)
    assert err.code == "spec.missing-field"
    assert "'order_in' does not map 'payment_method'" in err.message
    assert err.location.json_path == "$.mappings.order_in.direct"


@pytest.mark.parametrize(
    ("old", "new", "code", "words"),
    [
        (  # a from: that is no field of PrestaShop's orders
            "from: total_paid_tax_incl,",
            "from: total_paid_tax_inc,",
            "spec.unknown-store-field",
            "PrestaShop 8.x/1.7 orders have no field 'total_paid_tax_inc'",
        ),
        (  # a date without its transform
            "{from: date_add, to: ordered_at, transform: datetime}",
            "{from: date_add, to: ordered_at}",
            "spec.type-mismatch",
            "'ordered_at' is a date and time, but orders.date_add gives a shop-local date",
        ),
        (  # a transform that cannot take the store's type
            "{from: price, to: price, transform: decimal}",
            "{from: price, to: price, transform: int}",
            "spec.transform-type",
            "transform 'int' takes",
        ),
        (  # the same through an association the adapter adds (each row's order_details)
            "{from: detail.product_weight, to: weight, transform: decimal}",
            "{from: detail.product_weight, to: weight, transform: int}",
            "spec.transform-type",
            "but order_rows.detail.product_weight is a decimal number",
        ),
        (  # a multilingual name without first_language
            "{from: name, to: name, transform: first_language}",
            "{from: name, to: name}",
            "spec.type-mismatch",
            "a text in every store language",
        ),
        (  # two entries for one field
            "      - {from: payment, to: payment_method}\n",
            "      - {from: payment, to: payment_method}\n"
            "      - {from: module, to: payment_method}\n",
            "spec.duplicate-target",
            "'payment_method' is mapped twice",
        ),
        (  # an extra: entry naming a model field
            "{from: id_currency, to: currency_id, transform: none_if_zero}",
            "{from: total_paid, to: total_paid}",
            "spec.extra-is-field",
            "'total_paid' is a field of the OMS order: map it under direct",
        ),
        (  # an outbound from: that the OMS record lacks
            "{from: available, to: quantity, transform: int}",
            "{from: availabel, to: quantity, transform: int}",
            "spec.unknown-field",
            "the OMS stock record has no field 'availabel'",
        ),
        (  # an outbound to: that is no field of PrestaShop's products
            "      - {from: price, to: price, transform: decimal}\n  variation_price_out",
            "      - {from: price, to: price, transform: decimal}\n"
            "      - {from: sku, to: prise}\n  variation_price_out",
            "spec.unknown-store-field",
            "PrestaShop 8.x/1.7 products have no field 'prise'",
        ),
        (  # a read-only store field
            "      - {from: price, to: price, transform: decimal}\n  variation_price_out",
            "      - {from: price, to: price, transform: decimal}\n"
            "      - {from: sku, to: manufacturer_name}\n  variation_price_out",
            "spec.read-only-field",
            "products.manufacturer_name is read-only",
        ),
        (  # a write the runtime needs
            "      - {from: state_id, to: id_order_state}\n",
            "",
            "spec.missing-field",
            "'status_out' does not write 'id_order_state'",
        ),
        (  # a mapping nothing runs
            "  stock_out:\n",
            "  stock_outt:\n",
            "spec.unused-mapping",
            "mapping 'stock_outt' is not run by omsflow",
        ),
        (  # the SKU rule names the product's reference, which is no longer mapped
            "      - {from: reference, to: reference, transform: strip}\n"
            "      - {from: ean13, to: ean13, transform: strip}\n      - {from: name",
            "      - {from: ean13, to: ean13, transform: strip}\n      - {from: name",
            "spec.sku-field-unmapped",
            "SKU candidate 'reference' uses the reference, but 'product_in' does not map",
        ),
        (  # a default of the wrong type
            "    children:\n      - {from: order_rows",
            "    defaults: {total_shipping: free}\n    children:\n      - {from: order_rows",
            "spec.duplicate-target",
            "'total_shipping' is both mapped",
        ),
        (  # a price source that is no OMS price
            "sources: [selling_price, retail_selling_price]",
            "sources: [selling_prise, retail_selling_price]",
            "spec.unknown-field",
            "unknown price source 'selling_prise'",
        ),
    ],
)
def test_each_mapping_mistake_is_one_located_line(
    old: str, new: str, code: str, words: str
) -> None:
    text = replace_once(CHANNEL_TEXT, old, new)
    errs = errors(text)
    found = by_code(errs, code)
    assert found, [e.line() for e in errs]
    assert any(words in e.message for e in found), [e.line() for e in errs]
    for e in errs:
        assert e.location.file == "c.yaml"
        assert e.location.line >= 1
        assert "\n" not in e.line()


def test_missing_mapping_the_runtime_needs() -> None:
    text = replace_once(
        CHANNEL_TEXT,
        "  stock_out:\n    direct:\n      - {from: available, to: quantity, transform: int}\n",
        "",
    )
    [err] = errors(text)
    assert err.code == "spec.missing-mapping"
    assert "no mapping 'stock_out'" in err.message


def test_extra_from_is_checked_only_against_a_live_store() -> None:
    text = replace_once(
        CHANNEL_TEXT,
        "      - {from: id_currency, to: currency_id, transform: none_if_zero}\n",
        "      - {from: id_currency, to: currency_id, transform: none_if_zero}\n"
        "      - {from: x_module_field, to: module_note}\n",
    )
    parse_channel(text, "c.yaml", shipped_machine(), vocabulary=VOCABULARY, store=STORE)
    live = dataclasses.replace(STORE, label="store 'main' (PrestaShop 8.2.1)", live=True)
    with pytest.raises(SpecErrors) as info:
        parse_channel(text, "c.yaml", shipped_machine(), vocabulary=VOCABULARY, store=live)
    [err] = info.value.errors
    assert err.message == "store 'main' (PrestaShop 8.2.1) orders have no field 'x_module_field'"


def test_defaults_fill_a_required_field() -> None:
    text = replace_once(CHANNEL_TEXT, "      - {from: payment, to: payment_method}\n", "")
    text = replace_once(
        text,
        "    children:\n      - {from: order_rows",
        "    defaults: {payment_method: Bank wire}\n    children:\n      - {from: order_rows",
    )
    spec = parse_channel(text, "c.yaml", shipped_machine(), vocabulary=VOCABULARY, store=STORE)
    assert spec.mappings["order_in"].defaults == {"payment_method": "Bank wire"}


def test_every_problem_at_once_despite_schema_errors() -> None:
    """One schema error used to hide every meaning error behind it."""
    text = replace_once(CHANNEL_TEXT, "new_orders: {every: 5m}", "new_orders: {every: 5 minutes}")
    text = replace_once(text, "to: total_paid, transform", "to: total_pad, transform")
    text = replace_once(text, "transform: first_language}", "transform: first_lang}")
    text = replace_once(
        text, "    RFP: Processing in progress\n", "    RFPP: Processing in progress\n"
    )
    text = replace_once(
        text, "{from: ean13, to: ean13, transform: strip}", "{form: ean13, to: ean13}"
    )
    errs = errors(text)
    codes = sorted(e.code for e in errs)
    assert "spec.invalid-value" in codes  # the duration
    assert "spec.unknown-key" in codes
    assert "spec.missing-key" in codes
    assert "spec.unknown-field" in codes  # total_pad
    assert "spec.missing-field" in codes  # total_paid
    assert "spec.unknown-transform" in codes  # first_lang
    assert "spec.unknown-state" in codes  # RFPP
    [duration] = [e for e in errs if e.code == "spec.invalid-value"]
    assert (
        duration.message == "'5 minutes' is not a duration like 5m or 30s (units: ms, s, m, h, d)"
    )
    assert duration.location.line == line_of(text, "every: 5 minutes")


def test_schema_messages_speak_the_integrators_language() -> None:
    text = replace_once(CHANNEL_TEXT, "verify_tls: true", "verify_tls: sure")
    text = replace_once(text, "backfill: 90d", "backfill: 3 months")
    text = replace_once(text, "max_concurrency: 8", "max_concurrency: 0")
    messages = {e.message for e in errors(text)}
    assert "'sure' is not true or false" in messages
    assert "'3 months' is not a number of days like 90d" in messages
    assert "0 is too small: must be at least 1" in messages


def test_a_machine_with_a_schema_error_still_gets_its_meaning_checks() -> None:
    text = replace_once(
        MACHINE_TEXT, "    guards: [all_lines_reservable]", "    gaurds: [all_lines_reservable]"
    )
    text = replace_once(
        text, "    unless: [all_lines_reservable]", "    unless: [all_lines_reservabel]"
    )
    with pytest.raises(SpecErrors) as info:
        parse_machine(text, "m.yaml", vocabulary=VOCABULARY)
    codes = sorted(e.code for e in info.value.errors)
    assert codes == ["spec.unknown-guard", "spec.unknown-key"]
