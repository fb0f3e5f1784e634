"""Prebuilt Core statements run straight on the DBAPI cursor (the event path's hot loop).

SQLAlchemy spends most of a short statement's time around the driver (cache key, execution
context, parameter and result objects, events): about three times what the driver takes
for the event path's five or so statements. ``run`` compiles a prebuilt statement once per
dialect and parameter shape with SQLAlchemy itself (same SQL, same bind and result type
processing: ``UtcDateTime``, ``JSON``, ``Boolean``), and from then on hands the driver the
string and the processed values. Errors come back as SQLAlchemy's (``IntegrityError``,
``DBAPIError`` with ``connection_invalidated`` after a lost connection, which is
invalidated as SQLAlchemy would). A statement this cannot run exactly as SQLAlchemy would —
Python-side column defaults to fill in, renamed bind names, a multi-row insert with
RETURNING, a long ``IN`` list — goes through ``Connection.execute`` unchanged, and so does
every statement on an engine with ``before_execute`` or ``before_cursor_execute``
listeners (they see what they would see without this module).

The connection's transaction is SQLAlchemy's: one is begun (SQLite's ``BEGIN IMMEDIATE``,
``session.session_factory``'s hook) when none is, as ``Connection.execute`` would.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, KeysView, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable, Insert, Update, visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, TextClause

Params = Mapping[str, Any]
Processor = Callable[[Any], Any] | None


class Rows:
    """The rows (already type-processed) and row count of one statement."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def one(self) -> tuple[Any, ...]:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


def _rows_of(result: Any) -> Rows:
    """A SQLAlchemy result read into ``Rows`` (a statement run by the fallback)."""
    rows = [tuple(r) for r in result] if result.returns_rows else []
    return Rows(rows, result.rowcount)


@dataclass(frozen=True)
class _Compiled:
    stmt: Executable
    sql: str
    positional: bool
    binds: tuple[tuple[str, Processor], ...]
    """Bind name and its processor, in the statement's order (positional) or any order."""
    results: tuple[Processor, ...] | None
    rows: bool | None
    """Whether the statement returns rows (None: a text statement, the cursor tells)."""
    """One processor per result column (None: no column needs one)."""
    expanding: frozenset[str]
    consts: Mapping[str, Any]
    """Values the statement carries itself (``.values(flag=True)``), by bind name."""


MAX_EXPANDED = 16
"""An ``IN`` list longer than this runs through SQLAlchemy (which expands it per call)."""

MAX_CACHED = 2000
"""Compiled forms kept (statements are prebuilt: a few dozen in practice)."""

_FALLBACK = object()
_CACHE: dict[tuple[Any, ...], tuple[Executable, list[str], dict[tuple[int, ...], Any]]] = {}
"""(statement id, dialect, parameter names, many) -> (the statement, its ``IN`` list
names, {their lengths: ``_Compiled`` or ``_FALLBACK``})."""


def run(
    conn: Connection, stmt: Executable, params: Params | Sequence[Params] | None = None
) -> Rows:
    """Execute the prebuilt ``stmt`` in ``conn``'s transaction (see the module docstring);
    a list of two or more parameter sets runs as ``executemany``."""
    many = isinstance(params, list | tuple)
    sets: Sequence[Params] = (
        params if isinstance(params, list | tuple) else [params or {}]  # type: ignore[list-item]
    )
    if not sets:
        return Rows([], 0)
    first = sets[0]
    found = _compiled(conn, stmt, first, many)
    dialect = conn.dialect
    if not isinstance(found, _Compiled) or _watched(conn):
        return _rows_of(conn.execute(stmt, params))
    if not conn.in_transaction():
        conn.begin()
    dbapi_conn: Any = conn.connection.driver_connection
    cursor = dbapi_conn.cursor()
    args: Any = None
    try:
        if len(sets) > 1:
            args = [_bound(found, p) for p in sets]
            cursor.executemany(found.sql, args)  # psycopg: pipelined, one round trip
        else:
            args = _bound(found, first)
            cursor.execute(found.sql, args)
        rows: list[tuple[Any, ...]] = []
        if found.rows or (found.rows is None and cursor.description is not None):
            procs = found.results
            if procs is not None:
                rows = [
                    tuple(v if p is None else p(v) for p, v in zip(procs, row, strict=True))
                    for row in cursor.fetchall()
                ]
            else:
                rows = [tuple(r) for r in cursor.fetchall()]
        return Rows(rows, cursor.rowcount)
    except dialect.loaded_dbapi.Error as exc:
        gone = dialect.is_disconnect(exc, dbapi_conn, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            found.sql,
            args,
            exc,
            dialect.loaded_dbapi.Error,
            dialect=dialect,
            connection_invalidated=gone,
        ) from exc
    finally:
        cursor.close()


