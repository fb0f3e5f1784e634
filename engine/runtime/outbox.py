"""The outbox dispatcher: deliver committed effects to stores and the WMS, exactly once.

One cycle: **lease** a batch of due rows in a short committed transaction (a crash just
lets the lease expire), **deliver** them on a thread pool (one sync httpx client per
store from ``AdapterPool``; rows of one *lane* — one order, or one coalescing key — run
one after another in id order), then **settle**: successes in one bulk UPDATE, a
success with a ``then`` follow-up together with that follow-up event (``apply.events.
apply_on``, source ``system``, key ``outbox:<id>:<trigger>``) in one transaction,
retryable failures back to pending with exponential backoff + jitter (``Retry-After``
honoured) until ``max_attempts``, permanent failures dead with the store's message.
Cycles overlap: up to ``pipeline`` (2) batches are in flight, so the next batch is leased
and queued while one is delivered and a finished one is settled while the next is
delivered (``concurrency`` defaults to the channel's ``connection.max_concurrency``).

Exactly once, with several dispatchers and lost answers:
- leases (``SqlOutboxRepository.lease``, the one lease): by lane — one order, one
  coalescing key —, no row is leased while another row of its lane holds a live lease, and
  on PostgreSQL a transaction-scoped advisory lock on each lane makes that check and the
  lease atomic across processes (SQLite has one writer at a time), so two dispatchers never
  deliver the same row, two stock values of one SKU, or two states of one order at once;
- every handler is idempotent (``engine.runtime.effects``), so a delivery repeated after
  an expired lease or a "lost after commit" 500 leaves the store as one delivery would;
- coalescing: ``enqueue`` rewrites only a *pending* row; a change made while its twin is
  leased becomes a new pending row, delivered after the leased one settles (a failed
  older twin is closed as superseded), so the newest value always reaches the store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.errors import ChannelError, NotFound, OmsflowError, StaleOrder
from engine.runtime import effects
from engine.runtime.channels.port import ChannelPort
from engine.runtime.db.base import utcnow
from engine.runtime.db.repository import SqlOutboxRepository
from engine.runtime.db.stores import StoreRecord, get_store
from engine.runtime.db.tables import (
    OrderLineRow,
    OrderRow,
    OutboxRow,
    ProductRow,
    StoreRow,
)
from engine.runtime.effects import Delivery, EffectContext, OrderInfo, ProductInfo
from engine.runtime.settings import redact

log = logging.getLogger("omsflow.outbox")

MIN_ATTEMPTS = 8
"""The outbox tries an effect at least this often before it is dead (the channel's
``retry.attempts`` counts HTTP retries inside one delivery; outages last longer)."""
LABEL_DIR_ENV = "OMSFLOW_LABEL_DIR"
_MAX_ERROR = 2000
_FOLLOWUP_TRIES = 5
_CONTENDED_TRIES = 5


# --------------------------------------------------------------------------- adapters


class AdapterPool:
    """One channel (``ChannelPort``; PrestaShop's: one pooled httpx client) per store,
    built on first use from the stores table by the store's channel factory
    (``channels.registry``) and shared by every worker thread.

    ``client_kw`` overrides the channel's connection settings for every client (tests and
    benchmarks: ``timeout=``, ``rate_limit=None``...). ``adapters`` pins ready-made ones.
    Each store's ``max_concurrency`` and rate limit are kept in the database
    (``db/budget.py``), so they hold across every worker process (``budgets=None``: this
    process's own).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        channel: Any,
        *,
        adapters: Mapping[int, ChannelPort] | None = None,
        **client_kw: Any,
    ) -> None:
        self.session_factory = session_factory
        self.channel = channel
        if "budgets" not in client_kw:
            from engine.runtime.db.budget import shared_budgets

            client_kw["budgets"] = shared_budgets(session_factory)
        self.client_kw = client_kw
        self._adapters: dict[int, ChannelPort] = dict(adapters or {})
        self._stores: dict[int, StoreRecord] = {}
        self._lock = threading.Lock()

    def store(self, store_id: int) -> StoreRecord:
        """The store's record (cached for the pool's life)."""
        with self._lock:
            record = self._stores.get(store_id)
        if record is not None:
            return record
        with self.session_factory() as session:
            row = session.get(StoreRow, store_id)
            if row is None:
                raise effects.EffectFailed(f"store #{store_id} no longer exists")
            record = get_store(session, row.name)
        with self._lock:
            return self._stores.setdefault(store_id, record)

    def adapter(self, store_id: int) -> ChannelPort:
        """The store's channel, created once."""
        with self._lock:
            adapter = self._adapters.get(store_id)
        if adapter is not None:
            return adapter
        from engine.runtime.channels.registry import open_channel

        record = self.store(store_id)
        with self._lock:
            adapter = self._adapters.get(store_id)
            if adapter is None:
                adapter = open_channel(
                    record.channel, record.url, record.key, self.channel, **self.client_kw
                )
                self._adapters[store_id] = adapter
            return adapter

    def secrets(self) -> list[str]:
        with self._lock:
            return [s.key.reveal() for s in self._stores.values()]

    @property
    def requests(self) -> int:
        """HTTP requests made by every client so far."""
        with self._lock:
            return sum(int(a.requests_sent) for a in self._adapters.values())

    def close(self) -> None:
        with self._lock:
            adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            adapter.close()

    def __enter__(self) -> AdapterPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_label_dir(database_url: str, environ: Mapping[str, str] | None = None) -> Path:
    """``$OMSFLOW_LABEL_DIR``, else ``labels/`` beside the SQLite file, else ``./labels``."""
    env = os.environ if environ is None else environ
    if env.get(LABEL_DIR_ENV):
        return Path(env[LABEL_DIR_ENV])
    try:
        url = make_url(database_url)
    except Exception:  # noqa: BLE001 - an odd URL just means "use the working folder"
        return Path.cwd() / "labels"
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "labels"
    return Path.cwd() / "labels"


