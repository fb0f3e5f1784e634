"""THE one rule for one event on one order, on prebuilt Core statements (``db.statements``).

``apply_on`` reads the order with its lines and their stock (one SELECT), fires the trigger
in the pure core (``core.apply_event`` on ``core.stock.snapshot``), and writes — in the
caller's transaction — the inbound event row first (``ON CONFLICT DO NOTHING`` on the
idempotency key: a replay, or a concurrent twin that committed first, writes nothing), the
state with the optimistic version check, the stock bookkeeping of local effects
(``core.stock.book``), one outbox row per other effect (with its ``then`` follow-up
trigger) and the audit row. On PostgreSQL the event, state, audit and outbox rows are one
statement (``statements.write_event``); on SQLite one statement each. Stock a release freed
promotes Partial orders, oldest first (``promote_on``), through this same function.
Adapters are never called here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from engine.core import Applied, Refused, apply_event
from engine.core import stock as core_stock
from engine.core.stock import Line, Row
from engine.errors import ConfigError, NotFound, StaleOrder, UnknownTrigger
from engine.runtime.db.direct import begin_now, defer_begin, run
from engine.runtime.db.schema import utcnow
from engine.runtime.db.statements import (
    AUDIT_COLUMNS,
    OUTBOX_COLUMNS,
    EventStatements,
    event_statements,
    json_rows,
    write_event,
    write_stock_rows,
)

from . import rows
from .results import SOURCES, ApplyResult, BundleLike, Source, spec_of
from .tx import on_connection

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

PARTIAL = "Partial"
STOCK_ARRIVED = "stock_arrived"


@dataclass
class OrderState:
    """An order as the event path reads and books it."""

    id: int
    reference: str
    store_id: int | None
    state: str
    version: int
    facts: Mapping[str, Any]
    lines: list[Line]
    stock: dict[str, Row] = field(default_factory=dict)
    """SKU -> [on hand, reserved], for the lines' SKUs that have a stock row."""
    needs_attention: bool = False
    attention_reason: str | None = None
    attention_state: str | None = None
    spec_version: str | None = None


def read_order(
    conn: Connection,
    st: EventStatements,
    *,
    order_id: int | None,
    reference: str | None = None,
    store_id: int | None = None,
) -> OrderState | None:
    """The order, its lines and their stock in one SELECT; ``None`` when there is none.

    Raises:
        NotFound: the reference is in several stores.
    """
    if reference is not None and reference.startswith("#") and reference[1:].isdigit():
        order_id, reference = int(reference[1:]), None
    if order_id is not None:
        found = run(conn, st.read_by_id, {"b_id": order_id}).all()
    elif store_id is not None:
        found = run(
            conn, st.read_by_reference_in_store, {"b_ref": reference, "b_store": store_id}
        ).all()
    else:
        found = run(conn, st.read_by_reference, {"b_ref": reference}).all()
    if not found:
        return None
    first = found[0]
    if found[-1][0] != first[0]:
        raise NotFound(f"order reference {reference!r} is in several stores (fix: --store)")
    order = OrderState(
        id=first[0],
        reference=first[1],
        store_id=first[2],
        state=first[3],
        version=first[4],
        facts=first[5] or {},
        lines=[],
        needs_attention=bool(first[13]),
        attention_reason=first[14],
        attention_state=first[15],
        spec_version=first[16],
    )
    for row in found:
        if row[6] is None:  # an order without lines
            continue
        order.lines.append(Line(row[6], row[7], row[8], row[9], row[10]))
        if row[11] is not None:
            order.stock[row[7]] = [row[11], row[12]]
    return order


def _flag(order: OrderState, reason: str) -> tuple[str, str | None]:
    """A refusal's flag on ``order``: (reason, the state it is raised in). A sticky flag (a
    dead effect's: no state) stays sticky and keeps its reason, this one added."""
    if order.needs_attention and order.attention_state is None:
        return rows.joined(order.attention_reason, reason), None
    return reason[: rows.MAX_REASON], order.state


def _clears_attention(order: OrderState, outcome: Applied) -> bool:
    """THE rule that clears a flag by itself: an applied transition takes the order out of
    the state a refused event flagged it in. A dead effect's flag (no state) stays until
    ``orders ack``: moving on does not deliver what the store or the WMS never got."""
    return (
        order.needs_attention
        and order.attention_state is not None
        and outcome.state != order.attention_state
    )


