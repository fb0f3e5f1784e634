"""Protecting a store: the request budget (how many calls in flight, how many per second),
a thread-safe token bucket and the retry policy (backoff + jitter).

The client asks its ``RequestBudget`` for a slot (one call in flight) and then a permit (one
call started) before every HTTP attempt. ``LocalBudget`` holds both in this process (a
semaphore and a token bucket); ``engine.runtime.db.budget.SharedBudgets`` keeps them in the
database, so every worker process and thread of one deployment shares the store's budget.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol


class TokenBucket:
    """``requests`` tokens refilled evenly over ``per_seconds``; ``acquire()`` blocks until a
    token is free. Burst size is ``requests``."""

    def __init__(
        self,
        requests: float,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests <= 0 or per_seconds <= 0:
            raise ValueError("rate limit needs requests > 0 and per_seconds > 0")
        self.capacity = float(requests)
        self.rate = float(requests) / float(per_seconds)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)


class RequestBudget(Protocol):
    """What one store may take: ``slot()`` holds one of ``max_concurrency`` calls in flight
    for the ``with`` block; ``permit()`` blocks until one more call may start under the rate
    limit (taken inside the slot, right before the call is sent)."""

    def slot(self) -> contextlib.AbstractContextManager[None]: ...

    def permit(self) -> None: ...


class BudgetSource(Protocol):
    """Gives the ``RequestBudget`` of one store (by its API URL)."""

    def budget(
        self, store: str, max_concurrency: int, rate_limit: tuple[float, float] | None
    ) -> RequestBudget: ...


class LocalBudget:
    """The budget of this process alone: a semaphore and (when a rate is given) a token
    bucket. Used where no database is in play (one-off calls, tests, ``store connect``)."""

    def __init__(
        self,
        max_concurrency: int,
        rate_limit: tuple[float, float] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._slots = threading.BoundedSemaphore(max(1, int(max_concurrency)))
        self._bucket = TokenBucket(*rate_limit, sleep=sleep) if rate_limit else None

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._slots:
            yield

    def permit(self) -> None:
        if self._bucket is not None:
            self._bucket.acquire()


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for idempotent calls: ``attempts`` in total (1 = no retry), exponential
    backoff from ``backoff_seconds`` capped at ``max_backoff_seconds``, with ``jitter`` (0..1)
    as the random share taken off each delay."""

    attempts: int = 5
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("retry attempts must be >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("retry jitter must be within 0..1")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); a ``Retry-After`` from
        the store is honoured (capped at the maximum)."""
        base = min(self.max_backoff_seconds, self.backoff_seconds * float(2 ** (attempt - 1)))
        wait: float = base * (1.0 - self.jitter * random.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff_seconds))
        return wait