# --------------------------------------------------------------------------- results


@dataclass
class DispatchStats:
    """What dispatching did. ``retried``: failed, back to pending with backoff;
    ``lost``: settled by nobody because the lease had expired and another worker took it."""

    leased: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    superseded: int = 0
    followups: int = 0
    lost: int = 0
    batches: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: DispatchStats) -> None:
        for name in (
            "leased",
            "delivered",
            "retried",
            "dead",
            "superseded",
            "followups",
            "lost",
            "batches",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.errors.extend(other.errors[: max(0, 20 - len(self.errors))])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Result:
    delivery: Delivery
    error: BaseException | None = None
    note: str | None = None


# --------------------------------------------------------------------------- dispatcher


class Dispatcher:
    """Delivers outbox rows; see the module docstring. Thread-safe to stop, not to share:
    run one ``Dispatcher`` per process/thread (several may share a database)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        bundle: Any,
        *,
        owner: str,
        adapters: AdapterPool,
        clock: Callable[[], datetime] = utcnow,
        lease_seconds: float = 60.0,
        batch: int = 200,
        concurrency: int | None = None,
        label_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        max_attempts: int | None = None,
        pipeline: int = 2,
    ) -> None:
        self.session_factory = session_factory
        self.bundle = bundle
        self.owner = owner
        self.adapters = adapters
        self.clock = clock
        self.lease_seconds = float(lease_seconds)
        self.batch = max(1, int(batch))
        if concurrency is None:  # the channel's connection.max_concurrency (8 by default)
            concurrency = getattr(bundle.channel.connection, "max_concurrency", 8)
        self.concurrency = max(1, int(concurrency or 8))
        self.pipeline = max(1, int(pipeline))
        retry = bundle.channel.connection.retry
        self.max_attempts = max_attempts or max(MIN_ATTEMPTS, int(retry.attempts))
        self.backoff_seconds = float(retry.backoff_seconds)
        self.max_backoff_seconds = float(retry.max_backoff_seconds)
        self.context = EffectContext(
            session_factory=session_factory,
            bundle=bundle,
            adapters=adapters,
            label_dir=label_dir if label_dir is not None else Path.cwd() / "labels",
            clock=clock,
            environ=os.environ if environ is None else environ,
        )
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"outbox-{owner}")
        self._contended = 0
        """Due rows the last lease skipped: another dispatcher was leasing their lanes."""

    # ------------------------------------------------------------------ public

    def run_once(self) -> DispatchStats:
        """Deliver every row due now (retries whose backoff has passed included) and return."""
        stats = DispatchStats()
        started = time.perf_counter()
        self._pump(stats)
        stats.seconds = time.perf_counter() - started
        return stats

    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.2) -> DispatchStats:
        """Dispatch until ``stop`` is set; sleeps ``idle_sleep`` when nothing is due. On
        ``stop`` no new batch is leased; the batches in flight are delivered and settled."""
        stats = DispatchStats()
        started = time.perf_counter()
        while not stop.is_set():
            try:
                busy = self._pump(stats, stop)
            except Exception as exc:  # noqa: BLE001 - a daemon survives a DB hiccup
                log.warning("outbox: cycle failed: %s", redact(str(exc), *self.adapters.secrets()))
                busy = False
            if not busy:
                stop.wait(idle_sleep)
        stats.seconds = time.perf_counter() - started
        return stats

    def drain(self, timeout: float = 60.0, poll: float = 0.05) -> DispatchStats:
        """Run until no row is pending or leased (dead rows stay), or ``timeout`` passes;
        waits for backoffs. For tests, benchmarks and ``sync stock``."""
        stats = DispatchStats()
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        while True:
            stats.merge(self.run_once())
            with self.session_factory() as session:
                open_rows = session.scalar(
                    select(func.count())
                    .select_from(OutboxRow)
                    .where(OutboxRow.state.in_(("pending", "leased")))
                )
            if not open_rows or time.monotonic() >= deadline:
                break
            time.sleep(poll)
        stats.seconds = time.perf_counter() - started
        return stats

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one cycle

    def _pump(self, stats: DispatchStats, stop: threading.Event | None = None) -> bool:
        """Lease, deliver and settle until nothing is due (or ``stop`` is set); True if any
        batch was leased. Up to ``pipeline`` batches are in flight: the next batch is leased
        and queued behind the current one, and a finished batch is settled while the next is
        delivered, so the workers never wait for the database. Batches in flight never share
        a lane (a lane with a live lease is not leased), so lanes stay one-at-a-time. Due rows
        whose lanes another dispatcher was leasing at that instant are tried again shortly
        (up to ``_CONTENDED_TRIES`` times) rather than after an idle sleep."""
        inflight: deque[list[Future[list[_Result]]]] = deque()
        busy = False
        contended = 0
        try:
            while True:
                while len(inflight) < self.pipeline and not (stop is not None and stop.is_set()):
                    batch = self._start(stats)
                    if batch is None:
                        break
                    inflight.append(batch)
                    busy = True
                    contended = 0
                if not inflight:
                    if self._contended and contended < _CONTENDED_TRIES:
                        contended += 1
                        time.sleep(0.005 * contended)
                        continue
                    return busy
                self._finish(inflight.popleft(), stats)
        finally:
            # a failed lease or settle: still settle what was delivered (nothing waits for
            # its lease to expire); the first error is the one raised
            while inflight:
                with contextlib.suppress(Exception):
                    self._finish(inflight.popleft(), stats)

    def _cycle(self, stats: DispatchStats) -> bool:
        """One batch: lease, deliver, settle. True if a batch was leased."""
        batch = self._start(stats)
        if batch is None:
            return False
        self._finish(batch, stats)
        return True

    def _start(self, stats: DispatchStats) -> list[Future[list[_Result]]] | None:
        """Lease a batch and queue its lanes on the pool; None when nothing is due."""
        deliveries = self._lease(self.clock())
        if not deliveries:
            return None
        stats.batches += 1
        stats.leased += len(deliveries)
        deliveries, superseded = _drop_superseded(deliveries)
        if superseded:
            self._settle_superseded(superseded, stats)
        lanes: dict[str, list[Delivery]] = defaultdict(list)
        for d in deliveries:
            lanes[d.lane].append(d)
        return [self._pool.submit(self._run_lane, rows) for rows in lanes.values()]

    def _finish(self, futures: Sequence[Future[list[_Result]]], stats: DispatchStats) -> None:
        """Wait for a batch's lanes and settle the results."""
        results = [r for f in futures for r in f.result()]
        self._settle(results, stats)

    def _run_lane(self, rows: Sequence[Delivery]) -> list[_Result]:
        out = []
        for d in rows:
            try:
                note = effects.handler_for(d.kind)(self.context, d)
            except Exception as exc:  # noqa: BLE001 - classified in _settle
                out.append(_Result(d, error=exc))
            else:
                out.append(_Result(d, note=note))
        return out

    # ------------------------------------------------------------------ lease

    def _lease(self, now: datetime) -> list[Delivery]:
        """Take up to ``batch`` due rows (``SqlOutboxRepository.lease``: whole lanes, none
        another dispatcher holds), committed, with their orders and products."""
        with self.session_factory.begin() as session:
            repo = SqlOutboxRepository(session)
            leased = repo.lease(
                self.batch, now=now, owner=self.owner, lease_seconds=self.lease_seconds
            )
            self._contended = repo.contended
            if not leased:
                return []
            picked = [
                Delivery(
                    id=r.id,
                    kind=r.kind,
                    order_id=r.order_id,
                    store_id=r.store_id,
                    payload=dict(r.payload or {}),
                    dedup_key=r.dedup_key,
                    then_trigger=r.then_trigger,
                    attempts=int(r.attempts),
                )
                for r in leased
            ]
            orders = _orders(session, {d.order_id for d in picked if d.order_id is not None})
            skus = {
                str(d.payload.get("sku"))
                for d in picked
                if d.kind in ("push_stock", "push_price") and d.payload.get("sku")
            }
            products, parents = _products(session, skus)
        out = []
        for d in picked:
            product = products.get(str(d.payload.get("sku"))) if d.payload.get("sku") else None
            out.append(
                replace(
                    d,
                    order=orders.get(d.order_id) if d.order_id is not None else None,
                    product=product,
                    parent=parents.get(product.parent_id)
                    if product is not None and product.parent_id is not None
                    else None,
                )
            )
        return out

    # ------------------------------------------------------------------ settle

    def _settle_superseded(
        self, rows: Sequence[tuple[Delivery, int]], stats: DispatchStats
    ) -> None:
        now = self.clock()
        with self.session_factory.begin() as session:
            for d, newer in rows:
                result = session.execute(
                    self._owned_update(d.id).values(
                        state="done",
                        delivered_at=now,
                        leased_until=None,
                        last_error=f"superseded by outbox #{newer}",
                    ),
                    execution_options={"synchronize_session": False},
                )
                stats.superseded += _rowcount(result)

    def _owned_update(self, *ids: int) -> Any:
        return update(OutboxRow).where(
            OutboxRow.id.in_(ids),
            OutboxRow.state == "leased",
            OutboxRow.lease_owner == self.owner,
        )

    def _settle(self, results: Sequence[_Result], stats: DispatchStats) -> None:
        now = self.clock()
        plain = [r.delivery.id for r in results if r.error is None and not r.delivery.then_trigger]
        followups = [r.delivery for r in results if r.error is None and r.delivery.then_trigger]
        failed = [r for r in results if r.error is not None]
        if plain or failed:
            with self.session_factory.begin() as session:
                if plain:
                    n = _rowcount(
                        session.execute(
                            self._owned_update(*plain).values(
                                state="done", delivered_at=now, leased_until=None, last_error=None
                            ),
                            execution_options={"synchronize_session": False},
                        )
                    )
                    stats.delivered += n
                    stats.lost += len(plain) - n
                repo = SqlOutboxRepository(session)
                for r in failed:
                    if r.error is not None:
                        self._settle_failure(repo, r.delivery, r.error, now, stats)
        for d in followups:
            self._settle_followup(d, now, stats)

    def _settle_failure(
        self,
        repo: SqlOutboxRepository,
        d: Delivery,
        exc: BaseException,
        now: datetime,
        stats: DispatchStats,
    ) -> None:
        message = self._message(exc)
        if isinstance(exc, ChannelError):
            retryable = bool(exc.retryable)
        else:
            # our own errors are decisions (unbound SKU, missing config); the rest is
            # transient (a DB hiccup, a label file write) until the attempts run out
            retryable = not isinstance(exc, OmsflowError)
        if retryable and d.attempts >= self.max_attempts:
            retryable = False
            message = f"gave up after {d.attempts} attempts: {message}"
        if len(stats.errors) < 20:
            stats.errors.append(f"#{d.id} {d.kind}: {message}")
        if retryable:
            retry_after = getattr(exc, "retry_after", None)
            at = now + timedelta(seconds=self.backoff(d.attempts, retry_after))
            if repo.mark_failed(d.id, message, at=now, retry_at=at, owner=self.owner):
                stats.retried += 1
            else:
                stats.lost += 1
        elif repo.mark_dead(d.id, message, at=now, owner=self.owner):
            stats.dead += 1
            log.warning("outbox: #%s %s is dead: %s", d.id, d.kind, message)
            if d.order_id is not None:  # the order's operator must know (orders ack clears)
                from engine.runtime import service

                service.flag_dead_effect(
                    repo.session, d.order_id, f"{d.kind} #{d.id} is dead: {message}", at=now
                )
        else:
            stats.lost += 1

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before attempt ``attempts + 1``: exponential, capped, minus up to 50 %
        jitter; never sooner than the store's ``Retry-After`` (capped at one hour)."""
        base = min(self.max_backoff_seconds, self.backoff_seconds * 2.0 ** max(0, attempts - 1))
        wait = base * (1.0 - 0.5 * random.random())
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), 3600.0))
        return wait

    def _message(self, exc: BaseException) -> str:
        text = str(exc) if isinstance(exc, OmsflowError) else f"{type(exc).__name__}: {exc}"
        text = " ".join(text.split()) or type(exc).__name__
        return redact(text, *self.adapters.secrets())[:_MAX_ERROR]

    def _settle_followup(self, d: Delivery, now: datetime, stats: DispatchStats) -> None:
        """mark_done + the ``then`` event, in one transaction (stale versions retried)."""
        key = f"outbox:{d.id}:{d.then_trigger}"
        for attempt in range(1, _FOLLOWUP_TRIES + 1):
            try:
                with self.session_factory.begin() as session:
                    if not SqlOutboxRepository(session).mark_done(d.id, at=now, owner=self.owner):
                        stats.lost += 1
                        return
                    fired = self._fire(session, d, key, now)
                stats.delivered += 1
                stats.followups += int(fired)
                return
            except (StaleOrder, StaleDataError, IntegrityError):
                # a concurrent writer changed the order (or fired this very key): again
                if attempt == _FOLLOWUP_TRIES:
                    raise
                time.sleep(0.01 * attempt)

    def _fire(self, session: Session, d: Delivery, key: str, now: datetime) -> bool:
        from engine.runtime.apply import apply_on

        if d.order_id is None or not d.then_trigger:
            return False
        session.flush()
        try:
            result = apply_on(
                session.connection(),
                self.bundle,
                trigger=d.then_trigger,
                source="system",
                idempotency_key=key,
                at=now,
                order_id=d.order_id,
                payload={"outbox_id": d.id, "effect": d.kind},
            )
        except NotFound:
            return False
        return result.applied


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _drop_superseded(
    deliveries: Sequence[Delivery],
) -> tuple[list[Delivery], list[tuple[Delivery, int]]]:
    """Of several leased rows with one dedup key (an expired lease and its newer twin),
    deliver only the newest."""
    newest: dict[str, int] = {}
    for d in deliveries:
        if d.dedup_key is not None:
            newest[d.dedup_key] = max(newest.get(d.dedup_key, d.id), d.id)
    keep: list[Delivery] = []
    drop: list[tuple[Delivery, int]] = []
    for d in deliveries:
        if d.dedup_key is not None and newest[d.dedup_key] != d.id:
            drop.append((d, newest[d.dedup_key]))
        else:
            keep.append(d)
    return keep, drop


