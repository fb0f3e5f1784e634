"""Per-store sync schedules kept in the database: which job runs next, claimed exactly once.

Each connected store has one ``schedules`` row per job (``catalog``, ``new_orders``,
``status_changes``) whose ``next_run_at`` says when it is due; the intervals come from the
channel spec (``channel.schedules``). A worker *claims* a due job with one compare-and-set
``UPDATE … WHERE id = :id AND next_run_at = :seen RETURNING`` that moves ``next_run_at`` to a
lease deadline: of several workers (processes, on PostgreSQL) exactly one sees its UPDATE
match, so no job runs twice. When the job ends, ``finish`` writes ``last_run_at`` and the
next slot of the schedule — the first ``planned + k * interval`` after now — again guarded by
the lease value, so a worker whose lease expired cannot overwrite its successor.

Restart rule: nothing is repeated (a job whose next slot is in the future is not run on
start) and nothing is skipped (a job that fell due while no worker ran runs once, at start;
a job whose worker died mid-run is claimed again when its lease expires). Missed slots are
not replayed one by one: syncs read from cursors, so one run catches up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.spec import ChannelSpec

from .db.tables import ScheduleRow, StoreRow

CATALOG = "catalog"
NEW_ORDERS = "new_orders"
STATUS_CHANGES = "status_changes"
JOBS: tuple[str, ...] = (CATALOG, NEW_ORDERS, STATUS_CHANGES)

DEFAULT_LEASE_SECONDS = 900.0
"""How long a claimed job may run before another worker assumes its runner died."""


def intervals(channel: ChannelSpec) -> dict[str, int]:
    """Job name -> interval in seconds, from the channel's ``schedules`` (catalogue job only
    when ``catalog`` has an interval)."""
    spec = channel.schedules
    out = {NEW_ORDERS: spec.new_orders_seconds, STATUS_CHANGES: spec.status_changes_seconds}
    if spec.catalog_seconds:
        out[CATALOG] = spec.catalog_seconds
    return {job: int(out[job]) for job in JOBS if job in out}


@dataclass(frozen=True)
class Claim:
    """A job this worker now owns until ``lease_until``."""

    schedule_id: int
    store_id: int
    store_name: str
    job: str
    planned_at: datetime
    """The ``next_run_at`` that was due (the slot being run)."""
    lease_until: datetime
    interval_seconds: int


def next_slot(planned: datetime, interval_seconds: int, now: datetime) -> datetime:
    """The first ``planned + k * interval`` (k >= 1) strictly after ``now``."""
    step = timedelta(seconds=max(1, interval_seconds))
    slot = planned + step
    if slot > now:
        return slot
    missed = math.floor((now - slot) / step) + 1
    return slot + missed * step


def ensure_schedules(
    session: Session,
    channel: ChannelSpec,
    *,
    now: datetime,
    store_ids: Iterable[int] | None = None,
    first_run_at: datetime | None = None,
) -> int:
    """Create the missing schedule rows of every store (or of ``store_ids``): due at
    ``first_run_at`` (default ``now``). Existing rows keep their times. Returns rows added.
    The caller owns the transaction; concurrent callers are safe (unique store+job; the
    loser's insert is skipped)."""
    jobs = intervals(channel)
    ids = list(store_ids) if store_ids is not None else list(session.scalars(select(StoreRow.id)))
    if not ids:
        return 0
    have = {
        (sid, job)
        for sid, job in session.execute(
            select(ScheduleRow.store_id, ScheduleRow.job).where(ScheduleRow.store_id.in_(ids))
        )
    }
    added = 0
    from .db.repository import _dialect_insert  # one upsert helper for both backends

    insert = _dialect_insert(session)
    for sid in ids:
        for job in jobs:
            if (sid, job) in have:
                continue
            stmt = (
                insert(ScheduleRow)
                .values(store_id=sid, job=job, next_run_at=first_run_at or now, last_run_at=None)
                .on_conflict_do_nothing(index_elements=[ScheduleRow.store_id, ScheduleRow.job])
                .returning(ScheduleRow.id)
            )
            added += session.execute(stmt).first() is not None
    session.flush()
    return added


def claim_due(
    factory: sessionmaker[Session],
    channel: ChannelSpec,
    *,
    now: datetime,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    limit: int = 20,
) -> Claim | None:
    """Claim the most overdue job (its own short transaction), or ``None`` when none is due.

    The UPDATE only matches while ``next_run_at`` still holds the value read: a concurrent
    claimer that won moved it, so the loser's UPDATE returns no row and it tries the next.
    """
    jobs = intervals(channel)
    lease_until = now + timedelta(seconds=lease_seconds)
    with factory.begin() as session:
        due = session.execute(
            select(ScheduleRow.id, ScheduleRow.store_id, ScheduleRow.job, ScheduleRow.next_run_at)
            .where(ScheduleRow.next_run_at <= now, ScheduleRow.job.in_(list(jobs)))
            .order_by(ScheduleRow.next_run_at, ScheduleRow.id)
            .limit(limit)
        ).all()
        for schedule_id, store_id, job, planned in due:
            won = session.execute(
                update(ScheduleRow)
                .where(ScheduleRow.id == schedule_id, ScheduleRow.next_run_at == planned)
                .values(next_run_at=lease_until)
                .returning(ScheduleRow.id),
                execution_options={"synchronize_session": False},
            ).first()
            if won is None:
                continue
            name = session.scalar(select(StoreRow.name).where(StoreRow.id == store_id)) or "?"
            return Claim(
                schedule_id=schedule_id,
                store_id=store_id,
                store_name=name,
                job=job,
                planned_at=planned,
                lease_until=lease_until,
                interval_seconds=jobs[job],
            )
    return None


def finish(
    factory: sessionmaker[Session], claim: Claim, *, started_at: datetime, now: datetime
) -> bool:
    """Record the run (``last_run_at = started_at``) and schedule the next slot. ``False``
    when the lease was lost (another worker took the job over; it owns the row now)."""
    with factory.begin() as session:
        done = session.execute(
            update(ScheduleRow)
            .where(
                ScheduleRow.id == claim.schedule_id,
                ScheduleRow.next_run_at == claim.lease_until,
            )
            .values(
                last_run_at=started_at,
                next_run_at=next_slot(claim.planned_at, claim.interval_seconds, now),
            )
            .returning(ScheduleRow.id),
            execution_options={"synchronize_session": False},
        ).first()
    return done is not None


def release(factory: sessionmaker[Session], claim: Claim) -> bool:
    """Give a claimed job back unrun (shutdown before it started, or it failed): due again
    at its planned time, so the next worker runs it at once — nothing is skipped."""
    with factory.begin() as session:
        done = session.execute(
            update(ScheduleRow)
            .where(
                ScheduleRow.id == claim.schedule_id,
                ScheduleRow.next_run_at == claim.lease_until,
            )
            .values(next_run_at=claim.planned_at)
            .returning(ScheduleRow.id),
            execution_options={"synchronize_session": False},
        ).first()
    return done is not None


def retry_later(
    factory: sessionmaker[Session], claim: Claim, *, now: datetime, delay_seconds: float
) -> bool:
    """A failed run: due again after ``delay_seconds`` (not counted as a run)."""
    with factory.begin() as session:
        done = session.execute(
            update(ScheduleRow)
            .where(
                ScheduleRow.id == claim.schedule_id,
                ScheduleRow.next_run_at == claim.lease_until,
            )
            .values(next_run_at=now + timedelta(seconds=delay_seconds))
            .returning(ScheduleRow.id),
            execution_options={"synchronize_session": False},
        ).first()
    return done is not None


def schedule_rows(session: Session) -> list[ScheduleRow]:
    """Every schedule row, by store and job (for ``omsflow status``)."""
    return list(
        session.scalars(select(ScheduleRow).order_by(ScheduleRow.store_id, ScheduleRow.job))
    )
