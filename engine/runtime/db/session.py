"""Engines, session factories and schema upgrades. Transaction scope belongs to callers.

SQLite (the default, a file in the working folder) runs in WAL mode with foreign keys on, a
busy timeout and ``synchronous=NORMAL``; every transaction starts with ``BEGIN IMMEDIATE``
so two writers queue up instead of failing half-way. PostgreSQL is used through
``postgresql+psycopg://``. ``ensure_schema`` runs ``alembic upgrade head`` on first use.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from engine.errors import ConfigError, DatabaseUnavailable
from engine.runtime.settings import Settings, redact

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent.parent / "migrations"
"""``migrations/`` beside the ``engine`` package: the repository in an editable install,
site-packages in a wheel (pyproject ``only-include``)."""

_SQLITE_BUSY_MS = 15_000
PING_AFTER_S = 0.5
"""A pooled PostgreSQL connection back in the pool for longer than this is pinged (``SELECT
1``) before it is handed out again, and replaced if the server dropped it; one back sooner
(a worker running transactions back to back) is used as it is: the ping was one of the
event path's ~9 round trips. A connection lost within that half second fails its first
statement: SQLAlchemy then drops the pool's connections, and the one rule runs its
transaction again on a new one (``apply.tx.retried``)."""
_checked: set[str] = set()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with omsflow's connection settings.

    Raises:
        ConfigError: the URL cannot be parsed or names an unsupported backend.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # any parse failure is a config mistake
        raise ConfigError(f"OMSFLOW_DATABASE_URL is not a database URL: {redact(url)}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _owner_only_file(parsed.database)
        engine = create_engine(parsed, **kwargs)
        _tune_sqlite(engine)
        return engine
    if backend == "postgresql":
        from .schema import with_postgresql_options

        with_postgresql_options()
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, **kwargs)
        _ping_when_idle(engine)
        return engine
    raise ConfigError(
        f"unsupported database {backend!r} in OMSFLOW_DATABASE_URL "
        "(fix: use sqlite:///FILE or postgresql+psycopg://...)"
    )


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping`` for connections idle longer than ``PING_AFTER_S`` only."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < PING_AFTER_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc  # the pool connects anew
            raise


def _owner_only_file(database: str | None) -> None:
    """Create a new SQLite file readable by its owner only (it holds order and customer data
    and the encrypted store keys); SQLite gives its -wal/-shm files the same mode."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return  # an existing file keeps its mode; a missing folder is reported on connect
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED and only
        # before DML, which makes read-then-write transactions fail under concurrency).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # straight to the driver: one BEGIN per transaction need not pay a statement's
        # trip through SQLAlchemy's execution machinery (the event path is short)
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A ``sessionmaker`` bound to ``engine``; objects stay readable after commit. (The ORM
    is imported here, by the first caller that wants sessions: Core paths never load it.)"""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(bind=engine, expire_on_commit=False)


def is_postgres(session_or_engine: Session | Engine | Connection) -> bool:
    """Whether this session/engine talks to PostgreSQL (for SKIP LOCKED and friends)."""
    if isinstance(session_or_engine, Engine | Connection):
        return session_or_engine.dialect.name == "postgresql"
    return session_or_engine.get_bind().dialect.name == "postgresql"


def alembic_config(url: str | None = None) -> Any:
    """An alembic ``Config`` pointing at the bundled ``migrations/`` (no alembic.ini needed)."""
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise ConfigError(f"migrations not found at {MIGRATIONS_DIR} (reinstall omsflow)")
    # alembic's default stdout is the sys.stdout of when alembic was first imported (a
    # default argument): pass today's, so a stream swapped and closed since is never used
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.attributes["url"] = url
    return config


_REVISION_LINE = re.compile(
    r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.MULTILINE
)


def head_revision() -> str | None:
    """The newest migration revision shipped with this version of omsflow.

    Read from the ``revision``/``down_revision`` lines of ``migrations/versions`` (about a
    millisecond); importing alembic and building its script directory took 0.14 s on every
    command. A folder this reading cannot settle (a merge, a branch, a computed revision)
    is asked to alembic itself; ``tests/test_migrations.py`` holds both answers equal."""
    return _head_from_files() or alembic_head_revision()


def alembic_head_revision() -> str | None:
    """The head as alembic computes it (the reference ``head_revision`` is checked against)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _head_from_files() -> str | None:
    """The one revision no other migration names as its ``down_revision``, or None when the
    files do not say so plainly (then alembic decides)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    try:
        files = sorted((MIGRATIONS_DIR / "versions").glob("*.py"))
        for path in files:
            found = {
                m.group(1): m.group(2) for m in _REVISION_LINE.finditer(path.read_text("utf-8"))
            }
            if "revision" not in found or found["revision"] is None:
                return None
            revisions.add(found["revision"])
            if found.get("down_revision"):
                downs.add(str(found["down_revision"]))
    except (OSError, UnicodeDecodeError):
        return None
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 and downs <= revisions else None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade`` on ``engine`` in one transaction (serialised across processes:
    ``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL)."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7301942)"))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def upgrade_reporting(engine: Engine, url: str) -> tuple[str | None, str | None]:
    """``omsflow db upgrade``: (revision before, revision after).

    Raises:
        DatabaseUnavailable: as ``ensure_schema``.
    """
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    except DBAPIError as exc:
        raise database_unavailable(url, exc) from None


def shown_url(url: str) -> str:
    """The database URL as the user may see it: password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: show it redacted
        return redact(url)


