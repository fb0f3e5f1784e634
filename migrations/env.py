"""Alembic environment: omsflow's models are the target; batch mode on SQLite.

Used programmatically (``engine.runtime.db.session.alembic_config``): the caller passes an
open connection in ``config.attributes["connection"]`` or a URL in ``attributes["url"]``;
without either, ``OMSFLOW_DATABASE_URL`` (or ./omsflow.db) is used.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

import engine.runtime.db.tables  # noqa: F401 - registers every table on Base.metadata
from engine.runtime.db.base import Base, UtcDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations stay frozen: render our UTC decorator as the plain column type it wraps.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from engine.runtime.db.session import make_engine
    from engine.runtime.settings import Settings

    url = config.attributes.get("url") or Settings.from_env().database_url
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        eng.dispose()


if context.is_offline_mode():
    raise SystemExit("omsflow migrations run online only (omsflow db upgrade)")
_run_online()