def _line_weight(extra: Any, quantity: int) -> Decimal | None:
    """A line's weight in kg: its unit ``weight`` (an order line field kept in its JSON,
    ``tables.LINE_FACTS``) x quantity; None when it has none."""
    raw = extra.get("weight") if isinstance(extra, dict) else None
    if raw is None or raw == "":
        return None
    try:
        return Decimal(str(raw)) * quantity
    except ArithmeticError:
        return None


def _orders(session: Session, ids: set[int]) -> dict[int, OrderInfo]:
    if not ids:
        return {}
    rows = session.execute(
        select(
            OrderRow.id,
            OrderRow.reference,
            OrderRow.store_id,
            OrderRow.external_id,
            OrderRow.state,
            OrderRow.customer_name,
            OrderRow.shipping_address,
            OrderRow.carrier,
        ).where(OrderRow.id.in_(ids))
    )
    items: dict[int, int] = {}
    weights: dict[int, Decimal] = {}
    lines = select(OrderLineRow.order_id, OrderLineRow.quantity, OrderLineRow.extra).where(
        OrderLineRow.order_id.in_(ids)
    )
    for order_id, quantity, extra in session.execute(lines):
        items[order_id] = items.get(order_id, 0) + int(quantity or 0)
        weight = _line_weight(extra, int(quantity or 0))
        if weight:  # a store that keeps no weights says 0: the label prints none
            weights[order_id] = weights.get(order_id, Decimal(0)) + weight
    return {
        r.id: OrderInfo(
            id=r.id,
            reference=r.reference,
            store_id=r.store_id,
            external_id=r.external_id,
            state=r.state,
            customer_name=r.customer_name,
            shipping_address=dict(r.shipping_address or {}),
            carrier=r.carrier,
            items=items.get(r.id),
            weight_kg=weights.get(r.id),
        )
        for r in rows
    }


