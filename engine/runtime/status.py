"""``omsflow status``: per store the last and next run of each job and its lag, the outbox
depth (pending / leased / dead) and the dead letters an operator must look at."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .db.tables import OutboxRow, ScheduleRow, StoreRow, SyncRunRow

DEAD_LETTER_LIMIT = 20


@dataclass(frozen=True)
class JobStatus:
    job: str
    last_run_at: datetime | None
    next_run_at: datetime
    lag_seconds: float
    """How long the job is overdue (0 when its next run is in the future)."""
    last_result: str | None = None
    """The newest ``sync_runs`` status of the matching stream (ok / failed / running)."""
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "last_run_at": _iso(self.last_run_at),
            "next_run_at": _iso(self.next_run_at),
            "lag_seconds": round(self.lag_seconds, 1),
            "last_result": self.last_result,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class StoreStatus:
    id: int
    name: str
    url: str
    jobs: list[JobStatus]
    outbox: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "jobs": [j.to_json() for j in self.jobs],
            "outbox": self.outbox,
        }


@dataclass(frozen=True)
class Status:
    at: datetime
    stores: list[StoreStatus]
    outbox: dict[str, int]
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "stores": [s.to_json() for s in self.stores],
            "outbox": self.outbox,
            "dead_letters": self.dead_letters,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


_STREAMS = {
    "catalog": ("catalog", "catalogue", "products"),
    "new_orders": ("new_orders", "orders", "orders_new"),
    "status_changes": ("status_changes", "orders", "orders_status"),
}


def _depth(rows: list[tuple[int | None, str, int]], store_id: int | None) -> dict[str, int]:
    out = {"pending": 0, "leased": 0, "dead": 0, "done": 0}
    for sid, state, count in rows:
        if store_id is None or sid == store_id:
            out[state] = out.get(state, 0) + count
    return out


def collect(session: Session, *, now: datetime) -> Status:
    """Everything ``omsflow status`` shows, read in one session."""
    stores = list(session.scalars(select(StoreRow).order_by(StoreRow.name)))
    schedules = list(
        session.scalars(select(ScheduleRow).order_by(ScheduleRow.store_id, ScheduleRow.job))
    )
    depth_rows = [
        (sid, state, int(count))
        for sid, state, count in session.execute(
            select(OutboxRow.store_id, OutboxRow.state, func.count()).group_by(
                OutboxRow.store_id, OutboxRow.state
            )
        )
    ]
    newest = (
        select(SyncRunRow.store_id, SyncRunRow.stream, func.max(SyncRunRow.id).label("id"))
        .group_by(SyncRunRow.store_id, SyncRunRow.stream)
        .subquery()
    )
    runs = {
        (r.store_id, r.stream): r
        for r in session.scalars(select(SyncRunRow).join(newest, SyncRunRow.id == newest.c.id))
    }
    out: list[StoreStatus] = []
    for store in stores:
        jobs: list[JobStatus] = []
        for row in (s for s in schedules if s.store_id == store.id):
            run = next(
                (
                    runs[(store.id, name)]
                    for name in _STREAMS.get(row.job, (row.job,))
                    if (store.id, name) in runs
                ),
                None,
            )
            jobs.append(
                JobStatus(
                    job=row.job,
                    last_run_at=row.last_run_at,
                    next_run_at=row.next_run_at,
                    lag_seconds=max(0.0, (now - row.next_run_at).total_seconds()),
                    last_result=run.status if run else None,
                    last_error=run.error if run else None,
                )
            )
        depth = _depth(depth_rows, store.id)
        out.append(StoreStatus(store.id, store.name, store.url, jobs, depth))
    dead = [
        {
            "id": r.id,
            "kind": r.kind,
            "store_id": r.store_id,
            "order_id": r.order_id,
            "attempts": r.attempts,
            "error": r.last_error,
            "created_at": _iso(r.created_at),
        }
        for r in session.scalars(
            select(OutboxRow)
            .where(OutboxRow.state == "dead")
            .order_by(OutboxRow.id.desc())
            .limit(DEAD_LETTER_LIMIT)
        )
    ]
    return Status(at=now, stores=out, outbox=_depth(depth_rows, None), dead_letters=dead)


def _ago(now: datetime, value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    return _human(abs(seconds)) + (" ago" if seconds >= 0 else " from now")


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def render(status: Status) -> list[str]:
    """Human lines for ``omsflow status``."""
    now = status.at
    lines: list[str] = []
    if not status.stores:
        lines.append("no store connected (omsflow store connect --url URL --key-env VAR)")
    for store in status.stores:
        lines.append(f"store {store.name}  {store.url}")
        if not store.jobs:
            lines.append("  no schedules yet (they are created by `omsflow run`)")
        for job in store.jobs:
            lag = f"  LAG {_human(job.lag_seconds)}" if job.lag_seconds >= 1 else ""
            result = f"  last result: {job.last_result}" if job.last_result else ""
            lines.append(
                f"  {job.job:<15} last {_ago(now, job.last_run_at):<14} "
                f"next {_ago(now, job.next_run_at):<14}{lag}{result}"
            )
        o = store.outbox
        lines.append(
            f"  outbox: {o['pending']} pending, {o['leased']} leased, {o['dead']} dead, "
            f"{o['done']} done"
        )
    o = status.outbox
    lines.append(
        f"outbox total: {o['pending']} pending, {o['leased']} leased, {o['dead']} dead letters"
    )
    for d in status.dead_letters:
        lines.append(
            f"  dead #{d['id']} {d['kind']} (order {d['order_id'] or '-'}, "
            f"{d['attempts']} attempts): {d['error'] or ''}"
        )
    if status.dead_letters:
        lines.append("  retry with: omsflow outbox retry")
    return lines
