"""Small persistence ports (Protocols) and their SQLAlchemy implementations.

Repositories receive a ``Session`` and never commit: the caller (``service.apply_inbound``,
the outbox dispatcher, a sync run) owns the transaction. Conflicts surface as
``engine.errors`` classes: a stale order version as ``StaleOrder``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from engine.errors import NotFound

from .tables import BindingRow, OrderRow, OutboxRow

# --------------------------------------------------------------------------- ports

_LEASE_WINDOWS = 4
"""Windows of ``limit`` due rows one lease looks through when other leases hold lanes."""
LANE_LOCK_SPACE = 0x6F6D73
"""The first key of the outbox lanes' PostgreSQL advisory locks (``pg_try_advisory_xact_lock(
space, hashtext(lane))``): two-key locks never collide with the migrations' one-key lock."""


def lane_of(order_id: int | None, dedup_key: str | None, row_id: int) -> str:
    """The lane of an outbox row: its order, else its coalescing key (one SKU in one store),
    else the row alone. Rows of one lane are delivered one at a time, in id order, by one
    dispatcher (``SqlOutboxRepository.lease``)."""
    if order_id is not None:
        return f"order:{order_id}"
    if dedup_key is not None:
        return f"key:{dedup_key}"
    return f"row:{row_id}"


# --------------------------------------------------------------------------- orders


