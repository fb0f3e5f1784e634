"""Settings read from the environment, and the ``Secret`` type that never prints itself.

Environment:
- ``OMSFLOW_DATABASE_URL``: SQLAlchemy URL; default ``sqlite:///<cwd>/omsflow.db``.
- ``OMSFLOW_WMS_SECRET``: shared secret for signed WMS webhooks.
- ``OMSFLOW_SPECS`` / ``OMSFLOW_CHANNELS``: folders holding the YAML specs.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

_BUNDLED = Path(__file__).resolve().parent.parent / "_bundled"
_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class Secret:
    """A string that masks itself in ``str``/``repr``; call ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def mask(value: str) -> str:
    """Show at most the last 4 characters of a key: ``****************************ABCD``."""
    if len(value) <= 8:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


_KEY_PATTERNS = [
    re.compile(r"(ws_key=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"(Authorization:\s*Basic\s+)\S+", re.IGNORECASE),
    re.compile(r"(https?://)[^/@\s:]+(:[^/@\s]*)?@", re.IGNORECASE),
]


def redact(text: str, *secrets: str) -> str:
    """Remove keys from a text: known patterns (ws_key=, Basic auth, user@ in URLs) and
    every literal secret given."""
    for value in secrets:
        if value:
            text = text.replace(value, "**********")
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(_masked_match, text)
    return text


def _masked_match(match: re.Match[str]) -> str:
    return match.group(1) + "**********" + ("@" if match.group(0).endswith("@") else "")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts registered secrets and key patterns from every record."""

    _secrets: ClassVar[set[str]] = set()

    @classmethod
    def register(cls, secret: str) -> None:
        if secret:
            cls._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg, *self._secrets)
        if clean != msg:
            record.msg = clean
            record.args = None
        return True


@dataclass(frozen=True)
class Settings:
    """Process settings; build with ``Settings.from_env()``."""

    database_url: str
    wms_secret: Secret | None = None
    specs_dir: Path = field(default_factory=lambda: Path("specs"))
    channels_dir: Path = field(default_factory=lambda: Path("channels"))
    create_database: bool = True
    """May a missing SQLite file be created? The CLI says no for everyday commands (a mistyped
    path is an error, not a silent new empty database: ``OMSFLOW_REFUSE_NEW_DATABASE``, set
    per invocation by ``cli.omsflow``); ``db upgrade``, ``store connect``, ``demo`` and
    ``omsflow --create ...`` (or ``OMSFLOW_CREATE_DATABASE=1``) may."""

    @classmethod
    def from_env(cls, cwd: Path | None = None) -> Settings:
        base = cwd or Path.cwd()
        url = os.environ.get("OMSFLOW_DATABASE_URL") or f"sqlite:///{base / 'omsflow.db'}"
        secret = os.environ.get("OMSFLOW_WMS_SECRET")
        return cls(
            database_url=url,
            wms_secret=Secret(secret) if secret else None,
            specs_dir=Path(os.environ.get("OMSFLOW_SPECS", base / "specs")),
            channels_dir=Path(os.environ.get("OMSFLOW_CHANNELS", base / "channels")),
            create_database=os.environ.get("OMSFLOW_REFUSE_NEW_DATABASE") != "1"
            or os.environ.get("OMSFLOW_CREATE_DATABASE", "").lower() in {"1", "true", "yes"},
        )


def spec_search_path(kind: str, preferred: Path | None = None) -> list[Path]:
    """Folders to look for ``specs`` or ``channels`` YAML in, most specific first:
    the given/working folder, the copy bundled in the wheel, the source checkout."""
    paths: list[Path] = []
    if preferred is not None:
        paths.append(preferred)
    paths.append(Path.cwd() / kind)
    paths.append(_BUNDLED / kind)
    paths.append(_REPO_ROOT / kind)
    seen: list[Path] = []
    for p in paths:
        if p.is_dir() and p.resolve() not in [s.resolve() for s in seen]:
            seen.append(p)
    return seen
