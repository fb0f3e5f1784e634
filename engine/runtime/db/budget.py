"""One store, one budget, however many workers: a store's ``max_concurrency`` and
``rate_limit`` kept in the database every ``omsflow run`` process of a deployment shares.

- **Calls in flight** — ``concurrency_slots`` holds ``max_concurrency`` rows per store; a
  process leases a free one (``holder`` + ``expires_at``) for the call, so at most that many
  calls are in flight across every process and thread. A killed worker's slots come back when
  their lease expires. To keep the database out of the hot path a process keeps a slot for
  its own next call (idle up to ``linger_seconds``, 50 ms; leased up to ``hold_seconds``,
  2 s), then hands it back so other processes get their turn.
- **Calls per second** — ``rate_budgets`` holds one row per store with the start times of its
  last ``requests`` calls (a sliding log). A call may start when fewer than ``requests`` calls
  started in the last ``per + guard_seconds``; one round trip grants as many permits as this
  process has calls waiting. So no window of ``per`` seconds ever sees more than ``requests``
  calls start, whatever the number of workers. ``guard_seconds`` (0.2 s) covers the time from
  a grant to the call reaching the store: a permit is dropped, never used, when more than
  ``late_seconds`` (0.1 s) passed since its round trip began, and the rest is the way to the
  store. The price: a saturated store gets ``requests`` calls per ``per + 0.2 s`` (20 per
  second -> 16.7/s), never more than ``requests`` in any ``per``.

Every claim is its own short transaction on its own pooled connection, never the caller's:
``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite (``db/session.py``).
Times are the database's clock on PostgreSQL (workers on several machines agree) and this
machine's on SQLite (one machine by nature).

On SQLite the two tables live in a file beside the database (``omsflow.db-budget``, like its
``-wal``): SQLite has one write lock per file, and a catalogue sync reads its next page from
the store while it holds a write transaction, so a budget inside the same file would queue
every call behind those writes, and a sync would wait on itself. An in-memory SQLite
database is one process: its clients keep their own budget.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateTable

from engine.errors import ChannelUnavailable

from . import schema
from .tables import ConcurrencySlotRow, RateBudgetRow

log = logging.getLogger("omsflow.budget")

_PG_NOW = func.date_part("epoch", func.clock_timestamp())


def _is_pg(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _local_holder_is_dead(holder: str, host: str) -> bool:
    """A slot holder (``host:pid:token``) of this host whose process no longer runs."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's: alive
        return False
    return False


def _insert(engine: Engine) -> Any:
    return postgresql.insert if _is_pg(engine) else sqlite.insert


class SharedBudgets:
    """The ``BudgetSource`` of one database: gives each store's ``SharedBudget`` (one per
    store and process, shared by every client built with it). ``for_engine`` keeps one per
    engine, so every adapter of a process meets the same local queues."""

    _by_engine: ClassVar[weakref.WeakKeyDictionary[Engine, SharedBudgets]] = (
        weakref.WeakKeyDictionary()
    )
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        engine: Engine,
        *,
        owner: str | None = None,
        hold_seconds: float = 2.0,
        linger_seconds: float = 0.05,
        lease_seconds: float = 60.0,
        poll_seconds: float = 0.02,
        guard_seconds: float = 0.2,
        late_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        weak: bool = False,
    ) -> None:
        # the registry (``for_engine``) maps an engine to its budgets: a budget kept in that
        # same engine refers to it weakly, or the pair would never be freed
        self._strong: Engine | None = None if weak else engine
        self._weak = weakref.ref(engine)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.hold_seconds = hold_seconds
        self.linger_seconds = linger_seconds
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.guard_seconds = guard_seconds
        self.late_seconds = late_seconds
        self.sleep = sleep
        self._budgets: dict[tuple[str, int, tuple[float, float] | None], SharedBudget] = {}
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        engine = self._strong or self._weak()
        if engine is None:
            raise ChannelUnavailable("prestashop: the store's request budget: database closed")
        return engine

    @classmethod
    def for_engine(cls, engine: Engine) -> SharedBudgets | None:
        """The budgets of ``engine``'s database, one per engine (None: an in-memory SQLite
        database, which no other process can share)."""
        with cls._registry_lock:
            found = cls._by_engine.get(engine)
            if found is None:
                budget_engine = _budget_engine(engine)
                if budget_engine is None:
                    return None
                found = cls(budget_engine, weak=budget_engine is engine)
                cls._by_engine[engine] = found
            return found

    def budget(
        self, store: str, max_concurrency: int, rate_limit: tuple[float, float] | None
    ) -> SharedBudget:
        key = (store, max(1, int(max_concurrency)), rate_limit)
        with self._lock:
            found = self._budgets.get(key)
            if found is None:
                found = self._budgets[key] = SharedBudget(self, *key)
            return found


