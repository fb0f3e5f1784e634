"""The ORM tables (``*Row`` classes): stores, bindings, catalogue, stock, orders, events,
audit trail, outbox, sync bookkeeping, schedules and shipments.

Each class maps one Core table of ``schema.py`` (``__table__``), where the columns, keys
and indexes are defined once; this module adds what only the ORM needs (relationships,
the optimistic version column, ``InventoryRow.available``) and documents the columns. Code
that needs no ORM objects uses ``schema`` and does not import this module.

Rows are storage records, never domain values: the service turns them into
``engine.core.outcome.OrderSnapshot`` and back. All datetimes are UTC (``schema.UtcDateTime``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, relationship
from sqlalchemy.sql.elements import ColumnElement

from . import schema
from .base import Base

# --------------------------------------------------------------------------- stores


class StoreRow(Base):
    """A connected sales channel store. ``api_key`` holds the webservice key encrypted
    (``db/secrets.py``); read it through ``stores.get_store``, which wraps it in ``Secret``."""

    __table__ = schema.STORES

    id: Mapped[int]
    name: Mapped[str]
    channel: Mapped[str]
    url: Mapped[str]
    api_key: Mapped[str]
    state_ids: Mapped[dict[str, Any]]
    """OMS-side status name -> store status id, resolved at connect time."""
    facts: Mapped[dict[str, Any]]
    """What the store told us at connect (and each sync keeps fresh): ``timezone``
    (PS_TIMEZONE), ``languages`` ([{id, iso_code}]), ``default_language_id``, ``version``,
    ``shop`` (PS_SHOP_* address), ``state_keys`` (PS_OS_* -> id)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def __repr__(self) -> str:  # never show the key
        return f"StoreRow(id={self.id!r}, name={self.name!r}, url={self.url!r})"


class BindingRow(Base):
    """External id (in a store) <-> internal id (in the OMS), per store and kind (OCA binder)."""

    __table__ = schema.BINDINGS

    id: Mapped[int]
    store_id: Mapped[int]
    kind: Mapped[str]
    """e.g. product, combination, category, attribute_group, attribute_value, brand,
    order, order_state, stock_available."""
    external_id: Mapped[str]
    internal_id: Mapped[str]
    updated_at: Mapped[datetime]


# --------------------------------------------------------------------------- catalogue


class CategoryRow(Base):
    __table__ = schema.CATEGORIES

    id: Mapped[int]
    name: Mapped[str]
    parent_id: Mapped[int | None]
    active: Mapped[bool]
    updated_at: Mapped[datetime]


class AttributeGroupRow(Base):
    __table__ = schema.ATTRIBUTE_GROUPS

    id: Mapped[int]
    name: Mapped[str]
    updated_at: Mapped[datetime]


class AttributeValueRow(Base):
    __table__ = schema.ATTRIBUTE_VALUES

    id: Mapped[int]
    group_id: Mapped[int]
    name: Mapped[str]
    updated_at: Mapped[datetime]


class BrandRow(Base):
    __table__ = schema.BRANDS

    id: Mapped[int]
    name: Mapped[str]
    updated_at: Mapped[datetime]


