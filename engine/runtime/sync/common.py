"""What every sync run shares: cursors, the run history row, the item-rate bucket, the
store + adapter it talks to, and the shop's clock.

Cursors (``SyncCursorRow``) are written inside the same transaction as the page they
describe, so a run killed at any point resumes where its last committed page ended. A date
cursor is a store-local text (the shop's ``PS_TIMEZONE``), compared with store-local texts;
it comes from the store's own dates and clock, never from the OMS's. Every run first
re-reads ``PS_TIMEZONE`` (one request, ``refresh_shop_clock``), which also gives the store's
clock (its ``Date`` header) at the start of the run.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.channels.clock import ShopClock, clock_or_utc
from engine.runtime.channels.port import ChannelPort
from engine.runtime.channels.ratelimit import TokenBucket
from engine.runtime.db import stores
from engine.runtime.db.base import utcnow
from engine.runtime.db.repository import _dialect_insert
from engine.runtime.db.tables import SyncCursorRow, SyncRunRow

T = TypeVar("T")
log = logging.getLogger("omsflow.sync")


@dataclass
class SyncReport:
    """What one run did: ``counts`` by name (created, updated, skipped…), per stream."""

    store: str
    stream: str
    run_id: int
    counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0
    mode: str = ""

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "stream": self.stream,
            "mode": self.mode,
            "run_id": self.run_id,
            "counts": dict(sorted(self.counts.items())),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
        }


def ps_date(value: datetime, clock: ShopClock | None = None) -> str:
    """An instant (naive = UTC) as the store's local date text (``clock``: the shop's;
    default UTC), e.g. for a date filter."""
    return (clock or ShopClock()).to_local(value)


def parse_ps_date(text: str | None, clock: ShopClock | None = None) -> datetime | None:
    """A store date text (shop time) -> aware UTC datetime; the zero date -> None."""
    return (clock or ShopClock()).to_utc(text)


# --------------------------------------------------------------------------- cursors


def read_cursor(session: Session, store_id: int, stream: str) -> str | None:
    return session.scalar(
        select(SyncCursorRow.value).where(
            SyncCursorRow.store_id == store_id, SyncCursorRow.stream == stream
        )
    )


def write_cursor(session: Session, store_id: int, stream: str, value: str | None) -> None:
    """Upsert the cursor inside the caller's transaction (the page's)."""
    insert = _dialect_insert(session)
    now = utcnow()
    stmt = insert(SyncCursorRow).values(
        store_id=store_id, stream=stream, value=value, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[SyncCursorRow.store_id, SyncCursorRow.stream],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
    )
    session.execute(stmt)


# --------------------------------------------------------------------------- runs


def start_run(sessions: sessionmaker[Session], store_id: int, stream: str) -> int:
    with sessions.begin() as session:
        row = SyncRunRow(
            store_id=store_id, stream=stream, started_at=utcnow(), counts={}, status="running"
        )
        session.add(row)
        session.flush()
        return row.id


def save_run_counts(session: Session, run_id: int, counts: Mapping[str, int]) -> None:
    session.execute(update(SyncRunRow).where(SyncRunRow.id == run_id).values(counts=dict(counts)))


def finish_run(
    sessions: sessionmaker[Session],
    run_id: int,
    counts: Mapping[str, int],
    *,
    error: str | None = None,
) -> None:
    with sessions.begin() as session:
        session.execute(
            update(SyncRunRow)
            .where(SyncRunRow.id == run_id)
            .values(
                counts=dict(counts),
                finished_at=utcnow(),
                status="failed" if error else "ok",
                error=error,
            )
        )


# --------------------------------------------------------------------------- store access


@dataclass(frozen=True)
class StoreTarget:
    id: int
    name: str
    url: str
    key: Any
    state_ids: Mapping[str, int]
    facts: Mapping[str, Any] = field(default_factory=dict)
    channel: str = "prestashop"
    """The channel's name (``StoreRow.channel``): which factory opens it."""


def load_store(sessions: sessionmaker[Session], name: str | None) -> StoreTarget:
    with sessions() as session:
        rec = stores.get_store(session, name)
    return StoreTarget(
        rec.id, rec.name, rec.url, rec.key, dict(rec.state_ids), dict(rec.facts), rec.channel
    )


def make_adapter(
    store: StoreTarget, channel: Any, sessions: sessionmaker[Session] | None = None
) -> ChannelPort:
    """The store's channel, built by its factory (``channels.registry``); with
    ``sessions`` its request budget is the one every worker shares in that database
    (``db/budget.py``)."""
    from engine.runtime.channels.registry import open_channel
    from engine.runtime.db.budget import shared_budgets

    return open_channel(
        store.channel,
        store.url,
        store.key,
        channel,
        facts=store.facts or None,
        budgets=shared_budgets(sessions) if sessions is not None else None,
    )


