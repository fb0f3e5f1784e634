"""The ``omsflow`` command line. Thin: parse, call ``engine.runtime``, print.

Every command prints human output by default and one JSON document with ``--json`` where
scripts read it. Errors raised on purpose (``OmsflowError``) print as one line on stderr with
the error's exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from engine.errors import OmsflowError

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    debug: bool = False


def emit_json(doc: Any) -> None:
    """Print exactly one JSON document on stdout."""
    click.echo(json.dumps(doc, indent=2, sort_keys=False, default=str))


def fail(message: str, code: int = 1) -> None:
    """Print one line on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="omsflow")
def omsflow(debug: bool) -> None:
    """omsflow: YAML-driven order lifecycle and sync between an OMS and sales channels."""
    _State.debug = debug


# ======================================================================== spec (issue 2)
# ======================================================================== sandbox + store (issue 3)
# ======================================================================== db, sync, stock, price, outbox, orders, products (issue 4)


@omsflow.group("db")
def db_group() -> None:
    """The OMS database (SQLite in the working folder, or OMSFLOW_DATABASE_URL)."""


@db_group.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def db_upgrade(as_json: bool) -> None:
    """Create the database or bring it to the newest schema (alembic upgrade head)."""
    from engine.runtime.db import session as dbsession
    from engine.runtime.settings import Settings, redact

    settings = Settings.from_env()
    engine = dbsession.make_engine(settings.database_url)
    try:
        before = dbsession.current_revision(engine)
        dbsession.upgrade(engine)
        after = dbsession.current_revision(engine)
    finally:
        engine.dispose()
    where = redact(engine.url.render_as_string(hide_password=True))
    if as_json:
        emit_json({"database": where, "from_revision": before, "revision": after})
    elif before == after:
        click.echo(f"{where}: already at revision {after}")
    else:
        click.echo(f"{where}: upgraded {before or 'empty'} -> {after}")


# ======================================================================== wms, serve (issue 5)
# ======================================================================== listing, template (issue 6)
# ======================================================================== run, status, demo (issue 7)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one error boundary, no tracebacks for errors raised on purpose."""
    try:
        rv = omsflow.main(args=argv, prog_name="omsflow", standalone_mode=False)
        if isinstance(rv, int) and rv != 0:
            sys.exit(rv)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OmsflowError as exc:
        if _State.debug:
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