def _compiled(conn: Connection, stmt: Executable, first: Params, many: bool) -> Any:
    """The cached compiled form of ``stmt`` for these parameters (``_Compiled`` or
    ``_FALLBACK``), compiled on first use; a statement with ``IN`` lists has one form per
    list length."""
    key = (id(stmt), conn.dialect.name, tuple(first), many)
    entry = _CACHE.get(key)
    if entry is None or entry[0] is not stmt:  # new, or another statement at a reused id
        if len(_CACHE) >= MAX_CACHED:
            _CACHE.clear()
        names = sorted(
            b.key
            for b in visitors.iterate(stmt)  # type: ignore[arg-type]
            if isinstance(b, BindParameter) and b.expanding
        )
        entry = _CACHE[key] = (stmt, names, {})
    _stmt, names, forms = entry
    lengths = tuple(len(first[n]) for n in names) if names else ()
    form = forms.get(lengths)
    if form is None:
        form = forms[lengths] = _compile(conn, stmt, first, many)
    return form


def _watched(conn: Connection) -> bool:
    """Whether something listens before statements run (a test standing in for another
    writer, a statement log): those see every statement through SQLAlchemy. Asked of the
    engine (SQLAlchemy's ``_has_events`` flags say whether there is anything to ask); a
    listener on the connection itself or on the Connection class makes it ask the
    connection's own (joined, slower) dispatch."""
    if getattr(conn, "_has_events", True):
        dispatch: Any = conn.dispatch
    elif getattr(conn.engine, "_has_events", True):
        dispatch = conn.engine.dispatch
    else:
        return False
    return bool(dispatch.before_execute or dispatch.before_cursor_execute)


def _bound(c: _Compiled, params: Params) -> Any:
    if c.expanding:
        params = _expand(params, c.expanding)
    if c.consts:
        params = {**c.consts, **params}
    if c.positional:
        return tuple(params[n] if p is None else p(params[n]) for n, p in c.binds)
    return {n: params[n] if p is None else p(params[n]) for n, p in c.binds}


def _expand(params: Params, names: frozenset[str]) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if k not in names}
    for name in names:
        for i, value in enumerate(params[name], 1):
            out[f"{name}_{i}"] = value
    return out


def _compile(conn: Connection, stmt: Executable, first: Params, many: bool) -> _Compiled | object:
    """The statement compiled as ``Connection.execute`` would for these parameter names, or
    ``_FALLBACK`` when running it directly would differ from SQLAlchemy."""
    dialect = conn.dialect
    keys = list(first) if isinstance(stmt, Insert | Update) else None
    compiled = stmt.compile(dialect=dialect, column_keys=keys, for_executemany=True)  # type: ignore[attr-defined]
    if not isinstance(compiled, SQLCompiler):  # pragma: no cover - DDL is not run here
        return _FALLBACK
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.escaped_bind_names
        or compiled.literal_execute_params
        or (many and compiled.effective_returning)
    ):
        return _FALLBACK
    expanding = frozenset(b.key for b in compiled.binds.values() if b.expanding)
    if expanding and any(len(first[name]) > MAX_EXPANDED for name in expanding):
        return _FALLBACK  # one compiled form per list length: kept for short lists only
    sql = compiled.string
    names: Sequence[str]
    processors: dict[str, Any]
    if expanding:
        state = compiled.construct_expanded_state(dict(first))
        sql = state.statement
        names = state.positiontup or [] if compiled.positional else list(state.parameters)
        processors = dict(state.processors)
    else:
        names = (
            compiled.positiontup or []
            if compiled.positional
            else list(compiled.bind_names.values())
        )
        processors = dict(compiled._bind_processors)
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    consts: dict[str, Any] = {}
    for name in names:
        if name in first or _is_expanded(name, expanding):
            continue
        bind = by_name.get(name)
        if bind is None or bind.callable is not None or bind.required:
            return _FALLBACK
        consts[name] = bind.value
    binds: tuple[tuple[str, Processor], ...] = tuple((n, processors.get(n)) for n in names)
    results: tuple[Processor, ...] | None = None
    if compiled._result_columns:
        procs = tuple(
            col[3].dialect_impl(dialect).result_processor(dialect, None)
            for col in compiled._result_columns
        )
        results = procs if any(p is not None for p in procs) else None
    return _Compiled(
        stmt=stmt,
        sql=sql,
        positional=compiled.positional,
        binds=binds,
        results=results,
        rows=_returns_rows(stmt, compiled),
        expanding=expanding,
        consts=consts,
    )


