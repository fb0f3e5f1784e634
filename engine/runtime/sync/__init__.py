"""Store -> OMS syncs: the catalogue (``catalog.sync_catalog``), orders
(``orders.sync_orders``), and ``run_initial_sync`` (both, as ``store connect`` runs them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .catalog import sync_catalog
from .common import SyncReport
from .orders import parse_since, sync_orders
from .progress import NullProgress, Progress, terminal_progress

__all__ = [
    "NullProgress",
    "Progress",
    "SyncReport",
    "parse_since",
    "run_initial_sync",
    "sync_catalog",
    "sync_orders",
    "terminal_progress",
]


def run_initial_sync(
    session_factory: sessionmaker[Session],
    bundle: Any,
    store_name: str,
    *,
    progress: Progress | None = None,
) -> tuple[SyncReport, SyncReport]:
    """After ``store connect``: the catalogue sync, then the order backfill
    (``schedules.backfill_days``). Returns both reports."""
    catalog = sync_catalog(session_factory, bundle, store_name, progress=progress)
    orders = sync_orders(session_factory, bundle, store_name, progress=progress)
    return catalog, orders
