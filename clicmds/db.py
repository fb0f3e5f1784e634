"""The ``omsflow db`` commands: upgrade."""

from __future__ import annotations

import click

from clicmds.common import (
    Runtime,
    emit_json,
    pass_runtime,
)

# ================ db, sync, stock, price, outbox, orders, products (issue 4)


@click.group("db")
def db_group() -> None:
    """The OMS database (SQLite in the working folder, or OMSFLOW_DATABASE_URL)."""


@db_group.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def db_upgrade(rt: Runtime, as_json: bool) -> None:
    """Create the database or bring it to the newest schema (alembic upgrade head)."""
    from engine.runtime.db import session as dbsession
    from engine.runtime.settings import redact

    settings = rt.settings
    engine = dbsession.make_engine(settings.database_url)  # no schema check: this upgrades
    rt.on_close(engine.dispose)
    before, after = dbsession.upgrade_reporting(engine, settings.database_url)
    where = redact(engine.url.render_as_string(hide_password=True))
    if as_json:
        emit_json({"database": where, "from_revision": before, "revision": after})
    elif before == after:
        click.echo(f"{where}: already at revision {after}")
    else:
        click.echo(f"{where}: upgraded {before or 'empty'} -> {after}")
