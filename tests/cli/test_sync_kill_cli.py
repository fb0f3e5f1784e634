"""SIGKILL in the middle of a catalogue sync and of an order sync, then a re-run, ends with
the same database content as an uninterrupted run (compared table by table, natural keys)."""

from __future__ import annotations

import json
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
from engine.runtime.specs import Bundle, load_bundle
from sandbox.server import SandboxServer, start_sandbox
from tests.conftest import REPO, fresh_pg_database
from tests.runtime.sync.support import connected, dump

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
    proc: subprocess.Popen[bytes],
    sessions: sessionmaker[Session],
    stream: str,
    sandbox: SandboxServer,
) -> None:
    """SIGKILL ``proc`` once a page of ``stream`` is committed.

    The store answers slowly (300 ms a request) until then, so a committed page stays the
    last one for far longer than a poll takes, however loaded the machine: a fast store
    let a whole 6-page sync pass between two polls on a busy CI machine."""
    sandbox.faults.update({"latency_ms": 300})
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with sessions() as s:
                value = s.scalar(select(SyncCursorRow.value).where(SyncCursorRow.stream == stream))
            if value:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=30)
                assert proc.returncode == -signal.SIGKILL, "the sync finished before the kill"
                return
            if proc.poll() is not None:
                _out, err = proc.communicate()
                pytest.fail(
                    f"the sync ended (exit {proc.returncode}) before a {stream} page was "
                    f"seen committed: {err.decode()[-400:]}"
                )
            time.sleep(0.01)
        proc.kill()
        pytest.fail(f"no {stream} page was committed in time")
    finally:
        sandbox.faults.update({"latency_ms": 12})


@pytest.mark.slow
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
        _kill_after_commit(proc, killed, "catalog.full", sandbox)
        _finish(_omsflow(work, db_url, "sync", "catalog", "--json"))
        proc = _omsflow(work, db_url, "sync", "orders", "--json")
        _kill_after_commit(proc, killed, "orders.new", sandbox)
        _finish(_omsflow(work, db_url, "sync", "orders", "--json"))

        _finish(_omsflow(work, other, "sync", "catalog", "--json"))
        _finish(_omsflow(work, other, "sync", "orders", "--json"))
        a, b = dump(killed), dump(clean)
        assert a["products"]
        assert a["orders"]
        for table in a:
            assert a[table] == b[table], table


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stream", "cursor", "noun"),
    [("catalog", "catalog.full", "product"), ("orders", "orders.new", "order")],
)
def test_ctrl_c_mid_sync_says_what_was_saved_and_exits_130(
    sandbox: SandboxServer,
    bundle: Bundle,
    tmp_path: Path,
    stream: str,
    cursor: str,
    noun: str,
) -> None:
    """SIGINT after a committed page: exit 130, one stderr line saying how many were saved
    and that a re-run finishes, and with --json the same as a document on stdout."""
    work = _workdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    with connected(url, sandbox, bundle) as (_engine, sessions):
        if stream == "orders":
            _finish(_omsflow(work, url, "sync", "catalog", "--json"))
        proc = _omsflow(work, url, "sync", stream, "--json")
        sandbox.faults.update({"latency_ms": 300})
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                with sessions() as s:
                    if s.scalar(select(SyncCursorRow.value).where(SyncCursorRow.stream == cursor)):
                        break
                time.sleep(0.01)
            assert proc.poll() is None, "the sync ended before a page was committed"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            sandbox.faults.update({"latency_ms": 12})
    assert proc.returncode == 130, err.decode()
    lines = [ln for ln in err.decode().splitlines() if ln.startswith("interrupted: ")]
    assert len(lines) == 1, err.decode()
    assert f" {noun}(s) read and saved; run the same command again to finish" in lines[0]
    assert "Traceback" not in err.decode()
    doc = json.loads(out)
    assert doc["interrupted"] is True
    assert doc["stream"] == stream
    assert doc[f"{noun}s_saved"] >= 1
    assert doc["message"] == lines[0]