def apply_on(
    conn: Connection,
    bundle: BundleLike,
    *,
    trigger: str,
    source: Source,
    idempotency_key: str,
    at: datetime,
    order_id: int | None = None,
    reference: str | None = None,
    store_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
    promote: bool = True,
    order: OrderState | None = None,
    alone: bool = False,
) -> ApplyResult:
    """THE one rule for one event on one order in ``conn``'s transaction (see the module
    docstring); ``order``: the order as just read in this transaction (else it is read).
    Partial orders are promoted on the SKUs a release freed, unless ``promote`` is false.
    ``alone``: the transaction is this event's own, begun for it and committed after it
    (``apply_inbound``): on PostgreSQL an event whose writes are one statement is then
    written without BEGIN and COMMIT round trips (``direct.defer_begin``).

    Raises:
        NotFound: no such order.
        StaleOrder: the order changed between the read and the write.
        UnknownTrigger: ``trigger`` is not in the machine; nothing was written.
    """
    deferred = alone and defer_begin(conn)
    try:
        return _apply_on(
            conn,
            bundle,
            trigger=trigger,
            source=source,
            idempotency_key=idempotency_key,
            at=at,
            order_id=order_id,
            reference=reference,
            store_id=store_id,
            payload=payload,
            promote=promote,
            order=order,
            deferred=deferred,
        )
    finally:
        if deferred:
            begin_now(conn)


def _apply_on(
    conn: Connection,
    bundle: BundleLike,
    *,
    trigger: str,
    source: Source,
    idempotency_key: str,
    at: datetime,
    order_id: int | None,
    reference: str | None,
    store_id: int | None,
    payload: Mapping[str, Any] | None,
    promote: bool,
    order: OrderState | None,
    deferred: bool,
) -> ApplyResult:
    st = event_statements(conn)
    if order is None:
        order = read_order(conn, st, order_id=order_id, reference=reference, store_id=store_id)
    if order is None:
        if run(conn, st.seen, {"b_key": idempotency_key}).first() is not None:
            return ApplyResult("duplicate", trigger, idempotency_key)
        if order_id is not None or (reference or "").startswith("#"):
            raise NotFound(f"order #{order_id or (reference or '#')[1:]} not found")
        raise NotFound(f"order {reference!r} not found")
    compiled, spec = _serving(conn, st, bundle, order)
    if trigger not in compiled.triggers:
        # a typo is the caller's mistake, not an event: refused before anything is written
        raise UnknownTrigger(
            f"order {order.reference}: "
            + rows.unknown_trigger_message(bundle, trigger, order.state)
        )
    snap = core_stock.snapshot(order.state, order.lines, order.stock, order.facts)
    outcome = apply_event(compiled, snap, trigger, at=at)
    event_row = rows.event_values(idempotency_key, source, trigger, order.id, payload, at, outcome)
    if conn.dialect.name == "postgresql":
        local = rows.local_kinds(outcome) if isinstance(outcome, Applied) else []
        if deferred and local:  # more statements follow: one transaction from here
            begin_now(conn)
        written = _write_at_once(conn, order, outcome, event_row, trigger, source, at, spec)
        if written is None:  # seen before: acknowledged, not applied
            return ApplyResult("duplicate", trigger, idempotency_key)
        outbox_ids = written
        freed = book_local(conn, st, order, local, at=at) if local else set()
    else:
        event_id = run(conn, st.insert_event, event_row).scalar()
        if event_id is None:  # seen before: acknowledged, not applied
            return ApplyResult("duplicate", trigger, idempotency_key)
        freed, outbox_ids = _write_outcome(conn, st, order, outcome, trigger, source, at, spec)
        run(
            conn,
            st.insert_audit,
            rows.audit_values(
                order.id, event_id, trigger, order.state, outcome, source, at, spec=spec
            ),
        )
    result = rows.result(
        outcome,
        trigger,
        idempotency_key,
        order_id=order.id,
        reference=order.reference,
        from_state=order.state,
        outbox_ids=outbox_ids,
    )
    if promote and freed:
        promoted = promote_on(conn, bundle, skus=freed, at=at, exclude={order.id})
        result = replace(result, promoted=promoted)
    return result


