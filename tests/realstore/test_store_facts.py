"""What the real PrestaShop 8.2.1 tells at connect, and its clock: the shop's time zone and
languages are saved; with the shop clock east and west of UTC an order's ``ordered_at`` is
its ``date_add`` read in that zone, in UTC; states renamed in French still resolve (by
PrestaShop's configuration keys); a delta catalogue sync catches a webservice edit in a
shop that is not on UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.realstore

PS = "%Y-%m-%d %H:%M:%S"
STATE_IDS = {
    "Payment accepted": 2,
    "Processing in progress": 3,
    "Shipped": 4,
    "Delivered": 5,
    "Canceled": 6,
}


def _utc(local_text: str, zone: str) -> datetime:
    return datetime.strptime(local_text, PS).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_connect_saves_the_shop_clock_and_both_languages(rps, cli) -> None:
    doc = cli.json("store", "connect", "--url", rps.url, "--key", rps.key, "--no-sync")
    probe = doc["probe"]
    assert probe["timezone"] == "Europe/Paris"
    assert probe["facts"]["version"] == "8.2.1"
    assert probe["facts"]["default_language_id"] == 1
    assert probe["facts"]["shop"]["name"] == rps.scalar(
        "SELECT value FROM ps_configuration WHERE name='PS_SHOP_NAME' AND id_shop IS NULL"
    )
    assert probe["facts"]["state_keys"]["PS_OS_SHIPPING"] == 4
    (store,) = cli.json("store", "list")["stores"]
    assert store["timezone"] == "Europe/Paris"
    assert store["languages"] == [{"id": 1, "iso_code": "en"}, {"id": 2, "iso_code": "fr"}]
    assert store["version"] == "8.2.1"
    assert store["state_ids"] == STATE_IDS
    text = cli("store", "list").stdout
    assert "Europe/Paris\ten,fr" in text


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_ordered_at_is_the_local_date_add_in_utc_east_and_west(rps, cli, zone: str) -> None:
    rps.set_config("PS_TIMEZONE", zone)
    # an order placed two days ago, in the shop's clock (SQL), then paid through the
    # webservice: PrestaShop writes its new dates in the zone it reads at this request
    placed = (datetime.now(ZoneInfo(zone)) - timedelta(days=2)).strftime(PS)
    rps.sql(f"UPDATE ps_orders SET date_add='{placed}' WHERE id_order=2")
    with rps.client() as c:
        r = c.post(
            "/order_histories",
            content=(
                "<prestashop><order_history><id_order>2</id_order>"
                "<id_order_state>2</id_order_state></order_history></prestashop>"
            ),
        )
        assert r.status_code == 201, r.text
    reference, date_add, date_upd = rps.sql(
        "SELECT reference, date_add, date_upd FROM ps_orders WHERE id_order=2"
    )[0]
    assert date_add == placed
    cli("store", "connect", "--url", rps.url, "--key", rps.key)
    (store,) = cli.json("store", "list")["stores"]
    assert store["timezone"] == zone
    order = cli.json("orders", "show", reference)
    assert _when(order["ordered_at"]) == _utc(date_add, zone)
    assert _when(order["channel_updated_at"]) == _utc(date_upd, zone)
    # and that is the real instant PrestaShop wrote it at: now, give or take
    assert abs(_when(order["channel_updated_at"]) - datetime.now(UTC)) < timedelta(minutes=5)
    assert order["state"] in {"New", "Partial"}


FRENCH = {
    1: "En attente du paiement par chèque",
    2: "Paiement accepté",
    3: "En cours de préparation",
    4: "Expédié",
    5: "Livré",
    6: "Annulé",
    7: "Remboursé",
    8: "Erreur de paiement",
}


def test_states_renamed_in_french_still_resolve(rps, cli) -> None:
    cases = " ".join(f"WHEN {sid} THEN '{name}'" for sid, name in FRENCH.items())
    rps.sql(
        f"UPDATE ps_order_state_lang SET name = CASE id_order_state {cases} ELSE name END "
        f"WHERE id_order_state IN ({','.join(map(str, FRENCH))})"
    )
    assert rps.scalar("SELECT COUNT(*) FROM ps_order_state_lang WHERE name='Shipped'") == "0"
    res = cli("store", "connect", "--url", rps.url, "--key", rps.key, "--no-sync")
    assert "order states resolved: 5" in res.stdout
    assert "missing" not in res.stdout
    (store,) = cli.json("store", "list")["stores"]
    assert store["state_ids"] == STATE_IDS


def test_a_delta_sync_catches_a_webservice_edit_in_a_shop_off_utc(rps, cli) -> None:
    rps.set_config("PS_TIMEZONE", "America/Los_Angeles")
    cli("store", "connect", "--url", rps.url, "--key", rps.key)
    assert cli.json("products", "show", "demo_11")["price"] == "11.90"
    with rps.client() as c:  # product 6 (demo_11), edited by another webservice client
        body = "<prestashop><product><id>6</id><price>42.000000</price></product></prestashop>"
        r = c.patch("/products/6", content=body)
        assert r.status_code == 200, r.text
    written = rps.scalar("SELECT date_upd FROM ps_product WHERE id_product=6")
    assert written is not None
    assert abs(_utc(written, "America/Los_Angeles") - datetime.now(UTC)) < timedelta(minutes=5)
    report = cli.json("sync", "catalog")
    assert report["mode"] == "delta"
    assert cli.json("products", "show", "demo_11")["price"] == "42.00"
