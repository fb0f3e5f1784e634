"""``first_ctrl_c`` (``sync stock``'s "finish what is in flight" on the first Ctrl-C), and
Ctrl-C held until a page's commit and its count are both done (``ctrl_c_after_block``):
a CI run once reported "0 product(s) saved" after a page had been committed, because the
SIGINT landed between the commit and the count."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from engine.runtime.sync.common import ctrl_c_after_block, first_ctrl_c


@pytest.fixture(autouse=True)
def default_sigint() -> Iterator[None]:
    """Python's own Ctrl-C handler while each test runs (an earlier test in the process may
    have left another one installed), put back as it was afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _sigint_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _page(done: list[str], *, sigints: int = 0, fail: bool = False) -> None:
    """A page's commit and count inside the block, with ``sigints`` Ctrl-Cs after the commit."""
    with ctrl_c_after_block():
        done.append("commit")
        for _ in range(sigints):
            _sigint_self()
            done.append("after a sigint")
        if fail:
            raise ValueError("commit failed")
        done.append("count")


def test_a_sigint_inside_is_raised_when_the_block_ends() -> None:
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _page(done, sigints=1)
    assert done == ["commit", "after a sigint", "count"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_sigint_inside_raises_at_once() -> None:
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _page(done, sigints=2)
    assert done == ["commit", "after a sigint"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_sigint_no_interrupt_and_the_handler_is_put_back() -> None:
    done: list[str] = []
    _page(done)
    assert done == ["commit", "count"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_error_inside_is_raised_as_it_is() -> None:
    done: list[str] = []
    with pytest.raises(ValueError, match="commit failed"):
        _page(done, fail=True)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_it_changes_nothing() -> None:
    seen: list[object] = []

    def run() -> None:
        with ctrl_c_after_block():
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [signal.default_int_handler]


def test_an_ignored_sigint_stays_ignored() -> None:
    """A background job of a script ignores SIGINT: a commit must not make it interruptible."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    done: list[str] = []
    _page(done, sigints=1)
    assert done == ["commit", "after a sigint", "count"]
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_handler_of_its_own_is_left_to_handle_it() -> None:
    """``omsflow run --once`` runs syncs in the main thread with a graceful-stop handler: a
    SIGINT during a commit goes to that handler, not a KeyboardInterrupt."""
    calls: list[int] = []

    def graceful(signum: int, frame: object) -> None:
        calls.append(signum)

    signal.signal(signal.SIGINT, graceful)
    done: list[str] = []
    _page(done, sigints=1)
    assert done == ["commit", "after a sigint", "count"]
    assert calls == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is graceful


def test_first_ctrl_c_calls_back_once_and_the_second_raises() -> None:
    """``sync stock``'s first Ctrl-C stops leasing (the callback); the second quits now."""
    calls: list[str] = []

    def two_ctrl_cs() -> None:
        with first_ctrl_c(lambda: calls.append("stop")):
            _sigint_self()
            calls.append("still running")
            _sigint_self()
            calls.append("not reached")

    with pytest.raises(KeyboardInterrupt):
        two_ctrl_cs()
    assert calls == ["stop", "still running"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_first_ctrl_c_leaves_an_ignored_sigint_ignored() -> None:
    """A ``sync stock`` started as a background job (SIGINT ignored) is not made stoppable
    by Ctrl-C meant for the shell's foreground job."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    calls: list[str] = []
    with first_ctrl_c(lambda: calls.append("stop")):
        _sigint_self()
    assert calls == []
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
