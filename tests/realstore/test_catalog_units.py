"""Sellable units on the real PrestaShop 8.2.1 demo store: every product and combination
bound by the store's ids (all 39 demo combinations repeat their product's reference), SKUs
made by the channel's rule, stock written to the combination's own row only (the store keeps
the product row as their sum), parents refused, true conflicts listed, paid orders for
combinations imported as New."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realstore.conftest import Cli
from tests.realstore.harness import RealStore

pytestmark = pytest.mark.realstore

PAYMENT_ACCEPTED = 2


def _connect(rps: RealStore, cli: Cli) -> None:
    cli("store", "connect", "--url", rps.url, "--key", rps.key)


def _products(cli: Cli) -> dict[str, dict[str, Any]]:
    return {p["sku"]: p for p in cli.json("products", "list")["products"]}


def _store_quantities(rps: RealStore) -> dict[tuple[int, int], int]:
    rows = rps.sql("SELECT id_product, id_product_attribute, quantity FROM ps_stock_available")
    return {(int(p), int(a)): int(q) for p, a, q in rows}


def _unit(cli: Cli, sku: str) -> dict[str, Any]:
    doc = cli.json("products", "show", sku)
    entry = next(iter(doc["store_ids"].values()))
    return {**doc, "product_id": entry["product_id"], "combination_id": entry["combination_id"]}


def test_every_demo_product_and_combination_is_in_the_oms_with_the_store_quantities(
    rps: RealStore, cli: Cli
) -> None:
    _connect(rps, cli)
    listed = _products(cli)
    n_products = int(rps.scalar("SELECT COUNT(*) FROM ps_product") or 0)
    n_combos = int(rps.scalar("SELECT COUNT(*) FROM ps_product_attribute") or 0)
    assert (n_products, n_combos) == (19, 39)
    parents = [p for p in listed.values() if p["parent_sku"] is None]
    variants = [p for p in listed.values() if p["parent_sku"] is not None]
    assert (len(parents), len(variants)) == (19, 39)
    # every demo combination repeats its product's reference: none is its own, so each is
    # named by the rule (product reference + attribute values)
    repeated = int(
        rps.scalar(
            "SELECT COUNT(*) FROM ps_product_attribute pa JOIN ps_product p "
            "USING (id_product) WHERE pa.reference = p.reference"
        )
        or 0
    )
    assert repeated == 39
    quantities = _store_quantities(rps)
    for sku in sorted(listed):
        unit = _unit(cli, sku)
        key = (unit["product_id"], unit["combination_id"] or 0)
        if unit["combination_id"] is None:
            assert unit["sku_source"] == "reference", sku
        if unit["variations"]:  # a product with combinations holds no stock of its own
            assert unit["on_hand"] == 0, sku
            continue
        assert unit["on_hand"] == quantities[key], sku
        if unit["combination_id"]:
            assert unit["sku_source"] == "rule:{product_reference}-{attributes}", sku
            assert sku.startswith(f"{unit['parent_sku']}-"), sku
    shirt = _unit(cli, "demo_1")
    assert len(shirt["variations"]) == 8
    # the OMS's totals agree with the store's product rows (its sums)
    for parent in parents:
        doc = _unit(cli, parent["sku"])
        if doc["variations"]:
            total = sum(listed[v]["on_hand"] for v in doc["variations"])
            assert total == quantities[(doc["product_id"], 0)], parent["sku"]


def test_stock_set_on_a_combination_writes_only_its_row_and_the_product_row_stays_the_sum(
    rps: RealStore, cli: Cli
) -> None:
    _connect(rps, cli)
    unit = _unit(cli, "demo_1-s-white")
    pid, cid = unit["product_id"], unit["combination_id"]
    before = _store_quantities(rps)
    cli("stock", "set", "demo_1-s-white", "42")
    cli("outbox", "run", "--once")
    after = _store_quantities(rps)
    changed = {k for k in after if after[k] != before[k]}
    # the combination's row, and the product row PrestaShop recomputes itself
    assert changed == {(pid, cid), (pid, 0)}
    assert after[(pid, cid)] == 42
    combos = [v for k, v in after.items() if k[0] == pid and k[1] != 0]
    assert after[(pid, 0)] == sum(combos)


def test_stock_set_on_a_parent_is_refused_naming_its_variants(rps: RealStore, cli: Cli) -> None:
    _connect(rps, cli)
    before = _store_quantities(rps)
    res = cli("stock", "set", "demo_1", "5", ok=False)
    assert res.exit_code == 78
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("error: demo_1 has variants")
    variants = _unit(cli, "demo_1")["variations"]
    assert len(variants) == 8
    assert all(v in line for v in variants)
    refused = cli("stock", "adjust", "demo_1", "+3", "--json", ok=False)
    assert refused.exit_code == 78
    assert '"variants"' in refused.stdout
    assert cli.json("products", "show", "demo_1")["on_hand"] == 0
    assert cli.json("outbox", "list") == []  # nothing was queued for the store
    cli("outbox", "run", "--once")
    assert _store_quantities(rps) == before


def test_a_combination_whose_reference_is_emptied_gets_a_rule_sku(
    rps: RealStore, cli: Cli
) -> None:
    rows = rps.sql(
        "SELECT id_product_attribute FROM ps_product_attribute WHERE id_product = 1 "
        "ORDER BY id_product_attribute LIMIT 3"
    )
    emptied, own, with_ean = (int(r[0]) for r in rows)
    rps.sql(
        f"UPDATE ps_product_attribute SET reference = '' WHERE id_product_attribute = {emptied}"
    )
    rps.sql(
        f"UPDATE ps_product_attribute SET reference = 'TEE-OWN-1' "
        f"WHERE id_product_attribute = {own}"
    )
    rps.sql(
        f"UPDATE ps_product_attribute SET ean13 = '4006381333931' "
        f"WHERE id_product_attribute = {with_ean}"
    )
    _connect(rps, cli)
    by_combination = {
        _unit(cli, sku)["combination_id"]: _unit(cli, sku)
        for sku, p in _products(cli).items()
        if p["parent_sku"] == "demo_1"
    }
    assert len(by_combination) == 8
    assert by_combination[emptied]["sku_source"] == "rule:{product_reference}-{attributes}"
    assert by_combination[emptied]["sku"].startswith("demo_1-")
    assert by_combination[own]["sku"] == "TEE-OWN-1"
    assert by_combination[own]["sku_source"] == "reference"
    assert by_combination[with_ean]["sku"] == "4006381333931"
    assert by_combination[with_ean]["sku_source"] == "ean13"
    # later, the store gives the emptied combination its own reference: the SKU stays (its
    # stock and order lines are keyed by it); the binding records the store's reference
    rps.sql(
        f"UPDATE ps_product_attribute SET reference = 'TEE-LATE' "
        f"WHERE id_product_attribute = {emptied}"
    )
    cli("sync", "catalog", "--full")
    again = _unit(cli, by_combination[emptied]["sku"])
    assert again["combination_id"] == emptied
    assert next(iter(again["store_ids"].values()))["reference"] == "TEE-LATE"
    assert cli("products", "show", "TEE-LATE", ok=False).exit_code != 0


def test_two_products_sharing_a_reference_are_listed_as_a_conflict(
    rps: RealStore, cli: Cli
) -> None:
    first = int(rps.scalar("SELECT id_product FROM ps_product WHERE reference = 'demo_11'") or 0)
    second = int(rps.scalar("SELECT id_product FROM ps_product WHERE reference = 'demo_12'") or 0)
    rps.sql(f"UPDATE ps_product SET reference = 'demo_11' WHERE id_product = {second}")
    _connect(rps, cli)
    listed = _products(cli)
    assert len(listed) == 19 + 39  # nothing skipped
    assert _unit(cli, "demo_11")["product_id"] == first
    twin = next(
        sku for sku in listed if sku != "demo_11" and _unit(cli, sku)["product_id"] == second
    )
    assert _unit(cli, twin)["sku_source"] != "reference"
    [conflict] = cli.json("products", "conflicts")["conflicts"]
    assert conflict["kind"] == "duplicate_reference"
    assert conflict["key"] == "demo_11"
    assert {u["product_id"] for u in conflict["units"]} == {first, second}
    assert "sync catalog --full" in conflict["detail"]
    text = cli("products", "conflicts").stdout
    assert "demo_11" in text
    assert twin in text
    summary = cli("sync", "catalog", "--full").stdout
    assert "conflicts 1" in summary
    # fixed in the store: the next full sync drops it
    rps.sql(f"UPDATE ps_product SET reference = 'demo_12' WHERE id_product = {second}")
    cli("sync", "catalog", "--full")
    assert cli.json("products", "conflicts")["conflicts"] == []


def test_a_paid_demo_order_of_combinations_imports_as_new(rps: RealStore, cli: Cli) -> None:
    _connect(rps, cli)
    order_id = int(
        rps.scalar(
            "SELECT o.id_order FROM ps_orders o WHERE o.current_state <> 6 AND NOT EXISTS "
            "(SELECT 1 FROM ps_order_detail d WHERE d.id_order = o.id_order "
            "AND d.product_attribute_id = 0) ORDER BY o.id_order LIMIT 1"
        )
        or 0
    )
    assert order_id
    lines = rps.sql(
        "SELECT product_id, product_attribute_id, product_quantity FROM ps_order_detail "
        f"WHERE id_order = {order_id}"
    )
    with rps.client() as c:
        r = c.post(
            "/order_histories",
            content=(
                "<prestashop><order_history>"
                f"<id_order>{order_id}</id_order><id_order_state>{PAYMENT_ACCEPTED}</id_order_state>"
                "</order_history></prestashop>"
            ),
        )
        assert r.status_code == 201, r.text
    cli("sync", "orders")
    orders = {o["external_id"]: o for o in cli.json("orders", "list")["orders"]}
    order = orders[str(order_id)]
    assert order["state"] == "New"
    assert order["channel_state"] == "Payment accepted"
    shown = cli.json("orders", "show", order["reference"])
    skus = {li["sku"]: li for li in shown["lines"]}
    assert len(skus) == len(lines)
    for pid, cid, qty in lines:
        sku = next(
            s
            for s in skus
            if (_unit(cli, s)["product_id"], _unit(cli, s)["combination_id"])
            == (int(pid), int(cid))
        )
        assert skus[sku]["reserved"] == int(qty)


def test_a_combination_added_to_a_simple_product_is_caught_by_the_next_sync(
    rps: RealStore, cli: Cli
) -> None:
    _connect(rps, cli)
    pid = int(rps.scalar("SELECT id_product FROM ps_product WHERE reference = 'demo_11'") or 0)
    value = int(rps.scalar("SELECT MIN(id_attribute) FROM ps_attribute") or 0)
    before = rps.scalar(f"SELECT date_upd FROM ps_product WHERE id_product = {pid}")
    with rps.client() as c:
        r = c.post(
            "/combinations",
            content=(
                f"<prestashop><combination><id_product>{pid}</id_product>"
                "<minimal_quantity>1</minimal_quantity><associations><product_option_values>"
                f"<product_option_value><id>{value}</id></product_option_value>"
                "</product_option_values></associations></combination></prestashop>"
            ),
        )
        assert r.status_code == 201, r.text
    # PrestaShop leaves the product's date_upd as it was
    assert rps.scalar(f"SELECT date_upd FROM ps_product WHERE id_product = {pid}") == before
    cli("sync", "catalog")
    parent = _unit(cli, "demo_11")
    [variant] = parent["variations"]
    assert variant.startswith("demo_11-")
    entry = next(iter(parent["store_ids"].values()))
    assert len(entry["combinations"]) == 1
    refused = cli("stock", "set", "demo_11", "10", ok=False)
    assert refused.exit_code == 78
    assert variant in refused.stderr
    cli("stock", "set", variant, "7")
    cli("outbox", "run", "--once")
    quantities = _store_quantities(rps)
    cid = _unit(cli, variant)["combination_id"]
    assert quantities[(pid, cid)] == 7
    assert quantities[(pid, 0)] == 7  # the store's own sum, now of one combination
