"""The ``omsflow run`` process: schedules, the outbox dispatcher and (``--serve``) the WMS
receiver, in one process, until SIGTERM/SIGINT.

Threads, all sharing one engine (connection pool) and one loaded spec bundle:

- **scheduler** — claims due jobs from the ``schedules`` table (``engine.runtime.scheduler``:
  compare-and-set UPDATE, so several processes never run one job twice) and runs them one at
  a time: catalogue delta, new orders, status changes, per store.
- **dispatchers** (``--workers N``, default 1) — N threads, each an outbox ``Dispatcher``
  with its own lease owner id. Delivery is HTTP-bound, so threads overlap their waits on the
  store (the GIL is released during socket IO); the one lease (``SqlOutboxRepository.lease``:
  by lane, advisory-locked on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) keeps them from
  delivering one row twice. More
  processes (several ``omsflow run`` on PostgreSQL) scale past one machine's GIL.
  An idle dispatcher polls every ``idle_sleep`` seconds (0.2 s), so a stock change reaches
  the store well within 2 s.
- **receiver** (``--serve``) — the Starlette WMS webhook under uvicorn on its own thread.

Shutdown (SIGTERM, SIGINT, or ``Worker.stop()``): stop claiming, let each dispatcher finish
the delivery in flight and release what it leased but did not start, let a running job end
(or give its claim back), stop the receiver, dispose the engine. Nothing is lost: a row
that was not settled stays pending or leased-until-expiry and is delivered by the next
worker; a job that did not finish is due again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError

from . import scheduler
from .db import session as dbsession
from .db import stores
from .db.stores import StoreRecord
from .settings import Settings
from .specs import Bundle

log = logging.getLogger("omsflow.worker")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobContext:
    """What a scheduled job gets: the database, the specs and the store it runs for."""

    factory: sessionmaker[Session]
    bundle: Bundle
    store: StoreRecord
    job: str
    now: datetime


JobFn = Callable[[JobContext], Mapping[str, Any] | None]


def default_jobs() -> dict[str, JobFn]:
    """The sync jobs of ``engine.runtime.sync`` by schedule job name.

    Each order job runs its own stream of ``sync_orders``, on the channel spec's
    schedule: ``new_orders`` (by id, every 5 min by default) and ``status_changes``
    (by ``date_upd``, every 30 min by default).
    """
    from . import sync

    def catalog(ctx: JobContext) -> Mapping[str, Any] | None:
        return _counts(sync.sync_catalog(ctx.factory, ctx.bundle, ctx.store.name))

    def new_orders(ctx: JobContext) -> Mapping[str, Any] | None:
        return _counts(sync.sync_orders(ctx.factory, ctx.bundle, ctx.store.name, streams=("new",)))

    def status_changes(ctx: JobContext) -> Mapping[str, Any] | None:
        return _counts(
            sync.sync_orders(ctx.factory, ctx.bundle, ctx.store.name, streams=("changes",))
        )

    return {
        scheduler.CATALOG: catalog,
        scheduler.NEW_ORDERS: new_orders,
        scheduler.STATUS_CHANGES: status_changes,
    }


def _counts(result: Any) -> Mapping[str, Any] | None:
    if result is None:
        return None
    if isinstance(result, Mapping):
        return result
    for attr in ("to_json", "counts"):
        value = getattr(result, attr, None)
        if callable(value):
            value = value()
        if isinstance(value, Mapping):
            return value
    return {"result": str(result)}


def _brief(stats: Any) -> dict[str, Any]:
    keys = ("delivered", "retried", "dead", "superseded", "followups", "lost")
    return {k: getattr(stats, k, 0) for k in keys}


@dataclass
class WorkerOptions:
    workers: int = 1
    """Dispatcher threads in this process."""
    serve: bool = False
    """Also run the WMS receiver."""
    host: str = "127.0.0.1"
    port: int = 8765
    once: bool = False
    """Run what is due now, drain the outbox, exit (cron-style; tests)."""
    idle_sleep: float = 0.2
    scheduler_poll: float = 1.0
    lease_seconds: float = scheduler.DEFAULT_LEASE_SECONDS
    retry_failed_job_seconds: float = 60.0
    schedule_jobs: bool = True
    dispatch: bool = True
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )


class Worker:
    """One ``omsflow run`` process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        bundle: Bundle,
        options: WorkerOptions | None = None,
        *,
        jobs: Mapping[str, JobFn] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        if options is not None and options.workers < 1:
            raise ConfigError(f"--workers must be at least 1 (got {options.workers})")
        self.settings = settings
        self.bundle = bundle
        self.options = options or WorkerOptions()
        self._jobs = jobs
        self.clock = clock
        self.stop_event = threading.Event()
        self.engine: Engine | None = None
        self.factory: sessionmaker[Session] | None = None
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self._adapters: Any = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.dead = 0
        self.jobs_run: list[tuple[str, str, str]] = []
        """(store, job, outcome) of every run in this process (tests, ``--once`` summary)."""
        self.errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        self.engine, self.factory = dbsession.open_database(self.settings)
        if self.settings.wms_secret:
            from .logging import register_secret

            register_secret(self.settings.wms_secret.reveal())
        with self.factory() as session:
            for store in stores.list_stores(session):
                from .logging import register_secret

                register_secret(store.key.reveal())

    def start(self) -> None:
        """Open the database and start every thread; returns at once.

        Raises:
            ConfigError: a store's webservice key cannot be read (this process has not the
                secret key it was sealed with): refused before any thread starts, instead of
                every delivery failing.
        """
        if self.factory is None:
            self.open()
        from engine.runtime.db import stores

        with self._factory()() as session:
            stores.list_stores(session)  # decrypts every key: one clear error up front
        opts = self.options
        if opts.once and opts.schedule_jobs:
            self._scheduler_loop()  # the jobs due now first, then deliver what they enqueued
        elif opts.schedule_jobs:
            self._spawn("scheduler", self._scheduler_loop)
        if opts.dispatch:
            for i in range(opts.workers):
                self._spawn(f"dispatcher-{i + 1}", self._dispatcher_loop, f"{opts.owner}:d{i + 1}")
        if opts.serve:
            self._start_receiver()
        log.info(
            "worker started",
            extra={
                "owner": opts.owner,
                "dispatchers": opts.workers if opts.dispatch else 0,
                "serve": self._server.url if self._server else None,
                "database": self.engine.url.render_as_string(hide_password=True)
                if self.engine
                else None,
            },
        )

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(
            target=self._guard, args=(name, target, *args), name=name, daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _guard(self, name: str, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        except Exception as exc:  # a crashed loop stops the process: never run half a worker
            log.exception("%s crashed; stopping", name)
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            self.stop_event.set()

    def stop(self) -> None:
        self.stop_event.set()

    def _factory(self) -> sessionmaker[Session]:
        if self.factory is None:
            raise RuntimeError("Worker.open() was not called")
        return self.factory

    def join(self, timeout: float = 60.0) -> None:
        """Wait for the threads to finish their work, then stop the receiver and the pool."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._adapters is not None:
            self._adapters.close()
            self._adapters = None
        if self.engine is not None:
            self.engine.dispose()
        log.info("worker stopped", extra={"owner": self.options.owner})

    def run(self, *, install_signals: bool = True) -> int:
        """Start, wait for SIGTERM/SIGINT (or the end of ``--once``), shut down; exit code."""
        previous = self._install_signals() if install_signals else {}
        try:
            self.start()
            try:
                while not self.stop_event.is_set():
                    if self.options.once and all(not t.is_alive() for t in self._threads):
                        break
                    self.stop_event.wait(0.2)
            finally:
                self.stop_event.set()
                self.join()
        finally:
            # a stopped worker's handler would swallow the process's next Ctrl-C
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if self.errors else 0

    def _install_signals(self) -> dict[int, Any]:
        """Stop on SIGTERM and SIGINT; the handlers they had before, to put back."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info(
                "signal received; finishing work in flight",
                extra={"signal": signal.Signals(signum).name},
            )
            self.stop_event.set()

        return {
            signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)
        }

    # ------------------------------------------------------------------ scheduler

    def jobs(self) -> Mapping[str, JobFn]:
        if self._jobs is None:
            self._jobs = default_jobs()
        return self._jobs

    def _scheduler_loop(self) -> None:
        factory = self._factory()
        channel = self.bundle.channel
        last_ensure = 0.0
        while not self.stop_event.is_set():
            if time.monotonic() - last_ensure > 30:
                # new stores get their schedules without a restart
                with factory.begin() as session:
                    scheduler.ensure_schedules(session, channel, now=self.clock())
                last_ensure = time.monotonic()
            claim = scheduler.claim_due(
                factory, channel, now=self.clock(), lease_seconds=self.options.lease_seconds
            )
            if claim is None:
                if self.options.once:
                    return
                self.stop_event.wait(self.options.scheduler_poll)
                continue
            self.run_claim(claim)

    def run_claim(self, claim: scheduler.Claim) -> str:
        """Run one claimed job and settle its schedule row; returns ok | failed | released."""
        factory = self._factory()
        fn = self.jobs().get(claim.job)
        if self.stop_event.is_set():
            scheduler.release(factory, claim)
            return "released"
        if fn is None:
            # a job this worker does not know (a newer worker's, sharing the database): left
            # due again at its next interval, not claimed back at once in a busy loop
            scheduler.retry_later(
                factory, claim, now=self.clock(), delay_seconds=claim.interval_seconds
            )
            log.warning(
                "job unknown to this worker; left for its next interval",
                extra={"store": claim.store_name, "job": claim.job},
            )
            return "released"
        started = self.clock()
        with factory() as session:
            store = stores.get_store(session, claim.store_name)
        ctx = JobContext(factory, self.bundle, store, claim.job, started)
        t0 = time.perf_counter()
        extra = {"store": claim.store_name, "job": claim.job}
        try:
            counts = fn(ctx)
        except Exception as exc:  # noqa: BLE001 - a failed sync run must not stop the worker
            scheduler.retry_later(
                factory,
                claim,
                now=self.clock(),
                delay_seconds=min(self.options.retry_failed_job_seconds, claim.interval_seconds),
            )
            log.warning("job failed: %s", f"{type(exc).__name__}: {exc}", extra=extra)
            self.jobs_run.append((claim.store_name, claim.job, "failed"))
            return "failed"
        kept = scheduler.finish(factory, claim, started_at=started, now=self.clock())
        log.info(
            "job done",
            extra={
                **extra,
                "seconds": round(time.perf_counter() - t0, 3),
                "counts": dict(counts or {}),
                "lease_kept": kept,
            },
        )
        self.jobs_run.append((claim.store_name, claim.job, "ok"))
        return "ok"

    # ------------------------------------------------------------------ dispatcher

    def _pool(self) -> Any:
        if self._adapters is None:
            from .outbox import AdapterPool

            self._adapters = AdapterPool(self._factory(), self.bundle.channel)
        return self._adapters

    def _dispatcher(self, owner: str) -> Any:
        from .outbox import Dispatcher, default_label_dir

        return Dispatcher(
            self._factory(),
            self.bundle,
            owner=owner,
            adapters=self._pool(),
            label_dir=default_label_dir(self.settings.database_url),
        )

    def _dispatcher_loop(self, owner: str) -> None:
        dispatcher = self._dispatcher(owner)
        try:
            if self.options.once:
                stats = dispatcher.run_once()
            else:
                # run_forever finishes the batch in flight (delivered and settled) before it
                # returns: leases are never left behind by a clean shutdown.
                stats = dispatcher.run_forever(self.stop_event, idle_sleep=self.options.idle_sleep)
        finally:
            dispatcher.close()
        with self._lock:
            self.delivered += stats.delivered
            self.dead += stats.dead
        log.info("dispatcher stopped", extra={"owner": owner, **_brief(stats)})

    # ------------------------------------------------------------------ receiver

    def _start_receiver(self) -> None:
        factory = self._factory()
        from .wms.receiver import WmsReceiver
        from .wms.server import start_in_thread
        from .wms.webhook import create_wms_app

        secret = self.settings.wms_secret
        if not secret:
            raise ConfigError("--serve needs the WMS secret (fix: export OMSFLOW_WMS_SECRET=...)")
        app = create_wms_app(
            WmsReceiver(factory, self.bundle),
            secret,
            event_types=self.bundle.channel.fulfilment.wms_events,
        )
        self._server = start_in_thread(app, self.options.host, self.options.port)
        log.info("WMS receiver listening", extra={"url": self._server.url})
