"""The sync, products and orders commands over a real sandbox and database: ``store connect``
runs the catalogue sync and the 90-day backfill by itself; re-runs change nothing; the read
models print one JSON document; a refused manual transition exits 1 with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import cli
from engine.runtime.db import session as dbsession
from engine.runtime.db.tables import AuditRow, OrderRow, ProductRow
from sandbox.server import SandboxServer, start_sandbox
from tests.runtime.sync.support import expected_catalog, expected_orders


@pytest.fixture(scope="module")
def big_sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=1000, orders=500, seed=3) as server:
        yield server


def _run(url: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(cli.omsflow, list(args), env={"OMSFLOW_DATABASE_URL": url})
    assert result.exit_code == code, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args and result.stdout.strip() else result


def _counts(url: str) -> tuple[int, int, int]:
    engine = dbsession.make_engine(url)
    try:
        with dbsession.session_factory(engine)() as s:
            return (
                int(s.scalar(select(func.count()).select_from(ProductRow)) or 0),
                int(s.scalar(select(func.count()).select_from(OrderRow)) or 0),
                int(s.scalar(select(func.count()).select_from(AuditRow)) or 0),
            )
    finally:
        engine.dispose()


@pytest.mark.slow
def test_connect_syncs_the_store_and_reruns_change_nothing(
    db_url: str, big_sandbox: SandboxServer
) -> None:
    now = datetime.now(UTC)
    doc = _run(
        db_url,
        "store",
        "connect",
        "--url",
        big_sandbox.url,
        "--key",
        big_sandbox.key,
        "--name",
        "main",
        "--json",
    )
    assert big_sandbox.key not in json.dumps(doc)
    catalog, orders = doc["sync"]
    expected = expected_catalog(big_sandbox)
    assert catalog["counts"]["products_created"] + catalog["counts"]["combinations_created"] == (
        len(expected)
    )
    listed = _run(db_url, "products", "list", "--json")["products"]
    assert {p["sku"] for p in listed} == set(expected)
    assert {p["sku"]: (p["parent_sku"], p["price"]) for p in listed} == {
        k: v[:2] for k, v in expected.items()
    }
    got = {o["external_id"] for o in _run(db_url, "orders", "list", "--json")["orders"]}
    assert got == expected_orders(big_sandbox, now)
    assert orders["counts"]["orders_created"] == len(got)

    before = _counts(db_url)
    again_catalog = _run(db_url, "sync", "catalog", "--store", "main", "--json")
    again_orders = _run(db_url, "sync", "orders", "--json")
    assert _counts(db_url) == before
    assert not [k for k in again_catalog["counts"] if k.endswith("_created")]
    assert "orders_created" not in again_orders["counts"]


@pytest.fixture
def small(db_url: str) -> Iterator[tuple[str, SandboxServer]]:
    with start_sandbox(products=30, orders=40, seed=9) as server:
        _run(
            db_url,
            "store",
            "connect",
            "--url",
            server.url,
            "--key",
            server.key,
            "--name",
            "main",
            "--json",
        )
        yield db_url, server


@pytest.mark.slow
def test_products_show_and_orders_show(small: tuple[str, SandboxServer]) -> None:
    url, server = small
    combo = next(iter(server.store.tables["combinations"].values()))
    doc = _run(url, "products", "show", combo["reference"], "--json")
    assert (
        doc["parent_sku"] == server.store.tables["products"][int(combo["id_product"])]["reference"]
    )
    assert set(doc) >= {
        "sku",
        "name",
        "price",
        "on_hand",
        "reserved",
        "available",
        "image_url",
        "brand",
        "categories",
        "store_ids",
    }
    assert doc["store_ids"]["main"]["combination_id"] == int(combo["id"])
    assert doc["available"] == doc["on_hand"] - doc["reserved"]
    orders = _run(url, "orders", "list", "--json")["orders"]
    new = next(o for o in orders if o["state"] == "New")
    shown = _run(url, "orders", "show", new["reference"], "--json")
    assert shown["lines"]
    assert shown["reservations"]
    assert [(h["trigger"], h["source"], h["applied"]) for h in shown["history"]] == [
        ("import", "channel", True)
    ]
    text = _run(url, "orders", "show", new["reference"])
    assert "history:" in text.output


@pytest.mark.slow
def test_orders_fire_applies_and_a_refusal_exits_1(small: tuple[str, SandboxServer]) -> None:
    url, _server = small
    orders = _run(url, "orders", "list", "--state", "New", "--json")["orders"]
    ref = orders[0]["reference"]
    ok = _run(url, "orders", "fire", ref, "release", "--json")
    assert ok["outcome"] == "applied"
    assert ok["state"] == "RFP"
    _run(url, "orders", "fire", ref, "pack")
    refused = _run(url, "orders", "fire", ref, "seller_cancel", code=1)
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "refused" in lines[0]
    shown = _run(url, "orders", "show", ref, "--json")
    assert shown["state"] == "Packed"
    assert [h["source"] for h in shown["history"]][-3:] == ["user", "user", "user"]
    assert shown["history"][-1]["applied"] is False
    assert _run(url, "orders", "list", "--attention", "--json")["orders"] == []
