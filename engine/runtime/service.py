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
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.core import Applied, Blocker, LineFact, OrderSnapshot, apply_event, is_local
from engine.errors import ConfigError, StaleOrder

from . import inventory
from .db.repository import SqlOrderRepository, SqlOutboxRepository
from .db.tables import AuditRow, InboundEventRow, OrderLineRow, OrderRow

Source = Literal["channel", "wms", "user", "system"]
SOURCES: frozenset[str] = frozenset({"channel", "wms", "user", "system"})
ATTENTION_SOURCES: frozenset[str] = frozenset({"channel", "wms"})
"""A refusal of an event from these sources flags the order for an operator."""
MAX_ATTEMPTS = 5

T = TypeVar("T")


class BundleLike(Protocol):
    """What the service needs of ``engine.runtime.specs.Bundle``."""

    @property
    def compiled(self) -> Any: ...
    @property
    def machine(self) -> Any: ...


@dataclass(frozen=True)
class ApplyResult:
    """What happened to one inbound event.

    ``outcome``: ``applied`` | ``refused`` | ``duplicate`` (idempotency key seen before:
    acknowledged, nothing written).
    """

    outcome: Literal["applied", "refused", "duplicate"]
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


@dataclass(frozen=True)
class NewLine:
    sku: str
    quantity: int
    unit_price: Decimal | None = None
    name: str | None = None
    external_id: str | None = None


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
    channel_state: str | None = None
    channel_state_id: int | None = None
    channel_updated_at: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StockResult:
    level: inventory.StockLevel
    promoted: tuple[int, ...] = ()


# --------------------------------------------------------------------------- transactions


def _in_transaction(
    session_factory: sessionmaker[Session], work: Callable[[Session], T], *, what: str
) -> tuple[T, int]:
    """Run ``work`` in one transaction, retrying a stale order version a few times."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with session_factory.begin() as session:
                return work(session), attempt
        except (StaleOrder, StaleDataError):
            # another writer changed the order between our read and write: read it again
            if attempt == MAX_ATTEMPTS:
                raise StaleOrder(
                    f"{what}: the order kept changing; gave up after {attempt}"
                ) from None
            time.sleep(0.005 * attempt)
    raise StaleOrder(f"{what}: gave up after {MAX_ATTEMPTS} attempts")  # pragma: no cover


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
    """
    if source not in SOURCES:
        raise ConfigError(f"unknown event source {source!r} (one of {', '.join(sorted(SOURCES))})")
    if (order_id is None) == (reference is None):
        raise ConfigError("apply_inbound needs exactly one of order_id or reference")

    def work(session: Session) -> ApplyResult:
        if _seen(session, idempotency_key):
            return ApplyResult("duplicate", trigger, idempotency_key)
        repo = SqlOrderRepository(session)
        if order_id is not None:
            row = repo.get(order_id)
        else:
            row = repo.by_reference(reference or "", store_id=store_id)
        return apply_in_session(
            session,
            bundle,
            row,
            trigger=trigger,
            source=source,
            idempotency_key=idempotency_key,
            at=at,
            payload=payload,
        )

    try:
        result, attempts = _in_transaction(session_factory, work, what=idempotency_key)
    except IntegrityError as exc:
        _duplicate_after_race(session_factory, idempotency_key, exc)
        return ApplyResult("duplicate", trigger, idempotency_key)
    return result if attempts == 1 else _with_attempts(result, attempts)


def _with_attempts(result: ApplyResult, attempts: int) -> ApplyResult:
    from dataclasses import replace

    return replace(result, attempts=attempts)


# --------------------------------------------------------------------------- in-session core


