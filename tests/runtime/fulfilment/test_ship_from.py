"""The label's sender: the shop's PS_SHOP_* facts read at connect, each field replaced by
the channel spec's ``fulfilment.ship_from``; the spec's sender alone when no store."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from pypdf import PdfReader

from engine.runtime.effects.base import EffectFailed, OrderInfo
from engine.runtime.effects.fulfilment import _ship_from
from engine.runtime.fulfilment.label import ShipFrom, render_label
from engine.spec.model import FulfilmentSpec

SHOP = {"name": "Boutique Zoë", "address1": "12 rue du Bac", "postcode": "75007", "city": "Paris"}


@dataclass
class _Stores:
    """The store records a dispatcher's pool holds (``AdapterSource.store``)."""

    facts: dict[str, Any] = field(default_factory=dict)

    def store(self, store_id: int) -> Any:
        if store_id != 1:
            raise EffectFailed(f"store #{store_id} no longer exists")
        return _Record(self.facts)

    def adapter(self, store_id: int) -> Any:  # pragma: no cover - not used here
        raise AssertionError


@dataclass
class _Record:
    facts: dict[str, Any]


@dataclass
class _Channel:
    fulfilment: FulfilmentSpec


@dataclass
class _Ctx:
    adapters: _Stores
    channel: _Channel


def _order(store_id: int | None = 1) -> OrderInfo:
    return OrderInfo(id=1, reference="R", store_id=store_id, external_id="1", state="RFP")


def test_the_shop_facts_are_the_sender() -> None:
    ctx = _Ctx(_Stores({"shop": SHOP}), _Channel(FulfilmentSpec()))
    assert _ship_from(ctx, _order()) == ShipFrom(  # type: ignore[arg-type]
        "Boutique Zoë", ("12 rue du Bac", "75007 Paris")
    )


def test_the_channel_spec_overrides_field_by_field() -> None:
    spec = FulfilmentSpec(ship_from={"name": "ACME warehouse", "country": "France"})
    ctx = _Ctx(_Stores({"shop": SHOP}), _Channel(spec))
    assert _ship_from(ctx, _order()) == ShipFrom(  # type: ignore[arg-type]
        "ACME warehouse", ("12 rue du Bac", "75007 Paris", "France")
    )
    # no store behind the order: the spec's sender alone; nothing at all: no sender block
    assert _ship_from(ctx, _order(store_id=2)) == ShipFrom(  # type: ignore[arg-type]
        "ACME warehouse", ("France",)
    )
    bare = _Ctx(_Stores({}), _Channel(FulfilmentSpec()))
    assert _ship_from(bare, _order()) is None  # type: ignore[arg-type]


def test_the_sender_keeps_its_country_line() -> None:
    """Both street lines on one, the state beside the city, the country (read at connect
    from PS_SHOP_COUNTRY_ID) on a line of its own: the label's four sender lines hold all."""
    shop = {
        **SHOP,
        "address2": "Bât. B",
        "state": "Île-de-France",
        "country": "France",
        "country_iso": "FR",
        "country_id": "8",
    }
    ctx = _Ctx(_Stores({"shop": shop}), _Channel(FulfilmentSpec()))
    sender = _ship_from(ctx, _order())  # type: ignore[arg-type]
    assert sender == ShipFrom(
        "Boutique Zoë", ("12 rue du Bac, Bât. B", "75007 Paris, Île-de-France", "France")
    )
    # a store whose country name was not read: its ISO code
    del shop["country"]
    iso = _ship_from(_Ctx(_Stores({"shop": shop}), _Channel(FulfilmentSpec())), _order())  # type: ignore[arg-type]
    assert iso is not None
    assert iso.lines[-1] == "FR"
    text = (
        PdfReader(
            io.BytesIO(
                render_label(awb="A1", tracking_id="T1", order_reference="R", ship_from=sender)
            )
        )
        .pages[0]
        .extract_text()
    )
    for line in ("Boutique Zoë", "12 rue du Bac, Bât. B", "75007 Paris, Île-de-France", "France"):
        assert line in text, line
