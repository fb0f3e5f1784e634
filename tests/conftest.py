"""Shared fixtures: hypothesis profiles, database URLs for SQLite and PostgreSQL.

PostgreSQL tests use the server at 127.0.0.1:5432 (user postgres, trust auth). Each test
session creates its own throwaway databases so concurrent runs never collide. Without a
server the tests skip with the reason, except under CI=true, where they fail.

Parallel runs (``pytest -n auto``, pytest-xdist): every database name carries the run's id
(``omsflow_t_<run>_<worker>_<random>``; the id is made by the first process and inherited by
the xdist workers through ``OMSFLOW_TEST_RUN``). Each worker drops what it created when its
session ends; then the controlling process (or the only one, without xdist) looks for any
``omsflow_t_<run>_*`` database still there, drops it and fails the run. (``db_url`` empties
its database after each test and hands it to the next one of the same worker, so a worker
holds one or two at a time.) Only this run's
prefix is looked at, so a second run beside it on the same server is never flagged.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

# Store keys are sealed with a Fernet key (engine/runtime/db/secrets.py); tests give one
# through the environment so none of them writes ~/.omsflow/secret.key (the key-file path has
# its own tests, which unset this).
os.environ.setdefault("OMSFLOW_SECRET_KEY", "b21zZmxvdy10ZXN0cy1vbmx5LWZlcm5ldC1rZXktMzI=")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PG_ADMIN_URL = os.environ.get(
    "OMSFLOW_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def samples_dir() -> Path:
    """The real recorded PrestaShop responses: ``../shared/prestashop/samples`` when it is
    beside the repository, else the copy in ``tests/fixtures/prestashop``."""
    shared = SHARED / "prestashop" / "samples"
    return shared if shared.is_dir() else REPO / "tests" / "fixtures" / "prestashop"


def _pg_reason() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return f"PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__})"


ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
RUN_ID = os.environ.setdefault("OMSFLOW_TEST_RUN", uuid.uuid4().hex[:8])
"""This run's id: set by the first pytest process, inherited by its xdist workers."""
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw")
PG_PREFIX = f"omsflow_t_{RUN_ID}_"
_created_pg: list[str] = []
"""Every PostgreSQL database this process created; all dropped at its session's end."""


def _create_pg_database() -> str:
    import psycopg

    name = f"{PG_PREFIX}{WORKER}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created_pg.append(name)
    return name


def _drop_pg_databases() -> list[str]:
    """Drop what this session created; return the names that are still there."""
    if not _created_pg:
        return []
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        for name in _created_pg:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        left = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (_created_pg,)
            )
        ]
    _created_pg.clear()
    _emptied.clear()
    return left


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session. It, and every database
    ``fresh_pg_database`` made, is dropped at the end; a database left behind fails the run."""
    reason = _pg_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    name = _create_pg_database()
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    left = _drop_pg_databases()
    if left:
        pytest.fail(f"PostgreSQL databases left behind by this run: {', '.join(left)}")


def _left_by_this_run() -> list[str]:
    """Drop every database of this run's prefix that is still there; return their names."""
    try:
        import psycopg

        conn = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    except Exception:  # noqa: BLE001 - no driver or no server: nothing can be left on it
        return []
    with conn:
        like = PG_PREFIX.replace("_", "\\_") + "%"
        left = [
            r[0]
            for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))
        ]
        for name in left:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return left


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The end-of-run check: no ``omsflow_t_<run>_*`` database may outlive the run.

    Runs in the xdist controller (after every worker's session, and so every worker's own
    drop, has finished) or in the only process; never in a worker, where it would see the
    live databases of the other workers."""
    del exitstatus
    if hasattr(session.config, "workerinput"):
        return
    _drop_pg_databases()
    left = _left_by_this_run()
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"PostgreSQL databases left behind by this run (now dropped): {', '.join(left)}"
        if reporter is not None:
            reporter.write_line("\n" + message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``-n N`` schedules with ``loadgroup``: tests spread one by one as with ``load``, but a
    group (the real-store tests, ``xdist_group("realstore")``) stays on one worker, which then
    starts the only PrestaShop of the run. An explicit ``--dist`` other than load is kept."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadGroupScheduling

    return LoadGroupScheduling(config, log)


def fresh_pg_database(server_url: str) -> str:
    """Create another empty database on the session's server and return its URL (dropped
    with the session's own at the end of the run)."""
    name = _create_pg_database()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _created_pg.remove(name)


_uses = itertools.count(1)
_emptied: list[str] = []
"""Databases of this process that a finished test left empty, ready for the next test."""
_USER_SCHEMAS = (
    "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'"
)


def _empty_pg_database(name: str) -> bool:
    """Make a database a test used empty again: end its other connections, drop every schema
    but the system ones, create ``public`` again; False if that did not work. (A DROP DATABASE
    waits for a checkpoint: 0.1-25 s on this shared server, where this takes 0.05 s.)"""
    import psycopg

    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        dsn = ADMIN_DSN.replace("dbname=test", f"dbname={name}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            for (schema,) in conn.execute(_USER_SCHEMAS).fetchall():
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            conn.execute("CREATE SCHEMA public")
            left = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
            ).fetchone()
    except psycopg.Error:
        return False
    return left is not None and left[0] == 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once per backend: SQLite file in tmp, an empty PG database.

    The PG database is emptied when the test ends (every schema dropped) and given to the
    next test of this process; one that cannot be emptied is dropped. All are dropped at the
    session's end with the rest."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'omsflow.db'}"
        return
    server = request.getfixturevalue("pg_server_url")
    name = _emptied.pop() if _emptied else _create_pg_database()
    # a URL of its own per test (the query only names the connections in pg_stat_activity):
    # what the code under test caches per URL, such as "schema ensured", starts afresh
    uses = next(_uses)
    yield server.rsplit("/", 1)[0] + f"/{name}?application_name=omsflow_test_{uses}"
    if _empty_pg_database(name):
        _emptied.append(name)
    else:
        _drop_pg_database(name)
