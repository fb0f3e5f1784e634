"""``common.fewer_collections``: the collector's threshold raised while a sync runs and put
back after, however the runs nest or overlap."""

from __future__ import annotations

import gc
import threading

import pytest

from engine.runtime.sync.common import YOUNG_THRESHOLD, fewer_collections


@pytest.fixture(autouse=True)
def _threshold():  # type: ignore[no-untyped-def]
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_raised_inside_and_put_back_after_even_on_error() -> None:
    gc.set_threshold(700, 10, 10)
    seen: list[tuple[int, ...]] = []

    def run() -> None:
        with fewer_collections():
            seen.append(gc.get_threshold())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        run()
    assert seen == [(YOUNG_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


def test_nested_and_overlapping_users_put_back_what_the_first_found() -> None:
    gc.set_threshold(500, 7, 3)
    entered, leave = threading.Event(), threading.Event()

    def other() -> None:
        with fewer_collections():
            entered.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    with fewer_collections():
        t.start()
        entered.wait(10)
        with fewer_collections():
            assert gc.get_threshold() == (YOUNG_THRESHOLD, 7, 3)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 7, 3)  # the thread's run goes on
    leave.set()
    t.join(10)
    assert gc.get_threshold() == (500, 7, 3)


def test_a_higher_threshold_or_automatic_collection_off_is_left_alone() -> None:
    gc.set_threshold(50_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (50_000, 10, 10)
    gc.set_threshold(0, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (0, 10, 10)
    assert gc.get_threshold() == (0, 10, 10)