def _product_info(row: ProductRow, has_children: bool) -> ProductInfo:
    return ProductInfo(
        id=row.id,
        sku=row.sku,
        parent_id=row.parent_id,
        store_ids=dict(row.store_ids or {}),
        price=row.price,
        retail_selling_price=row.retail_selling_price,
        selling_price=row.selling_price,
        has_children=has_children,
    )


def _products(
    session: Session, skus: set[str]
) -> tuple[dict[str, ProductInfo], dict[int, ProductInfo]]:
    if not skus:
        return {}, {}
    rows = list(session.scalars(select(ProductRow).where(ProductRow.sku.in_(skus))))
    ids = {r.id for r in rows}
    parent_ids = {r.parent_id for r in rows if r.parent_id is not None}
    with_children = (
        set(
            session.scalars(
                select(ProductRow.parent_id).where(ProductRow.parent_id.in_(ids)).distinct()
            )
        )
        if ids
        else set()
    )
    products = {r.sku: _product_info(r, r.id in with_children) for r in rows}
    parents: dict[int, ProductInfo] = {}
    if parent_ids:
        for p in session.scalars(select(ProductRow).where(ProductRow.id.in_(parent_ids))):
            parents[p.id] = _product_info(p, True)
    return products, parents


# --------------------------------------------------------------------------- CLI helpers


