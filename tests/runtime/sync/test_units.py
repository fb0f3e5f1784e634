"""Sellable units against the sandbox over real HTTP: every product and combination is bound
by the store's ids and named by the channel's SKU rule (repeated references, none at all,
EAN-13s), SKUs stay as first made, two products with one reference become a listed
conflict, order lines resolve by ids, a parent's stock is refused and never written, a
combination's push writes only its own row, and combinations added in the store are caught
by the delta with the cached stock row replaced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import cli
from engine.runtime import service
from engine.runtime.db.tables import CatalogConflictRow, InventoryRow, OrderRow, ProductRow
from engine.runtime.inventory import enqueue_stock_push
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.sync import sync_catalog, sync_orders
from sandbox.server import SandboxServer, start_sandbox
from sandbox.store import SandboxStore
from tests.runtime.outbox.support import dispatcher

from .support import connected, dump, small_adapter

TEMPLATE = "rule:{product_reference}-{attributes}"


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(
        products=30, orders=40, seed=11, repeat_reference_share=0, no_reference_share=0
    ) as server:
        yield server


def _with_combinations(store: SandboxStore) -> list[int]:
    return sorted(pid for pid in store.tables["products"] if store.combinations_of(pid))


def _simple(store: SandboxStore) -> list[int]:
    return sorted(pid for pid in store.tables["products"] if not store.combinations_of(pid))


def _set(store: SandboxStore, resource: str, rid: int, **values: str) -> None:
    store.tables[resource][rid].update(values)
    store.touch(resource, rid)


def _repeat_reference(store: SandboxStore, pid: int, *, ean: bool) -> None:
    """The product's reference on each of its combinations (as the real demo store has
    them); EAN-13s cleared unless ``ean``. Order rows carry the repeated reference too."""
    ref = store.tables["products"][pid]["reference"]
    for cid in store.combinations_of(pid):
        _set(store, "combinations", cid, reference=ref, **({} if ean else {"ean13": ""}))
    for oid, order in store.tables["orders"].items():
        for row in order["associations"].get("order_rows", []):
            if int(row["product_id"]) == pid:
                row["product_reference"] = ref
        store.touch("orders", oid)


def _units(sessions: sessionmaker[Session]) -> dict[tuple[int, int], dict[str, Any]]:
    """(product id, combination id or 0) -> the unit's sku, source, parent, deleted."""
    out = {}
    with sessions() as s:
        rows = list(s.scalars(select(ProductRow)))
        sku_of = {r.id: r.sku for r in rows}
        for r in rows:
            entry = r.store_ids["1"]
            out[(entry["product_id"], entry["combination_id"] or 0)] = {
                "sku": r.sku,
                "source": entry.get("sku_source"),
                "parent": sku_of.get(r.parent_id) if r.parent_id else None,
                "deleted": r.deleted,
                "entry": entry,
            }
    return out


def _run(url: str, *args: str) -> Any:
    return CliRunner().invoke(cli.omsflow, list(args), env={"OMSFLOW_DATABASE_URL": url})


