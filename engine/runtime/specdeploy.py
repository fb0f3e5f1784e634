"""Spec changes meet the orders in flight: spec versions, the deploy check, migrations.

- ``record_version``: the database keeps a copy of every spec version it runs
  (``spec_versions``: both files' text under their content hash, ``specs.spec_version``).
- ``check``: the working specs against the orders and the outbox — orders in states the
  spec lacks (or waiting for a declared migration), orders whose state lost every way
  out, queued effects or follow-ups the spec no longer knows, store statuses of the
  channel map a connected store does not resolve. One located problem per finding, with
  the orders it strands.
- ``migrate``: the lifecycle's ``migrations:`` applied as ordinary audited events, one
  transaction per order (trigger ``spec_migration``, source ``system``, the spec change
  in the event's payload and the audit row's spec version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError, SpecError
from engine.runtime import inventory, pricing, specs
from engine.runtime.db import session as dbsession
from engine.runtime.db.tables import (
    AuditRow,
    InboundEventRow,
    OrderRow,
    OutboxRow,
    SpecVersionRow,
    StoreRow,
)
from engine.runtime.settings import Settings
from engine.runtime.specs import Bundle
from engine.spec.graph import outgoing
from engine.spec.model import MachineSpec
from engine.spec.source import Document, load_file
from engine.spec.statuses import canonical_status

MIGRATION_TRIGGER = "spec_migration"
LIVE_OUTBOX = ("pending", "leased")
SHOWN = 5
"""References named per problem (the count is always exact)."""

_recorded: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Stranded:
    """One deploy-check finding: ``error`` (located, one line) and what it strands."""

    error: SpecError
    orders: tuple[str, ...] = ()
    """References of the stranded orders (all of them)."""
    outbox: int = 0
    """Queued outbox rows it strands."""

    def line(self) -> str:
        return self.error.line()

    def doc(self) -> dict[str, Any]:
        loc = self.error.location
        return {
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "path": loc.json_path,
            "code": self.error.code,
            "message": self.error.message,
            "hint": self.error.hint,
            "orders": list(self.orders),
            "order_count": len(self.orders),
            "outbox_count": self.outbox,
        }


def record_version(factory: sessionmaker[Session], bundle: Bundle, *, at: datetime) -> None:
    """Keep a copy of ``bundle``'s spec version in the database (once per version)."""
    version = bundle.spec_version
    if version is None or bundle.machine_path is None or bundle.channel_path is None:
        return
    with factory() as session:
        url = str(session.get_bind().engine.url)
        if (url, version) in _recorded:
            return
        if session.get(SpecVersionRow, version) is None:
            # workers started together all record the same version: the first insert wins,
            # the others' do nothing (the version is the files' hash: same text)
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else lite_insert
            session.execute(
                insert(SpecVersionRow)
                .values(
                    version=version,
                    label=bundle.spec_label,
                    machine_file=str(bundle.machine_path),
                    machine_text=bundle.machine_path.read_text(encoding="utf-8"),
                    channel_file=str(bundle.channel_path),
                    channel_text=bundle.channel_path.read_text(encoding="utf-8"),
                    first_seen=at,
                )
                .on_conflict_do_nothing(index_elements=["version"])
            )
            session.commit()
        _recorded.add((url, version))


def _states_of_version(session: Session, version: str | None) -> set[str]:
    """The state names of a recorded spec version's lifecycle (empty if unknown)."""
    if version is None:
        return set()
    row = session.get(SpecVersionRow, version)
    if row is None:
        return set()
    try:
        data = yaml.safe_load(row.machine_text)
        return {str(s["name"]) for s in data.get("states", [])}
    except Exception:  # noqa: BLE001 - an old copy that no longer parses explains nothing
        return set()


def _docs(bundle: Bundle) -> tuple[Document, Document]:
    if bundle.machine_path is None or bundle.channel_path is None:
        raise ConfigError("the spec check needs the lifecycle and channel files")
    return load_file(_shown(bundle.machine_path)), load_file(_shown(bundle.channel_path))


def _shown(path: Any) -> str:
    from pathlib import Path

    p = Path(path)
    cwd = Path.cwd()
    return str(p.relative_to(cwd)) if p.is_relative_to(cwd) else str(p)


