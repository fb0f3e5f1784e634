"""Progress reporting for sync runs: a rich bar on a terminal, nothing otherwise.

Sync code calls a ``Progress`` (``start``/``advance``/``finish``); the CLI picks
``terminal_progress()`` when stdout is a TTY and ``--json`` is off, else ``NullProgress``.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    def start(self, stream: str, total: int | None = None) -> None: ...
    def advance(self, stream: str, n: int = 1) -> None: ...
    def finish(self, stream: str) -> None: ...


class NullProgress:
    """Reports nothing (tests, pipes, ``--json``)."""

    def start(self, stream: str, total: int | None = None) -> None:
        return None

    def advance(self, stream: str, n: int = 1) -> None:
        return None

    def finish(self, stream: str) -> None:
        return None


class RichProgress:
    """One rich progress task per stream (count, rate, elapsed) on stderr's console."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._running = False

    def start(self, stream: str, total: int | None = None) -> None:
        if not self._running:
            self._progress.start()
            self._running = True
        self._tasks[stream] = self._progress.add_task(stream, total=total)

    def advance(self, stream: str, n: int = 1) -> None:
        task = self._tasks.get(stream)
        if task is not None:
            self._progress.advance(task, n)

    def finish(self, stream: str) -> None:
        task = self._tasks.pop(stream, None)
        if task is not None:
            done = next((t.completed for t in self._progress.tasks if t.id == task), 0)
            self._progress.update(task, total=done or 1, completed=done or 1)
        if not self._tasks and self._running:
            self._progress.stop()
            self._running = False


def terminal_progress(enabled: bool) -> Progress:
    """A rich bar when ``enabled`` (stdout is a TTY and no ``--json``), else nothing."""
    return RichProgress() if enabled else NullProgress()
