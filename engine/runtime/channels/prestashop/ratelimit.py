"""Protecting a store: a thread-safe token bucket and the retry policy (backoff + jitter)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


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
