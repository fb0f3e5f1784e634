"""``stock_availables?filter[id_product]=[…]`` reads the store's per-product index instead of
scanning every row; the answer stays exactly the scan's, through POSTed, PUT and deleted rows."""

from __future__ import annotations

from defusedxml.ElementTree import fromstring as parse_xml

from sandbox import query
from sandbox.schema import RESOURCES
from sandbox.server import SandboxServer
from tests.sandbox.conftest import http

STOCK = RESOURCES["stock_availables"]
QUERIES = (
    {"filter[id_product]": "[1]"},
    {"filter[id_product]": "[1|2|3|99999]", "sort": "[quantity_DESC]"},
    {"filter[id_product]": "[2]", "filter[id_product_attribute]": "[0]"},
    {"filter[id_product]": "[1|2]", "limit": "1,3"},
    {"filter[id_product]": "[4]", "display": "full", "sort": "[id_ASC]"},
)


def _same_as_a_scan(server: SandboxServer) -> None:
    for params in QUERIES:
        q = query.parse_list_query(server.store, STOCK, params)
        assert q.stock_products is not None
        fast = [r["id"] for r in query.select(server.store, STOCK, q)]
        q.stock_products = None
        assert fast == [r["id"] for r in query.select(server.store, STOCK, q)], params


def test_the_filter_answers_as_a_scan_through_writes(fresh_shop: SandboxServer) -> None:
    _same_as_a_scan(fresh_shop)
    body = (
        "<prestashop><combination><id_product>1</id_product><minimal_quantity>1</minimal_quantity>"
        "<reference>IDX-REF</reference><price>1</price></combination></prestashop>"
    )
    with http(fresh_shop) as c:
        r = c.post("/api/combinations", content=body)
        assert r.status_code == 201
        cid = int(parse_xml(r.text)[0].findtext("id") or 0)
        _same_as_a_scan(fresh_shop)
        row = fresh_shop.store.stock_row(1, cid)
        assert row is not None
        # a full PUT moving the row to product 2 (odd, but the store allows it)
        fields = "".join(
            f"<{k}>{row[k] if k != 'id_product' else 2}</{k}>"
            for k in ("id", "id_product", "id_product_attribute", "id_shop", "id_shop_group")
        )
        put = (
            f"<prestashop><stock_available>{fields}<quantity>4</quantity>"
            "<depends_on_stock>0</depends_on_stock><out_of_stock>2</out_of_stock>"
            "</stock_available></prestashop>"
        )
        assert c.put("/api/stock_availables", content=put).status_code == 200
        _same_as_a_scan(fresh_shop)
        listed = c.get("/api/stock_availables", params={"filter[id_product]": "[2]"})
        ids = [int(e.get("id") or 0) for e in parse_xml(listed.text).iter("stock_available")]
        assert row["id"] in ids
        assert c.delete(f"/api/combinations/{cid}").status_code == 200
        _same_as_a_scan(fresh_shop)
