"""PostgreSQL connections: pinged only after PING_AFTER_S idle, and a transaction of the one
rule whose connection the server dropped before its commit runs again on a new one."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, text

from engine.runtime.apply.tx import on_connection
from engine.runtime.db import session as dbsession

from .support import opened

pytestmark = pytest.mark.postgres


def _backend_pid(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.05)  # the backend is gone before the next checkout


def test_a_dropped_connection_is_replaced(
    pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import fresh_pg_database

    url = fresh_pg_database(pg_server_url)
    with opened(url) as (engine, sessions):
        engine.dispose()  # one pooled connection from here on
        pings: list[Any] = []
        real_ping = engine.dialect.do_ping

        def counted(dbapi_conn: Any) -> bool:
            pings.append(dbapi_conn)
            return real_ping(dbapi_conn)

        monkeypatch.setattr(engine.dialect, "do_ping", counted)
        pids: list[int] = []

        def work(conn: Connection) -> int:
            pids.append(_backend_pid(conn))
            return pids[-1]

        first, attempts = on_connection(sessions, work, what="t")
        assert attempts == 1
        on_connection(sessions, work, what="t")
        assert not pings  # back to back: no ping
        # dropped, used again at once: the first statement fails, the transaction runs again
        _terminate(url, first)
        second, attempts = on_connection(sessions, work, what="t")
        assert attempts == 2
        assert second != first
        # dropped, used after PING_AFTER_S: the ping finds out, the pool connects anew
        _terminate(url, second)
        time.sleep(dbsession.PING_AFTER_S + 0.1)
        third, attempts = on_connection(sessions, work, what="t")
        assert attempts == 1
        assert third not in (first, second)
        assert pings
