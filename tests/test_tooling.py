"""ruff (lint and format) and mypy, configured in pyproject.toml, are clean for the whole
project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False, timeout=300)


def _ruff() -> list[str]:
    ruff = BIN / "ruff"
    return [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]


@pytest.mark.slow
def test_ruff_check_is_clean() -> None:
    proc = _run(*_ruff(), "check", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_ruff_format_is_clean() -> None:
    proc = _run(*_ruff(), "format", "--check", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    proc = _run(sys.executable, "-m", "mypy")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
