"""The ``omsflow`` command line. Thin: parse, call ``engine.runtime``, print.

Every command prints human output by default and one JSON document with ``--json`` where
scripts read it. Errors raised on purpose (``OmsflowError``) print as one line on stderr with
the error's exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import click

from engine.errors import OmsflowError

STOCK_MAX = 2_147_483_647
"""The largest quantity a store row holds (PrestaShop's signed INT; listing.drafts.STOCK_MAX)."""

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
@click.option(
    "--create",
    is_flag=True,
    help="Let this command create the SQLite database if it does not exist yet.",
)
@click.version_option(package_name="omsflow")
def omsflow(debug: bool, create: bool = False) -> None:
    """omsflow: YAML-driven order lifecycle and sync between an OMS and sales channels."""
    _State.debug = debug
    if not create:  # everyday commands refuse to create a database (see Settings)
        click.get_current_context().with_resource(_env_set("OMSFLOW_REFUSE_NEW_DATABASE", "1"))


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


# ================ spec (issue 2)


@omsflow.group("spec")
def spec_group() -> None:
    """Check, draw and try out the YAML specs (lifecycle machine, channels)."""


@spec_group.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--store",
    "store_name",
    default=None,
    help="Check the mappings against this connected store's own fields (its modules' too).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def spec_validate(paths: tuple[str, ...], store_name: str | None, as_json: bool) -> None:
    """Validate spec files or folders (default: ./specs and ./channels, else the bundled ones).

    Mappings are checked against the OMS model (omsflow spec schema oms) and PrestaShop's
    resources: those omsflow knows (8.x, 1.7), or with --store those of a connected store,
    read now. Prints one line per problem (FILE:LINE:COL: message (at $.path) [code]) and
    exits 1, or a one-line summary and exits 0.
    """
    from pathlib import Path

    from engine.runtime import specs

    side = None
    if store_name is not None:
        from engine.runtime.db import session as dbsession
        from engine.runtime.preview import live_store_side
        from engine.runtime.settings import Settings

        engine, factory = dbsession.open_database(Settings.from_env())
        try:
            side = live_store_side(factory, store_name, None)
        finally:
            engine.dispose()
    from engine.runtime import specdeploy
    from engine.runtime.settings import Settings

    settings = Settings.from_env()
    stranded: list[Any] = []
    previous = None
    with_db = specdeploy.database_exists(settings)
    if with_db:
        from engine.runtime.db import session as dbsession

        engine, factory = dbsession.open_database(settings)
        try:
            with factory() as session:
                previous = specdeploy.last_run_machine(session, None)
        finally:
            engine.dispose()
    result = specs.validate([Path(p) for p in paths] or None, store=side, previous=previous)
    if with_db and result.ok:
        # the working specs against the orders and outbox in flight (omsflow spec check)
        stranded = specdeploy.check_database(settings, specs.load_bundle())
    if as_json:
        emit_json(
            {
                "ok": result.ok and not stranded,
                "stranded": [p.doc() for p in stranded],
                "store": side.label if side is not None else None,
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
            }
        )
    else:
        for p in result.problems:
            click.echo(p.line())
        for sp in stranded:
            click.echo(sp.line())
        if stranded:
            click.echo(
                f"{len(stranded)} problem(s) with the orders in flight (omsflow spec check)",
                err=True,
            )
        elif result.ok:
            against = f"; mappings checked against {side.label}" if side is not None else ""
            click.echo(
                f"ok: {len(result.files)} file(s) valid "
                f"({len(result.machines)} machine(s), {len(result.channels)} channel(s)){against}"
            )
        else:
            click.echo(
                f"{len(result.problems)} problem(s) in {len(result.files)} file(s)", err=True
            )
    if not result.ok or stranded:
        sys.exit(1)


@spec_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
def spec_check(as_json: bool) -> None:
    """The deploy check: the working specs against the orders and outbox in the database.

    Reports orders in states the specs lack (or waiting for a declared migration), orders
    whose state lost every way out, queued effects the specs no longer know, and store
    statuses of the channel map a connected store does not resolve: one located line per
    problem with the orders it strands; exit 1 on any.
    """
    from engine.runtime import specdeploy
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle

    bundle = load_bundle()
    problems = specdeploy.check_database(Settings.from_env(), bundle)
    if as_json:
        emit_json(
            {
                "ok": not problems,
                "spec_version": bundle.spec_version,
                "label": bundle.spec_label,
                "problems": [p.doc() for p in problems],
            }
        )
    else:
        for p in problems:
            click.echo(p.line())
        if problems:
            orders = {ref for p in problems for ref in p.orders}
            click.echo(
                f"{len(problems)} problem(s); {len(orders)} order(s) stranded by spec "
                f"{bundle.spec_version}",
                err=True,
            )
        else:
            click.echo(f"ok: the orders in flight fit spec {bundle.spec_version}")
    if problems:
        sys.exit(1)


@spec_group.command("migrate")
@click.option("--dry-run", is_flag=True, help="Say what would move; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def spec_migrate(dry_run: bool, as_json: bool) -> None:
    """Apply the lifecycle's migrations: to the orders in flight: each order moves in its
    own transaction as an audited event naming the spec change; queued effects of a
    renamed effect are renamed. Then runs the deploy check (exit 1 if work is still
    stranded)."""
    from datetime import UTC, datetime

    from engine.errors import SpecErrors
    from engine.runtime import specdeploy
    from engine.runtime.db import session as dbsession
    from engine.runtime.settings import Settings
    from engine.runtime.specs import bundled_machine, load_bundle
    from engine.spec import check_migration_invariants
    from engine.spec.source import load_file

    bundle = load_bundle()
    settings = Settings.from_env()
    engine, factory = dbsession.open_database(settings)
    try:
        with factory() as session:
            previous = specdeploy.last_run_machine(session, bundle.spec_version)
        reference = previous or bundled_machine()
        if reference is not None and bundle.machine.migrations:
            refused = check_migration_invariants(
                bundle.machine, load_file(bundle.machine.file), reference
            )
            if refused:
                raise SpecErrors(refused)
        now = datetime.now(UTC)
        if not dry_run:
            specdeploy.record_version(factory, bundle, at=now)
        report = specdeploy.migrate(factory, bundle, at=now, dry_run=dry_run)
        with factory() as session:
            left = [] if dry_run else specdeploy.check(session, bundle)
    finally:
        engine.dispose()
    if as_json:
        emit_json(
            {
                "dry_run": dry_run,
                "spec_version": bundle.spec_version,
                "moved": report.moved,
                "effects": report.effects,
                "stranded": [p.doc() for p in left],
            }
        )
    else:
        verb = "would move" if dry_run else "moved"
        for m in report.moved:
            click.echo(f"{verb} {m['reference']}: {m['from']} -> {m['to']} ({m['migration']})")
        for e in report.effects:
            click.echo(
                f"{'would rename' if dry_run else 'renamed'} {e['count']} queued "
                f"'{e['from']}' effect(s) to '{e['to']}'"
            )
        for p in left:
            click.echo(p.line())
        click.echo(
            f"{'dry run: ' if dry_run else ''}{len(report.moved)} order(s) {verb} "
            f"under spec {bundle.spec_version}"
            + (f"; {len(left)} problem(s) left (omsflow spec check)" if left else "")
        )
    if left:
        sys.exit(1)


@spec_group.command("schema")
@click.argument("kind", type=click.Choice(["machine", "channel", "oms"]))
def spec_schema(kind: str) -> None:
    """Print a JSON Schema (draft 2020-12): machine or channel specs, or oms: the OMS records
    the channel mappings fill (fields, types, which are required, the mappings omsflow runs)."""
    from engine.spec import schema_text

    click.echo(schema_text(kind), nl=False)


def _preview(
    kind: str, key: str | None, sample: bool, store_name: str | None, as_json: bool
) -> None:
    from engine.runtime import preview
    from engine.runtime.specs import load_bundle

    if (key is None) == (not sample):
        raise click.UsageError(
            f"give a {'reference' if kind == 'order' else 'SKU'} or --sample (not both)"
        )
    channel = load_bundle().channel
    run = preview.preview_order if kind == "order" else preview.preview_product
    if sample:
        doc = run(channel, None, sample=True)
    else:
        from engine.runtime.db import session as dbsession
        from engine.runtime.settings import Settings

        engine, factory = dbsession.open_database(Settings.from_env())
        try:
            doc = run(channel, key, sessions=factory, store_name=store_name)
        finally:
            engine.dispose()
    if as_json:
        emit_json(doc)
        return
    for line in preview.render(doc):
        click.echo(line)


@spec_group.group("preview")
def spec_preview() -> None:
    """Run the channel's mappings on a real store record (or a bundled sample): the OMS
    record they make and where each field came from. Writes nothing."""


@spec_preview.command("order")
@click.argument("reference", required=False)
@click.option("--sample", is_flag=True, help="A bundled PrestaShop 8.2.1 order instead.")
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--json", "as_json", is_flag=True, help="Print the preview as JSON.")
def spec_preview_order(
    reference: str | None, sample: bool, store_name: str | None, as_json: bool
) -> None:
    """order_in on the store order REFERENCE (or its id, #12)."""
    _preview("order", reference, sample, store_name, as_json)


@spec_preview.command("product")
@click.argument("sku", required=False)
@click.option("--sample", is_flag=True, help="A bundled PrestaShop 8.2.1 product instead.")
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--json", "as_json", is_flag=True, help="Print the preview as JSON.")
def spec_preview_product(
    sku: str | None, sample: bool, store_name: str | None, as_json: bool
) -> None:
    """product_in (and combination_in) on the store product SKU is bound to (or whose
    reference it is)."""
    _preview("product", sku, sample, store_name, as_json)


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
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Machine spec file (default: the lifecycle in ./specs or bundled).",
)
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
@click.option(
    "--assume",
    multiple=True,
    metavar="GUARD=true|false",
    help="Force a guard's outcome (guards hold unless assumed false).",
)
@click.option("--from", "start", default=None, help="Start state (default: the initial state).")
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Machine spec file (default: the lifecycle in ./specs or bundled).",
)
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
            if step.get("migration"):
                effects = f"  (declared migration: {step['migration']})"
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
@click.option(
    "--lost-after-commit-rate",
    default=0.0,
    type=float,
    help="Share of writes applied, then answered 500 or dropped.",
)
@click.option(
    "--data",
    default=None,
    type=click.Path(dir_okay=False),
    help="JSON file: loaded on start if present, saved after every write.",
)
@click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    help="The shop's clock (PS_TIMEZONE, e.g. Europe/Paris): dates are written in it.",
)
@click.option(
    "--languages",
    default=2,
    show_default=True,
    type=click.IntRange(1, 6),
    help="Languages of the generated shop (en, fr, de, es, it, nl).",
)
@click.option(
    "--version",
    "ps_version",
    default="8.2.1",
    show_default=True,
    help="PrestaShop version to play (8.x, or 1.7.x: no product_type...).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the URL and key as one JSON line.")