def build_snapshot(session: Session, row: OrderRow) -> OrderSnapshot:
    """The order as the core sees it. A line's ``reservable`` = available stock + what the
    line already holds (minus what earlier lines of the same order need of that SKU)."""
    stock = inventory.levels(session, [line.sku for line in row.lines])
    spare = {sku: level.available for sku, level in stock.items()}
    lines = []
    for line in row.lines:
        reservable = max(0, spare[line.sku]) + line.reserved
        lines.append(LineFact(sku=line.sku, quantity=line.quantity, reservable=reservable))
        spare[line.sku] -= max(0, line.quantity - line.reserved - line.consumed)
    return OrderSnapshot(state=row.state, lines=tuple(lines), facts=dict(row.facts or {}))


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
    """The body of the one rule, inside the caller's transaction (no commit here).

    The inbound event row is flushed first, so a concurrent twin of this event fails on
    the unique key before anything else is written.
    """
    event = InboundEventRow(
        idempotency_key=idempotency_key,
        source=source,
        trigger=trigger,
        order_id=row.id,
        payload=dict(payload) if payload is not None else None,
        received_at=at,
        outcome="pending",
    )
    session.add(event)
    session.flush()

    version = row.version
    snapshot = build_snapshot(session, row)
    outcome = apply_event(bundle.compiled, snapshot, trigger, at=at)
    from_state = row.state

    if not isinstance(outcome, Applied):
        event.outcome = "refused"
        session.add(
            AuditRow(
                order_id=row.id,
                event_id=event.id,
                trigger=trigger,
                from_state=from_state,
                to_state=from_state,
                applied=False,
                source=source,
                blockers=[_blocker_doc(b) for b in outcome.blockers],
                effects=[],
                at=at,
            )
        )
        if source in ATTENTION_SOURCES:
            row.needs_attention = True
            row.attention_reason = "; ".join(b.message for b in outcome.blockers)
        row.updated_at = at
        SqlOrderRepository(session).save(row, expected_version=version)
        return ApplyResult(
            "refused",
            trigger,
            idempotency_key,
            order_id=row.id,
            reference=row.reference,
            from_state=from_state,
            state=from_state,
            blockers=outcome.blockers,
        )

    event.outcome = "applied"
    row.state = outcome.state
    row.updated_at = at  # an internal transition bumps the version too
    freed: set[str] = set()
    for effect in outcome.effects:
        if not (effect.local or is_local(effect.kind)):
            continue
        if effect.kind == "reserve_stock":
            inventory.reserve_lines(session, row.lines, at=at)
        elif effect.kind == "release_stock":
            freed |= inventory.release_lines(session, row.lines, at=at)
        elif effect.kind == "consume_stock":
            inventory.consume_lines(session, row.lines, at=at)
    outbox_effects = [e for e in outcome.effects if not (e.local or is_local(e.kind))]
    outbox_rows = SqlOutboxRepository(session).append(
        outbox_effects,
        order_id=row.id,
        store_id=row.store_id,
        at=at,
        extra={"state": outcome.state, "trigger": trigger, "reference": row.reference},
    )
    session.add(
        AuditRow(
            order_id=row.id,
            event_id=event.id,
            trigger=trigger,
            from_state=from_state,
            to_state=outcome.state,
            applied=True,
            source=source,
            effects=[e.kind for e in outcome.effects],
            blockers=[],
            at=at,
        )
    )
    SqlOrderRepository(session).save(row, expected_version=version)
    promoted: tuple[int, ...] = ()
    if promote and freed:
        promoted = promote_partials(session, bundle, skus=freed, at=at, exclude={row.id})
    return ApplyResult(
        "applied",
        trigger,
        idempotency_key,
        order_id=row.id,
        reference=row.reference,
        from_state=from_state,
        state=outcome.state,
        effects=tuple(e.kind for e in outcome.effects),
        outbox_ids=tuple(r.id for r in outbox_rows),
        promoted=promoted,
    )


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
    """``omsflow stock set``: on hand := quantity, then promote Partial orders; one transaction."""

    def work(session: Session) -> StockResult:
        inventory.set_on_hand(session, sku, quantity, at=at)
        promoted = promote_partials(session, bundle, skus={sku}, at=at)
        return StockResult(inventory.levels(session, [sku])[sku], promoted)

    return _in_transaction(session_factory, work, what=f"stock set {sku}")[0]


def adjust_stock(
    session_factory: sessionmaker[Session],
    bundle: BundleLike,
    sku: str,
    delta: int,
    *,
    at: datetime,
) -> StockResult:
    """``omsflow stock adjust``: on hand += delta, then promote Partial orders; one transaction."""

    def work(session: Session) -> StockResult:
        inventory.adjust(session, sku, delta, at=at)
        promoted = promote_partials(session, bundle, skus={sku}, at=at) if delta > 0 else ()
        return StockResult(inventory.levels(session, [sku])[sku], promoted)

    return _in_transaction(session_factory, work, what=f"stock adjust {sku}")[0]


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
    ``trigger`` (``import``, ``import_shipped`` …), inside the caller's transaction.
    An order already imported (same store + external id, or same key) is a duplicate."""
    if _seen(session, idempotency_key):
        return ApplyResult("duplicate", trigger, idempotency_key)
    repo = SqlOrderRepository(session)
    if order.store_id is not None and order.external_id is not None:
        existing = repo.by_external_id(order.store_id, order.external_id)
        if existing is not None:
            return ApplyResult(
                "duplicate",
                trigger,
                idempotency_key,
                order_id=existing.id,
                reference=existing.reference,
                state=existing.state,
            )
    if not order.lines:
        raise ConfigError(f"order {order.reference} has no lines")
    row = OrderRow(
        reference=order.reference,
        store_id=order.store_id,
        external_id=order.external_id,
        state=bundle.machine.initial,
        ordered_at=order.ordered_at,
        currency=order.currency,
        total_paid=order.total_paid,
        total_products=order.total_products,
        total_shipping=order.total_shipping,
        payment=order.payment,
        customer_name=order.customer_name,
        customer_email=order.customer_email,
        shipping_address=dict(order.shipping_address),
        channel_state=order.channel_state,
        channel_state_id=order.channel_state_id,
        channel_updated_at=order.channel_updated_at,
        facts=dict(order.facts),
        needs_attention=False,
        created_at=at,
        updated_at=at,
    )
    for line in order.lines:
        row.lines.append(
            OrderLineRow(
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                reserved=0,
                consumed=0,
                unit_price=line.unit_price,
                external_id=line.external_id,
            )
        )
    repo.add(row)
    return apply_in_session(
        session,
        bundle,
        row,
        trigger=trigger,
        source=source,
        idempotency_key=idempotency_key,
        at=at,
    )


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

    def work(session: Session) -> ApplyResult:
        return create_order_in(
            session,
            bundle,
            order,
            trigger=trigger,
            source=source,
            idempotency_key=idempotency_key,
            at=at,
        )

    try:
        return _in_transaction(session_factory, work, what=idempotency_key)[0]
    except IntegrityError as exc:
        with session_factory() as session:
            if not _seen(session, idempotency_key) and not (
                order.store_id is not None
                and order.external_id is not None
                and SqlOrderRepository(session).by_external_id(order.store_id, order.external_id)
            ):
                raise exc from None
        return ApplyResult("duplicate", trigger, idempotency_key)
