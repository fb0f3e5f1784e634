"""Importing orders: the one rule for a batch of new orders, where one order is a batch of
one (``create_order``).

Each order is inserted in the state its import trigger (``import``, ``import_shipped`` …)
leads to, fired in the pure core against the stock as the earlier orders of the batch left
it; its lines as the local effects booked them (``core.stock``). The batch is written with
a few bulk statements: the inventory rows of its SKUs read (locked on PostgreSQL, in SKU
order) once, the orders, lines, inbound events, audit rows and outbox rows inserted, the
stock rows written once, and each SKU whose available quantity changed gets ONE coalesced
``push_stock`` row carrying its final value. An order whose import frees stock (a spec may
say so) ends a segment: the Partial orders it can serve are promoted (``promote_on``)
before the next order is looked at. An order already imported (same key, or same store +
external id) is a duplicate, answered with the order as it is at its turn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.core import Applied, Refused, apply_event
from engine.core import stock as core_stock
from engine.core.stock import Line, Row
from engine.errors import ConfigError
from engine.runtime.db.direct import run, sqlite_insert_ids
from engine.runtime.db.schema import utcnow
from engine.runtime.db.statements import (
    EVENTS,
    INVENTORY,
    ORDERS,
    OUTBOX,
    OUTBOX_COLUMNS,
    EventStatements,
    event_statements,
    json_rows,
    write_import,
)

from . import rows
from .events import promote_on, write_rows
from .results import ApplyResult, BundleLike, NewOrder, OrderImport, Source, spec_of
from .tx import on_connection

T = TypeVar("T")
CHUNK = 500

_SEEN_KEYS = select(EVENTS.c.idempotency_key).where(
    EVENTS.c.idempotency_key.in_(bindparam("b_keys", expanding=True))
)
_BY_EXTERNAL = select(ORDERS.c.id, ORDERS.c.external_id, ORDERS.c.reference, ORDERS.c.state).where(
    ORDERS.c.store_id == bindparam("b_store"),
    ORDERS.c.external_id.in_(bindparam("b_exts", expanding=True)),
)
_NOW = select(ORDERS.c.id, ORDERS.c.reference, ORDERS.c.state).where(
    ORDERS.c.id.in_(bindparam("b_ids", expanding=True))
)
_INSERT_ORDERS = ORDERS.insert().returning(ORDERS.c.id, sort_by_parameter_order=True)
_INSERT_EVENTS = EVENTS.insert().returning(EVENTS.c.id, sort_by_parameter_order=True)
_INSERT_OUTBOX = OUTBOX.insert().returning(OUTBOX.c.id, sort_by_parameter_order=True)


def _chunked(items: Sequence[T], size: int = CHUNK) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass
class _Planned:
    """One new order as the batch will write it (decided in memory, written in bulk)."""

    index: int
    item: OrderImport
    id: int
    lines: list[Line]
    state: str
    """The state before the trigger (the machine's initial)."""
    outcome: Applied | Refused
    freed: set[str] = field(default_factory=set)
    outbox_ids: tuple[int, ...] = ()


class _StockBook:
    """The batch's inventory rows, read (and on PostgreSQL locked) once, changed in memory."""

    def __init__(self, conn: Connection, st: EventStatements, skus: set[str]) -> None:
        self.conn = conn
        self.st = st
        self.base: dict[str, tuple[int, int]] = {}  # as read: sku -> (on hand, reserved)
        self._lock(skus)
        self.reset()

    def reset(self) -> None:
        self.rows: dict[str, Row] = {s: list(v) for s, v in self.base.items()}
        self.touched: set[str] = set()  # rows a local effect needs (created when missing)
        self.changed: set[str] = set()  # available changed: updated_at + one push each
        self.adopted: set[str] = set()  # on hand and reserved moved together: written only

    def _lock(self, skus: Iterable[str]) -> None:
        query = self.st.lock_inventory if self.conn.dialect.name == "postgresql" else None
        for chunk in _chunked(sorted(skus), 900):
            stmt = query if query is not None else self.st.read_stock
            for sku, on_hand, reserved in run(self.conn, stmt, {"b_skus": list(chunk)}):
                self.base[sku] = (on_hand, reserved)

    def row(self, sku: str) -> Row:
        self.touched.add(sku)
        return self.rows.setdefault(sku, [0, 0])

    def create_missing(self) -> bool:
        """Insert the rows local effects need that did not exist. False when a concurrent
        writer created one first: its row is now read (and locked) and the caller plans
        again."""
        missing = sorted(self.touched - set(self.base))
        if not missing:
            return True
        now = utcnow()
        insert = postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert
        stmt = (
            insert(INVENTORY)
            .values([{"sku": s, "on_hand": 0, "reserved": 0, "updated_at": now} for s in missing])
            .on_conflict_do_nothing(index_elements=["sku"])
            .returning(INVENTORY.c.sku)
        )
        created = set(self.conn.execute(stmt).scalars())
        for sku in created:
            self.base[sku] = (0, 0)
        raced = set(missing) - created
        if raced:
            self._lock(raced)
        return not raced


def create_orders(
    conn: Connection,
    bundle: BundleLike,
    imports: Sequence[OrderImport],
    *,
    source: Source,
    at: datetime,
) -> list[ApplyResult]:
    """Import a batch of orders in ``conn``'s transaction (see the module docstring); one
    result per import, in order. A batch of N leaves exactly what N batches of one leave."""
    st = event_statements(conn)
    results: list[ApplyResult | None] = [None] * len(imports)
    seen: set[str] = set()
    for chunk in _chunked([i.idempotency_key for i in imports]):
        seen.update(run(conn, _SEEN_KEYS, {"b_keys": list(chunk)}).scalars())
    wanted: dict[int, list[str]] = defaultdict(list)
    for item in imports:
        if item.order.store_id is not None and item.order.external_id is not None:
            wanted[item.order.store_id].append(item.order.external_id)
    existing: dict[tuple[int, str], tuple[int | None, str, str]] = {}
    for store_id, externals in wanted.items():
        for chunk in _chunked(sorted(set(externals))):
            for oid, ext, ref, state in run(
                conn, _BY_EXTERNAL, {"b_store": store_id, "b_exts": list(chunk)}
            ):
                existing[(store_id, str(ext))] = (oid, ref, state)
    fresh: list[int] = []
    twins: dict[int, tuple[int, str]] = {}
    planned_for: dict[tuple[int, str], int] = {}
    for index, item in enumerate(imports):
        order = item.order
        if item.idempotency_key in seen:
            results[index] = ApplyResult("duplicate", item.trigger, item.idempotency_key)
            continue
        ext_key = (
            (order.store_id, order.external_id)
            if order.store_id is not None and order.external_id is not None
            else None
        )
        if ext_key is not None and (ext_key in existing or ext_key in planned_for):
            twins[index] = ext_key  # answered below, once its twin has an id
            continue
        if not order.lines:
            raise ConfigError(f"order {order.reference} has no lines")
        seen.add(item.idempotency_key)
        if ext_key is not None:
            planned_for[ext_key] = index
        fresh.append(index)

    position = 0
    pending_twins = sorted(twins)
    while position < len(fresh) or pending_twins:
        if position < len(fresh):
            position = _import_segment(
                conn, st, bundle, imports, fresh, position, results, source, at
            )
        # a twin is answered with its order as it is at the twin's turn: after the
        # promotions of the segments before it (segments end with those only)
        upto = fresh[position] if position < len(fresh) else len(imports)
        ready = [t for t in pending_twins if t < upto]
        pending_twins = [t for t in pending_twins if t >= upto]
        _answer_twins(conn, imports, ready, twins, existing, planned_for, results)
    return [r for r in results if isinstance(r, ApplyResult)]


def create_order(
    session_factory: sessionmaker[Session],
    bundle: BundleLike,
    order: NewOrder,
    *,
    idempotency_key: str,
    at: datetime,
    trigger: str = "import",
    source: Source = "channel",
) -> ApplyResult:
    """Import one order in its own transaction: ``create_orders`` with a batch of one. A
    concurrent import of the same order ends as a duplicate."""
    item = OrderImport(order, trigger, idempotency_key)

    def work(conn: Connection) -> ApplyResult:
        return create_orders(conn, bundle, [item], source=source, at=at)[0]

    try:
        return on_connection(session_factory, work, what=idempotency_key)[0]
    except IntegrityError as exc:
        with session_factory() as session:
            conn = session.connection()
            twin = run(conn, _SEEN_KEYS, {"b_keys": [idempotency_key]}).first()
            if twin is None and order.store_id is not None and order.external_id is not None:
                twin = run(
                    conn, _BY_EXTERNAL, {"b_store": order.store_id, "b_exts": [order.external_id]}
                ).first()
            if twin is None:
                raise exc from None
        return ApplyResult("duplicate", trigger, idempotency_key)


def _answer_twins(
    conn: Connection,
    imports: Sequence[OrderImport],
    ready: Sequence[int],
    twins: Mapping[int, tuple[int, str]],
    existing: Mapping[tuple[int, str], tuple[int | None, str, str]],
    planned_for: Mapping[tuple[int, str], int],
    results: list[ApplyResult | None],
) -> None:
    """Duplicates by store + external id: the existing order, read now."""
    if not ready:
        return
    ids: dict[int, int | None] = {}
    for index in ready:
        ext_key = twins[index]
        if ext_key in existing:
            ids[index] = existing[ext_key][0]
        else:
            twin = results[planned_for[ext_key]]
            ids[index] = twin.order_id if twin else None
    wanted = sorted({i for i in ids.values() if i})
    now = {oid: (ref, state) for oid, ref, state in run(conn, _NOW, {"b_ids": wanted})}
    for index in ready:
        item = imports[index]
        oid = ids[index]
        ref, state = now.get(oid or 0, (None, None))
        results[index] = ApplyResult(
            "duplicate",
            item.trigger,
            item.idempotency_key,
            order_id=oid,
            reference=ref,
            state=state,
        )


def _plan_segment(
    bundle: BundleLike,
    imports: Sequence[OrderImport],
    todo: Sequence[int],
    book: _StockBook,
    at: datetime,
) -> list[_Planned]:
    """Fire each import trigger in the core against the in-memory stock and book its local
    effects (``core.stock``), one order after another; stop after an order that frees
    stock (its Partial promotions must run before the next order is looked at)."""
    initial = bundle.machine.initial
    plans: list[_Planned] = []
    for index in todo:
        item = imports[index]
        skus = {line.sku for line in item.order.lines}
        stock: Mapping[str, Row] = {s: book.rows[s] for s in skus if s in book.rows}
        lines = [Line(0, line.sku, line.quantity) for line in item.order.lines]
        if item.adopt_stock:
            stock = core_stock.adopting(stock, lines)
        snap = core_stock.snapshot(initial, lines, stock, item.order.facts)
        outcome = apply_event(bundle.compiled, snap, item.trigger, at=at)
        plan = _Planned(index, item, 0, lines, initial, outcome)
        plans.append(plan)
        if not isinstance(outcome, Applied):
            continue
        for kind in rows.local_kinds(outcome):
            adopt = item.adopt_stock and kind == core_stock.RESERVE
            changed = core_stock.book(
                kind, lines, {sku: book.row(sku) for sku in skus}, adopt=adopt
            )
            book.changed |= changed
            if adopt:
                book.adopted |= skus
            if kind == core_stock.RELEASE:
                plan.freed |= changed
        if plan.freed:
            break
    return plans


def _import_segment(
    conn: Connection,
    st: EventStatements,
    bundle: BundleLike,
    imports: Sequence[OrderImport],
    fresh: Sequence[int],
    position: int,
    results: list[ApplyResult | None],
    source: Source,
    at: datetime,
) -> int:
    """Plan and write ``fresh[position:]`` up to the first order that frees stock; returns
    the position after the last order written."""
    todo = fresh[position:]
    skus = {line.sku for index in todo for line in imports[index].order.lines}
    book = _StockBook(conn, st, skus)
    while True:
        plans = _plan_segment(bundle, imports, todo, book, at)
        if book.create_missing():
            break
        book.reset()  # a concurrent writer created a row we assumed absent: plan again
    _write_segment(conn, st, plans, book, source, at, spec=spec_of(bundle))
    for plan in plans:
        results[plan.index] = _result_of(plan)
    last = plans[-1]
    if last.freed:
        promoted = promote_on(conn, bundle, skus=last.freed, at=at, exclude={last.id})
        if promoted:
            results[last.index] = replace(_result_of(last), promoted=promoted)
    return position + len(plans)


def _result_of(plan: _Planned) -> ApplyResult:
    return rows.result(
        plan.outcome,
        plan.item.trigger,
        plan.item.idempotency_key,
        order_id=plan.id,
        reference=plan.item.order.reference,
        from_state=plan.state,
        outbox_ids=plan.outbox_ids,
    )


def _inserted(conn: Connection, stmt: Any, single: Any, values: list[dict[str, Any]]) -> list[int]:
    """Insert ``values``; the new ids in parameter order (one row: the plain statement;
    SQLite: one ``executemany``, ids worked out and checked by ``direct.sqlite_insert_ids``)."""
    if len(values) == 1:
        return [int(run(conn, single, values[0]).scalar_one())]
    if conn.dialect.name == "sqlite":
        return sqlite_insert_ids(conn, stmt.table, values)
    return [int(i) for i in conn.execute(stmt, values).scalars()]


def _write_segment(
    conn: Connection,
    st: EventStatements,
    plans: Sequence[_Planned],
    book: _StockBook,
    source: Source,
    at: datetime,
    *,
    spec: str | None,
) -> None:
    """The planned orders, lines, inbound events, audit rows, outbox rows, stock rows and
    coalesced stock pushes, in a few bulk statements (ids in parameter order); one order on
    PostgreSQL: one statement for its rows (``_write_one``)."""
    if len(plans) == 1 and plans[0].lines and conn.dialect.name == "postgresql":
        _write_one(conn, plans[0], source, at, spec=spec)
        _write_stock(conn, st, book, at)
        return
    ids = _inserted(
        conn,
        _INSERT_ORDERS,
        st.insert_order,
        [
            rows.order_values(
                p.item.order, p.outcome.state, rows.attention(p.outcome, source), at, spec=spec
            )
            for p in plans
        ],
    )
    for plan, oid in zip(plans, ids, strict=True):
        plan.id = oid
    run(
        conn,
        st.insert_lines,
        [row for p in plans for row in rows.line_values(p.id, p.item.order, p.lines)],
    )
    event_ids = _inserted(
        conn,
        _INSERT_EVENTS,
        st.insert_new_event,
        [
            rows.event_values(
                p.item.idempotency_key, source, p.item.trigger, p.id, None, at, p.outcome
            )
            for p in plans
        ],
    )
    run(
        conn,
        st.insert_audit,
        [
            rows.audit_values(
                p.id, event_id, p.item.trigger, p.state, p.outcome, source, at, spec=spec
            )
            for p, event_id in zip(plans, event_ids, strict=True)
        ],
    )
    effect_rows = [
        (p, values)
        for p in plans
        if isinstance(p.outcome, Applied)
        for values in rows.outbox_values(
            p.id,
            p.item.order.store_id,
            p.item.order.reference,
            p.outcome,
            p.item.trigger,
            at,
            spec=spec,
        )
    ]
    if effect_rows:
        outbox_ids = _inserted(
            conn, _INSERT_OUTBOX, st.insert_outbox, [values for _plan, values in effect_rows]
        )
        per_plan: dict[int, list[int]] = defaultdict(list)
        for (plan, _values), oid in zip(effect_rows, outbox_ids, strict=True):
            per_plan[plan.index].append(oid)
        for plan in plans:
            plan.outbox_ids = tuple(per_plan.get(plan.index, ()))
    _write_stock(conn, st, book, at)


def _write_one(
    conn: Connection, plan: _Planned, source: Source, at: datetime, *, spec: str | None
) -> None:
    """PostgreSQL: one new order's row, lines, inbound event, audit row and outbox rows in
    one statement (``statements.write_import``), as the bulk statements write them."""
    item = plan.item
    order = rows.order_values(
        item.order, plan.outcome.state, rows.attention(plan.outcome, source), at, spec=spec
    )
    lines = rows.line_values(0, item.order, plan.lines)
    event = rows.event_values(
        item.idempotency_key, source, item.trigger, 0, None, at, plan.outcome
    )
    audit = rows.audit_values(0, 0, item.trigger, plan.state, plan.outcome, source, at, spec=spec)
    outbox = (
        rows.outbox_values(
            0, item.order.store_id, item.order.reference, plan.outcome, item.trigger, at, spec=spec
        )
        if isinstance(plan.outcome, Applied)
        else []
    )
    line_keys = tuple(lines[0])
    values: dict[str, Any] = {f"r_{k}": v for k, v in order.items()}
    values.update({f"e_{k}": v for k, v in event.items() if k != "order_id"})
    values.update({f"a_{k}": v for k, v in audit.items() if k not in ("order_id", "event_id")})
    values["l_rows"] = json_rows(lines, [k for k in line_keys if k != "order_id"])
    values["o_rows"] = json_rows(outbox, [k for k in OUTBOX_COLUMNS if k != "order_id"])
    stmt = write_import(tuple(order), line_keys)
    oid, outbox_ids = run(conn, stmt, values).one()
    plan.id = int(oid)
    plan.outbox_ids = tuple(int(i) for i in outbox_ids or ())


def _write_stock(conn: Connection, st: EventStatements, book: _StockBook, at: datetime) -> None:
    """Changed inventory rows, then one ``push_stock`` per store and changed SKU (the
    pending row of its dedup key rewritten: the same upsert as ``enqueue_stock_push``)."""
    changed = sorted(book.changed)
    written = sorted(book.changed | book.adopted)
    if not written:
        return
    inventory = [(sku, book.rows[sku][0], book.rows[sku][1], at) for sku in written]
    store_ids = write_rows(conn, st, inventory, (), stores=True)
    if store_ids and changed:
        run(conn, st.push_stock, rows.push_values(store_ids, changed, book.rows, at))
