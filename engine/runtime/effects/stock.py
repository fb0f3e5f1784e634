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
from engine.runtime.channels.port import STOCK_TOKEN, checked_write
from engine.runtime.db.tables import ProductRow
from engine.runtime.pricing import price_from_sources

from . import register
from .base import Delivery, EffectContext, EffectFailed, ProductInfo

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


def _remember_token(ctx: EffectContext, product: ProductInfo, key: str, token: Any) -> None:
    """Keep the channel's new stock token in the product's binding
    (``store_ids[key]["stock_token"]``)."""
    with ctx.session_factory.begin() as session:
        row = session.get(ProductRow, product.id, with_for_update=True)
        if row is None:
            return
        ids = dict(row.store_ids or {})
        entry = ids.get(key)
        if not isinstance(entry, Mapping):
            return
        fresh = {k: v for k, v in entry.items() if k != "stock"}  # (before tokens)
        ids[key] = {**fresh, STOCK_TOKEN: token}
        row.store_ids = ids


def _store_has_combinations(product: ProductInfo, key: str) -> bool:
    """The catalogue sync saw combinations on this product in the store (its binding's
    ``combinations``), whether or not the OMS holds them as variations."""
    entry = product.store_ids.get(key)
    return isinstance(entry, Mapping) and bool(entry.get("combinations"))


@register(PUSH_STOCK)
def push_stock(ctx: EffectContext, d: Delivery) -> str | None:
    """The channel's ``push_stock`` with the binding's stock token (PrestaShop: one
    full-object PUT from the cached row, no read, when it can); a new token the channel
    gives back is kept with the binding."""
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
    adapter = ctx.adapters.adapter(store_id)
    push = adapter.push_stock(
        int(binding["product_id"]),
        binding["combination_id"],
        fields if fields is not None else available,
        token=binding["stock_token"],
    )
    if push.token is not None:
        _remember_token(ctx, product, str(binding["key"]), push.token)
    return f"{product.sku} stock -> {push.quantity}" + (" (read back)" if push.read_back else "")


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
            lambda: _same_price(adapter.product_price(pid), own),
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
        lambda: _same_price(adapter.combination_price(int(combination)), impact),
    )
    return f"{product.sku} price impact -> {impact}"


def _same_price(shown: Decimal | None, price: Decimal) -> bool:
    """The channel shows ``price`` (to 6 decimals, as PrestaShop keeps prices)."""
    if shown is None:
        return False
    try:
        return shown.quantize(_MICRO) == Decimal(str(price)).quantize(_MICRO)
    except ArithmeticError:
        return False
