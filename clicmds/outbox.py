"""The ``omsflow outbox`` commands: list, retry, run."""

from __future__ import annotations

import sys

import click

from clicmds.common import (
    Runtime,
    dispatch_line,
    emit_json,
    pass_runtime,
    utc_now,
)


@click.group("outbox")
def outbox_group() -> None:
    """Effects waiting for delivery: list, retry dead letters, run the dispatcher."""


@outbox_group.command("list")
@click.option("--dead", is_flag=True, help="Dead letters instead of waiting effects.")
@click.option("--limit", default=None, type=int, help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_runtime
def outbox_list(rt: Runtime, dead: bool, limit: int | None, as_json: bool) -> None:
    """Effects waiting (pending, leased) or dead, oldest first."""
    from engine.runtime import outbox

    sessions = rt.sessions
    with sessions() as session:
        rows = outbox.list_entries(session, dead=dead, limit=limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no dead effects" if dead else "nothing waiting")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "kind", "order / sku", "state", "attempts", "next attempt", "last error")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["kind"],
            row["order_reference"] or row["sku"] or "",
            row["state"],
            str(row["attempts"]),
            row["next_attempt_at"] or "",
            (row["last_error"] or "")[:120],
        )
    Console().print(table)


@outbox_group.command("retry")
@click.argument("entry_id", required=False, type=int)
@click.option("--all-dead", is_flag=True, help="Every dead effect.")
@pass_runtime
def outbox_retry(rt: Runtime, entry_id: int | None, all_dead: bool) -> None:
    """Put a dead effect (ID) or every dead effect back in the queue."""
    from engine.errors import ConfigError
    from engine.runtime import outbox

    if (entry_id is None) == (not all_dead):
        raise ConfigError("outbox retry needs an ID or --all-dead (not both)")
    sessions = rt.sessions
    with sessions.begin() as session:
        n = outbox.retry_dead(session, None if all_dead else [entry_id or 0], at=utc_now())
    click.echo(f"{n} effect(s) queued again")


@outbox_group.command("run")
@click.option("--once", is_flag=True, help="Deliver everything due now, then exit.")
@click.option("--concurrency", default=8, show_default=True, type=int, help="Parallel deliveries.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_runtime
def outbox_run(rt: Runtime, once: bool, concurrency: int, as_json: bool) -> None:
    """Run the dispatcher (until Ctrl-C; --once: one pass)."""
    import threading

    from engine.runtime import outbox

    with outbox.open_dispatcher(rt.settings, concurrency=concurrency) as dispatcher:
        if once:
            stats = dispatcher.run_once()
        else:
            stop = threading.Event()
            click.echo("dispatching; Ctrl-C to stop", err=True)
            try:
                stats = dispatcher.run_forever(stop)
            except KeyboardInterrupt:
                stop.set()
                stats = outbox.DispatchStats()
    if as_json:
        emit_json(stats.as_dict())
    else:
        click.echo(dispatch_line(stats))
        for line in stats.errors:
            click.echo(f"  {line}")
    if stats.dead:
        sys.exit(1)