def _why(exc: DBAPIError) -> str:
    """The driver's first line, without the SQL or the URL (psycopg's text names the host)."""
    orig = exc.orig if exc.orig is not None else exc
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    text_ = lines[0] if lines else type(orig).__name__
    if "FATAL:" in text_:
        text_ = text_.split("FATAL:", 1)[1].strip()
    return redact(text_)


def _fix(url: str) -> str:
    if url.startswith("sqlite"):
        return "fix: point OMSFLOW_DATABASE_URL at an omsflow SQLite file in a folder that exists"
    return (
        "fix: check the server, user and database in OMSFLOW_DATABASE_URL "
        "(postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB)"
    )


def database_unavailable(url: str, exc: DBAPIError) -> DatabaseUnavailable:
    """One line: which database (password masked), why, and what to do."""
    return DatabaseUnavailable(
        f"cannot open the database {shown_url(url)}: {_why(exc)} ({_fix(url)})"
    )


def ensure_schema(url: str, engine: Engine | None = None) -> None:
    """Bring the database at ``url`` to the newest schema; cheap when it already is.

    Raises:
        DatabaseUnavailable: the database cannot be opened (server down, wrong role, a
            missing folder, a file that is no database).
    """
    if url in _checked:
        return
    own = engine is None
    eng = engine or make_engine(url)
    try:
        if current_revision(eng) != head_revision():
            upgrade(eng)
    except DBAPIError as exc:
        raise database_unavailable(url, exc) from None
    finally:
        if own:
            eng.dispose()
    _checked.add(url)


def new_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist yet (opening would create it)."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - make_engine reports unparsable URLs
        return None
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:":
        return None
    if db.startswith("file:"):
        return None
    path = Path(db)
    return None if path.exists() else path


def open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """The engine and session factory for ``settings.database_url``, schema upgraded.

    Raises:
        DatabaseUnavailable: as ``open_engine``.
    """
    engine = open_engine(settings)
    return engine, session_factory(engine)


def open_engine(settings: Settings) -> Engine:
    """The engine for ``settings.database_url``, schema upgraded (no ORM loaded).

    Raises:
        DatabaseUnavailable: a SQLite file that does not exist and may not be created (see
            ``Settings.create_database``), or a database that cannot be opened.
    """
    missing = new_sqlite_file(settings.database_url)
    if missing is not None and not settings.create_database:
        raise DatabaseUnavailable(
            f"no database at {missing} (fix: `omsflow db upgrade` or `omsflow store connect` "
            "creates it, `omsflow --create ...` lets any command create it; or correct "
            "OMSFLOW_DATABASE_URL)"
        )
    engine = make_engine(settings.database_url)
    ensure_schema(settings.database_url, engine)
    return engine