class ProductRow(Base):
    """A product, or a variation (``parent_id`` set) of one. SKU is unique across both."""

    __table__ = schema.PRODUCTS

    id: Mapped[int]
    sku: Mapped[str]
    name: Mapped[str]
    parent_id: Mapped[int | None]
    price: Mapped[Decimal | None]
    retail_selling_price: Mapped[Decimal | None]
    selling_price: Mapped[Decimal | None]
    active: Mapped[bool]
    deleted: Mapped[bool]
    image_url: Mapped[str | None]
    brand_id: Mapped[int | None]
    category_ids: Mapped[list[Any]]
    attribute_value_ids: Mapped[list[Any]]
    store_ids: Mapped[dict[str, Any]]
    """Per store name: the store's ids, e.g. ``{"main": {"product": 12, "combination": 40}}``."""
    extra: Mapped[dict[str, Any]]
    """The store fields the channel spec keeps under ``product_in``/``combination_in``'s
    ``extra:`` (JSON)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    parent: Mapped[ProductRow | None] = relationship(
        remote_side=[schema.PRODUCTS.c.id], back_populates="children"
    )
    children: Mapped[list[ProductRow]] = relationship(back_populates="parent")


class InventoryRow(Base):
    """Stock per SKU. ``available = on_hand - reserved`` (pushed to stores floored at 0)."""

    __table__ = schema.INVENTORY

    sku: Mapped[str]
    on_hand: Mapped[int]
    reserved: Mapped[int]
    updated_at: Mapped[datetime]

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

    __table__ = schema.ORDERS

    id: Mapped[int]
    reference: Mapped[str]
    store_id: Mapped[int | None]
    external_id: Mapped[str | None]
    state: Mapped[str]
    version: Mapped[int]
    ordered_at: Mapped[datetime]
    currency: Mapped[str | None]
    total_paid: Mapped[Decimal | None]
    total_products: Mapped[Decimal | None]
    total_shipping: Mapped[Decimal | None]
    payment: Mapped[str | None]
    customer_name: Mapped[str | None]
    customer_email: Mapped[str | None]
    shipping_address: Mapped[dict[str, Any]]
    invoice_address: Mapped[dict[str, Any]]
    ship_country: Mapped[str | None]
    """The delivery address's country (ISO 3166-1 alpha-2), for ``orders list --country``."""
    carrier: Mapped[str | None]
    customer_phone: Mapped[str | None]
    total_discounts: Mapped[Decimal | None]
    total_wrapping: Mapped[Decimal | None]
    total_paid_tax_excl: Mapped[Decimal | None]
    channel_state: Mapped[str | None]
    """The store's status name as last seen (or pushed)."""
    channel_state_id: Mapped[int | None]
    channel_updated_at: Mapped[datetime | None]
    """The store's ``date_upd`` as last seen."""
    needs_attention: Mapped[bool]
    attention_reason: Mapped[str | None]
    attention_state: Mapped[str | None]
    spec_version: Mapped[str | None]
    """The spec version (``spec_versions.version``) the order was last moved under."""
    """The state a refused event flagged the order in: the flag clears when an applied
    transition takes the order out of it. NULL on a flagged order: raised by a dead effect,
    it stays until ``omsflow orders ack`` (``service.acknowledge_attention``)."""
    facts: Mapped[dict[str, Any]]
    """Extra guard facts (``OrderSnapshot.facts``), e.g. ``has_wms``."""
    extra: Mapped[dict[str, Any]]
    """The store fields the channel spec keeps under ``order_in``'s ``extra:`` (JSON)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    lines: Mapped[list[OrderLineRow]] = relationship(
        back_populates="order", order_by="OrderLineRow.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": schema.ORDERS.c.version}  # noqa: RUF012 - SQLAlchemy mapper config


LINE_FACTS = ("weight", "tax_rate", "ean13")
"""Fields of the OMS order line (unit weight in kg, tax rate in %, EAN-13) that
``order_lines`` has no column for: kept in the line's JSON (``extra``) under their model
names, as text (a column each would need a migration)."""


class OrderLineRow(Base):
    """One line: ``reserved`` units are held in ``inventory.reserved``; ``consumed`` left stock."""

    __table__ = schema.ORDER_LINES

    id: Mapped[int]
    order_id: Mapped[int]
    sku: Mapped[str]
    name: Mapped[str | None]
    quantity: Mapped[int]
    reserved: Mapped[int]
    consumed: Mapped[int]
    unit_price: Mapped[Decimal | None]
    external_id: Mapped[str | None]
    extra: Mapped[dict[str, Any]]
    """The store fields the channel spec keeps under ``order_line_in``'s ``extra:``, and the
    line's ``LINE_FACTS``."""

    order: Mapped[OrderRow] = relationship(back_populates="lines")


# --------------------------------------------------------------------------- events and audit


class InboundEventRow(Base):
    """Every inbound event, once: the unique ``idempotency_key`` makes replays harmless."""

    __table__ = schema.INBOUND_EVENTS

    id: Mapped[int]
    idempotency_key: Mapped[str]
    source: Mapped[str]
    trigger: Mapped[str]
    order_id: Mapped[int | None]
    payload: Mapped[dict[str, Any] | None]
    received_at: Mapped[datetime]
    outcome: Mapped[str]
    """``applied`` | ``refused``."""


class AuditRow(Base):
    """The audit trail: every applied *and* refused event, with its source."""

    __table__ = schema.AUDIT

    id: Mapped[int]
    order_id: Mapped[int]
    event_id: Mapped[int | None]
    trigger: Mapped[str]
    from_state: Mapped[str]
    to_state: Mapped[str]
    applied: Mapped[bool]
    source: Mapped[str]
    """``channel`` | ``wms`` | ``user`` | ``system``."""
    effects: Mapped[list[Any]]
    blockers: Mapped[list[Any]]
    """``[{"code", "message", "params"}]`` for refused events."""
    at: Mapped[datetime]
    spec_version: Mapped[str | None]
    """The spec version the event was applied (or refused) under."""