def _state_write(
    order: OrderState, outcome: Applied | Refused, source: Source, at: datetime, spec: str | None
) -> tuple[str, dict[str, Any]]:
    """The order's state write: its kind (``applied``, ``applied_clear``, ``refused``,
    ``attention``: ``EventStatements.update_*``) and values, version checked."""
    versioned = {"b_id": order.id, "b_version": order.version, "b_next": order.version + 1}
    if not isinstance(outcome, Applied):
        reason = rows.attention(outcome, source)
        if reason is None:
            return "refused", {**versioned, "b_at": at}
        flag_reason, flag_state = _flag(order, reason)
        return "attention", {
            **versioned,
            "b_at": at,
            "b_reason": flag_reason,
            "b_flag_state": flag_state,
        }
    kind = "applied_clear" if _clears_attention(order, outcome) else "applied"
    return kind, {**versioned, "b_state": outcome.state, "b_at": at, "b_spec": spec}


def _write_outcome(
    conn: Connection,
    st: EventStatements,
    order: OrderState,
    outcome: Applied | Refused,
    trigger: str,
    source: Source,
    at: datetime,
    spec: str | None,
) -> tuple[set[str], list[int]]:
    """The order's new state (version checked), its stock bookkeeping and outbox rows;
    the SKUs a release freed and the outbox ids."""
    kind, values = _state_write(order, outcome, source, at, spec)
    update = {
        "applied": st.update_applied,
        "applied_clear": st.update_applied_clear,
        "refused": st.update_refused,
        "attention": st.update_attention,
    }[kind]
    _check_version(run(conn, update, values).rowcount, order)
    if not isinstance(outcome, Applied):
        return set(), []
    local = rows.local_kinds(outcome)
    freed = book_local(conn, st, order, local, at=at) if local else set()
    outbox = rows.outbox_values(
        order.id, order.store_id, order.reference, outcome, trigger, at, spec=spec
    )
    outbox_ids = [int(run(conn, st.insert_outbox, v).scalar_one()) for v in outbox]
    return freed, outbox_ids


def _write_at_once(
    conn: Connection,
    order: OrderState,
    outcome: Applied | Refused,
    event_row: Mapping[str, Any],
    trigger: str,
    source: Source,
    at: datetime,
    spec: str | None,
) -> list[int] | None:
    """PostgreSQL: the event row, the order's state (version checked), the audit row and
    the outbox rows in one statement (``statements.write_event``); the outbox ids, or None
    when the idempotency key was seen before (nothing written). The stock bookkeeping
    follows, as on SQLite."""
    kind, values = _state_write(order, outcome, source, at, spec)
    outbox = (
        rows.outbox_values(
            order.id, order.store_id, order.reference, outcome, trigger, at, spec=spec
        )
        if isinstance(outcome, Applied)
        else []
    )
    audit = rows.audit_values(order.id, 0, trigger, order.state, outcome, source, at, spec=spec)
    values.update({f"e_{k}": v for k, v in event_row.items()})
    values.update({f"a_{k}": audit[k] for k in AUDIT_COLUMNS})
    values["o_rows"] = json_rows(outbox, OUTBOX_COLUMNS)
    current, event_id, outbox_ids = run(conn, write_event(kind), values).one()
    _check_version(int(current), order)
    if event_id is None:
        return None
    return [int(i) for i in outbox_ids or ()]


def _check_version(written: int, order: OrderState) -> None:
    if written != 1:
        raise StaleOrder(f"order #{order.id} changed since version {order.version}")


def _serving(
    conn: Connection, st: EventStatements, bundle: BundleLike, order: OrderState
) -> tuple[Any, str | None]:
    """The compiled machine and spec version that serve ``order`` (the in-flight rule): the
    newest spec, except for an order in a state the newest spec lacks with no migration
    declared for it — that order stays on the spec version it was last moved under
    (``spec_versions``), so a deploy never strands it; ``spec migrate`` moves it over."""
    compiled = bundle.compiled
    if order.state in compiled.states or order.spec_version is None:
        return compiled, spec_of(bundle)
    moves = getattr(bundle.machine, "state_moves", None)
    if moves is not None and order.state in moves():
        return compiled, spec_of(bundle)  # migrated by `spec migrate`, not served by the old
    row = run(conn, st.read_spec, {"b_version": order.spec_version}).first()
    old = _compiled_version(order.spec_version, row[0], row[1]) if row is not None else None
    if old is None or order.state not in old.states:
        return compiled, spec_of(bundle)
    return old, order.spec_version


