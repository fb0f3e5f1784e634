"""The one rule: applying an event is ONE transaction (DESIGN.md "The one rule").

``apply_inbound`` reads the order and its version, fires the trigger in the pure core, and
writes — together or not at all — the new state, the audit row, the stock bookkeeping of
local effects, one outbox row per other effect (with its ``then`` follow-up trigger), and
the inbound event row whose unique idempotency key makes a replay a no-op. Adapters are
never called here; the outbox dispatcher delivers after commit.

Stock arriving (``set_stock``, ``adjust_stock``, a cancellation releasing units) promotes
Partial orders to New, oldest first, *in the same transaction* as the stock change: the
coalesced stock push then carries the value after those reservations, so a store is never
told about units that are already promised to waiting orders, and a crash cannot leave the
stock changed but the waiting orders forgotten.

The mirror: stock dropping below what is reserved (``set_stock``, ``adjust_stock``, a
listing that writes a lower stock) fires ``stock_short`` on the NEWEST orders holding the
SKU, one at a time, until available is back at 0 or above, in that same transaction. Orders
the lifecycle cannot short (past New: released to the warehouse) keep their units: a change
below what they hold is refused (``StockHeld``), so available never goes below 0.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Table, and_, case, exists, func, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.core import (
    Applied,
    Blocker,
    LineFact,
    OrderSnapshot,
    Refused,
    apply_event,
    is_local,
)
from engine.errors import ConfigError, LifecycleError, NotFound, StaleOrder, UnknownTrigger
from engine.spec.source import did_you_mean

from . import inventory
from .db.base import utcnow
from .db.repository import SqlInventoryRepository, SqlOrderRepository, _dialect_insert
from .db.statements import EventStatements, event_statements
from .db.tables import (
    AuditRow,
    InboundEventRow,
    InventoryRow,
    OrderLineRow,
    OrderRow,
    OutboxRow,
)

Source = Literal["channel", "wms", "user", "system"]
SOURCES: frozenset[str] = frozenset({"channel", "wms", "user", "system"})
ATTENTION_SOURCES: frozenset[str] = frozenset({"channel", "wms"})
"""A refusal of an event from these sources flags the order for an operator."""
MAX_ATTEMPTS = 5

T = TypeVar("T")
C = TypeVar("C")


class BundleLike(Protocol):
    """What the service needs of ``engine.runtime.specs.Bundle``."""

    @property
    def compiled(self) -> Any: ...
    @property
    def machine(self) -> Any: ...


def spec_of(bundle: BundleLike) -> str | None:
    """The spec version a bundle carries (``specs.Bundle.spec_version``; None if none)."""
    version = getattr(bundle, "spec_version", None)
    return version if isinstance(version, str) else None


@dataclass(frozen=True)
class ApplyResult:
    """What happened to one inbound event.

    ``outcome``: ``applied`` | ``refused`` | ``acknowledged`` (a late event the spec
    declares a no-op from the order's state: recorded, not flagged) | ``duplicate``
    (idempotency key seen before: nothing written).
    """

    outcome: Literal["applied", "refused", "acknowledged", "duplicate"]
    trigger: str
    idempotency_key: str
    order_id: int | None = None
    reference: str | None = None
    from_state: str | None = None
    state: str | None = None
    blockers: tuple[Blocker, ...] = ()
    effects: tuple[str, ...] = ()
    outbox_ids: tuple[int, ...] = ()
    promoted: tuple[int, ...] = ()
    """Partial orders moved to New because this event released stock."""
    attempts: int = 1

    @property
    def applied(self) -> bool:
        return self.outcome == "applied"

    @property
    def duplicate(self) -> bool:
        return self.outcome == "duplicate"

    @property
    def acknowledged(self) -> bool:
        return self.outcome == "acknowledged"


@dataclass(frozen=True)
class NewLine:
    sku: str
    quantity: int
    unit_price: Decimal | None = None
    name: str | None = None
    external_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """The channel spec's ``extra:`` fields of the line (JSON-safe)."""


@dataclass(frozen=True)
class NewOrder:
    """An order to import (from a store sync, a test or the demo)."""

    reference: str
    ordered_at: datetime
    lines: Sequence[NewLine]
    store_id: int | None = None
    external_id: str | None = None
    currency: str | None = None
    total_paid: Decimal | None = None
    total_products: Decimal | None = None
    total_shipping: Decimal | None = None
    payment: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    shipping_address: Mapping[str, Any] = field(default_factory=dict)
    invoice_address: Mapping[str, Any] = field(default_factory=dict)
    carrier: str | None = None
    customer_phone: str | None = None
    total_discounts: Decimal | None = None
    total_wrapping: Decimal | None = None
    total_paid_tax_excl: Decimal | None = None
    channel_state: str | None = None
    channel_state_id: int | None = None
    channel_updated_at: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    """The channel spec's ``extra:`` fields of the order (JSON-safe)."""


@dataclass(frozen=True)
class StockResult:
    level: inventory.StockLevel
    promoted: tuple[int, ...] = ()
    shorted: tuple[int, ...] = ()
    """Orders moved to Partial (``stock_short``) because the stock dropped below what they
    held, newest first."""
    references: Mapping[int, str] = field(default_factory=dict)
    """Order id -> reference, for the promoted and shorted orders."""


# --------------------------------------------------------------------------- transactions


def _retried(
    begin: Callable[[], AbstractContextManager[C]], work: Callable[[C], T], *, what: str
) -> tuple[T, int]:
    """Run ``work`` in the transaction ``begin`` opens, retrying a stale order version a
    few times; the result and the number of attempts."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with begin() as tx:
                return work(tx), attempt
        except (StaleOrder, StaleDataError):
            # another writer changed the order between our read and write: read it again
            if attempt == MAX_ATTEMPTS:
                raise StaleOrder(
                    f"{what}: the order kept changing; gave up after {attempt}"
                ) from None
            time.sleep(0.005 * attempt)
        except DBAPIError as exc:
            # PostgreSQL chose this transaction as a deadlock's victim (a stock change
            # shorting or promoting orders locks their other SKUs after its own): all of it
            # was rolled back, so running it again is safe
            if not rolled_back_whole(exc) or attempt == MAX_ATTEMPTS:
                raise
            time.sleep(0.01 * attempt)
    raise StaleOrder(f"{what}: gave up after {MAX_ATTEMPTS} attempts")  # pragma: no cover


RETRIED_SQLSTATES = frozenset({"40P01", "40001"})
"""deadlock_detected, serialization_failure: the transaction was rolled back whole."""


def rolled_back_whole(exc: DBAPIError) -> bool:
    """True for a database error that rolled the whole transaction back and goes away on a
    second try (``RETRIED_SQLSTATES``: PostgreSQL's deadlock victim, serialization failure)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in RETRIED_SQLSTATES


def _in_transaction(
    session_factory: sessionmaker[Session], work: Callable[[Session], T], *, what: str
) -> tuple[T, int]:
    """Run ``work`` in one session transaction, with stale-version retries."""
    return _retried(session_factory.begin, work, what=what)


def _in_core_transaction(
    session_factory: sessionmaker[Session], work: Callable[[Connection], T], *, what: str
) -> tuple[T, int]:
    """``_in_transaction`` on a bare connection of the factory's engine (no ORM session:
    the Core event path needs none), with the same stale-version retries."""
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine):  # a factory bound some other way: through a session
        return _in_transaction(session_factory, lambda s: work(s.connection()), what=what)
    return _retried(bind.begin, work, what=what)


def _promote_on(
    conn: Connection, bundle: BundleLike, *, skus: set[str], at: datetime, exclude: set[int]
) -> tuple[int, ...]:
    """``promote_partials`` inside the connection's transaction (an ORM session joins it)."""
    with Session(bind=conn) as session:
        promoted = promote_partials(session, bundle, skus=skus, at=at, exclude=exclude)
        session.flush()
    return promoted


def _seen(session: Session, idempotency_key: str) -> bool:
    return bool(
        session.scalar(select(exists().where(InboundEventRow.idempotency_key == idempotency_key)))
    )


def _duplicate_after_race(
    session_factory: sessionmaker[Session], idempotency_key: str, exc: IntegrityError
) -> None:
    """An insert failed on a unique constraint: a concurrent twin committed first (fine)
    or something else is wrong (re-raise)."""
    with session_factory() as session:
        if not _seen(session, idempotency_key):
            raise exc


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
    """Apply one event to one order, in one transaction (see the module docstring).

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
        return _apply_event_core(
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
        )

    try:
        result, attempts = _in_core_transaction(session_factory, work, what=idempotency_key)
    except IntegrityError as exc:
        _duplicate_after_race(session_factory, idempotency_key, exc)
        return ApplyResult("duplicate", trigger, idempotency_key)
    return result if attempts == 1 else replace(result, attempts=attempts)


# ------------------------------------------------------------------- the event path, on Core


@dataclass
class _Line:
    """An order line as the Core path reads and books it (id 0: not inserted yet)."""

    id: int
    sku: str
    quantity: int
    reserved: int
    consumed: int


@dataclass
class _Order:
    id: int
    reference: str
    store_id: int | None
    state: str
    version: int
    facts: Mapping[str, Any]
    lines: list[_Line]
    stock: dict[str, list[int]]
    """SKU -> [on hand, reserved], for the lines' SKUs that have a stock row."""
    needs_attention: bool = False
    attention_reason: str | None = None
    attention_state: str | None = None
    spec_version: str | None = None


def _read_order(
    conn: Connection,
    st: EventStatements,
    *,
    order_id: int | None,
    reference: str | None,
    store_id: int | None,
) -> _Order | None:
    """The order, its lines and their stock in one SELECT; ``None`` when there is none.

    Raises:
        NotFound: the reference is in several stores.
    """
    if reference is not None and reference.startswith("#") and reference[1:].isdigit():
        order_id, reference = int(reference[1:]), None
    if order_id is not None:
        rows = conn.execute(st.read_by_id, {"b_id": order_id}).all()
    elif store_id is not None:
        rows = conn.execute(
            st.read_by_reference_in_store, {"b_ref": reference, "b_store": store_id}
        ).all()
    else:
        rows = conn.execute(st.read_by_reference, {"b_ref": reference}).all()
    if not rows:
        return None
    first = rows[0]
    if rows[-1][0] != first[0]:
        raise NotFound(f"order reference {reference!r} is in several stores (fix: --store)")
    order = _Order(
        id=first[0],
        reference=first[1],
        store_id=first[2],
        state=first[3],
        version=first[4],
        facts=first[5] or {},
        lines=[],
        stock={},
        needs_attention=bool(first[13]),
        attention_reason=first[14],
        attention_state=first[15],
        spec_version=first[16],
    )
    for row in rows:
        if row[6] is None:  # an order without lines
            continue
        order.lines.append(_Line(row[6], row[7], row[8], row[9], row[10]))
        if row[11] is not None:
            order.stock[row[7]] = [row[11], row[12]]
    return order


def _new_order(order: NewOrder, state: str, stock: dict[str, list[int]]) -> _Order:
    """A ``NewOrder`` about to be inserted (version 1, nothing booked) over ``stock``."""
    return _Order(
        id=0,
        reference=order.reference,
        store_id=order.store_id,
        state=state,
        version=1,
        facts=order.facts,
        lines=[_Line(0, line.sku, line.quantity, 0, 0) for line in order.lines],
        stock=stock,
    )


def _snapshot(order: _Order) -> OrderSnapshot:
    """The order as the core sees it: a line's ``reservable`` = available stock + what the
    line already holds (minus what earlier lines of the same order need of that SKU)."""
    spare = {line.sku: 0 for line in order.lines}
    for sku, (on_hand, reserved) in order.stock.items():
        if sku in spare:
            spare[sku] = on_hand - reserved
    facts = []
    for line in order.lines:
        facts.append(LineFact(line.sku, line.quantity, max(0, spare[line.sku]) + line.reserved))
        spare[line.sku] -= max(0, line.quantity - line.reserved - line.consumed)
    return OrderSnapshot(state=order.state, lines=tuple(facts), facts=dict(order.facts))


def _local_kinds(outcome: Applied) -> list[str]:
    return [e.kind for e in outcome.effects if e.local or is_local(e.kind)]


def _attention(outcome: Applied | Refused, source: Source) -> str | None:
    """The reason an order needs an operator: a refused channel or WMS event (a late
    event the spec declares a no-op is acknowledged, not flagged)."""
    if isinstance(outcome, Applied) or outcome.late or source not in ATTENTION_SOURCES:
        return None
    return "; ".join(b.message for b in outcome.blockers)


MAX_REASON = 2000
"""An attention reason is cut to this many characters."""


def _joined(reason: str | None, more: str) -> str:
    """``more`` added to a sticky flag's ``reason`` (neither is lost; capped)."""
    text = f"{reason}; {more}" if reason and more not in reason else (reason or more)
    return text[:MAX_REASON]


def _flag(order: _Order, reason: str) -> tuple[str, str | None]:
    """A refusal's flag on ``order``: (reason, the state it is raised in). A sticky flag (a
    dead effect's: no state) stays sticky and keeps its reason, this one added."""
    if order.needs_attention and order.attention_state is None:
        return _joined(order.attention_reason, reason), None
    return reason[:MAX_REASON], order.state


def _clears_attention(order: _Order, outcome: Applied) -> bool:
    """THE rule that clears a flag by itself: an applied transition takes the order out of
    the state a refused event flagged it in. A dead effect's flag (no state) stays until
    ``orders ack``: moving on does not deliver what the store or the WMS never got."""
    return (
        order.needs_attention
        and order.attention_state is not None
        and outcome.state != order.attention_state
    )


def _verdict(outcome: Applied | Refused) -> Literal["applied", "refused", "acknowledged"]:
    if isinstance(outcome, Applied):
        return "applied"
    return "acknowledged" if outcome.late else "refused"


def unknown_trigger_message(bundle: BundleLike, trigger: str, state: str) -> str:
    """One line for a trigger the machine does not have: a did-you-mean among every
    trigger, and the triggers allowed from ``state``."""
    machine = bundle.machine
    allowed = list(dict.fromkeys(t.trigger for t in machine.transitions if state in t.sources))
    hint = did_you_mean(trigger, machine.triggers)
    text = f"'{trigger}' is not a trigger of {machine.name}"
    if hint:
        text += f" ({hint})"
    return text + f"; allowed from {state}: " + (", ".join(allowed) if allowed else "none")


def _result(
    outcome: Applied | Refused,
    trigger: str,
    idempotency_key: str,
    *,
    order_id: int,
    reference: str,
    from_state: str,
    outbox_ids: Sequence[int] = (),
) -> ApplyResult:
    if not isinstance(outcome, Applied):
        return ApplyResult(
            _verdict(outcome),
            trigger,
            idempotency_key,
            order_id=order_id,
            reference=reference,
            from_state=from_state,
            state=from_state,
            blockers=outcome.blockers,
        )
    return ApplyResult(
        "applied",
        trigger,
        idempotency_key,
        order_id=order_id,
        reference=reference,
        from_state=from_state,
        state=outcome.state,
        effects=tuple(e.kind for e in outcome.effects),
        outbox_ids=tuple(outbox_ids),
    )


def _apply_event_core(
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
    promote: bool = True,
) -> ApplyResult:
    """THE one rule for one event on one order, on prebuilt Core statements
    (``db.statements``), Partial orders promoted on the SKUs a release freed (unless
    ``promote`` is false). The inbound event row is written before the order:
    a replay, or a concurrent twin that committed first, inserts nothing (``ON CONFLICT
    DO NOTHING``) and the event is a duplicate with nothing written.
    """
    st = event_statements(conn)
    order = _read_order(conn, st, order_id=order_id, reference=reference, store_id=store_id)
    if order is None:
        if conn.execute(st.seen, {"b_key": idempotency_key}).first() is not None:
            return ApplyResult("duplicate", trigger, idempotency_key)
        if order_id is not None or (reference or "").startswith("#"):
            raise NotFound(f"order #{order_id or (reference or '#')[1:]} not found")
        raise NotFound(f"order {reference!r} not found")
    compiled, spec = _serving(conn, st, bundle, order)
    if trigger not in compiled.triggers:
        # a typo is the caller's mistake, not an event: refused before anything is written
        raise UnknownTrigger(
            f"order {order.reference}: " + unknown_trigger_message(bundle, trigger, order.state)
        )
    outcome = apply_event(compiled, _snapshot(order), trigger, at=at)
    event_id = conn.execute(
        st.insert_event,
        _event_values(idempotency_key, source, trigger, order.id, payload, at, outcome),
    ).scalar()
    if event_id is None:  # seen before: acknowledged, not applied
        return ApplyResult("duplicate", trigger, idempotency_key)
    versioned = {"b_id": order.id, "b_version": order.version, "b_next": order.version + 1}
    freed: set[str] = set()
    outbox_ids: list[int] = []
    if not isinstance(outcome, Applied):
        reason = _attention(outcome, source)
        if reason is not None:
            flag_reason, flag_state = _flag(order, reason)
            written = conn.execute(
                st.update_attention,
                {**versioned, "b_at": at, "b_reason": flag_reason, "b_flag_state": flag_state},
            )
        else:
            written = conn.execute(st.update_refused, {**versioned, "b_at": at})
        _check_version(written, order)
    else:
        update = (
            st.update_applied_clear if _clears_attention(order, outcome) else st.update_applied
        )
        written = conn.execute(
            update, {**versioned, "b_state": outcome.state, "b_at": at, "b_spec": spec}
        )
        _check_version(written, order)
        local = _local_kinds(outcome)
        freed = _book_local(conn, st, order, local, at=at) if local else set()
        outbox_ids = _write_outbox(conn, st, order, outcome, trigger, at=at, spec=spec)
    conn.execute(
        st.insert_audit,
        _audit_values(order.id, event_id, trigger, order.state, outcome, source, at, spec=spec),
    )
    result = _result(
        outcome,
        trigger,
        idempotency_key,
        order_id=order.id,
        reference=order.reference,
        from_state=order.state,
        outbox_ids=outbox_ids,
    )
    return _promoted(conn, bundle, result, freed if promote else set(), at=at)


def _serving(
    conn: Connection, st: EventStatements, bundle: BundleLike, order: _Order
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
    row = conn.execute(st.read_spec, {"b_version": order.spec_version}).first()
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


def _promoted(
    conn: Connection, bundle: BundleLike, result: ApplyResult, freed: set[str], *, at: datetime
) -> ApplyResult:
    """``result`` with the Partial orders promoted on the SKUs its release ``freed``."""
    if not freed or result.order_id is None:
        return result
    exclude = {result.order_id}
    return replace(result, promoted=_promote_on(conn, bundle, skus=freed, at=at, exclude=exclude))


def _event_values(
    idempotency_key: str,
    source: Source,
    trigger: str,
    order_id: int,
    payload: Mapping[str, Any] | None,
    at: datetime,
    outcome: Applied | Refused,
) -> dict[str, Any]:
    return {
        "idempotency_key": idempotency_key,
        "source": source,
        "trigger": trigger,
        "order_id": order_id,
        "payload": dict(payload) if payload is not None else None,
        "received_at": at,
        "outcome": _verdict(outcome),
    }


def _audit_values(
    order_id: int,
    event_id: int,
    trigger: str,
    from_state: str,
    outcome: Applied | Refused,
    source: Source,
    at: datetime,
    *,
    spec: str | None,
) -> dict[str, Any]:
    """The audit row of an applied or refused event (``spec``: the spec version)."""
    if isinstance(outcome, Applied):
        effects, blockers = [e.kind for e in outcome.effects], []
    else:
        effects, blockers = [], [_blocker_doc(b) for b in outcome.blockers]
    return {
        "order_id": order_id,
        "event_id": event_id,
        "trigger": trigger,
        "from_state": from_state,
        "to_state": outcome.state,
        "applied": isinstance(outcome, Applied),
        "source": source,
        "effects": effects,
        "blockers": blockers,
        "at": at,
        "spec_version": spec,
    }


def _outbox_values(
    order: _Order, outcome: Applied, trigger: str, at: datetime, *, spec: str | None
) -> list[dict[str, Any]]:
    """One pending outbox row per effect that is not local (with its ``then`` trigger)."""
    extra = {"state": outcome.state, "trigger": trigger, "reference": order.reference}
    return [
        {
            "kind": effect.kind,
            "order_id": order.id,
            "store_id": order.store_id,
            "payload": {**extra, **dict(effect.params)},
            "dedup_key": None,
            "then_trigger": effect.then,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "spec_version": spec,
        }
        for effect in outcome.effects
        if not (effect.local or is_local(effect.kind))
    ]


def _write_outbox(
    conn: Connection,
    st: EventStatements,
    order: _Order,
    outcome: Applied,
    trigger: str,
    *,
    at: datetime,
    spec: str | None,
) -> list[int]:
    """The outbox rows of the order's effects; their ids."""
    return [
        int(conn.execute(st.insert_outbox, values).scalar_one())
        for values in _outbox_values(order, outcome, trigger, at, spec=spec)
    ]


def _push_values(
    store_ids: Sequence[int], skus: Iterable[str], stock: Mapping[str, list[int]], at: datetime
) -> list[dict[str, Any]]:
    """One coalesced ``push_stock`` per store and SKU, carrying the available quantity."""
    return [
        {
            "kind": inventory.PUSH_STOCK,
            "store_id": store_id,
            "order_id": None,
            "payload": {
                "sku": sku,
                "quantity": max(0, stock[sku][0] - stock[sku][1]),
                "store_id": store_id,
            },
            "dedup_key": inventory.stock_dedup_key(store_id, sku),
            "then_trigger": None,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        for sku in sorted(skus)
        for store_id in store_ids
    ]


def _check_version(written: Any, order: _Order) -> None:
    if written.rowcount != 1:
        raise StaleOrder(f"order #{order.id} changed since version {order.version}")


def _book(
    kind: str, lines: Sequence[_Line], stock: Mapping[str, list[int]], *, adopt: bool = False
) -> set[str]:
    """One local effect (``reserve_stock`` / ``release_stock`` / ``consume_stock``) on
    ``lines`` and their ``stock`` rows ([on hand, reserved]), in memory; returns the SKUs
    whose available quantity changed. Reserve holds what a line still needs; release gives
    back what it holds; consume takes the outstanding units off on hand and reserved.
    ``adopt`` (an open order adopted from the store, whose units the store's quantity had
    already taken off): reserving also puts those units back on hand."""
    rows = {line.sku: stock[line.sku] for line in lines}
    before = {sku: row[0] - row[1] for sku, row in rows.items()}
    for line in lines:
        row = rows[line.sku]
        if kind == "reserve_stock":
            need = line.quantity - line.reserved - line.consumed
            if need > 0:
                row[1] += need
                line.reserved += need
                if adopt:
                    row[0] += need
        elif kind == "release_stock":
            if line.reserved:
                row[1] = max(0, row[1] - line.reserved)
                line.reserved = 0
        elif kind == "consume_stock":
            outstanding = line.quantity - line.consumed
            if outstanding <= 0:
                continue
            row[1] = max(0, row[1] - line.reserved)
            row[0] = max(0, row[0] - outstanding)
            line.consumed += outstanding
            line.reserved = 0
    return {sku for sku, row in rows.items() if row[0] - row[1] != before[sku]}


def _book_local(
    conn: Connection, st: EventStatements, order: _Order, kinds: Sequence[str], *, at: datetime
) -> set[str]:
    """The local effects ``kinds``, in order (``_book``), written: the stock rows (created
    when missing; locked in SKU order on PostgreSQL, read again under the lock), the lines,
    and one coalesced ``push_stock`` per store and SKU whose available quantity changed.
    Returns the SKUs a release freed."""
    skus = sorted({line.sku for line in order.lines})
    if not skus:
        return set()
    missing = [sku for sku in skus if sku not in order.stock]
    if missing:
        now = utcnow()
        conn.execute(
            st.create_inventory,
            [{"sku": sku, "on_hand": 0, "reserved": 0, "updated_at": now} for sku in missing],
        )
    if conn.dialect.name == "postgresql":
        stock = {sku: [h, r] for sku, h, r in conn.execute(st.lock_inventory, {"b_skus": skus})}
    else:  # BEGIN IMMEDIATE: the rows read at the start are current
        stock = {sku: list(order.stock.get(sku, (0, 0))) for sku in skus}
    read = {sku: tuple(row) for sku, row in stock.items()}
    held = [(line.reserved, line.consumed) for line in order.lines]
    changed: set[str] = set()
    freed: set[str] = set()
    for kind in kinds:
        moved = _book(kind, order.lines, stock)
        changed |= moved
        if kind == "release_stock":
            freed |= moved
    rewritten = [sku for sku in skus if tuple(stock[sku]) != read[sku]]
    if rewritten:
        now = utcnow()  # a row rewritten without a change of available: as the ORM's onupdate
        conn.execute(
            st.update_inventory,
            [
                {
                    "b_sku": sku,
                    "b_on_hand": stock[sku][0],
                    "b_reserved": stock[sku][1],
                    "b_at": at if sku in changed else now,
                }
                for sku in rewritten
            ],
        )
    lines = [  # lines not written yet (id 0: a new order's) are inserted as booked
        x for x, h in zip(order.lines, held, strict=True) if x.id and (x.reserved, x.consumed) != h
    ]
    if lines:
        conn.execute(
            st.update_line,
            [{"b_id": x.id, "b_reserved": x.reserved, "b_consumed": x.consumed} for x in lines],
        )
    if changed:
        store_ids = list(conn.execute(st.store_ids).scalars())
        if store_ids:
            conn.execute(st.push_stock, _push_values(store_ids, changed, stock, at))
    return freed


# --------------------------------------------------------------------------- in a session


def _session_conn(session: Session) -> Connection:
    """The session's connection, with its pending changes flushed (the Core path reads
    the rows the caller may have changed)."""
    session.flush()
    return session.connection()


_ORDER_WRITTEN = (
    "state",
    "version",
    "updated_at",
    "needs_attention",
    "attention_reason",
    "attention_state",
)


def _forget_written(session: Session, result: ApplyResult | None) -> None:
    """The ORM must not keep stale copies of rows the Core path rewrote behind its back:
    the state columns and lines of ``result``'s order and of the orders it promoted, the
    stock rows and the (coalesced) outbox rows are expired and read again on next access."""
    orders = {result.order_id, *result.promoted} if result is not None else set()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, InventoryRow | OutboxRow):
            session.expire(obj)
        elif isinstance(obj, OrderRow) and sa_inspect(obj).dict.get("id") in orders:
            session.expire(obj, _ORDER_WRITTEN)
        elif isinstance(obj, OrderLineRow) and sa_inspect(obj).dict.get("order_id") in orders:
            session.expire(obj, ["reserved", "consumed"])


def apply_in_session(
    session: Session,
    bundle: BundleLike,
    row: OrderRow,
    *,
    trigger: str,
    source: Source,
    idempotency_key: str,
    at: datetime,
    payload: Mapping[str, Any] | None = None,
    promote: bool = True,
) -> ApplyResult:
    """The body of the one rule, inside the caller's transaction (no commit here): the
    Core path of ``apply_inbound`` on the session's connection. The session's pending
    changes are flushed first; ``row`` and the session's copies of its lines, of the
    orders it promoted, of stock and outbox rows are expired afterwards, so they read what
    was written. An event whose
    key was seen before is a duplicate with nothing written.
    """
    result = _apply_event_core(
        _session_conn(session),
        bundle,
        trigger=trigger,
        source=source,
        idempotency_key=idempotency_key,
        at=at,
        order_id=row.id,
        reference=None,
        store_id=None,
        payload=payload,
        promote=promote,
    )
    _forget_written(session, result)
    return result


# --------------------------------------------------------------------------- attention

ACK_TRIGGER = "ack_attention"
"""The audit trigger of ``orders ack`` (not a lifecycle trigger: the state stays)."""


@dataclass(frozen=True)
class Acknowledgement:
    """``orders ack``: the flag that was cleared, on which order, by whom, when."""

    order_id: int
    reference: str
    state: str
    reason: str | None
    by: str
    note: str | None
    at: datetime


def acknowledge_attention(
    session_factory: sessionmaker[Session],
    *,
    reference: str,
    by: str,
    at: datetime,
    note: str | None = None,
    store_id: int | None = None,
) -> Acknowledgement:
    """Clear an order's attention flag, with an audit row (trigger ``ack_attention``, the
    state kept) whose inbound event carries who, the note and the reason cleared — one
    transaction.

    Raises:
        NotFound: no such order.
        LifecycleError: the order is not flagged.
    """

    def work(session: Session) -> Acknowledgement:
        row = SqlOrderRepository(session).by_reference(reference, store_id=store_id)
        if not row.needs_attention:
            raise LifecycleError(
                f"order {row.reference} is not flagged for attention; nothing to acknowledge "
                "(see: omsflow orders list --attention)"
            )
        reason = row.attention_reason
        event = InboundEventRow(
            idempotency_key=f"user:ack:{uuid.uuid4()}",
            source="user",
            trigger=ACK_TRIGGER,
            order_id=row.id,
            payload={"by": by, "note": note, "cleared": reason},
            received_at=at,
            outcome="applied",
        )
        session.add(event)
        session.flush()
        session.add(
            AuditRow(
                order_id=row.id,
                event_id=event.id,
                trigger=ACK_TRIGGER,
                from_state=row.state,
                to_state=row.state,
                applied=True,
                source="user",
                effects=[],
                blockers=[],
                at=at,
            )
        )
        row.needs_attention = False
        row.attention_reason = None
        row.attention_state = None
        row.updated_at = at
        session.flush()
        return Acknowledgement(row.id, row.reference, row.state, reason, by, note, at)

    done, _ = _in_transaction(session_factory, work, what=f"ack {reference}")
    return done


def flag_dead_effect(session: Session, order_id: int, reason: str, *, at: datetime) -> bool:
    """Flag ``order_id`` because one of its effects went dead, inside the caller's
    transaction (the outbox's settle). The flag is sticky (no ``attention_state``): moving
    on does not clear it, ``orders ack`` does. An existing reason is kept, this one added;
    one atomic UPDATE that bumps the version (no read-modify-write race)."""
    orders = _table(OrderRow)
    o = orders.c
    written = session.execute(
        update(orders)
        .where(o.id == order_id)
        .values(
            needs_attention=True,
            attention_state=None,
            attention_reason=case(
                (
                    and_(o.needs_attention.is_(True), o.attention_reason.is_not(None)),
                    func.substr(o.attention_reason + "; " + reason, 1, MAX_REASON),
                ),
                else_=reason[:MAX_REASON],
            ),
            version=o.version + 1,
            updated_at=at,
        ),
        execution_options={"synchronize_session": False},
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, OrderRow) and sa_inspect(obj).dict.get("id") == order_id:
            session.expire(obj, _ORDER_WRITTEN)
    return bool(getattr(written, "rowcount", 0))


def _blocker_doc(blocker: Blocker) -> dict[str, Any]:
    return {"code": blocker.code, "message": blocker.message, "params": dict(blocker.params)}


# --------------------------------------------------------------------------- Partial -> New


PARTIAL = "Partial"
STOCK_ARRIVED = "stock_arrived"


def promote_partials(
    session: Session,
    bundle: BundleLike,
    *,
    skus: set[str] | None,
    at: datetime,
    exclude: set[int] | None = None,
) -> tuple[int, ...]:
    """Fire ``stock_arrived`` on every Partial order (touching ``skus``; all when ``None``)
    whose lines can now all be reserved, oldest ``ordered_at`` first. An older order that
    still cannot be served does not block a younger one that can. Orders that cannot be
    served get no event (and no audit row): nothing happened to them."""
    query = (
        select(OrderRow)
        .where(OrderRow.state == PARTIAL)
        .order_by(OrderRow.ordered_at, OrderRow.id)
        .options(selectinload(OrderRow.lines))
    )
    if skus is not None:
        query = query.where(
            exists().where(OrderLineRow.order_id == OrderRow.id, OrderLineRow.sku.in_(skus))
        )
    promoted: list[int] = []
    for row in list(session.scalars(query)):
        if exclude and row.id in exclude:
            continue
        if not _all_reservable(session, row):
            continue
        result = apply_in_session(
            session,
            bundle,
            row,
            trigger=STOCK_ARRIVED,
            source="system",
            idempotency_key=f"system:{STOCK_ARRIVED}:{row.id}:{row.version}",
            at=at,
            promote=False,
        )
        if result.applied:
            promoted.append(row.id)
    return tuple(promoted)


def _all_reservable(session: Session, row: OrderRow) -> bool:
    need: dict[str, int] = defaultdict(int)
    for line in row.lines:
        need[line.sku] += max(0, line.quantity - line.reserved - line.consumed)
    stock = inventory.levels(session, need)
    return all(stock[sku].available >= qty for sku, qty in need.items())


def set_stock(
    session_factory: sessionmaker[Session],
    bundle: BundleLike,
    sku: str,
    quantity: int,
    *,
    at: datetime,
) -> StockResult:
    """``omsflow stock set``: on hand := quantity, then short the newest orders (stock below
    what is reserved) or promote Partial orders (stock above); one transaction.

    Raises:
        StockHeld: ``quantity`` is below what orders past New hold; nothing is written.
    """

    def work(session: Session) -> StockResult:
        before = _locked_on_hand(session, sku)
        inventory.set_on_hand(session, sku, quantity, at=at)
        what = f"stock set {sku} {quantity}"
        return _settle_stock(session, bundle, sku, before, at=at, what=what)

    return _in_transaction(session_factory, work, what=f"stock set {sku}")[0]


def adjust_stock(
    session_factory: sessionmaker[Session],
    bundle: BundleLike,
    sku: str,
    delta: int,
    *,
    at: datetime,
) -> StockResult:
    """``omsflow stock adjust``: on hand += delta, then short or promote as ``set_stock``;
    one transaction.

    Raises:
        StockHeld: the new on hand is below what orders past New hold; nothing is written.
    """

    def work(session: Session) -> StockResult:
        before = _locked_on_hand(session, sku)
        inventory.adjust(session, sku, delta, at=at)
        what = f"stock adjust {sku} {delta:+d}"
        return _settle_stock(session, bundle, sku, before, at=at, what=what)

    return _in_transaction(session_factory, work, what=f"stock adjust {sku}")[0]


def _locked_on_hand(session: Session, sku: str) -> int:
    """``sku``'s on hand, its row locked (created when missing) for this transaction."""
    return SqlInventoryRepository(session).lock([sku])[sku].on_hand


def _settle_stock(
    session: Session, bundle: BundleLike, sku: str, before: int, *, at: datetime, what: str
) -> StockResult:
    """After ``sku``'s on hand changed from ``before`` (row locked): refuse a lower value
    below the firm holds, short the newest orders while available is below 0, promote
    Partial orders while it is above; the result with the orders' references."""
    now = inventory.levels(session, [sku])[sku].on_hand
    require_unheld(session, bundle, {sku: now}, what, before={sku: before})
    moved = settle_stock(session, bundle, skus={sku}, at=at)
    return StockResult(
        inventory.levels(session, [sku])[sku], moved.promoted, moved.shorted, moved.references
    )


@dataclass(frozen=True)
class Settled:
    """What a stock change did to orders: shorted (to Partial) and promoted (to New)."""

    shorted: tuple[int, ...] = ()
    promoted: tuple[int, ...] = ()
    references: Mapping[int, str] = field(default_factory=dict)


def settle_stock(
    session: Session, bundle: BundleLike, *, skus: Iterable[str], at: datetime
) -> Settled:
    """After the on hand of ``skus`` changed (in the caller's transaction): short the newest
    orders of each SKU whose available went below 0 (``short_newest``), then promote the
    Partial orders its stock can now serve (``promote_partials``)."""
    wanted = set(skus)
    shorted, promoted = short_newest(session, bundle, skus=wanted, at=at)
    promoted += promote_partials(session, bundle, skus=wanted, at=at)
    moved = sorted({*shorted, *promoted})
    refs: dict[int, str] = {}
    if moved:
        query = select(OrderRow.id, OrderRow.reference).where(OrderRow.id.in_(moved))
        refs = {int(row[0]): str(row[1]) for row in session.execute(query)}
    return Settled(shorted, promoted, refs)


# --------------------------------------------------------------------------- New -> Partial


STOCK_SHORT = "stock_short"


class StockHeld(ConfigError):
    """A stock change below what orders the lifecycle cannot short hold (released to the
    warehouse: ``stock_short`` does not leave their state). ``holds``: those orders."""

    def __init__(self, what: str, sku: str, held: int, holds: Sequence[inventory.Hold]) -> None:
        self.sku = sku
        self.held = held
        self.holds = tuple(holds)
        shown = ", ".join(f"{h.reference} ({h.state}, {h.reserved})" for h in self.holds[:10])
        more = f" and {len(self.holds) - 10} more" if len(self.holds) > 10 else ""
        super().__init__(
            f"{what}: {held} unit(s) of {sku} are held by order(s) already past New: "
            f"{shown}{more}; on hand cannot go below {held} (fix: set at least {held}, or "
            "cancel one of those orders first)"
        )


def _sources_of(bundle: BundleLike, trigger: str) -> frozenset[str]:
    """The states ``trigger`` leaves from in the lifecycle."""
    return frozenset(
        source for t in bundle.machine.transitions if t.trigger == trigger for source in t.sources
    )


def shortable_states(bundle: BundleLike) -> frozenset[str]:
    """States whose orders can be moved to Partial (``stock_short`` leaves from them)."""
    return _sources_of(bundle, STOCK_SHORT)


def waiting_states(bundle: BundleLike) -> frozenset[str]:
    """States whose orders wait for stock (``stock_arrived`` leaves from them)."""
    return _sources_of(bundle, STOCK_ARRIVED)


def require_unheld(
    session: Session,
    bundle: BundleLike,
    on_hand: Mapping[str, int],
    what: str,
    *,
    before: Mapping[str, int] | None = None,
) -> None:
    """Raise ``StockHeld`` when a SKU's new on hand is below what orders that cannot be
    shorted hold. With ``before`` (the on hand until now), only a SKU whose stock goes down
    is checked: more stock is never refused, even while still short."""
    shortable = shortable_states(bundle)
    for sku, quantity in sorted(on_hand.items()):
        if before is not None and quantity >= before.get(sku, 0):
            continue
        firm = [h for h in inventory.holds(session, [sku]) if h.state not in shortable]
        held = sum(h.reserved for h in firm)
        if quantity < held:
            raise StockHeld(what, sku, held, firm)


def short_newest(
    session: Session, bundle: BundleLike, *, skus: Iterable[str], at: datetime
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Fire ``stock_short`` on the newest orders (latest ``ordered_at``) holding units of each
    SKU whose available quantity is below 0, one order at a time, until it is 0 or above —
    the mirror of ``promote_partials``, through the one rule in the caller's transaction. An
    order shorted gives back all its lines' units; Partial orders the release can now serve
    are promoted by the same rule (oldest first). Returns (shorted, promoted) order ids."""
    shortable = sorted(shortable_states(bundle))
    shorted: list[int] = []
    promoted: list[int] = []
    if not shortable:
        return (), ()
    for sku in sorted(set(skus)):
        tried: set[int] = set()
        while inventory.levels(session, [sku])[sku].available < 0:
            query = (
                select(OrderRow)
                .where(
                    OrderRow.state.in_(shortable),
                    exists().where(
                        OrderLineRow.order_id == OrderRow.id,
                        OrderLineRow.sku == sku,
                        OrderLineRow.reserved > 0,
                    ),
                )
                .order_by(OrderRow.ordered_at.desc(), OrderRow.id.desc())
            )
            if tried:
                query = query.where(OrderRow.id.not_in(sorted(tried)))
            row = session.scalars(query.limit(1)).first()
            if row is None:
                break
            tried.add(row.id)
            result = apply_in_session(
                session,
                bundle,
                row,
                trigger=STOCK_SHORT,
                source="system",
                idempotency_key=f"system:{STOCK_SHORT}:{row.id}:{row.version}",
                at=at,
            )
            if result.applied:
                shorted.append(row.id)
                promoted.extend(result.promoted)
    return tuple(shorted), tuple(promoted)


# --------------------------------------------------------------------------- import


def create_order_in(
    session: Session,
    bundle: BundleLike,
    order: NewOrder,
    *,
    trigger: str,
    source: Source,
    idempotency_key: str,
    at: datetime,
) -> ApplyResult:
    """Insert the order (state = the machine's initial) and its lines, then fire
    ``trigger`` (``import``, ``import_shipped`` …), inside the caller's transaction (the
    Core path of ``create_order`` on the session's connection).
    An order already imported (same store + external id, or same key) is a duplicate."""
    result = _create_order_core(
        _session_conn(session),
        bundle,
        order,
        trigger=trigger,
        source=source,
        idempotency_key=idempotency_key,
        at=at,
    )
    _forget_written(session, result)
    return result


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
    """Import one order in one transaction (insert + lines + ``trigger``); see
    ``create_order_in``. A concurrent import of the same order ends as a duplicate."""

    def work(conn: Connection) -> ApplyResult:
        return _create_order_core(
            conn,
            bundle,
            order,
            trigger=trigger,
            source=source,
            idempotency_key=idempotency_key,
            at=at,
        )

    try:
        return _in_core_transaction(session_factory, work, what=idempotency_key)[0]
    except IntegrityError as exc:
        with session_factory() as session:
            if not _seen(session, idempotency_key) and not (
                order.store_id is not None
                and order.external_id is not None
                and SqlOrderRepository(session).by_external_id(order.store_id, order.external_id)
            ):
                raise exc from None
        return ApplyResult("duplicate", trigger, idempotency_key)


def country_of(address: Mapping[str, Any]) -> str | None:
    """The ISO code of an address's country (``country_iso``), upper case; None if absent."""
    code = str(address.get("country_iso") or "").strip().upper()
    return code[:2] or None


def _order_values(
    order: NewOrder, state: str, attention: str | None, at: datetime, *, spec: str | None
) -> dict[str, Any]:
    """A new order's row: inserted (version 1), then written once by its import trigger
    (version 2) — as it is written in its new state at once."""
    return {
        "reference": order.reference,
        "store_id": order.store_id,
        "external_id": order.external_id,
        "state": state,
        "version": 2,
        "ordered_at": order.ordered_at,
        "currency": order.currency,
        "total_paid": order.total_paid,
        "total_products": order.total_products,
        "total_shipping": order.total_shipping,
        "payment": order.payment,
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "shipping_address": dict(order.shipping_address),
        "invoice_address": dict(order.invoice_address),
        "ship_country": country_of(order.shipping_address),
        "carrier": order.carrier,
        "customer_phone": order.customer_phone,
        "total_discounts": order.total_discounts,
        "total_wrapping": order.total_wrapping,
        "total_paid_tax_excl": order.total_paid_tax_excl,
        "channel_state": order.channel_state,
        "channel_state_id": order.channel_state_id,
        "channel_updated_at": order.channel_updated_at,
        "needs_attention": attention is not None,
        "attention_reason": attention,
        "attention_state": state if attention is not None else None,
        "facts": dict(order.facts),
        "extra": dict(order.extra),
        "created_at": at,
        "updated_at": at,
        "spec_version": spec,
    }


def _line_values(order_id: int, order: NewOrder, booked: Sequence[_Line]) -> list[dict[str, Any]]:
    """A new order's lines, as its import trigger booked them."""
    return [
        {
            "order_id": order_id,
            "sku": line.sku,
            "name": line.name,
            "quantity": line.quantity,
            "reserved": held.reserved,
            "consumed": held.consumed,
            "unit_price": line.unit_price,
            "external_id": line.external_id,
            "extra": dict(line.extra),
        }
        for line, held in zip(order.lines, booked, strict=True)
    ]


def _create_order_core(
    conn: Connection,
    bundle: BundleLike,
    order: NewOrder,
    *,
    trigger: str,
    source: Source,
    idempotency_key: str,
    at: datetime,
) -> ApplyResult:
    """THE import of one order, on prebuilt Core statements (Partial orders promoted on
    the SKUs a release freed, as ``_apply_event_core``). The import trigger
    is fired against the stock read first; the order is inserted already in its new state
    (version 2: inserted, then written once by the trigger), its lines as the local
    effects booked them."""
    st = event_statements(conn)
    if conn.execute(st.seen, {"b_key": idempotency_key}).first() is not None:
        return ApplyResult("duplicate", trigger, idempotency_key)
    if order.store_id is not None and order.external_id is not None:
        twin = conn.execute(
            st.by_external_id, {"b_store": order.store_id, "b_ext": order.external_id}
        ).first()
        if twin is not None:
            return ApplyResult(
                "duplicate",
                trigger,
                idempotency_key,
                order_id=twin[0],
                reference=twin[1],
                state=twin[2],
            )
    if not order.lines:
        raise ConfigError(f"order {order.reference} has no lines")
    skus = sorted({line.sku for line in order.lines})
    stock = {sku: [h, r] for sku, h, r in conn.execute(st.read_stock, {"b_skus": skus})}
    new = _new_order(order, bundle.machine.initial, stock)
    outcome = apply_event(bundle.compiled, _snapshot(new), trigger, at=at)
    freed: set[str] = set()
    if isinstance(outcome, Applied):
        local = _local_kinds(outcome)
        if local:
            freed = _book_local(conn, st, new, local, at=at)
    spec = spec_of(bundle)
    values = _order_values(order, outcome.state, _attention(outcome, source), at, spec=spec)
    new.id = conn.execute(st.insert_order, values).scalar_one()
    conn.execute(st.insert_lines, _line_values(new.id, order, new.lines))
    event_id = conn.execute(
        st.insert_new_event,
        _event_values(idempotency_key, source, trigger, new.id, None, at, outcome),
    ).scalar_one()
    conn.execute(
        st.insert_audit,
        _audit_values(new.id, event_id, trigger, new.state, outcome, source, at, spec=spec),
    )
    outbox_ids = (
        _write_outbox(conn, st, new, outcome, trigger, at=at, spec=spec)
        if isinstance(outcome, Applied)
        else []
    )
    result = _result(
        outcome,
        trigger,
        idempotency_key,
        order_id=new.id,
        reference=order.reference,
        from_state=new.state,
        outbox_ids=outbox_ids,
    )
    return _promoted(conn, bundle, result, freed, at=at)


# --------------------------------------------------------------------------- import, by page


@dataclass(frozen=True)
class OrderImport:
    """One order of ``create_orders_in``: the order, its import trigger, its event key."""

    order: NewOrder
    trigger: str
    idempotency_key: str
    adopt_stock: bool = False
    """The store's quantity already excludes this open order's units (the first backfill):
    they count as on hand for its guard, and reserving puts them back (``_book``)."""


_CHUNK = 500


def _table(model: type[Any]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):  # pragma: no cover - every *Row maps one table
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


def _chunked(items: Sequence[T], size: int = _CHUNK) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass
class _Planned:
    """One new order as the batch will write it (decided in memory, written in bulk)."""

    index: int
    item: OrderImport
    new: _Order
    """The order as booked (``state``: the state before the trigger; ``id`` once written)."""
    outcome: Applied | Refused
    freed: set[str] = field(default_factory=set)
    outbox_ids: tuple[int, ...] = ()


class _StockBook:
    """The batch's inventory rows, read (and on PostgreSQL locked) once, changed in memory."""

    def __init__(self, session: Session, skus: set[str]) -> None:
        self.session = session
        self.base: dict[str, tuple[int, int]] = {}  # as read: sku -> (on hand, reserved)
        self._lock(skus)
        self.reset()

    def reset(self) -> None:
        self.rows: dict[str, list[int]] = {s: list(v) for s, v in self.base.items()}
        self.touched: set[str] = set()  # rows a local effect needs (created when missing)
        self.changed: set[str] = set()  # available changed: updated_at + one push each
        self.adopted: set[str] = set()  # on hand and reserved moved together: written only

    def _lock(self, skus: Iterable[str]) -> None:
        table = _table(InventoryRow)
        postgres = self.session.get_bind().dialect.name == "postgresql"
        for chunk in _chunked(sorted(skus), 900):
            query = (
                select(table.c.sku, table.c.on_hand, table.c.reserved)
                .where(table.c.sku.in_(chunk))
                .order_by(table.c.sku)
            )
            if postgres:
                query = query.with_for_update()
            for sku, on_hand, reserved in self.session.execute(query):
                self.base[sku] = (on_hand, reserved)

    def row(self, sku: str) -> list[int]:
        self.touched.add(sku)
        return self.rows.setdefault(sku, [0, 0])

    def create_missing(self) -> bool:
        """Insert the rows local effects need that did not exist (``inventory.lock`` does
        the same). False when a concurrent writer created one first: its row is now read
        (and locked) and the caller plans again."""
        missing = sorted(self.touched - set(self.base))
        if not missing:
            return True
        now = utcnow()
        stmt = (
            _dialect_insert(self.session)(_table(InventoryRow))
            .values([{"sku": s, "on_hand": 0, "reserved": 0, "updated_at": now} for s in missing])
            .on_conflict_do_nothing(index_elements=["sku"])
            .returning(_table(InventoryRow).c.sku)
        )
        created = set(self.session.scalars(stmt))
        for sku in created:
            self.base[sku] = (0, 0)
        raced = set(missing) - created
        if raced:
            self._lock(raced)
        return not raced


def create_orders_in(
    session: Session,
    bundle: BundleLike,
    imports: Sequence[OrderImport],
    *,
    source: Source,
    at: datetime,
) -> list[ApplyResult]:
    """``create_order_in`` for a page of orders, inside the caller's transaction.

    The results, rows and stock are those of calling ``create_order_in`` once per order in
    this order (each order's state, lines, inbound event, audit row and outbox rows are
    written in the caller's transaction, duplicates are answered the same way), but the
    rows are written with a few bulk statements: the inventory rows of the page's SKUs are
    read (locked on PostgreSQL, in SKU order) once, reservations are booked in memory and
    written once, and each SKU whose available quantity changed gets ONE coalesced
    ``push_stock`` row carrying its final value. An order whose import frees stock (a spec
    may say so) ends the bulk segment: Partial orders are then promoted as one by one.
    """
    session.flush()
    results: list[ApplyResult | None] = [None] * len(imports)
    keys = [i.idempotency_key for i in imports]
    seen: set[str] = set()
    for chunk in _chunked(keys):
        seen.update(
            session.scalars(
                select(InboundEventRow.idempotency_key).where(
                    InboundEventRow.idempotency_key.in_(chunk)
                )
            )
        )
    wanted: dict[int, list[str]] = defaultdict(list)
    for item in imports:
        if item.order.store_id is not None and item.order.external_id is not None:
            wanted[item.order.store_id].append(item.order.external_id)
    existing: dict[tuple[int, str], tuple[int | None, str, str]] = {}
    for store_id, externals in wanted.items():
        for chunk in _chunked(sorted(set(externals))):
            for oid, ext, ref, state in session.execute(
                select(
                    OrderRow.id, OrderRow.external_id, OrderRow.reference, OrderRow.state
                ).where(OrderRow.store_id == store_id, OrderRow.external_id.in_(chunk))
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
                session, bundle, imports, fresh, position, results, source, at
            )
        # a twin is answered with its order as it is at the twin's turn: after the
        # promotions of the segments before it (segments end with those only)
        upto = fresh[position] if position < len(fresh) else len(imports)
        ready = [t for t in pending_twins if t < upto]
        pending_twins = [t for t in pending_twins if t >= upto]
        _answer_twins(session, imports, ready, twins, existing, planned_for, results)
    return [r for r in results if isinstance(r, ApplyResult)]


def _answer_twins(
    session: Session,
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
    now = {
        oid: (ref, state)
        for oid, ref, state in session.execute(
            select(OrderRow.id, OrderRow.reference, OrderRow.state).where(OrderRow.id.in_(wanted))
        )
    }
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


def _adopting(rows: Mapping[str, list[int]], lines: Sequence[NewLine]) -> dict[str, list[int]]:
    """Copies of ``rows`` with an adopted order's units back on hand (for its guard only)."""
    out = {sku: list(row) for sku, row in rows.items()}
    for line in lines:
        if line.sku in out:
            out[line.sku][0] += line.quantity
    return out


def _plan_segment(
    bundle: BundleLike,
    imports: Sequence[OrderImport],
    todo: Sequence[int],
    book: _StockBook,
    at: datetime,
) -> list[_Planned]:
    """Fire each import trigger in the core against the in-memory stock and book its local
    effects (``_snapshot``, ``_book``: as ``create_order_in`` one order after another);
    stop after an order that frees stock (its Partial promotions must run before the next
    order is looked at)."""
    initial = bundle.machine.initial
    plans: list[_Planned] = []
    for index in todo:
        item = imports[index]
        skus = {line.sku for line in item.order.lines}
        rows = {s: book.rows[s] for s in skus if s in book.rows}
        if item.adopt_stock:
            rows = _adopting(rows, item.order.lines)
        new = _new_order(item.order, initial, rows)
        outcome = apply_event(bundle.compiled, _snapshot(new), item.trigger, at=at)
        plan = _Planned(index, item, new, outcome)
        plans.append(plan)
        if not isinstance(outcome, Applied):
            continue
        for kind in _local_kinds(outcome):
            adopt = item.adopt_stock and kind == "reserve_stock"
            changed = _book(kind, new.lines, {sku: book.row(sku) for sku in skus}, adopt=adopt)
            book.changed |= changed
            if adopt:
                book.adopted |= skus
            if kind == "release_stock":
                plan.freed |= changed
        if plan.freed:
            break
    return plans


def _import_segment(
    session: Session,
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
    book = _StockBook(session, skus)
    while True:
        plans = _plan_segment(bundle, imports, todo, book, at)
        if book.create_missing():
            break
        book.reset()  # a concurrent writer created a row we assumed absent: plan again
    _write_segment(session, plans, book, source, at, spec=spec_of(bundle))
    for plan in plans:
        results[plan.index] = _result_of(plan)
    last = plans[-1]
    if last.freed:
        promoted = promote_partials(session, bundle, skus=last.freed, at=at, exclude={last.new.id})
        if promoted:
            results[last.index] = replace(_result_of(last), promoted=promoted)
    return position + len(plans)


def _result_of(plan: _Planned) -> ApplyResult:
    return _result(
        plan.outcome,
        plan.item.trigger,
        plan.item.idempotency_key,
        order_id=plan.new.id,
        reference=plan.new.reference,
        from_state=plan.new.state,
        outbox_ids=plan.outbox_ids,
    )


def _write_segment(
    session: Session,
    plans: Sequence[_Planned],
    book: _StockBook,
    source: Source,
    at: datetime,
    *,
    spec: str | None,
) -> None:
    """The planned orders, lines, inbound events, audit rows, outbox rows, stock rows and
    coalesced stock pushes, in a few bulk statements (ids in parameter order)."""
    st = event_statements(session.connection())
    orders_t = _table(OrderRow)
    ids = session.scalars(
        orders_t.insert().returning(orders_t.c.id, sort_by_parameter_order=True),
        [
            _order_values(
                p.item.order, p.outcome.state, _attention(p.outcome, source), at, spec=spec
            )
            for p in plans
        ],
    )
    for plan, oid in zip(plans, list(ids), strict=True):
        plan.new.id = int(oid)
    session.execute(
        st.insert_lines,
        [row for p in plans for row in _line_values(p.new.id, p.item.order, p.new.lines)],
    )
    events_t = _table(InboundEventRow)
    event_ids = session.scalars(
        events_t.insert().returning(events_t.c.id, sort_by_parameter_order=True),
        [
            _event_values(
                p.item.idempotency_key,
                source,
                p.item.trigger,
                p.new.id,
                None,
                at,
                p.outcome,
            )
            for p in plans
        ],
    )
    session.execute(
        st.insert_audit,
        [
            _audit_values(
                p.new.id,
                int(event_id),
                p.item.trigger,
                p.new.state,
                p.outcome,
                source,
                at,
                spec=spec,
            )
            for p, event_id in zip(plans, list(event_ids), strict=True)
        ],
    )
    effect_rows = [
        (p, values)
        for p in plans
        if isinstance(p.outcome, Applied)
        for values in _outbox_values(p.new, p.outcome, p.item.trigger, at, spec=spec)
    ]
    if effect_rows:
        outbox_t = _table(OutboxRow)
        outbox_ids = session.scalars(
            outbox_t.insert().returning(outbox_t.c.id, sort_by_parameter_order=True),
            [values for _plan, values in effect_rows],
        )
        per_plan: dict[int, list[int]] = defaultdict(list)
        for (plan, _values), oid in zip(effect_rows, list(outbox_ids), strict=True):
            per_plan[plan.index].append(int(oid))
        for plan in plans:
            plan.outbox_ids = tuple(per_plan.get(plan.index, ()))
    _write_stock(session, st, book, at)


def _write_stock(session: Session, st: EventStatements, book: _StockBook, at: datetime) -> None:
    """Changed inventory rows, then one ``push_stock`` per store and changed SKU (the
    pending row of its dedup key rewritten: the same upsert as ``enqueue_stock_push``)."""
    changed = sorted(book.changed)
    written = sorted(book.changed | book.adopted)
    if not written:
        return
    session.execute(
        st.update_inventory,
        [
            {
                "b_sku": sku,
                "b_on_hand": book.rows[sku][0],
                "b_reserved": book.rows[sku][1],
                "b_at": at,
            }
            for sku in written
        ],
    )
    store_ids = list(session.scalars(st.store_ids))
    if store_ids and changed:
        session.execute(st.push_stock, _push_values(store_ids, changed, book.rows, at))
    _forget_written(session, None)
