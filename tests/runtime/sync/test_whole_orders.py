"""Whole orders over real HTTP to the sandbox: the customer, both addresses (country ISO code
and name, state), carrier, currency and totals come in through the channel spec's mappings,
read in bulk around each page of orders (a constant number of requests per page, never one
per order), in several countries and alphabets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from engine.runtime.db.tables import OrderRow
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.sync import sync_catalog, sync_orders
from sandbox.server import SandboxServer, start_sandbox

from .support import connected, small_adapter

NOW = datetime.now(UTC).replace(microsecond=0)
RELATED = ("customers", "addresses", "countries", "states", "carriers", "currencies")
PER_PAGE = ("order_details", "customer_threads")
"""Read once per page of orders, whatever the page holds (by ``filter[id_order]``)."""


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=30, orders=120, seed=5, now=NOW) as server:
        yield server


@pytest.mark.slow
def test_orders_come_in_whole_from_the_store_records(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    tables = sandbox.store.tables
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle, page_size=25)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        before = dict(adapter.client.stats)
        report = sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        after = adapter.client.stats
        with sessions() as s:
            rows = s.scalars(select(OrderRow)).all()
        assert rows
        assert report.counts["orders_created"] == len(rows)
        countries: set[str | None] = set()
        for row in rows:
            store = tables["orders"][int(row.external_id or 0)]
            addr = tables["addresses"][int(store["id_address_delivery"])]
            cust = tables["customers"][int(store["id_customer"])]
            country = tables["countries"][int(addr["id_country"])]
            assert row.customer_name == f"{cust['firstname']} {cust['lastname']}"
            assert row.customer_email == cust["email"]
            ship = row.shipping_address
            for name in ("firstname", "lastname", "address1", "postcode", "city", "phone"):
                assert ship.get(name) == (addr[name] or None), (row.external_id, name)
            assert ship["country_iso"] == country["iso_code"] == row.ship_country
            assert ship["country"] == country["name"][1]
            if int(addr["id_state"]):
                assert ship["state"] == tables["states"][int(addr["id_state"])]["name"]
            assert row.invoice_address["external_id"] == int(store["id_address_invoice"])
            assert row.carrier == tables["carriers"][int(store["id_carrier"])]["name"]
            assert row.currency == "EUR"
            assert str(row.total_paid_tax_excl) == f"{float(store['total_paid_tax_excl']):.2f}"
            assert row.customer_phone == addr["phone"]
            countries.add(row.ship_country)
        assert {"US", "DK", "RU", "GR"} <= countries
        names = {r.customer_name for r in rows}
        assert any("Дмитрий" in (n or "") for n in names)
        assert any(n == "Zoë Ørsted" for n in names)
        # bulk: each related resource read once per page of orders (ids cached for the run)
        pages = report.counts.get("orders_seen", 0) // 25 + 1
        for resource in RELATED:
            calls = after[("GET", resource)] - before.get(("GET", resource), 0)
            assert 1 <= calls <= pages, (resource, calls, pages)
        for resource in PER_PAGE:
            calls = after[("GET", resource)] - before.get(("GET", resource), 0)
            assert pages - 1 <= calls <= pages, (resource, calls, pages)
        # messages only for the pages that have a thread; the one tax rate read once
        messages = after[("GET", "customer_messages")] - before.get(
            ("GET", "customer_messages"), 0
        )
        assert 1 <= messages <= pages
        assert after[("GET", "taxes")] - before.get(("GET", "taxes"), 0) == 1


def test_each_line_has_its_order_details_and_the_order_its_customer_message(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    """Tax rate, unit weight and EAN-13 from the store's order_details (the rate through
    its taxes), the checkout message from the order's customer_thread."""
    store = sandbox.store
    tables = store.tables
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle, page_size=25)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        with sessions() as s:
            rows = s.scalars(select(OrderRow)).all()
            lines = 0
            with_message = 0
            for row in rows:
                ext = int(row.external_id or 0)
                for line in row.lines:
                    detail = tables["order_details"][int(line.external_id or 0)]
                    assert int(detail["id_order"]) == ext
                    assert line.extra["weight"] == f"{Decimal(detail['product_weight']):f}"
                    assert line.extra["tax_rate"] == "20.000"
                    assert line.extra.get("ean13") == (detail["product_ean13"] or None)
                    lines += 1
                threads = [
                    t for t in tables["customer_threads"].values() if t["id_order"] == str(ext)
                ]
                texts = [
                    m["message"]
                    for t in threads
                    for m in tables["customer_messages"].values()
                    if m["id_customer_thread"] == str(t["id"])
                ]
                assert row.extra.get("customer_message") == ("\n\n".join(texts) or None)
                with_message += bool(texts)
                if int(row.extra.get("gift") or 0):
                    assert row.extra["gift_message"] == tables["orders"][ext]["gift_message"]
            assert lines > len(rows) // 2
            assert 0 < with_message < len(rows)
            assert any("Пожалуйста" in (r.extra.get("customer_message") or "") for r in rows)


@pytest.mark.slow
def test_an_address_edited_in_the_store_reaches_the_oms_on_the_changes_stream(
    db_url: str, sandbox: SandboxServer, bundle: Bundle
) -> None:
    tables = sandbox.store.tables
    with connected(db_url, sandbox, bundle) as (_engine, sessions):
        adapter = small_adapter(sandbox, bundle, page_size=25)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        with sessions() as s:
            row = s.scalars(select(OrderRow).order_by(OrderRow.id)).first()
            assert row is not None
            ext = int(row.external_id or 0)
        # the back office edits the delivery address: PrestaShop saves the order again
        address = int(tables["orders"][ext]["id_address_delivery"])
        tables["addresses"][address].update(city="Θεσσαλονίκη", postcode="546 21", id_country="9")
        tables["orders"][ext]["date_upd"] = sandbox.store.now()
        sandbox.store.touch("addresses", address)
        sandbox.store.touch("orders", ext)
        report = sync_orders(sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC))
        assert report.counts.get("orders_parties_updated", 0) >= 1
        with sessions() as s:
            fresh = s.get(OrderRow, row.id)
            assert fresh is not None
            assert fresh.shipping_address["city"] == "Θεσσαλονίκη"
            assert fresh.shipping_address["postcode"] == "546 21"
            assert fresh.ship_country == "GR"
        again = sync_orders(sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC))
        assert "orders_parties_updated" not in again.counts
