"""``omsflow store connect`` / ``store list`` end to end: sandbox over loopback, SQLite in tmp."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from cli import omsflow
from sandbox.server import SandboxServer, start_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=5, orders=3, seed=2) as server:
        yield server


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'omsflow.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(omsflow, list(args), catch_exceptions=True)

    return invoke


def _listed(run) -> list:
    res = run("store", "list", "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["stores"]


def test_connect_saves_and_list_masks_the_key(sandbox, run) -> None:
    res = run("store", "connect", "--url", sandbox.url, "--key", sandbox.key, "--name", "demo")
    assert res.exit_code == 0, res.output
    assert sandbox.key not in res.output
    assert "connected store 'demo'" in res.stdout
    assert "labels will print the sender" not in res.stderr  # the shop has its address
    (store,) = _listed(run)
    assert store["name"] == "demo"
    assert store["key"].endswith(sandbox.key[-4:])
    assert sandbox.key not in json.dumps(store)
    assert store["state_ids"]["Payment accepted"] > 0
    res = run("store", "list")
    assert "demo" in res.stdout
    assert sandbox.key not in res.stdout


def _failing(run, *args: str):
    from pathlib import Path

    res = run("store", "connect", *args)
    assert res.exit_code != 0
    # nothing saved: a refused connect does not even create the database
    assert not Path("omsflow.db").exists() or _listed(run) == []
    return res


def test_wrong_key_fails_clearly_and_saves_nothing(sandbox, run) -> None:
    from cli import main

    # through main(): the one error boundary prints one line
    bad = "Z" * 32
    with pytest.raises(SystemExit) as info:
        main(["store", "connect", "--url", sandbox.url, "--key", bad])
    assert info.value.code == 77
    res = _failing(run, "--url", sandbox.url, "--key", bad)
    assert bad not in (res.output + str(res.exception))


def test_key_lacking_put_on_stock_fails_with_the_fix(sandbox, run, capsys) -> None:
    from cli import main
    from engine.runtime.channels.prestashop.connect import METHODS  # noqa: F401

    key = "NOSTOCKPUT" + "1" * 22
    from engine.runtime.specs import load_bundle

    # every permission the channel spec asks for, but PUT on stock_availables
    perms = {
        r: ["GET", "PUT", "POST", "DELETE", "HEAD"] for r in load_bundle().channel.permissions
    }
    perms["stock_availables"] = ["GET"]
    r = httpx.post(
        sandbox.url + "/__sandbox/keys",
        json={"key": key, "permissions": perms},
        auth=(sandbox.key, ""),
    )
    assert r.status_code < 300
    with pytest.raises(SystemExit) as info:
        main(["store", "connect", "--url", sandbox.url, "--key", key])
    assert info.value.code == 77
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: prestashop: key lacks PUT on stock_availables "
        "(fix: enable it in Advanced Parameters > Webservice)"
    ]
    _failing(run, "--url", sandbox.url, "--key", key)


def test_unreachable_url_fails_and_saves_nothing(run) -> None:
    res = _failing(run, "--url", "http://127.0.0.1:9", "--key", "Q" * 32)
    assert "Q" * 32 not in (res.output + str(res.exception))


def test_connect_says_when_labels_would_lack_a_sender_address(run) -> None:
    """A store whose contact form was never saved (a fresh PrestaShop install has no
    PS_SHOP_ADDR1/CODE/CITY/COUNTRY_ID rows) connects, with one warning line naming what
    the label's sender block will miss and where to set it."""
    with start_sandbox(products=3, orders=1, seed=4) as shop:
        for rec in shop.store.tables["configurations"].values():
            if rec["name"] in ("PS_SHOP_ADDR1", "PS_SHOP_CODE", "PS_SHOP_CITY"):
                rec["value"] = ""
            if rec["name"] == "PS_SHOP_COUNTRY_ID":
                rec["value"] = "0"
        res = run("store", "connect", "--url", shop.url, "--key", shop.key, "--no-sync")
    assert res.exit_code == 0, res.output
    warned = [ln for ln in res.stderr.splitlines() if "labels will print the sender" in ln]
    assert warned == [
        "warning: labels will print the sender without its street, postcode or city, "
        "country: the shop has no address (PrestaShop: Shop Parameters > Contact > Stores, "
        "the PS_SHOP_* settings) and the channel spec's fulfilment.ship_from sets none "
        "(fix: fill in either)"
    ]


def test_the_channel_spec_sender_fills_what_the_shop_lacks() -> None:
    from engine.runtime.effects.fulfilment import sender_gap, ship_from_of

    shop = {"name": "Shop", "address1": "", "postcode": "75007", "city": "Paris"}
    assert sender_gap(shop, None) == sender_gap(shop, {"address1": "  "})
    assert "without its street, country:" in (sender_gap(shop, None) or "")
    spec = {"address1": "1 quai Voltaire", "country_iso": "FR"}
    assert sender_gap(shop, spec) is None
    sender = ship_from_of(shop, spec)
    assert sender is not None
    assert sender.lines == ("1 quai Voltaire", "75007 Paris", "FR")
    assert ship_from_of({}, None) is None