def _refs(refs: list[str]) -> str:
    shown = ", ".join(refs[:SHOWN])
    return shown + (f" and {len(refs) - SHOWN} more" if len(refs) > SHOWN else "")


def _orders_word(n: int) -> str:
    return f"{n} order" + ("" if n == 1 else "s")


def check(session: Session, bundle: Bundle) -> list[Stranded]:
    """Every way the working specs strand the orders and outbox rows in the database."""
    machine = bundle.machine
    mdoc, cdoc = _docs(bundle)
    known = set(machine.state_names)
    moves = machine.state_moves()
    problems: list[Stranded] = []

    by_state: dict[str, list[str]] = {}
    versions: dict[str, set[str | None]] = {}
    for ref, state, version in session.execute(
        select(OrderRow.reference, OrderRow.state, OrderRow.spec_version).order_by(OrderRow.id)
    ):
        by_state.setdefault(state, []).append(ref)
        versions.setdefault(state, set()).add(version)

    for state, refs in sorted(by_state.items()):
        n = _orders_word(len(refs))
        if state not in known:
            if state in moves:
                index = next(
                    m.index for m in machine.migrations if (state, moves[state]) in m.moves
                )
                err = mdoc.error(
                    "deploy.migration-pending",
                    f"{n} in '{state}' {'waits' if len(refs) == 1 else 'wait'} for the "
                    f"declared migration to '{moves[state]}' "
                    f"({_refs(refs)})",
                    ("migrations", index),
                    hint="run `omsflow spec migrate`",
                )
            else:
                err = mdoc.error(
                    "deploy.state-gone",
                    f"{n} in state '{state}', which this spec no longer has ({_refs(refs)})",
                    ("states",),
                    key=True,
                    hint=_state_gone_hint(session, state, versions[state], known),
                )
            problems.append(Stranded(err, tuple(refs)))
            continue
        spec_state = machine.state(state)
        if spec_state.final or spec_state.pseudo:
            continue
        if not [t for t in outgoing(machine, state) if t.dest is not None]:
            index = machine.state_names.index(state)
            problems.append(
                Stranded(
                    mdoc.error(
                        "deploy.no-way-out",
                        f"{n} in '{state}', which lost every way out ({_refs(refs)})",
                        ("states", index, "name"),
                        hint="add a transition from it, or mark it final",
                    ),
                    tuple(refs),
                )
            )

    problems.extend(_check_outbox(session, bundle, mdoc))
    problems.extend(_check_statuses(session, bundle, cdoc))
    return problems


def _state_gone_hint(
    session: Session, state: str, versions: set[str | None], known: set[str]
) -> str:
    """Fix: a migration; naming the state(s) new since the spec these orders ran under."""
    before: set[str] = set()
    for v in versions:
        before |= _states_of_version(session, v)
    new = sorted(known - before) if before else []
    if len(new) == 1:
        return (
            f"renamed to '{new[0]}'? declare `migrations: [{{rename: {{{state}: {new[0]}}}}}]` "
            "and run `omsflow spec migrate`"
        )
    return (
        f"declare where its orders go (`migrations: [{{removed: {{{state}: STATE}}}}]` or a "
        "rename) and run `omsflow spec migrate`"
    )


SYSTEM_EFFECTS = frozenset({inventory.PUSH_STOCK, pricing.PUSH_PRICE})


