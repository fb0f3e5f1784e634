"""The progress reporters: rich's forced terminal draws the bar; the silent one counts."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from engine.runtime.sync.progress import NullProgress, RichProgress, Watcher, interactive


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def test_rich_progress_draws_a_bar_and_counts_and_a_note_gives_way_to_it() -> None:
    console, out = _terminal()
    progress = RichProgress(console=console)
    progress.note("planning 3 product(s)")
    progress.start("products", 3)  # a spinner and a bar are never live together
    for _ in range(3):
        progress.advance("products")
    progress.finish("products")
    progress.close()
    text = out.getvalue()
    assert "planning 3 product(s)" in text
    assert "━" in text
    assert "3/3" in text
    assert progress.done == {"products": 3}


def test_null_progress_draws_nothing_but_counts() -> None:
    progress = NullProgress()
    progress.note("anything")
    progress.start("orders (new)")
    progress.advance("orders (new)", 250)
    progress.advance("orders (new)", 50)
    progress.finish("orders (new)")
    assert progress.done == {"orders (new)": 300}


def test_watcher_advances_to_what_is_no_longer_waiting() -> None:
    console, out = _terminal()
    progress = RichProgress(console=console)
    left = [10]

    def remaining() -> int:
        left[0] = max(0, left[0] - 4)
        return left[0]

    with Watcher(progress, "stock pushes", 10, remaining, every=0.01) as watcher:
        while watcher.shown < 10:
            watcher.poll()
    progress.close()
    assert progress.done == {"stock pushes": 10}
    assert "10/10" in out.getvalue()


def test_interactive_only_for_a_terminal_without_json(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    assert interactive(False)
    assert not interactive(True)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not interactive(False)
