"""The store's request budget kept in the database (``engine/runtime/db/budget.py``): calls in
flight and calls per window hold across "processes" (each its own engine, pool and owner)
and their threads, on SQLite and PostgreSQL; a dead holder's slots come back."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.ratelimit import LocalBudget
from engine.runtime.db import session as dbsession
from engine.runtime.db.budget import SharedBudget, SharedBudgets, shared_budgets
from engine.runtime.db.tables import ConcurrencySlotRow

STORE = "http://shop.test/api"


@pytest.fixture
def engines(db_url: str) -> Iterator[list[Engine]]:
    """Two engines on one upgraded database: two worker processes' connection pools."""
    first = dbsession.make_engine(db_url)
    dbsession.upgrade(first)
    second = dbsession.make_engine(db_url)
    try:
        yield [first, second]
    finally:
        first.dispose()
        second.dispose()


def _run(budgets: list[SharedBudget], threads: int, work: Callable[[SharedBudget], None]) -> None:
    with ThreadPoolExecutor(threads * len(budgets)) as pool:
        futures = [pool.submit(work, b) for b in budgets for _ in range(threads)]
        for f in futures:
            f.result(timeout=60)


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_slots_hold_across_processes_and_threads(engines: list[Engine]) -> None:
    budgets = [
        SharedBudgets(e, poll_seconds=0.005, hold_seconds=0.2).budget(STORE, 3, None)
        for e in engines
    ]
    lock = threading.Lock()
    in_flight = [0]
    seen: list[int] = []

    def work(budget: SharedBudget) -> None:
        for _ in range(8):
            with budget.slot():
                with lock:
                    in_flight[0] += 1
                    seen.append(in_flight[0])
                time.sleep(0.005)
                with lock:
                    in_flight[0] -= 1

    _run(budgets, 6, work)
    assert len(seen) == 2 * 6 * 8
    assert max(seen) == 3

    def held() -> int:
        with engines[0].connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(ConcurrencySlotRow)
                    .where(ConcurrencySlotRow.holder.is_not(None))
                )
                or 0
            )

    deadline = time.monotonic() + 5
    while held() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert held() == 0  # every slot went back once idle for linger_seconds
    # a process keeps a slot for its own next call: far fewer round trips than calls
    assert sum(b.db_round_trips["release"] for b in budgets) < len(seen) // 2


def test_rate_holds_in_every_window_across_processes(engines: list[Engine]) -> None:
    """10 calls per 0.5 s, 25 calls from 2 processes x 4 threads: never 11 in a window."""
    budgets = [SharedBudgets(e).budget(STORE, 4, (10, 0.5)) for e in engines]
    lock = threading.Lock()
    starts: list[float] = []

    def work(budget: SharedBudget) -> None:
        while True:
            with lock:
                if len(starts) >= 25:
                    return
            with budget.slot():
                budget.permit()
                with lock:
                    starts.append(time.monotonic())

    t0 = time.monotonic()
    _run(budgets, 4, work)
    assert len(starts) >= 25
    assert _max_in_window(starts, 0.5) <= 10
    assert time.monotonic() - t0 >= 1.0  # three windows were needed
    # permits came several to a round trip when several threads waited
    assert sum(b.db_round_trips["permits"] for b in budgets) < 2 * len(starts) + 10


def test_a_dead_workers_slots_come_back_after_their_lease(engines: list[Engine]) -> None:
    dead = SharedBudgets(engines[0], lease_seconds=0.4).budget(STORE, 2, None)
    alive = SharedBudgets(engines[1], poll_seconds=0.01).budget(STORE, 2, None)
    held = [dead.slot(), dead.slot()]
    for cm in held:
        cm.__enter__()  # the process is killed here: never released
    t0 = time.monotonic()
    with alive.slot():
        waited = time.monotonic() - t0
    assert waited >= 0.3


def test_slots_of_a_killed_process_on_this_host_come_back_at_once(
    engines: list[Engine],
) -> None:
    """A command killed mid-call (SIGKILL, OOM) leaves its slots leased for a minute; the
    next process on the same host sees their holder's pid is gone and takes them back."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    owner = f"{socket.gethostname()}:{gone.pid}:deadbeef"
    dead = SharedBudgets(engines[0], owner=owner, lease_seconds=60).budget(STORE, 2, None)
    alive = SharedBudgets(engines[1], poll_seconds=0.01).budget(STORE, 2, None)
    for cm in [dead.slot(), dead.slot()]:
        cm.__enter__()  # killed here: never released
    t0 = time.monotonic()
    with alive.slot():
        waited = time.monotonic() - t0
    assert waited < 5, waited  # not the 60 s lease


def test_clients_share_the_database_budget_or_keep_their_own(engines: list[Engine]) -> None:
    with PrestaShopClient("http://shop.test", "K" * 32, max_concurrency=2) as alone:
        assert isinstance(alone.budget, LocalBudget)
    source = shared_budgets(dbsession.session_factory(engines[0]))
    assert source is not None
    assert source is SharedBudgets.for_engine(engines[0])
    if engines[0].dialect.name == "sqlite":  # a file beside the database (one write lock each)
        assert str(source.engine.url.database).endswith("omsflow.db-budget")
    else:
        assert source.engine is engines[0]
    kw = {"budgets": source, "rate_limit": (5, 1)}
    with (
        PrestaShopClient("http://shop.test", "K" * 32, **kw) as a,  # type: ignore[arg-type]
        PrestaShopClient("http://shop.test/api/", "K" * 32, **kw) as b,  # type: ignore[arg-type]
    ):
        assert isinstance(a.budget, SharedBudget)
        assert a.budget is b.budget  # one store, one budget in this process
    assert shared_budgets(None) is None
    memory = dbsession.make_engine("sqlite://")
    assert shared_budgets(memory) is None  # one process only: the client's own budget
    memory.dispose()
