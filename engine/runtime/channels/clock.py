"""A channel's clock: the zone its dates are written in, and the cursors kept in it.

A channel (PrestaShop: every date in the shop's ``PS_TIMEZONE``) writes its dates as local
texts ``YYYY-MM-DD HH:MM:SS`` and its filters compare those texts, so a channel date is
converted to UTC on the way in and every date filter to the channel's time on the way out.
Cursors stay local texts compared with local texts; ``next_cursor`` moves them back by an
overlap that also covers the hour the autumn change of clocks repeats (local texts go back
by that much there).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PS_DATE = "%Y-%m-%d %H:%M:%S"
"""The form of a channel's local date text (PrestaShop's, hence the name)."""
DEFAULT_ZONE = "UTC"
_UTC_NAMES = frozenset({"", "UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "Universal", "Zulu"})
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


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
        head = raw[:19]
        if _DATE_RE.match(head):  # the store's own form: the C parser, ~10x strptime
            local = datetime.fromisoformat(head).replace(tzinfo=self.zone, fold=0)
        else:
            local = datetime.strptime(head, PS_DATE).replace(tzinfo=self.zone, fold=0)
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
            # a date text is 19 characters: the length rules out most fields before the regex
            if isinstance(value, str) and len(value) >= 19 and _DATE_RE.match(value.strip()):
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


def clock_or_utc(name: str | None) -> ShopClock:
    """The clock of the zone ``name``; UTC when it names no zone this machine knows (the
    channel then writes UTC; ``prestashop.shop.clock_for`` also says why)."""
    try:
        return ShopClock(name)
    except UnknownTimezone:
        return ShopClock(DEFAULT_ZONE)


__all__ = [
    "DEFAULT_ZONE",
    "PS_DATE",
    "ShopClock",
    "UnknownTimezone",
    "clock_or_utc",
    "next_cursor",
    "shift_text",
]
