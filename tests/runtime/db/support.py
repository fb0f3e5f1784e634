"""Helpers for storage tests: an upgraded database and its session factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.db import session as dbsession


@contextmanager
def opened(url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    """Upgrade the empty database at ``url`` and yield (engine, session factory)."""
    engine = dbsession.make_engine(url)
    dbsession.upgrade(engine)
    try:
        yield engine, dbsession.session_factory(engine)
    finally:
        engine.dispose()