@pytest.mark.slow
def test_repeated_missing_and_shared_references_all_become_units_named_by_the_rule(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    store = sandbox.store
    combo_products = _with_combinations(store)
    with_ean, repeated, bare, twins = combo_products[:4]
    _repeat_reference(store, with_ean, ean=True)
    _repeat_reference(store, repeated, ean=False)
    for cid in store.combinations_of(bare):  # no reference, no EAN at all
        _set(store, "combinations", cid, reference="", ean13="")
    first, second = store.combinations_of(twins)[:2]  # two siblings sharing one reference
    _set(store, "combinations", first, reference="TWIN", ean13="")
    _set(store, "combinations", second, reference="TWIN")
    no_ref, nothing = _simple(store)[:2]
    _set(store, "products", no_ref, reference="")
    _set(store, "products", nothing, reference="", ean13="")

    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle, page_size=7)
        report = sync_catalog(sessions, bundle, "main", adapter=adapter)
        units = _units(sessions)
        n_combos = len(store.tables["combinations"])
        assert report.counts["products_created"] == len(store.tables["products"])
        assert report.counts["combinations_created"] == n_combos
        assert not any("skip" in k for k in report.counts)
        assert len(units) == len(store.tables["products"]) + n_combos

        values = store.tables["product_option_values"]
        for cid in store.combinations_of(with_ean):
            unit = units[(with_ean, cid)]
            assert unit["sku"] == store.tables["combinations"][cid]["ean13"]
            assert unit["source"] == "ean13"
        for pid in (repeated, bare):
            ref = store.tables["products"][pid]["reference"]
            for cid in store.combinations_of(pid):
                unit = units[(pid, cid)]
                assert unit["source"] == TEMPLATE
                assoc = store.tables["combinations"][cid]["associations"]["product_option_values"]
                names = [values[int(v["id"])]["name"][1].lower() for v in assoc]
                assert unit["sku"] == "-".join([ref, *names])
                assert unit["parent"] == ref
        # siblings sharing a reference: neither owns it (their EAN-13 names one, the rule
        # the other); the other siblings keep their own references
        assert units[(twins, first)]["source"] == TEMPLATE
        assert units[(twins, second)]["source"] == "ean13"
        for cid in store.combinations_of(twins)[2:]:
            assert units[(twins, cid)]["source"] == "reference"
        assert units[(no_ref, 0)]["sku"] == store.tables["products"][no_ref]["ean13"]
        assert units[(nothing, 0)] | {"entry": None} == {
            "sku": f"ps1-{nothing}",
            "source": "fallback",
            "parent": None,
            "deleted": False,
            "entry": None,
        }
        # stock of every unit as the store holds it
        with sessions() as s:
            stock = {i.sku: i.on_hand for i in s.scalars(select(InventoryRow))}
        for (pid, cid), unit in units.items():
            if cid or not store.combinations_of(pid):
                assert stock[unit["sku"]] == store.stock_of(pid, cid)

        # a re-run names nothing anew
        before = dump(sessions)
        sync_catalog(sessions, bundle, "main", full=True, adapter=adapter)
        assert dump(sessions) == before

        # the store later gives a rule-named combination its own reference: the SKU stays
        # (stock and order lines are keyed by it), the binding records the new reference
        cid = store.combinations_of(repeated)[0]
        _set(store, "combinations", cid, reference="LATE-OWN")
        _set(store, "products", repeated, date_upd="2099-01-01 00:00:00")
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        after = _units(sessions)[(repeated, cid)]
        assert after["sku"] == units[(repeated, cid)]["sku"]
        assert after["source"] == TEMPLATE
        assert after["entry"]["reference"] == "LATE-OWN"
        shown = json.loads(_run(db_url, "products", "show", after["sku"], "--json").stdout)
        assert shown["sku_source"] == TEMPLATE


