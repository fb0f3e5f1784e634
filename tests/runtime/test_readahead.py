"""``read_ahead``: the one thread-and-bounded-queue reader behind the adapter's catalogue
streams and the order sync's pages (they were two copies of it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.readahead import read_ahead


def _wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers()), depth=st.integers(min_value=1, max_value=4))
def test_every_item_comes_through_once_in_order(items: list[int], depth: int) -> None:
    assert list(read_ahead(iter(items), depth)) == items


def test_the_reader_runs_at_most_depth_items_ahead() -> None:
    read: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            read.append(i)
            yield i

    it = read_ahead(source(), depth=2)
    assert next(it) == 0
    _wait_for(lambda: len(read) >= 4)
    time.sleep(0.05)
    # one taken, two queued, one in the reader's hand waiting for room
    assert len(read) == 4
    it.close()


def test_an_error_comes_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 failed")

    got: list[int] = []

    def take_all() -> None:
        for x in read_ahead(source(), depth=3):
            got.append(x)

    with pytest.raises(ValueError, match="page 3 failed"):
        take_all()
    assert got == [1, 2]


def test_leaving_early_stops_the_reader() -> None:
    read: list[int] = []
    stopped = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(1_000):
                read.append(i)
                yield i
        finally:
            stopped.set()

    for x in read_ahead(source(), depth=1):
        if x == 2:
            break
    _wait_for(stopped.is_set)
    assert stopped.is_set()  # the reader's thread let go of the source
    assert len(read) <= 5  # the item taken, one queued, one in hand: not the other 995
