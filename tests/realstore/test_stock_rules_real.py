"""The stock rules (issue 13) against the real PrestaShop 8.2.1, read back in MariaDB:
renaming a product without ``--stock`` leaves its stock alone; a stock set below what an
order reserves moves that order to Partial, so the store is told the true spare quantity
(not a clamped -1); ``products delete`` of a reserved SKU needs ``--force``."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from engine.runtime import service
from engine.runtime.db import session as dbsession
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.specs import load_bundle

pytestmark = pytest.mark.realstore

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _quantity(rps, sku: str) -> int:
    pid = rps.scalar(f"SELECT id_product FROM ps_product WHERE reference='{sku}'")
    return int(
        rps.scalar(
            "SELECT quantity FROM ps_stock_available "
            f"WHERE id_product={pid} AND id_product_attribute=0"
        )
    )


def _order(ref: str, minute: int, sku: str, qty: int) -> str:
    engine = dbsession.make_engine(os.environ["OMSFLOW_DATABASE_URL"])
    try:
        placed = NewOrder(ref, T0.replace(minute=minute), [NewLine(sku, qty)])
        res = service.create_order(
            dbsession.session_factory(engine), load_bundle(), placed,
            idempotency_key=f"t:{ref}", at=T0,
        )  # fmt: skip
    finally:
        engine.dispose()
    return str(res.state)


def test_stock_rules_on_the_real_store(rps, cli) -> None:
    cli("store", "connect", "--url", rps.url, "--key", rps.key, "--no-sync")
    cli("products", "create", "--sku", "RULES-MUG", "--name", "Mug", "--price", "5",
        "--stock", "7")  # fmt: skip
    cli("products", "create", "--sku", "RULES-MUG", "--name", "Mug v2", "--price", "5")
    assert _quantity(rps, "RULES-MUG") == 7
    assert cli.json("products", "show", "RULES-MUG")["on_hand"] == 7
    name = "SELECT name FROM ps_product_lang WHERE id_lang=1 AND id_product="
    pid = rps.scalar("SELECT id_product FROM ps_product WHERE reference='RULES-MUG'")
    assert rps.scalar(name + pid) == "Mug v2"

    assert _order("OLDER", 10, "RULES-MUG", 3) == "New"
    assert _order("NEWER", 20, "RULES-MUG", 3) == "New"
    cli("stock", "set", "RULES-MUG", "4")  # 6 reserved: the newer order gives its 3 back
    cli("outbox", "run", "--once")
    assert _quantity(rps, "RULES-MUG") == 1  # 4 on hand - 3 still reserved
    states = {o["reference"]: o["state"] for o in cli.json("orders", "list")["orders"]}
    assert states == {"OLDER": "New", "NEWER": "Partial"}

    refused = cli("products", "delete", "RULES-MUG", "--yes", ok=False)
    assert refused.exit_code == 78
    assert "OLDER (New, 3 reserved)" in refused.output
    assert "NEWER (Partial, waiting)" in refused.output
    assert rps.scalar("SELECT COUNT(*) FROM ps_product WHERE reference='RULES-MUG'") == "1"
    cli("products", "delete", "RULES-MUG", "--yes", "--force")
    assert rps.scalar("SELECT COUNT(*) FROM ps_product WHERE reference='RULES-MUG'") == "0"
