"""The ``omsflow sync`` commands: catalog and orders in, stock out."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from clicmds.common import (
    Runtime,
    dispatch_line,
    emit_json,
    interrupted,
    make_progress,
    open_runtime,
    pass_runtime,
    print_report,
    utc_now,
)

R = TypeVar("R")


def _with_progress(
    as_json: bool, run: Callable[[Any], R], stream: str, noun: str, resumes: str
) -> R:
    """``run(progress)`` with a progress bar (none under ``--json``); Ctrl-C says how much
    was saved and how a re-run resumes (``resumes``), then exits as interrupted."""
    progress = make_progress(as_json)
    try:
        return run(progress)
    except KeyboardInterrupt:
        progress.close()
        seen = sum(progress.done.values())
        interrupted(
            f"interrupted: {seen} {noun}(s) read and saved; run the same command again to "
            f"finish — {resumes}",
            {"stream": stream, f"{noun}s_saved": seen},
            as_json,
        )
    finally:
        progress.close()


@click.group("sync")
def sync_group() -> None:
    """Sync the store and the OMS: catalog and orders in, stock out."""


@sync_group.command("catalog")
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--full", is_flag=True, help="Read every product (detects deletions).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@pass_runtime
def sync_catalog_cmd(rt: Runtime, store_name: str | None, full: bool, as_json: bool) -> None:
    """Categories, attributes, brands, products and combinations, store -> OMS."""
    from engine.runtime.sync import sync_catalog

    open_runtime(rt)
    report = _with_progress(
        as_json,
        lambda progress: sync_catalog(
            rt.sessions, rt.bundle, store_name, full=full, progress=progress
        ),
        "catalog",
        "product",
        "a full sync resumes after the last saved page, a delta sync reads the changes again "
        "(nothing is bound twice)",
    )
    if as_json:
        emit_json(report.to_json())
    else:
        print_report(report.to_json())
        if report.counts.get("conflicts"):
            click.echo(
                f"{report.counts['conflicts']} catalogue conflict(s) need the store fixed: "
                "omsflow products conflicts"
            )


@sync_group.command("orders")
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--since", default=None, help="Backfill window, e.g. 90d (default: the channel's).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@pass_runtime
def sync_orders_cmd(rt: Runtime, store_name: str | None, since: str | None, as_json: bool) -> None:
    """New orders and status changes, store -> OMS, through the lifecycle."""
    from engine.runtime.sync import parse_since, sync_orders

    days = parse_since(since) if since else None
    open_runtime(rt)
    report = _with_progress(
        as_json,
        lambda progress: sync_orders(
            rt.sessions, rt.bundle, store_name, since_days=days, progress=progress
        ),
        "orders",
        "order",
        "each page is saved with its cursor, and an order seen twice is not imported twice",
    )
    if as_json:
        emit_json(report.to_json())
    else:
        print_report(report.to_json())


@sync_group.command("stock")
@click.option(
    "--all",
    "every_sku",
    is_flag=True,
    help="Every active SKU, also those without a stock row (pushed as 0).",
)
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_runtime
def sync_stock(rt: Runtime, every_sku: bool, store_name: str | None, as_json: bool) -> None:
    """Push every SKU's available quantity to the store (the manual "Sync Stock"). A bar on
    a terminal; Ctrl-C finishes the pushes in flight and says how many went out (the rest
    stay queued for 'omsflow run' or a re-run)."""
    from engine.runtime import outbox
    from engine.runtime.sync.stock import push_all_stock

    def stopping() -> None:
        click.echo("stopping: finishing the pushes in flight (Ctrl-C again to quit now)",
                   err=True)  # fmt: skip

    progress = make_progress(as_json)
    try:
        # batches of 50: a smooth bar, and Ctrl-C waits for at most two batches in flight
        with outbox.open_dispatcher(rt.settings, batch=50) as dispatcher:
            done = push_all_stock(dispatcher, store_name=store_name, every_sku=every_sku,
                                  at=utc_now(), progress=progress,
                                  on_interrupt=stopping)  # fmt: skip
    except KeyboardInterrupt:
        progress.close()
        interrupted("interrupted at once: pushes in flight stay leased for up to a minute, "
                     "then 'omsflow run' or 'omsflow sync stock' delivers them", None,
                     as_json)  # fmt: skip
    finally:
        progress.close()
    stats = done.stats
    if done.interrupted:
        interrupted(
            f"interrupted: {done.pushed} of {done.queued} SKU(s) pushed to the store; the "
            f"other {done.waiting} stay queued: 'omsflow run' (or 'omsflow outbox run') "
            "delivers them, or run 'omsflow sync stock' again",
            {"queued": done.queued, "pushed": done.pushed, "waiting": done.waiting,
             **stats.as_dict()},
            as_json,
        )  # fmt: skip
    if as_json:
        emit_json({"queued": done.queued, **stats.as_dict()})
    else:
        click.echo(f"{done.queued} SKU(s) queued; " + dispatch_line(stats))
        for line in stats.errors:
            click.echo(f"  {line}")
    if stats.dead:
        sys.exit(1)
