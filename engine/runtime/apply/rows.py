"""The rows an applied (or refused) event writes, as plain values for prebuilt Core
statements (``db.statements``): the inbound event, the audit row, the outbox rows, the
coalesced stock pushes, a new order and its lines, and the attention flag's rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from engine.core import Applied, Blocker, Refused, is_local
from engine.core.stock import Line
from engine.runtime import inventory
from engine.spec.source import did_you_mean

from .results import ATTENTION_SOURCES, ApplyResult, BundleLike, NewOrder, Source

MAX_REASON = 2000
"""An attention reason is cut to this many characters."""


def local_kinds(outcome: Applied) -> list[str]:
    return [e.kind for e in outcome.effects if e.local or is_local(e.kind)]


def verdict(outcome: Applied | Refused) -> Literal["applied", "refused", "acknowledged"]:
    if isinstance(outcome, Applied):
        return "applied"
    return "acknowledged" if outcome.late else "refused"


def attention(outcome: Applied | Refused, source: Source) -> str | None:
    """The reason an order needs an operator: a refused channel or WMS event (a late
    event the spec declares a no-op is acknowledged, not flagged)."""
    if isinstance(outcome, Applied) or outcome.late or source not in ATTENTION_SOURCES:
        return None
    return "; ".join(b.message for b in outcome.blockers)


def joined(reason: str | None, more: str) -> str:
    """``more`` added to a sticky flag's ``reason`` (neither is lost; capped)."""
    text = f"{reason}; {more}" if reason and more not in reason else (reason or more)
    return text[:MAX_REASON]


def unknown_trigger_message(bundle: BundleLike, trigger: str, state: str) -> str:
    """One line for a trigger the machine does not have: a did-you-mean among every
    trigger, and the triggers allowed from ``state``."""
    machine = bundle.machine
    allowed = list(dict.fromkeys(t.trigger for t in machine.transitions if state in t.sources))
    hint = did_you_mean(trigger, machine.triggers)
    text = f"'{trigger}' is not a trigger of {machine.name}"
    if hint:
        text += f" ({hint})"
    return text + f"; allowed from {state}: " + (", ".join(allowed) if allowed else "none")


def result(
    outcome: Applied | Refused,
    trigger: str,
    idempotency_key: str,
    *,
    order_id: int,
    reference: str,
    from_state: str,
    outbox_ids: Sequence[int] = (),
) -> ApplyResult:
    if not isinstance(outcome, Applied):
        return ApplyResult(
            verdict(outcome),
            trigger,
            idempotency_key,
            order_id=order_id,
            reference=reference,
            from_state=from_state,
            state=from_state,
            blockers=outcome.blockers,
        )
    return ApplyResult(
        "applied",
        trigger,
        idempotency_key,
        order_id=order_id,
        reference=reference,
        from_state=from_state,
        state=outcome.state,
        effects=tuple(e.kind for e in outcome.effects),
        outbox_ids=tuple(outbox_ids),
    )


def event_values(
    idempotency_key: str,
    source: Source,
    trigger: str,
    order_id: int,
    payload: Mapping[str, Any] | None,
    at: datetime,
    outcome: Applied | Refused,
) -> dict[str, Any]:
    return {
        "idempotency_key": idempotency_key,
        "source": source,
        "trigger": trigger,
        "order_id": order_id,
        "payload": dict(payload) if payload is not None else None,
        "received_at": at,
        "outcome": verdict(outcome),
    }


def blocker_doc(blocker: Blocker) -> dict[str, Any]:
    return {"code": blocker.code, "message": blocker.message, "params": dict(blocker.params)}


def audit_values(
    order_id: int,
    event_id: int,
    trigger: str,
    from_state: str,
    outcome: Applied | Refused,
    source: Source,
    at: datetime,
    *,
    spec: str | None,
) -> dict[str, Any]:
    """The audit row of an applied or refused event (``spec``: the spec version)."""
    if isinstance(outcome, Applied):
        effects, blockers = [e.kind for e in outcome.effects], []
    else:
        effects, blockers = [], [blocker_doc(b) for b in outcome.blockers]
    return {
        "order_id": order_id,
        "event_id": event_id,
        "trigger": trigger,
        "from_state": from_state,
        "to_state": outcome.state,
        "applied": isinstance(outcome, Applied),
        "source": source,
        "effects": effects,
        "blockers": blockers,
        "at": at,
        "spec_version": spec,
    }


def outbox_values(
    order_id: int,
    store_id: int | None,
    reference: str,
    outcome: Applied,
    trigger: str,
    at: datetime,
    *,
    spec: str | None,
) -> list[dict[str, Any]]:
    """One pending outbox row per effect that is not local (with its ``then`` trigger)."""
    extra = {"state": outcome.state, "trigger": trigger, "reference": reference}
    return [
        {
            "kind": effect.kind,
            "order_id": order_id,
            "store_id": store_id,
            "payload": {**extra, **dict(effect.params)},
            "dedup_key": None,
            "then_trigger": effect.then,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "spec_version": spec,
        }
        for effect in outcome.effects
        if not (effect.local or is_local(effect.kind))
    ]


def push_values(
    store_ids: Sequence[int], skus: Iterable[str], stock: Mapping[str, list[int]], at: datetime
) -> list[dict[str, Any]]:
    """One coalesced ``push_stock`` per store and SKU, carrying the available quantity."""
    return [
        row
        for sku in sorted(skus)
        for row in inventory.push_rows(store_ids, sku, stock[sku][0] - stock[sku][1], at)
    ]


def country_of(address: Mapping[str, Any]) -> str | None:
    """The ISO code of an address's country (``country_iso``), upper case; None if absent."""
    code = str(address.get("country_iso") or "").strip().upper()
    return code[:2] or None


def order_values(
    order: NewOrder, state: str, reason: str | None, at: datetime, *, spec: str | None
) -> dict[str, Any]:
    """A new order's row: inserted (version 1), then written once by its import trigger
    (version 2) — as it is written in its new state at once."""
    return {
        "reference": order.reference,
        "store_id": order.store_id,
        "external_id": order.external_id,
        "state": state,
        "version": 2,
        "ordered_at": order.ordered_at,
        "currency": order.currency,
        "total_paid": order.total_paid,
        "total_products": order.total_products,
        "total_shipping": order.total_shipping,
        "payment": order.payment,
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "shipping_address": dict(order.shipping_address),
        "invoice_address": dict(order.invoice_address),
        "ship_country": country_of(order.shipping_address),
        "carrier": order.carrier,
        "customer_phone": order.customer_phone,
        "total_discounts": order.total_discounts,
        "total_wrapping": order.total_wrapping,
        "total_paid_tax_excl": order.total_paid_tax_excl,
        "channel_state": order.channel_state,
        "channel_state_id": order.channel_state_id,
        "channel_updated_at": order.channel_updated_at,
        "needs_attention": reason is not None,
        "attention_reason": reason,
        "attention_state": state if reason is not None else None,
        "facts": dict(order.facts),
        "extra": dict(order.extra),
        "created_at": at,
        "updated_at": at,
        "spec_version": spec,
    }


def line_values(order_id: int, order: NewOrder, booked: Sequence[Line]) -> list[dict[str, Any]]:
    """A new order's lines, as its import trigger booked them."""
    return [
        {
            "order_id": order_id,
            "sku": line.sku,
            "name": line.name,
            "quantity": line.quantity,
            "reserved": held.reserved,
            "consumed": held.consumed,
            "unit_price": line.unit_price,
            "external_id": line.external_id,
            "extra": dict(line.extra),
        }
        for line, held in zip(order.lines, booked, strict=True)
    ]
