"""`omsflow spec ...` through click's CliRunner: the Must-show items of issue 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import omsflow
from tests.spec.helpers import CHANNEL_PATH, CHANNEL_TEXT, MACHINE_PATH, MACHINE_TEXT, line_of

STATES = [
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


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with copies of the shipped specs."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "channels").mkdir()
    shutil.copy(MACHINE_PATH, tmp_path / "specs" / MACHINE_PATH.name)
    shutil.copy(CHANNEL_PATH, tmp_path / "channels" / CHANNEL_PATH.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_validate_shipped_specs_exits_0(runner: CliRunner, workdir: Path) -> None:
    result = runner.invoke(omsflow, ["spec", "validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == [
        "ok: 2 file(s) valid (1 machine(s), 1 channel(s))"
    ]


BROKEN = {
    "unknown_state": (
        "    source: RFP\n    dest: Packed\n",
        "    source: RFP\n    dest: Pakced\n",
        "dest: Pakced",
        "unknown state 'Pakced'",
    ),
    "cancel_from_packed": (
        "source: [New, Partial, RFP]\n    dest: Cancel_in_Process",
        "source: [New, Partial, RFP, Packed]\n    dest: Cancel_in_Process",
        "source: [New, Partial, RFP, Packed]",
        "breaks invariant 'no_cancel_after_packed'",
    ),
    "syntax_error": (
        "  - trigger: pack\n",
        "  - trigger: [pack\n",
        "trigger: [pack",
        "YAML syntax error",
    ),
    "misspelled_key": (
        "    guards: [all_lines_reservable]\n",
        "    gaurds: [all_lines_reservable]\n",
        "gaurds:",
        "unknown key 'gaurds'",
    ),
    "duplicate_key": (
        "    source: RFP\n    dest: Packed\n",
        "    source: RFP\n    dest: Packed\n    dest: Packed\n",
        "dest: Packed",
        "duplicate key 'dest'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validate_broken_copy_exits_1_with_one_located_line(
    runner: CliRunner, workdir: Path, case: str
) -> None:
    old, new, marker, words = BROKEN[case]
    text = MACHINE_TEXT.replace(old, new, 1)
    target = workdir / "specs" / MACHINE_PATH.name
    target.write_text(text, encoding="utf-8")
    result = runner.invoke(omsflow, ["spec", "validate"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stdout.strip().splitlines()
    hits = [ln for ln in lines if words in ln]
    assert len(hits) == 1, lines
    line = line_of(text, marker, 2 if case == "duplicate_key" else 1)
    if case == "syntax_error":
        assert hits[0].startswith(f"specs/{MACHINE_PATH.name}:")
    else:
        assert hits[0].startswith(f"specs/{MACHINE_PATH.name}:{line}:"), hits[0]
    if case == "misspelled_key":
        assert "did you mean 'guards'?" in hits[0]


def test_validate_rejects_a_bad_sku_template_with_one_located_line(
    runner: CliRunner, workdir: Path
) -> None:
    text = CHANNEL_TEXT.replace("{product_reference}-{attributes}", "{product_ref}-{size}", 1)
    (workdir / "channels" / CHANNEL_PATH.name).write_text(text, encoding="utf-8")
    result = runner.invoke(omsflow, ["spec", "validate"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stdout.strip().splitlines()
    hits = [ln for ln in lines if "unknown placeholder" in ln]
    assert len(hits) == 2, lines
    line = line_of(text, "{product_ref}-{size}")
    assert all(h.startswith(f"channels/{CHANNEL_PATH.name}:{line}:") for h in hits), hits
    assert any("'{product_ref}'" in h and "did you mean 'product_reference'?" in h for h in hits)


def test_validate_names_files_and_folders(runner: CliRunner, workdir: Path) -> None:
    bad = workdir / "broken.yaml"
    bad.write_text(CHANNEL_TEXT.replace("change: buyer_cancel", "change: buyer_cancle", 1))
    result = runner.invoke(omsflow, ["spec", "validate", "specs", str(bad)])
    assert result.exit_code == 1
    [line] = result.stdout.strip().splitlines()
    assert line.startswith(f"{bad}:{line_of(bad.read_text(), 'buyer_cancle')}:")
    assert "did you mean 'buyer_cancel'?" in line
    ok = runner.invoke(omsflow, ["spec", "validate", "--json", "channels"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["channels"] == ["prestashop"]


def test_schema_prints_json(runner: CliRunner) -> None:
    for kind in ("machine", "channel"):
        result = runner.invoke(omsflow, ["spec", "schema", kind])
        assert result.exit_code == 0
        assert json.loads(result.stdout)["$id"] == f"https://omsflow.dev/schemas/{kind}.v1.json"


def test_graph_mermaid_names_every_state_and_trigger(runner: CliRunner, workdir: Path) -> None:
    result = runner.invoke(omsflow, ["spec", "graph", "--format", "mermaid"])
    assert result.exit_code == 0
    assert result.stdout.startswith("stateDiagram-v2")
    for state in STATES:
        assert f"    {state}\n" in result.stdout
    for trigger in (
        "import",
        "stock_short",
        "stock_arrived",
        "release",
        "pack",
        "picked",
        "ready_to_ship",
        "handover",
        "delivered",
        "buyer_cancel",
        "seller_cancel",
        "cancel_confirmed",
    ):
        assert f": {trigger}" in result.stdout


def test_graph_dot_to_file_and_image_without_graphviz(
    runner: CliRunner, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(omsflow, ["spec", "graph", "--format", "dot", "-o", "g.dot"])
    assert result.exit_code == 0
    text = (workdir / "g.dot").read_text()
    assert text.startswith('digraph "order_lifecycle"')
    assert all(f'"{s}"' in text for s in STATES)
    monkeypatch.setenv("PATH", str(workdir))  # no `dot` on PATH
    img = runner.invoke(omsflow, ["spec", "graph", "--format", "png", "-o", "g.png"])
    assert img.exit_code != 0
    assert "Graphviz 'dot' is not installed" in str(img.exception)


def simulate(runner: CliRunner, *args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(omsflow, ["spec", "simulate", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_simulate_happy_path(runner: CliRunner) -> None:
    code, doc = simulate(runner, "--events", "import,release,picked")
    assert code == 0
    assert doc == {
        "final_state": "Ready_to_Ship",
        "steps": [
            {"trigger": "import", "from": "Incoming", "to": "New", "effects": ["reserve_stock"]},
            {"trigger": "release", "from": "New", "to": "RFP", "effects": ["push_status"]},
            {
                "trigger": "picked",
                "from": "RFP",
                "to": "Ready_to_Ship",
                "effects": ["consume_stock", "push_status"],
            },
        ],
        "refused": None,
    }


def test_simulate_cancel_after_packed_is_refused(runner: CliRunner) -> None:
    code, doc = simulate(runner, "--events", "import,release,pack,buyer_cancel,delivered")
    assert code == 1
    assert doc["final_state"] == "Packed"
    assert [s["trigger"] for s in doc["steps"]] == ["import", "release", "pack"]  # type: ignore[index, union-attr]
    refused = doc["refused"]
    assert isinstance(refused, dict)
    assert refused["trigger"] == "buyer_cancel"
    assert refused["state"] == "Packed"
    assert refused["code"] == "not_allowed"
    assert "buyer_cancel" in refused["message"]


def test_simulate_assume_guard_false_goes_partial(runner: CliRunner) -> None:
    code, doc = simulate(runner, "--events", "import", "--assume", "all_lines_reservable=false")
    assert code == 0
    assert doc["final_state"] == "Partial"


def test_simulate_guard_refusal_and_from(runner: CliRunner) -> None:
    code, doc = simulate(
        runner,
        "--from",
        "Partial",
        "--events",
        "stock_arrived",
        "--assume",
        "all_lines_reservable=false",
    )
    assert code == 1
    refused = doc["refused"]
    assert isinstance(refused, dict)
    assert refused["code"] == "guard_failed"
    assert "all_lines_reservable" in refused["message"]


def test_simulate_unknown_trigger(runner: CliRunner) -> None:
    code, doc = simulate(runner, "--events", "import,teleport")
    assert code == 1
    assert doc["final_state"] == "New"
    assert doc["refused"]["code"] == "unknown_trigger"  # type: ignore[index]


def test_simulate_human_output(runner: CliRunner) -> None:
    result = runner.invoke(omsflow, ["spec", "simulate", "--events", "import,release"])
    assert result.exit_code == 0
    assert "import: Incoming -> New  [reserve_stock]" in result.stdout
    assert result.stdout.strip().endswith("final state: RFP")


def test_simulate_bad_arguments_are_one_line_errors(runner: CliRunner) -> None:
    bad = runner.invoke(omsflow, ["spec", "simulate", "--events", "import", "--assume", "x"])
    assert bad.exit_code == 2
    assert "GUARD=true|false" in bad.output
    unknown = runner.invoke(omsflow, ["spec", "simulate", "--events", "import", "--from", "Nope"])
    assert unknown.exit_code != 0
    assert "unknown state 'Nope'" in str(unknown.exception)
