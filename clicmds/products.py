"""The ``omsflow products`` commands: the OMS catalogue and listing it in the store."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from clicmds.common import (
    STOCK_MAX,
    Runtime,
    emit_json,
    fail,
    interrupted,
    make_progress,
    open_runtime,
    pass_runtime,
)


@click.group("products")
def products_group() -> None:
    """The OMS catalogue: list, show, create, import, activate, deactivate, delete."""


@products_group.command("list")
@click.option("--deleted", "include_deleted", is_flag=True, help="Include deleted products.")
@click.option("--json", "as_json", is_flag=True, help="Print the products as JSON.")
@pass_runtime
def products_list(rt: Runtime, include_deleted: bool, as_json: bool) -> None:
    """Products and variations with price and stock (on hand, reserved, available)."""
    from engine.runtime import queries

    factory = open_runtime(rt).sessions
    with factory() as session:
        rows = queries.list_products(session, include_deleted=include_deleted)
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
@pass_runtime
def products_show(rt: Runtime, sku: str, as_json: bool) -> None:
    """One product: price, stock, image, brand, categories, variations, the store's ids."""
    from engine.runtime import queries

    factory = open_runtime(rt).sessions
    with factory() as session:
        doc = queries.show_product(session, sku)
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
@pass_runtime
def products_conflicts(rt: Runtime, store_name: str | None, as_json: bool) -> None:
    """Catalogue problems a sync cannot settle alone (e.g. two store products with one
    reference), each with what to do about it."""
    from engine.runtime import queries

    factory = open_runtime(rt).sessions
    with factory() as session:
        rows = queries.list_conflicts(session, store=store_name)
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


# ================ listing, template (issue 6)


def _listing_open(rt: Runtime, store_name: str | None, base_dir: Any = None) -> Any:
    """(store record, target) for a listing command; the adapter closes with the runtime."""
    from engine.runtime.listing.target import PrestaShopTarget, default_image_fetcher

    _ = rt.bundle  # the specs first: a broken spec is reported before a missing store
    store = rt.store(store_name)
    adapter = rt.adapter(store, with_facts=True)
    return store, PrestaShopTarget(adapter, fetch_image=default_image_fetcher(base_dir))


