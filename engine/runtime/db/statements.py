"""The event path's SQL: SQLAlchemy Core statements built once per dialect.

``apply.events.apply_on`` runs one event in a handful of round trips through these (no ORM
unit of work, no identity map): one read of the order with its lines and their stock, the
inbound event row (``ON CONFLICT DO NOTHING`` on the idempotency key: a replay writes
nothing), the state write with the optimistic version check, the audit row, the outbox
rows, and — only when a local effect moves stock — the inventory rows, the lines and the
coalesced ``push_stock`` upserts. Statements are built once (bind parameters, no literal
values) and run on the DBAPI cursor (``db.direct.run``). On PostgreSQL an event's inbound,
state, audit and outbox rows are one statement of data-modifying CTEs (``write_event``),
and so are a new order's rows (``write_import``): each statement is a round trip.
"""

# ruff: noqa: S608 - the SQL built here is table and column names of this module; values
# are always bind parameters

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Connection, Table, Text, bindparam, exists, select, text
from sqlalchemy.sql import Insert, Select, Update
from sqlalchemy.sql.elements import TextClause

from .schema import AUDIT, INVENTORY, ORDERS, OUTBOX, SPEC_VERSIONS, STORES
from .schema import INBOUND_EVENTS as EVENTS
from .schema import ORDER_LINES as LINES

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

__all__ = [
    "AUDIT",
    "EVENTS",
    "INVENTORY",
    "LINES",
    "ORDERS",
    "OUTBOX",
    "SPEC_VERSIONS",
    "STORES",
    "EventStatements",
    "event_statements",
]


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
    partials_on: Select[Any]
    """Ids of the Partial orders with a line of ``b_skus``, oldest ``ordered_at`` first."""
    newest_holding: Select[Any]
    """The newest order in ``b_states`` holding units of ``b_sku`` (not in ``b_tried``)."""
    references: Select[Any]
    """id, reference of the orders ``b_ids``."""
    set_on_hand: Update
    """A stock row's on hand (``b_on_hand``) and ``updated_at``."""


_BUILT: dict[str, EventStatements] = {}


def event_statements(conn: Connection) -> EventStatements:
    """The statements for ``conn``'s dialect (built on first use)."""
    name = conn.dialect.name
    built = _BUILT.get(name)
    if built is None:
        built = _BUILT[name] = _build(name)
    return built


def _build(dialect: str) -> EventStatements:
    # only the dialect in use is imported (PostgreSQL's pulls in asyncio for asyncpg)
    lang = importlib.import_module(
        "sqlalchemy.dialects.postgresql"
        if dialect == "postgresql"
        else "sqlalchemy.dialects.sqlite"
    )
    insert: Callable[[Table], postgresql.Insert | sqlite.Insert] = lang.insert
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
        partials_on=select(o.c.id)
        .where(
            o.c.state == "Partial",
            exists().where(
                ln.c.order_id == o.c.id, ln.c.sku.in_(bindparam("b_skus", expanding=True))
            ),
        )
        .order_by(o.c.ordered_at, o.c.id),
        newest_holding=select(o.c.id)
        .where(
            o.c.state.in_(bindparam("b_states", expanding=True)),
            o.c.id.not_in(bindparam("b_tried", expanding=True)),
            exists().where(
                ln.c.order_id == o.c.id, ln.c.sku == bindparam("b_sku"), ln.c.reserved > 0
            ),
        )
        .order_by(o.c.ordered_at.desc(), o.c.id.desc())
        .limit(1),
        references=select(o.c.id, o.c.reference).where(
            o.c.id.in_(bindparam("b_ids", expanding=True))
        ),
        set_on_hand=inv.update()
        .where(inv.c.sku == bindparam("b_sku"))
        .values(on_hand=bindparam("b_on_hand"), updated_at=bindparam("b_at")),
    )


EVENT_COLUMNS = (
    "idempotency_key",
    "source",
    "trigger",
    "order_id",
    "payload",
    "received_at",
    "outcome",
)
AUDIT_COLUMNS = (
    "order_id",
    "trigger",
    "from_state",
    "to_state",
    "applied",
    "source",
    "effects",
    "blockers",
    "at",
    "spec_version",
)
"""The audit row's columns but ``event_id`` (the event row's id, taken in the statement)."""
OUTBOX_COLUMNS = (
    "kind",
    "order_id",
    "store_id",
    "payload",
    "dedup_key",
    "then_trigger",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "spec_version",
)
_ORDER_SETS = {
    "applied": "state = :b_state, version = :b_next, updated_at = :b_at, spec_version = :b_spec",
    "applied_clear": "state = :b_state, version = :b_next, updated_at = :b_at, "
    "spec_version = :b_spec, needs_attention = false, attention_reason = NULL, "
    "attention_state = NULL",
    "refused": "version = :b_next, updated_at = :b_at",
    "attention": "version = :b_next, updated_at = :b_at, needs_attention = true, "
    "attention_reason = :b_reason, attention_state = :b_flag_state",
}
"""The order's state write of each kind (as ``update_applied`` … ``update_attention``)."""
_ORDER_BINDS = {
    "b_id": "id",
    "b_version": "version",
    "b_next": "version",
    "b_state": "state",
    "b_at": "updated_at",
    "b_spec": "spec_version",
    "b_reason": "attention_reason",
    "b_flag_state": "attention_state",
}