class SqlOrderRepository:
    """Orders with optimistic locking: ``OrderRow.version`` is checked on every UPDATE."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, order_id: int) -> OrderRow:
        row = self.session.get(OrderRow, order_id, options=[selectinload(OrderRow.lines)])
        if row is None:
            raise NotFound(f"order #{order_id} not found")
        return row

    def by_reference(self, reference: str, *, store_id: int | None = None) -> OrderRow:
        """The order with this reference (the store's, or ``#<id>``).

        Raises:
            NotFound: no such order, or the reference is ambiguous across stores.
        """
        if reference.startswith("#") and reference[1:].isdigit():
            return self.get(int(reference[1:]))
        query = select(OrderRow).where(OrderRow.reference == reference)
        if store_id is not None:
            query = query.where(OrderRow.store_id == store_id)
        rows = list(self.session.scalars(query.options(selectinload(OrderRow.lines)).limit(2)))
        if not rows:
            raise NotFound(f"order {reference!r} not found")
        if len(rows) > 1:
            raise NotFound(f"order reference {reference!r} is in several stores (fix: --store)")
        return rows[0]

    def by_external_id(self, store_id: int, external_id: str) -> OrderRow | None:
        return self.session.scalars(
            select(OrderRow)
            .where(OrderRow.store_id == store_id, OrderRow.external_id == external_id)
            .options(selectinload(OrderRow.lines))
        ).one_or_none()


# --------------------------------------------------------------------------- outbox


def _dialect_insert(session: Session) -> Any:
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


class SqlOutboxRepository:
    """The outbox: append effects, coalesce by ``dedup_key``, lease, settle.

    Lease rule: a row is due when it is ``pending`` and ``next_attempt_at <= now``, or
    ``leased`` with an expired ``leased_until`` (its worker died). Leasing counts an attempt.
    Rows are leased by *lane* (``lane_of``: one order, one coalescing key): no row is leased
    while another row of its lane holds a live lease, and on PostgreSQL a transaction-scoped
    advisory lock on the lane makes the check and the lease one step for concurrent
    dispatchers; SQLite has one writer at a time (BEGIN IMMEDIATE).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.contended = 0
        """Candidate rows the last ``lease`` skipped because another lease held their lane."""

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        at: datetime,
        store_id: int | None = None,
        order_id: int | None = None,
        dedup_key: str | None = None,
        then_trigger: str | None = None,
    ) -> int:
        """Add one pending row, or — with ``dedup_key`` — replace the payload of the pending
        row with that key (latest value wins). Returns the row id. Race-free: one upsert."""
        values = {
            "kind": kind,
            "store_id": store_id,
            "order_id": order_id,
            "payload": dict(payload),
            "dedup_key": dedup_key,
            "then_trigger": then_trigger,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        insert = _dialect_insert(self.session)
        stmt = insert(OutboxRow).values(**values)
        if dedup_key is not None:
            stmt = stmt.on_conflict_do_update(
                index_elements=[OutboxRow.dedup_key],
                index_where=text("state = 'pending'"),
                set_={"payload": stmt.excluded.payload, "kind": stmt.excluded.kind},
            )
        # The ORM must not keep a stale copy of a row we just rewrote behind its back.
        new_id = self.session.execute(
            stmt.returning(OutboxRow.id), execution_options={"synchronize_session": False}
        ).scalar_one()
        existing = self.session.identity_map.get(
            self.session.identity_key(OutboxRow, (int(new_id),))
        )
        if existing is not None:
            self.session.expire(existing)
        return int(new_id)

    def lease(
        self, limit: int, *, now: datetime, owner: str, lease_seconds: float = 60.0
    ) -> list[OutboxRow]:
        """Take up to ``limit`` due rows for ``owner`` until now+lease, whole lanes at a time
        (oldest first), never a row of a lane another lease holds. The one lease: the
        dispatcher calls it.

        1. candidates: the oldest due rows whose lane has no live lease (committed);
        2. PostgreSQL: a transaction-scoped advisory lock on each candidate lane, *tried*
           (``pg_try_advisory_xact_lock``): a lane another lease transaction is taking right
           now is skipped, never waited for (so two leases never deadlock), and stays held
           until this transaction commits — when its leases are visible to everyone;
        3. with the lanes held, the due rows of those lanes whose lane has no live lease, read
           again (a new statement sees every lease committed before the lock was granted),
           locked ``FOR UPDATE NOWAIT`` (a row a writer holds at that instant: ``SKIP LOCKED``,
           and the rows of its lane after it are left) and leased in one UPDATE.
        SQLite runs one writer at a time (every transaction is ``BEGIN IMMEDIATE``), so steps
        1-3 cannot interleave there and need no lock. When another lease is taking the
        oldest lanes, the next window of due rows is tried (up to ``_LEASE_WINDOWS``), as
        SKIP LOCKED would; ``contended`` counts the candidate rows skipped that way (the
        caller may try again soon instead of idling).
        """
        self.contended = 0
        session = self.session
        postgres = session.get_bind().dialect.name == "postgresql"
        due = or_(
            and_(OutboxRow.state == "pending", OutboxRow.next_attempt_at <= now),
            and_(OutboxRow.state == "leased", OutboxRow.leased_until < now),
        )
        # a lane with a live lease: two uncorrelated sets (hashed once per statement, not
        # probed per row), the orders and the keys that hold one
        live = and_(OutboxRow.state == "leased", OutboxRow.leased_until >= now)
        live_orders = select(OutboxRow.order_id).where(live, OutboxRow.order_id.is_not(None))
        live_keys = select(OutboxRow.dedup_key).where(
            live, OutboxRow.order_id.is_(None), OutboxRow.dedup_key.is_not(None)
        )
        free = and_(
            or_(OutboxRow.order_id.is_(None), OutboxRow.order_id.not_in(live_orders)),
            or_(
                OutboxRow.order_id.is_not(None),
                OutboxRow.dedup_key.is_(None),
                OutboxRow.dedup_key.not_in(live_keys),
            ),
        )
        held: set[str] = set()
        refused: set[str] = set()
        orders: list[int] = []
        keys: list[str] = []
        singles: list[int] = []
        after = 0
        first = 0
        for _ in range(_LEASE_WINDOWS):
            window = session.execute(
                select(OutboxRow.id, OutboxRow.order_id, OutboxRow.dedup_key)
                .where(due, free, OutboxRow.id > after)
                .order_by(OutboxRow.id)
                .limit(limit)
            ).all()
            if not window:
                break
            first = first or int(window[0].id)
            after = int(window[-1].id)
            fresh = {lane_of(r.order_id, r.dedup_key, r.id) for r in window} - held - refused
            got = self._try_lanes(fresh) if postgres else fresh
            held |= got
            refused |= fresh - got
            for r in window:
                if lane_of(r.order_id, r.dedup_key, r.id) not in held:
                    self.contended += 1
                elif r.order_id is not None:
                    orders.append(r.order_id)
                elif r.dedup_key is not None:
                    keys.append(r.dedup_key)
                else:
                    singles.append(r.id)
            if len(orders) + len(keys) + len(singles) >= limit or len(window) < limit:
                break
        if not held:
            return []
        # no due row of a free lane is older than the first candidate: start there
        in_held = and_(
            OutboxRow.id >= first,
            or_(
                OutboxRow.order_id.in_(orders),
                and_(OutboxRow.order_id.is_(None), OutboxRow.dedup_key.in_(keys)),
                and_(
                    OutboxRow.order_id.is_(None),
                    OutboxRow.dedup_key.is_(None),
                    OutboxRow.id.in_(singles),
                ),
            ),
        )
        query = (
            select(OutboxRow)
            .where(due, free, in_held)
            .order_by(OutboxRow.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        if postgres:
            rows = self._lock_rows(query, due, free, in_held)
        else:
            rows = list(session.scalars(query))
        if not rows:
            return []
        until = now + timedelta(seconds=lease_seconds)
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_([r.id for r in rows]))
            .values(
                state="leased",
                lease_owner=owner,
                leased_until=until,
                attempts=OutboxRow.attempts + 1,
            ),
            execution_options={"synchronize_session": False},
        )
        for row in rows:
            set_committed_value(row, "state", "leased")
            set_committed_value(row, "lease_owner", owner)
            set_committed_value(row, "leased_until", until)
            set_committed_value(row, "attempts", int(row.attempts) + 1)
        return rows

    def _lock_rows(self, query: Any, *where: Any) -> list[OutboxRow]:
        """PostgreSQL: ``query``'s rows locked ``FOR UPDATE``. No other lease locks rows of
        these lanes, but a writer may hold one for an instant (an enqueue rewriting a pending
        row, a late settle). Never wait for it (a wait could deadlock with a writer waiting
        for a row locked here): ``NOWAIT`` in a savepoint, and when a row is busy, ``SKIP
        LOCKED`` without the rows of its lane after it, so each lane stays in id order."""
        try:
            with self.session.begin_nested():
                return list(self.session.scalars(query.with_for_update(of=OutboxRow, nowait=True)))
        except OperationalError as exc:
            if getattr(getattr(exc, "orig", None), "sqlstate", None) != "55P03":
                raise  # not "lock not available"
        rows = list(self.session.scalars(query.with_for_update(of=OutboxRow, skip_locked=True)))
        return self._before_gaps(rows, *where) if rows else rows

    def _before_gaps(self, rows: list[OutboxRow], *where: Any) -> list[OutboxRow]:
        """``rows`` (locked, id order) without those that come after a due row of their lane
        that the locking read skipped (locked by a writer at that instant)."""
        got = {r.id for r in rows}
        last = max(got)
        gap: dict[str, int] = {}
        for seen in self.session.execute(
            select(OutboxRow.id, OutboxRow.order_id, OutboxRow.dedup_key).where(
                *where, OutboxRow.id <= last
            )
        ):
            if seen.id not in got:
                lane = lane_of(seen.order_id, seen.dedup_key, seen.id)
                gap[lane] = min(gap.get(lane, seen.id), seen.id)
        if not gap:
            return rows
        kept: list[OutboxRow] = []
        for row in rows:
            first_gap = gap.get(lane_of(row.order_id, row.dedup_key, row.id))
            if first_gap is None or row.id < first_gap:
                kept.append(row)
        return kept

    def _try_lanes(self, lanes: Iterable[str]) -> set[str]:
        """PostgreSQL: the lanes whose transaction-scoped advisory lock this transaction got
        (tried, never waited for; held until commit or rollback)."""
        wanted = sorted(lanes)
        if not wanted:
            return set()
        return set(
            self.session.scalars(
                text(
                    "SELECT lane FROM unnest(CAST(:lanes AS text[])) AS lane "
                    "WHERE pg_try_advisory_xact_lock(CAST(:space AS integer), hashtext(lane))"
                ),
                {"lanes": wanted, "space": LANE_LOCK_SPACE},
            )
        )

    def _owned(self, entry_id: int, owner: str | None) -> OutboxRow | None:
        row = self.session.get(OutboxRow, entry_id, populate_existing=True)
        if row is None:
            raise NotFound(f"outbox entry #{entry_id} not found")
        if owner is not None and (row.state != "leased" or row.lease_owner != owner):
            return None  # the lease expired and someone else took it
        return row

    def mark_done(self, entry_id: int, *, at: datetime, owner: str | None = None) -> bool:
        row = self._owned(entry_id, owner)
        if row is None:
            return False
        row.state = "done"
        row.delivered_at = at
        row.leased_until = None
        row.last_error = None
        self.session.flush()
        return True

    def mark_failed(
        self,
        entry_id: int,
        error: str,
        *,
        at: datetime,
        retry_at: datetime,
        owner: str | None = None,
    ) -> bool:
        """Back to ``pending`` at ``retry_at``. A coalescable row that meanwhile got a newer
        pending twin is closed as superseded instead (the newer value will be delivered)."""
        row = self._owned(entry_id, owner)
        if row is None:
            return False
        row.last_error = error
        row.leased_until = None
        if self._superseded(row, at):
            return True
        row.state = "pending"
        row.next_attempt_at = retry_at
        self.session.flush()
        return True

    def mark_dead(
        self, entry_id: int, error: str, *, at: datetime, owner: str | None = None
    ) -> bool:
        row = self._owned(entry_id, owner)
        if row is None:
            return False
        row.state = "dead"
        row.last_error = error
        row.leased_until = None
        self.session.flush()
        return True

    def retry(self, entry_ids: Iterable[int] | None = None, *, at: datetime) -> int:
        """Put dead rows (the given ids, or every dead row) back to pending now."""
        query = select(OutboxRow).where(OutboxRow.state == "dead").order_by(OutboxRow.id)
        if entry_ids is not None:
            ids = list(entry_ids)
            query = query.where(OutboxRow.id.in_(ids))
            found = set(self.session.scalars(select(OutboxRow.id).where(OutboxRow.id.in_(ids))))
            missing = sorted(set(ids) - found)
            if missing:
                raise NotFound(f"outbox entry #{missing[0]} not found")
        count = 0
        for row in self.session.scalars(query):
            count += 1
            if self._superseded(row, at):
                continue
            row.state = "pending"
            row.attempts = 0
            row.next_attempt_at = at
            self.session.flush()
        return count

    def _superseded(self, row: OutboxRow, at: datetime) -> bool:
        if row.dedup_key is None:
            return False
        newer = self.session.scalar(
            select(OutboxRow.id).where(
                OutboxRow.dedup_key == row.dedup_key,
                OutboxRow.state == "pending",
                OutboxRow.id != row.id,
            )
        )
        if newer is None:
            return False
        row.state = "done"
        row.last_error = f"superseded by outbox #{newer}"
        self.session.flush()
        return True


# --------------------------------------------------------------------------- bindings


class SqlBindingRepository:
    """External <-> internal ids per store and kind (OCA binder)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def to_internal(self, store_id: int, kind: str, external_id: str) -> str | None:
        return self.session.scalar(
            select(BindingRow.internal_id).where(
                BindingRow.store_id == store_id,
                BindingRow.kind == kind,
                BindingRow.external_id == str(external_id),
            )
        )

    def to_external(self, store_id: int, kind: str, internal_id: str) -> str | None:
        return self.session.scalar(
            select(BindingRow.external_id)
            .where(
                BindingRow.store_id == store_id,
                BindingRow.kind == kind,
                BindingRow.internal_id == str(internal_id),
            )
            .order_by(BindingRow.id)
            .limit(1)
        )

    def bind(self, store_id: int, kind: str, external_id: str, internal_id: str) -> None:
        """Link the ids (idempotent; re-binding an external id moves it). One upsert."""
        insert = _dialect_insert(self.session)
        stmt = insert(BindingRow).values(
            store_id=store_id,
            kind=kind,
            external_id=str(external_id),
            internal_id=str(internal_id),
            updated_at=_now(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[BindingRow.store_id, BindingRow.kind, BindingRow.external_id],
            set_={
                "internal_id": stmt.excluded.internal_id,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        self.session.execute(stmt)

    def all(self, store_id: int, kind: str) -> dict[str, str]:
        """Every external -> internal id of a kind in a store."""
        rows = self.session.execute(
            select(BindingRow.external_id, BindingRow.internal_id).where(
                BindingRow.store_id == store_id, BindingRow.kind == kind
            )
        )
        return {str(e): str(i) for e, i in rows}


def _now() -> datetime:
    from .base import utcnow

    return utcnow()