def list_entries(
    session: Session, *, dead: bool = False, limit: int | None = None
) -> list[dict[str, Any]]:
    """Outbox rows for ``omsflow outbox list``: pending + leased (or dead), oldest first.
    Stable fields: id, kind, order_reference, state, attempts, next_attempt_at, last_error."""
    states = ("dead",) if dead else ("pending", "leased")
    query = (
        select(OutboxRow, OrderRow.reference)
        .outerjoin(OrderRow, OrderRow.id == OutboxRow.order_id)
        .where(OutboxRow.state.in_(states))
        .order_by(OutboxRow.id)
    )
    if limit is not None:
        query = query.limit(limit)
    out = []
    for row, reference in session.execute(query):
        out.append(
            {
                "id": row.id,
                "kind": row.kind,
                "order_reference": reference,
                "sku": (row.payload or {}).get("sku"),
                "state": row.state,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at.isoformat()
                if row.next_attempt_at
                else None,
                "last_error": row.last_error,
            }
        )
    return out


def retry_dead(session: Session, ids: Iterable[int] | None, *, at: datetime) -> int:
    """Dead rows (the given ids, or all) back to pending now; ``NotFound`` for unknown ids."""
    if ids is not None:
        wanted = list(ids)
        states = {
            int(r.id): str(r.state)
            for r in session.execute(
                select(OutboxRow.id, OutboxRow.state).where(OutboxRow.id.in_(wanted))
            )
        }
        for entry in wanted:
            if entry not in states:
                raise NotFound(f"outbox entry #{entry} not found")
            if states[entry] != "dead":
                raise NotFound(f"outbox entry #{entry} is {states[entry]}, not dead")
    return SqlOutboxRepository(session).retry(ids, at=at)


