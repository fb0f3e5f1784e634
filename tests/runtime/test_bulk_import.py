"""The import path is one batch path: a batch of N orders (``create_orders``) leaves exactly
the rows, stock, outbox and results that N batches of one (``create_order``, one
transaction each) leave: states, versions, lines, inbound events, audit, coalesced stock
pushes, duplicates, refusals, and Partial orders promoted when an import frees stock
(SQLite and PostgreSQL; a fixed page, and pages and splits drawn by hypothesis)."""

from __future__ import annotations

import itertools
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from engine.runtime import service
from engine.runtime.db import stores
from engine.runtime.db.tables import AuditRow, InboundEventRow, InventoryRow, OrderRow, OutboxRow
from engine.runtime.inventory import set_on_hand
from engine.runtime.service import NewLine, NewOrder, OrderImport
from engine.runtime.specs import Bundle, load_bundle

from .db.support import opened

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """The shipped lifecycle, except that ``import_canceled`` books and frees stock and
    pushes a status: an import that frees stock and writes outbox rows."""
    specs = tmp_path_factory.mktemp("specs")
    shutil.copytree(ROOT / "specs", specs, dirs_exist_ok=True)
    path = specs / "order_lifecycle.yaml"
    text = path.read_text()
    old = "  - trigger: import_canceled\n    source: Incoming\n    dest: Canceled\n"
    assert old in text
    path.write_text(
        text.replace(
            old,
            old + "    effects: [reserve_stock, release_stock, {kind: push_status, "
            "params: {why: test}}]\n",
        )
    )
    return load_bundle(specs_dir=specs)


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    with opened(db_url) as pair:
        yield pair


def _imports(ns: str, store_id: int) -> list[OrderImport]:
    def order(ref: str, lines: list[tuple[str, int]], ext: str | None = None, m: int = 0) -> Any:
        return NewOrder(
            reference=f"{ns}{ref}",
            ordered_at=T0 + timedelta(minutes=m),
            lines=[NewLine(f"{ns}{sku}", q, name=sku) for sku, q in lines],
            store_id=store_id if ext else None,
            external_id=f"{ns}{ext}" if ext else None,
            facts={"k": ref},
        )

    return [
        OrderImport(order("A", [("S1", 2), ("S2", 1)], "1", 1), "import", f"{ns}k-A"),
        OrderImport(order("B", [("S1", 5)], "2", 2), "import", f"{ns}k-B"),
        OrderImport(order("C", [("S3", 3)], "3", 3), "import_processing", f"{ns}k-C"),
        OrderImport(order("D", [("S1", 1)], "4", 4), "import_shipped", f"{ns}k-D"),
        OrderImport(order("E", [("S9", 1)], "5", 5), "import_delivered", f"{ns}k-E"),
        OrderImport(order("F", [("S2", 1)], "6", 6), "no_such_trigger", f"{ns}k-F"),
        OrderImport(order("G", [("S2", 1)], "7", 7), "import", f"{ns}k-A"),  # key of A
        OrderImport(order("H", [("S2", 1)], "2", 8), "import", f"{ns}k-H"),  # store id of B
        OrderImport(order("I", [("S2", 1), ("S2", 1)], "9", 9), "import", f"{ns}k-I"),
        OrderImport(order("J", [("S5", 1)], "10", 10), "import_canceled", f"{ns}k-J"),
        OrderImport(order("K", [("S5", 8), ("S1", 1)], "11", 11), "import", f"{ns}k-K"),
        OrderImport(order("L", [("S1", 1)], "0", 12), "import", f"{ns}k-L"),  # seen before
    ]


def _setup(sessions: sessionmaker[Session], bundle: Bundle, ns: str, store_id: int) -> None:
    with sessions.begin() as s:
        for sku, qty in (("S1", 4), ("S2", 3), ("S5", 0)):
            set_on_hand(s, f"{ns}{sku}", qty, at=T0)
    old = NewOrder(
        reference=f"{ns}P",
        ordered_at=T0,
        lines=[NewLine(f"{ns}S5", 3)],
        store_id=store_id,
        external_id=f"{ns}0",
    )
    assert (
        service.create_order(sessions, bundle, old, idempotency_key=f"{ns}k-P", at=T0).state
        == "Partial"
    )
    with sessions.begin() as s:  # stock arrives without promoting: J's freed stock will
        set_on_hand(s, f"{ns}S5", 10, at=T0)


