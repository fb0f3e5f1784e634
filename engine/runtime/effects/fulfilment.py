"""request_awb, push_tracking, notify_wms: the shipment of an order and who hears of it.

- request_awb (local, deterministic): AWB + tracking id keyed on the order id
  (``awb.allocate_numbers``), the 4x6 label PDF in the labels folder, and one
  ``ShipmentRow`` per AWB (upserted: a retry rewrites the same row and the same file).
- push_tracking: the tracking number onto the store order's carrier (a full-object PUT,
  read back when its answer is lost: ``checked_write``).
- notify_wms: the shipping details (or a cancel notice for ``params.event: cancel``)
  POSTed, signed, to the WMS named by ``fulfilment.wms_endpoint_env``, with the outbox
  row's id as ``Idempotency-Key``; no endpoint configured: nothing to send (success). The
  WMS has nothing to read back: a resend after a lost answer carries the same key, so the
  WMS answers it as the first (its contract) and the retry is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.runtime.channels.port import checked_write
from engine.runtime.db.tables import ShipmentRow
from engine.runtime.fulfilment.awb import Shipment
from engine.runtime.fulfilment.label import Parcel, ShipFrom, ShipTo, issue_shipment_for
from engine.runtime.settings import Secret
from engine.runtime.wms.client import post_shipping_details, shipping_details_payload

from . import register
from .base import Delivery, EffectContext, EffectFailed, OrderInfo

REQUEST_AWB = "request_awb"
PUSH_TRACKING = "push_tracking"
NOTIFY_WMS = "notify_wms"
SHIPMENT_KEY = "1"
"""``allocate_numbers`` key: one shipment per order, the same numbers on every retry."""
WMS_SECRET_ENV = "OMSFLOW_WMS_SECRET"  # noqa: S105 - a variable name, not a secret


def _order(d: Delivery) -> OrderInfo:
    if d.order is None:
        raise EffectFailed(f"{d.kind} #{d.id}: order #{d.order_id} no longer exists")
    return d.order


def _ship_to(order: OrderInfo) -> ShipTo | None:
    """The consignee: the delivery address's name (else the customer's), company, street
    lines, postcode and city, state, country and phone."""
    addr: dict[str, Any] = dict(order.shipping_address or {})

    def field(*keys: str) -> str:
        return " ".join(str(addr[k]).strip() for k in keys if addr.get(k))

    name = field("firstname", "lastname") or order.customer_name or ""
    lines = [field(k) for k in ("company", "address1", "address2")]
    lines.append(field("postcode", "city"))
    lines.append(field("state"))
    lines.append(field("country") or field("country_iso"))
    lines = [line for line in lines if line]
    phone = field("phone") or field("phone_mobile") or None
    if not name and not lines:
        return None
    return ShipTo(name=name or order.reference, lines=tuple(lines[:6]), phone=phone)


def _ship_from(ctx: EffectContext, order: OrderInfo) -> ShipFrom | None:
    """The sender: the shop's ``PS_SHOP_*`` facts read at connect (``StoreRow.facts``),
    each field overridden by the channel spec's ``fulfilment.ship_from``."""
    shop: dict[str, Any] = {}
    if order.store_id is not None:
        try:
            shop = dict(ctx.adapters.store(order.store_id).facts.get("shop") or {})
        except EffectFailed:  # the store is gone: the spec's sender, or none
            shop = {}
    return ship_from_of(shop, getattr(ctx.channel.fulfilment, "ship_from", None))


def ship_from_of(shop: Mapping[str, Any], override: Mapping[str, Any] | None) -> ShipFrom | None:
    """The label's sender from the shop's address facts (``address1``, ``postcode``,
    ``city``, ``country``, ...), each field overridden by ``override`` (the channel spec's
    ``fulfilment.ship_from``) where it sets one; None when neither names anything."""
    merged = dict(shop)
    merged.update({k: v for k, v in (override or {}).items() if str(v).strip()})

    def field(*keys: str) -> str:
        return " ".join(str(merged[k]).strip() for k in keys if merged.get(k))

    name = field("name")
    # the label's sender block has room for the name and three lines: the street (both
    # address lines), the postcode and city (with the state, where there is one), the
    # country (its name, read at connect from PS_SHOP_COUNTRY_ID; else its ISO code)
    street = ", ".join(p for p in (field("address1"), field("address2")) if p)
    place = ", ".join(p for p in (field("postcode", "city"), field("state")) if p)
    lines = [street, place, field("country") or field("country_iso")]
    lines = [line for line in lines if line]
    if not name and not lines:
        return None
    return ShipFrom(name=name or "-", lines=tuple(lines))


