"""Issue 12 on a real PrestaShop 8.2.1: a demo order comes into the OMS whole (customer and
delivery address exactly as the store's ``ps_customer`` / ``ps_address`` rows have them,
country and state by the store's own tables), and its label prints them and still scans.
A delivery address rewritten in Cyrillic and Greek prints as itself."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from tests.runtime.fulfilment.code128 import read_code128

from .story import PAYMENT_ACCEPTED, move_order, order_reference

pytestmark = pytest.mark.realstore

ADDRESS_FIELDS = (
    "firstname",
    "lastname",
    "company",
    "address1",
    "address2",
    "postcode",
    "city",
    "phone",
    "phone_mobile",
    "vat_number",
)


def _store_address(rps, order_id: int) -> dict[str, str]:
    cols = ", ".join(f"a.{c}" for c in ADDRESS_FIELDS)
    (row,) = rps.sql(
        f"SELECT {cols}, a.id_address, c.iso_code, cl.name, COALESCE(s.name, '') "
        "FROM ps_orders o JOIN ps_address a ON a.id_address = o.id_address_delivery "
        "JOIN ps_country c ON c.id_country = a.id_country "
        "JOIN ps_country_lang cl ON cl.id_country = a.id_country AND cl.id_lang = o.id_lang "
        "LEFT JOIN ps_state s ON s.id_state = a.id_state "
        f"WHERE o.id_order = {order_id}"
    )
    values = dict(
        zip((*ADDRESS_FIELDS, "id", "country_iso", "country", "state"), row, strict=True)
    )
    return {k: ("" if v is None else str(v)) for k, v in values.items()}


def _store_customer(rps, order_id: int) -> tuple[str, str, str]:
    (row,) = rps.sql(
        "SELECT c.firstname, c.lastname, c.email FROM ps_orders o "
        f"JOIN ps_customer c ON c.id_customer = o.id_customer WHERE o.id_order = {order_id}"
    )
    return str(row[0]), str(row[1]), str(row[2])


def _ship(cli, ref: str) -> dict:
    cli("orders", "fire", ref, "release")
    cli("outbox", "run", "--once")
    cli("orders", "fire", ref, "ready_to_ship")
    cli("outbox", "run", "--once")
    cli("outbox", "run", "--once")
    shown = cli.json("orders", "show", ref)
    (shipment,) = shown["shipments"]
    return shipment


def _check_order(cli, rps, order_id: int) -> tuple[dict, dict[str, str]]:
    ref = order_reference(rps, order_id)
    doc = cli.json("orders", "show", ref)
    first, last, email = _store_customer(rps, order_id)
    assert doc["customer"]["name"] == f"{first} {last}"
    assert doc["customer"]["email"] == email
    store = _store_address(rps, order_id)
    ship = doc["shipping_address"]
    for name in ADDRESS_FIELDS:  # field by field, as PrestaShop has them
        assert (ship.get(name) or "") == store[name], name
    assert ship["external_id"] == int(store["id"])
    assert ship["country_iso"] == store["country_iso"]
    assert ship["country"] == store["country"]
    assert (ship.get("state") or "") == store["state"]
    carrier = rps.scalar(
        "SELECT c.name FROM ps_orders o JOIN ps_carrier c ON c.id_carrier = o.id_carrier "
        f"WHERE o.id_order = {order_id}"
    )
    assert doc["carrier"] == carrier
    currency = rps.scalar(
        "SELECT c.iso_code FROM ps_orders o JOIN ps_currency c ON c.id_currency = o.id_currency "
        f"WHERE o.id_order = {order_id}"
    )
    assert doc["currency"] == currency
    paid = rps.scalar(f"SELECT total_paid_tax_excl FROM ps_orders WHERE id_order = {order_id}")
    assert doc["totals"]["paid_tax_excl"] == f"{float(paid):.2f}"
    return doc, store


def test_a_demo_order_comes_in_whole_and_its_label_prints_and_scans(cli, rps) -> None:
    move_order(rps, 2, PAYMENT_ACCEPTED)
    cli("store", "connect", "--url", rps.url, "--key", rps.key, "--name", "real")
    doc, store = _check_order(cli, rps, 2)
    shipment = _ship(cli, doc["reference"])
    text = PdfReader(shipment["label_path"]).pages[0].extract_text()
    shop = rps.scalar("SELECT value FROM ps_configuration WHERE name = 'PS_SHOP_NAME'")
    for expected in (
        str(shop),  # the sender, read from the store at connect
        f"{store['firstname']} {store['lastname']}",
        store["postcode"],
        store["city"],
        store["country"],
        doc["reference"],
    ):
        assert expected in text, expected
    assert read_code128(shipment["label_path"]) == shipment["tracking_id"]


def test_a_cyrillic_and_greek_delivery_address_prints_as_itself(cli, rps) -> None:
    address = rps.scalar("SELECT id_address_delivery FROM ps_orders WHERE id_order = 2")
    rps.sql(
        "UPDATE ps_address SET firstname = 'Дмитрий', lastname = 'Иванов', "
        "address1 = 'Οδός Ερμού 15', city = 'Αθήνα', postcode = '105 57', "
        f"id_country = 9, id_state = 0 WHERE id_address = {address}"
    )
    move_order(rps, 2, PAYMENT_ACCEPTED)
    cli("store", "connect", "--url", rps.url, "--key", rps.key, "--name", "real")
    doc, store = _check_order(cli, rps, 2)
    assert doc["shipping_address"]["country_iso"] == "GR"
    shipment = _ship(cli, doc["reference"])
    text = PdfReader(shipment["label_path"]).pages[0].extract_text()
    for expected in ("Дмитрий Иванов", "Οδός Ερμού 15", "105 57 Αθήνα", store["country"]):
        assert expected in text, expected
    assert read_code128(shipment["label_path"]) == shipment["tracking_id"]
