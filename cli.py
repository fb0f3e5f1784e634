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


# ================ spec (issue 2)


@omsflow.group("spec")
def spec_group() -> None:
    """Check, draw and try out the YAML specs (lifecycle machine, channels)."""


@spec_group.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def spec_validate(paths: tuple[str, ...], as_json: bool) -> None:
    """Validate spec files or folders (default: ./specs and ./channels, else the bundled ones).

    Prints one line per problem (FILE:LINE:COL: message (at $.path) [code]) and exits 1,
    or a one-line summary and exits 0.
    """
    from pathlib import Path

    from engine.runtime import specs

    result = specs.validate([Path(p) for p in paths] or None)
    if as_json:
        emit_json({
            "ok": result.ok,
            "files": result.files,
            "machines": [m.name for m in result.machines],
            "channels": [c.name for c in result.channels],
            "problems": [
                {
                    "file": p.location.file,
                    "line": p.location.line,
                    "column": p.location.column,
                    "path": p.location.json_path,
                    "code": p.code,
                    "message": p.message,
                    "hint": p.hint,
                }
                for p in result.problems
            ],
        })
    else:
        for p in result.problems:
            click.echo(p.line())
        if result.ok:
            click.echo(
                f"ok: {len(result.files)} file(s) valid "
                f"({len(result.machines)} machine(s), {len(result.channels)} channel(s))"
            )
        else:
            click.echo(
                f"{len(result.problems)} problem(s) in {len(result.files)} file(s)", err=True
            )
    if not result.ok:
        sys.exit(1)


@spec_group.command("schema")
@click.argument("kind", type=click.Choice(["machine", "channel"]))
def spec_schema(kind: str) -> None:
    """Print the JSON Schema of machine or channel specs (draft 2020-12)."""
    from engine.spec import schema_text

    click.echo(schema_text(kind), nl=False)


