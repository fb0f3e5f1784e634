"""Process logging for ``omsflow run``: one line per record, human or JSON, keys redacted.

``setup_logging(json_lines=True)`` prints one JSON object per record on stderr with ``ts``
(UTC ISO-8601), ``level``, ``logger``, ``msg`` and every ``extra={...}`` field; exceptions go
to ``exc``. Every handler carries ``settings.RedactingFilter`` and the JSON formatter redacts
again after formatting (extra fields and tracebacks included), so a webservice key or the
WMS secret never reaches a log line in clear.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from .settings import RedactingFilter, redact

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


def _secrets() -> tuple[str, ...]:
    return tuple(RedactingFilter._secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (extra fields kept, secrets redacted)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(doc, default=str), *_secrets())


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level logger: message key=value …`` (secrets redacted)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        extra = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{ts} {record.levelname.lower():<7} {record.name}: {record.getMessage()}"
        if extra:
            line += f"  {extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line, *_secrets())


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when the record comes, not the one it was made
    with: a command run in-process (click's test runner, an embedding tool) swaps stderr and
    closes it after, and a handler holding the old one would fail every later record."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging(
    *, json_lines: bool = False, level: int | str = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Configure the ``omsflow`` and ``engine`` loggers (idempotent: replaces our handler).
    Without ``stream`` records go to the ``sys.stderr`` of the moment they are logged."""
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(RedactingFilter())
    handler.set_name("omsflow")
    for name in ("omsflow", "engine"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "omsflow"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return handler


def register_secret(value: str | None) -> None:
    """Never log ``value`` in clear (webservice keys, the WMS secret)."""
    if value:
        RedactingFilter.register(value)
