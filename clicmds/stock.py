"""The ``omsflow stock`` and ``omsflow price`` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from clicmds.common import (
    STOCK_MAX,
    Runtime,
    emit_json,
    fail,
    pass_runtime,
    utc_now,
)


@click.group("stock")
def stock_group() -> None:
    """Set or adjust on-hand stock; changes reach the store through the outbox."""


@click.group("price")
def price_group() -> None:
    """Set prices (Retail Selling Price, Selling Price -> the store's price)."""


def _stock_change(rt: Runtime, sku: str, as_json: bool, change: Callable[[Any, Any], Any]) -> None:
    from engine.runtime import inventory
    from engine.runtime.service import StockHeld

    rt.require_sku(sku)
    try:
        with rt.engine.connect() as conn:  # Core connections: the command never loads the ORM
            inventory.require_stock_unit(conn, sku)
    except inventory.ParentStock as exc:
        # a product with variants: nothing is written; one line names the variants
        if as_json:
            emit_json({"sku": sku, "error": str(exc), "variants": list(exc.variants)})
        fail(str(exc), exc.exit_code)
    try:
        result = change(rt.engine, rt.bundle)
    except StockHeld as exc:
        # below what orders past New hold: nothing is written; one line names them
        if as_json:
            emit_json({"sku": sku, "error": str(exc), "held": exc.held,
                       "orders": [h.to_json() for h in exc.holds]})  # fmt: skip
        fail(str(exc), exc.exit_code)
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


@stock_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("sku")
@click.argument("qty", type=click.IntRange(min=0, max=STOCK_MAX))
@click.option("--json", "as_json", is_flag=True, help="Print the new stock as JSON.")
@pass_runtime
def stock_set(rt: Runtime, sku: str, qty: int, as_json: bool) -> None:
    """Set SKU's on-hand quantity to QTY; the store gets the available quantity."""
    from engine.runtime import service

    _stock_change(rt, sku, as_json, lambda s, b: service.set_stock(s, b, sku, qty, at=utc_now()))


@stock_group.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("sku")
@click.argument("delta", metavar="+N|-N")
@click.option("--json", "as_json", is_flag=True, help="Print the new stock as JSON.")
@pass_runtime
def stock_adjust(rt: Runtime, sku: str, delta: str, as_json: bool) -> None:
    """Add +N or take -N from SKU's on-hand quantity."""
    from engine.errors import ConfigError
    from engine.runtime import service

    try:
        n = int(delta)
    except ValueError:
        raise ConfigError(f"stock adjust: {delta!r} is not +N or -N") from None
    if abs(n) > STOCK_MAX:
        raise ConfigError(f"stock adjust: {delta} is beyond ±{STOCK_MAX}")
    _stock_change(rt, sku, as_json, lambda s, b: service.adjust_stock(s, b, sku, n, at=utc_now()))


@price_group.command("set")
@click.argument("sku")
@click.option("--retail", default=None, help="OMS Retail Selling Price.")
@click.option("--selling", default=None, help="OMS Selling Price.")
@click.option("--json", "as_json", is_flag=True, help="Print the prices as JSON.")
@pass_runtime
def price_set(
    rt: Runtime, sku: str, retail: str | None, selling: str | None, as_json: bool
) -> None:
    """Set SKU's OMS prices; the store's price follows (channel spec `prices`)."""
    from engine.runtime import pricing

    r = pricing.parse_price(retail, "--retail") if retail is not None else None
    s = pricing.parse_price(selling, "--selling") if selling is not None else None
    sessions = rt.sessions
    with sessions.begin() as session:
        change = pricing.set_price(session, sku, retail=r, selling=s, at=utc_now())
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
