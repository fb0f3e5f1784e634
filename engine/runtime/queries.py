"""Read models for the CLI: products, catalogue conflicts and orders as plain, JSON-safe
dicts with stable field names (``omsflow products list|show|conflicts``, ``omsflow orders
list|show``); ``extra`` holds the fields the channel spec's ``extra:`` mappings keep.
Read-only.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from engine.errors import NotFound

from .db.repository import SqlOrderRepository
from .db.tables import (
    LINE_FACTS,
    AttributeGroupRow,
    AttributeValueRow,
    AuditRow,
    BrandRow,
    CatalogConflictRow,
    CategoryRow,
    InboundEventRow,
    InventoryRow,
    OrderLineRow,
    OrderRow,
    OutboxRow,
    ProductRow,
    ShipmentRow,
    StoreRow,
)
from .service import ACK_TRIGGER


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --------------------------------------------------------------------------- products


def list_products(session: Session, *, include_deleted: bool = False) -> list[dict[str, Any]]:
    """Every product and variation, by SKU: ``sku, name, parent_sku, price, on_hand,
    reserved, available, active, deleted, brand, image_url``."""
    parent = aliased(ProductRow)
    query = (
        select(
            ProductRow.sku,
            ProductRow.name,
            parent.sku,
            ProductRow.price,
            InventoryRow.on_hand,
            InventoryRow.reserved,
            ProductRow.active,
            ProductRow.deleted,
            BrandRow.name,
            ProductRow.image_url,
        )
        .outerjoin(parent, parent.id == ProductRow.parent_id)
        .outerjoin(InventoryRow, InventoryRow.sku == ProductRow.sku)
        .outerjoin(BrandRow, BrandRow.id == ProductRow.brand_id)
        .order_by(ProductRow.sku)
    )
    if not include_deleted:
        query = query.where(ProductRow.deleted.is_(False))
    out = []
    for (
        sku,
        name,
        parent_sku,
        price,
        on_hand,
        reserved,
        active,
        deleted,
        brand,
        image,
    ) in session.execute(query):
        out.append(
            {
                "sku": sku,
                "name": name,
                "parent_sku": parent_sku,
                "price": _money(price),
                "on_hand": on_hand or 0,
                "reserved": reserved or 0,
                "available": (on_hand or 0) - (reserved or 0),
                "active": bool(active),
                "deleted": bool(deleted),
                "brand": brand,
                "image_url": image,
            }
        )
    return out


def show_product(session: Session, sku: str) -> dict[str, Any]:
    """One product by SKU, with categories, attributes, variations and the store's ids.

    Raises:
        NotFound: no product has that SKU.
    """
    row = session.scalars(select(ProductRow).where(ProductRow.sku == sku)).one_or_none()
    if row is None:
        raise NotFound(f"product {sku!r} not found (omsflow products list)")
    stock = session.get(InventoryRow, sku)
    on_hand, reserved = (stock.on_hand, stock.reserved) if stock else (0, 0)
    cats = dict(
        session.execute(
            select(CategoryRow.id, CategoryRow.name).where(
                CategoryRow.id.in_([int(c) for c in row.category_ids or []])
            )
        ).all()
    )
    attrs = session.execute(
        select(AttributeValueRow.id, AttributeGroupRow.name, AttributeValueRow.name)
        .join(AttributeGroupRow, AttributeGroupRow.id == AttributeValueRow.group_id)
        .where(AttributeValueRow.id.in_([int(a) for a in row.attribute_value_ids or []]))
        .order_by(AttributeValueRow.id)
    ).all()
    store_names = {str(i): n for i, n in session.execute(select(StoreRow.id, StoreRow.name))}
    brand = session.get(BrandRow, row.brand_id) if row.brand_id else None
    parent = session.get(ProductRow, row.parent_id) if row.parent_id else None
    variations = list(
        session.scalars(
            select(ProductRow.sku).where(ProductRow.parent_id == row.id).order_by(ProductRow.sku)
        )
    )
    stores = {store_names.get(str(k), str(k)): v for k, v in sorted((row.store_ids or {}).items())}
    entries = [v for _name, v in sorted(stores.items()) if isinstance(v, dict)]
    return {
        "sku": row.sku,
        "sku_source": next((e["sku_source"] for e in entries if e.get("sku_source")), None),
        "name": row.name,
        "parent_sku": parent.sku if parent else None,
        "price": _money(row.price),
        "retail_selling_price": _money(row.retail_selling_price),
        "selling_price": _money(row.selling_price),
        "on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "active": bool(row.active),
        "deleted": bool(row.deleted),
        "image_url": row.image_url,
        "brand": brand.name if brand else None,
        "categories": [cats[int(c)] for c in row.category_ids or [] if int(c) in cats],
        "attributes": [{"group": g, "value": v} for _i, g, v in attrs],
        "variations": variations,
        "store_ids": stores,
        "extra": dict(row.extra or {}),
        "updated_at": _when(row.updated_at),
    }


def list_conflicts(session: Session, *, store: str | None = None) -> list[dict[str, Any]]:
    """Catalogue conflicts the sync could not settle alone (``omsflow products conflicts``),
    by store and key: ``store, kind, key, units [{product_id, combination_id, sku,
    sku_source}], detail, first_seen, last_seen``.

    Raises:
        NotFound: ``store`` names no store.
    """
    query = (
        select(CatalogConflictRow, StoreRow.name)
        .join(StoreRow, StoreRow.id == CatalogConflictRow.store_id)
        .order_by(StoreRow.name, CatalogConflictRow.kind, CatalogConflictRow.key)
    )
    if store is not None:
        if session.scalar(select(StoreRow.id).where(StoreRow.name == store)) is None:
            raise NotFound(f"store {store!r} not found (omsflow store list)")
        query = query.where(StoreRow.name == store)
    return [
        {
            "store": name,
            "kind": row.kind,
            "key": row.key,
            "units": list(row.units or []),
            "detail": row.detail,
            "first_seen": _when(row.first_seen),
            "last_seen": _when(row.last_seen),
        }
        for row, name in session.execute(query)
    ]


# --------------------------------------------------------------------------- orders


def list_orders(
    session: Session,
    *,
    state: str | None = None,
    attention: bool = False,
    country: str | None = None,
    carrier: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Orders, oldest first: ``reference, id, store, external_id, state, channel_state,
    ordered_at, lines, total_paid, currency, country, carrier, needs_attention,
    attention_reason``; filtered by the delivery country's ISO code, the carrier's name
    (case-insensitive) and ``since <= ordered_at < until``."""
    lines = (
        select(OrderLineRow.order_id, func.count().label("n"))
        .group_by(OrderLineRow.order_id)
        .subquery()
    )
    query = (
        select(OrderRow, StoreRow.name, lines.c.n)
        .outerjoin(StoreRow, StoreRow.id == OrderRow.store_id)
        .outerjoin(lines, lines.c.order_id == OrderRow.id)
        .order_by(OrderRow.ordered_at, OrderRow.id)
    )
    if state:
        query = query.where(OrderRow.state == state)
    if attention:
        query = query.where(OrderRow.needs_attention.is_(True))
    if country:
        query = query.where(OrderRow.ship_country == country.strip().upper())
    if carrier:
        query = query.where(func.lower(OrderRow.carrier) == carrier.strip().lower())
    if since is not None:
        query = query.where(OrderRow.ordered_at >= since)
    if until is not None:
        query = query.where(OrderRow.ordered_at < until)
    return [
        {
            "reference": row.reference,
            "id": row.id,
            "store": store,
            "external_id": row.external_id,
            "state": row.state,
            "channel_state": row.channel_state,
            "ordered_at": _when(row.ordered_at),
            "lines": n or 0,
            "total_paid": _money(row.total_paid),
            "currency": row.currency,
            "country": row.ship_country,
            "carrier": row.carrier,
            "needs_attention": bool(row.needs_attention),
            "attention_reason": row.attention_reason,
        }
        for row, store, n in session.execute(query)
    ]


