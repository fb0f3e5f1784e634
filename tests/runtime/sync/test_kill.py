"""SIGKILL in the middle of a catalogue sync and of an order sync, then a re-run, ends with
the same database content as an uninterrupted run (compared table by table, natural keys)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.db.tables import SyncCursorRow
from engine.runtime.sandbox.server import SandboxServer, start_sandbox
from engine.runtime.specs import Bundle, load_bundle
from tests.conftest import REPO, fresh_pg_database

from .support import connected, dump

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=60, orders=90, seed=5, now=NOW, latency_ms=12) as server:
        yield server


def _workdir(tmp_path: Path) -> Path:
    """A working folder whose channel spec reads 10 items a page (many pages to kill in)."""
    work = tmp_path / "work"
    (work / "channels").mkdir(parents=True)
    text = (REPO / "channels" / "prestashop.yaml").read_text()
    assert "page_size: 500" in text
    (work / "channels" / "prestashop.yaml").write_text(
        text.replace("page_size: 500", "page_size: 10")
    )
    return work


def _omsflow(work: Path, url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMSFLOW_DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[bytes]) -> None:
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


def _kill_after_commit(
    proc: subprocess.Popen[bytes], sessions: sessionmaker[Session], stream: str
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sessions() as s:
            value = s.scalar(select(SyncCursorRow.value).where(SyncCursorRow.stream == stream))
        if value:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL, "the sync finished before the kill"
            return
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no {stream} page was committed in time")


def test_sigkill_mid_sync_then_rerun_equals_an_uninterrupted_run(
    db_url: str,
    sandbox: SandboxServer,
    bundle: Bundle,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    work = _workdir(tmp_path)
    if db_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'other.db'}"
    else:
        other = fresh_pg_database(request.getfixturevalue("pg_server_url"))
    with (
        connected(db_url, sandbox, bundle) as (_e1, killed),
        connected(other, sandbox, bundle) as (_e2, clean),
    ):
        proc = _omsflow(work, db_url, "sync", "catalog", "--json")
        _kill_after_commit(proc, killed, "catalog.full")
        _finish(_omsflow(work, db_url, "sync", "catalog", "--json"))
        proc = _omsflow(work, db_url, "sync", "orders", "--json")
        _kill_after_commit(proc, killed, "orders.new")
        _finish(_omsflow(work, db_url, "sync", "orders", "--json"))

        _finish(_omsflow(work, other, "sync", "catalog", "--json"))
        _finish(_omsflow(work, other, "sync", "orders", "--json"))
        a, b = dump(killed), dump(clean)
        assert a["products"]
        assert a["orders"]
        for table in a:
            assert a[table] == b[table], table
