"""``apply.tx.retried``: what is run again and how often (no database: the errors are the
ones PostgreSQL's driver raises, wrapped as SQLAlchemy wraps them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from sqlalchemy.exc import OperationalError

from engine.errors import StaleOrder
from engine.runtime.apply.tx import MAX_ATTEMPTS, MAX_ROLLED_BACK, retried


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


Begin = Callable[[], AbstractContextManager[None]]
Work = Callable[[None], str]


def _failing(errors: list[BaseException]) -> tuple[list[int], Begin, Work]:
    calls: list[int] = []

    @contextmanager
    def begin() -> Iterator[None]:
        yield None

    def work(_tx: None) -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "done"

    return calls, begin, work


def _deadlock() -> OperationalError:
    return OperationalError("UPDATE inventory ...", {}, _PgError("40P01"))


def test_a_deadlock_victim_is_run_again_until_it_gets_through() -> None:
    errors: list[BaseException] = [_deadlock() for _ in range(MAX_ROLLED_BACK - 1)]
    calls, begin, work = _failing(errors)
    assert retried(begin, work, what="t") == ("done", MAX_ROLLED_BACK)
    assert len(calls) == MAX_ROLLED_BACK


def test_a_transaction_that_keeps_deadlocking_gives_the_error_back() -> None:
    errors: list[BaseException] = [_deadlock() for _ in range(MAX_ROLLED_BACK + 3)]
    calls, begin, work = _failing(errors)
    with pytest.raises(OperationalError):
        retried(begin, work, what="t")
    assert len(calls) == MAX_ROLLED_BACK


def test_other_database_errors_are_not_run_again() -> None:
    errors: list[BaseException] = [OperationalError("x", {}, _PgError("23505"))]
    calls, begin, work = _failing(errors)
    with pytest.raises(OperationalError):
        retried(begin, work, what="t")
    assert len(calls) == 1


def test_an_order_that_keeps_changing_gives_up_after_max_attempts() -> None:
    errors: list[BaseException] = [StaleOrder("moved") for _ in range(MAX_ATTEMPTS + 2)]
    calls, begin, work = _failing(errors)
    with pytest.raises(StaleOrder, match="kept changing"):
        retried(begin, work, what="t")
    assert len(calls) == MAX_ATTEMPTS
