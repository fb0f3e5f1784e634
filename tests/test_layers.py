"""The layers of DESIGN.md, checked by import-linter (``lint-imports``, contracts in
pyproject.toml ``[tool.importlinter]``): spec and core import no IO library and nothing of
runtime, spec does not import core, the sandbox shares no code with the engine, the client
imports nothing of the sandbox, and sync, the outbox, effects and listing import nothing of
``channels/prestashop`` (they reach a channel through ``channels.port``).

``engine`` and ``sandbox`` are generic top-level names: a stray installed copy could shadow
ours and the contracts would then inspect somebody else's code and pass. The check runs with
this repository first on ``PYTHONPATH`` and proves that the graph it analysed is this tree's
(the packages resolve here, in the same process that builds the graph; a copy with one bad
import added fails, naming it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "sandbox")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the tree at ``root``: its pyproject.toml, its packages first on the
    path, no cache (parallel runs share no files). The same process first prints where
    ``engine`` and ``sandbox`` resolve: grimp finds the packages it analyses the same way."""
    code = (
        "import engine, sandbox; print('tree:', engine.__file__, sandbox.__file__); "
        "from importlinter.cli import lint_imports_command; lint_imports_command()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _tree_line(root: Path) -> str:
    return "tree: " + " ".join(str(root / p / "__init__.py") for p in PACKAGES)


def _python_files(root: Path) -> int:
    return sum(1 for pkg in PACKAGES for _ in (root / pkg).rglob("*.py"))


def test_the_layer_contracts_hold_for_this_tree() -> None:
    proc = _lint_imports(REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert _tree_line(REPO) in out.splitlines(), out[:500]
    analysed = re.search(r"Analyzed (\d+) files", out)
    assert analysed is not None, out[-2000:]
    assert int(analysed.group(1)) >= _python_files(REPO), out[-2000:]
    assert "Contracts: 5 kept, 0 broken." in out, out[-2000:]


def _copy_tree(dest: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_a_contract_fails_on_a_forbidden_import(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    core = tree / "engine" / "core" / "__init__.py"
    core.write_text(core.read_text(encoding="utf-8") + "\nimport sqlalchemy  # noqa\n")
    client = tree / "engine" / "runtime" / "channels" / "prestashop" / "client.py"
    client.write_text(client.read_text(encoding="utf-8") + "\nimport sandbox.store  # noqa\n")
    catalog = tree / "engine" / "runtime" / "sync" / "catalog.py"
    wire = "\nimport engine.runtime.channels.prestashop.records  # noqa\n"
    catalog.write_text(catalog.read_text(encoding="utf-8") + wire)
    proc = _lint_imports(tree)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert _tree_line(tree) in out.splitlines(), out[:500]
    assert "engine.core -> sqlalchemy" in out, out[-4000:]
    assert "engine.runtime.channels.prestashop.client -> sandbox.store" in out, out[-4000:]
    assert "engine.runtime.sync.catalog -> engine.runtime.channels.prestashop.records" in out, out[
        -4000:
    ]
    assert "Contracts: 2 kept, 3 broken." in out, out[-2000:]
