"""Shared fixtures: hypothesis profiles, database URLs for SQLite and PostgreSQL.

PostgreSQL tests use the server at 127.0.0.1:5432 (user postgres, trust auth). Each test
session creates its own throwaway database so concurrent runs never collide. Without a
server the tests skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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
_created_pg: list[str] = []
"""Every PostgreSQL database this test session created; all dropped at its end."""


def _create_pg_database() -> str:
    import psycopg

    name = f"omsflow_t_{uuid.uuid4().hex[:10]}"
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


def fresh_pg_database(server_url: str) -> str:
    """Create another empty database on the session's server and return its URL (dropped
    with the session's own at the end of the run)."""
    name = _create_pg_database()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL, once per backend: SQLite file in tmp, a fresh PG database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'omsflow.db'}"
    server = request.getfixturevalue("pg_server_url")
    return fresh_pg_database(server)
