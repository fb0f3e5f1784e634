"""``setup_logging`` without a stream writes to the ``sys.stderr`` of the moment: a command
run in-process (click's CliRunner, as the CLI tests and the realstore tests run omsflow)
swaps stderr and closes it after; a handler that kept the first one failed every later
record with "--- Logging error --- ValueError: I/O operation on closed file"."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from engine.runtime.logging import setup_logging


@pytest.fixture(autouse=True)
def _loggers_put_back() -> Iterator[None]:
    """Each test sets up the omsflow and engine loggers; put them back as Python has them."""
    yield
    for name in ("omsflow", "engine"):
        logger = logging.getLogger(name)
        for h in [h for h in logger.handlers if h.get_name() == "omsflow"]:
            logger.removeHandler(h)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_records_follow_stderr_after_the_first_one_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    setup_logging()
    logging.getLogger("omsflow.test").warning("one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logging.getLogger("omsflow.test").warning("two key=%s", "v")
    assert "omsflow.test: two key=v" in second.getvalue()
    assert "Logging error" not in second.getvalue()


def test_an_explicit_stream_is_kept() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    logging.getLogger("engine.test").warning("kept")
    assert "engine.test: kept" in out.getvalue()
