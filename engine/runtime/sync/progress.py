"""Progress reporting for long commands: a rich bar on a terminal, nothing otherwise.

Sync, listing and stock pushes call a ``Progress`` (``start``/``advance``/``finish``); the
CLI picks ``terminal_progress(interactive(as_json))``: a rich bar on **stderr** when stderr
is a terminal and ``--json`` is off, else ``NullProgress``. Stdout is left to the command's
summary (and its JSON), so a pipe or a script never reads a progress bar. Both kinds count
what was done per stream (``done``), which is what a Ctrl-C message reports.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, stream: str, total: int | None = None) -> None: ...
    def advance(self, stream: str, n: int = 1) -> None: ...
    def finish(self, stream: str) -> None: ...


class NullProgress:
    """Shows nothing (tests, pipes, ``--json``); still counts what was done."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}
        self.totals: dict[str, int | None] = {}

    def start(self, stream: str, total: int | None = None) -> None:
        self.done.setdefault(stream, 0)
        self.totals[stream] = total

    def advance(self, stream: str, n: int = 1) -> None:
        self.done[stream] = self.done.get(stream, 0) + n

    def finish(self, stream: str) -> None:
        return None

    def close(self) -> None:
        return None

    def note(self, text: str) -> None:
        """Say what runs now, before anything can be counted (a spinner on a terminal,
        until the next ``start``, ``note`` or ``close``)."""
        return None

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RichProgress(NullProgress):
    """One rich progress task per stream (count, bar, rate, elapsed) on stderr's console."""

    def __init__(self, console: Any = None) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console if console is not None else Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            # what the command prints meanwhile goes above the bar when stdout is this
            # terminal too; a piped stdout keeps it (it cannot garble the bar)
            redirect_stdout=sys.stdout.isatty(),
        )
        self._tasks: dict[str, Any] = {}
        self._running = False
        self._status: Any = None

    def start(self, stream: str, total: int | None = None) -> None:
        super().start(stream, total)
        self._end_note()
        if not self._running:
            self._progress.start()
            self._running = True
        self._tasks[stream] = self._progress.add_task(stream, total=total)

    def advance(self, stream: str, n: int = 1) -> None:
        super().advance(stream, n)
        task = self._tasks.get(stream)
        if task is not None:
            self._progress.advance(task, n)

    def finish(self, stream: str) -> None:
        task = self._tasks.pop(stream, None)
        if task is not None:
            done = self.done.get(stream, 0)
            self._progress.update(task, total=done or 1, completed=done or 1)
        if not self._tasks:
            self.close()

    def note(self, text: str) -> None:
        self._end_note()
        if not self._running:  # one live display at a time: a bar already shows progress
            self._status = self.console.status(text)
            self._status.start()

    def _end_note(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        """Stop the live display (the bars stay as they were drawn); idempotent."""
        self._end_note()
        if self._running:
            self._progress.stop()
            self._running = False


def interactive(as_json: bool = False) -> bool:
    """True when progress should be drawn: stderr is a terminal and ``--json`` is off."""
    return not as_json and sys.stderr.isatty()


def terminal_progress(enabled: bool) -> NullProgress:
    """A rich bar on stderr when ``enabled`` (see ``interactive``), else nothing."""
    return RichProgress() if enabled else NullProgress()


class Watcher:
    """Draws progress for work it cannot see: a thread polls ``remaining()`` (e.g. rows left
    in the outbox) every ``every`` seconds and advances ``stream`` to ``total - remaining``.
    A context manager: the thread stops (after one last poll) on exit."""

    def __init__(
        self,
        progress: NullProgress,
        stream: str,
        total: int,
        remaining: Any,
        every: float = 0.5,
    ) -> None:
        import threading

        self.progress = progress
        self.stream = stream
        self.total = total
        self.remaining = remaining
        self.every = every
        self.shown = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-watcher", daemon=True)

    def poll(self) -> int:
        """Advance to what is done now; returns it."""
        try:
            done = max(0, min(self.total, self.total - int(self.remaining())))
        except Exception:  # noqa: BLE001 - a failed poll only skips one redraw
            return self.shown
        if done > self.shown:
            self.progress.advance(self.stream, done - self.shown)
            self.shown = done
        return done

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.poll()

    def __enter__(self) -> Watcher:
        self.progress.start(self.stream, self.total)
        if not isinstance(self.progress, RichProgress):
            return self  # nothing drawn: no thread, the caller polls once at the end
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.poll()
        self.progress.finish(self.stream)
