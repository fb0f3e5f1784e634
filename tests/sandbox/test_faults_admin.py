# ruff: noqa: E501  (literal XML bodies and query strings read best on one line)
"""Fault switches, stats, the keys endpoint, persistence, and deterministic generation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest
from defusedxml.ElementTree import fromstring as parse_xml

from sandbox.server import SandboxServer, start_sandbox
from sandbox.store import ORDER_STATES, SandboxStore
from tests.sandbox.conftest import NOW, http

STOCK_PATCH = "<prestashop><stock_available><id>{id}</id><quantity>{q}</quantity></stock_available></prestashop>"


def test_admin_endpoints_need_the_main_key(fresh_shop: SandboxServer) -> None:
    for path in ("/__sandbox/stats", "/__sandbox/faults"):
        assert httpx.get(fresh_shop.url + path).status_code == 401
        assert httpx.get(fresh_shop.url + path, auth=("Z" * 32, "")).status_code == 401
        assert (
            httpx.get(fresh_shop.url + path, params={"ws_key": fresh_shop.key}).status_code == 200
        )


def test_stats_count_requests_per_resource_and_method(fresh_shop: SandboxServer) -> None:
    with http(fresh_shop) as c:
        c.get("/api/orders")
        c.get("/api/orders/1")
        c.head("/api/products")
        stats = c.get("/__sandbox/stats").json()
    assert stats["requests"]["orders"] == {"GET": 2}
    assert stats["requests"]["products"] == {"HEAD": 1}
    assert stats["total"] == 3


def test_errors_and_timeouts_change_nothing(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    sid = store.stock_index[(1, 0)]
    before = store.stock_of(1)
    with http(fresh_shop, timeout=0.3) as c:
        assert c.post("/__sandbox/faults", json={"error_rate": 1}).json()["error_rate"] == 1.0
        r = c.patch("/api/stock_availables", content=STOCK_PATCH.format(id=sid, q=before + 9))
        assert r.status_code == 500
        c.post("/__sandbox/faults", json={"error_rate": 0, "timeout_rate": 1})
        with pytest.raises(httpx.TimeoutException):
            c.patch("/api/stock_availables", content=STOCK_PATCH.format(id=sid, q=before + 9))
        c.post("/__sandbox/faults", json={"timeout_rate": 0})
    assert store.stock_of(1) == before


def test_lost_after_commit_applies_the_write(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    sid = store.stock_index[(1, 0)]
    fresh_shop.faults.update({"lost_after_commit_rate": 1})
    outcomes = set()
    with http(fresh_shop) as c:
        for q in range(1, 9):
            try:
                r = c.patch("/api/stock_availables", content=STOCK_PATCH.format(id=sid, q=q))
                outcomes.add(r.status_code)
            except httpx.TransportError:
                outcomes.add("dropped")
            assert store.stock_of(1) == q  # committed whatever the client saw
    assert outcomes == {500, "dropped"}
    fresh_shop.faults.update({"lost_after_commit_rate": 0})


def test_malformed_bodies_and_bad_switches(fresh_shop: SandboxServer) -> None:
    from xml.etree import ElementTree as ET

    with http(fresh_shop) as c:
        c.post("/__sandbox/faults", json={"malformed_rate": 1})
        r = c.get("/api/orders/1")
        with pytest.raises(ET.ParseError):
            parse_xml(r.content)
        c.post("/__sandbox/faults", json={"malformed_rate": 0})
        assert c.post("/__sandbox/faults", json={"error_rate": 2}).status_code == 400
        assert c.post("/__sandbox/faults", json={"nope": 1}).status_code == 400
        assert c.get("/__sandbox/faults").json()["error_rate"] == 0


def test_keys_endpoint_grants_exactly_what_it_says(fresh_shop: SandboxServer) -> None:
    key = "READONLYKEY0000000000000000000AB"
    with http(fresh_shop) as c:
        r = c.post(
            "/__sandbox/keys", json={"key": key, "permissions": {"stock_availables": ["GET"]}}
        )
        assert r.status_code == 201
        assert (
            c.post("/__sandbox/keys", json={"key": "short", "permissions": {}}).status_code == 400
        )
    with httpx.Client(base_url=fresh_shop.url, auth=(key, "")) as k:
        assert k.get("/api/stock_availables/1").status_code == 200
        assert (
            k.put("/api/stock_availables", content=STOCK_PATCH.format(id=1, q=1)).status_code
            == 405
        )
        assert k.get("/api/orders").status_code == 401
        assert k.get("/__sandbox/stats").status_code == 401


def test_data_file_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "shop.json"
    with start_sandbox(products=10, orders=5, seed=2, now=NOW, data=data) as first:
        sid = first.store.stock_index[(2, 0)]
        with http(first) as c:
            assert (
                c.patch(
                    "/api/stock_availables", content=STOCK_PATCH.format(id=sid, q=4321)
                ).status_code
                == 200
            )
            c.post(
                "/api/order_histories",
                content="<prestashop><order_history><id_order>1</id_order>"
                "<id_order_state>6</id_order_state></order_history></prestashop>",
            )
    with start_sandbox(products=999, orders=999, data=data) as second:  # loaded, not generated
        assert len(second.store.tables["products"]) == 10
        assert second.store.stock_of(2) == 4321
        assert second.store.order_state(1) == 6
        with http(second) as c:
            assert "4321" in c.get(f"/api/stock_availables/{sid}").text


def test_generation_is_deterministic_and_realistic() -> None:
    a = SandboxStore.generate(products=300, orders=400, seed=9, now=datetime(2025, 1, 1))
    b = SandboxStore.generate(products=300, orders=400, seed=9, now=datetime(2025, 1, 1))
    assert a.to_json() == b.to_json()
    products = a.tables["products"]
    with_combos = [p for p in products if a.combinations_of(p)]
    assert 0.3 <= len(with_combos) / len(products) <= 0.5
    assert all(2 <= len(a.combinations_of(p)) <= 4 for p in with_combos)
    refs = [r["reference"] for r in products.values()]
    assert len(refs) == len(set(refs))  # products have their own references
    combos = list(a.tables["combinations"].values())
    repeated = [c for c in combos if c["reference"] == products[int(c["id_product"])]["reference"]]
    missing = [c for c in combos if not c["reference"]]
    own = [c for c in combos if c not in repeated and c not in missing]
    # the shapes real stores have, by default: repeated references and none at all
    assert repeated
    assert missing
    assert len({c["reference"] for c in own}) == len(own)
    for p in with_combos:
        assert a.stock_of(p) == sum(a.stock_of(p, c) for c in a.combinations_of(p))
    assert set(ORDER_STATES) == set(a.tables["order_states"])
    assert a.tables["order_states"][5]["name"][1] == "Delivered"
    states = {int(o["current_state"]) for o in a.tables["orders"].values()}
    assert {2, 3, 4, 5, 6} <= states
    assert states & {7, 8, 10}
    dates = [o["date_add"] for o in a.tables["orders"].values()]
    assert min(dates) >= "2024-09-03"
    assert max(dates) <= "2025-01-01 00:00:00"
    for oid, o in a.tables["orders"].items():
        assert o["date_add"] <= o["date_upd"]
        hist = a.histories_of(oid)
        assert hist
        assert hist[-1]["id_order_state"] == o["current_state"]
        assert len(a.carriers_by_order[oid]) == 1
        for row in o["associations"]["order_rows"]:
            pid, cid = int(row["product_id"]), int(row["product_attribute_id"])
            assert pid in products
            assert cid == 0 or cid in a.combinations_of(pid)


def test_stats_report_the_most_requests_in_flight_and_per_second_and_reset(
    fresh_shop: SandboxServer,
) -> None:
    """``traffic``: the store's own view of how hard it is used; ``POST .../reset`` zeroes it."""
    from concurrent.futures import ThreadPoolExecutor

    fresh_shop.faults.update({"latency_ms": 300})
    with http(fresh_shop) as c, ThreadPoolExecutor(6) as pool:
        assert c.post("/__sandbox/stats/reset").json()["traffic"]["total"] == 0
        codes = list(pool.map(lambda _: c.get("/api/orders/1").status_code, range(6)))
        fresh_shop.faults.update({"latency_ms": 0})
        c.get("/api/orders/2")
        traffic = c.get("/__sandbox/stats").json()["traffic"]
        assert codes == [200] * 6
        assert traffic["total"] == 7
        assert traffic["in_flight"] == 0
        assert traffic["max_in_flight"] == 6  # the /__sandbox calls are not counted
        assert traffic["max_per_window"] == 7
        assert traffic["window_seconds"] == 1.0
        reset = c.post("/__sandbox/stats/reset").json()
    assert reset["total"] == 0
    assert reset["traffic"]["max_in_flight"] == 0
    assert reset["traffic"]["max_per_window"] == 0
    assert httpx.post(fresh_shop.url + "/__sandbox/stats/reset").status_code == 401
