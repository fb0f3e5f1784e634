"""push_stock and push_price: write a SKU's available quantity and price to one store.

Both are absolute writes (a full-object PUT with one field changed), so delivering one
twice leaves the store as delivering it once. The SKU's ids in the store come from
``ProductRow.store_ids`` (written by the catalogue sync); an unbound SKU is dead-lettered
with a message saying so.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.runtime.pricing import price_from_sources

from . import register
from .base import Delivery, EffectContext, EffectFailed, ProductInfo

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


@register(PUSH_STOCK)
def push_stock(ctx: EffectContext, d: Delivery) -> str | None:
    product, store_id, binding = _bound(ctx, d)
    if product.has_children and binding["combination_id"] is None:
        return f"{product.sku} has variations: the store sums their stock"
    quantity = max(0, int(d.payload.get("quantity", 0)))
    ctx.adapters.adapter(store_id).set_stock(
        binding["product_id"], binding["combination_id"], quantity
    )
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
    if combination is None or d.parent is None:
        adapter.set_price(binding["product_id"], own)
        return f"{product.sku} price -> {own}"
    base = price_from_sources(d.parent, sources)
    if base is None:
        base = d.parent.price if d.parent.price is not None else Decimal("0")
    impact = own - base
    if str(ctx.channel.prices.variation_price) != "impact":
        impact = own
    adapter.set_combination_price_impact(combination, impact)
    return f"{product.sku} price impact -> {impact}"