def _returns_rows(stmt: Executable, compiled: SQLCompiler) -> bool | None:
    """Known from the statement (psycopg builds ``cursor.description`` anew on each
    access: a dozen objects for the event path's read)."""
    if isinstance(stmt, TextClause):
        return None
    return bool(compiled._result_columns) or bool(compiled.effective_returning)


def _is_expanded(name: str, expanding: frozenset[str]) -> bool:
    base, _, index = name.rpartition("_")
    return base in expanding and index.isdigit()


def defer_begin(conn: Connection) -> bool:
    """PostgreSQL, nothing run yet in ``conn``'s transaction: until ``begin_now``, each
    statement commits on its own (psycopg's autocommit), so a caller whose writes turn out
    to be ONE statement (``statements.write_event``) saves the BEGIN and COMMIT round trips
    — that statement is the transaction. Reads before it see what a first statement in a
    READ COMMITTED transaction sees. Returns whether it did; ``begin_now`` must follow."""
    if conn.dialect.name != "postgresql":
        return False
    dbapi_conn: Any = conn.connection.driver_connection
    if dbapi_conn.autocommit or dbapi_conn.info.transaction_status != 0:  # 0: IDLE
        return False
    dbapi_conn.autocommit = True
    return True


def begin_now(conn: Connection) -> None:
    """End ``defer_begin``: the next statement begins the transaction, as usual."""
    if conn.invalidated:
        return
    dbapi_conn: Any = conn.connection.driver_connection
    if dbapi_conn is not None and not dbapi_conn.closed and dbapi_conn.autocommit:
        dbapi_conn.autocommit = False


_LAST_ROWID = select(func.last_insert_rowid())


@functools.cache
def _plain_insert(table: Table) -> tuple[Executable, Executable]:
    return table.insert(), select(func.max(table.c.id))


def _columns_of(params: Params) -> KeysView[str]:
    return params.keys()


def sqlite_insert_ids(conn: Connection, table: Table, values: Sequence[Params]) -> list[int]:
    """SQLite: insert ``values`` into ``table`` with one ``executemany`` per run of rows
    that name the same columns, and return the new ids in parameter order, worked out from
    the table's largest id before and ``last_insert_rowid()`` after: SQLite does not say in
    which order a multi-row RETURNING answers, so SQLAlchemy sends one INSERT per row
    there. The write transaction holds SQLite's one write lock, and ``table``'s ``id`` is
    its rowid with no AUTOINCREMENT, explicit ids or triggers, so each row takes the
    largest id + 1: n rows take the n ids after the largest, in order. That is checked: a
    table whose largest id is SQLite's last (it then picks ids at random) raises, and the
    caller's transaction rolls back whole."""
    insert, largest = _plain_insert(table)
    before = int(run(conn, largest).scalar() or 0)
    for _columns, rows in itertools.groupby(values, key=_columns_of):
        run(conn, insert, list(rows))
    last = int(run(conn, _LAST_ROWID).scalar_one())
    if last - before != len(values):
        raise RuntimeError(
            f"sqlite gave {table.name} ids up to {last} for {len(values)} rows after {before}"
        )
    return list(range(before + 1, last + 1))
