"""Deterministic AWB numbers and tracking ids for a shipment, and the ``Shipment`` value.

No clock and no randomness: the same inputs give the same numbers, so an outbox effect
that is retried (same order, same idempotency key) issues the SAME AWB and tracking id
and rewrites the same label file.

Format (``PREFIX`` is the channel spec's ``fulfilment.awb_prefix``, upper-cased)::

    AWB          PREFIX + 12-digit serial            + Luhn check digit   e.g. OMS0000000042077
    tracking id  PREFIX + "T" + 12 scrambled digits  + Luhn check digit   e.g. OMST7249033051349

The serial is ``order_id * 100 + d`` when the order's internal id is an integer (unique
per order by construction; ``d`` is two digits derived from the idempotency key, so a
second shipment of the same order gets other numbers), otherwise 12 digits of
SHA-256(prefix, order id, key). The tracking body is an affine bijection of the serial
modulo 10**12, so tracking ids are as unique as AWBs but cannot be guessed by counting.
Both are ``[A-Z0-9]`` only: they satisfy PrestaShop's ``isTrackingNumber``
(``[~:#,%&_=()\\[\\].? +\\-@/a-zA-Z0-9]+``) and its 64-character ``tracking_number`` column.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError

__all__ = [
    "PRESTASHOP_TRACKING_RE",
    "Shipment",
    "ShipmentNumbers",
    "allocate_numbers",
    "is_valid_awb",
    "is_valid_tracking_id",
    "luhn_check_digit",
]

#: PrestaShop ``Validate::isTrackingNumber`` (classes/Validate.php), anchored.
PRESTASHOP_TRACKING_RE = re.compile(r"^[~:#,%&_=\(\)\[\]\.\? \+\-@\/a-zA-Z0-9]+$")

_PREFIX_RE = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
_SERIAL_DIGITS = 12
_MODULUS: int = 10**_SERIAL_DIGITS
# Affine scramble for tracking bodies: multiplier coprime to 10 -> a bijection mod 10**12.
_SCRAMBLE_MUL = 7_919_370_181
_SCRAMBLE_ADD = 408_112_953_667
_MAX_INT_ORDER_ID = _MODULUS // 100


@dataclass(frozen=True)
class ShipmentNumbers:
    """The two identifiers of one shipment."""

    awb: str
    tracking_id: str


@dataclass(frozen=True)
class Shipment:
    """What the OMS issued for one shipment: numbers, carrier and the label file."""

    awb: str
    tracking_id: str
    carrier_name: str
    label_path: Path | None = None


def luhn_check_digit(digits: str) -> str:
    """The Luhn (mod 10) check digit for a string of decimal digits."""
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"luhn_check_digit: expected decimal digits, got {digits!r}")
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # rightmost payload digit is doubled (check digit goes after it)
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _normalise_prefix(prefix: str) -> str:
    value = prefix.strip().upper()
    if not _PREFIX_RE.match(value):
        raise ConfigError(
            f"fulfilment.awb_prefix {prefix!r} is invalid: 1-10 letters/digits starting "
            "with a letter (fix: e.g. awb_prefix: OMS)"
        )
    return value


def _serial(prefix: str, order_id: int | str, key: str) -> int:
    key_hash = hashlib.sha256(f"{prefix}\x1f{order_id}\x1f{key}".encode()).digest()
    mixed: int = int.from_bytes(key_hash[:8], "big")
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        number: int = order_id
        if not 0 <= number < _MAX_INT_ORDER_ID:
            raise ValueError(f"order id {number} does not fit a 12-digit AWB serial")
        return number * 100 + mixed % 100
    return mixed % _MODULUS


def allocate_numbers(prefix: str, order_id: int | str, key: str) -> ShipmentNumbers:
    """AWB and tracking id for ``order_id``'s shipment identified by ``key``.

    ``prefix``: ``fulfilment.awb_prefix``; ``order_id``: the order's internal id (an int
    guarantees uniqueness) or its reference; ``key``: the effect's idempotency key or a
    shipment sequence (``"1"``). Same arguments -> same numbers.
    """
    if not str(order_id).strip():
        raise ValueError("allocate_numbers: order_id is empty")
    if not key:
        raise ValueError("allocate_numbers: key is empty")
    pfx = _normalise_prefix(prefix)
    serial = _serial(pfx, order_id, key)
    awb_body = f"{serial:0{_SERIAL_DIGITS}d}"
    scrambled = (serial * _SCRAMBLE_MUL + _SCRAMBLE_ADD) % _MODULUS
    trk_body = f"{scrambled:0{_SERIAL_DIGITS}d}"
    return ShipmentNumbers(
        awb=f"{pfx}{awb_body}{luhn_check_digit(awb_body)}",
        tracking_id=f"{pfx}T{trk_body}{luhn_check_digit(trk_body)}",
    )


def _valid(value: str, marker: str, prefix: str | None) -> bool:
    pfx = re.escape(_normalise_prefix(prefix)) if prefix is not None else "[A-Z][A-Z0-9]{0,9}?"
    m = re.fullmatch(rf"({pfx}){marker}(\d{{{_SERIAL_DIGITS}}})(\d)", value)
    return m is not None and luhn_check_digit(m.group(2)) == m.group(3)


def is_valid_awb(value: str, prefix: str | None = None) -> bool:
    """True if ``value`` has the AWB shape (with ``prefix``, if given) and a right check digit."""
    return _valid(value, "", prefix)


def is_valid_tracking_id(value: str, prefix: str | None = None) -> bool:
    """True if ``value`` has the tracking-id shape (with ``prefix``, if given), a right check
    digit, and passes PrestaShop's ``isTrackingNumber``."""
    return _valid(value, "T", prefix) and PRESTASHOP_TRACKING_RE.match(value) is not None
