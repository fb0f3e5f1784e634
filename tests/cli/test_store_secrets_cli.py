"""Stores and their secrets (issue 13): the webservice key is encrypted at rest, the SQLite file
and the key file are the owner's only, and a store can get a new key, a new name, be removed
(not while it has open orders, unless forced), show its states; one store is connected once."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from cli import omsflow
from engine.runtime.db import session as dbsession
from engine.runtime.db.tables import OrderRow, StoreRow
from sandbox.server import SandboxServer, start_sandbox


def all_permissions() -> dict[str, list[str]]:
    """Exactly what the channel spec asks a key for."""
    from engine.runtime.specs import load_bundle

    return {r: list(m) for r, m in load_bundle().channel.permissions.items()}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=5, orders=6, seed=3) as server:
        yield server


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'omsflow.db'}")
    monkeypatch.delenv("OMSFLOW_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        res = runner.invoke(omsflow, list(args))
        if ok:
            assert res.exit_code == 0, res.output
        return res

    return invoke


def db_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.glob("omsflow.db*") if p.is_file())


def connect(run, sandbox, name: str = "shop", *extra: str):
    return run(
        "store",
        "connect",
        "--url",
        sandbox.url,
        "--key",
        sandbox.key,
        "--name",
        name,
        "--no-sync",
        *extra,
    )


def test_the_key_is_not_in_the_database_file_in_clear(run, sandbox, tmp_path) -> None:
    connect(run, sandbox)
    raw = db_bytes(tmp_path)
    assert raw  # the file (and its WAL) were read
    assert sandbox.key.encode() not in raw
    stored = dbsession.make_engine(f"sqlite:///{tmp_path / 'omsflow.db'}")
    try:
        with stored.connect() as conn:
            value = conn.execute(select(StoreRow.api_key)).scalar_one()
    finally:
        stored.dispose()
    assert value.startswith("fernet:")
    # ... and the store still works: a sync reads through the decrypted key
    run("sync", "catalog")


def test_files_are_the_owners_only(run, sandbox, tmp_path) -> None:
    connect(run, sandbox)
    for path in (tmp_path / "omsflow.db", tmp_path / "omsflow.db.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_without_its_secret_key_a_store_key_is_one_clear_error(run, sandbox, tmp_path) -> None:
    connect(run, sandbox)
    (tmp_path / "omsflow.db.key").rename(tmp_path / "moved.key")
    res = run("sync", "catalog", ok=False)
    assert res.exit_code != 0
    assert "secret key file" in str(res.exception)
    assert "omsflow.db.key" in str(res.exception)
    (tmp_path / "moved.key").rename(tmp_path / "omsflow.db.key")
    run("sync", "catalog")


def test_the_secret_key_may_come_from_the_environment(run, sandbox, tmp_path, monkeypatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("OMSFLOW_SECRET_KEY", Fernet.generate_key().decode())
    connect(run, sandbox)
    assert not (tmp_path / "omsflow.db.key").exists()
    monkeypatch.setenv("OMSFLOW_SECRET_KEY", Fernet.generate_key().decode())  # the wrong one
    res = run("store", "list", ok=False)
    assert "cannot read the key of store 'shop'" in str(res.exception)


def test_update_key_proves_the_new_key_and_the_store_keeps_working(run, sandbox, tmp_path) -> None:
    connect(run, sandbox)
    sandbox.add_key("N" * 32, all_permissions())
    res = run("store", "update-key", "shop", "--key", "N" * 32)
    assert "N" * 32 not in res.output
    assert b"N" * 32 not in db_bytes(tmp_path)
    run("sync", "catalog")
    listed = json.loads(run("store", "list", "--json").stdout)["stores"]
    assert listed[0]["key"].endswith("NNNN")
    bad = run("store", "update-key", "shop", "--key", "W" * 32, ok=False)
    assert bad.exit_code != 0  # refused by the store: the saved key is unchanged
    assert json.loads(run("store", "list", "--json").stdout)["stores"][0]["key"].endswith("NNNN")


def test_the_same_store_is_connected_once(run, sandbox) -> None:
    connect(run, sandbox, "first")
    res = run(
        "store",
        "connect",
        "--url",
        sandbox.url.rstrip("/") + "/api/",
        "--key",
        sandbox.key,
        "--name",
        "second",
        "--no-sync",
        ok=False,
    )
    assert "already connected as 'first'" in str(res.exception)


def test_rename_and_remove(run, sandbox, tmp_path) -> None:
    connect(run, sandbox)
    run("sync", "orders")
    run("store", "rename", "shop", "main-shop")
    stores = json.loads(run("store", "list", "--json").stdout)["stores"]
    assert [s["name"] for s in stores] == ["main-shop"]
    engine = dbsession.make_engine(f"sqlite:///{tmp_path / 'omsflow.db'}")
    try:
        with engine.begin() as conn:
            opened = conn.execute(select(OrderRow.reference)).scalars().all()
            assert opened, "the sandbox gave the store some orders"
            conn.execute(update(OrderRow).values(state="New"))
        refused = run("store", "remove", "main-shop", ok=False)
        assert refused.exit_code != 0
        assert "open order" in str(refused.exception)
        assert opened[0] in str(refused.exception)
        done = json.loads(run("store", "remove", "main-shop", "--force", "--json").stdout)
        assert done["orders_detached"] == len(opened)
        with engine.connect() as conn:
            assert conn.execute(select(StoreRow)).first() is None
            assert len(conn.execute(select(OrderRow.id)).all()) == len(opened)  # history kept
    finally:
        engine.dispose()


def test_states_shows_the_store_states_and_the_spec_mapping(run, sandbox) -> None:
    connect(run, sandbox)
    doc = json.loads(run("store", "states", "--json").stdout)
    by_name = {s["name"]: s for s in doc["states"]}
    assert by_name["Shipped"]["pushed_by"] == ["In_transit", "Ready_to_Ship"]
    assert by_name["Delivered"]["change_trigger"] == "delivered"
    assert by_name["Payment accepted"]["import_trigger"] == "import"
    text = run("store", "states").stdout
    assert "pushed by In_transit, Ready_to_Ship" in text


@pytest.mark.slow
def test_a_worker_without_the_secret_key_refuses_to_start_in_one_line(
    run, sandbox, tmp_path
) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    connect(run, sandbox)
    (tmp_path / "omsflow.db.key").rename(tmp_path / "elsewhere.key")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSFLOW_")}
    env.update(OMSFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'omsflow.db'}", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", "run", "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 78, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot read the key of store 'shop'" in lines[0]
