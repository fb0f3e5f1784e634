"""push_stock and push_price: write a SKU's available quantity and price to one store.

Both are absolute writes (a full-object PUT with one field changed), so delivering one
twice leaves the store as delivering it once. The SKU's ids in the store come from
``ProductRow.store_ids`` (written by the catalogue sync); an unbound SKU is dead-lettered
with a message saying so. push_stock PUTs the stock row the catalogue sync cached with the
binding (one request per change, no read) and falls back to read-then-PUT when that row is
missing, refused or possibly already current. The product-level row of a product with
combinations is never written: PrestaShop keeps it as the sum of the combinations' rows.
What is written comes from the channel's outbound mappings of the OMS records
(``stock_out``, ``price_out``, ``variation_price_out``).
A write whose answer was lost (a timeout, a 5xx after commit, a garbled answer) is read back
before it is reported as failed (``checked_write``): an applied write is a success, never a
retry or a dead letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.core.records import PriceRecord, StockRecord, to_store
from engine.errors import ChannelNotFound, ChannelRejected
from engine.runtime.channels.prestashop.adapter import STOCK_FIELDS, stock_body, stock_quantity
from engine.runtime.db.tables import ProductRow
from engine.runtime.pricing import price_from_sources

from . import register
from .base import Delivery, EffectContext, EffectFailed, ProductInfo, checked_write

_MICRO = Decimal("0.000001")
PUSH_STOCK = "push_stock"
PUSH_PRICE = "push_price"


def _bound(ctx: EffectContext, d: Delivery) -> tuple[ProductInfo, int, dict[str, Any]]:
    sku = str(d.payload.get("sku", ""))
    store_id = d.store_id if d.store_id is not None else d.payload.get("store_id")
    if store_id is None:
        raise EffectFailed(f"{d.kind} #{d.id} for {sku} names no store")
    product = d.product
    if product is None:
        raise EffectFailed(f"SKU {sku!r} is not in the OMS catalogue (fix: omsflow sync catalog)")
    store = ctx.adapters.store(int(store_id))
    binding = product.binding(store.id, store.name)
    if binding is None:
        raise EffectFailed(
            f"SKU {sku!r} is not bound to store {store.name!r} (fix: omsflow sync catalog)"
        )
    return product, int(store_id), dict(binding)


def _cached_body(binding: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The binding's cached stock row when it is complete, writable and of this product and
    combination; else None (the handler reads the row instead)."""
    body = binding.get("stock")
    if not isinstance(body, Mapping) or any(name not in body for name in STOCK_FIELDS):
        return None
    try:
        ok = (
            int(body["id"]) > 0
            and int(body["id_product"]) == int(binding["product_id"])
            and int(body["id_product_attribute"]) == int(binding["combination_id"] or 0)
            and int(body["depends_on_stock"]) == 0
        )
    except (TypeError, ValueError):
        return None
    return body if ok else None


def _remember_stock(
    ctx: EffectContext, product: ProductInfo, key: str, body: Mapping[str, Any]
) -> None:
    """Cache the stock row just read in the product's binding (``store_ids[key]["stock"]``)."""
    with ctx.session_factory.begin() as session:
        row = session.get(ProductRow, product.id, with_for_update=True)
        if row is None:
            return
        ids = dict(row.store_ids or {})
        entry = ids.get(key)
        if not isinstance(entry, Mapping):
            return
        ids[key] = {**entry, "stock": dict(body)}
        row.store_ids = ids


def _store_has_combinations(product: ProductInfo, key: str) -> bool:
    """The catalogue sync saw combinations on this product in the store (its binding's
    ``combinations``), whether or not the OMS holds them as variations."""
    entry = product.store_ids.get(key)
    return isinstance(entry, Mapping) and bool(entry.get("combinations"))


