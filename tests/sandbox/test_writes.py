# ruff: noqa: E501  (literal XML bodies and query strings read best on one line)
"""Write semantics of the sandbox (WEBSERVICE.md 5 and 6): PUT/PATCH/POST/DELETE, side effects."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import httpx
from defusedxml.ElementTree import fromstring as parse_xml

from sandbox.server import SandboxServer
from tests.sandbox.conftest import http

T = "2025-03-02 09:30:00"  # the fixed clock of the fixtures


def codes(r: httpx.Response) -> list[int]:
    return [int(e.findtext("code") or 0) for e in parse_xml(r.text).iter("error")]


def full_put_body(xml: str, drop: tuple[str, ...] = ()) -> str:
    """A GET answer turned into a PUT body: read-only fields (and ``drop``) removed."""
    root = parse_xml(xml)
    ent = root[0]
    for child in list(ent):
        if (
            child.get("notFilterable") == "true" and child.tag in ("manufacturer_name", "quantity")
        ) or child.tag in drop:
            ent.remove(child)
    return ET.tostring(root, encoding="unicode")


def test_order_history_post_moves_the_order(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    oid = next(o for o, r in store.tables["orders"].items() if r["current_state"] == "2")
    before = len(store.histories_of(oid))
    body = f"<prestashop><order_history><id_order>{oid}</id_order><id_order_state>3</id_order_state></order_history></prestashop>"
    with http(fresh_shop) as c:
        r = c.post("/api/order_histories", params={"sendemail": "1"}, content=body)
    assert r.status_code == 201
    ent = parse_xml(r.text)[0]
    assert ent.tag == "order_history"
    assert ent.findtext("id_order_state") == "3"
    assert ent.findtext("date_add") == T
    assert ent.findtext("id")
    assert store.order_state(oid) == 3
    assert store.tables["orders"][oid]["date_upd"] == T
    assert len(store.histories_of(oid)) == before + 1
    with http(fresh_shop) as c:
        stats = c.get("/__sandbox/stats").json()
    assert stats["emails_sent"] == [{"id_order": oid, "id_order_state": 3}]


def test_put_replaces_the_whole_object(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    with http(fresh_shop) as c:
        oc = c.get("/api/order_carriers/1").text
        body = full_put_body(oc).replace("<tracking_number><![CDATA[]]></tracking_number>", "")
        root = parse_xml(full_put_body(oc))
        root[0].find("tracking_number").text = "TRK-1"  # type: ignore[union-attr]
        r = c.put("/api/order_carriers", content=ET.tostring(root))  # id from the body
        assert r.status_code == 200
        assert store.tables["order_carriers"][1]["tracking_number"] == "TRK-1"
        assert parse_xml(c.get("/api/orders/1").text)[0].findtext("shipping_number") == "TRK-1"
        # a partial PUT nulls what it leaves out (weight, costs) and refills date_add
        partial = "<prestashop><order_carrier><id>1</id><id_order>1</id_order><id_carrier>2</id_carrier><tracking_number>X</tracking_number></order_carrier></prestashop>"
        r = c.put("/api/order_carriers/1", content=partial)
        assert r.status_code == 200
        rec = store.tables["order_carriers"][1]
        assert (rec["shipping_cost_tax_incl"], rec["weight"], rec["date_add"]) == (
            "0.000000",
            "0.000000",
            T,
        )
        assert body  # (kept for readability)


def test_put_errors(fresh_shop: SandboxServer) -> None:
    with http(fresh_shop) as c:
        prod = c.get("/api/products/1").text
        r = c.put("/api/products/1", content=prod)  # manufacturer_name / quantity are read-only
        assert (r.status_code, codes(r)) == (400, [93])
        r = c.put(
            "/api/stock_availables",
            content="<prestashop><stock_available><quantity>3</quantity></stock_available></prestashop>",
        )
        assert (r.status_code, codes(r)) == (400, [90])
        r = c.put(
            "/api/stock_availables",
            content="<prestashop><stock_available><id>999999</id><id_product>1</id_product><id_product_attribute>0</id_product_attribute><quantity>3</quantity><depends_on_stock>0</depends_on_stock><out_of_stock>2</out_of_stock></stock_available></prestashop>",
        )
        assert (r.status_code, codes(r)) == (404, [92])
        r = c.put(
            "/api/stock_availables",
            content="<prestashop><stock_available><id>1</id><quantity>3</quantity></stock_available></prestashop>",
        )
        assert (r.status_code, codes(r)) == (400, [41])
        r = c.post(
            "/api/manufacturers",
            content="<prestashop><manufacturer><id>4</id><name>x</name></manufacturer></prestashop>",
        )
        assert (r.status_code, codes(r)) == (400, [91])
        r = c.post("/api/order_histories", content="<prestashop><order_history>")
        assert (r.status_code, codes(r)) == (500, [127])
        assert "XML error" in r.text
        assert "Original XML" in r.text
        r = c.post("/api/order_histories", content=b"")
        assert (r.status_code, codes(r)) == (500, [127])
        bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><prestashop><x>&b;</x></prestashop>'
        r = c.post("/api/manufacturers", content=bomb)
        assert (r.status_code, codes(r)) == (500, [127])


def test_stock_put_on_a_combination_recomputes_the_product(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    pid = next(p for p in sorted(store.tables["products"]) if store.combinations_of(p))
    combos = store.combinations_of(pid)
    row = store.stock_row(pid, combos[0])
    assert row is not None
    with http(fresh_shop) as c:
        root = parse_xml(c.get(f"/api/stock_availables/{row['id']}").text)
        root[0].find("quantity").text = "77"  # type: ignore[union-attr]
        r = c.put("/api/stock_availables", content=ET.tostring(root))
    assert r.status_code == 200
    assert store.stock_of(pid, combos[0]) == 77
    assert store.stock_of(pid) == sum(store.stock_of(pid, k) for k in combos)
    # PATCH (8.x): only the fields present change
    simple = next(p for p in sorted(store.tables["products"]) if not store.combinations_of(p))
    srow = store.stock_row(simple)
    assert srow is not None
    with http(fresh_shop) as c:
        r = c.patch(
            "/api/stock_availables",
            content=f"<prestashop><stock_available><id>{srow['id']}</id><quantity>5</quantity></stock_available></prestashop>",
        )
    assert r.status_code == 200
    assert store.stock_of(simple) == 5
    assert store.tables["stock_availables"][srow["id"]]["id_shop"] == "1"
    store.tables["stock_availables"][srow["id"]]["depends_on_stock"] = "1"  # advanced stock
    with http(fresh_shop) as c:
        r = c.patch(
            "/api/stock_availables",
            content=f"<prestashop><stock_available><id>{srow['id']}</id><quantity>9</quantity></stock_available></prestashop>",
        )
    assert (r.status_code, codes(r)) == (500, [133])
    assert store.stock_of(simple) == 5


def test_post_and_delete(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    body = (
        "<prestashop><combination><id_product>1</id_product><minimal_quantity>1</minimal_quantity>"
        "<reference>NEW-REF</reference><price>2.5</price><associations><product_option_values>"
        "<product_option_value><id>1</id></product_option_value></product_option_values>"
        "</associations></combination></prestashop>"
    )
    with http(fresh_shop) as c:
        r = c.post("/api/combinations", content=body)
        assert r.status_code == 201
        cid = int(parse_xml(r.text)[0].findtext("id") or 0)
        assert parse_xml(r.text)[0].findtext("price") == "2.500000"
        assert cid in store.combinations_of(1)
        assert store.stock_of(1, cid) == 0
        prod = parse_xml(c.get("/api/products/1").text)[0]
        assert str(cid) in [
            e.text for e in prod.iterfind("associations/combinations/combination/id")
        ]
        r = c.delete(f"/api/combinations/{cid}")
        assert (r.status_code, r.content) == (200, b"")
        assert c.get(f"/api/combinations/{cid}").status_code == 404
        r = c.delete("/api/manufacturers", params={"id": "[1,99999]"})
        assert (r.status_code, codes(r)) == (404, [87])
        assert 1 in store.tables["manufacturers"]
