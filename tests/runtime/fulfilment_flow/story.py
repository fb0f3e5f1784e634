"""The fulfilment world of the story tests, all real and on loopback: a sandbox store
(HTTP), the OMS database (SQLite or PostgreSQL) connected to it and synced (catalogue and
orders), the WMS receiver wired to the database (uvicorn), the outbox dispatcher, and the
warehouse's endpoint (``wms_endpoint``, verifying our signature)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import service
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.ratelimit import RetryPolicy
from engine.runtime.db.tables import AuditRow, OrderRow, OutboxRow, ProductRow, ShipmentRow
from engine.runtime.outbox import AdapterPool, Dispatcher, DispatchStats
from engine.runtime.service import ApplyResult
from engine.runtime.specs import Bundle
from engine.runtime.sync import sync_catalog, sync_orders
from engine.runtime.wms.receiver import WmsReceiver
from engine.runtime.wms.server import RunningServer, start_in_thread
from engine.runtime.wms.webhook import create_wms_app
from sandbox.server import SandboxServer, start_sandbox
from tests.runtime.sync.support import connected, small_adapter

from .conftest import SECRET
from .wms_endpoint import WmsEndpoint, wms_endpoint

SEED = 2  # 30 generated orders of which 11 are paid and imported New
STORE = "main"


@dataclass
class World:
    shop: SandboxServer
    sessions: sessionmaker[Session]
    bundle: Bundle
    receiver: RunningServer
    wms: WmsEndpoint
    labels: Path
    adapter: PrestaShopAdapter
    """The store's side of the story (marking Delivered, Canceled) over HTTP."""

    # ------------------------------------------------------------------ OMS side

    def sync(self) -> dict[str, int]:
        report = sync_orders(
            self.sessions, self.bundle, STORE, adapter=self.adapter, now=datetime.now(UTC)
        )
        return dict(report.counts)

    def dispatch(self, *, drain: bool = True) -> DispatchStats:
        environ = {"OMSFLOW_WMS_URL": self.wms.url, "OMSFLOW_WMS_SECRET": SECRET.reveal()}
        retry = RetryPolicy(attempts=2, backoff_seconds=0.01, max_backoff_seconds=0.05)
        with (
            AdapterPool(
                self.sessions, self.bundle.channel, rate_limit=None, timeout=2.0, retry=retry
            ) as pool,
            Dispatcher(
                self.sessions,
                self.bundle,
                owner="story",
                adapters=pool,
                label_dir=self.labels,
                environ=environ,
            ) as dispatcher,
        ):
            return dispatcher.drain(timeout=30) if drain else dispatcher.run_once()

    def fire(self, external_id: int, trigger: str, *, source: Any = "user") -> ApplyResult:
        return service.apply_inbound(
            self.sessions,
            self.bundle,
            trigger=trigger,
            source=source,
            idempotency_key=f"test:{external_id}:{trigger}",
            at=datetime.now(UTC),
            reference=self.order(external_id).reference,
        )

    def order(self, external_id: int) -> OrderRow:
        with self.sessions() as s:
            row = s.scalars(select(OrderRow).where(OrderRow.external_id == str(external_id))).one()
            _ = row.lines
            s.expunge(row)
            return row

    def orders_in(self, state: str) -> list[int]:
        with self.sessions() as s:
            return sorted(
                int(ext)
                for ext in s.scalars(select(OrderRow.external_id).where(OrderRow.state == state))
                if ext
            )

    def shipment(self, external_id: int) -> ShipmentRow:
        order_id = self.order(external_id).id
        with self.sessions() as s:
            row = s.scalars(select(ShipmentRow).where(ShipmentRow.order_id == order_id)).one()
            s.expunge(row)
            return row

    def audit(self, external_id: int) -> list[tuple[str, str, str, bool, str]]:
        order_id = self.order(external_id).id
        with self.sessions() as s:
            return [
                (a.trigger, a.from_state, a.to_state, a.applied, a.source)
                for a in s.scalars(
                    select(AuditRow).where(AuditRow.order_id == order_id).order_by(AuditRow.id)
                )
            ]

    def outbox(self, external_id: int) -> list[tuple[str, str]]:
        order_id = self.order(external_id).id
        with self.sessions() as s:
            return [
                (r.kind, r.state)
                for r in s.scalars(
                    select(OutboxRow).where(OutboxRow.order_id == order_id).order_by(OutboxRow.id)
                )
            ]

    # ------------------------------------------------------------------ store side

    def store_state(self, external_id: int) -> str:
        store = self.shop.store
        state_id = int(store.tables["orders"][external_id]["current_state"])
        for name in (
            "Payment accepted",
            "Processing in progress",
            "Shipped",
            "Delivered",
            "Canceled",
        ):
            if store.state_id(name) == state_id:
                return name
        return str(state_id)

    def store_tracking(self, external_id: int) -> list[str]:
        return [
            str(c["tracking_number"])
            for c in self.shop.store.records("order_carriers")
            if int(c["id_order"]) == external_id
        ]

    def store_stock(self, sku: str) -> int:
        """The store's quantity of the unit the OMS calls ``sku`` (found by the store ids
        the catalogue sync bound it to: SKUs are the OMS's names, not the store's)."""
        with self.sessions() as s:
            row = s.scalars(select(ProductRow).where(ProductRow.sku == sku)).one_or_none()
        if row is None:
            raise AssertionError(f"no product {sku} in the OMS")
        ids = next(iter((row.store_ids or {}).values()), None)
        if not isinstance(ids, dict) or not ids.get("product_id"):
            raise AssertionError(f"{sku} is bound to no store unit")
        return self.shop.store.stock_of(
            int(ids["product_id"]), int(ids.get("combination_id") or 0)
        )

    def history_posts(self) -> int:
        return int(self.shop.state.counts.get(("order_histories", "POST"), 0))

    def store_marks(self, external_id: int, name: str) -> None:
        """The merchant changes the order's status in the store's back office: one
        order_histories POST over HTTP."""
        self.adapter.set_order_state(external_id, self.shop.store.state_id(name))

    def set_faults(self, **switches: float) -> dict[str, Any]:
        """Switch the sandbox's faults at runtime over HTTP (``/__sandbox/faults``)."""
        import httpx

        response = httpx.post(
            self.shop.url + "/__sandbox/faults",
            json=switches,
            auth=(self.shop.key, ""),
            timeout=5,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@contextmanager
def world(db_url: str, bundle: Bundle, tmp: Path) -> Iterator[World]:
    """A synced OMS next to a sandbox store, the receiver and the WMS endpoint."""
    now = datetime.now(UTC).replace(microsecond=0)
    with (
        start_sandbox(products=12, orders=30, seed=SEED, now=now) as shop,
        connected(db_url, shop, bundle, name=STORE) as (_engine, sessions),
        wms_endpoint(SECRET) as wms,
        small_adapter(shop, bundle, page_size=50) as adapter,
    ):
        sync_catalog(sessions, bundle, STORE, adapter=adapter)
        sync_orders(sessions, bundle, STORE, adapter=adapter, now=now)
        app = create_wms_app(
            WmsReceiver(sessions, bundle),
            SECRET,
            event_types=bundle.channel.fulfilment.wms_events,
        )
        with start_in_thread(app) as receiver:
            yield World(shop, sessions, bundle, receiver, wms, tmp / "labels", adapter)
