"""What a store tells about itself, and its clock.

``ShopFacts``: read at ``store connect`` and kept in ``StoreRow.facts`` (the shop's time zone
``PS_TIMEZONE``, its languages, the webservice version, the ``PS_SHOP_*`` address and the
``PS_OS_*`` order-state keys). ``ShopClock``: PrestaShop writes every date in the shop's local
time (``date_default_timezone_set(Configuration::get('PS_TIMEZONE'))`` in config.inc.php, at
each request) and filters compare those texts, so a store date is converted to UTC on the way
in and every date filter to shop time on the way out. Cursors stay store-local texts compared
with store-local texts; ``next_cursor`` moves them back by an overlap that also covers the
hour the autumn change of clocks repeats (local texts go back by that much there).

Configuration rows can exist per shop and per shop group; ``pick_configuration`` takes the
value PrestaShop itself uses for the default shop (``Configuration::get``: the shop's own row,
else its group's, else the global one).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.runtime.channels.prestashop.records import as_int, as_str

PS_DATE = "%Y-%m-%d %H:%M:%S"
DEFAULT_ZONE = "UTC"
_UTC_NAMES = frozenset({"", "UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "Universal", "Zulu"})
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

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


class ShopClock:
    """Convert between the shop's local date texts (``YYYY-MM-DD HH:MM:SS`` in
    ``PS_TIMEZONE``) and aware UTC datetimes.

    A local time the autumn change repeats is read as its EARLIER instant (``fold=0``), a
    local time the spring change skips (PrestaShop never writes one) with the offset before
    the change: both deterministic.
    """

    def __init__(self, name: str | None = DEFAULT_ZONE) -> None:
        text = (name or "").strip()
        self.name = DEFAULT_ZONE if text in _UTC_NAMES else text
        self.zone: tzinfo = UTC if self.name == DEFAULT_ZONE else _zone(self.name)

    def __repr__(self) -> str:
        return f"ShopClock({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShopClock) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def is_utc(self) -> bool:
        return self.zone is UTC

    def to_utc(self, text: str | None) -> datetime | None:
        """A store date text -> aware UTC datetime; empty or the zero date -> None."""
        if not text:
            return None
        raw = str(text).strip()
        if not raw or raw.startswith("0000-00-00"):
            return None
        local = datetime.strptime(raw[:19], PS_DATE).replace(tzinfo=self.zone, fold=0)
        return local if self.is_utc else local.astimezone(UTC)

    def to_local(self, moment: datetime) -> str:
        """An instant (naive = UTC) -> the store's local date text."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone).strftime(PS_DATE)

    def utc_text(self, text: str | None) -> str | None:
        """A store date text -> ISO 8601 UTC (``2024-05-01T08:00:00+00:00``)."""
        moment = self.to_utc(text)
        return None if moment is None else moment.isoformat()

    def utc_fields(
        self, record: Mapping[str, Any], names: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """``record`` with its store dates (``names``; default every top-level value that
        is a ``YYYY-MM-DD HH:MM:SS`` text) as ISO UTC texts, for ``core.map_record``: the
        ``datetime`` transform reads the offset, so mapped dates come out in UTC."""
        out = dict(record)
        keys = list(names) if names is not None else list(out)
        for key in keys:
            value = out.get(key)
            if isinstance(value, str) and _DATE_RE.match(value.strip()):
                out[key] = self.utc_text(value)
        return out

    @property
    def backward_jump(self) -> timedelta:
        """The largest step back the zone's local clock takes (one hour for European and
        American summer time, 0 for UTC or a zone without it)."""
        return _backward_jump(self.name) if not self.is_utc else timedelta(0)


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimezone(name) from exc


class UnknownTimezone(ValueError):
    """``PS_TIMEZONE`` names no zone this machine knows."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown time zone {name!r}")
        self.name = name


@functools.lru_cache(maxsize=64)
def _backward_jump(name: str) -> timedelta:
    """The largest drop of the zone's UTC offset between consecutive days, 1990-2050."""
    zone = _zone(name)
    moment = datetime(1990, 1, 1, 12, tzinfo=UTC)
    end = datetime(2050, 1, 1, tzinfo=UTC)
    prev = moment.astimezone(zone).utcoffset() or timedelta(0)
    worst = timedelta(0)
    step = timedelta(days=1)
    while moment < end:
        moment += step
        off = moment.astimezone(zone).utcoffset() or timedelta(0)
        if off < prev:
            worst = max(worst, prev - off)
        prev = off
    return worst


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


def shift_text(text: str, delta: timedelta) -> str:
    """A local date text moved by ``delta`` as wall-clock arithmetic."""
    wall = datetime.strptime(text[:19], PS_DATE).replace(tzinfo=UTC)  # no zone: wall clock
    return (wall + delta).strftime(PS_DATE)


def next_cursor(
    clock: ShopClock,
    *,
    started: str | None,
    max_seen: str | None,
    previous: str | None,
    overlap: timedelta,
) -> str | None:
    """The next ``date_upd`` cursor (a store-local text; the next run reads ``> cursor``).

    The earlier of the store's clock when the run started (``started``, a local text from
    the store's own ``Date`` header) and the newest date the run saw, moved back by
    ``overlap`` plus the zone's largest backward step: an edit made in the hour the autumn
    change repeats writes a text that sorts before texts written earlier, and is still read
    again. Never before the previous cursor; with nothing to go by, the previous cursor
    stays. Re-read items compare equal and write nothing; an edit is never skipped.
    """
    candidates = [d for d in (started, max_seen) if d]
    if not candidates:
        return previous
    value = shift_text(min(candidates), -(overlap + clock.backward_jump))
    if previous and value < previous:
        return previous
    return value


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