def _strip(ns: str, value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(ns, "")
    if isinstance(value, dict):
        return {_strip(ns, k): _strip(ns, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strip(ns, v) for v in value]
    return value


def _key(key: str, ns: str, ref: dict[int, str]) -> str:
    """An idempotency key with the order id of a system key replaced by its reference."""
    key = key.replace(ns, "")
    return re.sub(r"^(system:[^:]+:)(\d+)", lambda m: m.group(1) + ref[int(m.group(2))], key)


def _dump(s: Session, ns: str) -> dict[str, Any]:
    orders = {
        o.id: o
        for o in s.scalars(
            select(OrderRow)
            .where(OrderRow.reference.startswith(ns))
            .options(selectinload(OrderRow.lines))
        )
    }
    ref = {i: o.reference.replace(ns, "") for i, o in orders.items()}
    events = {
        e.id: e
        for e in s.scalars(select(InboundEventRow).where(InboundEventRow.order_id.in_(orders)))
    }
    return {
        "orders": {
            ref[o.id]: (
                o.state,
                o.version,
                o.needs_attention,
                o.attention_reason,
                _strip(ns, o.facts),
                o.external_id and o.external_id.replace(ns, ""),
                o.created_at,
                [
                    (ln.sku.replace(ns, ""), ln.name, ln.quantity, ln.reserved, ln.consumed)
                    for ln in o.lines
                ],
            )
            for o in orders.values()
        },
        "events": sorted(
            (
                _key(e.idempotency_key, ns, ref),
                e.source,
                e.trigger,
                ref[e.order_id or 0],
                e.outcome,
                e.payload,
            )
            for e in events.values()
        ),
        "audit": sorted(
            (
                ref[a.order_id],
                _key(events[a.event_id or 0].idempotency_key, ns, ref),
                a.trigger,
                a.from_state,
                a.to_state,
                a.applied,
                a.source,
                a.effects,
                str(a.blockers),
            )
            for a in s.scalars(select(AuditRow).where(AuditRow.order_id.in_(orders)))
        ),
        "outbox": Counter(
            (
                o.kind,
                ref.get(o.order_id or 0),
                str(_strip(ns, o.payload)),
                o.dedup_key and o.dedup_key.replace(ns, ""),
                o.then_trigger,
                o.state,
            )
            for o in s.scalars(select(OutboxRow))
            if (o.order_id in orders) or (o.dedup_key or "").find(f":{ns}") >= 0
        ),
        "inventory": {
            r.sku.replace(ns, ""): (r.on_hand, r.reserved)
            for r in s.scalars(select(InventoryRow).where(InventoryRow.sku.startswith(ns)))
        },
    }


def _summary(ns: str, results: list[service.ApplyResult], s: Session) -> list[Any]:
    refs = dict(s.execute(select(OrderRow.id, OrderRow.reference)).all())
    return [
        (
            r.outcome,
            r.trigger,
            r.idempotency_key.replace(ns, ""),
            refs.get(r.order_id or 0, "").replace(ns, ""),
            r.from_state,
            r.state,
            [b.code for b in r.blockers],
            r.effects,
            len(r.outbox_ids),
            [refs[p].replace(ns, "") for p in r.promoted],
        )
        for r in results
    ]


def _one_by_one(
    sessions: sessionmaker[Session], bundle: Bundle, imports: list[OrderImport]
) -> list[service.ApplyResult]:
    """N batches of one: ``create_order``, each in its own transaction."""
    return [
        service.create_order(
            sessions,
            bundle,
            i.order,
            trigger=i.trigger,
            source="channel",
            idempotency_key=i.idempotency_key,
            at=T0,
        )
        for i in imports
    ]


def _in_batches(
    sessions: sessionmaker[Session], bundle: Bundle, imports: list[OrderImport], cuts: list[int]
) -> list[service.ApplyResult]:
    """The imports cut into batches at ``cuts``, each batch in its own transaction."""
    out: list[service.ApplyResult] = []
    edges = [0, *sorted(c for c in set(cuts) if 0 < c < len(imports)), len(imports)]
    for lo, hi in itertools.pairwise(edges):
        with sessions.begin() as s:
            out += service.create_orders_in(s, bundle, imports[lo:hi], source="channel", at=T0)
    return out


def test_a_batch_of_n_equals_n_batches_of_one(
    db: tuple[Engine, sessionmaker[Session]], bundle: Bundle
) -> None:
    _engine, sessions = db
    with sessions.begin() as s:
        store_id = stores.save_store(s, "main", "http://127.0.0.1:9/", "K" * 32, {}).id
    _setup(sessions, bundle, "seq-", store_id)
    _setup(sessions, bundle, "bulk-", store_id)

    one_by_one = _one_by_one(sessions, bundle, _imports("seq-", store_id))
    bulk = _in_batches(sessions, bundle, _imports("bulk-", store_id), [])

    with sessions() as s:
        expected, got = _dump(s, "seq-"), _dump(s, "bulk-")
        assert _summary("bulk-", bulk, s) == _summary("seq-", one_by_one, s)
    for part in expected:
        assert got[part] == expected[part], part
    # the cases the page covers really happened
    states = {k: v[0] for k, v in got["orders"].items()}
    assert states == {
        "P": "New",
        "A": "New",
        "B": "Partial",
        "C": "RFP",
        "D": "In_transit",
        "E": "Complete",
        "F": "Incoming",
        "I": "New",
        "J": "Canceled",
        "K": "Partial",
    }
    assert [r.outcome for r in bulk].count("duplicate") == 3
    assert got["orders"]["F"][2:4] == (True, expected["orders"]["F"][3])  # needs attention
    assert got["inventory"]["S3"] == (0, 3)
    assert "S9" not in got["inventory"]
    assert [r.promoted for r in bulk if r.promoted]
    # an imported order is written in its new state at once: updated_at is the event's time
    with sessions() as s:
        assert set(
            s.scalars(
                select(OrderRow.updated_at).where(
                    OrderRow.reference.startswith("bulk-"), OrderRow.reference != "bulk-P"
                )
            )
        ) == {T0}


TRIGGERS = ("import", "import", "import", "import_processing", "import_canceled", "nope")


@st.composite
def _pages(draw: st.DrawFn) -> tuple[list[tuple[str, int, list[tuple[int, int]], int]], list[int]]:
    """Imports as (trigger, key number, lines (sku number, quantity), external id number),
    and where to cut the page into batches."""
    n = draw(st.integers(1, 8))
    page = [
        (
            draw(st.sampled_from(TRIGGERS)),
            draw(st.integers(0, 9)),
            draw(
                st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), min_size=1, max_size=3)
            ),
            draw(st.integers(0, 9)),
        )
        for _ in range(n)
    ]
    return page, draw(st.lists(st.integers(1, max(1, n - 1)), max_size=3))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=_pages())
