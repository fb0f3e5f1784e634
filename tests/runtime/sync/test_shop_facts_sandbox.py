"""The store's facts and clock against the sandbox over real HTTP: connect reads the shop's
time zone, languages, version and order-state keys; a shop east or west of UTC gives orders
whose ``ordered_at`` is their local ``date_add`` in UTC, and delta syncs that catch what was
edited; a changed PS_TIMEZONE is seen by the next sync; states renamed in French resolve by
PrestaShop's configuration keys; listing writes real products in every store language."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cli import omsflow
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.prestashop.connect import probe
from engine.runtime.channels.prestashop.shop import ShopFacts
from engine.runtime.db import stores
from engine.runtime.db.tables import OrderRow, ProductRow, SyncCursorRow
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.sync import sync_catalog, sync_orders
from sandbox.server import SandboxServer, start_sandbox

from .support import connected, small_adapter

NOW = datetime.now(UTC).replace(microsecond=0)
PS = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


def _shop(timezone: str) -> SandboxServer:
    return start_sandbox(products=25, orders=60, seed=4, now=NOW, timezone=timezone)


def _local_to_utc(text: str, zone: str) -> datetime:
    return datetime.strptime(text, PS).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'omsflow.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        res = runner.invoke(omsflow, list(args), catch_exceptions=True)
        assert res.exit_code == 0, res.output
        return res

    return invoke


# --------------------------------------------------------------------------- connect


def test_connect_reads_and_saves_the_stores_facts(run) -> None:
    with _shop("Asia/Tokyo") as shop:
        doc = json.loads(
            run(
                "store", "connect", "--url", shop.url, "--key", shop.key, "--no-sync", "--json"
            ).stdout
        )
        text = run("store", "connect", "--url", shop.url, "--key", shop.key, "--no-sync").stdout
        listed = json.loads(run("store", "list", "--json").stdout)["stores"]
        plain = run("store", "list").stdout
    probe_doc = doc["probe"]
    assert probe_doc["timezone"] == "Asia/Tokyo"
    assert [lang["iso_code"] for lang in probe_doc["languages"]] == ["en", "fr"]
    facts = probe_doc["facts"]
    assert facts["version"]
    assert facts["version"] == probe_doc["version"]
    assert facts["state_keys"]["PS_OS_SHIPPING"] == 4
    assert facts["state_keys"]["PS_OS_PAYMENT"] == 2
    assert facts["shop"]["name"] == "omsflow sandbox"
    assert facts["default_language_id"] == 1
    assert "shop clock: Asia/Tokyo; languages: en (1), fr (2)" in text
    (store,) = listed
    assert store["timezone"] == "Asia/Tokyo"
    assert store["languages"] == [{"id": 1, "iso_code": "en"}, {"id": 2, "iso_code": "fr"}]
    assert store["facts"]["state_keys"] == facts["state_keys"]
    assert "Asia/Tokyo\ten,fr" in plain


# --------------------------------------------------------------------------- dates


def _ordered_at(sessions: sessionmaker[Session]) -> dict[str, tuple[datetime, datetime | None]]:
    with sessions() as s:
        return {
            str(o.external_id): (o.ordered_at, o.channel_updated_at)
            for o in s.scalars(select(OrderRow))
        }


@pytest.mark.slow
def test_orders_of_a_shop_east_of_utc_are_ordered_at_their_local_date_in_utc(
    tmp_path: Path, bundle: Bundle
) -> None:
    # the same generated shop twice: its clock on UTC, and on Tokyo (the same instants,
    # written nine hours later on the wall): the OMS must see the same instants
    got: dict[str, dict[str, tuple[datetime, datetime | None]]] = {}
    for zone in ("UTC", "Asia/Tokyo"):
        with (
            _shop(zone) as shop,
            connected(
                f"sqlite:///{tmp_path / (zone.replace('/', '_') + '.db')}", shop, bundle
            ) as (_engine, sessions),
        ):
            adapter = small_adapter(shop, bundle, page_size=10)
            sync_catalog(sessions, bundle, "main", adapter=adapter)
            sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
            got[zone] = _ordered_at(sessions)
            with sessions() as s:
                saved = stores.get_store(s, "main")
            assert saved.timezone == zone  # the sync read the facts of a store saved without
            for oid, (ordered_at, updated) in got[zone].items():
                rec = shop.store.tables["orders"][int(oid)]
                assert ordered_at == _local_to_utc(rec["date_add"], zone), oid
                assert updated == _local_to_utc(rec["date_upd"], zone), oid
            adapter.close()
    assert got["UTC"]
    assert got["UTC"] == got["Asia/Tokyo"]
    tokyo = next(iter(got["Asia/Tokyo"]))
    assert got["Asia/Tokyo"][tokyo][0].utcoffset() == timedelta(0)


def test_a_delta_sync_catches_what_is_made_in_a_new_shop_west_of_utc(
    tmp_path: Path, bundle: Bundle
) -> None:
    # Honolulu is UTC-10: the shop writes "now" ten hours behind UTC's wall clock. A new,
    # empty shop gives the first sync no store date to go by: a cursor taken from the OMS's
    # UTC clock would sit ten hours ahead of every edit of the day and miss them all.
    with (
        start_sandbox(products=0, orders=0, timezone="Pacific/Honolulu") as shop,
        connected(f"sqlite:///{tmp_path / 'o.db'}", shop, bundle) as (_engine, sessions),
    ):
        adapter = small_adapter(shop, bundle, page_size=10)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        with sessions() as s:
            cursor = s.scalar(
                select(SyncCursorRow.value).where(SyncCursorRow.stream == "catalog.delta")
            )
        honolulu_now = datetime.now(ZoneInfo("Pacific/Honolulu")).strftime(PS)
        assert cursor is not None
        assert cursor < honolulu_now  # a shop-local text from the store's clock, not UTC's
        made = adapter.create_product(name="Aloha mug", reference="ALOHA-1", price="7")
        written = shop.store.tables["products"][made.id]["date_upd"]
        assert abs(_local_to_utc(written, "Pacific/Honolulu") - datetime.now(UTC)) < timedelta(
            minutes=2
        )  # the sandbox writes in the shop's clock
        report = sync_catalog(sessions, bundle, "main", adapter=adapter)
        assert report.mode == "delta"
        assert report.counts["products_created"] == 1
        adapter.set_price(made.id, Decimal("12.50"))  # a store-side edit
        again = sync_catalog(sessions, bundle, "main", adapter=adapter)
        assert again.mode == "delta"
        with sessions() as s:
            price = s.scalar(select(ProductRow.price).where(ProductRow.sku == "ALOHA-1"))
        assert price == Decimal("12.50")
        adapter.close()


def test_status_changes_in_a_shop_west_of_utc_are_caught_with_their_utc_time(
    tmp_path: Path, bundle: Bundle
) -> None:
    # Los Angeles (UTC-8/-7). The first sync finds no order in an imported status, so only
    # the store's clock can place the status-changes cursor; an order paid and then
    # canceled later that day must still come in, canceled, with its UTC time.
    with (
        _shop("America/Los_Angeles") as shop,
        connected(f"sqlite:///{tmp_path / 'o.db'}", shop, bundle) as (_engine, sessions),
    ):
        orders = shop.store.tables["orders"]
        for rec in orders.values():
            rec["current_state"] = "1"  # awaiting check payment: not imported
        adapter = small_adapter(shop, bundle, page_size=10)
        sync_catalog(sessions, bundle, "main", adapter=adapter)
        first = sync_orders(sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC))
        assert "orders_created" not in first.counts
        oid = max(orders)
        adapter.set_order_state(oid, 2)  # paid, in the store
        paid = sync_orders(sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC))
        assert paid.counts["orders_created"] == 1
        adapter.set_order_state(oid, 6)  # canceled by the buyer, in the store
        report = sync_orders(sessions, bundle, "main", adapter=adapter, now=datetime.now(UTC))
        assert report.counts["changes_applied"] == 1
        with sessions() as s:
            row = s.scalars(select(OrderRow).where(OrderRow.external_id == str(oid))).one()
            assert row.state in {"Cancel_in_Process", "Canceled"}
            assert row.channel_state_id == 6
            assert row.channel_updated_at is not None
            assert abs(row.channel_updated_at - datetime.now(UTC)) < timedelta(minutes=2)
            assert row.ordered_at == _local_to_utc(orders[oid]["date_add"], "America/Los_Angeles")
            cursor = s.scalar(
                select(SyncCursorRow.value).where(SyncCursorRow.stream == "orders.changed")
            )
        shop_now = datetime.now(ZoneInfo("America/Los_Angeles"))
        assert cursor is not None  # a shop-local text, an overlap behind the store's clock
        assert (shop_now - timedelta(hours=3)).strftime(PS) < cursor < shop_now.strftime(PS)
        adapter.close()


@pytest.mark.slow
def test_a_changed_shop_clock_is_seen_by_the_next_sync(tmp_path: Path, bundle: Bundle) -> None:
    with (
        _shop("Europe/Paris") as shop,
        connected(f"sqlite:///{tmp_path / 'o.db'}", shop, bundle) as (_engine, sessions),
    ):
        adapter = small_adapter(shop, bundle, page_size=10)
        first = sync_catalog(sessions, bundle, "main", adapter=adapter)
        assert "timezone_changed" not in first.counts
        shop.store.set_timezone("America/Los_Angeles")  # the merchant moves the shop
        report = sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        assert report.counts["timezone_changed"] == 1
        with sessions() as s:
            assert stores.get_store(s, "main").timezone == "America/Los_Angeles"
        again = sync_orders(sessions, bundle, "main", adapter=adapter, now=NOW)
        assert "timezone_changed" not in again.counts
        adapter.close()


# --------------------------------------------------------------------------- order states


FRENCH = {
    1: "En attente du paiement par chèque",
    2: "Paiement accepté",
    3: "En cours de préparation",
    4: "Expédié",
    5: "Livré",
    6: "Annulé",
    7: "Payment accepted",  # a decoy: the store's Refunded state now bears that name
}


def test_states_renamed_in_french_resolve_by_their_configuration_keys(bundle: Bundle) -> None:
    with start_sandbox(products=3, orders=2, seed=1) as shop:
        for sid, name in FRENCH.items():
            shop.store.tables["order_states"][sid]["name"] = {1: name, 2: name}
            shop.store.touch("order_states", sid)
        report = probe(shop.url, shop.key, bundle.channel)
        assert not report.missing_states
        assert report.state_ids == {
            "Payment accepted": 2,
            "Processing in progress": 3,
            "Shipped": 4,
            "Delivered": 5,
            "Canceled": 6,
        }
        with PrestaShopAdapter.from_channel(shop.url, shop.key, bundle.channel) as a:
            found, missing = a.resolve_states(
                ["PS_OS_SHIPPING", "Livré", "Annulé", "PS_OS_NOT_THERE", "Teleported"]
            )
        assert found == {"PS_OS_SHIPPING": 4, "Livré": 5, "Annulé": 6}
        assert missing == ["PS_OS_NOT_THERE", "Teleported"]


def test_a_name_in_any_store_language_is_the_fallback(bundle: Bundle) -> None:
    with start_sandbox(products=3, orders=2, seed=1) as shop:
        shop.store.tables["order_states"][13]["name"] = {1: "Pickup ready", 2: "Prêt à retirer"}
        shop.store.touch("order_states", 13)
        channel = SimpleNamespace(
            permissions=bundle.channel.permissions,
            status_map=SimpleNamespace(
                outbound={"Ready_to_Ship": "Prêt à retirer"},
                inbound={"PS_OS_SHIPPING": {}},
                imported=("PS_OS_SHIPPING",),
            ),
        )
        report = probe(shop.url, shop.key, channel)
    assert report.state_ids == {"Prêt à retirer": 13, "PS_OS_SHIPPING": 4}


# --------------------------------------------------------------------------- listing


def test_listing_writes_real_products_in_every_store_language(run) -> None:
    with start_sandbox(products=3, orders=2, seed=1, languages=3) as shop:
        run("store", "connect", "--url", shop.url, "--key", shop.key, "--no-sync")
        run("products", "create", "--sku", "FACT-1", "--name", "Café mug", "--price", "9.50",
            "--stock", "4")  # fmt: skip
        (rec,) = [p for p in shop.store.tables["products"].values() if p["reference"] == "FACT-1"]
        assert rec["name"] == {1: "Café mug", 2: "Café mug", 3: "Café mug"}
        assert rec["link_rewrite"] == {1: "cafe-mug", 2: "cafe-mug", 3: "cafe-mug"}
        assert rec["state"] == "1"
        assert rec["active"] == "1"
        # an older store (1.7) gets neither state nor product_type
        old = ShopFacts.from_json({"version": "1.7.8.11", "languages": [{"id": 1}, {"id": 2}]})
        with PrestaShopAdapter.from_channel(shop.url, shop.key, load_bundle().channel) as a:
            a.facts = old
            made = a.create_product(name="Old mug", reference="FACT-OLD", price="3")
        rec = shop.store.tables["products"][made.id]
        assert rec["state"] == "0"
        assert rec["name"][1] == rec["name"][2] == "Old mug"
