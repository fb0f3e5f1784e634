"""The ORM tables (``*Row`` classes): stores, bindings, catalogue, stock, orders, events,
audit trail, outbox, sync bookkeeping, schedules and shipments.

Rows are storage records, never domain values: the service turns them into
``engine.core.outcome.OrderSnapshot`` and back. All datetimes are UTC (``base.UtcDateTime``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from .base import Base, utcnow

# --------------------------------------------------------------------------- stores


class StoreRow(Base):
    """A connected sales channel store. ``api_key`` holds the webservice key encrypted
    (``db/secrets.py``); read it through ``stores.get_store``, which wraps it in ``Secret``."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(50), default="prestashop")
    url: Mapped[str] = mapped_column(String(500))
    api_key: Mapped[str] = mapped_column(String(200))
    state_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """OMS-side status name -> store status id, resolved at connect time."""
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """What the store told us at connect (and each sync keeps fresh): ``timezone``
    (PS_TIMEZONE), ``languages`` ([{id, iso_code}]), ``default_language_id``, ``version``,
    ``shop`` (PS_SHOP_* address), ``state_keys`` (PS_OS_* -> id)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:  # never show the key
        return f"StoreRow(id={self.id!r}, name={self.name!r}, url={self.url!r})"


class BindingRow(Base):
    """External id (in a store) <-> internal id (in the OMS), per store and kind (OCA binder)."""

    __tablename__ = "bindings"
    __table_args__ = (
        UniqueConstraint("store_id", "kind", "external_id"),
        Index("ix_bindings_internal", "store_id", "kind", "internal_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(50))
    """e.g. product, combination, category, attribute_group, attribute_value, brand,
    order, order_state, stock_available."""
    external_id: Mapped[str] = mapped_column(String(100))
    internal_id: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --------------------------------------------------------------------------- catalogue


class CategoryRow(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AttributeGroupRow(Base):
    __tablename__ = "attribute_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AttributeValueRow(Base):
    __tablename__ = "attribute_values"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("attribute_groups.id"))
    name: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BrandRow(Base):
    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProductRow(Base):
    """A product, or a variation (``parent_id`` set) of one. SKU is unique across both."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    price: Mapped[Decimal | None]
    retail_selling_price: Mapped[Decimal | None]
    selling_price: Mapped[Decimal | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    image_url: Mapped[str | None] = mapped_column(String(1000))
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id"))
    category_ids: Mapped[list[Any]] = mapped_column(default=list)
    attribute_value_ids: Mapped[list[Any]] = mapped_column(default=list)
    store_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Per store name: the store's ids, e.g. ``{"main": {"product": 12, "combination": 40}}``."""
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The store fields the channel spec keeps under ``product_in``/``combination_in``'s
    ``extra:`` (JSON)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    parent: Mapped[ProductRow | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[ProductRow]] = relationship(back_populates="parent")


class InventoryRow(Base):
    """Stock per SKU. ``available = on_hand - reserved`` (pushed to stores floored at 0)."""

    __tablename__ = "inventory"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @hybrid_property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @available.inplace.expression
    @classmethod
    def _available_expression(cls) -> ColumnElement[int]:
        return cls.on_hand - cls.reserved


# --------------------------------------------------------------------------- orders


class OrderRow(Base):
    """An order and its lifecycle state. ``version`` is the optimistic lock: every UPDATE
    checks and bumps it (``version_id_col``); a mismatch becomes ``StaleOrder``."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_orders_state_ordered_at", "state", "ordered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    ordered_at: Mapped[datetime]
    currency: Mapped[str | None] = mapped_column(String(3))
    total_paid: Mapped[Decimal | None]
    total_products: Mapped[Decimal | None]
    total_shipping: Mapped[Decimal | None]
    payment: Mapped[str | None] = mapped_column(String(255))
    customer_name: Mapped[str | None] = mapped_column(String(255))
    customer_email: Mapped[str | None] = mapped_column(String(255))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(default=dict)
    invoice_address: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ship_country: Mapped[str | None] = mapped_column(String(2), index=True)
    """The delivery address's country (ISO 3166-1 alpha-2), for ``orders list --country``."""
    carrier: Mapped[str | None] = mapped_column(String(128), index=True)
    customer_phone: Mapped[str | None] = mapped_column(String(64))
    total_discounts: Mapped[Decimal | None]
    total_wrapping: Mapped[Decimal | None]
    total_paid_tax_excl: Mapped[Decimal | None]
    channel_state: Mapped[str | None] = mapped_column(String(128))
    """The store's status name as last seen (or pushed)."""
    channel_state_id: Mapped[int | None]
    channel_updated_at: Mapped[datetime | None]
    """The store's ``date_upd`` as last seen."""
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    attention_reason: Mapped[str | None] = mapped_column(Text)
    attention_state: Mapped[str | None] = mapped_column(String(64))
    spec_version: Mapped[str | None] = mapped_column(String(32))
    """The spec version (``spec_versions.version``) the order was last moved under."""
    """The state a refused event flagged the order in: the flag clears when an applied
    transition takes the order out of it. NULL on a flagged order: raised by a dead effect,
    it stays until ``omsflow orders ack`` (``service.acknowledge_attention``)."""
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Extra guard facts (``OrderSnapshot.facts``), e.g. ``has_wms``."""
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The store fields the channel spec keeps under ``order_in``'s ``extra:`` (JSON)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLineRow]] = relationship(
        back_populates="order", order_by="OrderLineRow.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class OrderLineRow(Base):
    """One line: ``reserved`` units are held in ``inventory.reserved``; ``consumed`` left stock."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    consumed: Mapped[int] = mapped_column(Integer, default=0)
    unit_price: Mapped[Decimal | None]
    external_id: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The store fields the channel spec keeps under ``order_line_in``'s ``extra:``."""

    order: Mapped[OrderRow] = relationship(back_populates="lines")


# --------------------------------------------------------------------------- events and audit


class InboundEventRow(Base):
    """Every inbound event, once: the unique ``idempotency_key`` makes replays harmless."""

    __tablename__ = "inbound_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(20))
    """``applied`` | ``refused``."""


class AuditRow(Base):
    """The audit trail: every applied *and* refused event, with its source."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_events.id"))
    trigger: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str] = mapped_column(String(64))
    to_state: Mapped[str] = mapped_column(String(64))
    applied: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(20))
    """``channel`` | ``wms`` | ``user`` | ``system``."""
    effects: Mapped[list[Any]] = mapped_column(default=list)
    blockers: Mapped[list[Any]] = mapped_column(default=list)
    """``[{"code", "message", "params"}]`` for refused events."""
    at: Mapped[datetime]
    spec_version: Mapped[str | None] = mapped_column(String(32))
    """The spec version the event was applied (or refused) under."""


# --------------------------------------------------------------------------- outbox


class OutboxRow(Base):
    """An effect to deliver after commit. ``state``: pending | leased | done | dead.

    ``dedup_key`` is unique among *pending* rows: a later change of the same thing (e.g.
    ``stock:<store>:<sku>``) rewrites the pending row's payload instead of adding one.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "uq_outbox_pending_dedup_key",
            "dedup_key",
            unique=True,
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedup_key: Mapped[str | None] = mapped_column(String(255))
    then_trigger: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    leased_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    spec_version: Mapped[str | None] = mapped_column(String(32))
    """The spec version whose transition queued the effect (None: stock/price pushes)."""


class SpecVersionRow(Base):
    """A copy of every spec version the database has run: the lifecycle and channel files
    as they were, so any order's history can be explained with the spec that made it."""

    __tablename__ = "spec_versions"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    """Content hash of the lifecycle + channel files (``specs.spec_version``)."""
    label: Mapped[str | None] = mapped_column(String(64))
    """The lifecycle's own ``version:`` label."""
    machine_file: Mapped[str] = mapped_column(String(1000))
    machine_text: Mapped[str] = mapped_column(Text)
    channel_file: Mapped[str] = mapped_column(String(1000))
    channel_text: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- sync


class CatalogConflictRow(Base):
    """A catalogue problem the sync could not settle alone (e.g. two different store
    products carrying one reference), kept until the store no longer shows it."""

    __tablename__ = "catalog_conflicts"
    __table_args__ = (UniqueConstraint("store_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(50))
    """e.g. ``duplicate_reference``."""
    key: Mapped[str] = mapped_column(String(255))
    """What the conflict is about (the shared reference, a SKU)."""
    units: Mapped[list[Any]] = mapped_column(default=list)
    """The store units involved: [{product_id, combination_id, sku}]."""
    detail: Mapped[str] = mapped_column(Text, default="")
    """One line: what is wrong and what to do about it."""
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class SyncCursorRow(Base):
    """Where a sync stream stopped (e.g. the last ``date_upd`` seen), per store."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("store_id", "stream"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncRunRow(Base):
    """History of sync runs: when, what stream, counts, and how it ended."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    stream: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="running")
    """``running`` | ``ok`` | ``failed``."""
    error: Mapped[str | None] = mapped_column(Text)


class ScheduleRow(Base):
    """When the daemon runs each job of a store next."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("store_id", "job"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    job: Mapped[str] = mapped_column(String(64))
    next_run_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None]


# --------------------------------------------------------------------------- fulfilment


class ShipmentRow(Base):
    """An order's shipment: AWB, tracking id, carrier and the label file."""

    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    awb: Mapped[str] = mapped_column(String(64), unique=True)
    tracking_id: Mapped[str | None] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(128))
    label_path: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
