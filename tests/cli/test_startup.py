"""What a short command loads: `omsflow stock set` on unchanged specs imports no alembic
(the schema head is read from the migration files), no jsonschema or YAML checks (the
validated specs come from the cache), no HTTP, server, workbook, PDF or terminal-table
library, and only its own command module. On SQLite it runs on Core connections and the
Core schema (``db/schema.py``): no ORM, no ORM table classes, no PostgreSQL dialect, and of
the one rule only the stock path (no batch import, ORM session edge or attention flags), no
effects, channels, sync, listing or fulfilment. Load-independent guards of the start-up time
(issue 15: <= 0.4 s for one short command; ``python -m bench.scenarios cli_short`` times
it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from engine.runtime.db import session as dbsession
from engine.runtime.db.schema import OUTBOX, PRODUCTS, STORES
from engine.runtime.db.tables import ProductRow

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("alembic", "jsonschema", "httpx", "rich", "openpyxl", "reportlab", "starlette", "uvicorn")
NOT_ON_THE_CORE_PATH = (
    "yaml",
    "sqlalchemy.orm",
    "sqlalchemy.ext",
    "sqlalchemy.dialects.postgresql",
    "engine.runtime.db.tables",
    "engine.runtime.db.base",
    "engine.runtime.db.repository",
    "engine.runtime.apply.imports",
    "engine.runtime.apply.session",
    "engine.runtime.apply.attention",
    "engine.runtime.effects",
    "engine.runtime.channels",
    "engine.runtime.sync",
    "engine.runtime.listing",
    "engine.runtime.fulfilment",
    "engine.runtime.outbox",
)
"""Modules (and their submodules) ``stock set`` on SQLite does without."""
SCRIPT = """
import json, sys
import cli
try:
    cli.main(sys.argv[1:])
finally:
    loaded = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
    commands = sorted(m for m in sys.modules if m.startswith("clicmds."))
    modules = sorted(sys.modules)
    print(json.dumps({"heavy": loaded, "commands": commands, "modules": modules}), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (a module or any of its submodules) are among ``modules``."""
    return sorted({n for n in names for m in modules if m == n or m.startswith(n + ".")})


def _run(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, list[str]]]:
    env = {
        **os.environ,
        "OMSFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'omsflow.db'}",
        "OMSFLOW_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return proc.returncode, proc.stdout, report


def test_stock_set_loads_only_what_it_uses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'omsflow.db'}"
    dbsession.ensure_schema(url)
    engine = dbsession.make_engine(url)
    try:
        with dbsession.session_factory(engine).begin() as session:
            session.add(ProductRow(sku="SKU-1", name="a product"))
    finally:
        engine.dispose()
    code, out, first = _run(tmp_path, "stock", "set", "SKU-1", "5")
    assert code == 0, out
    assert "on hand 5" in out
    assert "alembic" not in first["heavy"]  # the head comes from migrations/versions
    code, out, again = _run(tmp_path, "stock", "set", "SKU-1", "7")  # specs now cached
    assert code == 0, out
    assert "on hand 7" in out
    assert again["heavy"] == []
    assert again["commands"] == ["clicmds.common", "clicmds.stock"]
    assert _loaded(again["modules"], NOT_ON_THE_CORE_PATH) == []
    assert "engine.runtime.apply.stock" in again["modules"]  # the guard guards something


def test_stock_set_without_the_orm_still_writes_push_and_refuses(tmp_path: Path) -> None:
    """The Core path keeps what the ORM path did: the coalesced push per store, and the
    refusal of a SKU the OMS does not hold."""
    url = f"sqlite:///{tmp_path / 'omsflow.db'}"
    dbsession.ensure_schema(url)
    engine = dbsession.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(PRODUCTS.insert(), [{"sku": "SKU-1", "name": "a product"}])
            conn.execute(
                STORES.insert(), [{"name": "main", "url": "http://shop/api", "api_key": "x"}]
            )
    finally:
        engine.dispose()
    code, out, report = _run(tmp_path, "stock", "set", "SKU-1", "4")
    assert code == 0, out
    assert "sqlalchemy.orm" not in report["modules"]
    engine = dbsession.make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(OUTBOX.c.kind, OUTBOX.c.payload, OUTBOX.c.state)).all()
    finally:
        engine.dispose()
    assert [(k, p["sku"], p["quantity"], s) for k, p, s in rows] == [
        ("push_stock", "SKU-1", 4, "pending")
    ]
    code, out, report = _run(tmp_path, "stock", "set", "NOPE", "4")
    assert code != 0


def test_help_lists_every_command_group(tmp_path: Path) -> None:
    code, out, report = _run(tmp_path, "--help")
    assert code == 0
    for name in ("orders", "products", "spec", "stock", "store", "sync", "wms", "demo"):
        assert f"  {name} " in out
    assert report["heavy"] == []  # listing the commands imports no command's libraries
