"""Named pure transforms a channel mapping applies to field values (``transform:``).

Each takes the raw value from the channel record and returns the OMS value. Bad input raises
``TransformError`` (a ``ValueError``) naming the value; the caller adds the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.spec.vocabulary import TransformType

Transform = Callable[[Any], Any]

_ZERO_DATE = "0000-00-00 00:00:00"
_PS_DATE = "%Y-%m-%d %H:%M:%S"


class TransformError(ValueError):
    """A value could not be transformed; the message names the value and the transform."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def to_decimal(value: Any) -> Decimal | None:
    """``"19.990000"`` -> ``Decimal("19.990000")``; ``""``/None -> None."""
    if value is None or value == "":
        return None
    if type(value) is Decimal and value.is_finite():  # a mapped value typed again
        return value
    if isinstance(value, bool):
        raise TransformError(f"decimal: {value!r} is not a number")
    try:
        result = Decimal(_text(value).strip())
    except InvalidOperation:
        raise TransformError(f"decimal: {value!r} is not a number") from None
    if not result.is_finite():
        raise TransformError(f"decimal: {value!r} is not a finite number")
    return result


def to_int(value: Any) -> int | None:
    """``"3"`` -> 3 (also ``"3.000000"``); ``""``/None -> None; ``"2.5"`` is an error."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TransformError(f"int: {value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if type(value) is str and value.isascii() and value.isdigit():  # ids, quantities
        return int(value)
    number = to_decimal(value)
    if number is None or number != number.to_integral_value():
        raise TransformError(f"int: {value!r} is not a whole number")
    return int(number)


def strip(value: Any) -> str | None:
    """Surrounding whitespace removed; None stays None."""
    return None if value is None else _text(value).strip()


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def to_bool(value: Any) -> bool | None:
    """PrestaShop's ``"1"``/``"0"`` (and true/false) -> bool; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TransformError(f"bool: {value!r} is not a boolean")


def to_datetime(value: Any) -> datetime | None:
    """PrestaShop's ``"YYYY-MM-DD HH:MM:SS"`` -> aware UTC datetime; the zero date -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = _text(value).strip()
    if text == _ZERO_DATE or text.startswith("0000-00-00"):
        return None
    try:  # the C parser first: ~10x strptime, and every order carries several dates
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:  # what strptime alone reads (unpadded fields: 2026-1-5 3:04:05)
            return datetime.strptime(text, _PS_DATE).replace(tzinfo=UTC)
        except ValueError:
            raise TransformError(f"datetime: {value!r} is not 'YYYY-MM-DD HH:MM:SS'") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def first_language(value: Any) -> str | None:
    """A multilingual field -> its first value: a plain string, a list of ``{id, value}``,
    or ``{"language": [...]}`` (or one ``{id, value}``)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "language" in value:
            return first_language(value["language"])
        if "value" in value:
            inner = value["value"]
            return None if inner is None else _text(inner)
        raise TransformError(f"first_language: no language value in {value!r}")
    if isinstance(value, list | tuple):
        return first_language(value[0]) if value else None
    return _text(value)


def none_if_zero(value: Any) -> Any:
    """``0``/``"0"``/``""``/None -> None (PrestaShop's "no id"); anything else unchanged."""
    if value is None or value == "" or (not isinstance(value, bool) and value == 0):
        return None
    if isinstance(value, str) and value.strip() in {"0", ""}:
        return None
    return value


def none_if_empty(value: Any) -> Any:
    """``""``, whitespace, empty list/dict, None -> None; anything else unchanged."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, list | tuple | dict) and not value:
        return None
    return value


TRANSFORMS: Mapping[str, Transform] = {
    "decimal": to_decimal,
    "int": to_int,
    "strip": strip,
    "bool": to_bool,
    "datetime": to_datetime,
    "first_language": first_language,
    "none_if_zero": none_if_zero,
    "none_if_empty": none_if_empty,
}

TRANSFORM_TYPES: Mapping[str, TransformType] = {
    "decimal": TransformType(
        frozenset({"text", "integer", "decimal", "any"}), "decimal", "a number such as 19.99"
    ),
    "int": TransformType(frozenset({"text", "integer", "id", "any"}), "integer", "a whole number"),
    "strip": TransformType(frozenset({"text", "any"}), "text", "the text, trimmed"),
    "bool": TransformType(frozenset({"boolean", "text", "integer", "any"}), "boolean", "yes/no"),
    "datetime": TransformType(
        frozenset({"date", "datetime", "text", "any"}), "datetime", "a UTC date and time"
    ),
    "first_language": TransformType(
        frozenset({"multilingual", "text", "any"}), "text", "the text in the first language"
    ),
    "none_if_zero": TransformType(
        frozenset({"id", "integer", "any"}), None, "empty for PrestaShop's 0 (no id)"
    ),
    "none_if_empty": TransformType(frozenset({"text", "any"}), None, "empty for a blank text"),
}
"""What each transform takes and gives (``engine.spec.oms`` types), for ``spec validate``."""