class SharedBudget:
    """One store's ``RequestBudget`` in this process, backed by the database."""

    def __init__(
        self,
        source: SharedBudgets,
        store: str,
        max_concurrency: int,
        rate_limit: tuple[float, float] | None,
    ) -> None:
        if rate_limit is not None and (rate_limit[0] < 1 or rate_limit[1] <= 0):
            raise ValueError("rate limit needs requests >= 1 and per_seconds > 0")
        self.src = source
        self.store = store
        self._reclaimed_at = -1e9  # monotonic time of the last look for dead holders
        self.max_concurrency = max_concurrency
        self.requests = int(rate_limit[0]) if rate_limit else 0
        self.window = (float(rate_limit[1]) + source.guard_seconds) if rate_limit else 0.0
        self._cond = threading.Condition()
        # slots leased by this process and idle: (slot, leased at, idle since) (monotonic)
        self._idle: list[tuple[int, float, float]] = []
        self._reaper: threading.Thread | None = None
        self._slot_waiters = 0
        self._slot_poller = False
        self._rows_made = False
        # permits: monotonic times of grants not yet taken
        self._permits: list[float] = []
        self._permit_waiters = 0
        self._permit_fetcher = False
        # what this process did (tests, logs)
        self.db_round_trips: Counter[str] = Counter()
        """Transactions by kind (``slots``, ``release``, ``permits``)."""

    # ------------------------------------------------------------------ RequestBudget

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        slot, since = self._take_slot()
        try:
            yield
        finally:
            self._give_slot(slot, since)

    def permit(self) -> None:
        if not self.requests:
            return
        cond = self._cond
        with cond:
            self._permit_waiters += 1
        try:
            while True:
                with cond:
                    now = time.monotonic()
                    while self._permits:
                        granted = self._permits.pop(0)
                        if now - granted <= self.src.late_seconds:
                            return
                        self.db_round_trips["late_permits"] += 1  # dropped: too old to use
                    if self._permit_fetcher:
                        cond.wait(0.5)
                        continue
                    self._permit_fetcher = True
                    want = self._permit_waiters
                granted_n, began = 0, time.monotonic()
                try:
                    while True:
                        began = time.monotonic()  # the grants are no older than this
                        granted_n, wait = self._claim_permits(min(want, self.requests))
                        if granted_n:
                            break
                        self.src.sleep(max(0.001, min(wait, self.window)))
                        with cond:
                            want = self._permit_waiters
                finally:
                    with cond:
                        self._permit_fetcher = False
                        self._permits.extend([began] * granted_n)
                        cond.notify_all()
        finally:
            with cond:
                self._permit_waiters -= 1

    # ------------------------------------------------------------------ slots (local)

    def _take_slot(self) -> tuple[int, float]:
        cond = self._cond
        with cond:
            self._slot_waiters += 1
        try:
            while True:
                with cond:
                    now = time.monotonic()
                    for i in range(len(self._idle) - 1, -1, -1):
                        slot, since, _ = self._idle[i]
                        if now - since < self.src.hold_seconds:
                            del self._idle[i]
                            return slot, since
                    if self._slot_poller:
                        cond.wait(self.src.poll_seconds * 5)
                        continue
                    self._slot_poller = True
                    want = self._slot_waiters
                got: list[int] = []
                try:
                    got = self._claim_slots(want)
                finally:
                    with cond:
                        self._slot_poller = False
                        stamp = time.monotonic()
                        self._idle.extend((s, stamp, stamp) for s in got)
                        if got:
                            self._start_reaper()
                        cond.notify_all()
                if not got and self._reclaim_dead():
                    continue  # a dead process's slots came back: claim again at once
                if not got:
                    # every slot is busy: look again soon (jittered, so the processes
                    # waiting for this store take turns)
                    self.src.sleep(self.src.poll_seconds * random.uniform(0.5, 1.5))
        finally:
            with cond:
                self._slot_waiters -= 1

    def _give_slot(self, slot: int, since: float) -> None:
        now = time.monotonic()
        with self._cond:
            if now - since < self.src.hold_seconds:
                # kept for this process's next call; the reaper hands it back when no call
                # took it within ``linger_seconds``
                self._idle.append((slot, since, now))
                self._start_reaper()
                self._cond.notify()
                return
        self._release_slots([slot])

    def _start_reaper(self) -> None:
        """(Under the lock.) Run the thread that hands idle slots back, unless it runs."""
        if self._reaper is None:
            self._reaper = threading.Thread(
                target=self._reap, name=f"omsflow-budget-slots-{id(self):x}", daemon=True
            )
            self._reaper.start()

    def _reap(self) -> None:
        """Hand back the slots idle for ``linger_seconds`` (with no call of this process
        waiting) or leased for ``hold_seconds``, until this process holds none idle."""
        linger, hold = self.src.linger_seconds, self.src.hold_seconds
        while True:
            time.sleep(linger / 2)
            with self._cond:
                now = time.monotonic()
                waiting = self._slot_waiters > 0
                out = [
                    e
                    for e in self._idle
                    if now - e[1] >= hold or (not waiting and now - e[2] >= linger)
                ]
                if out:
                    self._idle = [e for e in self._idle if e not in out]
                if not self._idle and not out:
                    self._reaper = None
                    return
            if out:
                try:
                    self._release_slots([e[0] for e in out])
                except ChannelUnavailable as exc:
                    log.warning("slots not handed back (their lease will expire): %s", exc)

    # ------------------------------------------------------------------ the database

    @contextlib.contextmanager
    def _tx(self, kind: str) -> Iterator[Connection]:
        self.db_round_trips[kind] += 1
        try:
            with self.src.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise ChannelUnavailable(
                f"prestashop: the store's request budget could not be read from the database "
                f"({type(exc).__name__}); the call was not sent",
            ) from exc

    def _now(self) -> Any:
        """Now, in epoch seconds: the server's clock on PostgreSQL (an SQL expression, so
        workers on several machines agree), this machine's on SQLite."""
        return _PG_NOW if _is_pg(self.src.engine) else time.time()

    def _claim_slots(self, want: int) -> list[int]:
        """Lease up to ``want`` free (or expired) slots of the store in one statement; []
        when none is."""
        engine = self.src.engine
        t = ConcurrencySlotRow
        with self._tx("slots") as conn:
            if not self._rows_made:
                conn.execute(
                    _insert(engine)(t)
                    .values(
                        [
                            {"store": self.store, "slot": i, "holder": None, "expires_at": None}
                            for i in range(self.max_concurrency)
                        ]
                    )
                    .on_conflict_do_nothing()
                )
            now = self._now()
            free = or_(t.holder.is_(None), t.expires_at < now)
            candidates = (
                select(t.slot)
                .where(t.store == self.store, t.slot < self.max_concurrency, free)
                .order_by(t.slot)
                .limit(max(1, want))
            )
            if _is_pg(engine):
                candidates = candidates.with_for_update(skip_locked=True)
            got = list(
                conn.scalars(
                    update(t)
                    .where(t.store == self.store, t.slot.in_(candidates.scalar_subquery()), free)
                    .values(holder=self.src.owner, expires_at=now + self.src.lease_seconds)
                    .returning(t.slot)
                )
            )
        self._rows_made = True
        return got

    def _reclaim_dead(self) -> bool:
        """Free the slots held by processes of this host that are gone (a worker or a
        command killed mid-call), instead of waiting out their lease; at most once a second.
        True when any came back. Holders on other hosts wait for their lease."""
        now = time.monotonic()
        if now - self._reclaimed_at < 1.0:
            return False
        self._reclaimed_at = now
        t = ConcurrencySlotRow
        host = socket.gethostname()
        with self._tx("reclaim") as conn:
            holders = set(
                conn.scalars(select(t.holder).where(t.store == self.store, t.holder.is_not(None)))
            )
            dead = [h for h in holders if h and _local_holder_is_dead(h, host)]
            if not dead:
                return False
            conn.execute(
                update(t)
                .where(t.store == self.store, t.holder.in_(dead))
                .values(holder=None, expires_at=None)
            )
        log.info("store %s: slots of %d dead process(es) handed back", self.store, len(dead))
        return True

    def _release_slots(self, slots: list[int]) -> None:
        t = ConcurrencySlotRow
        with self._tx("release") as conn:
            conn.execute(
                update(t)
                .where(t.store == self.store, t.slot.in_(slots), t.holder == self.src.owner)
                .values(holder=None, expires_at=None)
            )

    def _claim_permits(self, want: int) -> tuple[int, float]:
        """Grant up to ``want`` call starts now: (granted, 0.0), or (0, seconds until the
        oldest start of the window leaves it)."""
        engine = self.src.engine
        t = RateBudgetRow
        with self._tx("permits") as conn:
            query = select(t.starts, self._now()).where(t.store == self.store)
            if _is_pg(engine):
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                conn.execute(
                    _insert(engine)(t).values(store=self.store, starts="").on_conflict_do_nothing()
                )
                row = conn.execute(query).one()
            text, now = row[0], float(row[1])
            recent = sorted(s for s in _starts(text) if s > now - self.window)
            free = self.requests - len(recent)
            if free <= 0:
                return 0, recent[len(recent) - self.requests] + self.window - now
            granted = min(max(1, want), free)
            recent.extend([now] * granted)
            conn.execute(
                update(t)
                .where(t.store == self.store)
                .values(starts=" ".join(f"{s:.4f}" for s in recent[-self.requests :]))
            )
        return granted, 0.0


def _starts(text: str) -> list[float]:
    return [float(s) for s in text.split()]


def _budget_engine(engine: Engine) -> Engine | None:
    """Where the budget rows live: the database itself (PostgreSQL), or the SQLite file's
    ``-budget`` sidecar (see the module docstring), its tables made on first use."""
    if _is_pg(engine):
        return engine
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    from . import session as dbsession

    side = dbsession.make_engine(str(engine.url.set(database=f"{database}-budget")))
    with side.begin() as conn:
        for table in (schema.RATE_BUDGETS, schema.CONCURRENCY_SLOTS):
            conn.execute(CreateTable(table, if_not_exists=True))
    return side


def shared_budgets(bind: Any) -> SharedBudgets | None:
    """The ``SharedBudgets`` of a ``sessionmaker``'s or an ``Engine``'s database (None when
    there is none: the client then keeps its budget in this process)."""
    engine = bind
    kw = getattr(bind, "kw", None)
    if isinstance(kw, dict):
        engine = kw.get("bind")
    return SharedBudgets.for_engine(engine) if isinstance(engine, Engine) else None