@spec_group.command("graph")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "png", "svg"]),
    default="mermaid",
    show_default=True,
    help="mermaid/dot print text; png/svg need Graphviz and --output.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=str), default=None)
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Machine spec file (default: the lifecycle in ./specs or bundled).")
def spec_graph(fmt: str, output: str | None, spec_file: str | None) -> None:
    """Draw the lifecycle: every state and every trigger."""
    from pathlib import Path

    from engine.runtime import specs

    machine = specs.load_machine_file(Path(spec_file) if spec_file else None)
    text = specs.render_graph(machine, fmt, Path(output) if output else None)
    if text is None:
        click.echo(f"wrote {output}")
    elif output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def _parse_assume(values: tuple[str, ...]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        flag = raw.strip().lower()
        if not sep or flag not in {"true", "false"}:
            raise click.BadParameter(
                f"expected GUARD=true|false, got {item!r}", param_hint="--assume"
            )
        out[name.strip()] = flag == "true"
    return out


@spec_group.command("simulate")
@click.option(
    "--events", required=True, help="Comma-separated triggers, e.g. import,release,picked."
)
@click.option("--assume", multiple=True, metavar="GUARD=true|false",
              help="Force a guard's outcome (guards hold unless assumed false).")
@click.option("--from", "start", default=None, help="Start state (default: the initial state).")
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Machine spec file (default: the lifecycle in ./specs or bundled).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def spec_simulate(
    events: str, assume: tuple[str, ...], start: str | None, spec_file: str | None, as_json: bool
) -> None:
    """Run the real engine on a throwaway order; stops at the first refusal (exit 1)."""
    from pathlib import Path

    from engine.core import compile_machine
    from engine.runtime import specs

    triggers = [e.strip() for e in events.split(",") if e.strip()]
    if not triggers:
        raise click.BadParameter("give at least one trigger", param_hint="--events")
    machine = specs.load_machine_file(Path(spec_file) if spec_file else None)
    doc = specs.simulate(
        compile_machine(machine), triggers, assume=_parse_assume(assume), start=start
    )
    if as_json:
        emit_json(doc)
    else:
        click.echo(f"start: {start or machine.initial}")
        for step in doc["steps"]:
            effects = f"  [{', '.join(step['effects'])}]" if step["effects"] else ""
            click.echo(f"{step['trigger']}: {step['from']} -> {step['to']}{effects}")
        if doc["refused"]:
            r = doc["refused"]
            click.echo(f"{r['trigger']}: refused in {r['state']} ({r['code']}): {r['message']}")
        click.echo(f"final state: {doc['final_state']}")
    if doc["refused"]:
        sys.exit(1)

# ================ sandbox + store (issue 3)
# ---- sandbox


@omsflow.group("sandbox")
def sandbox_group() -> None:
    """The PrestaShop webservice sandbox store (demo, tests, benchmarks)."""


@sandbox_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port (0: a free one).")
@click.option("--products", default=200, show_default=True, type=int, help="Products to generate.")
@click.option("--orders", default=100, show_default=True, type=int, help="Orders to generate.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the generated shop.")
@click.option("--key", default=None, help="Webservice key (32 chars); generated when absent.")
@click.option("--latency-ms", default=0.0, type=float, help="Added latency per API request.")
@click.option("--error-rate", default=0.0, type=float, help="Share of requests answered 5xx.")
@click.option("--timeout-rate", default=0.0, type=float, help="Share of requests that hang.")
@click.option("--malformed-rate", default=0.0, type=float, help="Share of bodies truncated.")
@click.option("--lost-after-commit-rate", default=0.0, type=float,
              help="Share of writes applied, then answered 500 or dropped.")
@click.option("--data", default=None, type=click.Path(dir_okay=False),
              help="JSON file: loaded on start if present, saved after every write.")
@click.option("--json", "as_json", is_flag=True, help="Print the URL and key as one JSON line.")
def sandbox_serve(host: str, port: int, products: int, orders: int, seed: int, key: str | None,
                  latency_ms: float, error_rate: float, timeout_rate: float,
                  malformed_rate: float, lost_after_commit_rate: float, data: str | None,
                  as_json: bool) -> None:
    """Serve a generated PrestaShop store on HTTP until Ctrl-C; prints its URL and key."""
    import time

    from engine.runtime.sandbox.server import start_sandbox

    server = start_sandbox(
        products=products, orders=orders, seed=seed, key=key, latency_ms=latency_ms,
        error_rate=error_rate, timeout_rate=timeout_rate, malformed_rate=malformed_rate,
        lost_after_commit_rate=lost_after_commit_rate, data=data, host=host, port=port,
        log_level="warning",
    )
    # The sandbox's own key is not a user secret: printing it is how the user connects.
    if as_json:
        emit_json({"url": server.url, "api": server.api_url, "key": server.key})
    else:
        click.echo(f"sandbox store: {server.url}  (webservice: {server.api_url})")
        click.echo(f"key: {server.key}")
        click.echo(f"next: omsflow store connect --url {server.url} --key {server.key}")
        click.echo("Ctrl-C to stop")
    sys.stdout.flush()
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


# ---- store


@omsflow.group("store")
def store_group() -> None:
    """Connected PrestaShop stores (URL + webservice key, proven before saving)."""


@store_group.command("connect")
@click.option("--url", required=True, help="The shop's base URL (the webservice is URL/api).")
@click.option("--key", "key", default=None, help="Webservice key (prefer --key-env).")
@click.option("--key-env", default=None, help="Read the key from this environment variable.")
@click.option("--name", default=None, help="Store name (default: the URL's host).")
@click.option("--insecure", is_flag=True, help="Skip TLS verification (logged).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def store_connect(
    url: str, key: str | None, key_env: str | None, name: str | None, insecure: bool,
    as_json: bool,
) -> None:
    """Prove URL, key and permissions (nothing is written to the store), resolve the status
    map's state names to ids, and save the store. The key is never echoed."""
    import os
    from urllib.parse import urlsplit

    from engine.errors import ConfigError
    from engine.runtime.channels.prestashop.connect import probe
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.settings import Secret, Settings
    from engine.runtime.specs import load_bundle

    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise ConfigError(f"environment variable {key_env} is empty or unset")
    if not key:
        raise ConfigError("no webservice key given (fix: --key KEY or --key-env VAR)")
    secret = Secret(key.strip())
    store_name = name or urlsplit(url if "://" in url else f"http://{url}").netloc or url
    bundle = load_bundle()
    report = probe(url, secret, bundle.channel, verify=not insecure)
    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        with factory() as session, session.begin():
            record = stores.save_store(session, store_name, url, secret, report.state_ids)
            saved = record.public()
    finally:
        engine.dispose()
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json({"store": saved, "probe": report.to_json()})
        return
    click.echo(
        f"connected store {store_name!r}: {report.shop_name or 'PrestaShop'} "
        f"(webservice {report.version or '?'}) at {report.api_url}, key {secret.masked()}"
    )
    click.echo(
        f"permissions: all {len(bundle.channel.permissions)} resources granted; "
        f"order states resolved: {len(report.state_ids)}"
        + (f", missing: {', '.join(report.missing_states)}" if report.missing_states else "")
    )


@store_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def store_list(as_json: bool) -> None:
    """Connected stores, keys masked."""
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.settings import Settings

    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        with factory() as session:
            rows = [r.public() for r in stores.list_stores(session)]
    finally:
        engine.dispose()
    if as_json:
        emit_json({"stores": rows})
        return
    if not rows:
        click.echo("no store connected (omsflow store connect --url URL --key-env VAR)")
    for r in rows:
        click.echo(f"{r['name']}\t{r['url']}\tkey {r['key']}\t{len(r['state_ids'])} states")

# ================ db, sync, stock, price, outbox, orders, products (issue 4)


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


# Shared command groups (defined once here; each area adds its commands to them).


@omsflow.group("sync")
def sync_group() -> None:
    """Sync the store and the OMS: catalog and orders in, stock out."""


@omsflow.group("products")
def products_group() -> None:
    """The OMS catalogue: list, show, create, import, activate, deactivate, delete."""


@omsflow.group("orders")
def orders_group() -> None:
    """Orders in the OMS: list, show, fire a manual transition."""


@omsflow.group("stock")
def stock_group() -> None:
    """Set or adjust on-hand stock; changes reach the store through the outbox."""


@omsflow.group("price")
def price_group() -> None:
    """Set prices (Retail Selling Price, Selling Price -> the store's price)."""


@omsflow.group("outbox")
def outbox_group() -> None:
    """Effects waiting for delivery: list, retry dead letters, run the dispatcher."""


# ---- stock, price, outbox, sync stock (issue 4: outbox dispatcher and effects)


def _now() -> Any:
    from engine.runtime.db.base import utcnow

    return utcnow()


def _require_sku(sessions: Any, sku: str) -> None:
    from sqlalchemy import select

    from engine.errors import NotFound
    from engine.runtime.db.tables import ProductRow

    with sessions() as session:
        found = session.scalar(
            select(ProductRow.id).where(ProductRow.sku == sku, ProductRow.deleted.is_(False))
        )
    if found is None:
        raise NotFound(f"SKU {sku!r} not found (fix: omsflow sync catalog, or check the SKU)")


def _stock_change(sku: str, as_json: bool, change: Callable[[Any, Any], Any]) -> None:
    from engine.runtime.db.session import open_database
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle

    settings = Settings.from_env()
    engine, sessions = open_database(settings)
    try:
        _require_sku(sessions, sku)
        bundle = load_bundle(settings.specs_dir, settings.channels_dir)
        result = change(sessions, bundle)
    finally:
        engine.dispose()
    level = result.level
    doc = {"sku": sku, "on_hand": level.on_hand, "reserved": level.reserved,
           "available": level.available, "promoted_orders": list(result.promoted)}
    if as_json:
        emit_json(doc)
    else:
        extra = f"; {len(result.promoted)} Partial order(s) now New" if result.promoted else ""
        click.echo(f"{sku}: on hand {level.on_hand}, reserved {level.reserved}, "
                   f"available {level.available} (store push queued){extra}")


@stock_group.command("set")
@click.argument("sku")
@click.argument("qty", type=click.IntRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="Print the new stock as JSON.")
def stock_set(sku: str, qty: int, as_json: bool) -> None:
    """Set SKU's on-hand quantity to QTY; the store gets the available quantity."""
    from engine.runtime import service

    _stock_change(sku, as_json, lambda s, b: service.set_stock(s, b, sku, qty, at=_now()))


@stock_group.command("adjust")
@click.argument("sku")
@click.argument("delta", metavar="+N|-N")
@click.option("--json", "as_json", is_flag=True, help="Print the new stock as JSON.")
def stock_adjust(sku: str, delta: str, as_json: bool) -> None:
    """Add +N or take -N from SKU's on-hand quantity."""
    from engine.errors import ConfigError
    from engine.runtime import service

    try:
        n = int(delta)
    except ValueError:
        raise ConfigError(f"stock adjust: {delta!r} is not +N or -N") from None
    _stock_change(sku, as_json, lambda s, b: service.adjust_stock(s, b, sku, n, at=_now()))


@price_group.command("set")
@click.argument("sku")
@click.option("--retail", default=None, help="OMS Retail Selling Price.")
@click.option("--selling", default=None, help="OMS Selling Price.")
@click.option("--json", "as_json", is_flag=True, help="Print the prices as JSON.")
def price_set(sku: str, retail: str | None, selling: str | None, as_json: bool) -> None:
    """Set SKU's OMS prices; the store's price follows (channel spec `prices`)."""
    from engine.runtime import pricing
    from engine.runtime.db.session import open_database
    from engine.runtime.settings import Settings

    r = pricing.parse_price(retail, "--retail") if retail is not None else None
    s = pricing.parse_price(selling, "--selling") if selling is not None else None
    settings = Settings.from_env()
    engine, sessions = open_database(settings)
    try:
        with sessions.begin() as session:
            change = pricing.set_price(session, sku, retail=r, selling=s, at=_now())
    finally:
        engine.dispose()
    doc = {"sku": change.sku,
           "retail_selling_price": None if change.retail_selling_price is None
           else str(change.retail_selling_price),
           "selling_price": None if change.selling_price is None else str(change.selling_price),
           "queued": len(change.outbox_ids)}
    if as_json:
        emit_json(doc)
    else:
        click.echo(f"{sku}: retail {doc['retail_selling_price']}, selling "
                   f"{doc['selling_price']} ({doc['queued']} store push(es) queued)")


@outbox_group.command("list")
@click.option("--dead", is_flag=True, help="Dead letters instead of waiting effects.")
@click.option("--limit", default=None, type=int, help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def outbox_list(dead: bool, limit: int | None, as_json: bool) -> None:
    """Effects waiting (pending, leased) or dead, oldest first."""
    from engine.runtime import outbox
    from engine.runtime.db.session import open_database
    from engine.runtime.settings import Settings

    engine, sessions = open_database(Settings.from_env())
    try:
        with sessions() as session:
            rows = outbox.list_entries(session, dead=dead, limit=limit)
    finally:
        engine.dispose()
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
        table.add_row(str(row["id"]), row["kind"], row["order_reference"] or row["sku"] or "",
                      row["state"], str(row["attempts"]), row["next_attempt_at"] or "",
                      (row["last_error"] or "")[:120])
    Console().print(table)


@outbox_group.command("retry")
@click.argument("entry_id", required=False, type=int)
@click.option("--all-dead", is_flag=True, help="Every dead effect.")
def outbox_retry(entry_id: int | None, all_dead: bool) -> None:
    """Put a dead effect (ID) or every dead effect back in the queue."""
    from engine.errors import ConfigError
    from engine.runtime import outbox
    from engine.runtime.db.session import open_database
    from engine.runtime.settings import Settings

    if (entry_id is None) == (not all_dead):
        raise ConfigError("outbox retry needs an ID or --all-dead (not both)")
    engine, sessions = open_database(Settings.from_env())
    try:
        with sessions.begin() as session:
            n = outbox.retry_dead(session, None if all_dead else [entry_id or 0], at=_now())
    finally:
        engine.dispose()
    click.echo(f"{n} effect(s) queued again")


def _dispatch_line(stats: Any) -> str:
    return (f"delivered {stats.delivered}, retrying {stats.retried}, dead {stats.dead}, "
            f"superseded {stats.superseded}, follow-ups {stats.followups} "
            f"in {stats.seconds:.2f}s")


@outbox_group.command("run")
@click.option("--once", is_flag=True, help="Deliver everything due now, then exit.")
@click.option("--concurrency", default=8, show_default=True, type=int, help="Parallel deliveries.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def outbox_run(once: bool, concurrency: int, as_json: bool) -> None:
    """Run the dispatcher (until Ctrl-C; --once: one pass)."""
    import threading

    from engine.runtime import outbox
    from engine.runtime.settings import Settings

    with outbox.open_dispatcher(Settings.from_env(), concurrency=concurrency) as dispatcher:
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
        click.echo(_dispatch_line(stats))
        for line in stats.errors:
            click.echo(f"  {line}")
    if stats.dead:
        sys.exit(1)


@sync_group.command("stock")
@click.option("--all", "every_sku", is_flag=True,
              help="Every active SKU, also those without a stock row (pushed as 0).")
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def sync_stock(every_sku: bool, store_name: str | None, as_json: bool) -> None:
    """Push every SKU's available quantity to the store (the manual "Sync Stock")."""
    from engine.runtime import outbox
    from engine.runtime.db.stores import get_store_row
    from engine.runtime.settings import Settings

    settings = Settings.from_env()
    with outbox.open_dispatcher(settings) as dispatcher:
        with dispatcher.session_factory.begin() as session:
            store_id = get_store_row(session, store_name).id
            queued = outbox.enqueue_stock_sync(session, store_id=store_id, every_sku=every_sku,
                                               at=_now())
        stats = dispatcher.run_once()
    if as_json:
        emit_json({"queued": queued, **stats.as_dict()})
    else:
        click.echo(f"{queued} SKU(s) queued; " + _dispatch_line(stats))
        for line in stats.errors:
            click.echo(f"  {line}")
    if stats.dead:
        sys.exit(1)


@omsflow.group("wms")
def wms_group() -> None:
    """Warehouse events: send a signed event to a receiver, or apply one directly."""


# ================ wms, serve (issue 5)


def _wms_secret() -> Any:
    """The shared WMS secret from OMSFLOW_WMS_SECRET, as a ``Secret`` (never printed)."""
    from engine.errors import ConfigError
    from engine.runtime.settings import RedactingFilter, Settings

    secret = Settings.from_env().wms_secret
    if not secret:
        raise ConfigError(
            "OMSFLOW_WMS_SECRET is not set (fix: export OMSFLOW_WMS_SECRET=<the secret shared "
            "with the WMS>)"
        )
    RedactingFilter.register(secret.reveal())
    return secret


def _wms_answer_line(status: int, answer: dict[str, Any]) -> str:
    outcome = answer.get("outcome", "?")
    parts = [f"{status} {outcome}"]
    if answer.get("order_reference"):
        parts.append(f"order {answer['order_reference']}")
    if answer.get("trigger"):
        parts.append(f"trigger {answer['trigger']}")
    if answer.get("state"):
        parts.append(f"state {answer['state']}")
    for key in ("detail", "error"):
        if answer.get(key):
            parts.append(str(answer[key]))
    return parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")


@omsflow.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port (0: a free one).")
def serve(host: str, port: int) -> None:
    """Run the WMS event receiver (POST /wms/events, GET /health) until Ctrl-C.

    Events are signed with OMSFLOW_WMS_SECRET and applied to the OMS database
    (OMSFLOW_DATABASE_URL) in one transaction each; replays are acknowledged once."""
    import signal
    import time

    from engine.runtime.db import session as dbsession
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle
    from engine.runtime.wms.receiver import WmsReceiver
    from engine.runtime.wms.server import start_in_thread
    from engine.runtime.wms.webhook import EVENTS_PATH, create_wms_app

    secret = _wms_secret()
    bundle = load_bundle()
    engine, factory = dbsession.open_database(Settings.from_env())
    app = create_wms_app(
        WmsReceiver(factory, bundle), secret, event_types=bundle.channel.fulfilment.wms_events
    )

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server = start_in_thread(app, host, port)
    except (OSError, RuntimeError) as exc:
        engine.dispose()
        fail(f"cannot listen on {host}:{port} ({exc})")
        return
    click.echo(f"wms receiver: {server.url}{EVENTS_PATH}  (health: {server.url}/health)")
    click.echo("Ctrl-C to stop")
    sys.stdout.flush()
    try:
        while server.thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        engine.dispose()
        signal.signal(signal.SIGTERM, previous)


@wms_group.command("send")
@click.argument("event_type", metavar="TYPE")
@click.argument("order_ref")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              envvar="OMSFLOW_WMS_RECEIVER_URL",
              help="The receiver's base URL (or its full /wms/events URL).")
@click.option("--event-id", default=None,
              help="Event id (default: a fresh UUID; reuse to replay).")
@click.option("--json", "as_json", is_flag=True, help="Print the receiver's answer as JSON.")
def wms_send(event_type: str, order_ref: str, url: str, event_id: str | None,
             as_json: bool) -> None:
    """Send one signed WMS event (picked, packed, handed_over, delivered) to a running
    receiver and print its answer; exits non-zero unless it was accepted (202)."""
    from engine.runtime.wms.client import send_event

    try:
        status, answer = send_event(url, _wms_secret(), event_type, order_ref, event_id=event_id)
    except ValueError as exc:
        fail(f"--url: {exc}")
        return
    if as_json:
        emit_json({"status": status, **answer})
    else:
        click.echo(_wms_answer_line(status, answer))
    if not 200 <= status < 300:
        sys.exit(1)


@wms_group.command("apply")
@click.argument("event_type", metavar="TYPE")
@click.argument("order_ref")
@click.option("--event-id", default=None,
              help="Event id (default: a fresh UUID; reuse to replay).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def wms_apply(event_type: str, order_ref: str, event_id: str | None, as_json: bool) -> None:
    """Apply one WMS event directly to the database (no HTTP, no signature), exactly as the
    receiver would: source wms, idempotent by event id. Exits non-zero when refused."""
    import uuid
    from datetime import UTC, datetime

    from engine.runtime.db import session as dbsession
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle
    from engine.runtime.wms.receiver import WmsReceiver
    from engine.runtime.wms.webhook import InvalidEvent, build_event

    bundle = load_bundle()
    try:
        event = build_event(
            event_type, order_ref, bundle.channel.fulfilment.wms_events,
            event_id=event_id or str(uuid.uuid4()), occurred_at=datetime.now(UTC),
        )
    except InvalidEvent as exc:
        fail(str(exc))
        return
    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        result = WmsReceiver(factory, bundle).apply(event)
    finally:
        engine.dispose()
    blockers = [b.message for b in result.blockers]
    doc = {
        "outcome": result.outcome,
        "event_id": event.event_id,
        "type": event.type,
        "trigger": event.trigger,
        "order_reference": event.order_reference,
        "from_state": result.from_state,
        "state": result.state,
        "effects": list(result.effects),
        "blockers": blockers,
    }
    if as_json:
        emit_json(doc)
    elif result.outcome == "applied":
        click.echo(f"applied: order {order_ref} {result.from_state} -> {result.state} "
                   f"(trigger {event.trigger}; effects: {', '.join(result.effects) or 'none'})")
    elif result.outcome == "duplicate":
        click.echo(f"duplicate: event {event.event_id} was already applied; nothing changed")
    else:
        click.echo(f"refused: order {order_ref} stays {result.state}: "
                   + "; ".join(blockers), err=True)
    if result.outcome == "refused":
        sys.exit(1)

# ================ listing, template (issue 6)
# ================ run, status, demo (issue 7)


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
