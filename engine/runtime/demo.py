"""``omsflow demo``: the whole integration end to end, with nothing but the install.

A sandbox PrestaShop store starts in this process on a free loopback port, the OMS lives in
a temporary SQLite file (or ``--keep DIR``), and every step goes through the same code as
production: the connect probe, the catalogue sync and the 90-day order backfill (progress
bars), operator releases, SIGNED WMS events over HTTP to the real receiver, the outbox
dispatcher (statuses, AWB + tracking numbers, stock), the status sync (Delivered ->
Complete; a late Canceled refused and flagged), a stock change read back from the store.
It ends with a summary table and the path of the lifecycle diagram it wrote.

``run_demo(...)`` returns a ``DemoResult`` and raises ``DemoFailed`` (one line) when a step
did not do what it should; the CLI turns that into a non-zero exit.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import OmsflowError

from . import service
from .db import session as dbsession
from .db import stores
from .db.tables import InventoryRow, OrderRow, OutboxRow, ProductRow
from .settings import Secret, Settings
from .specs import Bundle, load_bundle, render_graph

STORE_NAME = "demo-shop"


class DemoFailed(OmsflowError):
    """A demo step did not have the effect it should have had."""


@dataclass
class DemoResult:
    folder: Path
    database_url: str
    diagram: Path
    seconds: float
    orders_by_state: dict[str, int]
    effects_delivered: dict[str, int]
    store_requests: int
    steps: list[str] = field(default_factory=list)
    tracking: dict[str, str] = field(default_factory=dict)
    stock: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "database": self.database_url,
            "diagram": str(self.diagram),
            "seconds": round(self.seconds, 2),
            "orders_by_state": self.orders_by_state,
            "effects_delivered": self.effects_delivered,
            "store_requests": self.store_requests,
            "tracking": self.tracking,
            "stock": self.stock,
            "steps": self.steps,
        }


Say = Callable[[str], None]


def _now() -> datetime:
    return datetime.now(UTC)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DemoFailed(f"demo: {message}")


def run_demo(
    *,
    products: int = 300,
    orders: int = 200,
    keep: Path | None = None,
    say: Say = print,
    progress: Any = None,
    seed: int = 7,
) -> DemoResult:
    """Run the demo (see the module docstring); ``say`` prints one step line."""
    from sandbox.server import start_sandbox

    from .logging import register_secret
    from .outbox import AdapterPool, Dispatcher
    from .sync import NullProgress, run_initial_sync, sync_orders

    started = time.perf_counter()
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="omsflow-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "omsflow.db"
    if keep and db_file.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db_file}"
    wms_secret = Secret(secrets.token_urlsafe(24))
    register_secret(wms_secret.reveal())
    bundle = load_bundle()
    steps: list[str] = []

    def step(text: str) -> None:
        steps.append(text)
        say(text)

    sandbox = start_sandbox(products=products, orders=orders, seed=seed, log_level="critical")
    register_secret(sandbox.key)
    engine, factory = dbsession.open_database(Settings(database_url=url, wms_secret=wms_secret))
    pool: Any = None
    dispatcher: Any = None
    receiver: Any = None
    try:
        step(f"sandbox PrestaShop store at {sandbox.url} ({products} products, {orders} orders)")
        step(f"OMS database: {db_file}")
        store = _connect(factory, bundle, sandbox.url, sandbox.key)
        step(
            f"connected {STORE_NAME!r}: key {store.key.masked()}, "
            f"{len(store.state_ids)} order states resolved"
        )

        catalog, backfill = run_initial_sync(
            factory, bundle, STORE_NAME, progress=progress or NullProgress()
        )
        with factory() as session:
            n_products = session.scalar(select(func.count()).select_from(ProductRow)) or 0
            n_orders = session.scalar(select(func.count()).select_from(OrderRow)) or 0
        _check(n_products > 0, "the catalogue sync imported no product")
        _check(n_orders > 0, "the order backfill imported no order")
        step(
            f"catalogue synced: {n_products} products/variations in {catalog.requests} requests; "
            f"{bundle.channel.schedules.backfill_days}-day backfill: {n_orders} orders "
            f"in {backfill.requests} requests"
        )

        receiver = _start_receiver(factory, bundle, wms_secret, store.id)
        pool = AdapterPool(factory, bundle.channel)
        dispatcher = Dispatcher(
            factory, bundle, owner="demo", adapters=pool, label_dir=folder / "labels"
        )
        dispatcher.drain(timeout=30)  # stock pushes of the imported reservations

        picks, packed = _release_and_pick(factory, bundle, receiver.url, wms_secret, step)
        stats = dispatcher.drain(timeout=30)
        step(
            f"dispatcher: {stats.delivered} effects delivered, {stats.followups} follow-ups, "
            f"{stats.dead} dead"
        )
        adapter = pool.adapter(store.id)
        tracking = _tracking(factory, adapter, store, picks, step)

        _deliver_one(factory, bundle, adapter, store, picks[0], sync_orders, step)
        _late_cancel(factory, bundle, adapter, store, packed, sync_orders, step)
        stock = _stock_change(factory, bundle, dispatcher, adapter, store, step)
        dispatcher.drain(timeout=30)

        diagram = folder / "lifecycle.md"
        mermaid = render_graph(bundle.machine, "mermaid", None) or ""
        diagram.write_text(
            f"# {bundle.machine.name}\n\n```mermaid\n{mermaid.rstrip()}\n```\n", encoding="utf-8"
        )
        with factory() as session:
            by_state = dict(
                session.execute(
                    select(OrderRow.state, func.count()).group_by(OrderRow.state)
                ).all()
            )
            delivered = dict(
                session.execute(
                    select(OutboxRow.kind, func.count())
                    .where(OutboxRow.state == "done", OutboxRow.delivered_at.is_not(None))
                    .group_by(OutboxRow.kind)
                ).all()
            )
        return DemoResult(
            folder=folder,
            database_url=url,
            diagram=diagram,
            seconds=time.perf_counter() - started,
            orders_by_state={k: int(v) for k, v in sorted(by_state.items())},
            effects_delivered={k: int(v) for k, v in sorted(delivered.items())},
            store_requests=int(sum(sandbox.state.counts.values())),
            steps=steps,
            tracking=tracking,
            stock=stock,
        )
    finally:
        if dispatcher is not None:
            dispatcher.close()
        if pool is not None:
            pool.close()
        if receiver is not None:
            receiver.stop()
        engine.dispose()
        sandbox.stop()


# --------------------------------------------------------------------------- steps


def _connect(
    factory: sessionmaker[Session], bundle: Bundle, url: str, key: str
) -> stores.StoreRecord:
    from .channels.prestashop.connect import probe

    report = probe(url, Secret(key), bundle.channel)
    _check(not report.missing_states, f"order states missing: {report.missing_states}")
    with factory.begin() as session:
        return stores.save_store(session, STORE_NAME, url, Secret(key), report.state_ids)


def _start_receiver(
    factory: sessionmaker[Session], bundle: Bundle, secret: Secret, store_id: int
) -> Any:
    from .wms.receiver import WmsReceiver
    from .wms.server import start_in_thread
    from .wms.webhook import create_wms_app

    app = create_wms_app(
        WmsReceiver(factory, bundle, store_id=store_id),
        secret,
        event_types=bundle.channel.fulfilment.wms_events,
    )
    return start_in_thread(app, "127.0.0.1", 0)


def _release_and_pick(
    factory: sessionmaker[Session], bundle: Bundle, wms_url: str, secret: Secret, step: Say
) -> tuple[list[OrderRow], OrderRow]:
    from .wms.client import send_event

    with factory() as session:
        new = list(
            session.scalars(
                select(OrderRow)
                .where(OrderRow.state == "New")
                .order_by(OrderRow.ordered_at.desc(), OrderRow.id)
                .limit(3)
            )
        )
    _check(len(new) == 3, f"need 3 orders in New after the backfill, found {len(new)}")
    for row in new:
        result = service.apply_inbound(
            factory,
            bundle,
            trigger="release",
            source="user",
            idempotency_key=f"demo:release:{row.id}",
            order_id=row.id,
            at=_now(),
        )
        _check(result.applied, f"release of {row.reference} was {result.outcome}")
    step(f"released for picking: {', '.join(r.reference for r in new)} (New -> RFP)")
    picks, packed = new[:2], new[2]
    for row in picks:
        status, body = send_event(wms_url, secret, "picked", row.reference)
        _check(status in (200, 202), f"WMS 'picked' for {row.reference} answered {status}: {body}")
    status, body = send_event(wms_url, secret, "packed", packed.reference)
    _check(status in (200, 202), f"WMS 'packed' for {packed.reference} answered {status}: {body}")
    step(
        f"signed WMS events over HTTP: picked {', '.join(r.reference for r in picks)} "
        f"(-> Ready_to_Ship), packed {packed.reference} (-> Packed)"
    )
    return picks, packed


def _tracking(
    factory: sessionmaker[Session],
    adapter: Any,
    store: stores.StoreRecord,
    picks: list[OrderRow],
    step: Say,
) -> dict[str, str]:
    out: dict[str, str] = {}
    state_names = {int(v): k for k, v in store.state_ids.items()}
    for row in picks:
        store_state = state_names.get(adapter.current_state(int(row.external_id or 0)), "?")
        carriers = adapter.order_carriers(int(row.external_id or 0))
        numbers = [c.tracking_number for c in carriers if c.tracking_number]
        _check(bool(numbers), f"no tracking number reached the store for {row.reference}")
        out[row.reference] = numbers[0]
        with factory() as session:
            state = session.scalar(select(OrderRow.state).where(OrderRow.id == row.id))
        step(
            f"store order {row.external_id} ({row.reference}): OMS {state}, store shows "
            f"{store_state}, tracking number {numbers[0]} (read back from the store)"
        )
    return out


def _deliver_one(
    factory: sessionmaker[Session],
    bundle: Bundle,
    adapter: Any,
    store: stores.StoreRecord,
    row: OrderRow,
    sync_orders: Any,
    step: Say,
) -> str:
    delivered_id = store.state_ids.get("Delivered")
    _check(delivered_id is not None, "the store has no 'Delivered' state")
    adapter.set_order_state(int(row.external_id or 0), int(delivered_id or 0))
    sync_orders(factory, bundle, STORE_NAME)
    with factory() as session:
        state = session.scalar(select(OrderRow.state).where(OrderRow.id == row.id))
    _check(state == "Complete", f"{row.reference} is {state} after Delivered in the store")
    step(f"seller set {row.reference} Delivered in the store; status sync -> Complete")
    return row.reference


def _late_cancel(
    factory: sessionmaker[Session],
    bundle: Bundle,
    adapter: Any,
    store: stores.StoreRecord,
    row: OrderRow,
    sync_orders: Any,
    step: Say,
) -> None:
    canceled_id = store.state_ids.get("Canceled")
    _check(canceled_id is not None, "the store has no 'Canceled' state")
    adapter.set_order_state(int(row.external_id or 0), int(canceled_id or 0))
    sync_orders(factory, bundle, STORE_NAME)
    with factory() as session:
        fresh = session.get(OrderRow, row.id)
        state = fresh.state if fresh else None
        flagged = bool(fresh and fresh.needs_attention)
        reason = (fresh.attention_reason if fresh else None) or ""
    _check(state == "Packed", f"late cancellation of {row.reference}: state is {state}")
    _check(flagged, f"late cancellation of {row.reference} was not flagged")
    step(
        f"buyer cancelled {row.reference} in the store after Packed: refused, order kept "
        f"Packed, flagged ({reason.splitlines()[0] if reason else 'needs attention'})"
    )


def _stock_change(
    factory: sessionmaker[Session],
    bundle: Bundle,
    dispatcher: Any,
    adapter: Any,
    store: stores.StoreRecord,
    step: Say,
) -> dict[str, Any]:
    with factory() as session:
        parents = set(
            session.scalars(select(ProductRow.parent_id).where(ProductRow.parent_id.is_not(None)))
        )
        candidates = session.execute(
            select(ProductRow, InventoryRow)
            .join(InventoryRow, InventoryRow.sku == ProductRow.sku)
            .where(ProductRow.parent_id.is_(None), ProductRow.deleted.is_(False))
            .order_by(ProductRow.id)
            .limit(50)
        ).all()
    pick = next(
        (
            (p, inv)
            for p, inv in candidates
            if p.id not in parents and _product_id(p, store) is not None
        ),
        None,
    )
    _check(pick is not None, "no simple product bound to the store to change stock of")
    product, inv = pick  # type: ignore[misc]
    target = inv.on_hand + 25
    service.set_stock(factory, bundle, product.sku, target, at=_now())
    t0 = time.perf_counter()
    dispatcher.drain(timeout=30)
    seconds = time.perf_counter() - t0
    pid = _product_id(product, store) or 0
    rows = [s for s in adapter.stock_availables(pid) if s.id_product_attribute == 0]
    with factory() as session:
        level = session.get(InventoryRow, product.sku)
        expected = max(0, (level.on_hand - level.reserved) if level else 0)
    _check(bool(rows), f"the store has no stock row for product {pid}")
    _check(
        rows[0].quantity == expected,
        f"stock of {product.sku}: store shows {rows[0].quantity}, OMS has {expected}",
    )
    step(
        f"stock of {product.sku}: on hand {inv.on_hand} -> {target}; the store now shows "
        f"{rows[0].quantity} available (pushed in {seconds:.2f} s)"
    )
    return {
        "sku": product.sku,
        "on_hand_before": inv.on_hand,
        "on_hand": target,
        "available": expected,
        "store_quantity": rows[0].quantity,
    }


def _product_id(row: ProductRow, store: stores.StoreRecord) -> int | None:
    ids = row.store_ids or {}
    raw = ids.get(str(store.id)) or ids.get(store.name)
    if not isinstance(raw, dict):
        return None
    value = raw.get("product_id", raw.get("product"))
    return int(value) if value else None


def summary_lines(result: DemoResult) -> list[str]:
    """The closing summary table (plain text, fixed width)."""
    lines = ["", "summary", "-------"]
    width = max(
        [len(k) for k in result.orders_by_state]
        + [len(k) for k in result.effects_delivered]
        + [24]
    )
    lines.append("orders per state")
    for state, n in result.orders_by_state.items():
        lines.append(f"  {state:<{width}} {n:>6}")
    lines.append(f"  {'total':<{width}} {sum(result.orders_by_state.values()):>6}")
    lines.append("effects delivered")
    for kind, n in result.effects_delivered.items():
        lines.append(f"  {kind:<{width}} {n:>6}")
    lines.append(f"  {'total':<{width}} {sum(result.effects_delivered.values()):>6}")
    lines.append(f"requests made to the store   {result.store_requests:>6}")
    lines.append(f"wall time                    {result.seconds:>6.1f} s")
    lines.append(f"lifecycle diagram: {result.diagram}")
    lines.append(f"database:          {result.database_url}")
    return lines
