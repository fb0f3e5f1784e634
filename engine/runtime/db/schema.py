"""The tables as SQLAlchemy Core ``Table`` objects on one ``MetaData``: the schema without
the ORM.

The ORM classes of ``tables.py`` (``*Row``) map onto these (``__table__ = ORDERS``), so
there is one definition of every column; the Core paths (the event path's prebuilt
statements, stock changes, a short CLI command) import only this module and never pay for
the ORM or its declarative mapping (``tests/cli/test_startup.py``). What a column means is
documented on its ``*Row`` attribute. All datetimes are UTC (``UtcDateTime``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back an aware UTC datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Money = Numeric(12, 2)
"""Prices and totals: two decimals, stored exactly."""


def utcnow() -> datetime:
    """The current time, aware, in UTC (the runtime's only clock for defaults)."""
    return datetime.now(UTC)


metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""Every table; alembic's target (``Base.metadata`` is this object)."""


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True)


def _when(name: str, *, nullable: bool = False, touch: bool = False) -> Column[datetime]:
    """A UTC datetime column; ``touch``: set on insert and on every update (``updated_at``)."""
    if nullable:
        return Column(name, UtcDateTime(), nullable=True)
    if touch:
        return Column(name, UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow)
    return Column(name, UtcDateTime(), nullable=False, default=utcnow)


def _json(name: str, empty: type[dict[str, object]] | type[list[object]]) -> Column[object]:
    return Column(name, JSON(), nullable=False, default=empty)


def _str(name: str, length: int, *, nullable: bool = False, **kw: object) -> Column[str]:
    return Column(name, String(length), nullable=nullable, **kw)  # type: ignore[arg-type]


def _int(name: str, *args: object, nullable: bool = False, **kw: object) -> Column[int]:
    return Column(name, Integer, *args, nullable=nullable, **kw)  # type: ignore[arg-type]


def _flag(name: str, default: bool) -> Column[bool]:
    return Column(name, Boolean, nullable=False, default=default)


# --------------------------------------------------------------------------- stores

STORES = Table(
    "stores",
    metadata,
    _id(),
    _str("name", 100, unique=True),
    _str("channel", 50, default="prestashop"),
    _str("url", 500),
    _str("api_key", 200),
    _json("state_ids", dict),
    _json("facts", dict),
    _when("created_at"),
    _when("updated_at", touch=True),
)

BINDINGS = Table(
    "bindings",
    metadata,
    _id(),
    _int("store_id", ForeignKey("stores.id", ondelete="CASCADE")),
    _str("kind", 50),
    _str("external_id", 100),
    _str("internal_id", 100),
    _when("updated_at", touch=True),
    UniqueConstraint("store_id", "kind", "external_id"),
    Index("ix_bindings_internal", "store_id", "kind", "internal_id"),
)

# --------------------------------------------------------------------------- catalogue

CATEGORIES = Table(
    "categories",
    metadata,
    _id(),
    _str("name", 255),
    _int("parent_id", ForeignKey("categories.id"), nullable=True),
    _flag("active", True),
    _when("updated_at", touch=True),
)

ATTRIBUTE_GROUPS = Table(
    "attribute_groups",
    metadata,
    _id(),
    _str("name", 255),
    _when("updated_at", touch=True),
)

ATTRIBUTE_VALUES = Table(
    "attribute_values",
    metadata,
    _id(),
    _int("group_id", ForeignKey("attribute_groups.id")),
    _str("name", 255),
    _when("updated_at", touch=True),
)

BRANDS = Table(
    "brands",
    metadata,
    _id(),
    _str("name", 255),
    _when("updated_at", touch=True),
)

PRODUCTS = Table(
    "products",
    metadata,
    _id(),
    _str("sku", 64, unique=True),
    _str("name", 255),
    _int("parent_id", ForeignKey("products.id"), nullable=True, index=True),
    Column("price", Money, nullable=True),
    Column("retail_selling_price", Money, nullable=True),
    Column("selling_price", Money, nullable=True),
    _flag("active", True),
    _flag("deleted", False),
    _str("image_url", 1000, nullable=True),
    _int("brand_id", ForeignKey("brands.id"), nullable=True),
    _json("category_ids", list),
    _json("attribute_value_ids", list),
    _json("store_ids", dict),
    _json("extra", dict),
    _when("created_at"),
    _when("updated_at", touch=True),
)