def sender_gap(shop: Mapping[str, Any], override: Mapping[str, Any] | None) -> str | None:
    """What a carrier would miss in the label's sender block (None: a street, a town and a
    country are there), for ``store connect`` to say before the first label is printed."""
    merged = dict(shop)
    merged.update({k: v for k, v in (override or {}).items() if str(v).strip()})
    missing = [
        what
        for what, keys in (
            ("street", ("address1",)),
            ("postcode or city", ("postcode", "city")),
            ("country", ("country", "country_iso")),
        )
        if not any(str(merged.get(k) or "").strip() for k in keys)
    ]
    if not missing:
        return None
    return (
        f"labels will print the sender without its {', '.join(missing)}: the shop has no "
        "address (PrestaShop: Shop Parameters > Contact > Stores, the PS_SHOP_* settings) "
        "and the channel spec's fulfilment.ship_from sets none (fix: fill in either)"
    )


def latest_shipment(ctx: EffectContext, order_id: int) -> ShipmentRow | None:
    with ctx.session_factory() as session:
        return session.scalars(
            select(ShipmentRow)
            .where(ShipmentRow.order_id == order_id)
            .order_by(ShipmentRow.id.desc())
            .limit(1)
        ).first()


@register(REQUEST_AWB)
def request_awb(ctx: EffectContext, d: Delivery) -> str | None:
    order = _order(d)
    shipment = issue_shipment_for(
        ctx.channel.fulfilment,
        ctx.label_dir,
        order_id=order.id,
        key=SHIPMENT_KEY,
        order_reference=order.reference,
        ship_to=_ship_to(order),
        ship_from=_ship_from(ctx, order),
        parcel=Parcel(items=order.items, weight_kg=order.weight_kg, service=order.carrier),
    )
    label = str(shipment.label_path) if shipment.label_path is not None else None
    with ctx.session_factory.begin() as session:
        row = session.scalars(select(ShipmentRow).where(ShipmentRow.awb == shipment.awb)).first()
        if row is None:
            row = ShipmentRow(order_id=order.id, awb=shipment.awb, created_at=ctx.clock())
            session.add(row)
        row.tracking_id = shipment.tracking_id
        row.carrier = shipment.carrier_name
        row.label_path = label
    return f"AWB {shipment.awb}, tracking {shipment.tracking_id}"


def _shipment_of(ctx: EffectContext, d: Delivery) -> ShipmentRow:
    row = latest_shipment(ctx, _order(d).id)
    if row is None or not row.tracking_id:
        raise EffectFailed(
            f"{d.kind} #{d.id}: order {_order(d).reference} has no shipment yet "
            "(request_awb did not run)"
        )
    return row


@register(PUSH_TRACKING)
def push_tracking(ctx: EffectContext, d: Delivery) -> str | None:
    order = _order(d)
    shipment = _shipment_of(ctx, d)
    if order.store_id is None or not order.external_id:
        return "order not from a store: no tracking number to write"
    adapter = ctx.adapters.adapter(order.store_id)
    store_order, number = int(order.external_id), str(shipment.tracking_id)
    done = checked_write(
        lambda: adapter.set_tracking_number(store_order, number),
        lambda: number in adapter.tracking_numbers(store_order),
    )
    return f"tracking {number} on store order {store_order}" + ("" if done else " (read back)")


@register(NOTIFY_WMS)
def notify_wms(ctx: EffectContext, d: Delivery) -> str | None:
    order = _order(d)
    env_name = ctx.channel.fulfilment.wms_endpoint_env
    url = ctx.environ.get(env_name, "").strip() if env_name else ""
    if not url:
        return "no WMS endpoint configured: nothing sent"
    secret = ctx.environ.get(WMS_SECRET_ENV, "")
    if not secret:
        raise EffectFailed(
            f"{env_name} is set but {WMS_SECRET_ENV} is not (fix: export the shared secret)"
        )
    event = str(d.payload.get("event", "shipping"))
    if event == "cancel":
        payload: dict[str, Any] = {"event": "cancel", "order_reference": order.reference}
    else:
        row = _shipment_of(ctx, d)
        shipment = Shipment(
            awb=row.awb,
            tracking_id=str(row.tracking_id),
            carrier_name=row.carrier or ctx.channel.fulfilment.carrier_name,
            label_path=Path(row.label_path) if row.label_path else None,
        )
        if shipment.label_path is not None and not shipment.label_path.is_file():
            shipment = Shipment(shipment.awb, shipment.tracking_id, shipment.carrier_name, None)
        payload = shipping_details_payload(shipment, order.reference, extra={"event": event})
    post_shipping_details(url, Secret(secret), payload, idempotency_key=f"outbox:{d.id}")
    return f"WMS told {event} for {order.reference}"
