"""Fixtures for the fulfilment flow: an upgraded database (SQLite and PostgreSQL), the
bundled specs, and the real WMS receiver (``WmsReceiver`` behind ``create_wms_app``) served
by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.settings import Secret
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.wms.receiver import WmsReceiver
from engine.runtime.wms.server import RunningServer, start_in_thread
from engine.runtime.wms.webhook import create_wms_app
from tests.runtime.db.support import opened

SECRET = Secret("fulfilment-flow-secret-0123456789")


@pytest.fixture(scope="session")
def bundle() -> Bundle:
    return load_bundle()


@dataclass
class Db:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]


@pytest.fixture
def db(db_url: str) -> Iterator[Db]:
    with opened(db_url) as (engine, sessions):
        yield Db(db_url, engine, sessions)


@pytest.fixture
def receiver(db: Db, bundle: Bundle) -> Iterator[RunningServer]:
    """The WMS receiver wired to the database, on a free loopback port."""
    app = create_wms_app(
        WmsReceiver(db.sessions, bundle), SECRET, event_types=bundle.channel.fulfilment.wms_events
    )
    with start_in_thread(app) as server:
        yield server