INVENTORY = Table(
    "inventory",
    metadata,
    _str("sku", 64, primary_key=True),
    _int("on_hand", default=0),
    _int("reserved", default=0),
    _when("updated_at", touch=True),
)

# --------------------------------------------------------------------------- orders

ORDERS = Table(
    "orders",
    metadata,
    _id(),
    _str("reference", 64, index=True),
    _int("store_id", ForeignKey("stores.id"), nullable=True),
    _str("external_id", 64, nullable=True),
    _str("state", 64),
    _int("version"),
    Column("ordered_at", UtcDateTime(), nullable=False),
    _str("currency", 3, nullable=True),
    Column("total_paid", Money, nullable=True),
    Column("total_products", Money, nullable=True),
    Column("total_shipping", Money, nullable=True),
    _str("payment", 255, nullable=True),
    _str("customer_name", 255, nullable=True),
    _str("customer_email", 255, nullable=True),
    _json("shipping_address", dict),
    _json("invoice_address", dict),
    _str("ship_country", 2, nullable=True, index=True),
    _str("carrier", 128, nullable=True, index=True),
    _str("customer_phone", 64, nullable=True),
    Column("total_discounts", Money, nullable=True),
    Column("total_wrapping", Money, nullable=True),
    Column("total_paid_tax_excl", Money, nullable=True),
    _str("channel_state", 128, nullable=True),
    _int("channel_state_id", nullable=True),
    _when("channel_updated_at", nullable=True),
    _flag("needs_attention", False),
    Column("attention_reason", Text, nullable=True),
    _str("attention_state", 64, nullable=True),
    _str("spec_version", 32, nullable=True),
    _json("facts", dict),
    _json("extra", dict),
    _when("created_at"),
    _when("updated_at", touch=True),
    UniqueConstraint("store_id", "external_id"),
    Index("ix_orders_state_ordered_at", "state", "ordered_at"),
)

ORDER_LINES = Table(
    "order_lines",
    metadata,
    _id(),
    _int("order_id", ForeignKey("orders.id", ondelete="CASCADE"), index=True),
    _str("sku", 64, index=True),
    _str("name", 255, nullable=True),
    _int("quantity"),
    _int("reserved", default=0),
    _int("consumed", default=0),
    Column("unit_price", Money, nullable=True),
    _str("external_id", 64, nullable=True),
    _json("extra", dict),
)

# --------------------------------------------------------------------------- events and audit

INBOUND_EVENTS = Table(
    "inbound_events",
    metadata,
    _id(),
    _str("idempotency_key", 255, unique=True),
    _str("source", 20),
    _str("trigger", 64),
    _int("order_id", ForeignKey("orders.id"), nullable=True, index=True),
    Column("payload", JSON(), nullable=True),
    _when("received_at"),
    _str("outcome", 20),
)

AUDIT = Table(
    "audit",
    metadata,
    _id(),
    _int("order_id", ForeignKey("orders.id", ondelete="CASCADE"), index=True),
    _int("event_id", ForeignKey("inbound_events.id"), nullable=True),
    _str("trigger", 64),
    _str("from_state", 64),
    _str("to_state", 64),
    Column("applied", Boolean, nullable=False),
    _str("source", 20),
    _json("effects", list),
    _json("blockers", list),
    Column("at", UtcDateTime(), nullable=False),
    _str("spec_version", 32, nullable=True),
)

# --------------------------------------------------------------------------- outbox

OUTBOX = Table(
    "outbox",
    metadata,
    _id(),
    _str("kind", 64),
    _int("order_id", ForeignKey("orders.id"), nullable=True, index=True),
    _int("store_id", ForeignKey("stores.id"), nullable=True),
    _json("payload", dict),
    _str("dedup_key", 255, nullable=True),
    _str("then_trigger", 64, nullable=True),
    _str("state", 10, default="pending"),
    _int("attempts", default=0),
    _when("next_attempt_at"),
    Column("last_error", Text, nullable=True),
    _when("leased_until", nullable=True),
    _str("lease_owner", 100, nullable=True),
    _when("created_at"),
    _when("delivered_at", nullable=True),
    _str("spec_version", 32, nullable=True),
    Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
)