def _check_outbox(session: Session, bundle: Bundle, mdoc: Document) -> list[Stranded]:
    machine = bundle.machine
    kinds = {e.kind for t in machine.transitions for e in t.effects} | SYSTEM_EFFECTS
    triggers = set(machine.triggers)
    renames = machine.effect_moves()
    problems: list[Stranded] = []
    live = OutboxRow.state.in_(LIVE_OUTBOX)
    for kind, count in session.execute(
        select(OutboxRow.kind, func.count()).where(live).group_by(OutboxRow.kind)
    ):
        if kind in kinds:
            continue
        refs = _outbox_refs(session, live, OutboxRow.kind == kind)
        if kind in renames:
            index = next(m.index for m in machine.migrations if (kind, renames[kind]) in m.moves)
            err = mdoc.error(
                "deploy.migration-pending",
                f"{count} queued '{kind}' effect(s) wait for the declared rename to "
                f"'{renames[kind]}' ({_orders_word(len(refs))})",
                ("migrations", index),
                hint="run `omsflow spec migrate`",
            )
        else:
            err = mdoc.error(
                "deploy.effect-gone",
                f"{count} queued '{kind}' effect(s) ({_orders_word(len(refs))}: "
                f"{_refs(refs)}) name an effect this spec no longer has",
                ("transitions",),
                key=True,
                hint=f"declare `migrations: [{{rename_effect: {{{kind}: NEW}}}}]` and run "
                "`omsflow spec migrate`, or let the queue drain on the old spec first",
            )
        problems.append(Stranded(err, tuple(refs), count))
    for then, count in session.execute(
        select(OutboxRow.then_trigger, func.count())
        .where(live, OutboxRow.then_trigger.is_not(None))
        .group_by(OutboxRow.then_trigger)
    ):
        if then in triggers:
            continue
        refs = _outbox_refs(session, live, OutboxRow.then_trigger == then)
        problems.append(
            Stranded(
                mdoc.error(
                    "deploy.follow-up-gone",
                    f"{count} queued effect(s) ({_orders_word(len(refs))}: {_refs(refs)}) "
                    f"follow up with trigger '{then}', which this spec no longer has",
                    ("transitions",),
                    key=True,
                    hint="keep the trigger until the queue drained",
                ),
                tuple(refs),
                count,
            )
        )
    return problems


def _outbox_refs(session: Session, *where: Any) -> list[str]:
    return list(
        session.scalars(
            select(OrderRow.reference)
            .join(OutboxRow, OutboxRow.order_id == OrderRow.id)
            .where(*where)
            .distinct()
            .order_by(OrderRow.reference)
        )
    )


def _check_statuses(session: Session, bundle: Bundle, cdoc: Document) -> list[Stranded]:
    """Store statuses of the channel's status map that a connected store does not resolve
    (its ``state_ids``, read at ``store connect``)."""
    status_map = bundle.channel.status_map
    problems: list[Stranded] = []
    for store in session.scalars(select(StoreRow).order_by(StoreRow.id)):
        resolved = {canonical_status(name) for name in store.state_ids or {}}
        if not resolved:
            continue
        named: list[tuple[str, tuple[Any, ...]]] = [
            (status, ("status_map", "outbound", oms))
            for oms, status in status_map.outbound.items()
            if status is not None
        ]
        named += [(status, ("status_map", "inbound", status)) for status in status_map.inbound]
        seen: set[str] = set()
        for status, path in named:
            if canonical_status(status) in resolved or status in seen:
                continue
            seen.add(status)
            refs = list(
                session.scalars(
                    select(OrderRow.reference).where(
                        OrderRow.store_id == store.id,
                        OrderRow.state.in_(
                            [o for o, s in status_map.outbound.items() if s == status]
                        ),
                    )
                )
            )
            problems.append(
                Stranded(
                    cdoc.error(
                        "deploy.status-unresolved",
                        f"store '{store.name}' has no status '{status}' "
                        f"({_orders_word(len(refs))} would push it)",
                        path,
                        key=path[1] == "inbound",
                        hint=f"run `omsflow store connect` for '{store.name}' again, or "
                        "name one of the store's statuses",
                    ),
                    tuple(refs),
                )
            )
    return problems


@dataclass
class MigrateReport:
    """What ``migrate`` did (or, dry, would do)."""

    moved: list[dict[str, Any]] = field(default_factory=list)
    """``{reference, from, to, migration}`` per order."""
    effects: list[dict[str, Any]] = field(default_factory=list)
    """``{from, to, count}`` per effect rename."""
    dry_run: bool = False


