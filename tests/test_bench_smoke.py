"""The benchmark harness runs end to end at --quick sizes (figures are not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_quick_prints_one_table(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--quick",
            "--no-floors",
            "--only",
            "catalog,events_memory",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert text.count("| scenario |") == 1
    assert "catalogue sync" in text
    assert "apply_event, in memory" in text
    assert "not run" not in text


def _run(tmp_path: Path, only: str, env: dict[str, str] | None = None) -> str:
    out = tmp_path / "results.md"
    cmd = [sys.executable, "bench/run.py", "--quick", "--no-floors", "--only", only]
    proc = subprocess.run(
        [*cmd, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out.read_text(encoding="utf-8")


@pytest.mark.slow
def test_realstore_scenario_without_the_kit_says_why_in_its_row(tmp_path: Path) -> None:
    text = _run(tmp_path, "realstore_catalog", {"OMSFLOW_REALPS_DIR": str(tmp_path / "none")})
    row = next(line for line in text.splitlines() if line.startswith("| real PS 8.2.1"))
    assert "not run" in row
    assert "no real PrestaShop kit at" in row


def test_a_partial_run_replaces_its_rows_and_keeps_the_others() -> None:
    from bench.run import merge, table

    def result(label: str, wall: float) -> dict[str, object]:
        return {"label": label, "entities": 10, "unit": "x", "wall_s": wall, "peak_mb": 1.0}

    old = table(
        {
            "a": result("90-day order backfill", 1.0),
            "b": result("catalogue sync, serial page reads", 2.0),
        },
        {},
    )
    new = table({"c": result("catalogue sync (products + variations)", 3.0)}, {})
    doc = "\n".join(["# omsflow benchmark", "", "full sizes; earlier", "", *old, "", "- a note"])
    lines, meta, notes = merge(doc, new, "quick sizes; now", ["catalog"])
    labels = [line.split("|")[1].strip() for line in lines[2:]]
    assert labels == [
        "catalogue sync (products + variations)",  # the scenarios' order, not the file's
        "catalogue sync, serial page reads",
        "90-day order backfill",
    ]
    assert "| 3.00 |" in lines[2]
    assert meta == "full sizes; earlier | rows updated catalog: quick sizes; now"
    assert notes == ["a note"]
    doc = "\n".join(["# omsflow benchmark", "", meta, "", *lines])
    _, meta, _ = merge(doc, new, "later", ["backfill"])
    _, meta, _ = merge("\n".join(["#", "", meta, "", *lines]), new, "last", ["catalog"])
    assert (
        meta == "full sizes; earlier | rows updated backfill: later | rows updated catalog: last"
    )


@pytest.mark.realstore
@pytest.mark.slow
def test_realstore_catalog_measures_four_ways_and_drops_its_store(tmp_path: Path) -> None:
    from tests.realstore import harness

    reason = harness.missing_reason()
    if reason:
        pytest.skip(f"real PrestaShop unavailable: {reason}")
    text = _run(tmp_path, "realstore_catalog")
    rows = [line for line in text.splitlines() if line.startswith("| real PS 8.2.1")]
    assert [r.split("|")[1].strip() for r in rows] == [
        "real PS 8.2.1: store's serial read (bare httpx)",
        "real PS 8.2.1: omsflow sync, serial reads",
        "real PS 8.2.1: store's parallel read (8 threads)",
        "real PS 8.2.1: omsflow sync, parallel reads",
    ]
    assert "not run" not in text
    assert "319 products in the store" in rows[0]  # the demo's 19 + 300 grown
    database = re.search(r"store (omsflow_rps_\w+) up", rows[0])
    assert database is not None
    assert database.group(1) not in harness.leftover_databases()
