"""What every command module shares: the runtime decorator, JSON and error output, the
progress bar, the interrupted-run line."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, NoReturn

import click

from engine.runtime.context import Runtime

__all__ = [
    "STOCK_MAX",
    "Runtime",
    "dispatch_line",
    "emit_json",
    "fail",
    "interrupted",
    "make_progress",
    "open_runtime",
    "pass_runtime",
    "print_report",
    "utc_now",
]

STOCK_MAX = 2_147_483_647
"""The largest quantity a store row holds (PrestaShop's signed INT; listing.drafts.STOCK_MAX)."""

pass_runtime = click.make_pass_decorator(Runtime)
"""Hand a command the invocation's ``Runtime`` (made and closed by the root group)."""


def emit_json(doc: Any) -> None:
    """Print exactly one JSON document on stdout."""
    click.echo(json.dumps(doc, indent=2, sort_keys=False, default=str))


def fail(message: str, code: int = 1) -> None:
    """Print one line on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def utc_now() -> datetime:
    from engine.runtime.db.schema import utcnow

    return utcnow()


def open_runtime(rt: Runtime) -> Runtime:
    """The runtime of a command that syncs or reads orders and products: the spec version it
    runs under is recorded first (``omsflow spec check`` compares against it)."""
    from datetime import UTC

    from engine.runtime.specdeploy import record_version

    sessions = rt.sessions
    record_version(sessions, rt.bundle, at=datetime.now(UTC))
    return rt


def make_progress(as_json: bool) -> Any:
    """A rich bar on stderr when it is a terminal and --json is off; else a silent counter."""
    from engine.runtime.sync.progress import interactive, terminal_progress

    return terminal_progress(interactive(as_json))


def print_report(doc: dict[str, Any]) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in doc["counts"].items() if k != "requests")
    click.echo(
        f"{doc['stream']} ({doc['mode']}) for store {doc['store']!r}: {counts or 'nothing new'}; "
        f"{doc['requests']} requests in {doc['seconds']:.1f}s"
    )


def dispatch_line(stats: Any) -> str:
    return (
        f"delivered {stats.delivered}, retrying {stats.retried}, dead {stats.dead}, "
        f"superseded {stats.superseded}, follow-ups {stats.followups} "
        f"in {stats.seconds:.2f}s"
    )


def interrupted(message: str, doc: dict[str, Any] | None, as_json: bool) -> NoReturn:
    """Ctrl-C: one line on stderr saying what was done and how to finish (with --json also
    ``doc`` with ``interrupted: true`` on stdout); exit 130."""
    if as_json and doc is not None:
        emit_json({"interrupted": True, "message": message, **doc})
    click.echo(message, err=True)
    sys.exit(130)
