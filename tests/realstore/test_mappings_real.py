"""Issue 11 on the real PrestaShop 8.2.1: a ``gift_message`` set on a demo order reaches
``orders show --json`` through an ``extra:`` entry in a copy of the channel spec, with no
code change; ``spec validate --store`` reads the store's own fields (ok on the shipped spec,
a located error for a ``to:`` its products resource does not have; a field only 1.7 has
is refused by the live 8.2.1 where the bundled knowledge lets it pass); ``spec preview
order`` prints every mapped field with its source and writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.spec.helpers import CHANNEL_TEXT, line_of, replace_once

pytestmark = pytest.mark.realstore

GIFT = "Joyeux anniversaire, Marie ! <3"
AFTER = "      - {from: id_currency, to: currency_id, transform: none_if_zero}\n"
PRICE_OUT = "      - {from: price, to: price, transform: decimal}\n  variation_price_out"


def write_channel(folder: Path, text: str) -> None:
    (folder / "channels").mkdir(exist_ok=True)
    (folder / "channels" / "prestashop.yaml").write_text(text, encoding="utf-8")


def connect(rps, cli, *extra: str) -> str:  # type: ignore[no-untyped-def]
    cli("store", "connect", "--url", rps.url, "--key", rps.key, *extra)
    (store,) = cli.json("store", "list")["stores"]
    return str(store["name"])


def test_gift_message_under_extra_reaches_orders_show(rps, cli) -> None:  # type: ignore[no-untyped-def]
    rps.sql(f"UPDATE ps_orders SET gift=1, gift_message='{GIFT}' WHERE id_order=1")
    reference, state = rps.sql("SELECT reference, current_state FROM ps_orders WHERE id_order=1")[
        0
    ]
    assert state == "6"  # Canceled: an imported status
    write_channel(
        cli.folder,
        replace_once(CHANNEL_TEXT, AFTER, AFTER + "      - {from: gift_message, to: gift_text}\n"),
    )
    connect(rps, cli)  # connect runs the catalogue sync and the backfill
    doc = cli.json("orders", "show", reference)
    assert doc["extra"]["gift_text"] == GIFT
    assert doc["extra"]["gift_message"] == GIFT  # (the bundled spec keeps it too)
    assert doc["extra"]["customer_id"] == int(
        rps.scalar("SELECT id_customer FROM ps_orders WHERE id_order=1") or 0
    )
    rows = rps.sql(
        "SELECT product_reference FROM ps_order_detail WHERE id_order=1 ORDER BY id_order_detail"
    )
    assert [line["extra"]["reference"] for line in doc["lines"]] == [r[0] for r in rows]
    assert f"gift_text: {GIFT}" in cli("orders", "show", reference).stdout


def test_validate_against_the_real_store(rps, cli) -> None:  # type: ignore[no-untyped-def]
    name = connect(rps, cli, "--no-sync")
    ok = cli("spec", "validate", "--store", name).stdout.strip()
    assert ok.endswith(f"mappings checked against store '{name}' (PrestaShop 8.2.1)")

    text = replace_once(
        CHANNEL_TEXT,
        PRICE_OUT,
        PRICE_OUT.replace("\n  variation", "\n      - {from: sku, to: pricee}\n  variation"),
    )
    write_channel(cli.folder, text)
    bad = cli("spec", "validate", "--store", name, ok=False)
    assert bad.exit_code == 1
    assert bad.stdout.strip().splitlines() == [
        f"channels/prestashop.yaml:{line_of(text, 'to: pricee')}:25: store '{name}' "
        "(PrestaShop 8.2.1) products have no field 'pricee' (at $.mappings.price_out."
        "direct[1].to); did you mean 'price'? [spec.unknown-store-field]"
    ]

    # combinations.location: a field of 1.7 that 8.x dropped. Offline omsflow cannot know
    # the store's version and lets it pass; the live store says no.
    text = replace_once(
        CHANNEL_TEXT,
        "      - {from: impact, to: price, transform: decimal}\n",
        "      - {from: impact, to: price, transform: decimal}\n"
        "      - {from: sku, to: location}\n",
    )
    write_channel(cli.folder, text)
    cli("spec", "validate")
    live = cli("spec", "validate", "--store", name, ok=False).stdout
    assert "combinations have no field 'location'" in live


def _utc(local: str) -> str:
    when = datetime.strptime(local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/Paris"))
    return when.astimezone(UTC).isoformat()


def test_preview_order_prints_every_mapped_field_with_its_source(rps, cli) -> None:  # type: ignore[no-untyped-def]
    name = connect(rps, cli, "--no-sync")
    reference, total, date_add = rps.sql(
        "SELECT reference, total_paid_tax_incl, date_add FROM ps_orders WHERE id_order=1"
    )[0]
    histories = rps.scalar("SELECT COUNT(*) FROM ps_order_history")
    doc = cli.json("spec", "preview", "order", reference)
    assert doc["source"] == f"store '{name}': order 1"
    fields = {f["field"]: f for f in doc["fields"]}
    rows = rps.sql(
        "SELECT id_order_detail, product_id, product_attribute_id, product_name, "
        "product_quantity, unit_price_tax_incl FROM ps_order_detail WHERE id_order=1 "
        "ORDER BY id_order_detail"
    )
    order_rules = {
        "reference": "reference",
        "ordered_at": "date_add",
        "updated_at": "date_upd",
        "total_paid": "total_paid_tax_incl",
        "total_products": "total_products",
        "total_shipping": "total_shipping",
        "payment_method": "payment",
    }
    line_rules = {
        "external_id": "id",
        "product_id": "product_id",
        "combination_id": "product_attribute_id",
        "name": "product_name",
        "quantity": "product_quantity",
        "unit_price": "unit_price_tax_incl",
    }
    expected = {**order_rules}
    for i in range(len(rows)):
        expected.update({f"lines[{i}].{k}": f"order_rows[{i}].{v}" for k, v in line_rules.items()})
    assert {k: fields[k]["from"] for k in expected} == expected
    assert all(fields[k]["found"] for k in expected)
    assert fields["total_paid"]["value"] == total
    assert fields["ordered_at"]["store_value"] == date_add
    assert fields["ordered_at"]["value"] == _utc(date_add)
    for i, (row_id, pid, cid, pname, qty, _price) in enumerate(rows):
        assert fields[f"lines[{i}].external_id"]["value"] == int(row_id)
        assert fields[f"lines[{i}].product_id"]["value"] == int(pid)
        assert fields[f"lines[{i}].combination_id"]["value"] == (int(cid) or None)
        assert fields[f"lines[{i}].name"]["value"] == pname
        assert fields[f"lines[{i}].quantity"]["value"] == int(qty)
    assert doc["result"]["reference"] == reference
    text = cli("spec", "preview", "order", reference).stdout.splitlines()
    for target, source in expected.items():
        assert any(line.split()[0] == target and f"<- {source}" in line for line in text), (
            target,
            text,
        )
    # nothing written: no order in the OMS, no history row in the store
    assert cli.json("orders", "list")["orders"] == []
    assert rps.scalar("SELECT COUNT(*) FROM ps_order_history") == histories
