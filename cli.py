"""The ``omsflow`` command line. Thin: parse, call ``engine.runtime``, print.

Every command prints human output by default and one JSON document with ``--json`` where
scripts read it. Errors raised on purpose (``OmsflowError``) print as one line on stderr with
the error's exit code; ``--debug`` shows the traceback instead.

This module is the root: the global options, the error boundary (``main``) and the table of
command groups. Each group lives in its own module of ``clicmds`` and is imported only when
the command line names it, so ``omsflow stock set`` loads neither the listing, the sandbox
nor the spec tooling. Every command gets one ``Runtime`` (``engine.runtime.context``:
settings, database, specs, adapters, each built on first use), closed when the command ends.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from clicmds.common import STOCK_MAX, emit_json, fail
from engine.errors import OmsflowError
from engine.runtime.context import Runtime

__all__ = ["COMMANDS", "STOCK_MAX", "emit_json", "fail", "main", "omsflow"]

COMMANDS = {
    "db": "clicmds.db:db_group",
    "demo": "clicmds.worker:demo_cmd",
    "orders": "clicmds.orders:orders_group",
    "outbox": "clicmds.outbox:outbox_group",
    "price": "clicmds.stock:price_group",
    "products": "clicmds.products:products_group",
    "run": "clicmds.worker:run_cmd",
    "sandbox": "clicmds.sandbox:sandbox_group",
    "serve": "clicmds.wms:serve",
    "spec": "clicmds.spec:spec_group",
    "status": "clicmds.worker:status_cmd",
    "stock": "clicmds.stock:stock_group",
    "store": "clicmds.store:store_group",
    "sync": "clicmds.sync:sync_group",
    "wms": "clicmds.wms:wms_group",
}
"""Each command of the root: the module and name of its click command or group."""


class LazyGroup(click.Group):
    """A group whose commands are imported when named (``--help`` imports them all)."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, name = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), name)
        if not isinstance(command, click.Command):  # pragma: no cover - a wrong table entry
            raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
        return command


@click.group(
    cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "--create",
    is_flag=True,
    help="Let this command create the SQLite database if it does not exist yet.",
)
@click.version_option(package_name="omsflow")
@click.pass_context
def omsflow(ctx: click.Context, debug: bool, create: bool = False) -> None:
    """omsflow: YAML-driven order lifecycle and sync between an OMS and sales channels."""
    runtime = ctx.ensure_object(Runtime)
    runtime.debug = debug
    if not create:  # everyday commands refuse to create a database (see Settings)
        ctx.with_resource(_env_set("OMSFLOW_REFUSE_NEW_DATABASE", "1"))
    ctx.call_on_close(runtime.close)


@contextlib.contextmanager
def _env_set(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for this invocation only (restored on close)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _error_json(kind: str, message: str, exit_code: int) -> None:
    """A user mistake as JSON on stdout (with ``--json``, scripts read stdout)."""
    lines = message.splitlines() or [kind]
    click.echo(
        json.dumps(
            {"error": {"type": kind, "message": lines[0], "lines": lines, "exit_code": exit_code}}
        )
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: one error boundary, no tracebacks for errors raised on purpose. Every
    mistake is one ``error: ...`` line (JSON on stdout when ``--json`` was given) with its own
    exit code: 2 usage, 78 configuration, 69 unreachable store or database, 77 refused key,
    1 anything else refused."""
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    runtime = Runtime()
    try:
        rv = omsflow.main(args=argv, prog_name="omsflow", standalone_mode=False, obj=runtime)
        if isinstance(rv, int) and rv != 0:
            sys.exit(rv)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        message = exc.format_message()
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message += f" (see '{exc.ctx.command_path} --help')"
        if as_json:
            _error_json(type(exc).__name__, message, exc.exit_code)
        else:
            click.echo(f"error: {message}", err=True)
        sys.exit(exc.exit_code)
    except OmsflowError as exc:
        if runtime.debug:
            raise
        if as_json:
            _error_json(type(exc).__name__, str(exc), exc.exit_code)
        else:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