# --------------------------------------------------------------------------- outbox


class OutboxRow(Base):
    """An effect to deliver after commit. ``state``: pending | leased | done | dead.

    ``dedup_key`` is unique among *pending* rows: a later change of the same thing (e.g.
    ``stock:<store>:<sku>``) rewrites the pending row's payload instead of adding one.
    """

    __table__ = schema.OUTBOX

    id: Mapped[int]
    kind: Mapped[str]
    order_id: Mapped[int | None]
    store_id: Mapped[int | None]
    payload: Mapped[dict[str, Any]]
    dedup_key: Mapped[str | None]
    then_trigger: Mapped[str | None]
    state: Mapped[str]
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None]
    leased_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    spec_version: Mapped[str | None]
    """The spec version whose transition queued the effect (None: stock/price pushes)."""


class SpecVersionRow(Base):
    """A copy of every spec version the database has run: the lifecycle and channel files
    as they were, so any order's history can be explained with the spec that made it."""

    __table__ = schema.SPEC_VERSIONS

    version: Mapped[str]
    """Content hash of the lifecycle + channel files (``specs.spec_version``)."""
    label: Mapped[str | None]
    """The lifecycle's own ``version:`` label."""
    machine_file: Mapped[str]
    machine_text: Mapped[str]
    channel_file: Mapped[str]
    channel_text: Mapped[str]
    first_seen: Mapped[datetime]


# --------------------------------------------------------------------------- sync


class CatalogConflictRow(Base):
    """A catalogue problem the sync could not settle alone (e.g. two different store
    products carrying one reference), kept until the store no longer shows it."""

    __table__ = schema.CATALOG_CONFLICTS

    id: Mapped[int]
    store_id: Mapped[int]
    kind: Mapped[str]
    """e.g. ``duplicate_reference``."""
    key: Mapped[str]
    """What the conflict is about (the shared reference, a SKU)."""
    units: Mapped[list[Any]]
    """The store units involved: [{product_id, combination_id, sku}]."""
    detail: Mapped[str]
    """One line: what is wrong and what to do about it."""
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class SyncCursorRow(Base):
    """Where a sync stream stopped (e.g. the last ``date_upd`` seen), per store."""

    __table__ = schema.SYNC_CURSORS

    id: Mapped[int]
    store_id: Mapped[int]
    stream: Mapped[str]
    value: Mapped[str | None]
    updated_at: Mapped[datetime]


class SyncRunRow(Base):
    """History of sync runs: when, what stream, counts, and how it ended."""

    __table__ = schema.SYNC_RUNS

    id: Mapped[int]
    store_id: Mapped[int]
    stream: Mapped[str]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]]
    status: Mapped[str]
    """``running`` | ``ok`` | ``failed``."""
    error: Mapped[str | None]


class ScheduleRow(Base):
    """When the daemon runs each job of a store next."""

    __table__ = schema.SCHEDULES

    id: Mapped[int]
    store_id: Mapped[int]
    job: Mapped[str]
    next_run_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None]


# --------------------------------------------------------------------------- store budgets


class RateBudgetRow(Base):
    """A store's rate limit shared by every worker (``db/budget.py``): the start times of
    its last ``requests`` calls, epoch seconds, oldest first."""

    __table__ = schema.RATE_BUDGETS

    store: Mapped[str]
    """The store's API URL (``https://shop/api``)."""
    starts: Mapped[str]


class ConcurrencySlotRow(Base):
    """One of a store's ``max_concurrency`` call slots (``db/budget.py``), leased by a
    worker process (``holder``) until ``expires_at`` (epoch seconds)."""

    __table__ = schema.CONCURRENCY_SLOTS

    store: Mapped[str]
    slot: Mapped[int]
    holder: Mapped[str | None]
    expires_at: Mapped[float | None]


# --------------------------------------------------------------------------- fulfilment


class ShipmentRow(Base):
    """An order's shipment: AWB, tracking id, carrier and the label file."""

    __table__ = schema.SHIPMENTS

    id: Mapped[int]
    order_id: Mapped[int]
    awb: Mapped[str]
    tracking_id: Mapped[str | None]
    carrier: Mapped[str | None]
    label_path: Mapped[str | None]
    created_at: Mapped[datetime]