def test_any_batching_equals_one_by_one(
    db: tuple[Engine, sessionmaker[Session]],
    bundle: Bundle,
    drawn: tuple[list[tuple[str, int, list[tuple[int, int]], int]], list[int]],
) -> None:
    """Any page, cut into batches anywhere, leaves what its orders one by one leave
    (duplicate keys and external ids, short stock, an import that frees stock)."""
    page, cuts = drawn
    _engine, sessions = db
    run = uuid.uuid4().hex[:6]
    with sessions.begin() as s:
        store_id = stores.save_store(s, f"s{run}", f"http://127.0.0.1:9/{run}/", "K" * 32, {}).id

    def imports(ns: str) -> list[OrderImport]:
        return [
            OrderImport(
                NewOrder(
                    reference=f"{ns}R{i}",
                    ordered_at=T0 + timedelta(minutes=i),
                    lines=[NewLine(f"{ns}S{sku}", q) for sku, q in lines],
                    store_id=store_id,
                    external_id=f"{ns}{ext}",
                ),
                trigger,
                f"{ns}k{key}",
            )
            for i, (trigger, key, lines, ext) in enumerate(page)
        ]

    seq, bulk = f"a{run}-", f"b{run}-"
    for ns in (seq, bulk):
        with sessions.begin() as s:
            for sku in range(3):  # S3 has no stock row
                set_on_hand(s, f"{ns}S{sku}", 3 * sku, at=T0)
    one_by_one = _one_by_one(sessions, bundle, [i for i in imports(seq) if i.trigger != "nope"])
    batched = _in_batches(
        sessions, bundle, [i for i in imports(bulk) if i.trigger != "nope"], cuts
    )
    with sessions() as s:
        assert _summary(bulk, batched, s) == _summary(seq, one_by_one, s)
        expected, got = _dump(s, seq), _dump(s, bulk)
    for part in expected:
        assert got[part] == expected[part], part


def test_sqlite_ids_not_taken_in_order_roll_the_batch_back(tmp_path: Path, bundle: Bundle) -> None:
    """On SQLite a batch's ids are worked out, not read back (``imports._inserted``): each
    new row takes the largest id + 1. Once the largest id is SQLite's last, it picks ids at
    random; the batch must then fail whole, not tie events and audit rows to wrong orders."""
    import sqlite3

    path = tmp_path / "oms.db"
    with opened(f"sqlite:///{path}") as (_engine, sessions):
        with sessions.begin() as s:
            store_id = stores.save_store(s, "main", "http://127.0.0.1:9/", "K" * 32, {}).id
        _setup(sessions, bundle, "x-", store_id)  # one order, P, in the database
        raw = sqlite3.connect(path)
        with raw:
            raw.execute("UPDATE orders SET id = 9223372036854775807")  # (no FK checks here)
        raw.close()
        with pytest.raises(RuntimeError, match="ids up to"), sessions.begin() as s:
            service.create_orders_in(
                s, bundle, _imports("x-", store_id)[:3], source="channel", at=T0
            )
        with sessions() as s:
            assert list(s.scalars(select(OrderRow.reference))) == ["x-P"]