@pytest.mark.slow
def test_two_products_with_one_reference_make_a_listed_conflict_until_fixed(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    store = sandbox.store
    a, b = _simple(store)[:2]
    shared = store.tables["products"][a]["reference"]
    own_b = store.tables["products"][b]["reference"]
    _set(store, "products", b, reference=shared)
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        report = sync_catalog(sessions, bundle, "main")
        assert report.counts["conflicts"] == 1
        units = _units(sessions)
        assert units[(a, 0)]["sku"] == shared
        assert units[(a, 0)]["source"] == "reference"
        # the second still is a unit, named by the rule, with its stock
        assert units[(b, 0)]["source"] != "reference"
        assert units[(b, 0)]["sku"] == store.tables["products"][b]["ean13"]
        with sessions() as s:
            [row] = s.scalars(select(CatalogConflictRow)).all()
            assert (row.kind, row.key) == ("duplicate_reference", shared)
            assert {u["product_id"] for u in row.units} == {a, b}
            assert "sync catalog --full" in row.detail
            assert "\n" not in row.detail
            assert s.get(InventoryRow, units[(b, 0)]["sku"]).on_hand == store.stock_of(b)  # type: ignore[union-attr]

        listed = _run(db_url, "products", "conflicts")
        assert listed.exit_code == 0
        assert shared in listed.stdout
        assert units[(b, 0)]["sku"] in listed.stdout
        doc = json.loads(_run(db_url, "products", "conflicts", "--json").stdout)
        assert [c["key"] for c in doc["conflicts"]] == [shared]
        summary = _run(db_url, "sync", "catalog", "--full")
        assert "conflicts 1" in summary.stdout
        assert "omsflow products conflicts" in summary.stdout

        _set(store, "products", b, reference=own_b)  # fixed in the store
        fixed = sync_catalog(sessions, bundle, "main", full=True)
        assert fixed.counts["conflicts_resolved"] == 1
        assert "conflicts" not in fixed.counts
        assert json.loads(_run(db_url, "products", "conflicts", "--json").stdout) == {
            "conflicts": []
        }
        # its SKU stays as first made
        assert _units(sessions)[(b, 0)]["sku"] == units[(b, 0)]["sku"]


@pytest.mark.slow
def test_order_lines_map_to_units_by_the_store_ids(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    store = sandbox.store
    for pid in _with_combinations(store):
        _repeat_reference(store, pid, ean=False)
    now = datetime.now(UTC)
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        sync_catalog(sessions, bundle, "main")
        report = sync_orders(sessions, bundle, "main", now=now)
        assert report.counts["orders_created"] > 0
        units = _units(sessions)
        with sessions() as s:
            orders = list(s.scalars(select(OrderRow)))
            checked = 0
            for order in orders:
                rows = store.tables["orders"][int(order.external_id or 0)]["associations"][
                    "order_rows"
                ]
                assert [li.sku for li in order.lines] == [
                    units[(int(r["product_id"]), int(r["product_attribute_id"]))]["sku"]
                    for r in rows
                ]
                checked += sum(1 for r in rows if int(r["product_attribute_id"]))
            assert checked > 0  # combination lines among them, all with their own SKU
            # no line names a product that has combinations (their shared reference)
            parents = {u["sku"] for (pid, cid), u in units.items() if not cid} & {
                u["parent"] for u in units.values() if u["parent"]
            }
            assert not any(li.sku in parents for o in orders for li in o.lines)


@pytest.mark.slow
def test_an_order_for_a_product_newer_than_the_catalogue_binds_it_with_its_stock(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    store = sandbox.store
    now = datetime.now(UTC)
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        sync_orders(sessions, bundle, "main", now=now, adapter=adapter)
        made = adapter.create_product(name="Late lamp", reference="LATE-LAMP", price="20")
        adapter.set_stock(made.id, None, 10)  # the store's quantity after the order below
        template = next(iter(store.tables["orders"].values()))
        row = dict(template["associations"]["order_rows"][0])
        row.update(
            product_id=str(made.id),
            product_attribute_id="0",
            product_quantity="2",
            product_reference="LATE-LAMP",
        )
        stamp = (now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
        oid = max(store.tables["orders"]) + 1
        store._insert(
            "orders",
            {
                **{k: v for k, v in template.items() if k not in ("id", "associations")},
                "current_state": str(store.state_id("Payment accepted")),
                "reference": "LATELAMP1",
                "date_add": stamp,
                "date_upd": stamp,
                "associations": {"order_rows": [row]},
            },
            rid=oid,
        )
        report = sync_orders(sessions, bundle, "main", now=now, adapter=adapter)
        assert report.counts["products_bound_for_orders"] == 1
        with sessions() as s:
            order = s.scalars(select(OrderRow).where(OrderRow.external_id == str(oid))).one()
            assert order.state == "New"
            assert [li.sku for li in order.lines] == ["LATE-LAMP"]
            level = s.get(InventoryRow, "LATE-LAMP")
            assert level is not None
            # the store already took the 2 units off: the OMS shows what the store shows
            assert (level.on_hand, level.reserved, level.on_hand - level.reserved) == (12, 2, 10)


@pytest.mark.slow
def test_stock_goes_to_the_combination_row_and_never_to_the_parent_row(
    db_url: str, sandbox: SandboxServer, bundle: Bundle, tmp_path: Path
) -> None:
    store = sandbox.store
    pid = _with_combinations(store)[0]
    _repeat_reference(store, pid, ean=False)
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        sync_catalog(sessions, bundle, "main")
        units = _units(sessions)
        parent = units[(pid, 0)]["sku"]
        cids = store.combinations_of(pid)
        target = units[(pid, cids[0])]["sku"]
        rows_before = {sid: dict(r) for sid, r in store.tables["stock_availables"].items()}

        # the parent: refused by the CLI, one line naming its variants, nothing written
        refused = _run(db_url, "stock", "set", parent, "5")
        assert refused.exit_code == 78
        [line] = refused.stderr.strip().splitlines()
        assert all(units[(pid, c)]["sku"] in line for c in cids)
        as_json = _run(db_url, "stock", "adjust", parent, "+5", "--json")
        assert as_json.exit_code == 78
        doc = json.loads(as_json.stdout)
        assert doc["variants"] == sorted(units[(pid, c)]["sku"] for c in cids)
        with sessions() as s:
            assert s.get(InventoryRow, parent) is None
        # a push for the parent (e.g. queued by hand) writes nothing either
        with sessions.begin() as s:
            enqueue_stock_push(s, parent, 99, at=datetime.now(UTC))

        service.set_stock(sessions, bundle, target, 77, at=datetime.now(UTC))
        with dispatcher(sessions, bundle, tmp_path) as d:
            stats = d.run_once()
        assert (stats.delivered, stats.dead) == (2, 0)
        changed = {
            (int(r["id_product"]), int(r["id_product_attribute"]))
            for sid, r in store.tables["stock_availables"].items()
            if r["quantity"] != rows_before[sid]["quantity"]
        }
        # the combination's row, and the product row the store keeps as the sum itself
        assert changed == {(pid, cids[0]), (pid, 0)}
        assert store.stock_of(pid, cids[0]) == 77
        assert store.stock_of(pid) == sum(store.stock_of(pid, c) for c in cids)


@pytest.mark.slow
def test_a_combination_added_in_the_store_is_caught_by_the_delta_and_the_stock_row_reread(
    db_url: str, sandbox: SandboxServer, bundle: Bundle, tmp_path: Path
) -> None:
    store = sandbox.store
    pid = _simple(store)[0]
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        sku = _units(sessions)[(pid, 0)]["sku"]
        assert _units(sessions)[(pid, 0)]["entry"]["combinations"] == []
        value = next(iter(store.tables["product_option_values"]))
        made = adapter.create_combination(
            product_id=pid, reference="", option_value_ids=[value], price_impact=Decimal("0")
        )
        adapter.set_stock(pid, made.id, 6)
        # the product's date_upd does not move (as in PrestaShop): only the delta's look
        # for combinations newer than every bound one finds it
        report = sync_catalog(sessions, bundle, "main", adapter=adapter)
        assert report.mode == "delta"
        assert report.counts["combinations_created"] == 1
        assert report.counts["combination_sets_changed"] == 1
        units = _units(sessions)
        entry = units[(pid, 0)]["entry"]
        assert entry["combinations"] == [made.id]
        # the product's cached row is the one just read (now the store's sum), not the
        # body cached while the product was simple
        assert entry["stock_token"]["quantity"] == store.stock_of(pid) == 6
        assert units[(pid, made.id)]["parent"] == sku
        # the product's own row is never written again; the new combination's is
        puts = sandbox.state.counts.get(("stock_availables", "PUT"), 0)
        with sessions.begin() as s:
            enqueue_stock_push(s, sku, 50, at=datetime.now(UTC))
        with dispatcher(sessions, bundle, tmp_path) as d:
            stats = d.run_once()
        assert (stats.delivered, stats.dead) == (1, 0)
        assert sandbox.state.counts.get(("stock_availables", "PUT"), 0) == puts
        assert store.stock_of(pid) == 6
