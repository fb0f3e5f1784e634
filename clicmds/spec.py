"""The ``omsflow spec`` commands: validate, check, migrate, schema, preview, graph, simulate."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from clicmds.common import (
    Runtime,
    emit_json,
    pass_runtime,
)

# ================ spec (issue 2)


@click.group("spec")
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
@pass_runtime
def spec_validate(
    rt: Runtime, paths: tuple[str, ...], store_name: str | None, as_json: bool
) -> None:
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
        from engine.runtime.preview import live_store_side

        side = live_store_side(rt.sessions, store_name, None)
    from engine.runtime import specdeploy

    stranded: list[Any] = []
    previous = None
    with_db = rt.database_exists()
    if with_db:
        with rt.sessions() as session:
            previous = specdeploy.last_run_machine(session, None)
    result = specs.validate([Path(p) for p in paths] or None, store=side, previous=previous)
    if with_db and result.ok:
        # the working specs against the orders and outbox in flight (omsflow spec check)
        bundle = rt.bundle
        with rt.sessions() as session:
            stranded = specdeploy.check(session, bundle)
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
@pass_runtime
def spec_check(rt: Runtime, as_json: bool) -> None:
    """The deploy check: the working specs against the orders and outbox in the database.

    Reports orders in states the specs lack (or waiting for a declared migration), orders
    whose state lost every way out, queued effects the specs no longer know, and store
    statuses of the channel map a connected store does not resolve: one located line per
    problem with the orders it strands; exit 1 on any.
    """
    from engine.runtime import specdeploy

    bundle = rt.bundle
    with rt.sessions() as session:
        problems = specdeploy.check(session, bundle)
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
@pass_runtime
def spec_migrate(rt: Runtime, dry_run: bool, as_json: bool) -> None:
    """Apply the lifecycle's migrations: to the orders in flight: each order moves in its
    own transaction as an audited event naming the spec change; queued effects of a
    renamed effect are renamed. Then runs the deploy check (exit 1 if work is still
    stranded)."""
    from engine.errors import SpecErrors
    from engine.runtime import specdeploy
    from engine.runtime.specs import bundled_machine
    from engine.spec import check_migration_invariants
    from engine.spec.source import load_file

    bundle = rt.bundle
    factory = rt.sessions
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
    rt: Runtime, kind: str, key: str | None, sample: bool, store_name: str | None, as_json: bool
) -> None:
    from engine.runtime import preview

    if (key is None) == (not sample):
        raise click.UsageError(
            f"give a {'reference' if kind == 'order' else 'SKU'} or --sample (not both)"
        )
    channel = rt.bundle.channel
    run = preview.preview_order if kind == "order" else preview.preview_product
    if sample:
        doc = run(channel, None, sample=True)
    else:
        doc = run(channel, key, sessions=rt.sessions, store_name=store_name)
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
@pass_runtime
def spec_preview_order(
    rt: Runtime, reference: str | None, sample: bool, store_name: str | None, as_json: bool
) -> None:
    """order_in on the store order REFERENCE (or its id, #12)."""
    _preview(rt, "order", reference, sample, store_name, as_json)


@spec_preview.command("product")
@click.argument("sku", required=False)
@click.option("--sample", is_flag=True, help="A bundled PrestaShop 8.2.1 product instead.")
@click.option("--store", "store_name", default=None, help="Store name (default: the only one).")
@click.option("--json", "as_json", is_flag=True, help="Print the preview as JSON.")
@pass_runtime
def spec_preview_product(
    rt: Runtime, sku: str | None, sample: bool, store_name: str | None, as_json: bool
) -> None:
    """product_in (and combination_in) on the store product SKU is bound to (or whose
    reference it is)."""
    _preview(rt, "product", sku, sample, store_name, as_json)


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
