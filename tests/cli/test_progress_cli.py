"""Progress and resumability (issue 13, item 6), as an operator meets them: ``omsflow`` run
as a real subprocess against the sandbox store over loopback HTTP and a SQLite file.

* under a pseudo-terminal the long commands draw a rich bar (on stderr) and end with their
  summary; without a terminal stdout holds the summary only and stderr nothing;
* Ctrl-C (SIGINT) part-way through ``products import`` says how many products are in the
  store, and running the same import again ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select as sql_select

from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.tables import AttributeValueRow, InventoryRow, OutboxRow, ProductRow
from engine.runtime.listing.sample import sample_drafts
from engine.runtime.listing.workbook import write_workbook
from sandbox.server import SandboxServer, start_sandbox

REPO = Path(__file__).resolve().parents[2]
BAR = "━"  # rich's bar character


def _env(db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSFLOW_")}
    return {
        **env,
        "OMSFLOW_SECRET_KEY": os.environ["OMSFLOW_SECRET_KEY"],
        "OMSFLOW_DATABASE_URL": db,
        "PYTHONPATH": str(REPO),
        "TERM": "xterm-256color",
        "COLUMNS": "120",
    }


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-c", "import cli; cli.main()", *args]


def _prepare(tmp: Path, sandbox: SandboxServer, name: str = "oms") -> str:
    url = f"sqlite:///{tmp / f'{name}.db'}"
    engine = dbsession.make_engine(url)
    dbsession.upgrade(engine)
    with dbsession.session_factory(engine).begin() as s:
        stores.save_store(s, "main", sandbox.url, sandbox.key, {})
    engine.dispose()
    return url


def run_piped(cwd: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(*args), cwd=cwd, env=_env(db), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def run_in_pty(cwd: Path, db: str, *args: str) -> tuple[int, str]:
    """Run under a pseudo-terminal (stdin, stdout and stderr all on it, 40x120); returns
    the exit code and everything the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        _argv(*args), cwd=cwd, env=_env(db), stdin=slave, stdout=slave, stderr=slave,
        close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:  # EIO: the child closed the terminal
                    if exc.errno != errno.EIO:
                        raise
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, b"".join(chunks).decode("utf-8", "replace")


# --------------------------------------------------------------------------- progress


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=0, orders=0, latency_ms=2) as sb:
        yield sb


def _workbook(path: Path, variation: int, single: int) -> Path:
    drafts = [
        replace(d, image=None)
        for d in sample_drafts(
            variation_products=variation, variants_each=2, single_products=single
        )
    ]
    write_workbook(path, drafts)
    return path