def enqueue_stock_sync(
    session: Session, *, store_id: int | None = None, every_sku: bool = False, at: datetime
) -> int:
    """Enqueue a coalesced push_stock of every SKU bound to the store(s) (``omsflow sync
    stock``): SKUs with a stock row, or with ``every_sku`` every active SKU (no row = 0).
    A product with variations is skipped (the store sums its variations). Returns rows."""
    from engine.runtime import inventory

    stores = [store_id] if store_id is not None else list(session.scalars(select(StoreRow.id)))
    names = {s.id: s.name for s in session.scalars(select(StoreRow))}
    parents = set(
        session.scalars(select(ProductRow.parent_id).where(ProductRow.parent_id.is_not(None)))
    )
    products = session.scalars(
        select(ProductRow).where(ProductRow.deleted.is_(False)).order_by(ProductRow.sku)
    )
    levels = inventory.levels(session)
    count = 0
    for row in products:
        if row.id in parents or (row.sku not in levels and not every_sku):
            continue
        if not every_sku and not row.active:
            continue
        info = _product_info(row, False)
        bound = [s for s in stores if info.binding(s, names.get(s)) is not None]
        if not bound:
            continue
        level = levels.get(row.sku)
        quantity = level.pushable if level is not None else 0
        count += len(
            inventory.enqueue_stock_push(session, row.sku, quantity, at=at, store_ids=bound)
        )
    return count