@lru_cache(maxsize=16)
def _compiled_version(version: str, text: str, file: str) -> Any:
    """A recorded spec version's lifecycle, compiled (None if it no longer loads)."""
    from engine.core import VOCABULARY, compile_machine
    from engine.spec import parse_machine

    try:
        return compile_machine(parse_machine(text, file=file, vocabulary=VOCABULARY))
    except Exception:  # noqa: BLE001 - an old copy that no longer loads serves nothing
        return None


def lock_stock(
    conn: Connection, st: EventStatements, skus: Sequence[str], read: Mapping[str, Row]
) -> dict[str, Row]:
    """The stock rows of ``skus`` for booking: created when missing, and on PostgreSQL
    locked in SKU order and read again under the lock (SQLite's ``BEGIN IMMEDIATE`` makes
    the rows ``read`` at the start current)."""
    missing = [sku for sku in skus if sku not in read]
    if missing:
        now = utcnow()
        run(
            conn,
            st.create_inventory,
            [{"sku": sku, "on_hand": 0, "reserved": 0, "updated_at": now} for sku in missing],
        )
    if conn.dialect.name == "postgresql":
        return {sku: [h, r] for sku, h, r in run(conn, st.lock_inventory, {"b_skus": skus})}
    return {sku: list(read.get(sku, (0, 0))) for sku in skus}


def write_stock(
    conn: Connection,
    st: EventStatements,
    stock: Mapping[str, Row],
    read: Mapping[str, Sequence[int]],
    changed: set[str],
    *,
    at: datetime,
    lines: Sequence[Line] = (),
) -> None:
    """The stock rows that differ from ``read`` and the booked ``lines``, then one
    coalesced ``push_stock`` per store and SKU whose available quantity ``changed``."""
    rewritten = [sku for sku in sorted(stock) if tuple(stock[sku]) != tuple(read.get(sku, ()))]
    now = utcnow()  # a row rewritten without a change of available: as the ORM's onupdate
    inventory = [
        (sku, stock[sku][0], stock[sku][1], at if sku in changed else now) for sku in rewritten
    ]
    store_ids = write_rows(conn, st, inventory, lines, stores=bool(changed))
    if changed and store_ids:
        run(conn, st.push_stock, rows.push_values(store_ids, changed, stock, at))


def write_rows(
    conn: Connection,
    st: EventStatements,
    inventory: Sequence[tuple[str, int, int, datetime]],
    lines: Sequence[Line],
    *,
    stores: bool,
) -> list[int]:
    """Inventory rows (sku, on hand, reserved, updated_at) and lines (their reserved and
    consumed) written; the store ids when ``stores``. One statement on PostgreSQL
    (``statements.write_stock_rows``), one each on SQLite."""
    if conn.dialect.name == "postgresql":
        if not (inventory or lines or stores):
            return []
        values = {
            "inv": json_rows(
                [
                    {"sku": sku, "on_hand": h, "reserved": r, "updated_at": t}
                    for sku, h, r, t in inventory
                ],
                ("sku", "on_hand", "reserved", "updated_at"),
            ),
            "lines": json_rows(
                [{"id": x.id, "reserved": x.reserved, "consumed": x.consumed} for x in lines],
                ("id", "reserved", "consumed"),
            ),
        }
        return [int(i) for i in run(conn, write_stock_rows(), values).one()[2] or ()]
    if inventory:
        run(
            conn,
            st.update_inventory,
            [
                {"b_sku": sku, "b_on_hand": h, "b_reserved": r, "b_at": t}
                for sku, h, r, t in inventory
            ],
        )
    if lines:
        run(
            conn,
            st.update_line,
            [{"b_id": x.id, "b_reserved": x.reserved, "b_consumed": x.consumed} for x in lines],
        )
    return [int(i) for i in run(conn, st.store_ids).scalars()] if stores else []


