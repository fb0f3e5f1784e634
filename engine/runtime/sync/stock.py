"""``omsflow sync stock``: queue every SKU's available quantity for a store, then deliver
what is due now — with progress, and stoppable by Ctrl-C without leaving work half done.

The pushes are coalesced ``push_stock`` outbox rows (``outbox.enqueue_stock_sync``); the
dispatcher delivers them (``Dispatcher.run_forever`` until nothing is due now). The first
Ctrl-C stops leasing: the batches in flight are delivered *and settled*, so no row is left
leased (a leased row would hold its SKU's lane until the lease expires and a re-run could
not push that SKU); the rows never leased stay pending for ``omsflow run`` or a re-run.
A second Ctrl-C raises ``KeyboardInterrupt`` at once. Where SIGINT is ignored (a background
job) it stays ignored (``sync.common.first_ctrl_c``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from engine.runtime import inventory
from engine.runtime.db.base import utcnow
from engine.runtime.db.stores import get_store_row
from engine.runtime.db.tables import OutboxRow

from .common import first_ctrl_c
from .progress import NullProgress, Watcher

STREAM = "stock pushes"


@dataclass(frozen=True)
class StockSync:
    """What ``push_all_stock`` did: rows queued, the dispatcher's counts, whether Ctrl-C
    stopped it, and the store's ``push_stock`` rows still waiting (pending or leased)."""

    queued: int
    stats: Any
    interrupted: bool
    waiting: int

    @property
    def pushed(self) -> int:
        return max(0, self.queued - self.waiting)


def push_all_stock(
    dispatcher: Any,
    *,
    store_name: str | None,
    every_sku: bool,
    at: datetime,
    progress: NullProgress | None = None,
    on_interrupt: Callable[[], None] | None = None,
    poll: float = 0.25,
) -> StockSync:
    """Queue every bound SKU's stock for the store (``every_sku``: also SKUs without a
    stock row) and deliver everything due now; see the module docstring."""
    from engine.runtime import outbox

    progress = progress or NullProgress()
    sessions = dispatcher.session_factory
    with sessions.begin() as session:
        store_id = get_store_row(session, store_name).id
        queued = outbox.enqueue_stock_sync(session, store_id=store_id, every_sku=every_sku, at=at)

    def waiting() -> int:
        with sessions() as s:
            return inventory.stock_pushes_waiting(s, store_id)

    stop = threading.Event()
    interrupted = threading.Event()
    idle = threading.Thread(
        target=_stop_when_idle, args=(sessions, stop, poll), name="sync-stock-idle", daemon=True
    )

    def first_ctrl_c_stops() -> None:
        interrupted.set()
        stop.set()
        if on_interrupt is not None:
            on_interrupt()

    with first_ctrl_c(first_ctrl_c_stops), Watcher(progress, STREAM, queued, waiting):
        idle.start()
        try:
            stats = dispatcher.run_forever(stop, idle_sleep=min(poll, 0.1))
        finally:
            stop.set()
            idle.join(timeout=5)
    return StockSync(queued, stats, interrupted.is_set(), waiting())


def _due_now(session: Any) -> int:
    """Outbox rows the dispatcher could take now or has in hand (any kind)."""
    now = utcnow()
    return int(
        session.scalar(
            select(func.count()).where(
                or_(
                    and_(OutboxRow.state == "pending", OutboxRow.next_attempt_at <= now),
                    OutboxRow.state == "leased",
                )
            )
        )
        or 0
    )


def _stop_when_idle(sessions: Any, stop: threading.Event, poll: float) -> None:
    """Set ``stop`` once nothing is due now (``run_once``'s end); also on a failed poll."""
    while not stop.wait(poll):
        try:
            with sessions() as s:
                if _due_now(s) == 0:
                    stop.set()
        except Exception:  # noqa: BLE001 - the database went away: end the run
            stop.set()