@contextlib.contextmanager
def open_dispatcher(settings: Any, *, owner: str | None = None, **kw: Any) -> Iterator[Dispatcher]:
    """A ``Dispatcher`` on ``settings``' database with an ``AdapterPool`` (the CLI's)."""
    from engine.runtime.db.session import open_database
    from engine.runtime.specs import load_bundle

    engine, sessions = open_database(settings)
    bundle = load_bundle(settings.specs_dir, settings.channels_dir)
    pool = AdapterPool(sessions, bundle.channel)
    kw.setdefault("label_dir", default_label_dir(settings.database_url))
    dispatcher = Dispatcher(sessions, bundle, owner=owner or new_owner(), adapters=pool, **kw)
    try:
        yield dispatcher
    finally:
        dispatcher.close()
        pool.close()
        engine.dispose()


def new_owner(prefix: str = "outbox") -> str:
    """A lease owner name unique to this process and dispatcher."""
    return f"{prefix}-{os.getpid()}-{threading.get_ident() % 100000}-{random.randrange(10**6)}"


__all__ = [
    "AdapterPool",
    "DispatchStats",
    "Dispatcher",
    "default_label_dir",
    "enqueue_stock_sync",
    "list_entries",
    "new_owner",
    "open_dispatcher",
    "retry_dead",
]
