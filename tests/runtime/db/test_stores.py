"""Stores: save/update, the only-store default, clear errors, the key never printed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError, NotFound
from engine.runtime.db.stores import get_store, list_stores, save_store
from engine.runtime.settings import Secret

from .support import opened

KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456"


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    with opened(db_url) as (_engine, factory):
        yield factory


def test_save_get_update_list(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        with pytest.raises(ConfigError, match="no store connected"):
            get_store(s, None)
        rec = save_store(s, "main", "http://127.0.0.1:1/", KEY, {"Shipped": 4})
        assert rec.key == Secret(KEY)
        assert KEY not in repr(rec)
        assert KEY not in str(rec.public())
    with sessions.begin() as s:
        only = get_store(s, None)
        assert only.name == "main"
        assert only.state_ids == {"Shipped": 4}
        assert only.key.reveal() == KEY
        again = save_store(s, "main", "http://127.0.0.1:2/", "NEWKEY", {"Shipped": 5})
        assert again.id == only.id
        save_store(s, "second", "http://127.0.0.1:3/", KEY, {})
    with sessions.begin() as s:
        assert [r.name for r in list_stores(s)] == ["main", "second"]
        assert get_store(s, "main").url == "http://127.0.0.1:2/"
        assert get_store(s, "main").state_ids == {"Shipped": 5}
        with pytest.raises(ConfigError, match="several stores"):
            get_store(s, None)
        with pytest.raises(NotFound, match="'nope' not found"):
            get_store(s, "nope")
