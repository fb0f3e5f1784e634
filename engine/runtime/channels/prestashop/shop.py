"""What a store tells about itself, and its clock.

``ShopFacts``: read at ``store connect`` and kept in ``StoreRow.facts`` (the shop's time zone
``PS_TIMEZONE``, its languages, the webservice version, the ``PS_SHOP_*`` address and the
``PS_OS_*`` order-state keys). ``clock_for``: the clock of a ``PS_TIMEZONE`` value, and
why it fell back to UTC; PrestaShop writes every date in the shop's local time
(``date_default_timezone_set(Configuration::get('PS_TIMEZONE'))`` in config.inc.php, at each
request). The clock itself (``ShopClock``, ``next_cursor``) is channel-neutral: it lives in
``channels/clock.py`` and is re-exported here.

Configuration rows can exist per shop and per shop group; ``pick_configuration`` takes the
value PrestaShop itself uses for the default shop (``Configuration::get``: the shop's own row,
else its group's, else the global one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.runtime.channels.clock import (
    DEFAULT_ZONE,
    PS_DATE,
    ShopClock,
    UnknownTimezone,
    next_cursor,
    shift_text,
)
from engine.runtime.channels.prestashop.records import as_int, as_str

#: The shop's address, as ``shop`` facts (PS_SHOP_* keys, ``Shop parameters > Contact``).
SHOP_KEYS: Mapping[str, str] = {
    "PS_SHOP_NAME": "name",
    "PS_SHOP_EMAIL": "email",
    "PS_SHOP_PHONE": "phone",
    "PS_SHOP_ADDR1": "address1",
    "PS_SHOP_ADDR2": "address2",
    "PS_SHOP_CODE": "postcode",
    "PS_SHOP_CITY": "city",
    "PS_SHOP_COUNTRY_ID": "country_id",
    "PS_SHOP_STATE_ID": "state_id",
}
#: Configuration keys read at connect besides the order-state keys.
BASE_KEYS: tuple[str, ...] = ("PS_TIMEZONE", "PS_LANG_DEFAULT", "PS_SHOP_DEFAULT", *SHOP_KEYS)


# --------------------------------------------------------------------------- the clock


def clock_for(name: str | None) -> tuple[ShopClock, str | None]:
    """The clock for a ``PS_TIMEZONE`` value and a warning when it had to fall back to UTC
    (empty or unknown: PHP's ``date_default_timezone_set`` fails the same way and PrestaShop
    then writes UTC)."""
    try:
        clock = ShopClock(name)
    except UnknownTimezone:
        return ShopClock(DEFAULT_ZONE), (
            f"prestashop: PS_TIMEZONE {name!r} is not a time zone this machine knows; store "
            "dates are read as UTC (fix: set the shop's time zone in International > "
            "Localization)"
        )
    if not (name or "").strip():
        return clock, (
            "prestashop: the store has no PS_TIMEZONE; store dates are read as UTC "
            "(fix: set the shop's time zone in International > Localization)"
        )
    return clock, None


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Language:
    id: int
    iso_code: str
    active: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "iso_code": self.iso_code, "active": self.active}


@dataclass(frozen=True)
class ShopFacts:
    """What the store told at connect (JSON in ``StoreRow.facts``)."""

    timezone: str = DEFAULT_ZONE
    languages: tuple[Language, ...] = ()
    default_language_id: int | None = None
    version: str = ""
    shop: Mapping[str, str] = field(default_factory=dict)
    state_keys: Mapping[str, int] = field(default_factory=dict)
    read_at: str | None = None

    @property
    def clock(self) -> ShopClock:
        return clock_for(self.timezone)[0]

    @property
    def language_ids(self) -> tuple[int, ...]:
        """Every language id of the store (active or not), the default one first."""
        ids = [lang.id for lang in self.languages]
        if self.default_language_id in ids:
            ids.remove(self.default_language_id)
            ids.insert(0, self.default_language_id)
        return tuple(ids)

    @property
    def major_version(self) -> int | None:
        m = re.match(r"^\s*(\d+)\.(\d+)", self.version or "")
        if not m:
            return None
        major, minor = int(m.group(1)), int(m.group(2))
        return minor if major == 1 else major  # 1.6 -> 6, 1.7 -> 7, 8.2 -> 8

    def to_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "languages": [lang.to_json() for lang in self.languages],
            "default_language_id": self.default_language_id,
            "version": self.version,
            "shop": dict(self.shop),
            "state_keys": dict(self.state_keys),
            "read_at": self.read_at,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> ShopFacts:
        doc = doc or {}
        langs = tuple(
            Language(as_int(d.get("id")), as_str(d.get("iso_code")), bool(d.get("active", True)))
            for d in doc.get("languages") or ()
            if isinstance(d, Mapping)
        )
        default = doc.get("default_language_id")
        return cls(
            timezone=str(doc.get("timezone") or DEFAULT_ZONE),
            languages=langs,
            default_language_id=as_int(default) if default else None,
            version=str(doc.get("version") or ""),
            shop={str(k): str(v) for k, v in (doc.get("shop") or {}).items()},
            state_keys={str(k): as_int(v) for k, v in (doc.get("state_keys") or {}).items()},
            read_at=doc.get("read_at"),
        )


def pick_configuration(
    rows: Sequence[Mapping[str, Any]], default_shop: int | None = None
) -> dict[str, str]:
    """``configurations`` rows (``name``, ``value``, ``id_shop``, ``id_shop_group``) ->
    name -> the value PrestaShop uses for the default shop: its own row, else a shop
    group's (the lowest group id), else the global one. Rows of other shops are ignored."""
    shop = default_shop
    if shop is None:
        for r in rows:
            if as_str(r.get("name")) == "PS_SHOP_DEFAULT" and not _scope(r)[0]:
                shop = as_int(r.get("value"), 1)
        shop = shop or 1
    best: dict[str, tuple[tuple[int, int], str]] = {}
    for r in rows:
        name = as_str(r.get("name"))
        id_shop, id_group = _scope(r)
        if id_shop:
            if id_shop != shop:
                continue
            rank = (0, 0)
        elif id_group:
            rank = (1, id_group)
        else:
            rank = (2, 0)
        if name and (name not in best or rank < best[name][0]):
            best[name] = (rank, as_str(r.get("value")))
    return {name: value for name, (_rank, value) in best.items()}


def _scope(row: Mapping[str, Any]) -> tuple[int, int]:
    return as_int(row.get("id_shop")), as_int(row.get("id_shop_group"))


__all__ = [
    "BASE_KEYS",
    "DEFAULT_ZONE",
    "PS_DATE",
    "SHOP_KEYS",
    "Language",
    "ShopClock",
    "ShopFacts",
    "UnknownTimezone",
    "clock_for",
    "next_cursor",
    "pick_configuration",
    "shift_text",
]
