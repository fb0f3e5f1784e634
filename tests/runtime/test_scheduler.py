"""Schedules in the database: claimed once, restart neither repeats nor skips, leases expire.

Runs on SQLite and PostgreSQL (``db_url``). Time is passed in explicitly; no sleeps.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import scheduler, status
from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.tables import ScheduleRow
from engine.runtime.settings import Settings
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.worker import JobContext, Worker, WorkerOptions

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def factory(db_url: str) -> sessionmaker[Session]:
    engine, factory = dbsession.open_database(Settings(database_url=db_url))
    with factory.begin() as session:
        stores.save_store(session, "alpha", "http://127.0.0.1:1", "A" * 32, {})
        stores.save_store(session, "beta", "http://127.0.0.1:2", "B" * 32, {})
    yield factory
    engine.dispose()


def _ensure(factory: sessionmaker[Session], bundle: Bundle, now: datetime = T0) -> int:
    with factory.begin() as session:
        return scheduler.ensure_schedules(session, bundle.channel, now=now)


def _rows(factory: sessionmaker[Session]) -> dict[tuple[int, str], ScheduleRow]:
    with factory() as session:
        return {(r.store_id, r.job): r for r in session.scalars(select(ScheduleRow))}


def _claim_all(
    factory: sessionmaker[Session], bundle: Bundle, now: datetime
) -> list[scheduler.Claim]:
    out = []
    while (claim := scheduler.claim_due(factory, bundle.channel, now=now)) is not None:
        out.append(claim)
    return out


def test_intervals_come_from_the_channel_spec(bundle: Bundle) -> None:
    got = scheduler.intervals(bundle.channel)
    spec = bundle.channel.schedules
    assert got[scheduler.NEW_ORDERS] == spec.new_orders_seconds == 300
    assert got[scheduler.STATUS_CHANGES] == spec.status_changes_seconds == 1800
    assert got[scheduler.CATALOG] == spec.catalog_seconds


def test_every_store_gets_each_job_once(factory: sessionmaker[Session], bundle: Bundle) -> None:
    assert _ensure(factory, bundle) == 6
    assert _ensure(factory, bundle, T0 + timedelta(hours=1)) == 0
    rows = _rows(factory)
    assert {job for _, job in rows} == set(scheduler.JOBS)
    assert all(r.next_run_at == T0 and r.last_run_at is None for r in rows.values())


def test_a_due_job_is_claimed_once_then_not_until_its_next_slot(
    factory: sessionmaker[Session], bundle: Bundle
) -> None:
    _ensure(factory, bundle)
    claims = _claim_all(factory, bundle, T0)
    assert len(claims) == 6
    assert len({c.schedule_id for c in claims}) == 6
    assert scheduler.claim_due(factory, bundle.channel, now=T0 + timedelta(seconds=5)) is None
    for c in claims:
        assert scheduler.finish(factory, c, started_at=T0, now=T0 + timedelta(seconds=3))
    rows = _rows(factory)
    for c in claims:
        row = rows[(c.store_id, c.job)]
        assert row.last_run_at == T0
        assert row.next_run_at == T0 + timedelta(seconds=c.interval_seconds)
    # a "restart" 1 minute later: nothing is due, nothing repeats
    assert _claim_all(factory, bundle, T0 + timedelta(minutes=1)) == []
    # at 5 minutes exactly the two new_orders jobs are due
    due = _claim_all(factory, bundle, T0 + timedelta(minutes=5))
    assert sorted(c.job for c in due) == [scheduler.NEW_ORDERS] * 2


def test_downtime_runs_a_missed_job_once_and_keeps_the_grid(
    factory: sessionmaker[Session], bundle: Bundle
) -> None:
    _ensure(factory, bundle)
    for c in _claim_all(factory, bundle, T0):
        scheduler.finish(factory, c, started_at=T0, now=T0)
    back = T0 + timedelta(minutes=14)  # the worker was down for two new_orders slots
    due = _claim_all(factory, bundle, back)
    assert sorted(c.job for c in due) == [scheduler.NEW_ORDERS] * 2  # once each, not twice
    for c in due:
        assert c.planned_at == T0 + timedelta(minutes=5)
        scheduler.finish(factory, c, started_at=back, now=back + timedelta(seconds=2))
    rows = _rows(factory)
    for c in due:
        assert rows[(c.store_id, c.job)].next_run_at == T0 + timedelta(minutes=15)
    assert _claim_all(factory, bundle, T0 + timedelta(minutes=14, seconds=59)) == []


def test_release_makes_the_job_due_again_at_its_planned_time(
    factory: sessionmaker[Session], bundle: Bundle
) -> None:
    _ensure(factory, bundle)
    claim = scheduler.claim_due(factory, bundle.channel, now=T0)
    assert claim is not None
    assert scheduler.release(factory, claim)
    again = _claim_all(factory, bundle, T0)
    assert claim.schedule_id in {c.schedule_id for c in again}


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_settle(
    factory: sessionmaker[Session], bundle: Bundle
) -> None:
    _ensure(factory, bundle)
    first = scheduler.claim_due(factory, bundle.channel, now=T0, lease_seconds=60)
    assert first is not None
    others = _claim_all(factory, bundle, T0)
    for c in others:
        scheduler.finish(factory, c, started_at=T0, now=T0)
    assert scheduler.claim_due(factory, bundle.channel, now=T0 + timedelta(seconds=59)) is None
    second = scheduler.claim_due(factory, bundle.channel, now=T0 + timedelta(seconds=61))
    assert second is not None
    assert second.schedule_id == first.schedule_id
    assert not scheduler.finish(factory, first, started_at=T0, now=T0 + timedelta(seconds=62))
    assert scheduler.finish(factory, second, started_at=T0, now=T0 + timedelta(seconds=63))


@pytest.mark.slow
def test_concurrent_claimers_never_share_a_job(
    factory: sessionmaker[Session], bundle: Bundle
) -> None:
    _ensure(factory, bundle)
    won: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def claimer() -> None:
        barrier.wait()
        while (c := scheduler.claim_due(factory, bundle.channel, now=T0)) is not None:
            with lock:
                won.append(c.schedule_id)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(won) == sorted(set(won))
    assert len(won) == 6


@pytest.mark.slow
def test_worker_runs_due_jobs_and_a_failure_is_retried_not_counted(
    db_url: str, factory: sessionmaker[Session], bundle: Bundle
) -> None:
    calls: list[tuple[str, str]] = []

    def ok(ctx: JobContext) -> dict[str, int]:
        calls.append((ctx.store.name, ctx.job))
        return {"read": 1}

    def boom(ctx: JobContext) -> None:
        calls.append((ctx.store.name, ctx.job))
        raise RuntimeError("store down")

    worker = Worker(
        Settings(database_url=db_url),
        bundle,
        WorkerOptions(once=True, dispatch=False),
        jobs={scheduler.CATALOG: ok, scheduler.NEW_ORDERS: ok, scheduler.STATUS_CHANGES: boom},
        clock=lambda: T0,
    )
    assert worker.run(install_signals=False) == 0
    assert sorted(calls) == sorted((s, j) for s in ("alpha", "beta") for j in scheduler.JOBS)
    rows = _rows(factory)
    for (_, job), row in rows.items():
        if job == scheduler.STATUS_CHANGES:
            assert row.last_run_at is None
            assert row.next_run_at == T0 + timedelta(seconds=60)  # retried in a minute
        else:
            assert row.last_run_at == T0
            assert row.next_run_at > T0
    # a second worker started at the same instant repeats nothing
    calls.clear()
    again = Worker(
        Settings(database_url=db_url),
        bundle,
        WorkerOptions(once=True, dispatch=False),
        jobs=dict.fromkeys(scheduler.JOBS, ok),
        clock=lambda: T0,
    )
    assert again.run(install_signals=False) == 0
    assert calls == []
    with factory() as session:
        st = status.collect(session, now=T0 + timedelta(minutes=2))
    alpha = next(s for s in st.stores if s.name == "alpha")
    jobs = {j.job: j for j in alpha.jobs}
    assert jobs[scheduler.STATUS_CHANGES].lag_seconds == 60
    assert jobs[scheduler.NEW_ORDERS].lag_seconds == 0
    assert jobs[scheduler.NEW_ORDERS].last_run_at == T0
    assert st.to_json()["outbox"]["pending"] == 0
    assert any("status_changes" in line and "LAG" in line for line in status.render(st))


def test_a_worker_puts_back_the_signal_handlers_it_found(
    db_url: str, factory: sessionmaker[Session], bundle: Bundle
) -> None:
    """Run in a process that goes on (an embedding, a test), a stopped worker must not keep
    its SIGINT handler: it would set a stop flag nobody reads and swallow the next Ctrl-C."""
    import signal

    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    before = {s: signal.signal(s, mine) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker = Worker(
            Settings(database_url=db_url),
            bundle,
            WorkerOptions(once=True, dispatch=False),
            jobs={scheduler.CATALOG: lambda ctx: {"read": 0}},
            clock=lambda: T0,
        )
        assert worker.run() == 0  # (the jobs it does not know: left for their next interval)
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
