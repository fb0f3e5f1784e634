"""Ctrl-C held until a page's commit and its count are both done (``ctrl_c_after_block``):
a CI run once reported "0 product(s) saved" after a page had been committed, because the
SIGINT landed between the commit and the count."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from engine.runtime.sync.common import ctrl_c_after_block


def _sigint_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_a_sigint_inside_is_raised_when_the_block_ends() -> None:
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_after_block():
            _sigint_self()
            done.append("commit")
            done.append("count")
    assert done == ["commit", "count"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_sigint_inside_raises_at_once() -> None:
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_after_block():
            _sigint_self()
            done.append("first")
            _sigint_self()
            done.append("never")
    assert done == ["first"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_sigint_no_interrupt_and_the_handler_is_put_back() -> None:
    previous = signal.getsignal(signal.SIGINT)
    with ctrl_c_after_block():
        pass
    assert signal.getsignal(signal.SIGINT) is previous


def test_an_error_inside_is_raised_as_it_is() -> None:
    with pytest.raises(ValueError):
        with ctrl_c_after_block():
            raise ValueError("commit failed")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_it_changes_nothing() -> None:
    seen: list[object] = []

    def run() -> None:
        with ctrl_c_after_block():
            seen.append("ran")

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == ["ran"]
