"""Runtime: each part is built on first use, once, and closed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import DatabaseUnavailable, NotFound
from engine.runtime.context import Runtime
from engine.runtime.settings import Settings


def _settings(tmp_path: Path, *, create: bool) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'omsflow.db'}", create_database=create)


def test_nothing_is_opened_until_asked_for(tmp_path: Path) -> None:
    rt = Runtime(_settings(tmp_path, create=True))
    rt.close()
    assert not (tmp_path / "omsflow.db").exists()


def test_the_database_opens_once_and_closes_once(tmp_path: Path) -> None:
    rt = Runtime(_settings(tmp_path, create=True))
    sessions = rt.sessions
    assert rt.sessions is sessions
    assert rt.created == tmp_path / "omsflow.db"
    closed: list[str] = []
    rt.on_close(lambda: closed.append("first"))
    rt.on_close(lambda: closed.append("second"))
    with pytest.raises(NotFound, match="store 'nope' not found"):
        rt.store_id("nope")
    assert rt.store_id(None) is None
    rt.close()
    rt.close()
    assert closed == ["second", "first"]


def test_a_missing_database_is_refused_unless_allowed(tmp_path: Path) -> None:
    rt = Runtime(_settings(tmp_path, create=False))
    assert not rt.database_exists()
    with pytest.raises(DatabaseUnavailable, match="no database at"):
        _ = rt.sessions
    rt.allow_create()
    _ = rt.sessions
    assert rt.database_exists()
    rt.close()
