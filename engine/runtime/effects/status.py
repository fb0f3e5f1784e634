"""push_status: show the order's lifecycle state in the store (POST order_histories, once).

The state pushed is the order's state when its batch was leased (not the state the event
moved it to): effects delivered late or out of order converge on what the OMS shows now,
and a state the channel maps to ``null`` (e.g. a cancellation) is not overwritten by an
older push. The adapter reads the store's current state first, so a retry after "lost
after commit" never posts a second history row.
"""

from __future__ import annotations

from engine.core.records import StatusRecord, to_store

from . import register
from .base import Delivery, EffectContext, EffectFailed

PUSH_STATUS = "push_status"


@register(PUSH_STATUS)
def push_status(ctx: EffectContext, d: Delivery) -> str | None:
    order = d.order
    if order is None:
        raise EffectFailed(f"push_status #{d.id}: order #{d.order_id} no longer exists")
    if order.store_id is None or not order.external_id:
        return "order not from a store: nothing to push"
    name = ctx.channel.status_map.outbound.get(order.state)
    if name is None:
        return f"state {order.state} is not pushed"
    store = ctx.adapters.store(order.store_id)
    state_id = store.state_ids.get(name)
    if state_id is None:
        raise EffectFailed(
            f"store {store.name!r} has no order state {name!r} for {order.state} "
            "(fix: run omsflow store connect again, or edit status_map.outbound)"
        )
    # the order_history the channel's status_out mapping makes of the OMS status record
    record = StatusRecord(int(order.external_id), order.reference, order.state, int(state_id))
    change = ctx.adapters.adapter(order.store_id).set_order_state(
        int(order.external_id),
        int(state_id),
        send_email=bool(ctx.channel.connection.send_email_on_status_change),
        fields=to_store(ctx.channel.mappings.get("status_out"), record),
    )
    return f"store order {order.external_id} -> {name}" + ("" if change.changed else " (already)")
