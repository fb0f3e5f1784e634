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

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import (
    ChannelAuthFailed,
    ChannelNotFound,
    ChannelPermissionMissing,
    ChannelRejected,
)
from engine.runtime.channels.prestashop.ratelimit import TokenBucket
from engine.runtime.channels.prestashop.shop import ShopClock, ShopFacts, clock_for
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


def load_store(sessions: sessionmaker[Session], name: str | None) -> StoreTarget:
    with sessions() as session:
        rec = stores.get_store(session, name)
    return StoreTarget(rec.id, rec.name, rec.url, rec.key, dict(rec.state_ids), dict(rec.facts))


def make_adapter(store: StoreTarget, channel: Any) -> Any:
    from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter

    return PrestaShopAdapter.from_channel(store.url, store.key, channel, facts=store.facts or None)


@dataclass(frozen=True)
class ShopNow:
    """The shop's clock for one run, and the store's own time when the run started (a
    local text from its ``Date`` header; None when the store sent none)."""

    clock: ShopClock
    started: str | None

    def started_or(self, fallback: datetime) -> str:
        """``started``, or (a store that sends no ``Date``) ``fallback`` in shop time."""
        return self.started or self.clock.to_local(fallback)


_UNREADABLE = (ChannelAuthFailed, ChannelPermissionMissing, ChannelNotFound, ChannelRejected)


def refresh_shop_clock(
    sessions: sessionmaker[Session], store: StoreTarget, adapter: Any, report: SyncReport
) -> ShopNow:
    """Re-read ``PS_TIMEZONE`` (one request; a store connected before facts were kept gets
    all of them once), save it when it changed (``report`` counts ``timezone_changed``) and
    give the adapter the store's facts. A key that may not read ``configurations`` keeps the
    saved zone (counted as ``timezone_unread``)."""
    saved = ShopFacts.from_json(store.facts) if store.facts else None
    try:
        conf = adapter.read_configuration(["PS_TIMEZONE"])
        if saved is None or not saved.languages:
            saved, warnings = adapter.shop_facts()
            for warning in warnings:
                log.warning("%s", warning)
            with sessions.begin() as session:
                stores.update_facts(session, store.id, saved.to_json())
            report.add("facts_read")
    except _UNREADABLE as exc:
        kept = saved.timezone if saved else "UTC"
        log.warning("store %s: PS_TIMEZONE not read (%s); keeping %s", store.name, exc, kept)
        report.add("timezone_unread")
        if saved is not None:
            adapter.facts = saved
        return ShopNow(saved.clock if saved else ShopClock(), None)
    clock, warning = clock_for(conf.values.get("PS_TIMEZONE"))
    if warning:
        log.warning("%s", warning)
    if clock.name != saved.timezone:
        with sessions.begin() as session:
            stores.update_facts(session, store.id, {"timezone": clock.name})
        report.add("timezone_changed")
        saved = ShopFacts.from_json({**saved.to_json(), "timezone": clock.name})
    adapter.facts = saved
    started = clock.to_local(conf.server_time) if conf.server_time else None
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


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` while a thread already reads the next ``depth`` of them (the store
    answers the next page while this one is written). Errors surface in order; leaving the
    loop early stops the reader after the item it is on."""
    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((False, exc))

    thread = threading.Thread(target=run, name="omsflow-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = q.get()
            if not ok:
                raise value
            if value is done:
                return
            yield value
    finally:
        stop.set()


@contextmanager
def recorded_run(
    sessions: sessionmaker[Session], store: Any, stream: str, channel: Any, adapter: Any = None
) -> Iterator[tuple[SyncReport, Any]]:
    """One sync run's bookkeeping: the adapter (built from the store unless given, and then
    closed), a ``SyncRunRow``, and the report's requests and seconds, written however the
    run ends (a failure is recorded with its error, then re-raised)."""
    own = adapter is None
    adapter = adapter or make_adapter(store, channel)
    run_id = start_run(sessions, store.id, stream)
    report = SyncReport(store=store.name, stream=stream, run_id=run_id)
    started = time.monotonic()
    before = adapter.client.total_requests
    try:
        yield report, adapter
    except BaseException as exc:
        report.requests = adapter.client.total_requests - before
        finish_run(sessions, run_id, report.counts, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    else:
        report.requests = adapter.client.total_requests - before
        report.seconds = time.monotonic() - started
        report.counts["requests"] = report.requests
        finish_run(sessions, run_id, report.counts)
    finally:
        if own:
            adapter.close()
