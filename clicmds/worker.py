"""``omsflow run``, ``omsflow status`` and ``omsflow demo``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from clicmds.common import (
    Runtime,
    emit_json,
    make_progress,
    pass_runtime,
)

# ================ run, status, demo (issue 7)


@click.command("run")
@click.option(
    "--serve", is_flag=True, help="Also run the WMS receiver (needs OMSFLOW_WMS_SECRET)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Receiver address.")
@click.option("--port", default=8765, show_default=True, type=int, help="Receiver port.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Outbox dispatcher threads in this process.",
)
@click.option("--log-json", is_flag=True, help="One JSON object per log line (stderr).")
@click.option("--once", is_flag=True, help="Run the jobs due now, drain the outbox, exit.")
@click.option("--no-schedule", is_flag=True, help="Do not run sync jobs (dispatch only).")
@click.option(
    "--allow-stranded",
    is_flag=True,
    help="Start even when the specs strand orders in flight (see omsflow spec check).",
)
@pass_runtime
def run_cmd(
    rt: Runtime,
    serve: bool,
    host: str,
    port: int,
    workers: int,
    log_json: bool,
    once: bool,
    no_schedule: bool,
    allow_stranded: bool,
) -> None:
    """The long-running worker: per-store sync schedules, the outbox dispatcher and (with
    --serve) the WMS receiver, until SIGTERM/Ctrl-C (work in flight is finished)."""
    from engine.runtime.logging import setup_logging
    from engine.runtime.worker import Worker, WorkerOptions

    setup_logging(json_lines=log_json)
    settings = rt.settings
    options = WorkerOptions(
        workers=workers,
        serve=serve,
        host=host,
        port=port,
        once=once,
        schedule_jobs=not no_schedule,
    )
    from engine.runtime.specdeploy import guard_start

    bundle = rt.bundle
    guard_start(settings, bundle, "omsflow run", allow=allow_stranded)
    code = Worker(settings, bundle, options).run()
    if code:
        sys.exit(code)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def status_cmd(rt: Runtime, as_json: bool) -> None:
    """Each store's last and next runs per job, lag, outbox depth and dead letters."""
    from engine.runtime import status

    factory = rt.sessions
    with factory() as session:
        result = status.collect(session, now=datetime.now(UTC))
    if as_json:
        emit_json(result.to_json())
        return
    for line in status.render(result):
        click.echo(line)


@click.command("demo")
@click.option(
    "--products",
    default=300,
    show_default=True,
    type=click.IntRange(10, 100000),
    help="Products in the sandbox store.",
)
@click.option(
    "--orders",
    default=200,
    show_default=True,
    type=click.IntRange(10, 100000),
    help="Orders in the sandbox store (spread over 120 days).",
)
@click.option(
    "--keep",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="Keep the database, labels and diagram in DIR (default: a temp folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def demo_cmd(products: int, orders: int, keep: str | None, as_json: bool) -> None:
    """The whole integration end to end on a sandbox store and a SQLite file."""
    from pathlib import Path

    from engine.runtime.demo import run_demo, summary_lines

    result = run_demo(
        products=products,
        orders=orders,
        keep=Path(keep) if keep else None,
        say=(lambda _line: None) if as_json else (lambda line: click.echo(f"- {line}")),
        progress=make_progress(as_json),
    )
    if as_json:
        emit_json(result.to_json())
        return
    for line in summary_lines(result):
        click.echo(line)