@lru_cache(maxsize=16)
def write_event(update: str) -> TextClause:
    """PostgreSQL: an event's writes in ONE statement (data-modifying CTEs): the order's
    row locked if it is still at ``b_version``, then, only if it is, the inbound event row
    (``e_*``; ``ON CONFLICT DO NOTHING``), then, only if that was new, the order's state
    write of kind ``update`` (``_ORDER_SETS``; ``b_*``), the audit row (``a_*``, with the
    event's id) and the outbox rows (``o_rows``: ``json_rows``; one INSERT, ids in that
    order). Returns one row: the orders at that version (0: stale, nothing written), the
    event id (NULL: seen before, nothing written), the outbox ids in order. The round trips
    of four to six statements become one, and the statement writes all or nothing by
    itself (it may run outside a transaction: ``direct.defer_begin``)."""
    w = _With()
    w.binds += [bindparam("b_id", type_=ORDERS.c.id.type)]
    w.binds += [bindparam("b_version", type_=ORDERS.c.version.type)]
    w.add("cur", "SELECT id FROM orders WHERE id = :b_id AND version = :b_version FOR UPDATE")
    w.add(
        "ev",
        _insert(
            "inbound_events",
            EVENT_COLUMNS,
            "SELECT " + w.params(EVENTS, "e_", EVENT_COLUMNS) + " FROM cur",
        )
        + " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    for b, c in _ORDER_BINDS.items():
        if b not in ("b_id", "b_version") and re.search(rf":{b}\b", _ORDER_SETS[update]):
            w.binds.append(bindparam(b, type_=ORDERS.c[c].type))
    w.add(
        "up",
        "UPDATE orders SET " + _ORDER_SETS[update] + " WHERE id = :b_id AND EXISTS "
        "(SELECT 1 FROM ev) RETURNING id",
    )
    same = {"trigger": "e_trigger", "source": "e_source", "at": "e_received_at"}
    w.add(
        "au",
        _insert(
            "audit",
            ("event_id", *AUDIT_COLUMNS),
            "SELECT ev.id, "
            + w.params(AUDIT, "a_", AUDIT_COLUMNS, same=same)
            + " FROM ev CROSS JOIN up",
        ),
    )
    w.add("ob", w.json_insert(OUTBOX, "outbox", OUTBOX_COLUMNS, "o_rows", "up"))
    return w.select(
        "(SELECT count(*) FROM cur), (SELECT id FROM ev), ARRAY(SELECT id FROM ob ORDER BY id)"
    )


@lru_cache(maxsize=16)
def write_import(order: tuple[str, ...], line: tuple[str, ...]) -> TextClause:
    """PostgreSQL: a new order's writes in ONE statement (data-modifying CTEs): the order
    row (``r_*``: the columns ``order``), its lines (``l_rows``: ``json_rows`` of the
    columns ``line`` but ``order_id``; one INSERT, ids in that order), its inbound event row
    (``e_*``), audit row (``a_*``) and outbox rows (``o_rows``), each taking the order's and
    the event's new ids. Returns one row: the order id, the outbox ids in order. A key seen
    meanwhile fails the statement on the unique key, as the plain inserts would."""
    w = _With()
    w.add(
        "o",
        _insert("orders", order, "VALUES (" + w.params(ORDERS, "r_", order) + ")")
        + " RETURNING id",
    )
    own = tuple(c for c in line if c != "order_id")
    w.add("l", w.json_insert(LINES, "order_lines", own, "l_rows", "o", ref="order_id"))
    event = tuple(c for c in EVENT_COLUMNS if c != "order_id")
    w.add(
        "e",
        _insert(
            "inbound_events",
            ("order_id", *event),
            "SELECT o.id, " + w.params(EVENTS, "e_", event) + " FROM o",
        )
        + " RETURNING id",
    )
    audit = tuple(c for c in AUDIT_COLUMNS if c != "order_id")
    same = {
        "trigger": "e_trigger",
        "source": "e_source",
        "at": "e_received_at",
        "to_state": "r_state",
        "spec_version": "r_spec_version",
    }
    w.add(
        "au",
        _insert(
            "audit",
            ("event_id", "order_id", *audit),
            "SELECT e.id, o.id, "
            + w.params(AUDIT, "a_", audit, same=same)
            + " FROM e CROSS JOIN o",
        ),
    )
    own_out = tuple(c for c in OUTBOX_COLUMNS if c != "order_id")
    w.add("ob", w.json_insert(OUTBOX, "outbox", own_out, "o_rows", "o", ref="order_id"))
    return w.select("(SELECT id FROM o), ARRAY(SELECT id FROM ob ORDER BY id)")


def json_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` (their ``columns``) as the one JSON parameter ``write_event`` and
    ``write_import`` take for several rows of a table (psycopg caches the conversion of a
    statement of at most 50 parameters only; a parameter per value of each row would
    pass that and make one statement per row count). Datetimes go as UTC ISO text, as
    ``UtcDateTime`` binds them (a naive one is refused), decimals as text."""
    return json.dumps([{c: row[c] for c in columns} for row in rows], default=_json_value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class _With:
    """A statement of data-modifying CTEs and the typed bind parameters it takes."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.binds: list[Any] = []

    def add(self, name: str, sql: str) -> None:
        self.parts.append(f"{name} AS ({sql})")

    def params(
        self,
        table: Table,
        prefix: str,
        columns: tuple[str, ...],
        *,
        same: Mapping[str, str] | None = None,
    ) -> str:
        """Bind parameters for ``columns``; ``same``: columns that take the value of a
        parameter already bound (one parameter fewer each)."""
        same = same or {}
        self.binds += [
            bindparam(f"{prefix}{c}", type_=table.c[c].type) for c in columns if c not in same
        ]
        return ", ".join(f":{same[c]}" if c in same else f":{prefix}{c}" for c in columns)

    def json_insert(
        self,
        table: Table,
        name: str,
        columns: tuple[str, ...],
        param: str,
        after: str,
        *,
        ref: str | None = None,
    ) -> str:
        """One INSERT of the rows of the JSON array ``param`` (``json_rows``), in that
        order, when the CTE ``after`` wrote its row; ``ref``: a column that takes
        ``after``'s id."""
        self.binds.append(bindparam(param, type_=Text()))
        values = [
            f"x.j->'{c}'"
            if isinstance(table.c[c].type, JSON)
            else f"CAST(x.j->>'{c}' AS {table.c[c].type.compile(dialect=_pg())})"
            for c in columns
        ]
        head = ", ".join(([f"(SELECT id FROM {after})"] if ref else []) + values)
        source = (
            f"SELECT {head} FROM json_array_elements(CAST(:{param} AS json)) "
            f"WITH ORDINALITY AS x(j, n) WHERE EXISTS (SELECT 1 FROM {after}) ORDER BY x.n"
        )
        return _insert(name, ((ref,) if ref else ()) + columns, source) + " RETURNING id"

    def select(self, columns: str) -> TextClause:
        sql = "WITH " + ", ".join(self.parts) + " SELECT " + columns
        return text(sql).bindparams(*self.binds)


@lru_cache(maxsize=1)
def _pg() -> Any:
    """PostgreSQL's dialect, imported by the first PostgreSQL statement built (a SQLite
    command never loads it)."""
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()  # type: ignore[no-untyped-call]


def _insert(table: str, columns: tuple[str, ...], source: str) -> str:
    return f"INSERT INTO {table} ({_names(columns)}) {source}"


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


@lru_cache(maxsize=1)
def write_stock_rows() -> TextClause:
    """PostgreSQL: the stock bookkeeping of an event or an import in ONE statement: the
    inventory rows ``inv`` (``json_rows`` of sku, on_hand, reserved, updated_at) and the
    order lines ``lines`` (id, reserved, consumed) rewritten, and the store ids read (for
    the coalesced pushes). The rows were locked before (``lock_inventory``, the order's
    row). Returns one row: inventory rows written, lines written, the store ids."""
    sql = (
        "WITH inv AS (UPDATE inventory AS i SET "
        "on_hand = CAST(x.j->>'on_hand' AS INTEGER), "
        "reserved = CAST(x.j->>'reserved' AS INTEGER), "
        "updated_at = CAST(x.j->>'updated_at' AS TIMESTAMP WITH TIME ZONE) "
        "FROM json_array_elements(CAST(:inv AS json)) AS x(j) "
        "WHERE i.sku = x.j->>'sku' RETURNING i.sku), "
        "ln AS (UPDATE order_lines AS l SET "
        "reserved = CAST(x.j->>'reserved' AS INTEGER), "
        "consumed = CAST(x.j->>'consumed' AS INTEGER) "
        "FROM json_array_elements(CAST(:lines AS json)) AS x(j) "
        "WHERE l.id = CAST(x.j->>'id' AS INTEGER) RETURNING l.id) "
        "SELECT (SELECT count(*) FROM inv), (SELECT count(*) FROM ln), "
        "ARRAY(SELECT id FROM stores ORDER BY id)"
    )
    return text(sql).bindparams(bindparam("inv", type_=Text()), bindparam("lines", type_=Text()))
