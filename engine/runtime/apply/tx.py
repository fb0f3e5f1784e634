"""The transaction around the one rule: a bare connection of the session factory's engine
(the event path is Core: no ORM session), retried when another writer changed the order
between the read and the write, when PostgreSQL rolled the whole transaction back, or when
the connection was lost before the commit. Given an engine instead of a session factory,
nothing here loads the ORM."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from engine.errors import StaleOrder

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

MAX_ATTEMPTS = 5
"""Tries of a transaction whose order kept changing under it (stale versions)."""
MAX_ROLLED_BACK = 12
"""Tries of a transaction PostgreSQL rolled back whole (deadlock victim, serialization
failure) or whose connection was lost before its commit: safe to run again, and under
contention a victim can lose several times in a row (two stock changes and two imports
on the same SKUs: 4-13 deadlocks in 100 transactions here)."""
RETRIED_SQLSTATES = frozenset({"40P01", "40001"})
"""deadlock_detected, serialization_failure: the transaction was rolled back whole."""

T = TypeVar("T")
C = TypeVar("C")


def rolled_back_whole(exc: DBAPIError) -> bool:
    """True for a database error that rolled the whole transaction back and goes away on a
    second try (``RETRIED_SQLSTATES``: PostgreSQL's deadlock victim, serialization failure)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in RETRIED_SQLSTATES


def _stale() -> tuple[type[Exception], ...]:
    """What a stale order version raises: ``StaleOrder``, and the ORM's ``StaleDataError``
    once the ORM is loaded (only an ORM flush raises it, so a Core-only command never
    imports it)."""
    orm = sys.modules.get("sqlalchemy.orm.exc")
    return (StaleOrder,) if orm is None else (StaleOrder, orm.StaleDataError)


def retried(
    begin: Callable[[], AbstractContextManager[C]], work: Callable[[C], T], *, what: str
) -> tuple[T, int]:
    """Run ``work`` in the transaction ``begin`` opens, run again (a few times) after a
    stale order version, a deadlock or serialization failure, or a connection lost before
    the commit; the result and the number of attempts."""
    stale = rolled = 0
    for attempt in range(1, MAX_ATTEMPTS + MAX_ROLLED_BACK + 1):
        worked = False
        try:
            with begin() as tx:
                result = work(tx)
                worked = True
            return result, attempt
        except _stale():
            # another writer changed the order between our read and write: read it again
            stale += 1
            if stale == MAX_ATTEMPTS:
                raise StaleOrder(
                    f"{what}: the order kept changing; gave up after {attempt}"
                ) from None
            time.sleep(0.005 * stale)
        except DBAPIError as exc:
            # PostgreSQL chose this transaction as a deadlock's victim (a stock change
            # shorting or promoting orders locks their other SKUs after its own): all of it
            # was rolled back, so running it again is safe. So is a transaction whose
            # connection was lost before its commit (the server restarted): nothing of it
            # was written; one lost during the commit may have been, and is not run again
            lost = exc.connection_invalidated and not worked
            rolled += 1
            if not (rolled_back_whole(exc) or lost) or rolled == MAX_ROLLED_BACK:
                raise
            # jittered: two victims backing off in step would meet in the same deadlock
            time.sleep(random.uniform(0.002, 0.01) * min(rolled, 5))
    raise StaleOrder(f"{what}: gave up after {attempt} attempts")  # pragma: no cover


def in_session(
    session_factory: sessionmaker[Session], work: Callable[[Session], T], *, what: str
) -> tuple[T, int]:
    """Run ``work`` in one session transaction, with stale-version retries."""
    return retried(session_factory.begin, work, what=what)


def on_connection(
    session_factory: sessionmaker[Session] | Engine,
    work: Callable[[Connection], T],
    *,
    what: str,
) -> tuple[T, int]:
    """Run ``work`` in one transaction on a bare connection of the engine (or the factory's
    engine), with the same retries (a factory bound some other way: through a session's
    connection)."""
    if isinstance(session_factory, Engine):
        return retried(session_factory.begin, work, what=what)
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine):
        return in_session(session_factory, lambda s: work(s.connection()), what=what)
    return retried(bind.begin, work, what=what)
