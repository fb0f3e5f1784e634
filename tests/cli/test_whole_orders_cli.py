"""Issue 12 through the command line, over HTTP to the sandbox: ``orders show`` (and
``--json``) gives the customer, both addresses, carrier, currency and totals as the store
has them; ``orders list`` filters by country, carrier and date range; the run's logs carry
no address, e-mail or phone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import omsflow
from engine.errors import ConfigError
from engine.runtime.db import session as dbsession
from sandbox.server import SandboxServer, start_sandbox


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(omsflow, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result


def as_json(*args: str) -> Any:
    return json.loads(run(*args, "--json").stdout)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=12, orders=60, seed=7) as server:
        yield server


@pytest.fixture
def connected(
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> SandboxServer:
    url = f"sqlite:///{tmp_path / 'omsflow.db'}"
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", url)
    dbsession.ensure_schema(url)
    caplog.set_level(logging.DEBUG)
    run("store", "connect", "--url", sandbox.url, "--key", sandbox.key, "--name", "main")
    return sandbox


@pytest.mark.slow
def test_orders_show_gives_customer_addresses_carrier_currency_and_totals(
    connected: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    tables = connected.store.tables
    orders = as_json("orders", "list")["orders"]
    assert orders
    secrets: set[str] = set()
    for o in orders:
        doc = as_json("orders", "show", o["reference"])
        store = tables["orders"][int(o["external_id"])]
        addr = tables["addresses"][int(store["id_address_delivery"])]
        cust = tables["customers"][int(store["id_customer"])]
        assert doc["customer"]["name"] == f"{cust['firstname']} {cust['lastname']}"
        assert doc["customer"]["email"] == cust["email"]
        ship = doc["shipping_address"]
        for name in ("address1", "postcode", "city", "phone"):
            assert ship[name] == addr[name]
        assert ship["country_iso"] == tables["countries"][int(addr["id_country"])]["iso_code"]
        assert doc["carrier"] == tables["carriers"][int(store["id_carrier"])]["name"]
        assert doc["currency"] == "EUR"
        assert doc["totals"]["paid_tax_excl"] == f"{float(store['total_paid_tax_excl']):.2f}"
        assert o["country"] == ship["country_iso"]
        for line in doc["lines"]:  # tax rate, unit weight and EAN-13 from order_details
            detail = tables["order_details"][int(line["external_id"])]
            assert line["weight"] == f"{Decimal(detail['product_weight']):f}"
            assert line["tax_rate"] == "20.000"
            assert line["ean13"] == (detail["product_ean13"] or None)
            assert "weight" not in line["extra"]
        threads = [
            t["id"]
            for t in tables["customer_threads"].values()
            if t["id_order"] == o["external_id"]
        ]
        said = [
            m["message"]
            for m in tables["customer_messages"].values()
            if int(m["id_customer_thread"]) in threads
        ]
        assert doc["extra"].get("customer_message") == ("\n\n".join(said) or None)
        if store["gift"] == "1":
            assert doc["extra"]["gift_message"] == store["gift_message"]
        secrets |= {
            cust["email"],
            addr["phone"],
            addr["address1"],
            f"{addr['postcode']} {addr['city']}",
        }
        secrets |= set(said)
    one = orders[0]
    human = run("orders", "show", one["reference"]).stdout
    assert "customer: " in human
    assert "ship to: " in human
    assert "carrier: " in human
    assert "\tweight " in human
    assert "\ttax 20 %" in human  # 20.000 as a person writes it
    weights = [w.split(" kg")[0] for w in human.split("\tweight ")[1:]]
    assert weights
    assert not [w for w in weights if "." in w and w.endswith("0")]  # not 0.300000
    wrote = next(
        o
        for o in orders
        if as_json("orders", "show", o["reference"])["extra"].get("customer_message")
    )
    shown = run("orders", "show", wrote["reference"]).stdout
    assert "customer_message: " in shown
    gift = next(o for o in orders if tables["orders"][int(o["external_id"])]["gift"] == "1")
    assert "gift_message: Happy birthday!" in run("orders", "show", gift["reference"]).stdout
    # nothing personal in the logs of the whole run (connect, backfill, show)
    records = [*caplog.get_records("setup"), *caplog.records]
    logged = "\n".join(r.getMessage() for r in records)
    assert logged  # the run did log
    assert not [s for s in secrets if s and s in logged]


@pytest.mark.slow
def test_orders_list_filters_by_country_carrier_and_dates(connected: SandboxServer) -> None:
    orders = as_json("orders", "list")["orders"]
    by_country: dict[str, int] = {}
    for o in orders:
        by_country[o["country"]] = by_country.get(o["country"], 0) + 1
    assert len(by_country) >= 3
    for country, n in by_country.items():
        picked = as_json("orders", "list", "--country", country.lower())["orders"]
        assert len(picked) == n
        assert {p["country"] for p in picked} == {country}
    carrier = orders[0]["carrier"]
    picked = as_json("orders", "list", "--carrier", carrier.upper())["orders"]
    assert picked
    assert len(picked) == sum(1 for o in orders if o["carrier"] == carrier)
    middle = sorted(o["ordered_at"] for o in orders)[len(orders) // 2]
    early = as_json("orders", "list", "--until", middle)["orders"]
    late = as_json("orders", "list", "--since", middle)["orders"]
    assert len(early) + len(late) == len(orders)
    assert all(o["ordered_at"] < middle for o in early)
    for wrong in ("ZZZ", "F", "1A", "ÉS"):  # not two ASCII letters: said, not 0 orders
        said = run("orders", "list", "--country", wrong, code=1)
        assert isinstance(said.exception, ConfigError)
        assert f"--country {wrong!r}: expected a two-letter ISO 3166" in str(said.exception)
    bad = run("orders", "list", "--since", "yesterday", code=1)
    assert isinstance(bad.exception, ConfigError)  # main() prints it as one error: line
    assert "--since 'yesterday'" in str(bad.exception)
