"""Sales-channel adapters: the ``ChannelAdapter`` Protocol the outbox and sync code call.

PrestaShop (``channels.prestashop``) is the first implementation; records are typed
(``prestashop.records``) and every failure is an ``engine.errors.ChannelError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ChannelAdapter(Protocol):
    """What omsflow needs from a sales channel; raises only ``ChannelError`` subclasses."""

    def resolve_states(
        self, names: Iterable[str], state_keys: Mapping[str, int] | None = None
    ) -> tuple[dict[str, int], list[str]]: ...

    def orders_since_id(
        self, cursor_id: int, *, states: Iterable[int] | None = None
    ) -> Iterator[Any]: ...

    def orders_changed_since(
        self, date_upd: str, *, states: Iterable[int] | None = None
    ) -> Iterator[Any]: ...

    def get_order(self, order_id: int) -> Any: ...

    def current_state(self, order_id: int) -> int: ...

    def set_order_state(
        self, order_id: int, state_id: int, *, send_email: bool | None = None
    ) -> Any: ...

    def set_tracking_number(
        self, order_id: int, number: str, *, send_email: bool = False
    ) -> Any: ...

    def products(self, *, full: bool = True, since: str | None = None) -> Iterator[Any]: ...

    def set_stock(self, product_id: int, combination_id: int | None, quantity: int) -> Any: ...

    def set_price(self, product_id: int, price: Decimal | float | str) -> Any: ...

    def set_combination_price_impact(
        self, combination_id: int, impact: Decimal | float | str
    ) -> Any: ...

    def set_active(self, product_id: int, active: bool) -> Any: ...

    def close(self) -> None: ...


__all__ = ["ChannelAdapter"]