@dataclass(frozen=True)
class ShopNow:
    """The shop's clock for one run, and the store's own time when the run started (a
    local text from its ``Date`` header; None when the store sent none)."""

    clock: ShopClock
    started: str | None

    def started_or(self, fallback: datetime) -> str:
        """``started``, or (a store that sends no ``Date``) ``fallback`` in shop time."""
        return self.started or self.clock.to_local(fallback)


def refresh_shop_clock(
    sessions: sessionmaker[Session], store: StoreTarget, adapter: ChannelPort, report: SyncReport
) -> ShopNow:
    """The channel's clock at the start of a run (``ChannelPort.read_clock``: PrestaShop
    re-reads ``PS_TIMEZONE``, and all its facts once for a store connected before facts
    were kept); facts it found new are saved, its notes counted (``facts_read``,
    ``timezone_changed``, ``timezone_unread``) and its warnings logged."""
    read = adapter.read_clock(store.facts or None)
    for warning in read.warnings:
        log.warning("store %s: %s", store.name, warning)
    if read.facts:
        with sessions.begin() as session:
            stores.update_facts(session, store.id, read.facts)
    for note in read.notes:
        report.add(note)
    clock = clock_or_utc(read.timezone)
    started = clock.to_local(read.server_time) if read.server_time else None
    return ShopNow(clock, started)


class ItemRate:
    """``catalog_rate``: at most ``items`` catalogue items per ``per_seconds`` (a token
    bucket whose burst is the whole allowance, so the default barely slows a big sync)."""

    def __init__(self, items: float | None, per_seconds: float | None) -> None:
        self._bucket = TokenBucket(items, per_seconds) if items and per_seconds else None

    def take(self, n: int) -> None:
        if self._bucket is None:
            return
        for _ in range(n):
            self._bucket.acquire()


YOUNG_THRESHOLD = 20_000
"""Allocations between two young-generation collections while a sync runs (CPython's
default: 700)."""

_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, ...] | None = None


@contextmanager
def first_ctrl_c(on_first: Callable[[], None]) -> Iterator[None]:
    """While inside, the first SIGINT calls ``on_first`` instead of raising, and Python's
    own Ctrl-C handler is back for the next one (which raises ``KeyboardInterrupt`` at
    once, as usual: a way out of a block that hangs). The handler found is put back on the
    way out. Only Python's own handler is taken over: where SIGINT is ignored (a background
    job of a script) or handled otherwise (``omsflow run``'s graceful stop), and outside the
    main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return

    def first(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        on_first()

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def ctrl_c_after_block() -> Iterator[None]:
    """Run the block with Ctrl-C held until it ends: a SIGINT inside is raised as
    ``KeyboardInterrupt`` when the block is done, so a page's commit and the count of what
    was saved happen together or not at all (Ctrl-C between them would report a committed
    page as unsaved). A second SIGINT inside raises at once (``first_ctrl_c``, which also
    says where nothing is held)."""
    held: list[bool] = []  # (no lock taken inside a signal handler)
    with first_ctrl_c(lambda: held.append(True)):
        yield
    if held:
        raise KeyboardInterrupt


@contextmanager
def fewer_collections(threshold: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Run the block with CPython's cyclic collector started less often: a page of store
    records is tens of thousands of objects that live a page long, so at the default
    threshold each page is scanned several times over and the run's growing caches push
    full collections (a fifth of a backfill's CPU). Reference counting still frees all but
    cycles; cycles wait for a later collection. Nested and concurrent users share one
    setting: the first sets it, the last puts back what it found."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            if 0 < _gc_saved[0] < threshold:  # (0: automatic collection is off)
                gc.set_threshold(threshold, *_gc_saved[1:])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
                _gc_saved = None


@contextmanager
def recorded_run(
    sessions: sessionmaker[Session],
    store: Any,
    stream: str,
    channel: Any,
    adapter: ChannelPort | None = None,
) -> Iterator[tuple[SyncReport, ChannelPort]]:
    """One sync run's bookkeeping: the adapter (built from the store unless given, and then
    closed), a ``SyncRunRow``, and the report's requests and seconds, written however the
    run ends (a failure is recorded with its error, then re-raised)."""
    own = adapter is None
    adapter = adapter or make_adapter(store, channel, sessions)
    run_id = start_run(sessions, store.id, stream)
    report = SyncReport(store=store.name, stream=stream, run_id=run_id)
    started = time.monotonic()
    before = adapter.requests_sent
    try:
        yield report, adapter
    except BaseException as exc:
        report.requests = adapter.requests_sent - before
        finish_run(sessions, run_id, report.counts, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    else:
        report.requests = adapter.requests_sent - before
        report.seconds = time.monotonic() - started
        report.counts["requests"] = report.requests
        finish_run(sessions, run_id, report.counts)
    finally:
        if own:
            adapter.close()
