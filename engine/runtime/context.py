"""``Runtime``: what one command (or one process) works with, each part built on first use.

The settings, the database engine and its session factory (schema checked once), the spec
bundle, and the store adapters a command opened: made when first asked for, closed once by
``close`` (the CLI registers it with ``ctx.call_on_close``). A command that never touches the
database neither imports nor opens it; one that does opens it once, however many helpers use
it. A command that works on Core connections (``engine``: ``stock set``) never loads the
ORM; ``sessions`` does, on first use.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.runtime.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from engine.runtime.channels.port import ChannelPort
    from engine.runtime.db.stores import StoreRecord
    from engine.runtime.specs import Bundle


class Runtime:
    """Settings, database, specs and store adapters for one invocation, built lazily."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._bundle: Bundle | None = None
        self._closers: list[Any] = []
        self.created: Path | None = None
        """The SQLite file opening the database created (``allow_create``), if any."""
        self.debug = False
        """``omsflow --debug``: errors raised on purpose show their traceback."""

    # ---- settings

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    def allow_create(self) -> None:
        """Let this invocation create a missing SQLite file (``store connect``); only
        before the database is opened."""
        if self._engine is not None:
            raise RuntimeError("allow_create after the database was opened")
        self._settings = dataclasses.replace(self.settings, create_database=True)

    # ---- database

    def _open(self) -> Engine:
        if self._engine is None:
            from engine.runtime.db import session as dbsession

            created = dbsession.new_sqlite_file(self.settings.database_url)
            self._engine = dbsession.open_engine(self.settings)
            self.created = created
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory (the database opened and its schema checked on first use)."""
        if self._sessions is None:
            from engine.runtime.db import session as dbsession

            self._sessions = dbsession.session_factory(self._open())
        return self._sessions

    @property
    def engine(self) -> Engine:
        """The database engine (opened and its schema checked on first use), for Core
        connections: no ORM."""
        return self._open()

    def database_exists(self) -> bool:
        """Whether a database is configured and there (without creating one)."""
        from engine.runtime.db import session as dbsession

        return dbsession.new_sqlite_file(self.settings.database_url) is None

    # ---- specs

    @property
    def bundle(self) -> Bundle:
        """The lifecycle + channel specs (``OMSFLOW_SPECS``/``OMSFLOW_CHANNELS``, the working
        folder, the bundled copies), validated and compiled; loaded once."""
        if self._bundle is None:
            from engine.runtime.specs import load_bundle

            self._bundle = load_bundle(self.settings.specs_dir, self.settings.channels_dir)
        return self._bundle

    # ---- stores

    def store(self, name: str | None = None) -> StoreRecord:
        """A connected store (default: the only one)."""
        from engine.runtime.db import stores

        with self.sessions() as session:
            return stores.get_store(session, name)

    def store_id(self, name: str | None) -> int | None:
        """The id of the store named ``name``; None when no name is given.

        Raises:
            NotFound: no store has that name.
        """
        if name is None:
            return None
        from sqlalchemy import select

        from engine.errors import NotFound
        from engine.runtime.db.schema import STORES

        with self.engine.connect() as conn:
            found = conn.scalar(select(STORES.c.id).where(STORES.c.name == name))
        if found is None:
            raise NotFound(f"store {name!r} not found")
        return int(found)

    def require_sku(self, sku: str) -> None:
        """Raises ``NotFound`` unless ``sku`` is a product of the OMS (not deleted)."""
        from sqlalchemy import select

        from engine.errors import NotFound
        from engine.runtime.db.schema import PRODUCTS

        with self.engine.connect() as conn:
            found = conn.scalar(
                select(PRODUCTS.c.id).where(PRODUCTS.c.sku == sku, PRODUCTS.c.deleted.is_(False))
            )
        if found is None:
            raise NotFound(f"SKU {sku!r} not found (fix: omsflow sync catalog, or check the SKU)")

    def adapter(self, store: StoreRecord, *, with_facts: bool = False) -> ChannelPort:
        """The store's channel (built by its factory, ``channels.registry``; closed with
        the runtime). ``with_facts``: the shop's facts (languages, clock) from the saved
        store, read now for a store saved without them."""
        from engine.runtime.channels.registry import open_channel

        channel = self.bundle.channel
        if not with_facts:
            adapter = open_channel(store.channel, store.url, store.key, channel)
        else:
            from engine.runtime.db.budget import shared_budgets

            adapter = open_channel(  # the store's budget, shared with workers
                store.channel,
                store.url,
                store.key,
                channel,
                facts=store.facts or None,
                budgets=shared_budgets(self.engine),
            )
        self.on_close(adapter.close)
        if with_facts and not store.facts:  # connected before omsflow kept the store's facts
            adapter.read_clock(None)  # (reads them all; not saved here)
        return adapter

    # ---- closing

    def on_close(self, closer: Any) -> None:
        """Call ``closer()`` when the runtime closes (last registered, first called)."""
        self._closers.append(closer)

    def close(self) -> None:
        """Close the adapters, then dispose of the engine; safe to call twice."""
        closers, self._closers = self._closers, []
        try:
            for closer in reversed(closers):
                closer()
        finally:
            engine, self._engine, self._sessions = self._engine, None, None
            if engine is not None:
                engine.dispose()