def sandbox_serve(
    host: str,
    port: int,
    products: int,
    orders: int,
    seed: int,
    key: str | None,
    latency_ms: float,
    error_rate: float,
    timeout_rate: float,
    malformed_rate: float,
    lost_after_commit_rate: float,
    data: str | None,
    languages: int,
    ps_version: str,
    as_json: bool,
    timezone: str = "UTC",
) -> None:
    """Serve a generated PrestaShop store on HTTP until Ctrl-C; prints its URL and key."""
    import time

    from engine.runtime.sandbox.server import start_sandbox

    server = start_sandbox(
        products=products,
        orders=orders,
        seed=seed,
        key=key,
        latency_ms=latency_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        malformed_rate=malformed_rate,
        lost_after_commit_rate=lost_after_commit_rate,
        data=data,
        languages=languages,
        version=ps_version,
        host=host,
        port=port,
        log_level="warning",
        timezone=timezone,
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
@click.option("--no-sync", is_flag=True, help="Skip the catalogue sync and order backfill.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def store_connect(
    url: str,
    key: str | None,
    key_env: str | None,
    name: str | None,
    insecure: bool,
    as_json: bool,
    no_sync: bool = False,
) -> None:
    """Prove URL, key and permissions (nothing is written to the store), resolve the status
    map's state names to ids, and save the store. The key is never echoed."""
    import dataclasses
    from urllib.parse import urlsplit

    from engine.runtime.channels.prestashop.connect import probe
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.settings import Secret, Settings
    from engine.runtime.specs import load_bundle

    secret = Secret(_key_from(key, key_env))
    store_name = name or urlsplit(url if "://" in url else f"http://{url}").netloc or url
    bundle = load_bundle()
    report = probe(url, secret, bundle.channel, verify=not insecure)
    settings = dataclasses.replace(Settings.from_env(), create_database=True)
    created = dbsession.new_sqlite_file(settings.database_url)
    engine, factory = dbsession.open_database(settings)
    if created is not None:
        click.echo(f"created the database {created}", err=True)
    synced: list[dict[str, Any]] = []
    try:
        with factory() as session, session.begin():
            record = stores.save_store(
                session, store_name, url, secret, report.state_ids, facts=report.facts.to_json()
            )
            saved = record.public()
        if not no_sync:  # issue 4: catalogue, then the order backfill, by themselves
            from engine.runtime.sync import run_initial_sync

            progress = _progress(as_json)
            try:
                synced = [
                    r.to_json()
                    for r in run_initial_sync(factory, bundle, store_name, progress=progress)
                ]
            except KeyboardInterrupt:
                progress.close()
                _interrupted(
                    f"interrupted: store {store_name!r} is connected; its first sync stopped "
                    f"after {sum(progress.done.values())} record(s) saved: run 'omsflow sync "
                    "catalog' then 'omsflow sync orders' to finish it",
                    {"store": saved, "sync_saved": dict(progress.done)},
                    as_json,
                )
            finally:
                progress.close()
    finally:
        engine.dispose()
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json({"store": saved, "probe": report.to_json(), "sync": synced})
        return
    for doc in synced:
        _print_report(doc)
    click.echo(
        f"connected store {store_name!r}: {report.shop_name or 'PrestaShop'} "
        f"(webservice {report.version or '?'}) at {report.api_url}, key {secret.masked()}"
    )
    click.echo(
        f"permissions: all {len(bundle.channel.permissions)} resources granted; "
        f"order states resolved: {len(report.state_ids)}"
        + (f", missing: {', '.join(report.missing_states)}" if report.missing_states else "")
    )
    langs = ", ".join(f"{lang.iso_code} ({lang.id})" for lang in report.facts.languages)
    click.echo(f"shop clock: {report.facts.timezone}; languages: {langs or '-'}")


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
        langs = ",".join(str(lang["iso_code"]) for lang in r["languages"]) or "-"
        click.echo(
            f"{r['name']}\t{r['url']}\tkey {r['key']}\t{len(r['state_ids'])} states\t"
            f"{r['timezone']}\t{langs}"
        )


def _key_from(key: str | None, key_env: str | None) -> str:
    import os

    from engine.errors import ConfigError

    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise ConfigError(f"environment variable {key_env} is empty or unset")
    if not key:
        raise ConfigError("no webservice key given (fix: --key KEY or --key-env VAR)")
    return key.strip()


@store_group.command("update-key")
@click.argument("name")
@click.option("--key", "key", default=None, help="The new webservice key (prefer --key-env).")
@click.option("--key-env", default=None, help="Read the new key from this environment variable.")
@click.option("--insecure", is_flag=True, help="Skip TLS verification (logged).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def store_update_key(
    name: str, key: str | None, key_env: str | None, insecure: bool, as_json: bool
) -> None:
    """Replace a store's webservice key: proven against the store (authentication and every
    permission the channel spec needs) before it is saved, encrypted."""
    from engine.runtime.channels.prestashop.connect import probe
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.settings import Secret, Settings
    from engine.runtime.specs import load_bundle

    secret = Secret(_key_from(key, key_env))
    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        with factory() as session:
            url = stores.get_store(session, name).url
        probe(url, secret, load_bundle().channel, verify=not insecure)
        with factory() as session, session.begin():
            saved = stores.update_key(session, name, secret).public()
    finally:
        engine.dispose()
    if as_json:
        emit_json({"store": saved})
        return
    click.echo(f"store {name!r}: new key {secret.masked()} proven and saved")


@store_group.command("rename")
@click.argument("name")
@click.argument("new_name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def store_rename(name: str, new_name: str, as_json: bool) -> None:
    """Give a connected store another name."""
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.settings import Settings

    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        with factory() as session, session.begin():
            saved = stores.rename_store(session, name, new_name).public()
    finally:
        engine.dispose()
    if as_json:
        emit_json({"store": saved})
        return
    click.echo(f"store {name!r} is now {new_name!r}")


@store_group.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also when it has open orders (they are detached).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def store_remove(name: str, force: bool, as_json: bool) -> None:
    """Forget a store: its bindings, cursors and schedules go; its orders stay in the OMS.
    Refused while it has open orders (state not final) unless --force."""
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle

    machine = load_bundle().machine
    open_states = frozenset(st.name for st in machine.states if not st.final and not st.pseudo)
    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        with factory() as session, session.begin():
            done = stores.remove_store(session, name, open_states=open_states, force=force)
    finally:
        engine.dispose()
    if as_json:
        emit_json(
            {
                "removed": done.name,
                "open_orders": list(done.open_orders),
                "orders_detached": done.orders_detached,
                "effects_dropped": done.effects_dropped,
            }
        )
        return
    click.echo(
        f"store {name!r} removed; {done.orders_detached} order(s) kept without a store, "
        f"{done.effects_dropped} undelivered effect(s) dropped"
    )


@store_group.command("states")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def store_states(name: str | None, as_json: bool) -> None:
    """The store's order states (read from it now) and what the channel spec does with each:
    which OMS states push it, which trigger imports or follows it."""
    from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle

    channel = load_bundle().channel
    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        with factory() as session:
            record = stores.get_store(session, name)
    finally:
        engine.dispose()
    with PrestaShopAdapter.from_channel(record.url, record.key, channel) as adapter:
        states = adapter.order_states()
    by_id: dict[int, list[str]] = {}
    for spec_name, sid in record.state_ids.items():
        by_id.setdefault(int(sid), []).append(spec_name)
    smap = channel.status_map
    rows: list[dict[str, Any]] = []
    for st in sorted(states, key=lambda s: s.id):
        names = by_id.get(st.id, [])
        pushed_by = sorted(o for o, ps in smap.outbound.items() if ps in names)
        rule = next((smap.inbound[n] for n in names if n in smap.inbound), None)
        rows.append(
            {
                "id": st.id,
                "name": st.name,
                "spec_names": names,
                "pushed_by": pushed_by,
                "imported": any(n in smap.imported for n in names),
                "import_trigger": rule.import_trigger if rule else None,
                "change_trigger": rule.change_trigger if rule else None,
            }
        )
    if as_json:
        emit_json({"store": record.name, "states": rows})
        return
    for r in rows:
        parts = []
        if r["pushed_by"]:
            parts.append("pushed by " + ", ".join(r["pushed_by"]))
        if r["import_trigger"]:
            parts.append(f"imported via {r['import_trigger']}")
        if r["change_trigger"]:
            parts.append(f"fires {r['change_trigger']}")
        click.echo(f"{r['id']}\t{r['name']}\t{'; '.join(parts) or '(not used by the spec)'}")


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
        before, after = dbsession.upgrade_reporting(engine, settings.database_url)
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


# ---- sync, products, orders (issue 4: catalogue + order sync, read models)


def _open_runtime() -> tuple[Any, Any, Any]:
    from datetime import UTC, datetime

    from engine.runtime.db import session as dbsession
    from engine.runtime.settings import Settings
    from engine.runtime.specdeploy import record_version
    from engine.runtime.specs import load_bundle

    engine, factory = dbsession.open_database(Settings.from_env())
    bundle = load_bundle()
    record_version(factory, bundle, at=datetime.now(UTC))
    return engine, factory, bundle


def _progress(as_json: bool) -> Any:
    """A rich bar on stderr when it is a terminal and --json is off; else a silent counter."""
    from engine.runtime.sync.progress import interactive, terminal_progress

    return terminal_progress(interactive(as_json))


def _print_report(doc: dict[str, Any]) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in doc["counts"].items() if k != "requests")
    click.echo(
        f"{doc['stream']} ({doc['mode']}) for store {doc['store']!r}: {counts or 'nothing new'}; "
        f"{doc['requests']} requests in {doc['seconds']:.1f}s"
    )


@sync_group.command("catalog")
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--full", is_flag=True, help="Read every product (detects deletions).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
def sync_catalog_cmd(store_name: str | None, full: bool, as_json: bool) -> None:
    """Categories, attributes, brands, products and combinations, store -> OMS."""
    from engine.runtime.sync import sync_catalog

    engine, factory, bundle = _open_runtime()
    progress = _progress(as_json)
    try:
        report = sync_catalog(factory, bundle, store_name, full=full, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        seen = sum(progress.done.values())
        _interrupted(
            f"interrupted: {seen} product(s) read and saved; run the same command again to "
            "finish — a full sync resumes after the last saved page, a delta sync reads the "
            "changes again (nothing is bound twice)",
            {"stream": "catalog", "products_saved": seen},
            as_json,
        )
    finally:
        progress.close()
        engine.dispose()
    if as_json:
        emit_json(report.to_json())
    else:
        _print_report(report.to_json())
        if report.counts.get("conflicts"):
            click.echo(
                f"{report.counts['conflicts']} catalogue conflict(s) need the store fixed: "
                "omsflow products conflicts"
            )


@sync_group.command("orders")
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--since", default=None, help="Backfill window, e.g. 90d (default: the channel's).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
def sync_orders_cmd(store_name: str | None, since: str | None, as_json: bool) -> None:
    """New orders and status changes, store -> OMS, through the lifecycle."""
    from engine.runtime.sync import parse_since, sync_orders

    days = parse_since(since) if since else None
    engine, factory, bundle = _open_runtime()
    progress = _progress(as_json)
    try:
        report = sync_orders(factory, bundle, store_name, since_days=days, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        seen = sum(progress.done.values())
        _interrupted(
            f"interrupted: {seen} order(s) read and saved; run the same command again to "
            "finish — each page is saved with its cursor, and an order seen twice is not "
            "imported twice",
            {"stream": "orders", "orders_saved": seen},
            as_json,
        )
    finally:
        progress.close()
        engine.dispose()
    if as_json:
        emit_json(report.to_json())
    else:
        _print_report(report.to_json())


@products_group.command("list")
@click.option("--deleted", "include_deleted", is_flag=True, help="Include deleted products.")
@click.option("--json", "as_json", is_flag=True, help="Print the products as JSON.")
def products_list(include_deleted: bool, as_json: bool) -> None:
    """Products and variations with price and stock (on hand, reserved, available)."""
    from engine.runtime import queries

    engine, factory, _bundle = _open_runtime()
    try:
        with factory() as session:
            rows = queries.list_products(session, include_deleted=include_deleted)
    finally:
        engine.dispose()
    if as_json:
        emit_json({"products": rows})
        return
    for r in rows:
        flags = ("" if r["active"] else " inactive") + (" deleted" if r["deleted"] else "")
        click.echo(
            f"{r['sku']}\t{r['name']}\t{r['parent_sku'] or '-'}\t{r['price'] or '-'}\t"
            f"on hand {r['on_hand']} reserved {r['reserved']} available {r['available']}{flags}"
        )
    click.echo(f"{len(rows)} products", err=True)


@products_group.command("show")
@click.argument("sku")
@click.option("--json", "as_json", is_flag=True, help="Print the product as JSON.")
def products_show(sku: str, as_json: bool) -> None:
    """One product: price, stock, image, brand, categories, variations, the store's ids."""
    from engine.runtime import queries

    engine, factory, _bundle = _open_runtime()
    try:
        with factory() as session:
            doc = queries.show_product(session, sku)
    finally:
        engine.dispose()
    if as_json:
        emit_json(doc)
        return
    for key, value in doc.items():
        if isinstance(value, list | dict):
            value = json.dumps(value, default=str)
        click.echo(f"{key}: {value if value is not None else '-'}")


@products_group.command("conflicts")
@click.option("--store", "store_name", default=None, help="Only this store's conflicts.")
@click.option("--json", "as_json", is_flag=True, help="Print the conflicts as JSON.")
def products_conflicts(store_name: str | None, as_json: bool) -> None:
    """Catalogue problems a sync cannot settle alone (e.g. two store products with one
    reference), each with what to do about it."""
    from engine.runtime import queries

    engine, factory, _bundle = _open_runtime()
    try:
        with factory() as session:
            rows = queries.list_conflicts(session, store=store_name)
    finally:
        engine.dispose()
    if as_json:
        emit_json({"conflicts": rows})
        return
    for r in rows:
        units = ", ".join(
            f"{u['sku']} (product {u['product_id']}"
            + (f" combination {u['combination_id']})" if u.get("combination_id") else ")")
            for u in r["units"]
        )
        click.echo(f"{r['store']}\t{r['kind']}\t{r['key']}\t{units}")
        click.echo(f"  {r['detail']}")
    click.echo(f"{len(rows)} conflicts", err=True)


@orders_group.command("list")
@click.option("--state", default=None, help="Only orders in this state.")
@click.option("--attention", is_flag=True, help="Only orders flagged for attention.")
@click.option(
    "--country", default=None, help="Only orders shipping to this country (ISO, e.g. FR)."
)
@click.option("--carrier", default=None, help="Only orders with this carrier (its name).")
@click.option("--since", "since", default=None, help="Only orders placed on/after (YYYY-MM-DD).")
@click.option("--until", "until", default=None, help="Only orders placed before (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print the orders as JSON.")
def orders_list(
    state: str | None,
    attention: bool,
    country: str | None,
    carrier: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Orders, oldest first, with their state and the store's status."""
    from engine.runtime import queries

    engine, factory, _bundle = _open_runtime()
    try:
        with factory() as session:
            rows = queries.list_orders(
                session,
                state=state,
                attention=attention,
                country=country,
                carrier=carrier,
                since=_day("--since", since),
                until=_day("--until", until),
            )
    finally:
        engine.dispose()
    if as_json:
        emit_json({"orders": rows})
        return
    for r in rows:
        flag = f"\tATTENTION: {r['attention_reason']}" if r["needs_attention"] else ""
        click.echo(
            f"{r['reference']}\t#{r['id']}\t{r['state']}\t{r['channel_state'] or '-'}\t"
            f"{r['ordered_at']}\t{r['lines']} lines\t{r['total_paid'] or '-'} "
            f"{r['currency'] or ''}\t{r['country'] or '-'}\t{r['carrier'] or '-'}{flag}"
        )
    click.echo(f"{len(rows)} orders", err=True)


def _address_line(addr: dict[str, Any]) -> str:
    """An address on one line: name, company, street, postcode city, state, country."""
    if not addr:
        return "-"
    name = " ".join(str(addr[k]) for k in ("firstname", "lastname") if addr.get(k))
    place = " ".join(str(addr[k]) for k in ("postcode", "city") if addr.get(k))
    country = addr.get("country") or addr.get("country_iso")
    parts = (
        name,
        addr.get("company"),
        addr.get("address1"),
        addr.get("address2"),
        place,
        addr.get("state"),
        country,
        addr.get("phone") or addr.get("phone_mobile"),
    )
    return ", ".join(str(p) for p in parts if p)


def _day(option: str, text: str | None) -> datetime | None:
    """``YYYY-MM-DD`` (or an ISO date-time; UTC unless it says otherwise) -> a UTC instant."""
    from engine.errors import ConfigError

    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a date like 2026-11-30") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@orders_group.command("show")
@click.argument("reference")
@click.option("--store", "store_name", default=None, help="Store, when references clash.")
@click.option("--json", "as_json", is_flag=True, help="Print the order as JSON.")
def orders_show(reference: str, store_name: str | None, as_json: bool) -> None:
    """One order (reference or #id): lines, reservations, state, history, effects."""
    from engine.runtime import queries

    engine, factory, _bundle = _open_runtime()
    try:
        with factory() as session:
            doc = queries.show_order(session, reference, store=store_name)
    finally:
        engine.dispose()
    if as_json:
        emit_json(doc)
        return
    click.echo(
        f"order {doc['reference']} (#{doc['id']}, store {doc['store'] or '-'} "
        f"id {doc['external_id'] or '-'}): {doc['state']}; store status "
        f"{doc['channel_state'] or '-'}"
    )
    if doc["needs_attention"]:
        click.echo(f"needs attention: {doc['attention_reason']}")
    cust = doc["customer"]
    contact = ", ".join(v for v in (cust["email"], cust["phone"]) if v)
    click.echo(f"customer: {cust['name'] or '-'}" + (f" ({contact})" if contact else ""))
    for label, key in (("ship to", "shipping_address"), ("invoice to", "invoice_address")):
        click.echo(f"{label}: {_address_line(doc[key])}")
    t = doc["totals"]
    click.echo(
        f"carrier: {doc['carrier'] or '-'}; payment: {doc['payment'] or '-'}; "
        f"currency: {doc['currency'] or '-'}"
    )
    click.echo(
        f"totals: paid {t['paid_tax_incl'] or '-'} (tax excl. {t['paid_tax_excl'] or '-'}), "
        f"products {t['products'] or '-'}, shipping {t['shipping'] or '-'}, "
        f"discounts {t['discounts'] or '-'}, wrapping {t['wrapping'] or '-'}"
    )
    for key, value in doc.get("extra", {}).items():  # the channel spec's extra: fields
        click.echo(f"{key}: {value if value not in (None, '') else '-'}")
    click.echo("lines:")
    for li in doc["lines"]:
        extra = "".join(f"\t{k}: {v}" for k, v in li.get("extra", {}).items() if v)
        click.echo(
            f"  {li['sku']}\tx{li['quantity']}\treserved {li['reserved']}\t"
            f"consumed {li['consumed']}\t{li['name'] or ''}{extra}"
        )
    click.echo("history:")
    for h in doc["history"]:
        reasons = "; ".join(b.get("message", "") for b in h["blockers"])
        if "by" in h:  # orders ack
            verdict = f"attention cleared by {h['by']}" + (f": {h['note']}" if h["note"] else "")
        elif h["outcome"] == "acknowledged":
            verdict = f"acknowledged: {reasons}"
        else:
            verdict = "applied" if h["applied"] else f"REFUSED: {reasons}"
        if h.get("spec_change"):
            verdict += f" ({h['spec_change']})"
        click.echo(
            f"  {h['at']}\t{h['source']}\t{h['trigger']}\t{h['from_state']} -> "
            f"{h['to_state']}\t{verdict}\tspec {h.get('spec_version') or '-'}"
        )
    for sh in doc.get("shipments", []):
        click.echo(
            f"shipment: AWB {sh['awb']}\ttracking {sh['tracking_id']}\t{sh['carrier']}\t"
            f"label {sh['label_path'] or '-'}"
        )
    waiting = [e for e in doc["effects"] if e["state"] in ("pending", "leased", "dead")]
    click.echo("effects:" if waiting else "effects: none waiting")
    for e in waiting:
        click.echo(
            f"  #{e['id']}\t{e['kind']}\t{e['state']}\tattempts {e['attempts']}"
            + (f"\t{e['last_error']}" if e["last_error"] else "")
        )


@orders_group.command("fire")
@click.argument("reference")
@click.argument("trigger")
@click.option("--store", "store_name", default=None, help="Store, when references clash.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def orders_fire(reference: str, trigger: str, store_name: str | None, as_json: bool) -> None:
    """Fire a manual transition (release, pack, ready_to_ship, seller_cancel, ...).

    An unknown trigger is refused before anything is written (with a did-you-mean and the
    triggers allowed from the order's state); a trigger the lifecycle declares late from
    the order's state (pack on a Ready_to_Ship order) is acknowledged as a no-op."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy import select

    from engine.errors import NotFound
    from engine.runtime import service
    from engine.runtime.db.tables import StoreRow

    engine, factory, bundle = _open_runtime()
    try:
        store_id = None
        if store_name is not None:
            with factory() as session:
                store_id = session.scalar(select(StoreRow.id).where(StoreRow.name == store_name))
            if store_id is None:
                raise NotFound(f"store {store_name!r} not found")
        result = service.apply_inbound(
            factory,
            bundle,
            trigger=trigger,
            source="user",
            idempotency_key=f"user:{uuid.uuid4()}",
            at=datetime.now(UTC),
            reference=reference,
            store_id=store_id,
        )
    finally:
        engine.dispose()
    reason = "; ".join(b.message for b in result.blockers)
    if as_json:
        emit_json(
            {
                "reference": result.reference,
                "id": result.order_id,
                "trigger": trigger,
                "outcome": result.outcome,
                "from_state": result.from_state,
                "state": result.state,
                "effects": list(result.effects),
                "reason": reason or None,
            }
        )
    elif result.applied:
        click.echo(f"order {result.reference}: {trigger}: {result.from_state} -> {result.state}")
    elif result.acknowledged:
        click.echo(f"order {result.reference}: {trigger}: {reason}")
    if not (result.applied or result.acknowledged):
        if not as_json:
            click.echo(
                f"error: order {result.reference}: {trigger} refused in "
                f"{result.from_state}: {reason}",
                err=True,
            )
        sys.exit(1)


@orders_group.command("ack")
@click.argument("reference")
@click.option("--note", default=None, help="Why it is fine now (kept in the order's history).")
@click.option("--by", "by", default=None, help="Who acknowledges (default: your login name).")
@click.option("--store", "store_name", default=None, help="Store, when references clash.")
@click.option("--json", "as_json", is_flag=True, help="Print the acknowledgement as JSON.")
def orders_ack(
    reference: str, note: str | None, by: str | None, store_name: str | None, as_json: bool
) -> None:
    """Clear an order's attention flag; the history keeps who, when, the note and the reason.

    Flags also clear by themselves: one raised by a refused event when the order moves to
    another state; one raised by a dead effect only here (moving on delivers nothing)."""
    import getpass
    from datetime import UTC, datetime

    from sqlalchemy import select

    from engine.errors import NotFound
    from engine.runtime import service
    from engine.runtime.db.tables import StoreRow

    if by is None:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):
            by = "unknown"
    engine, factory, _bundle = _open_runtime()
    try:
        store_id = None
        if store_name is not None:
            with factory() as session:
                store_id = session.scalar(select(StoreRow.id).where(StoreRow.name == store_name))
            if store_id is None:
                raise NotFound(f"store {store_name!r} not found")
        ack = service.acknowledge_attention(
            factory,
            reference=reference,
            store_id=store_id,
            by=by,
            note=note,
            at=datetime.now(UTC),
        )
    finally:
        engine.dispose()
    if as_json:
        emit_json(
            {
                "reference": ack.reference,
                "id": ack.order_id,
                "state": ack.state,
                "cleared": ack.reason,
                "by": ack.by,
                "note": ack.note,
                "at": ack.at.isoformat(),
            }
        )
    else:
        click.echo(
            f"order {ack.reference} ({ack.state}): attention cleared by {ack.by} "
            f"(was: {ack.reason or '-'})"
        )


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
    from engine.runtime import inventory
    from engine.runtime.db.session import open_database
    from engine.runtime.service import StockHeld
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle

    settings = Settings.from_env()
    engine, sessions = open_database(settings)
    try:
        _require_sku(sessions, sku)
        try:
            with sessions() as session:
                inventory.require_stock_unit(session, sku)
        except inventory.ParentStock as exc:
            # a product with variants: nothing is written; one line names the variants
            if as_json:
                emit_json({"sku": sku, "error": str(exc), "variants": list(exc.variants)})
            fail(str(exc), exc.exit_code)
        bundle = load_bundle(settings.specs_dir, settings.channels_dir)
        try:
            result = change(sessions, bundle)
        except StockHeld as exc:
            # below what orders past New hold: nothing is written; one line names them
            if as_json:
                emit_json({"sku": sku, "error": str(exc), "held": exc.held,
                           "orders": [h.to_json() for h in exc.holds]})  # fmt: skip
            fail(str(exc), exc.exit_code)
    finally:
        engine.dispose()
    level = result.level
    refs = result.references
    doc = {
        "sku": sku,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.available,
        "promoted_orders": list(result.promoted),
        "shorted_orders": list(result.shorted),
        "orders": {str(oid): ref for oid, ref in refs.items()},
    }
    if as_json:
        emit_json(doc)
    else:
        extra = ""
        if result.shorted:
            names = ", ".join(refs.get(o, f"#{o}") for o in result.shorted)
            extra += f"; {len(result.shorted)} order(s) moved to Partial (stock short): {names}"
        if result.promoted:
            names = ", ".join(refs.get(o, f"#{o}") for o in result.promoted)
            extra += f"; {len(result.promoted)} Partial order(s) now New: {names}"
        click.echo(
            f"{sku}: on hand {level.on_hand}, reserved {level.reserved}, "
            f"available {level.available} (store push queued){extra}"
        )


@stock_group.command("set")
@click.argument("sku")
@click.argument("qty", type=click.IntRange(min=0, max=STOCK_MAX))
@click.option("--json", "as_json", is_flag=True, help="Print the new stock as JSON.")
def stock_set(sku: str, qty: int, as_json: bool) -> None:
    """Set SKU's on-hand quantity to QTY; the store gets the available quantity."""
    from engine.runtime import service

    _stock_change(sku, as_json, lambda s, b: service.set_stock(s, b, sku, qty, at=_now()))


@stock_group.command("adjust", context_settings={"ignore_unknown_options": True})
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
    if abs(n) > STOCK_MAX:
        raise ConfigError(f"stock adjust: {delta} is beyond ±{STOCK_MAX}")
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
    doc = {
        "sku": change.sku,
        "retail_selling_price": None
        if change.retail_selling_price is None
        else str(change.retail_selling_price),
        "selling_price": None if change.selling_price is None else str(change.selling_price),
        "queued": len(change.outbox_ids),
    }
    if as_json:
        emit_json(doc)
    else:
        click.echo(
            f"{sku}: retail {doc['retail_selling_price']}, selling "
            f"{doc['selling_price']} ({doc['queued']} store push(es) queued)"
        )


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
    return (
        f"delivered {stats.delivered}, retrying {stats.retried}, dead {stats.dead}, "
        f"superseded {stats.superseded}, follow-ups {stats.followups} "
        f"in {stats.seconds:.2f}s"
    )


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
@click.option(
    "--all",
    "every_sku",
    is_flag=True,
    help="Every active SKU, also those without a stock row (pushed as 0).",
)
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def sync_stock(every_sku: bool, store_name: str | None, as_json: bool) -> None:
    """Push every SKU's available quantity to the store (the manual "Sync Stock"). A bar on
    a terminal; Ctrl-C finishes the pushes in flight and says how many went out (the rest
    stay queued for 'omsflow run' or a re-run)."""
    from engine.runtime import outbox
    from engine.runtime.settings import Settings
    from engine.runtime.sync.stock import push_all_stock

    def stopping() -> None:
        click.echo("stopping: finishing the pushes in flight (Ctrl-C again to quit now)",
                   err=True)  # fmt: skip

    progress = _progress(as_json)
    try:
        # batches of 50: a smooth bar, and Ctrl-C waits for at most two batches in flight
        with outbox.open_dispatcher(Settings.from_env(), batch=50) as dispatcher:
            done = push_all_stock(dispatcher, store_name=store_name, every_sku=every_sku,
                                  at=_now(), progress=progress, on_interrupt=stopping)  # fmt: skip
    except KeyboardInterrupt:
        progress.close()
        _interrupted("interrupted at once: pushes in flight stay leased for up to a minute, "
                     "then 'omsflow run' or 'omsflow sync stock' delivers them", None,
                     as_json)  # fmt: skip
    finally:
        progress.close()
    stats = done.stats
    if done.interrupted:
        _interrupted(
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
        click.echo(f"{done.queued} SKU(s) queued; " + _dispatch_line(stats))
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
@click.option("--log-json", is_flag=True, help="One JSON object per log line (stderr).")
@click.option(
    "--allow-stranded",
    is_flag=True,
    help="Start even when the specs strand orders in flight (see omsflow spec check).",
)
def serve(host: str, port: int, log_json: bool, allow_stranded: bool) -> None:
    """Run the WMS event receiver (POST /wms/events, GET /health) until Ctrl-C.

    Events are signed with OMSFLOW_WMS_SECRET and applied to the OMS database
    (OMSFLOW_DATABASE_URL) in one transaction each; replays are acknowledged once.
    Each event is logged on stderr with its outcome; refused signatures as warnings."""
    import signal
    import time

    from engine.runtime.db import session as dbsession
    from engine.runtime.logging import setup_logging
    from engine.runtime.settings import Settings
    from engine.runtime.specdeploy import guard_start
    from engine.runtime.specs import load_bundle
    from engine.runtime.wms.receiver import WmsReceiver
    from engine.runtime.wms.server import start_in_thread
    from engine.runtime.wms.webhook import EVENTS_PATH, create_wms_app

    secret = _wms_secret()
    setup_logging(json_lines=log_json)
    bundle = load_bundle()
    guard_start(Settings.from_env(), bundle, "omsflow serve", allow=allow_stranded)
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
@click.option(
    "--url",
    default="http://127.0.0.1:8000",
    show_default=True,
    envvar="OMSFLOW_WMS_RECEIVER_URL",
    help="The receiver's base URL (or its full /wms/events URL).",
)
@click.option(
    "--event-id",
    default=None,
    help="Event id (default: a fresh UUID; reuse it with the same --occurred-at to resend).",
)
@click.option(
    "--occurred-at",
    default=None,
    help="ISO-8601 time with offset (default: now); part of the body a resend repeats.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the receiver's answer as JSON.")
def wms_send(
    event_type: str,
    order_ref: str,
    url: str,
    event_id: str | None,
    occurred_at: str | None,
    as_json: bool,
) -> None:
    """Send one signed WMS event (picked, packed, handed_over, delivered) to a running
    receiver and print its answer; exits non-zero unless it was accepted (2xx)."""
    from engine.runtime.wms.client import send_event

    try:
        status, answer = send_event(
            url,
            _wms_secret(),
            event_type,
            order_ref,
            event_id=event_id,
            occurred_at=occurred_at,
        )
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
@click.option(
    "--event-id",
    default=None,
    help="Event id (default: a fresh UUID; reuse it with the same --occurred-at to resend).",
)
@click.option(
    "--occurred-at",
    default=None,
    help="ISO-8601 time with offset (default: now); part of the body a resend repeats.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def wms_apply(
    event_type: str, order_ref: str, event_id: str | None, occurred_at: str | None, as_json: bool
) -> None:
    """Apply one WMS event directly to the database (no HTTP, no signature), exactly as the
    receiver would: source wms, one answer per event id (a resend gets the first answer
    again, another body under the same id is refused). Exits non-zero unless 2xx."""
    import uuid
    from datetime import UTC, datetime

    from engine.runtime.db import session as dbsession
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle
    from engine.runtime.wms.receiver import WmsReceiver, result_for
    from engine.runtime.wms.webhook import InvalidEvent, build_event

    bundle = load_bundle()
    try:
        when = datetime.fromisoformat(occurred_at) if occurred_at else datetime.now(UTC)
    except ValueError:
        fail(f"--occurred-at: {occurred_at!r} is not an ISO-8601 time (e.g. 2025-03-01T10:00Z)")
        return
    try:
        event = build_event(
            event_type,
            order_ref,
            bundle.channel.fulfilment.wms_events,
            event_id=event_id or str(uuid.uuid4()),
            occurred_at=when,
        )
    except InvalidEvent as exc:
        fail(str(exc))
        return
    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        receiver = WmsReceiver(factory, bundle)
        result = receiver.apply(event)
        answer = receiver.replay(event) if result.duplicate else result_for(result)
    finally:
        engine.dispose()
    blockers = [b.message for b in result.blockers]
    doc = {
        "status": answer.status_code,
        "outcome": answer.outcome.value,
        "replay": answer.replay,
        "event_id": event.event_id,
        "type": event.type,
        "trigger": event.trigger,
        "order_reference": event.order_reference,
        "from_state": result.from_state,
        "state": answer.state,
        "effects": list(result.effects),
        "blockers": blockers,
        "detail": answer.detail,
    }
    ok = 200 <= answer.status_code < 300
    if as_json:
        emit_json(doc)
    elif answer.replay:
        line = f"replay: event {event.event_id} was answered before: {answer.outcome.value}"
        click.echo(line + (f" ({answer.detail})" if answer.detail else ""), err=not ok)
    elif result.outcome == "applied":
        click.echo(
            f"applied: order {order_ref} {result.from_state} -> {result.state} "
            f"(trigger {event.trigger}; effects: {', '.join(result.effects) or 'none'})"
        )
    elif result.outcome == "acknowledged":
        click.echo(f"acknowledged: order {order_ref} stays {result.state}: {answer.detail}")
    elif answer.outcome.value == "reused":
        click.echo(f"refused: {answer.detail}", err=True)
    else:
        click.echo(
            f"refused: order {order_ref} stays {result.state}: " + "; ".join(blockers), err=True
        )
    if not ok:
        sys.exit(1)


# ================ listing, template (issue 6)


def _listing_open(store_name: str | None, base_dir: Any = None) -> Any:
    """(engine, session factory, store record, bundle, target) for a listing command."""
    from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.listing.target import PrestaShopTarget, default_image_fetcher
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle

    bundle = load_bundle()
    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        with factory() as session:
            store = stores.get_store(session, store_name)
    except Exception:
        engine.dispose()
        raise
    adapter = PrestaShopAdapter.from_channel(
        store.url, store.key, bundle.channel, facts=store.facts or None
    )
    if not store.facts:  # connected before omsflow kept the store's facts: read them now
        adapter.facts, _warnings = adapter.shop_facts()
    target = PrestaShopTarget(adapter, fetch_image=default_image_fetcher(base_dir))
    return engine, factory, store, bundle, target


def _listing_apply(drafts: Any, store_name: str | None, base_dir: Any, dry_run: bool,
                   as_json: bool, again: str = "run the same command again") -> Any:  # fmt: skip
    """Run apply_drafts (stock rules on) with a progress bar on a terminal; returns the
    report. Ctrl-C: what was written is bound, one line says how far it got (the JSON report
    so far with --json), exit 130."""
    from engine.runtime.listing.apply import Interrupted, apply_drafts

    engine, factory, store, bundle, target = _listing_open(store_name, base_dir)
    progress = _progress(as_json)
    last = [0]

    def advance(done: int, total: int, _sku: str) -> None:
        if not last[0] and total:
            progress.start("products", total)
        progress.advance("products", done - last[0])
        last[0] = done

    try:
        progress.note(f"planning {len(drafts)} product(s): the OMS, then the store by SKU")
        report = apply_drafts(factory, store.id, target, drafts, dry_run=dry_run,
                              progress=advance, bundle=bundle)  # fmt: skip
    except Interrupted as exc:
        progress.close()
        doc = {**exc.report.to_json(), "total": exc.total}
        _interrupted(exc.summary(again), doc, as_json)
    finally:
        progress.close()
        target.adapter.close()
        engine.dispose()
    return report


def _interrupted(message: str, doc: dict[str, Any] | None, as_json: bool) -> NoReturn:
    """Ctrl-C: one line on stderr saying what was done and how to finish (with --json also
    ``doc`` with ``interrupted: true`` on stdout); exit 130."""
    if as_json and doc is not None:
        emit_json({"interrupted": True, "message": message, **doc})
    click.echo(message, err=True)
    sys.exit(130)


def _moved_orders(outcome: Any) -> str:
    """``; 2 order(s) moved to Partial: R1, R2`` for a listing outcome that moved orders."""
    out = ""
    if outcome.shorted:
        out += f"; {len(outcome.shorted)} order(s) moved to Partial: {', '.join(outcome.shorted)}"
    if outcome.promoted:
        out += f"; {len(outcome.promoted)} Partial order(s) now New: {', '.join(outcome.promoted)}"
    return out


def _listing_summary(report: Any, counts: dict[str, int] | None = None) -> str:
    c = counts or report.counts()
    head = "dry run: would be " if report.dry_run else ""
    writes = "" if report.dry_run else f"; {sum(report.requests.values())} requests"
    return (
        f"{head}created {c['created']}, updated {c['updated']}, unchanged {c['unchanged']}, "
        f"failed {c['failed']} ({report.seconds:.1f} s{writes})"
    )


@products_group.command("create")
@click.option("--sku", default=None, help="The product's SKU (store reference).")
@click.option("--name", default=None, help="Product name.")
@click.option("--price", default=None, help="Base price, tax excluded.")
@click.option(
    "--stock",
    default=None,
    type=click.IntRange(0, STOCK_MAX),
    help="Quantity (single products). Left out: a new product starts at 0, an existing one "
    "keeps its stock.",
)
@click.option("--image", default=None, help="Cover image: a file or an http(s) URL.")
@click.option("--category", default=None, help="Default category by name (created if missing).")
@click.option("--brand", default=None, help="Manufacturer by name (created if missing).")
@click.option("--from", "from_file", default=None, type=click.Path(dir_okay=False),
              help="A YAML/JSON file of products (variation products with variants).")  # fmt: skip
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def products_create(
    sku: str | None, name: str | None, price: str | None, stock: int | None,
    image: str | None, category: str | None, brand: str | None, from_file: str | None,
    store_name: str | None, dry_run: bool, as_json: bool,
) -> None:  # fmt: skip
    """Create (or update: idempotent by SKU) a product in the store and bind it in the OMS.

    A single product from the options, or products with variants from --from FILE. Missing
    attribute groups/values, manufacturer and category are created first."""
    from decimal import Decimal
    from pathlib import Path

    from engine.errors import ConfigError
    from engine.runtime.listing import drafts as dr
    from engine.runtime.specs import load_bundle

    sources = load_bundle().channel.prices.sources
    if from_file:
        if sku or name or price:
            raise ConfigError("use either --from FILE or --sku/--name/--price, not both")
        items = dr.load_drafts(from_file, sources=sources)
        base: Any = Path(from_file).resolve().parent
    else:
        missing = [o for o, v in (("--sku", sku), ("--name", name), ("--price", price)) if not v]
        if missing:
            raise ConfigError(f"products create needs {', '.join(missing)} (or --from FILE)")
        try:
            draft = dr.ProductDraft(
                sku=dr.parse_sku(sku), name=dr.parse_name(name),
                price=dr.parse_price(price) or Decimal(0), stock=dr.parse_stock(stock),
                keep_stock=stock is None,  # no --stock: an update leaves stock alone
                category=dr.parse_label(category, "category", dr.CATEGORY_MAX),
                brand=dr.parse_label(brand, "brand", dr.BRAND_MAX), image=dr.parse_image(image),
            )  # fmt: skip
        except dr.FieldProblem as exc:
            raise ConfigError(f"products create: {exc}") from None
        problems = dr.product_problems(draft, sources=sources)
        if problems:
            raise ConfigError(f"products create: {problems[0].field}: {problems[0].message}")
        if image and "://" not in image and not Path(image).is_file():
            raise ConfigError(f"products create: image file {image!r} not found")
        items, base = [draft], Path.cwd()
    report = _listing_apply(items, store_name, base, dry_run, as_json)
    if as_json:
        emit_json(report.to_json())
    else:
        for o in report.outcomes:
            line = f"{o.sku}: {o.kind}" + (f" (product {o.product_id})" if o.product_id else "")
            click.echo(line + (f": {o.error}" if o.error else "") + _moved_orders(o))
        click.echo(_listing_summary(report))
    if report.counts()["failed"]:
        sys.exit(1)


@products_group.command("template")
@click.argument("path", type=click.Path(dir_okay=False))
def products_template(path: str) -> None:
    """Write the empty bulk-listing workbook (Products sheet + Columns documentation)."""
    from engine.runtime.listing.template import write_template

    click.echo(f"wrote {write_template(path)}")


@products_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate and plan; write nothing to the store.")
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--errors-out", default=None, help="Where to write the copy with an errors "
              "column (default: FILE.errors.xlsx).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def products_import(
    path: str, dry_run: bool, store_name: str | None, errors_out: str | None, as_json: bool
) -> None:
    """Create or update products from a filled template. Every row is validated first; a
    product with a bad row is left out (reported by row and column); the rest is written."""
    from pathlib import Path

    from engine.runtime.listing.workbook import read_workbook, write_errors_copy
    from engine.runtime.specs import load_bundle

    src = Path(path)
    with _progress(as_json) as steps:
        steps.note(f"reading {src.name}")
        read = read_workbook(src, sources=load_bundle().channel.prices.sources)
    report = _listing_apply(read.drafts, store_name, src.resolve().parent, dry_run, as_json,
                            again="run the same import again")  # fmt: skip
    notes = read.row_notes()
    for o in report.outcomes:
        for r in read.rows_per_draft.get(o.sku, ()):
            notes[r] = f"{o.kind}: {o.error}" if o.error else o.kind
    failed_rows = [
        (r, o.error) for o in report.outcomes if o.error
        for r in read.rows_per_draft.get(o.sku, ())
    ]  # fmt: skip
    from engine.runtime.listing.workbook import RowError

    errors = [*read.errors, *(RowError(r, "", str(msg)) for r, msg in failed_rows)]
    out = Path(errors_out) if errors_out else src.with_name(src.stem + ".errors.xlsx")
    with _progress(as_json) as steps:
        steps.note(f"writing {out.name}")
        write_errors_copy(src, out, errors, notes=notes)
    counts = report.counts()
    counts["failed"] += len(read.excluded)
    if as_json:
        doc = report.to_json()
        doc["counts"] = counts
        doc["rows_read"] = read.rows_read
        doc["row_errors"] = [
            {"row": e.row, "column": e.column, "message": e.message} for e in read.errors
        ]
        doc["excluded"] = {k: list(v) for k, v in read.excluded.items()}
        doc["errors_file"] = str(out)
        emit_json(doc)
    else:
        for e in read.errors:
            click.echo(str(e), err=True)
        for o in report.outcomes:
            if o.error:
                click.echo(f"{o.sku}: {o.error}", err=True)
            elif o.shorted or o.promoted:
                click.echo(f"{o.sku}{_moved_orders(o)}".replace(";", ":", 1))
        products = len(read.drafts) + len(read.excluded)
        summary = _listing_summary(report, counts)
        click.echo(f"{read.rows_read} rows, {products} products: {summary}")
        click.echo(f"errors column written to {out}")
    if counts["failed"]:
        sys.exit(1)


def _listing_change(skus: tuple[str, ...], store_name: str | None, action: str,
                    as_json: bool, force: bool = False) -> None:  # fmt: skip
    from engine.runtime.listing.manage import HeldSkus, change_products
    from engine.runtime.service import waiting_states

    engine, factory, store, bundle, target = _listing_open(store_name)
    progress = _progress(as_json)
    finished: list[str] = []

    def advance(done: int, total: int, sku: str) -> None:
        if done == 1:
            progress.start(f"{action} products", total)
        progress.advance(f"{action} products")
        finished.append(sku)

    try:
        results = change_products(
            factory, store.id, target.adapter, skus, action,  # type: ignore[arg-type]
            force=force, waiting_states=waiting_states(bundle), progress=advance,
        )  # fmt: skip
    except HeldSkus as exc:
        # open orders hold some of them: nothing changed; one line names SKUs and orders
        if as_json:
            held = {sku: [h.to_json() for h in hs] for sku, hs in exc.holds.items()}
            error = {"type": "HeldSkus", "message": str(exc), "exit_code": exc.exit_code}
            emit_json({"action": action, "error": error, "held": held})
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        progress.close()
        _interrupted(
            f"interrupted: {len(finished)} of {len(dict.fromkeys(skus))} SKU(s) done "
            f"({action}); run the same command again to finish — SKUs already done are "
            "reported as done",
            {"action": action, "done": finished},
            as_json,
        )
    finally:
        progress.close()
        target.adapter.close()
        engine.dispose()
    if as_json:
        emit_json({"action": action, "results": [r.to_json() for r in results]})
    else:
        for r in results:
            click.echo(f"{r.sku}: {r.message}", err=not r.ok)
    if not all(r.ok for r in results):
        sys.exit(1)


@products_group.command("activate")
@click.argument("skus", nargs=-1, required=True)
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def products_activate(skus: tuple[str, ...], store_name: str | None, as_json: bool) -> None:
    """Make products visible in the store (and active in the OMS)."""
    _listing_change(skus, store_name, "activate", as_json)


@products_group.command("deactivate")
@click.argument("skus", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Also SKUs that open orders hold or wait for.")
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def products_deactivate(skus: tuple[str, ...], force: bool, store_name: str | None,
                        as_json: bool) -> None:  # fmt: skip
    """Hide products in the store (and mark them inactive in the OMS). Refused for SKUs that
    open orders hold or wait for (the orders are listed) unless --force."""
    _listing_change(skus, store_name, "deactivate", as_json, force)


@products_group.command("delete")
@click.argument("skus", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Also SKUs that open orders hold or wait for.")
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def products_delete(skus: tuple[str, ...], yes: bool, force: bool, store_name: str | None,
                    as_json: bool) -> None:  # fmt: skip
    """Delete products (or a variant's combination) from the store; mark them deleted in the
    OMS. Asks for confirmation unless --yes. Refused for SKUs that open orders hold or wait
    for (the orders are listed) unless --force."""
    if not yes:
        click.confirm(f"delete {len(skus)} product(s) from the store: {', '.join(skus)}?",
                      abort=True, err=True)  # fmt: skip
    _listing_change(skus, store_name, "delete", as_json, force)


@products_group.group("brands")
def products_brands_group() -> None:
    """Brands (PrestaShop manufacturers)."""


@products_brands_group.command("sync")
@click.option("--direction", type=click.Choice(["both", "to-store", "from-store"]),
              default="both", show_default=True)  # fmt: skip
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def products_brands_sync(direction: str, store_name: str | None, as_json: bool) -> None:
    """Create/rename manufacturers from OMS brands and OMS brands from manufacturers."""
    from engine.runtime.listing.brands import sync_brands

    engine, factory, store, _bundle, target = _listing_open(store_name)
    try:
        report = sync_brands(factory, store.id, target.adapter, direction)  # type: ignore[arg-type]
    finally:
        target.adapter.close()
        engine.dispose()
    if as_json:
        emit_json(report.to_json())
        return
    for line in report.changes:
        click.echo(line)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    click.echo(f"brands {direction}: {summary or 'nothing to do'}")


# ================ run, status, demo (issue 7)


@omsflow.command("run")
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
def run_cmd(
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
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle
    from engine.runtime.worker import Worker, WorkerOptions

    setup_logging(json_lines=log_json)
    settings = Settings.from_env()
    options = WorkerOptions(
        workers=workers,
        serve=serve,
        host=host,
        port=port,
        once=once,
        schedule_jobs=not no_schedule,
    )
    from engine.runtime.specdeploy import guard_start

    bundle = load_bundle()
    guard_start(settings, bundle, "omsflow run", allow=allow_stranded)
    code = Worker(settings, bundle, options).run()
    if code:
        sys.exit(code)


@omsflow.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def status_cmd(as_json: bool) -> None:
    """Each store's last and next runs per job, lag, outbox depth and dead letters."""
    from datetime import UTC, datetime

    from engine.runtime import status
    from engine.runtime.db import session as dbsession
    from engine.runtime.settings import Settings

    engine, factory = dbsession.open_database(Settings.from_env())
    try:
        with factory() as session:
            result = status.collect(session, now=datetime.now(UTC))
    finally:
        engine.dispose()
    if as_json:
        emit_json(result.to_json())
        return
    for line in status.render(result):
        click.echo(line)


@omsflow.command("demo")
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
        progress=_progress(as_json),
    )
    if as_json:
        emit_json(result.to_json())
        return
    for line in summary_lines(result):
        click.echo(line)


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
    try:
        rv = omsflow.main(args=argv, prog_name="omsflow", standalone_mode=False)
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
        if _State.debug:
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
