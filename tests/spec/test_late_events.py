"""The lifecycle's ``late_events`` declaration: events that may arrive after the order is
already past them (``packed`` after ``picked``), acknowledged as no-ops. The shipped spec
declares them; every name is checked and located like the other checks."""

from __future__ import annotations

from engine.errors import SpecErrors
from tests.spec.helpers import MACHINE_TEXT, line_of, machine_errors, replace_once, shipped_machine


def _codes(errors: SpecErrors) -> list[str]:
    return [e.code for e in errors.errors]


def test_the_shipped_lifecycle_declares_the_warehouse_events_late() -> None:
    late = {e.trigger: e.after for e in shipped_machine().late_events}
    assert late["pack"] == ("Packed",)
    assert late["picked"] == ("Ready_to_Ship",)
    assert late["handover"] == ("In_transit",)
    assert late["delivered"] == ("Complete",)


def test_an_unknown_state_in_after_is_located_with_a_did_you_mean() -> None:
    text = replace_once(MACHINE_TEXT, "    after: Packed\n", "    after: Pakced\n")
    [err] = machine_errors(text).errors
    assert err.code == "spec.unknown-state"
    assert err.location.line == line_of(text, "after: Pakced")
    assert err.location.json_path == "$.late_events[0].after"
    assert err.hint == "did you mean 'Packed'?"
    assert "m.yaml:" in err.line()


def test_an_unknown_state_in_a_list_is_located_at_its_item() -> None:
    text = replace_once(
        MACHINE_TEXT, "    after: Ready_to_Ship\n", "    after: [Ready_to_Ship, Shiped]\n"
    )
    [err] = machine_errors(text).errors
    assert err.code == "spec.unknown-state"
    assert err.location.json_path == "$.late_events[1].after[1]"


def test_an_unknown_trigger_is_located_with_a_did_you_mean() -> None:
    text = replace_once(
        MACHINE_TEXT, "  - trigger: handover\n    after:", "  - trigger: handvoer\n    after:"
    )
    [err] = machine_errors(text).errors
    assert err.code == "spec.unknown-trigger"
    assert err.location.line == line_of(text, "trigger: handvoer")
    assert err.hint == "did you mean 'handover'?"


def test_a_trigger_cannot_be_late_where_it_is_enabled() -> None:
    # pack is enabled from RFP: declaring it late after RFP would make it both
    text = replace_once(MACHINE_TEXT, "    after: Packed\n", "    after: RFP\n")
    [err] = machine_errors(text).errors
    assert err.code == "spec.late-event-enabled"
    assert err.location.line == line_of(text, "    after: RFP")
    assert "'pack'" in err.message
    assert "'RFP'" in err.message


def test_a_trigger_declared_late_twice_is_refused() -> None:
    text = MACHINE_TEXT + "  - trigger: pack\n    after: Complete\n"
    [err] = machine_errors(text).errors
    assert err.code == "spec.duplicate-late-event"
    assert err.location.line == len(text.splitlines()) - 1


def test_the_schema_requires_after() -> None:
    text = MACHINE_TEXT + "  - trigger: release\n"
    errs = machine_errors(text)
    assert _codes(errs) == ["spec.missing-key"], errs
    assert "after" in errs.errors[0].message
