"""What the real-store tests do to the store, the way a merchant's back office would: move an
order through ``order_histories``, read its state and carrier, shape dates through SQL."""

from __future__ import annotations

from .harness import RealStore

# PrestaShop 8.2.1's installed order states (ids of the demo store)
AWAITING_CHECK, PAYMENT_ACCEPTED, PROCESSING, SHIPPED, DELIVERED, CANCELED = 1, 2, 3, 4, 5, 6


def move_order(rps: RealStore, order_id: int, state_id: int) -> None:
    """POST an order_history, as the back office's status change does."""
    body = (
        "<prestashop><order_history>"
        f"<id_order>{order_id}</id_order><id_order_state>{state_id}</id_order_state>"
        "</order_history></prestashop>"
    )
    with rps.client() as c:
        r = c.post("/order_histories", content=body.encode())
    assert r.status_code == 201, r.text[:500]


def order_state(rps: RealStore, order_id: int) -> int:
    return int(rps.scalar(f"SELECT current_state FROM ps_orders WHERE id_order={order_id}") or 0)


def order_reference(rps: RealStore, order_id: int) -> str:
    return str(rps.scalar(f"SELECT reference FROM ps_orders WHERE id_order={order_id}"))


def tracking_number(rps: RealStore, order_id: int) -> str:
    return str(
        rps.scalar(f"SELECT tracking_number FROM ps_order_carrier WHERE id_order={order_id}") or ""
    )


def stock_rows(rps: RealStore, product_id: int) -> dict[int, int]:
    """``id_product_attribute -> quantity`` of one product's stock_available rows."""
    rows = rps.sql(
        "SELECT id_product_attribute, quantity FROM ps_stock_available "
        f"WHERE id_product={product_id}"
    )
    return {int(a): int(q) for a, q in rows}


def shift_order_dates(rps: RealStore, order_id: int, days: int) -> None:
    """Move an order's date_add/date_upd ``days`` into the past (shop time, SQL)."""
    rps.sql(
        f"UPDATE ps_orders SET date_add = date_add - INTERVAL {days} DAY, "
        f"date_upd = date_upd - INTERVAL {days} DAY WHERE id_order={order_id}"
    )
