"""Meaning checks: each kind of problem, located; the shipped specs pass them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core import VOCABULARY
from engine.errors import SpecErrors
from engine.spec import load_channel, load_machine, parse_channel, parse_machine
from tests.spec.helpers import (
    CHANNEL_PATH,
    CHANNEL_TEXT,
    MACHINE_PATH,
    MACHINE_TEXT,
    line_of,
    machine_errors,
    replace_once,
    shipped_machine,
)


def codes(errors: SpecErrors) -> list[str]:
    return [e.code for e in errors.errors]


def channel_errors(text: str) -> SpecErrors:
    with pytest.raises(SpecErrors) as info:
        parse_channel(text, "c.yaml", shipped_machine(), vocabulary=VOCABULARY)
    return info.value


def test_shipped_specs_are_valid() -> None:
    machine = load_machine(MACHINE_PATH, vocabulary=VOCABULARY)
    assert [s.name for s in machine.states if not s.pseudo] == [
        "New",
        "Partial",
        "RFP",
        "Packed",
        "Ready_to_Ship",
        "In_transit",
        "Complete",
        "Cancel_in_Process",
        "Canceled",
        "Cancelled_by_seller_inprocess",
        "Cancelled_by_seller",
    ]
    channel = load_channel(CHANNEL_PATH, machine, vocabulary=VOCABULARY)
    assert channel.schedules.new_orders_seconds == 300
    assert channel.schedules.status_changes_seconds == 1800
    assert channel.schedules.backfill_days == 90
    assert channel.connection.rate_limit.per_seconds == 1.0
    assert channel.status_map.outbound["Packed"] is None
    assert channel.status_map.inbound["Canceled"].change_trigger == "buyer_cancel"
    assert channel.prices.sources == ("selling_price", "retail_selling_price")
    assert channel.fulfilment.wms_events["picked"] == "picked"
    assert channel.mappings["order_in"].children[0].spec is channel.mappings["order_line_in"]


def test_unknown_state_in_a_transition() -> None:
    text = replace_once(
        MACHINE_TEXT, "    source: RFP\n    dest: Packed", "    source: RFP\n    dest: Paked"
    )
    errs = machine_errors(text)
    # Packed is now also unreachable: both are reported, each at its own line.
    assert sorted(codes(errs)) == ["spec.unknown-state", "spec.unreachable-state"]
    err = next(e for e in errs.errors if e.code == "spec.unknown-state")
    assert err.location.line == line_of(text, "dest: Paked")
    assert err.hint == "did you mean 'Packed'?"


def test_unknown_source_state_in_a_list() -> None:
    text = replace_once(MACHINE_TEXT, "source: [RFP, Packed]", "source: [RFP, Pakced]")
    errs = machine_errors(text)
    assert "spec.unknown-state" in codes(errs)
    assert errs.errors[0].location.json_path.endswith(".source[1]")


def test_buyer_cancel_from_packed_breaks_the_invariant_at_its_line() -> None:
    text = replace_once(
        MACHINE_TEXT,
        "source: [New, Partial, RFP]\n    dest: Cancel_in_Process",
        "source: [New, Partial, RFP, Packed]\n    dest: Cancel_in_Process",
    )
    [err] = machine_errors(text).errors
    assert err.code == "spec.invariant-violated"
    assert err.location.line == line_of(text, "source: [New, Partial, RFP, Packed]")
    assert "buyer_cancel" in err.message
    assert "no_cancel_after_packed" in err.message


def test_invariant_catches_cancel_from_a_state_after_packed() -> None:
    text = MACHINE_TEXT.replace(
        "invariants:",
        "  - trigger: seller_cancel\n    source: In_transit\n"
        "    dest: Cancelled_by_seller_inprocess\n\ninvariants:",
        1,
    )
    [err] = machine_errors(text).errors
    assert err.code == "spec.invariant-violated"
    assert "In_transit" in err.message


def test_unreachable_state() -> None:
    text = replace_once(
        MACHINE_TEXT,
        "  - name: Canceled\n",
        "  - name: Limbo\n    final: true\n  - name: Canceled\n",
    )
    [err] = machine_errors(text).errors
    assert err.code == "spec.unreachable-state"
    assert err.location.line == line_of(text, "name: Limbo")


def test_dead_end_state() -> None:
    text = replace_once(
        MACHINE_TEXT, "  - name: Complete\n    final: true\n", "  - name: Complete\n"
    )
    assert codes(machine_errors(text)) == ["spec.dead-end"]


def test_final_state_with_a_transition() -> None:
    text = replace_once(
        MACHINE_TEXT,
        "    source: [Ready_to_Ship, In_transit]\n    dest: Complete",
        "    source: [Ready_to_Ship, In_transit, Canceled]\n    dest: Complete",
    )
    assert codes(machine_errors(text)) == ["spec.final-has-transition"]


def test_ambiguous_transitions_without_telling_guards() -> None:
    text = replace_once(MACHINE_TEXT, "    unless: [all_lines_reservable]\n", "")
    [err] = machine_errors(text).errors
    assert err.code == "spec.ambiguous-transition"
    assert "'import' from 'Incoming'" in err.message


def test_unknown_guard_effect_and_follow_up() -> None:
    text = replace_once(
        MACHINE_TEXT,
        "source: Partial\n    dest: New\n    guards: [all_lines_reservable]",
        "source: Partial\n    dest: New\n    guards: [all_lines_reservabel]",
    )
    text = replace_once(
        text, "effects: [push_tracking, notify_wms]", "effects: [push_trakcing, notify_wms]"
    )
    text = replace_once(text, "then: awb_ready", "then: awb_redy")
    errs = machine_errors(text)
    assert codes(errs) == ["spec.unknown-guard", "spec.unknown-trigger", "spec.unknown-effect"]
    hints = [e.hint for e in errs.errors]
    assert hints == [
        "did you mean 'all_lines_reservable'?",
        "did you mean 'awb_ready'?",
        "did you mean 'push_tracking'?",
    ]


def test_vocabulary_is_optional() -> None:
    text = replace_once(MACHINE_TEXT, "guards: [all_lines_reservable]", "guards: [whatever]")
    text = replace_once(text, "unless: [all_lines_reservable]", "unless: [whatever]")
    assert parse_machine(text, "m.yaml").transitions[0].guards == ("whatever",)


def test_internal_with_dest_and_missing_dest() -> None:
    text = replace_once(
        MACHINE_TEXT,
        "    internal: true\n    effects:\n      - {kind: request_awb",
        "    internal: true\n    dest: In_transit\n    effects:\n      - {kind: request_awb",
    )
    text = replace_once(
        text,
        "  - trigger: pack\n    source: RFP\n    dest: Packed\n",
        "  - trigger: pack\n    source: RFP\n",
    )
    assert sorted(codes(machine_errors(text))) == [
        "spec.internal-with-dest",
        "spec.missing-key",
        "spec.unreachable-state",
    ]


def test_unknown_initial_and_invariant_state() -> None:
    text = replace_once(MACHINE_TEXT, "initial: Incoming", "initial: Incomming")
    text = replace_once(text, "from_states_after: Packed", "from_states_after: Pakced")
    assert sorted(codes(machine_errors(text))) == ["spec.unknown-state", "spec.unknown-state"]


# ----------------------------------------------------------------------------- channel


def test_channel_unknown_state_and_missing_outbound_entry() -> None:
    text = replace_once(
        CHANNEL_TEXT, "    RFP: Processing in progress\n", "    RFPP: Processing in progress\n"
    )
    errs = channel_errors(text)
    assert sorted(codes(errs)) == ["spec.missing-status", "spec.unknown-state"]
    unknown = next(e for e in errs.errors if e.code == "spec.unknown-state")
    assert unknown.location.line == line_of(text, "RFPP:")
    assert unknown.hint == "did you mean 'RFP'?"


def test_channel_unknown_triggers() -> None:
    text = replace_once(CHANNEL_TEXT, "change: buyer_cancel", "change: buyer_cancle")
    text = replace_once(text, "    handed_over: handover", "    handed_over: hand_over")
    errs = channel_errors(text)
    assert codes(errs) == ["spec.unknown-trigger", "spec.unknown-trigger"]
    assert errs.errors[1].location.line == line_of(text, "handed_over: hand_over")


def test_channel_import_trigger_must_start_from_initial() -> None:
    text = replace_once(
        CHANNEL_TEXT, "Shipped: {import: import_shipped", "Shipped: {import: handover"
    )
    assert codes(channel_errors(text)) == ["spec.import-not-initial"]


def test_channel_imported_status_needs_an_inbound_rule() -> None:
    text = replace_once(
        CHANNEL_TEXT, "imported: [Payment accepted,", "imported: [Payment acepted,"
    )
    errs = channel_errors(text)
    assert codes(errs) == ["spec.missing-inbound"]
    assert errs.errors[0].hint == "did you mean 'Payment accepted'?"


def test_channel_unknown_transform_and_mapping() -> None:
    text = replace_once(
        CHANNEL_TEXT, "to: total_paid, transform: decimal", "to: total_paid, transform: decmal"
    )
    text = replace_once(text, "mapping: order_line_in}", "mapping: order_lines_in}")
    errs = channel_errors(text)
    assert sorted(codes(errs)) == ["spec.unknown-mapping", "spec.unknown-transform"]
    assert {e.hint for e in errs.errors} == {
        "did you mean 'decimal'?",
        "did you mean 'order_line_in'?",
    }


def test_channel_for_another_machine() -> None:
    text = replace_once(CHANNEL_TEXT, "machine: order_lifecycle", "machine: returns")
    assert codes(channel_errors(text)) == ["spec.unknown-machine"]


def test_channel_status_names_like_booleans_stay_names(tmp_path: Path) -> None:
    text = replace_once(CHANNEL_TEXT, "    Packed: null\n", "    Packed: On\n")
    channel = parse_channel(text, "c.yaml", shipped_machine(), vocabulary=VOCABULARY)
    assert channel.status_map.outbound["Packed"] == "On"


# ----------------------------------------------------------------------------- SKU rules

SKU_LINE = 'combination: [reference, ean13, "{product_reference}-{attributes}", fallback]'


def test_shipped_sku_rule() -> None:
    channel = parse_channel(CHANNEL_TEXT, "c.yaml", shipped_machine(), vocabulary=VOCABULARY)
    combo = channel.skus.candidates("combination")
    assert [c.source for c in combo] == [
        "reference",
        "ean13",
        "rule:{product_reference}-{attributes}",
        "fallback",
    ]
    assert combo[2].placeholders == ("product_reference", "attributes")
    assert channel.skus.candidates("product")[-1].kind == "fallback"


def test_sku_rule_without_fallback_still_ends_with_it() -> None:
    text = replace_once(CHANNEL_TEXT, SKU_LINE, "combination: [reference]")
    channel = parse_channel(text, "c.yaml", shipped_machine(), vocabulary=VOCABULARY)
    assert [c.kind for c in channel.skus.candidates("combination")] == ["reference", "fallback"]


def test_sku_template_with_an_unknown_placeholder_is_located() -> None:
    text = replace_once(
        CHANNEL_TEXT, "{product_reference}-{attributes}", "{product_ref}-{attributes}"
    )
    [err] = channel_errors(text).errors
    assert err.code == "spec.unknown-placeholder"
    assert err.location.line == line_of(text, "{product_ref}-")
    assert err.location.json_path == "$.skus.combination[2]"
    assert err.hint == "did you mean 'product_reference'?"
    assert "\n" not in err.line()


def test_sku_placeholders_are_per_kind() -> None:
    text = replace_once(CHANNEL_TEXT, '"{reference}-{product_id}"', '"{reference}-{attributes}"')
    [err] = channel_errors(text).errors
    assert err.code == "spec.unknown-placeholder"
    assert "for products" in err.message
    assert err.location.json_path == "$.skus.product[2]"


def test_sku_rule_problems_each_located() -> None:
    text = replace_once(
        CHANNEL_TEXT,
        SKU_LINE,
        'combination: [referense, "x-{reference", "FIX{{ED}}", "{ean13:>13}", fallback, ean13]',
    )
    errs = channel_errors(text)
    assert codes(errs) == [
        "spec.unknown-sku-candidate",
        "spec.invalid-template",
        "spec.constant-template",
        "spec.invalid-template",
        "spec.unreachable-candidate",
    ]
    paths = [e.location.json_path for e in errs.errors]
    assert paths == [f"$.skus.combination[{i}]" for i in (0, 1, 2, 3, 5)]
    assert errs.errors[0].hint == "did you mean 'reference'?"
    line = line_of(text, "combination: [referense")
    assert {e.location.line for e in errs.errors} == {line}