@pytest.mark.slow
def test_import_and_sync_stock_draw_progress_on_a_terminal_and_nothing_without_one(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    db = _prepare(tmp_path, sandbox)
    book = _workbook(tmp_path / "in.xlsx", 10, 20)

    # no terminal: stdout is the summary, stderr is empty (no bar, no escape codes)
    piped = run_piped(tmp_path, db, "products", "import", str(book))
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert piped.stdout.splitlines() == [
        piped.stdout.splitlines()[0],
        f"errors column written to {tmp_path / 'in.errors.xlsx'}",
    ]
    assert piped.stdout.startswith("40 rows, 30 products: created 30, updated 0, unchanged 0")
    assert BAR not in piped.stdout
    assert "\x1b[" not in piped.stdout

    # a terminal: the bar, its count, then the same summary
    code, screen = run_in_pty(tmp_path, db, "products", "import", str(book))
    assert code == 0, screen
    assert BAR in screen
    assert "products" in screen
    assert "30/30" in screen
    assert "40 rows, 30 products: created 0, updated 0, unchanged 30" in screen

    code, screen = run_in_pty(tmp_path, db, "sync", "stock")
    assert code == 0, screen
    assert "stock pushes" in screen
    assert BAR in screen
    pushed = run_piped(tmp_path, db, "sync", "stock")
    assert pushed.returncode == 0, pushed.stderr
    assert (pushed.stderr, len(pushed.stdout.splitlines())) == ("", 1)
    assert re.match(r"(\d+) SKU\(s\) queued; delivered \1, retrying 0, dead 0", pushed.stdout)

    # --json keeps stdout one JSON document, even on a terminal: no bar at all
    code, screen = run_in_pty(tmp_path, db, "products", "import", str(book), "--json")
    assert code == 0, screen
    assert BAR not in screen
    assert json.loads(screen)["counts"]["unchanged"] == 30


# --------------------------------------------------------------------------- Ctrl-C


def _store_state(sandbox: SandboxServer) -> dict[str, Any]:
    store = sandbox.store
    out: dict[str, Any] = {}
    for p in list(store.records("products")):
        pid = int(p["id"])
        combos = []
        for cid in store.combinations_of(pid):
            c = store.get("combinations", cid)
            assert c is not None
            combos.append((c["reference"], c["price"], store.stock_of(pid, cid)))
        assert p["reference"] not in out, f"{p['reference']} twice in the store"
        out[p["reference"]] = (
            json.dumps(p["name"], sort_keys=True),
            p["price"],
            p["active"],
            store.stock_of(pid),
            sorted(combos),
        )
    return out


def _oms_state(db: str) -> dict[str, Any]:
    engine = dbsession.make_engine(db)
    try:
        with dbsession.session_factory(engine)() as s:
            values = {v.id: v.name for v in s.scalars(sql_select(AttributeValueRow))}
            rows = list(s.scalars(sql_select(ProductRow)))
            skus = {r.id: r.sku for r in rows}
            products = {
                r.sku: (
                    r.name,
                    str(r.price),
                    r.active,
                    r.deleted,
                    skus.get(r.parent_id or 0),
                    sorted(values[int(v)] for v in r.attribute_value_ids or ()),
                    bool((r.store_ids or {}).get("1", {}).get("product_id")),
                )
                for r in rows
            }
            stock = {i.sku: (i.on_hand, i.reserved) for i in s.scalars(sql_select(InventoryRow))}
    finally:
        engine.dispose()
    return {"products": products, "stock": stock}


@pytest.fixture(scope="module")
def straight(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The workbook, and the store and OMS after importing it in one uninterrupted run."""
    tmp = tmp_path_factory.mktemp("straight")
    book = _workbook(tmp / "big.xlsx", 40, TOTAL - 40)
    with start_sandbox(products=0, orders=0) as reference:
        db = _prepare(tmp, reference)
        done = run_piped(tmp, db, "products", "import", str(book))
        assert done.returncode == 0, done.stderr
        return book, _store_state(reference), _oms_state(db)


TOTAL = 100


def _start_import(tmp: Path, db: str, book: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _argv("products", "import", str(book)), cwd=tmp, env=_env(db),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_products(sandbox: SandboxServer, proc: subprocess.Popen[str], n: int) -> None:
    deadline = time.monotonic() + 120
    while len(sandbox.store.tables["products"]) < n and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)


@pytest.mark.slow
def test_ctrl_c_says_what_was_written_and_the_same_import_finishes_it(
    tmp_path: Path, straight: tuple[Path, dict[str, Any], dict[str, Any]]
) -> None:
    book, want_store, want_oms = straight
    assert len(want_store) == TOTAL
    with start_sandbox(products=0, orders=0, latency_ms=25) as sandbox:
        db = _prepare(tmp_path, sandbox)
        proc = _start_import(tmp_path, db, book)
        _wait_for_products(sandbox, proc, 30)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (out, err)
        [line] = err.strip().splitlines()
        assert line.startswith("interrupted: ")
        assert line.endswith("run the same import again to finish it — it is idempotent by SKU")
        written = int(line.split()[1])
        assert f"interrupted: {written} of {TOTAL} products written to the store" in line
        assert 30 <= written < TOTAL
        # what it says is what happened: exactly those are in the store, and bound
        in_store = _store_state(sandbox)
        assert len(in_store) == written
        bound = {k for k, v in _oms_state(db)["products"].items() if v[4] is None and v[6]}
        assert bound == set(in_store)

        sandbox.faults.latency_ms = 0
        again = run_piped(tmp_path, db, "products", "import", str(book))
        assert again.returncode == 0, again.stderr
        assert f"created {TOTAL - written}, updated 0, unchanged {written}" in again.stdout
        assert _store_state(sandbox) == want_store
        assert _oms_state(db) == want_oms


@pytest.mark.slow
def test_after_a_hard_kill_the_same_import_adopts_what_the_store_holds_and_finishes(
    tmp_path: Path, straight: tuple[Path, dict[str, Any], dict[str, Any]]
) -> None:
    """SIGKILL leaves products in the store that the OMS never bound, some of them half
    written (a product without all its combinations or stock): the re-run finds them by
    SKU, completes and binds them, and ends where the uninterrupted run ended."""
    book, want_store, want_oms = straight
    with start_sandbox(products=0, orders=0, latency_ms=25) as sandbox:
        db = _prepare(tmp_path, sandbox)
        proc = _start_import(tmp_path, db, book)
        _wait_for_products(sandbox, proc, 50)
        proc.kill()
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        in_store = _store_state(sandbox)
        bound = {k for k, v in _oms_state(db)["products"].items() if v[4] is None and v[6]}
        assert len(bound) < len(in_store) < TOTAL  # some written but never bound

        sandbox.faults.latency_ms = 0
        again = run_piped(tmp_path, db, "products", "import", str(book))
        assert again.returncode == 0, again.stderr
        assert _store_state(sandbox) == want_store
        assert _oms_state(db) == want_oms


@pytest.mark.slow
def test_ctrl_c_in_sync_stock_settles_what_is_in_flight_and_a_rerun_pushes_the_rest(
    tmp_path: Path,
) -> None:
    from engine.runtime.inventory import levels, set_on_hand, stock_pushes_waiting
    from tests.runtime.outbox.support import T0, put_count, seed_catalogue, seed_store

    with start_sandbox(products=60, orders=0, seed=3) as sandbox:
        db = f"sqlite:///{tmp_path / 'oms.db'}"
        engine = dbsession.make_engine(db)
        dbsession.upgrade(engine)
        sessions = dbsession.session_factory(engine)
        skus = seed_catalogue(sessions, sandbox, seed_store(sessions, sandbox))
        units = {sku: ids for sku, ids in skus.items() if sku}
        with sessions.begin() as s:  # the OMS counted again: every unit differs from the store
            for sku, (pid, cid) in units.items():
                set_on_hand(s, sku, sandbox.store.stock_of(pid, cid) + 7, at=T0, push=False)
        sandbox.faults.latency_ms = 120
        proc = subprocess.Popen(
            _argv("sync", "stock"), cwd=tmp_path, env=_env(db),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while put_count(sandbox) < 8 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err)
        lines = err.strip().splitlines()
        assert lines[0] == "stopping: finishing the pushes in flight (Ctrl-C again to quit now)"
        match = re.fullmatch(
            r"interrupted: (\d+) of (\d+) SKU\(s\) pushed to the store; the other (\d+) stay "
            r"queued: 'omsflow run' \(or 'omsflow outbox run'\) delivers them, or run "
            r"'omsflow sync stock' again",
            lines[-1],
        )
        assert match, lines
        pushed, queued, left = map(int, match.groups())
        assert queued == len(units)
        assert pushed + left == queued
        assert 0 < left < queued  # stopped part-way, not at the end
        with sessions() as s:
            assert stock_pushes_waiting(s) == left  # what it says is what is queued
            states = {r.state for r in s.scalars(sql_select(OutboxRow))}
        assert "leased" not in states  # nothing left holding a SKU's lane

        sandbox.faults.latency_ms = 0
        again = run_piped(tmp_path, db, "sync", "stock")
        assert again.returncode == 0, again.stderr
        with sessions() as s:
            oms = levels(s, units)
            assert stock_pushes_waiting(s) == 0
        engine.dispose()
        store = {sku: sandbox.store.stock_of(pid, cid) for sku, (pid, cid) in units.items()}
        assert store == {sku: level.pushable for sku, level in oms.items()}
