"""``omsflow demo`` end to end, as the README's first command runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSFLOW_")}
    return subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_demo_runs_end_to_end_and_prints_the_summary(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    proc = _run("demo", "--products", "120", "--orders", "90", "--keep", str(keep), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "summary" in out
    assert "orders per state" in out
    assert "effects delivered" in out
    assert "requests made to the store" in out
    assert "tracking number OMS" in out
    assert "status sync -> Complete" in out
    assert "refused, order kept Packed, flagged" in out
    diagram = keep / "lifecycle.md"
    assert f"lifecycle diagram: {diagram}" in out
    text = diagram.read_text(encoding="utf-8")
    assert "```mermaid" in text
    assert "Ready_to_Ship" in text
    assert (keep / "omsflow.db").is_file()
    assert any((keep / "labels").glob("*.pdf"))
    # the key is never printed in clear (only masked)
    assert "key ****" in out


@pytest.mark.slow
def test_demo_json_summary_counts_what_happened(tmp_path: Path) -> None:
    proc = _run("demo", "--products", "60", "--orders", "120", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    states = doc["orders_by_state"]
    assert states.get("Complete", 0) >= 1
    assert states.get("Packed", 0) >= 1
    effects = doc["effects_delivered"]
    assert effects["push_tracking"] == 2
    assert effects["request_awb"] == 2
    assert effects["push_status"] >= 5  # 3 releases (Processing) + 2 picks (Shipped)
    assert effects["push_stock"] >= 1
    assert len(doc["tracking"]) == 2
    stock = doc["stock"]
    assert stock["on_hand"] == stock["on_hand_before"] + 25
    assert stock["available"] >= 25  # the 25 units just added are free
    assert stock["store_quantity"] == stock["available"]  # what the store shows, read back
    assert doc["store_requests"] > 0
    assert Path(doc["diagram"]).is_file()
