"""The layers of DESIGN.md: spec and core import no IO library and nothing from runtime."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import engine

ENGINE = Path(engine.__file__).resolve().parent
FORBIDDEN = {"httpx", "sqlalchemy", "starlette", "uvicorn", "click", "psycopg", "engine.runtime"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", ["spec", "core"])
def test_pure_layers_import_no_io(layer: str) -> None:
    offenders = []
    for path in sorted((ENGINE / layer).rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                offenders.append(f"{path.relative_to(ENGINE.parent)} imports {name}")
    assert offenders == []


def test_spec_does_not_import_core() -> None:
    offenders = [
        str(p)
        for p in (ENGINE / "spec").rglob("*.py")
        if any(n.startswith("engine.core") for n in _imports(p))
    ]
    assert offenders == []


def test_layer_check_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import httpx\nfrom sqlalchemy import select\n")
    assert {"httpx", "sqlalchemy"} <= _imports(bad)


def test_engine_is_this_repository() -> None:
    # `engine` is a generic top-level name: fail loudly if another one shadows ours (the
    # layer checks above would otherwise inspect somebody else's package and pass).
    repo = Path(__file__).resolve().parent.parent
    assert repo / "engine" == ENGINE