def migrate(
    factory: sessionmaker[Session], bundle: Bundle, *, at: datetime, dry_run: bool = False
) -> MigrateReport:
    """Apply the lifecycle's ``migrations:`` to the database: each order in a migrated state
    moves in its own transaction (event + audit row naming the spec change, versioned
    update); queued outbox rows of a renamed effect are renamed. Idempotent: a second run
    finds nothing to move."""
    machine = bundle.machine
    version = bundle.spec_version
    report = MigrateReport(dry_run=dry_run)
    label = f"spec change to version {bundle.spec_label} ({version or '-'})"
    for m in machine.migrations:
        for old, new in m.moves:
            what = f"{m.kind} {old} -> {new}"
            if not m.states:
                with factory() as session:
                    live = (OutboxRow.kind == old, OutboxRow.state == "pending")
                    count = session.scalar(select(func.count()).where(*live)) or 0
                    if count and not dry_run:
                        session.execute(update(OutboxRow).where(*live).values(kind=new))
                        session.commit()
                report.effects.append({"from": old, "to": new, "count": int(count)})
                continue
            with factory() as session:
                ids = list(
                    session.execute(
                        select(OrderRow.id, OrderRow.reference)
                        .where(OrderRow.state == old)
                        .order_by(OrderRow.id)
                    )
                )
            for order_id, ref in ids:
                report.moved.append({"reference": ref, "from": old, "to": new, "migration": what})
                if not dry_run:
                    _move_one(factory, order_id, old, new, f"{label}: {what}", version, at)
    return report


def _move_one(
    factory: sessionmaker[Session],
    order_id: int,
    old: str,
    new: str,
    reason: str,
    version: str | None,
    at: datetime,
) -> None:
    """One order moved by a migration, in one transaction (versioned: a concurrent move
    of the order leaves it alone, and a later run finds it in its new state)."""
    with factory() as session, session.begin():
        row = session.get(OrderRow, order_id)
        if row is None or row.state != old:
            return
        done = session.execute(
            update(OrderRow)
            .where(OrderRow.id == order_id, OrderRow.version == row.version)
            .values(state=new, version=row.version + 1, updated_at=at, spec_version=version)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return
        event = InboundEventRow(
            idempotency_key=f"spec:{version}:{order_id}:{old}",
            source="system",
            trigger=MIGRATION_TRIGGER,
            order_id=order_id,
            payload={"spec_change": reason, "from": old, "to": new},
            received_at=at,
            outcome="applied",
        )
        session.add(event)
        session.flush()
        session.add(
            AuditRow(
                order_id=order_id,
                event_id=event.id,
                trigger=MIGRATION_TRIGGER,
                from_state=old,
                to_state=new,
                applied=True,
                source="system",
                effects=[],
                blockers=[],
                at=at,
                spec_version=version,
            )
        )


def last_run_machine(session: Session, current: str | None) -> MachineSpec | None:
    """The lifecycle of the newest spec version the database ran before ``current``."""
    row = session.scalars(
        select(SpecVersionRow)
        .where(SpecVersionRow.version != (current or ""))
        .order_by(SpecVersionRow.first_seen.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return specs.machine_from_text(row.machine_text, row.machine_file)


def database_exists(settings: Settings) -> bool:
    """Whether a database is configured and there (a SQLite file that exists, or a server)."""
    return dbsession.new_sqlite_file(settings.database_url) is None


def check_database(settings: Settings, bundle: Bundle) -> list[Stranded]:
    """``check`` on the configured database."""
    engine, factory = dbsession.open_database(settings)
    try:
        with factory() as session:
            return check(session, bundle)
    finally:
        engine.dispose()


def refusal(problems: list[Stranded], command: str) -> str:
    """The one line ``run``/``serve`` answer on stranded work: why, and how to fix it."""
    orders = {ref for p in problems for ref in p.orders}
    first = problems[0].error
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return (
        f"{command} refuses to start: the working specs strand {_orders_word(len(orders))} "
        f"in flight: {first.location}: {first.message}{more} (fix: `omsflow spec check` "
        "lists them; declare `migrations:` in the lifecycle and run `omsflow spec migrate`, "
        "or start with --allow-stranded)"
    )


def guard_start(settings: Settings, bundle: Bundle, command: str, *, allow: bool) -> None:
    """At ``run``/``serve`` start: record the spec version; refuse stranded work unless
    ``allow``.

    Raises:
        Stranded work: ConfigError with one line (``refusal``).
    """
    engine, factory = dbsession.open_database(settings)
    try:
        record_version(factory, bundle, at=datetime.now(UTC))
        with factory() as session:
            problems = check(session, bundle)
    finally:
        engine.dispose()
    if problems and not allow:
        raise ConfigError(refusal(problems, command))