def book_local(
    conn: Connection, st: EventStatements, order: OrderState, kinds: Sequence[str], *, at: datetime
) -> set[str]:
    """The local effects ``kinds``, in order (``core.stock.book``), written: the stock rows
    (``lock_stock``), the lines, the coalesced pushes. Returns the SKUs a release freed."""
    skus = sorted({line.sku for line in order.lines})
    if not skus:
        return set()
    stock = lock_stock(conn, st, skus, order.stock)
    read = {sku: tuple(row) for sku, row in stock.items()}
    held = [(line.reserved, line.consumed) for line in order.lines]
    changed: set[str] = set()
    freed: set[str] = set()
    for kind in kinds:
        moved = core_stock.book(kind, order.lines, stock)
        changed |= moved
        if kind == core_stock.RELEASE:
            freed |= moved
    lines = [
        x for x, h in zip(order.lines, held, strict=True) if x.id and (x.reserved, x.consumed) != h
    ]
    write_stock(conn, st, stock, read, changed, at=at, lines=lines)
    order.stock.update(stock)
    return freed


def promote_on(
    conn: Connection,
    bundle: BundleLike,
    *,
    skus: set[str],
    at: datetime,
    exclude: set[int] | None = None,
) -> tuple[int, ...]:
    """Fire ``stock_arrived`` on every Partial order touching ``skus`` whose lines can now
    all be reserved (``core.stock.servable``), oldest ``ordered_at`` first. An older order
    that still cannot be served does not block a younger one that can. Orders that cannot
    be served get no event (and no audit row): nothing happened to them."""
    st = event_statements(conn)
    ids = run(conn, st.partials_on, {"b_skus": sorted(skus)}).scalars()
    promoted: list[int] = []
    for oid in ids:
        if exclude and oid in exclude:
            continue
        order = read_order(conn, st, order_id=oid)
        if order is None or order.state != PARTIAL:
            continue
        if not core_stock.servable(order.lines, order.stock):
            continue
        result = apply_on(
            conn,
            bundle,
            trigger=STOCK_ARRIVED,
            source="system",
            idempotency_key=f"system:{STOCK_ARRIVED}:{oid}:{order.version}",
            at=at,
            promote=False,
            order=order,
        )
        if result.applied:
            promoted.append(oid)
    return tuple(promoted)


def apply_inbound(
    session_factory: sessionmaker[Session],
    bundle: BundleLike,
    *,
    trigger: str,
    source: Source,
    idempotency_key: str,
    at: datetime,
    order_id: int | None = None,
    reference: str | None = None,
    store_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
) -> ApplyResult:
    """Apply one event to one order in its own transaction (``apply_on``), retried when
    the order changed under us.

    Args:
        order_id / reference: which order (one of them; ``store_id`` narrows a reference).
        source: ``channel`` | ``wms`` | ``user`` | ``system``.
        idempotency_key: unique per event, e.g. ``wms:<event id>`` or
            ``ps:<order id>:<state id>:<date_upd>``.

    Returns:
        ``ApplyResult``; a refusal is a result, not an exception.

    Raises:
        NotFound: no such order.
        StaleOrder: the order kept changing under us for ``MAX_ATTEMPTS`` attempts.
        UnknownTrigger: ``trigger`` is not in the machine; nothing was written (the message
            has a did-you-mean and the triggers allowed from the order's state).
    """
    if source not in SOURCES:
        raise ConfigError(f"unknown event source {source!r} (one of {', '.join(sorted(SOURCES))})")
    if (order_id is None) == (reference is None):
        raise ConfigError("apply_inbound needs exactly one of order_id or reference")

    def work(conn: Connection) -> ApplyResult:
        return apply_on(
            conn,
            bundle,
            trigger=trigger,
            source=source,
            idempotency_key=idempotency_key,
            at=at,
            order_id=order_id,
            reference=reference,
            store_id=store_id,
            payload=payload,
            alone=True,
        )

    try:
        result, attempts = on_connection(session_factory, work, what=idempotency_key)
    except IntegrityError as exc:
        # an insert failed on a unique constraint: a concurrent twin committed first
        # (fine) or something else is wrong (re-raise)
        with session_factory() as session:
            conn = session.connection()
            if run(conn, event_statements(conn).seen, {"b_key": idempotency_key}).first() is None:
                raise exc from None
        return ApplyResult("duplicate", trigger, idempotency_key)
    return result if attempts == 1 else replace(result, attempts=attempts)