@register(PUSH_STOCK)
def push_stock(ctx: EffectContext, d: Delivery) -> str | None:
    """One full-object PUT from the row cached with the binding when the new quantity differs
    from the cached one (no read); otherwise — no cached row, the store refused or lost it, or
    a value back at the cached quantity, where the store may already show it — read the row,
    PUT only if the store differs, and refresh the cache when the row changed."""
    product, store_id, binding = _bound(ctx, d)
    if binding["combination_id"] is None and (
        product.has_children or _store_has_combinations(product, str(binding["key"]))
    ):
        # PrestaShop keeps a product's own stock row as the sum of its combinations' rows:
        # omsflow never writes it
        return f"{product.sku} has variations: the store sums their stock"
    available = max(0, int(d.payload.get("quantity", 0)))
    # what the store's row gets: the channel's stock_out mapping of the OMS stock record
    fields = to_store(ctx.channel.mappings.get("stock_out"), StockRecord(product.sku, available))
    quantity = stock_quantity(fields) if fields is not None else available
    write: Any = fields if fields is not None else quantity
    adapter = ctx.adapters.adapter(store_id)
    pid, attr = int(binding["product_id"]), int(binding["combination_id"] or 0)

    def shows() -> bool:
        return any(
            r.id_product_attribute == attr and r.quantity == quantity
            for r in adapter.stock_availables(pid)
        )

    body = _cached_body(binding)
    if body is not None and int(body["quantity"]) != quantity:
        cached = body
        try:
            put = checked_write(lambda: adapter.put_stock(cached, write), shows)
        except (ChannelNotFound, ChannelRejected):
            body = None  # the row is gone or refused (e.g. now depends on stock): read it
        else:
            return f"{product.sku} stock -> {quantity}" + ("" if put else " (read back)")
    row = checked_write(
        lambda: adapter.set_stock(binding["product_id"], binding["combination_id"], write),
        shows,
    )
    if row is None:
        return f"{product.sku} stock -> {quantity} (read back)"
    fresh = stock_body(row)
    if body is None or {k: v for k, v in fresh.items() if k != "quantity"} != {
        k: body[k] for k in fresh if k != "quantity"
    }:
        _remember_stock(ctx, product, str(binding["key"]), fresh)
    return f"{product.sku} stock -> {quantity}"


@register(PUSH_PRICE)
def push_price(ctx: EffectContext, d: Delivery) -> str | None:
    product, store_id, binding = _bound(ctx, d)
    sources = tuple(ctx.channel.prices.sources)
    own = price_from_sources(product, sources)
    if own is None:
        return f"{product.sku} has no OMS price set: nothing to push"
    adapter = ctx.adapters.adapter(store_id)
    combination = binding["combination_id"]
    mappings = ctx.channel.mappings
    if combination is None or d.parent is None:
        # the channel's price_out mapping of the OMS price record
        record = PriceRecord(
            product.sku, own, product.retail_selling_price, product.selling_price, None
        )
        fields = to_store(mappings.get("price_out"), record)
        pid = int(binding["product_id"])
        checked_write(
            lambda: adapter.set_price(pid, fields if fields is not None else own),
            lambda: _same_price(adapter.client.get("products", pid), own),
        )
        return f"{product.sku} price -> {own}"
    base = price_from_sources(d.parent, sources)
    if base is None:
        base = d.parent.price if d.parent.price is not None else Decimal("0")
    impact = own - base
    if str(ctx.channel.prices.variation_price) != "impact":
        impact = own
    record = PriceRecord(
        product.sku, own, product.retail_selling_price, product.selling_price, impact
    )
    fields = to_store(mappings.get("variation_price_out"), record)
    checked_write(
        lambda: adapter.set_combination_price_impact(
            combination, fields if fields is not None else impact
        ),
        lambda: _same_price(adapter.client.get("combinations", int(combination)), impact),
    )
    return f"{product.sku} price impact -> {impact}"


def _same_price(items: list[dict[str, Any]], price: Decimal) -> bool:
    """The store's record (``products``/``combinations``) shows ``price`` (6 decimals, as
    the adapter writes it)."""
    if not items:
        return False
    try:
        shown = Decimal(str(items[0].get("price", "")))
    except ArithmeticError:
        return False
    return shown.quantize(_MICRO) == Decimal(str(price)).quantize(_MICRO)