PENDING = "state = 'pending'"
OUTBOX_PENDING_DEDUP = Index(
    "uq_outbox_pending_dedup_key",
    OUTBOX.c.dedup_key,
    unique=True,
    sqlite_where=text(PENDING),
)
"""``dedup_key`` is unique among pending rows. Its PostgreSQL predicate is added by
``with_postgresql_options``: passed here, it would import SQLAlchemy's PostgreSQL dialect
(dialect options are checked against the dialect) on every command, SQLite ones too."""


def with_postgresql_options() -> None:
    """Give the tables their PostgreSQL-only options (the pending-dedup index's
    ``postgresql_where``); called when PostgreSQL may be used: by ``session.make_engine``
    for a PostgreSQL URL and by ``base`` (the ORM, alembic's metadata). Idempotent."""
    OUTBOX_PENDING_DEDUP.dialect_kwargs["postgresql_where"] = text(PENDING)


SPEC_VERSIONS = Table(
    "spec_versions",
    metadata,
    _str("version", 32, primary_key=True),
    _str("label", 64, nullable=True),
    _str("machine_file", 1000),
    Column("machine_text", Text, nullable=False),
    _str("channel_file", 1000),
    Column("channel_text", Text, nullable=False),
    _when("first_seen"),
)

# --------------------------------------------------------------------------- sync

CATALOG_CONFLICTS = Table(
    "catalog_conflicts",
    metadata,
    _id(),
    _int("store_id", ForeignKey("stores.id", ondelete="CASCADE")),
    _str("kind", 50),
    _str("key", 255),
    _json("units", list),
    Column("detail", Text, nullable=False, default=""),
    _when("first_seen"),
    _when("last_seen"),
    UniqueConstraint("store_id", "kind", "key"),
)

SYNC_CURSORS = Table(
    "sync_cursors",
    metadata,
    _id(),
    _int("store_id", ForeignKey("stores.id", ondelete="CASCADE")),
    _str("stream", 64),
    _str("value", 255, nullable=True),
    _when("updated_at", touch=True),
    UniqueConstraint("store_id", "stream"),
)

SYNC_RUNS = Table(
    "sync_runs",
    metadata,
    _id(),
    _int("store_id", ForeignKey("stores.id", ondelete="CASCADE"), index=True),
    _str("stream", 64),
    _when("started_at"),
    _when("finished_at", nullable=True),
    _json("counts", dict),
    _str("status", 20, default="running"),
    Column("error", Text, nullable=True),
)

SCHEDULES = Table(
    "schedules",
    metadata,
    _id(),
    _int("store_id", ForeignKey("stores.id", ondelete="CASCADE")),
    _str("job", 64),
    Column("next_run_at", UtcDateTime(), nullable=False),
    _when("last_run_at", nullable=True),
    UniqueConstraint("store_id", "job"),
)

# --------------------------------------------------------------------------- store budgets

RATE_BUDGETS = Table(
    "rate_budgets",
    metadata,
    _str("store", 1000, primary_key=True),
    Column("starts", Text, nullable=False, default=""),
)

CONCURRENCY_SLOTS = Table(
    "concurrency_slots",
    metadata,
    _str("store", 1000, primary_key=True),
    _int("slot", primary_key=True, autoincrement=False),
    _str("holder", 200, nullable=True),
    Column("expires_at", Float, nullable=True),
)

# --------------------------------------------------------------------------- fulfilment

SHIPMENTS = Table(
    "shipments",
    metadata,
    _id(),
    _int("order_id", ForeignKey("orders.id", ondelete="CASCADE"), index=True),
    _str("awb", 64, unique=True),
    _str("tracking_id", 64, nullable=True),
    _str("carrier", 128, nullable=True),
    _str("label_path", 1000, nullable=True),
    _when("created_at"),
)