def _listing_apply(rt: Runtime, drafts: Any, store_name: str | None, base_dir: Any, dry_run: bool,
                   as_json: bool, again: str = "run the same command again") -> Any:  # fmt: skip
    """Run apply_drafts (stock rules on) with a progress bar on a terminal; returns the
    report. Ctrl-C: what was written is bound, one line says how far it got (the JSON report
    so far with --json), exit 130."""
    from engine.runtime.listing.apply import Interrupted, apply_drafts

    store, target = _listing_open(rt, store_name, base_dir)
    progress = make_progress(as_json)
    last = [0]

    def advance(done: int, total: int, _sku: str) -> None:
        if not last[0] and total:
            progress.start("products", total)
        progress.advance("products", done - last[0])
        last[0] = done

    try:
        progress.note(f"planning {len(drafts)} product(s): the OMS, then the store by SKU")
        report = apply_drafts(rt.sessions, store.id, target, drafts, dry_run=dry_run,
                              progress=advance, bundle=rt.bundle)  # fmt: skip
    except Interrupted as exc:
        progress.close()
        doc = {**exc.report.to_json(), "total": exc.total}
        interrupted(exc.summary(again), doc, as_json)
    finally:
        progress.close()
    return report


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
@pass_runtime
def products_create(rt: Runtime,
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

    sources = rt.bundle.channel.prices.sources
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
    report = _listing_apply(rt, items, store_name, base, dry_run, as_json)
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
@pass_runtime
def products_import(
    rt: Runtime,
    path: str,
    dry_run: bool,
    store_name: str | None,
    errors_out: str | None,
    as_json: bool,
) -> None:
    """Create or update products from a filled template. Every row is validated first; a
    product with a bad row is left out (reported by row and column); the rest is written."""
    from pathlib import Path

    from engine.runtime.listing.workbook import read_workbook, write_errors_copy

    src = Path(path)
    with make_progress(as_json) as steps:
        steps.note(f"reading {src.name}")
        read = read_workbook(src, sources=rt.bundle.channel.prices.sources)
    report = _listing_apply(rt, read.drafts, store_name, src.resolve().parent, dry_run, as_json,
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
    with make_progress(as_json) as steps:
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


def _listing_change(rt: Runtime, skus: tuple[str, ...], store_name: str | None, action: str,
                    as_json: bool, force: bool = False) -> None:  # fmt: skip
    from engine.runtime.listing.manage import HeldSkus, change_products
    from engine.runtime.service import waiting_states

    store, target = _listing_open(rt, store_name)
    progress = make_progress(as_json)
    finished: list[str] = []

    def advance(done: int, total: int, sku: str) -> None:
        if done == 1:
            progress.start(f"{action} products", total)
        progress.advance(f"{action} products")
        finished.append(sku)

    try:
        results = change_products(
            rt.sessions, store.id, target.adapter, skus, action,  # type: ignore[arg-type]
            force=force, waiting_states=waiting_states(rt.bundle), progress=advance,
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
        interrupted(
            f"interrupted: {len(finished)} of {len(dict.fromkeys(skus))} SKU(s) done "
            f"({action}); run the same command again to finish — SKUs already done are "
            "reported as done",
            {"action": action, "done": finished},
            as_json,
        )
    finally:
        progress.close()
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
@pass_runtime
def products_activate(
    rt: Runtime, skus: tuple[str, ...], store_name: str | None, as_json: bool
) -> None:
    """Make products visible in the store (and active in the OMS)."""
    _listing_change(rt, skus, store_name, "activate", as_json)


@products_group.command("deactivate")
@click.argument("skus", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Also SKUs that open orders hold or wait for.")
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def products_deactivate(rt: Runtime, skus: tuple[str, ...], force: bool, store_name: str | None,
                        as_json: bool) -> None:  # fmt: skip
    """Hide products in the store (and mark them inactive in the OMS). Refused for SKUs that
    open orders hold or wait for (the orders are listed) unless --force."""
    _listing_change(rt, skus, store_name, "deactivate", as_json, force)


@products_group.command("delete")
@click.argument("skus", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Also SKUs that open orders hold or wait for.")
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def products_delete(
    rt: Runtime, skus: tuple[str, ...], yes: bool, force: bool, store_name: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Delete products (or a variant's combination) from the store; mark them deleted in the
    OMS. Asks for confirmation unless --yes. Refused for SKUs that open orders hold or wait
    for (the orders are listed) unless --force."""
    if not yes:
        click.confirm(f"delete {len(skus)} product(s) from the store: {', '.join(skus)}?",
                      abort=True, err=True)  # fmt: skip
    _listing_change(rt, skus, store_name, "delete", as_json, force)


@products_group.group("brands")
def products_brands_group() -> None:
    """Brands (PrestaShop manufacturers)."""


@products_brands_group.command("sync")
@click.option("--direction", type=click.Choice(["both", "to-store", "from-store"]),
              default="both", show_default=True)  # fmt: skip
@click.option("--store", "store_name", default=None, help="Store name (if several).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def products_brands_sync(
    rt: Runtime, direction: str, store_name: str | None, as_json: bool
) -> None:
    """Create/rename manufacturers from OMS brands and OMS brands from manufacturers."""
    from engine.runtime.listing.brands import sync_brands

    store, target = _listing_open(rt, store_name)
    report = sync_brands(rt.sessions, store.id, target.adapter, direction)  # type: ignore[arg-type]
    if as_json:
        emit_json(report.to_json())
        return
    for line in report.changes:
        click.echo(line)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    click.echo(f"brands {direction}: {summary or 'nothing to do'}")