def _history(a: AuditRow, outcome: str | None, payload: Any) -> dict[str, Any]:
    """One audit row of ``show_order``: ``outcome`` is applied | refused | acknowledged (a
    late event, a no-op); an ``ack_attention`` row (``orders ack``) carries who, the note
    and the reason it cleared."""
    blockers = list(a.blockers or [])
    if outcome is None:
        late = bool(blockers) and all(b.get("code") == "late_event" for b in blockers)
        outcome = "applied" if a.applied else ("acknowledged" if late else "refused")
    entry: dict[str, Any] = {
        "at": _when(a.at),
        "trigger": a.trigger,
        "from_state": a.from_state,
        "to_state": a.to_state,
        "applied": bool(a.applied),
        "outcome": outcome,
        "source": a.source,
        "effects": list(a.effects or []),
        "blockers": blockers,
        "spec_version": a.spec_version,
    }
    if isinstance(payload, dict) and "spec_change" in payload:
        entry["spec_change"] = payload["spec_change"]
    if a.trigger == ACK_TRIGGER and isinstance(payload, dict):
        entry.update(
            by=payload.get("by"), note=payload.get("note"), cleared=payload.get("cleared")
        )
    return entry


def show_order(session: Session, reference: str, *, store: str | None = None) -> dict[str, Any]:
    """One order by reference (or ``#id``): lines with their reservations, the full
    history (every applied and refused event with its source), and its effects.

    Raises:
        NotFound: no such order, or the reference is ambiguous (pass ``store``).
    """
    store_id = None
    if store is not None:
        store_id = session.scalar(select(StoreRow.id).where(StoreRow.name == store))
        if store_id is None:
            raise NotFound(f"store {store!r} not found")
    row = SqlOrderRepository(session).by_reference(reference, store_id=store_id)
    store_name = session.get(StoreRow, row.store_id).name if row.store_id else None  # type: ignore[union-attr]
    skus = sorted({line.sku for line in row.lines})
    stock = {
        r.sku: r for r in session.scalars(select(InventoryRow).where(InventoryRow.sku.in_(skus)))
    }
    audit = session.execute(
        select(AuditRow, InboundEventRow.outcome, InboundEventRow.payload)
        .outerjoin(InboundEventRow, InboundEventRow.id == AuditRow.event_id)
        .where(AuditRow.order_id == row.id)
        .order_by(AuditRow.at, AuditRow.id)
    )
    effects = session.scalars(
        select(OutboxRow).where(OutboxRow.order_id == row.id).order_by(OutboxRow.id)
    )
    return {
        "reference": row.reference,
        "id": row.id,
        "store": store_name,
        "external_id": row.external_id,
        "state": row.state,
        "version": row.version,
        "spec_version": row.spec_version,
        "channel_state": row.channel_state,
        "channel_state_id": row.channel_state_id,
        "channel_updated_at": _when(row.channel_updated_at),
        "ordered_at": _when(row.ordered_at),
        "currency": row.currency,
        "total_paid": _money(row.total_paid),
        "total_products": _money(row.total_products),
        "total_shipping": _money(row.total_shipping),
        "totals": {
            "paid_tax_incl": _money(row.total_paid),
            "paid_tax_excl": _money(row.total_paid_tax_excl),
            "products": _money(row.total_products),
            "shipping": _money(row.total_shipping),
            "discounts": _money(row.total_discounts),
            "wrapping": _money(row.total_wrapping),
        },
        "payment": row.payment,
        "carrier": row.carrier,
        "customer": {
            "name": row.customer_name,
            "email": row.customer_email,
            "phone": row.customer_phone,
        },
        "shipping_address": dict(row.shipping_address or {}),
        "invoice_address": dict(row.invoice_address or {}),
        "needs_attention": bool(row.needs_attention),
        "attention_reason": row.attention_reason,
        "extra": dict(row.extra or {}),
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "reserved": line.reserved,
                "consumed": line.consumed,
                "unit_price": _money(line.unit_price),
                "external_id": line.external_id,
                # fields of the OMS line kept in its JSON (tables.LINE_FACTS)
                **{k: (line.extra or {}).get(k) for k in LINE_FACTS},
                "extra": {k: v for k, v in (line.extra or {}).items() if k not in LINE_FACTS},
            }
            for line in row.lines
        ],
        "reservations": [
            {
                "sku": sku,
                "reserved_by_order": sum(li.reserved for li in row.lines if li.sku == sku),
                "on_hand": stock[sku].on_hand if sku in stock else 0,
                "reserved_total": stock[sku].reserved if sku in stock else 0,
                "available": (stock[sku].on_hand - stock[sku].reserved) if sku in stock else 0,
            }
            for sku in skus
        ],
        "history": [_history(a, outcome, payload) for a, outcome, payload in audit],
        "effects": [
            {
                "id": e.id,
                "kind": e.kind,
                "state": e.state,
                "attempts": e.attempts,
                "next_attempt_at": _when(e.next_attempt_at),
                "last_error": e.last_error,
                "then_trigger": e.then_trigger,
                "spec_version": e.spec_version,
            }
            for e in effects
        ],
        "shipments": [
            {
                "awb": sh.awb,
                "tracking_id": sh.tracking_id,
                "carrier": sh.carrier,
                "label_path": sh.label_path,
                "created_at": _when(sh.created_at),
            }
            for sh in session.scalars(
                select(ShipmentRow).where(ShipmentRow.order_id == row.id).order_by(ShipmentRow.id)
            )
        ],
    }
