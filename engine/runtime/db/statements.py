"""The event path's SQL: SQLAlchemy Core statements built once per dialect.

``service.apply_inbound`` runs one event in a handful of round trips through these (no ORM
unit of work, no identity map): one read of the order with its lines and their stock, the
inbound event row (``ON CONFLICT DO NOTHING`` on the idempotency key: a replay writes
nothing), the state write with the optimistic version check, the audit row, the outbox
rows, and — only when a local effect moves stock — the inventory rows, the lines and the
coalesced ``push_stock`` upserts. Statements are built once (bind parameters, no literal
values), so each execution skips construction and reuses SQLAlchemy's compiled form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert, Select, Update

from .tables import (
    AuditRow,
    InboundEventRow,
    InventoryRow,
    OrderLineRow,
    OrderRow,
    OutboxRow,
    SpecVersionRow,
    StoreRow,
)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):  # pragma: no cover - every *Row maps one table
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


ORDERS = _table(OrderRow)
LINES = _table(OrderLineRow)
INVENTORY = _table(InventoryRow)
EVENTS = _table(InboundEventRow)
AUDIT = _table(AuditRow)
OUTBOX = _table(OutboxRow)
STORES = _table(StoreRow)
SPEC_VERSIONS = _table(SpecVersionRow)


@dataclass(frozen=True)
class EventStatements:
    """One dialect's statements (see the module docstring)."""

    read_by_id: Select[Any]
    """Order + lines + stock, one row per line (one row with NULL line columns if none)."""
    read_by_reference: Select[Any]
    seen: Select[Any]
    """The inbound event row of an idempotency key, if any."""
    by_external_id: Select[Any]
    """id, reference, state of a store's order by its external id."""
    read_stock: Select[Any]
    insert_order: Insert
    insert_lines: Insert
    insert_new_event: Insert
    """A new order's event row (its key was checked absent: a race fails on the key)."""
    read_by_reference_in_store: Select[Any]
    insert_event: Insert
    """Returns the new id, or no row when the idempotency key exists (a replay)."""
    update_applied: Update
    """State, version and the spec version (``b_spec``) the order moved under."""
    update_applied_clear: Update
    """``update_applied`` that also clears the attention flag (the order moved on)."""
    update_refused: Update
    update_attention: Update
    insert_audit: Insert
    insert_outbox: Insert
    create_inventory: Insert
    lock_inventory: Select[Any]
    """``FOR UPDATE`` on PostgreSQL, in SKU order (no deadlock between two events)."""
    update_inventory: Update
    update_line: Update
    store_ids: Select[Any]
    push_stock: Insert
    """Upsert of the pending ``push_stock`` row of a dedup key (latest value wins)."""
    read_spec: Select[Any]
    """A recorded spec version's lifecycle text and file (the in-flight rule)."""


_BUILT: dict[str, EventStatements] = {}


def event_statements(conn: Connection) -> EventStatements:
    """The statements for ``conn``'s dialect (built on first use)."""
    name = conn.dialect.name
    built = _BUILT.get(name)
    if built is None:
        built = _BUILT[name] = _build(name)
    return built


def _build(dialect: str) -> EventStatements:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    o, ln, inv = ORDERS, LINES, INVENTORY
    read = (
        select(
            o.c.id,
            o.c.reference,
            o.c.store_id,
            o.c.state,
            o.c.version,
            o.c.facts,
            ln.c.id.label("line_id"),
            ln.c.sku,
            ln.c.quantity,
            ln.c.reserved.label("line_reserved"),
            ln.c.consumed,
            inv.c.on_hand,
            inv.c.reserved.label("stock_reserved"),
            o.c.needs_attention,
            o.c.attention_reason,
            o.c.attention_state,
            o.c.spec_version,
        )
        .select_from(
            o.outerjoin(ln, ln.c.order_id == o.c.id).outerjoin(inv, inv.c.sku == ln.c.sku)
        )
        .order_by(o.c.id, ln.c.id)
    )
    event = (
        insert(EVENTS)
        .on_conflict_do_nothing(index_elements=[EVENTS.c.idempotency_key])
        .returning(EVENTS.c.id)
    )
    versioned = (o.c.id == bindparam("b_id"), o.c.version == bindparam("b_version"))
    push = insert(OUTBOX)
    push = push.on_conflict_do_update(
        index_elements=[OUTBOX.c.dedup_key],
        index_where=text("state = 'pending'"),
        set_={"payload": push.excluded.payload, "kind": push.excluded.kind},
    )
    return EventStatements(
        read_by_id=read.where(o.c.id == bindparam("b_id")),
        read_by_reference=read.where(o.c.reference == bindparam("b_ref")),
        read_by_reference_in_store=read.where(
            o.c.reference == bindparam("b_ref"), o.c.store_id == bindparam("b_store")
        ),
        seen=select(EVENTS.c.id).where(EVENTS.c.idempotency_key == bindparam("b_key")),
        by_external_id=select(o.c.id, o.c.reference, o.c.state).where(
            o.c.store_id == bindparam("b_store"), o.c.external_id == bindparam("b_ext")
        ),
        read_stock=select(inv.c.sku, inv.c.on_hand, inv.c.reserved).where(
            inv.c.sku.in_(bindparam("b_skus", expanding=True))
        ),
        insert_order=o.insert().returning(o.c.id),
        insert_lines=ln.insert(),
        insert_new_event=EVENTS.insert().returning(EVENTS.c.id),
        insert_event=event,
        update_applied=o.update()
        .where(*versioned)
        .values(
            state=bindparam("b_state"),
            version=bindparam("b_next"),
            updated_at=bindparam("b_at"),
            spec_version=bindparam("b_spec"),
        ),
        update_applied_clear=o.update()
        .where(*versioned)
        .values(
            state=bindparam("b_state"),
            version=bindparam("b_next"),
            updated_at=bindparam("b_at"),
            spec_version=bindparam("b_spec"),
            needs_attention=False,
            attention_reason=None,
            attention_state=None,
        ),
        update_refused=o.update()
        .where(*versioned)
        .values(version=bindparam("b_next"), updated_at=bindparam("b_at")),
        update_attention=o.update()
        .where(*versioned)
        .values(
            version=bindparam("b_next"),
            updated_at=bindparam("b_at"),
            needs_attention=True,
            attention_reason=bindparam("b_reason"),
            attention_state=bindparam("b_flag_state"),
        ),
        insert_audit=AUDIT.insert(),
        insert_outbox=OUTBOX.insert().returning(OUTBOX.c.id),
        create_inventory=insert(inv).on_conflict_do_nothing(index_elements=[inv.c.sku]),
        lock_inventory=select(inv.c.sku, inv.c.on_hand, inv.c.reserved)
        .where(inv.c.sku.in_(bindparam("b_skus", expanding=True)))
        .order_by(inv.c.sku)
        .with_for_update(),
        update_inventory=inv.update()
        .where(inv.c.sku == bindparam("b_sku"))
        .values(
            on_hand=bindparam("b_on_hand"),
            reserved=bindparam("b_reserved"),
            updated_at=bindparam("b_at"),
        ),
        update_line=ln.update()
        .where(ln.c.id == bindparam("b_id"))
        .values(reserved=bindparam("b_reserved"), consumed=bindparam("b_consumed")),
        store_ids=select(STORES.c.id).order_by(STORES.c.id),
        push_stock=push,
        read_spec=select(SPEC_VERSIONS.c.machine_text, SPEC_VERSIONS.c.machine_file).where(
            SPEC_VERSIONS.c.version == bindparam("b_version")
        ),
    )
