"""``omsflow spec preview order|product``: run the channel's inbound mappings on one real
store record (or a bundled sample of PrestaShop 8.2.1) and show the OMS record it makes and
where each field came from. Reads only: nothing is written to the store or the OMS.

Also ``live_store_side``: a connected store's own resources and fields (its
``?schema=synopsis``), for ``omsflow spec validate --store NAME``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from importlib import resources as _res
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.core import build_record, trace_record
from engine.core.mapping import EXTRA, Trace
from engine.core.records import json_safe
from engine.core.transforms import TransformError
from engine.errors import ConfigError, NotFound
from engine.runtime.channels.clock import ShopClock
from engine.runtime.channels.prestashop import resources as ps_resources
from engine.runtime.channels.prestashop.records import Combination, Order, Product
from engine.runtime.db.tables import ProductRow
from engine.runtime.sync.common import StoreTarget, load_store, make_adapter
from engine.spec import ChannelSpec, StoreSide
from engine.spec.oms import oms_model

if TYPE_CHECKING:
    from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter

SAMPLE_ZONE = "Europe/Paris"
"""The clock of the store the bundled samples come from (PrestaShop's installer default)."""


def _prestashop(
    store: StoreTarget, channel: ChannelSpec | None, sessions: sessionmaker[Session]
) -> PrestaShopAdapter:
    """The store's channel, which must be PrestaShop: a preview reads its own records
    (orders with their related reads, products by reference, the resources' synopsis)."""
    from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter

    adapter = make_adapter(store, channel, sessions)
    if not isinstance(adapter, PrestaShopAdapter):
        adapter.close()
        raise ConfigError(
            f"spec preview reads PrestaShop stores only; {store.name!r} is a "
            f"{store.channel!r} store"
        )
    return adapter


def _sample(name: str) -> Any:
    text = (_res.files("engine.runtime.channels.prestashop") / "samples" / name).read_text("utf-8")
    return json.loads(text)


def _field(t: Trace, original: Mapping[str, Any]) -> dict[str, Any]:
    """One traced field; ``store_value``: the store's own text when the mapping read it
    converted (a shop-local date the mapping saw in UTC)."""
    raw = json_safe(t.raw)
    store = json_safe(original.get(t.source, raw)) if t.found else None
    return {
        "field": t.path,
        "value": json_safe(t.value),
        "from": t.source,
        "transform": t.transform,
        "raw": raw,
        "store_value": store if store != raw else None,
        "found": t.found,
    }


def _run(
    channel: ChannelSpec,
    mapping_name: str,
    record_name: str,
    source: Mapping[str, Any],
    original: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One mapping on one source record (``original``: the record before its dates were
    read in UTC): its fields with their sources, the model fields it leaves empty, the typed
    record (or the problem that stops it)."""
    mapping = channel.mappings.get(mapping_name)
    if mapping is None:
        raise ConfigError(f"the channel spec has no mapping '{mapping_name}'")
    problems: list[str] = []
    try:
        mapped, trace = trace_record(mapping, source)
    except TransformError as exc:
        return {
            "mapping": mapping_name,
            "record": record_name,
            "fields": [],
            "unmapped": [],
            "result": None,
            "problems": [str(exc)],
        }
    model = oms_model().record(record_name)
    unmapped = [name for name in model.fields if name != EXTRA and name not in mapped]
    result: Any = None
    try:
        result = json_safe(dataclasses.asdict(build_record(record_name, mapped)))
    except TransformError as exc:
        problems.append(str(exc))
    return {
        "mapping": mapping_name,
        "record": record_name,
        "fields": [_field(t, original or source) for t in trace],
        "unmapped": unmapped,
        "result": result,
        "problems": problems,
    }


# --------------------------------------------------------------------------- orders


def preview_order(
    channel: ChannelSpec,
    ref: str | None,
    *,
    sessions: sessionmaker[Session] | None = None,
    store_name: str | None = None,
    sample: bool = False,
) -> dict[str, Any]:
    """``order_in`` on the store order ``ref`` (reference or id) of the connected store, or
    on the bundled sample order.

    Raises:
        NotFound / ChannelNotFound: no such store or order.
    """
    if sample:
        order = Order.from_data(_sample("order.json")["order"])
        clock = ShopClock(SAMPLE_ZONE)
        where = "sample: PrestaShop 8.2.1 demo order 1 (bundled)"
    else:
        if sessions is None or ref is None:
            raise ConfigError("give an order reference (or --sample)")
        store = load_store(sessions, store_name)
        with _prestashop(store, channel, sessions) as adapter:
            order = adapter.find_order(ref)
            order = adapter.with_related([order])[0]  # as sync reads it: customer, addresses
            clock = adapter.clock
        where = f"store '{store.name}': order {order.id}"
    raw = order.to_mapping()
    doc = _run(channel, "order_in", "order", clock.utc_fields(raw), raw)
    return {
        "kind": "order",
        "source": where,
        "store_reference": order.reference,
        "store_id": order.id,
        **doc,
    }


# --------------------------------------------------------------------------- products


def _units_of(
    sessions: sessionmaker[Session], store_id: int, store_name: str, sku: str
) -> tuple[int, int] | None:
    """``(product_id, combination_id)`` the OMS binds ``sku`` to in this store, if any."""
    with sessions() as session:
        row = session.scalars(select(ProductRow).where(ProductRow.sku == sku)).one_or_none()
    if row is None:
        return None
    ids = row.store_ids or {}
    entry = ids.get(str(store_id)) or ids.get(store_name)
    if not isinstance(entry, Mapping) or not entry.get("product_id"):
        return None
    return int(entry["product_id"]), int(entry.get("combination_id") or 0)


def _product_docs(
    channel: ChannelSpec,
    product: Product,
    combinations: Sequence[Combination],
    clock: ShopClock,
    only: int = 0,
) -> dict[str, Any]:
    raw = product.to_mapping()
    doc = _run(channel, "product_in", "product", clock.utc_fields(raw), raw)
    doc["variations"] = [
        {
            "store_id": c.id,
            **_run(
                channel,
                "combination_in",
                "variation",
                clock.utc_fields(c.to_mapping()),
                c.to_mapping(),
            ),
        }
        for c in combinations
        if not only or c.id == only
    ]
    return doc


def preview_product(
    channel: ChannelSpec,
    sku: str | None,
    *,
    sessions: sessionmaker[Session] | None = None,
    store_name: str | None = None,
    sample: bool = False,
) -> dict[str, Any]:
    """``product_in`` (and ``combination_in`` for its combinations) on the store product the
    OMS binds ``sku`` to (else the store's product or combination with that reference), or
    on the bundled sample product.

    Raises:
        NotFound: no such store, or no store product with that SKU or reference.
    """
    if sample:
        product = Product.from_data(_sample("product.json")["product"], 1)
        combos = [Combination.from_data(c) for c in _sample("combinations.json")["combinations"]]
        doc = _product_docs(channel, product, combos, ShopClock(SAMPLE_ZONE))
        return {
            "kind": "product",
            "source": "sample: PrestaShop 8.2.1 demo product 1 (bundled)",
            "store_id": product.id,
            **doc,
        }
    if sessions is None or sku is None:
        raise ConfigError("give a SKU (or --sample)")
    store = load_store(sessions, store_name)
    with _prestashop(store, channel, sessions) as adapter:
        unit = _units_of(sessions, store.id, store.name, sku)
        how = "bound to"
        if unit is None:
            found = adapter.find_units(sku)
            if not found:
                raise NotFound(
                    f"no product {sku!r}: not a SKU of the OMS bound to store "
                    f"{store.name!r}, nor a reference in the store"
                )
            unit, how = found[0], "with reference"
        item = adapter.get_product(unit[0])
        doc = _product_docs(channel, item.product, item.combinations, adapter.clock, unit[1])
    what = f"product {unit[0]}" + (f" combination {unit[1]}" if unit[1] else "")
    return {
        "kind": "product",
        "source": f"store '{store.name}': {what} ({how} {sku})",
        "store_id": unit[0],
        **doc,
    }


# --------------------------------------------------------------------------- live fields


def live_store_side(
    sessions: sessionmaker[Session], store_name: str | None, channel: ChannelSpec | None
) -> StoreSide:
    """The connected store's resources and fields, read now (``?schema=synopsis``)."""
    store = load_store(sessions, store_name)
    with _prestashop(store, channel, sessions) as adapter:
        return ps_resources.live(adapter, store.name)


def render(doc: Mapping[str, Any]) -> list[str]:
    """The preview as lines: each mapped field, its value and where it came from."""
    lines = [f"{doc['source']} -> OMS {doc['kind']} ({doc['mapping']})"]
    lines += _render_one(doc, "  ")
    for var in doc.get("variations", []):
        lines.append(f"  variation (store combination {var['store_id']}, {var['mapping']}):")
        lines += _render_one(var, "    ")
    return lines


def _render_one(doc: Mapping[str, Any], indent: str) -> list[str]:
    out: list[str] = []
    width = max((len(f["field"]) for f in doc["fields"]), default=0)
    for f in doc["fields"]:
        value = "-" if f["value"] in (None, "") else str(f["value"])
        if f["from"] == "default":
            where = "default"
        elif not f["found"]:
            where = f"{f['from']} (absent from the store record: empty there, or no such field)"
        else:
            shown = f["store_value"] if f["store_value"] is not None else f["raw"]
            raw = "" if shown == f["value"] else f" = {json.dumps(shown, default=str)}"
            via = f" via {f['transform']}" if f["transform"] else ""
            where = f"{f['from']}{raw}{via}"
        out.append(f"{indent}{f['field'].ljust(width)}  {value}  <- {where}")
    if doc["unmapped"]:
        out.append(f"{indent}(not mapped: {', '.join(doc['unmapped'])})")
    for problem in doc["problems"]:
        out.append(f"{indent}problem: {problem}")
    return out
