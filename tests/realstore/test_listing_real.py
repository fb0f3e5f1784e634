"""Listing on the real PrestaShop 8.2.1 makes real, visible products: ``state=1``, the right
``product_type``, the name in both store languages, active; with variations only the
combinations' stock rows are written (PrestaShop keeps the product row as their sum); and
``products activate | deactivate | delete`` round-trip. Checked in MariaDB, not through the
webservice omsflow used."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.realstore


def _product(rps, sku: str) -> dict[str, str]:
    rows = rps.sql(
        "SELECT p.id_product, p.state, p.product_type, p.active, ps.active, p.visibility "
        f"FROM ps_product p JOIN ps_product_shop ps USING (id_product) WHERE p.reference='{sku}'"
    )
    assert len(rows) == 1, rows
    pid, state, ptype, active, shop_active, visibility = rows[0]
    return {
        "id": pid,
        "state": state,
        "product_type": ptype,
        "active": active,
        "shop_active": shop_active,
        "visibility": visibility,
    }


def _names(rps, pid: str) -> dict[str, tuple[str, str]]:
    return {
        lang: (name, rewrite)
        for lang, name, rewrite in rps.sql(
            f"SELECT id_lang, name, link_rewrite FROM ps_product_lang WHERE id_product={pid}"
        )
    }


def _stock(rps, pid: str) -> dict[str, int]:
    return {
        attr: int(qty)
        for attr, qty in rps.sql(
            f"SELECT id_product_attribute, quantity FROM ps_stock_available WHERE id_product={pid}"
        )
    }


def test_a_single_product_is_real_visible_and_named_in_both_languages(rps, cli) -> None:
    cli("store", "connect", "--url", rps.url, "--key", rps.key, "--no-sync")
    cli("products", "create", "--sku", "FACTS-MUG", "--name", "Tasse à café", "--price", "12.50",
        "--stock", "7")  # fmt: skip
    p = _product(rps, "FACTS-MUG")
    assert p["state"] == "1"  # not a draft
    assert p["product_type"] == "standard"
    assert p["active"] == p["shop_active"] == "1"
    assert p["visibility"] == "both"
    assert _names(rps, p["id"]) == {
        "1": ("Tasse à café", "tasse-a-cafe"),
        "2": ("Tasse à café", "tasse-a-cafe"),
    }
    assert _stock(rps, p["id"]) == {"0": 7}

    cli("products", "deactivate", "FACTS-MUG")
    assert _product(rps, "FACTS-MUG")["active"] == "0"
    assert _product(rps, "FACTS-MUG")["shop_active"] == "0"
    cli("products", "activate", "FACTS-MUG")
    again = _product(rps, "FACTS-MUG")
    assert again["active"] == again["shop_active"] == "1"
    assert again["state"] == "1"
    assert again["product_type"] == "standard"  # the full-object PUTs kept it
    cli("products", "delete", "FACTS-MUG", "--yes")
    assert rps.scalar("SELECT COUNT(*) FROM ps_product WHERE reference='FACTS-MUG'") == "0"
    assert rps.scalar(f"SELECT COUNT(*) FROM ps_product_lang WHERE id_product={p['id']}") == "0"


def test_a_product_with_variations_is_a_combinations_product(rps, cli, tmp_path: Path) -> None:
    cli("store", "connect", "--url", rps.url, "--key", rps.key, "--no-sync")
    spec = tmp_path / "variations.yaml"
    spec.write_text(
        "products:\n"
        "  - sku: FACTS-TEE\n"
        "    name: Facts tee\n"
        "    price: '19.90'\n"
        "    variants:\n"
        "      - {sku: FACTS-TEE-S, attributes: {Size: S}, stock: 3}\n"
        "      - {sku: FACTS-TEE-M, attributes: {Size: M}, price_impact: '1.00', stock: 5}\n",
        encoding="utf-8",
    )
    cli("products", "create", "--from", str(spec))
    p = _product(rps, "FACTS-TEE")
    assert p["state"] == "1"
    assert p["product_type"] == "combinations"
    assert p["active"] == p["shop_active"] == "1"
    names = _names(rps, p["id"])
    assert {lang: n for lang, (n, _r) in names.items()} == {"1": "Facts tee", "2": "Facts tee"}
    combos = dict(
        rps.sql(
            "SELECT reference, id_product_attribute FROM ps_product_attribute "
            f"WHERE id_product={p['id']}"
        )
    )
    assert set(combos) == {"FACTS-TEE-S", "FACTS-TEE-M"}
    stock = _stock(rps, p["id"])
    assert stock[combos["FACTS-TEE-S"]] == 3
    assert stock[combos["FACTS-TEE-M"]] == 5
    assert stock["0"] == 8  # PrestaShop's own sum of the combinations' rows
    cli("products", "deactivate", "FACTS-TEE")
    assert _product(rps, "FACTS-TEE")["active"] == "0"
    cli("products", "activate", "FACTS-TEE")
    assert _product(rps, "FACTS-TEE")["product_type"] == "combinations"
    cli("products", "delete", "FACTS-TEE", "--yes")
    assert rps.scalar("SELECT COUNT(*) FROM ps_product WHERE reference='FACTS-TEE'") == "0"
    assert (
        rps.scalar(f"SELECT COUNT(*) FROM ps_product_attribute WHERE id_product={p['id']}") == "0"
    )
