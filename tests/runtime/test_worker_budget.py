"""One store, one budget, however many workers: three real ``omsflow run`` processes push
stock to one sandbox store whose channel spec says ``max_concurrency: 4`` and
``rate_limit: 20 per 1s``. The store's own counters (``/__sandbox/stats``: the most requests
in flight at once, the most that arrived in any 1 s window) never exceed either, and every
push is delivered."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from engine.runtime import inventory
from engine.runtime.channels.prestashop.connect import probe
from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.tables import OutboxRow, ProductRow
from engine.runtime.settings import Secret, Settings
from engine.runtime.specs import load_bundle
from engine.runtime.sync import run_initial_sync
from sandbox.server import SandboxServer, start_sandbox

REPO = Path(__file__).resolve().parents[2]
MAX_CONCURRENCY = 4
RATE = 20
PUSHES = 150
RUN = ("run", "--no-schedule", "--workers", "2")
WAVE = 10
LATENCY_MS = 150.0
"""Four slots at 150 ms could carry ~26 calls/s: the rate binds, and bursts fill the slots."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'omsflow.db'}"
    from tests.conftest import fresh_pg_database

    return fresh_pg_database(request.getfixturevalue("pg_server_url"))


@pytest.fixture
def shop() -> Iterator[SandboxServer]:
    with start_sandbox(products=2 * PUSHES, orders=0, seed=5) as server:
        yield server


def _channel_copy(tmp: Path) -> None:
    spec = (REPO / "channels" / "prestashop.yaml").read_text()
    for old, new in (
        ("  max_concurrency: 8\n", f"  max_concurrency: {MAX_CONCURRENCY}\n"),
        ("    requests: 50\n    per: 1s\n", f"    requests: {RATE}\n    per: 1s\n"),
    ):
        assert old in spec
        spec = spec.replace(old, new)
    (tmp / "channels").mkdir()
    (tmp / "channels" / "prestashop.yaml").write_text(spec)


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def _count(factory: Any, *where: Any) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxRow).where(*where)) or 0)


@pytest.mark.slow
def test_three_workers_share_the_stores_concurrency_and_rate(
    tmp_path: Path, url: str, shop: SandboxServer
) -> None:
    bundle = load_bundle()
    engine, factory = dbsession.open_database(Settings(database_url=url))
    report = probe(shop.url, Secret(shop.key), bundle.channel)
    with factory.begin() as session:
        stores.save_store(session, "shop", shop.url, Secret(shop.key), report.state_ids)
    run_initial_sync(factory, bundle, "shop")
    with factory() as session:
        rows = list(session.scalars(select(ProductRow)))
    parents = {r.parent_id for r in rows if r.parent_id is not None}
    # products without variations: one stock PUT each
    skus = sorted(r.sku for r in rows if r.parent_id is None and r.id not in parents)
    assert len(skus) >= PUSHES
    _channel_copy(tmp_path)
    shop.faults.latency_ms = LATENCY_MS
    admin = httpx.Client(base_url=shop.url, auth=(shop.key, ""), timeout=10)
    assert admin.post("/__sandbox/stats/reset").json()["traffic"]["total"] == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSFLOW_")}
    env.update(
        OMSFLOW_SECRET_KEY=os.environ["OMSFLOW_SECRET_KEY"],  # the stores were sealed with it
        OMSFLOW_DATABASE_URL=url,
        OMSFLOW_LABEL_DIR=str(tmp_path / "labels"),
        PYTHONPATH=str(REPO),
    )
    logs = [(tmp_path / f"worker{i}.log").open("w") for i in range(3)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", *RUN],
            cwd=tmp_path,  # reads ./channels/prestashop.yaml: 4 in flight, 20 per second
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        for log in logs
    ]
    try:
        started = [tmp_path / f"worker{i}.log" for i in range(3)]
        assert _wait(lambda: all("worker started" in f.read_text() for f in started), 120)
        # the work arrives in waves, faster than 20/s: every worker leases some of it
        t0 = time.monotonic()
        for n in range(0, PUSHES, WAVE):
            with factory.begin() as session:  # one transaction a wave: a quick feed
                for i, sku in enumerate(skus[n : n + WAVE]):
                    inventory.set_on_hand(session, sku, 300 + n + i, at=datetime.now(UTC))
            time.sleep(WAVE / (2 * RATE))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if not _count(factory, OutboxRow.state.in_(("pending", "leased"))):
                break
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
        seconds = time.monotonic() - t0
        traffic = admin.get("/__sandbox/stats").json()["traffic"]
        first = (shop.state.traffic.first or t0) - t0  # same clock: the store is in-process
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(60) for p in procs]
        for log in logs:
            log.close()
        admin.close()
        shop.faults.latency_ms = 0.0
    per_worker = [
        sum(int(n) for n in re.findall(r"dispatcher stopped .*delivered=(\d+)", f.read_text()))
        for f in started
    ]
    print(
        f"\n3 workers, {PUSHES} stock pushes, spec {MAX_CONCURRENCY} in flight / {RATE} per s: "
        f"store saw max {traffic['max_in_flight']} in flight, max {traffic['max_per_window']} "
        f"in 1 s, {traffic['total']} requests in {traffic['seconds']} s "
        f"({traffic['mean_per_second']}/s); first request {first:.2f} s after the first "
        f"wave, all delivered after {seconds:.1f} s; delivered per worker {per_worker}"
    )
    tails = [(tmp_path / f"worker{i}.log").read_text()[-2000:] for i in range(3)]
    assert codes == [0, 0, 0], tails
    assert _count(factory, OutboxRow.state.in_(("pending", "leased"))) == 0
    assert _count(factory, OutboxRow.state == "dead") == 0
    assert traffic["max_in_flight"] <= MAX_CONCURRENCY
    assert traffic["max_per_window"] <= RATE
    # the budget was used, not merely left idle: the store was kept busy
    assert traffic["total"] >= PUSHES
    assert traffic["max_per_window"] >= RATE // 2
    assert traffic["max_in_flight"] >= 2
    assert sum(per_worker) == PUSHES
    assert sum(1 for n in per_worker if n) >= 2  # the budget was shared, not one worker's
    with factory() as session:
        levels = inventory.levels(session, skus[:PUSHES])
        store_id = stores.get_store(session, "shop").id
        rows = session.scalars(select(ProductRow).where(ProductRow.sku.in_(skus[:PUSHES])))
        bound = {row.sku: _product_id(row.store_ids, store_id) for row in rows}
    engine.dispose()
    assert len(bound) == PUSHES
    assert all(bound.values())
    wrong = {
        sku: (shop.store.stock_of(pid), levels[sku].pushable)
        for sku, pid in bound.items()
        if shop.store.stock_of(pid) != levels[sku].pushable
    }
    assert not wrong


def _product_id(store_ids: Any, store_id: int) -> int:
    ids = (store_ids or {}).get(str(store_id)) or (store_ids or {}).get("shop") or {}
    return int(ids.get("product_id", ids.get("product")) or 0)
