"""Auth, headers, queries and JSON rules of the sandbox, over real HTTP (WEBSERVICE.md 1-3)."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
from defusedxml.ElementTree import fromstring as parse_xml

from sandbox.server import SandboxServer

#: the four code-3 warnings a real 8.2.1 (PHP 8) adds to every refused list query
PHP8_WARNINGS = [3, 3, 3, 3]


def messages(r: httpx.Response) -> list[str]:
    return [e.findtext("message") or "" for e in parse_xml(r.text).iter("error")]


def codes(r: httpx.Response) -> list[int]:
    return [int(e.findtext("code") or 0) for e in parse_xml(r.text).iter("error")]


def ids(r: httpx.Response) -> list[int]:
    return [int(e.get("id") or 0) for e in parse_xml(r.text)[0]]


# ------------------------------------------------------------------------------ auth


def test_no_key_is_a_plain_text_401(shop: SandboxServer) -> None:
    r = httpx.get(shop.url + "/api/orders")
    assert r.status_code == 401
    assert r.text == "401 Unauthorized"
    assert r.headers["www-authenticate"].startswith(
        'Basic realm="Welcome to PrestaShop Webservice'
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [("SHORT", [18]), ("A" * 32, [20, 21]), ("   ", [17])],
)
def test_bad_keys_get_xml_errors(shop: SandboxServer, key: str, expected: list[int]) -> None:
    r = httpx.get(shop.url + "/api/orders", auth=(key, ""))
    assert r.status_code == 401
    assert codes(r) == expected
    assert "www-authenticate" in r.headers
    assert "content-sha1" not in r.headers


def test_ws_key_works_and_basic_wins(shop: SandboxServer) -> None:
    assert httpx.get(shop.url + "/api/orders", params={"ws_key": shop.key}).status_code == 200
    r = httpx.get(shop.url + "/api/orders", params={"ws_key": shop.key}, auth=("B" * 32, ""))
    assert r.status_code == 401


def test_dispatcher_form_answers_like_api(client: httpx.Client) -> None:
    a = client.get("/api/orders/3")
    b = client.get("/webservice/dispatcher.php", params={"url": "orders/3"})
    assert a.status_code == b.status_code == 200
    assert a.text == b.text


def test_permissions_per_resource_and_method(shop: SandboxServer) -> None:
    key = "K" * 32
    shop.add_key(key, {"orders": ["GET"], "stock_availables": ["GET", "PUT"]})
    with httpx.Client(base_url=shop.url, auth=(key, "")) as c:
        assert c.get("/api/orders").status_code == 200
        r = c.get("/api/products")
        assert (r.status_code, codes(r)) == (401, [26])
        r = c.head("/api/orders")  # HEAD is its own permission
        assert r.status_code == 405
        r = c.delete("/api/orders/1")
        assert (r.status_code, codes(r)) == (405, [25])
        root = parse_xml(c.get("/api/").text)[0]
        assert sorted(el.tag for el in root) == ["orders", "stock_availables"]
        assert root.find("stock_availables").get("put") == "true"  # type: ignore[union-attr]
        assert root.find("orders").get("put") == "false"  # type: ignore[union-attr]


def test_unknown_resource_and_forbidden_methods(client: httpx.Client) -> None:
    r = client.get("/api/ordres")
    assert (r.status_code, codes(r)) == (400, [27])
    assert 'Did you mean: "orders"' in r.text
    r = client.post("/api/stock_availables", content=b"<prestashop/>")
    assert (r.status_code, codes(r)) == (405, [101])
    r = client.delete("/api/stock_availables/1")
    assert (r.status_code, codes(r)) == (405, [101])


# ------------------------------------------------------------------------------ headers


def test_real_headers_on_a_body(client: httpx.Client) -> None:
    r = client.get("/api/orders/1")
    h = r.headers
    assert h["content-type"] == "text/xml;charset=utf-8"
    assert h["x-powered-by"] == "PrestaShop Webservice"
    assert h["psws-version"] == "8.2.1"
    assert h["access-time"].isdigit()
    assert re.fullmatch(r"0|\d+(\.\d{1,3})?", h["execution-time"])
    assert h["content-sha1"] == hashlib.sha1(r.content, usedforsecurity=False).hexdigest()
    r304 = client.get("/api/orders/1", headers={"Local-Content-Sha1": h["content-sha1"]})
    assert r304.status_code == 304
    assert r304.content == b""


def test_missing_id_is_an_empty_404_and_head_has_no_body(client: httpx.Client) -> None:
    r = client.get("/api/orders/999999")
    assert (r.status_code, r.content) == (404, b"")
    h = client.head("/api/orders/1")
    assert h.status_code == 200
    assert h.content == b""
    assert "content-sha1" in h.headers


# ------------------------------------------------------------------------------ queries


def test_filters(client: httpx.Client, shop: SandboxServer) -> None:
    orders = shop.store.tables["orders"]
    shipped = sorted(o for o, r in orders.items() if r["current_state"] == "4")
    r = client.get("/api/orders", params={"filter[current_state]": "[4]", "sort": "[id_ASC]"})
    assert ids(r) == shipped
    either = sorted(o for o, r in orders.items() if r["current_state"] in ("4", "5"))
    r = client.get("/api/orders", params={"filter[current_state]": "[4|5]", "sort": "[id_ASC]"})
    assert ids(r) == either
    r = client.get("/api/orders", params={"filter[id]": "[3,7]", "sort": "[id_ASC]"})
    assert ids(r) == [3, 4, 5, 6, 7]  # BETWEEN is inclusive
    r = client.get("/api/orders", params={"filter[id]": ">[37]", "sort": "[id_ASC]"})
    assert ids(r) == [38, 39, 40]
    r = client.get("/api/orders", params={"filter[id]": ">=[37]"})  # unknown operator: ignored
    assert len(ids(r)) == 40
    r = client.get("/api/orders", params={"filter[current_state]": "![4|5]"})
    assert set(ids(r)) == set(orders) - set(either)
    r = client.get("/api/products", params={"filter[reference]": "%[-00001]%", "sort": "[id_ASC]"})
    assert ids(r) == list(range(10, 20))
    r = client.get("/api/products", params={"filter[name]": "[Classic]%"})
    assert all(shop.store.tables["products"][i]["name"][1].startswith("Classic") for i in ids(r))
    assert ids(r)


def test_date_filters_need_date_1(client: httpx.Client, shop: SandboxServer) -> None:
    r = client.get("/api/orders", params={"filter[date_upd]": ">[2025-02-01 00:00:00]"})
    assert (r.status_code, codes(r)) == (500, [32, *PHP8_WARNINGS])
    r = client.get("/api/orders", params={"sort": "[date_upd_DESC]"})
    assert (r.status_code, codes(r)) == (500, [38, *PHP8_WARNINGS])
    r = client.get(
        "/api/orders",
        params={
            "date": "1",
            "filter[date_upd]": ">[2025-02-01 00:00:00]",
            "sort": "[date_upd_DESC]",
        },
    )
    assert r.status_code == 200
    got = ids(r)
    want = [
        o
        for o, rec in shop.store.tables["orders"].items()
        if rec["date_upd"] > "2025-02-01 00:00:00"
    ]
    assert sorted(got) == sorted(want)
    assert got
    dates = [shop.store.tables["orders"][o]["date_upd"] for o in got]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"filter[nope]": "1"}, 32),
        ({"filter[id]": ""}, 33),
        ({"filter[shipping_number]": "x"}, 34),
        ({"display": "[nope]"}, 35),
        ({"display": "id"}, 36),
        ({"sort": "[id]"}, 37),
        ({"sort": "[nope_ASC]"}, 38),
        ({"limit": "1,2,3"}, 39),
        ({"schema": "other"}, 28),
    ],
)
def test_query_errors(client: httpx.Client, params: dict[str, str], code: int) -> None:
    """A refused list query: the error, then the four PHP 8 warnings of
    ``getFilteredObjectList`` reading ``false`` as an array (status 500 on a real 8.2.1)."""
    r = client.get("/api/orders", params=params)
    assert (r.status_code, codes(r)) == (500, [code, *PHP8_WARNINGS])
    assert messages(r)[1].startswith(
        "[PHP Warning #2] Trying to access array offset on value of type bool ("
    )


def test_sort_and_limit_paginate(client: httpx.Client) -> None:
    pages = [
        ids(client.get("/api/orders", params={"sort": "[id_ASC]", "limit": f"{o},15"}))
        for o in (0, 15, 30)
    ]
    assert pages == [list(range(1, 16)), list(range(16, 31)), list(range(31, 41))]
    assert ids(client.get("/api/orders", params={"limit": "5", "sort": "[id_DESC]"})) == [
        40,
        39,
        38,
        37,
        36,
    ]
    assert ids(client.get("/api/orders", params={"limit": "0"})) == []


def test_display_lists(client: httpx.Client) -> None:
    r = client.get(
        "/api/orders",
        params={
            "display": "[id,current_state,order_rows[product_id]]",
            "limit": "2",
            "sort": "[id_ASC]",
        },
    )
    root = parse_xml(r.text)[0]
    first = root[0]
    assert [c.tag for c in first] == ["id", "current_state", "associations"]
    assert first.attrib == {}
    row = first.find("associations/order_rows/order_row")
    assert row is not None
    assert [c.tag for c in row] == ["product_id"]
    full = parse_xml(client.get("/api/orders", params={"display": "full", "limit": "1"}).text)[0][
        0
    ]
    assert full.find("associations/order_rows") is not None
    assert len(full) > 40


# ------------------------------------------------------------------------------ JSON


def test_json_rules(client: httpx.Client) -> None:
    assert client.get("/api/orders?output_format=JSON&limit=0").text == "[]"
    listing = client.get(
        "/api/orders", params={"limit": "2", "sort": "[id_ASC]"}, headers={"Output-Format": "JSON"}
    ).json()
    assert listing == {"orders": [{"id": 1}, {"id": 2}]}
    detail = client.get("/api/orders/1", headers={"Output-Format": "JSON"}).json()
    assert set(detail) == {"order"}
    assert detail["order"]["id"] == 1
    assert "gift" not in detail["order"]  # 8.x array_filter drops "0"
    plural = client.get(
        "/api/orders/1", params={"display": "full", "output_format": "JSON"}
    ).json()
    assert set(plural) == {"orders"}
    assert plural["orders"][0]["gift"] == "0"
    assert client.get("/api/orders/1?output_format=json").text.startswith(
        "<?xml"
    )  # case-sensitive
    product = client.get("/api/products/1?output_format=JSON").json()["product"]
    assert isinstance(product["name"], list)
    assert product["name"][0]["id"] == "1"  # language ids are strings (real 8.2.1)
    one = client.get("/api/products/1?output_format=JSON&display=[name]&language=1").json()
    assert isinstance(one["products"][0]["name"], str)
    err = client.get("/api/orders?output_format=JSON&filter[nope]=1")
    assert err.status_code == 500
    assert err.json()["errors"][0]["code"] == 32


def test_images(client: httpx.Client, shop: SandboxServer) -> None:
    listing = parse_xml(client.get("/api/images/products/1").text)[0]
    first = listing[0].get("id")
    png = client.get(f"/api/images/products/1/{first}")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    cover = shop.store.getter_value(
        "products", shop.store.tables["products"][1], "id_default_image"
    )
    assert (
        client.get("/api/images/products/1/bin").content
        == client.get(f"/api/images/products/1/{cover}").content
    )
    r = client.get("/api/images/products/1/999999")
    assert (r.status_code, codes(r)) == (400, [57])
    assert client.get(f"/api/images/products/1/{first}/nope_default").status_code == 400
