# ruff: noqa: E501  (literal XML bodies and query strings read best on one line)
"""Fidelity audit of the sandbox against WEBSERVICE.md sections 1-5, 8 and 9, over real HTTP.

Each test names the checklist item it proves; where a doubt was settled from PrestaShop's own
source the file is cited (PrestaShop/PrestaShop ``classes/webservice/WebserviceRequest.php``:
``authenticate``, ``checkResource``, ``checkHTTPMethod``, ``setFieldsToDisplay``,
``manageFilters``, ``saveEntityFromXml``, ``returnOutput``; ``classes/order/OrderHistory.php``:
``addWs``; ``webservice/dispatcher.php``: the 304 of 8.x).
"""

from __future__ import annotations

import hashlib
import re
from xml.etree import ElementTree as ET

import httpx
import pytest
from defusedxml.ElementTree import fromstring as parse_xml

from sandbox.server import SandboxServer
from tests.sandbox.conftest import http

T = "2025-03-02 09:30:00"  # the fixed write clock of the fixtures


def codes(r: httpx.Response) -> list[int]:
    return [int(e.findtext("code") or 0) for e in parse_xml(r.text).iter("error")]


def messages(r: httpx.Response) -> list[str]:
    return [e.findtext("message") or "" for e in parse_xml(r.text).iter("error")]


def ids(r: httpx.Response) -> list[int]:
    return [int(e.get("id") or 0) for e in parse_xml(r.text)[0]]


def put_body(xml: str, drop: tuple[str, ...] = ()) -> str:
    """A GET answer as a PUT body: read-only fields and ``drop`` removed."""
    root = parse_xml(xml)
    ent = root[0]
    for child in list(ent):
        if child.tag in ("manufacturer_name", "quantity", "nb_products_recursive", *drop):
            ent.remove(child)
    return ET.tostring(root, encoding="unicode")


# ---------------------------------------------------------------------- 1.1 routes


def test_trailing_slashes_and_the_bare_api_path(client: httpx.Client) -> None:
    assert ids(client.get("/api/orders/", params={"sort": "[id_ASC]", "limit": "3"})) == [1, 2, 3]
    a, b = client.get("/api/orders/3"), client.get("/api/orders/3/")
    assert (a.status_code, b.status_code) == (200, 200)
    assert a.text == b.text
    assert parse_xml(client.get("/api").text)[0].tag == "api"


def test_dispatcher_form_with_ws_key_and_params(shop: SandboxServer) -> None:
    """``/webservice/dispatcher.php?url=…``: ``url`` is removed from the params, the rest apply."""
    r = httpx.get(
        shop.url + "/webservice/dispatcher.php",
        params={"url": "orders", "ws_key": shop.key, "sort": "[id_DESC]", "limit": "2"},
    )
    assert (r.status_code, ids(r)) == (200, [40, 39])
    root = httpx.get(
        shop.url + "/webservice/dispatcher.php", params={"url": "", "ws_key": shop.key}
    )
    assert parse_xml(root.text)[0].tag == "api"


def test_ps_method_overrides_the_http_method(fresh_shop: SandboxServer) -> None:
    """``ps_method`` replaces the method; the body is read because the real method is POST."""
    sid = fresh_shop.store.stock_index[(1, 0)]
    with http(fresh_shop) as c:
        r = c.post(
            "/api/stock_availables",
            params={"ps_method": "PATCH"},
            content=f"<prestashop><stock_available><id>{sid}</id><quantity>321</quantity></stock_available></prestashop>",
        )
    assert r.status_code == 200
    assert fresh_shop.store.stock_of(1) == 321


def test_a_detail_id_is_php_int_cast(client: httpx.Client) -> None:
    """``new Class((int) $this->urlSegment[1])``: ``5abc`` reads order 5, ``abc`` is an empty 404."""
    assert client.get("/api/orders/5abc").text == client.get("/api/orders/5").text
    r = client.get("/api/orders/abc")
    assert (r.status_code, r.content) == (404, b"")


# ---------------------------------------------------------------------- 1.2 auth


def test_disabled_key_and_key_without_permissions(fresh_shop: SandboxServer) -> None:
    """``authenticate()``: inactive key -> 20 then 21 (empty permission list); an active key
    with no permission row at all -> 21 alone; both with WWW-Authenticate."""
    off, bare = "D" * 32, "E" * 32
    with http(fresh_shop) as c:
        r = c.post(
            "/__sandbox/keys",
            json={"key": off, "permissions": {"orders": ["GET"]}, "active": False},
        )
        assert r.status_code == 201
        assert c.post("/__sandbox/keys", json={"key": bare, "permissions": {}}).status_code == 201
        assert (
            c.post(
                "/__sandbox/keys", json={"key": "F" * 32, "permissions": {}, "active": "no"}
            ).status_code
            == 400
        )
    r = httpx.get(fresh_shop.url + "/api/orders", auth=(off, ""))
    assert (r.status_code, codes(r)) == (401, [20, 21])
    assert messages(r) == [
        "Authentification key is not active",
        "No permission for this authentication key",
    ]
    assert r.headers["psws-version"] == "0"
    assert "www-authenticate" in r.headers
    r = httpx.get(fresh_shop.url + "/api/orders", auth=(bare, ""))
    assert (r.status_code, codes(r)) == (401, [21])
    fresh_shop.add_key(off, {"orders": ["GET"]})  # re-enabled
    assert httpx.get(fresh_shop.url + "/api/orders", auth=(off, "")).status_code == 200


def test_empty_ws_key_is_code_17(shop: SandboxServer) -> None:
    r = httpx.get(shop.url + "/api/orders", params={"ws_key": ""})
    assert (r.status_code, codes(r)) == (401, [17])


def test_resource_not_allowed_is_401_26_after_authentication(shop: SandboxServer) -> None:
    """``checkResource()`` runs after ``authenticate()`` succeeded: 401 code 26 carries the real
    PSWS-Version and no WWW-Authenticate (only ``authenticate()`` sends that header)."""
    key = "G" * 32
    shop.add_key(key, {"orders": ["GET"]})
    r = httpx.get(shop.url + "/api/products", auth=(key, ""))
    assert (r.status_code, codes(r)) == (401, [26])
    assert messages(r) == [
        'Resource of type "products" is not allowed with this authentication key'
    ]
    assert r.headers["psws-version"] == "8.2.1"
    assert "www-authenticate" not in r.headers


def test_method_errors_have_the_real_messages(shop: SandboxServer) -> None:
    """``checkHTTPMethod()``: 23 invalid method, 101 forbidden for the resource, 25 not granted
    (HEAD is its own permission)."""
    key = "H" * 32
    shop.add_key(key, {"orders": ["GET"], "stock_availables": ["GET"]})
    with httpx.Client(base_url=shop.url, auth=(key, "")) as c:
        r = c.head("/api/orders/1")
        assert r.status_code == 405
        r = c.get("/api/orders/1", params={"ps_method": "HEAD"})
        assert (r.status_code, codes(r)) == (405, [25])
        assert messages(r) == [
            "Method HEAD is not allowed for the resource orders with this authentication key"
        ]
        r = c.delete("/api/stock_availables/1")
        assert (r.status_code, codes(r)) == (405, [101])
        assert messages(r) == ["Method DELETE is not allowed for the resource stock_availables"]
        r = c.request("OPTIONS", "/api/orders")
        assert (r.status_code, codes(r)) == (405, [23])


# ---------------------------------------------------------------------- 1.5 headers


def _common_headers(r: httpx.Response) -> None:
    assert r.headers["x-powered-by"] == "PrestaShop Webservice"
    assert r.headers["access-time"].isdigit()
    assert re.fullmatch(r"0|\d+(\.\d{1,3})?", r.headers["execution-time"])
    assert r.headers["psws-version"] == "8.2.1"


def test_headers_on_every_kind_of_answer(fresh_shop: SandboxServer) -> None:
    """``returnOutput()``: Access-Time, X-Powered-By, Execution-Time, PSWS-Version always
    (once authenticated); Content-Sha1 only for a normal body, never on errors or empty ones."""
    man = (
        "<prestashop><manufacturer><name>Acme</name><active>1</active></manufacturer></prestashop>"
    )
    with http(fresh_shop) as c:
        ok = c.get("/api/orders/1")
        made = c.post("/api/manufacturers", content=man)
        mid = parse_xml(made.text)[0].findtext("id")
        put = c.put("/api/manufacturers", content=man.replace("<name>", f"<id>{mid}</id><name>"))
        gone = c.delete(f"/api/manufacturers/{mid}")
        missing = c.get("/api/orders/99999")
        bad = c.get("/api/orders", params={"filter[nope]": "1"})
        as_json = c.get("/api/orders/1", params={"output_format": "JSON"})
    for r, status in ((ok, 200), (made, 201), (put, 200), (as_json, 200)):
        assert r.status_code == status
        _common_headers(r)
        assert (
            r.headers["content-sha1"] == hashlib.sha1(r.content, usedforsecurity=False).hexdigest()
        )
    assert ok.headers["content-type"] == "text/xml;charset=utf-8"
    assert as_json.headers["content-type"] == "application/json"
    # a bad filter is 500 on a real 8.2.1 under PHP 8 (PHP warnings follow error 32)
    for r, status in ((gone, 200), (missing, 404), (bad, 500)):
        assert r.status_code == status
        _common_headers(r)
        assert "content-sha1" not in r.headers
    assert gone.content == missing.content == b""
    # no content: the builder still writes the header, empty (ps8.2.1-real/bad_id.headers)
    assert gone.headers["content-type"] == missing.headers["content-type"] == ""


def test_304_only_for_the_matching_sha(client: httpx.Client) -> None:
    """8.x ``dispatcher.php``: ``Local-Content-Sha1`` equal to the body's sha1 -> 304, no body."""
    r = client.get("/api/orders/2")
    assert client.get("/api/orders/2", headers={"Local-Content-Sha1": "0" * 40}).status_code == 200
    r304 = client.get("/api/orders/2", headers={"Local-Content-Sha1": r.headers["content-sha1"]})
    assert (r304.status_code, r304.content) == (304, b"")


# ---------------------------------------------------------------------- 2.1 XML serialiser


def test_xml_whitespace_cdata_hrefs_and_getters(client: httpx.Client, shop: SandboxServer) -> None:
    store = shop.store
    pid = next(p for p in sorted(store.tables["products"]) if store.combinations_of(p))
    text = client.get(f"/api/products/{pid}").text
    lines = text.split("\n")
    assert lines[-1] == ""
    body = lines[2:-2]  # between <prestashop ...> and </prestashop>
    assert body[0] == "<product>"
    assert body[-1] == "</product>"
    fields = body[1 : body.index("<associations>")]
    assert all(ln.startswith("\t<") and not ln.startswith("\t\t") for ln in fields)
    assert all("<![CDATA[" in ln for ln in fields if "<language" not in ln)
    for name in (
        "manufacturer_name",
        "quantity",
        "id_default_image",
        "type",
        "position_in_category",
    ):
        assert re.search(rf'<{name}[^>]* notFilterable="true"', text), name
    assert "<price><![CDATA[" in text  # a plain field: no attribute
    assert '<tags nodeType="tag" api="tags"/>' in text  # empty association self-closed
    assert re.search(
        r'<images nodeType="image" api="images">\n\t<image xlink:href="[^"]+/api/images/products/\d+/\d+">\n',
        text,
    )
    combo = client.get(f"/api/combinations/{store.combinations_of(pid)[0]}").text
    assert '<images nodeType="image" api="images/products">' in combo
    order = client.get("/api/orders/1").text
    assert '<order_rows nodeType="order_row" virtualEntity="true">\n\t<order_row>\n' in order
    assert re.search(r'<shipping_number notFilterable="true">', order)
    # xlink:href dropped on an id_* field whose value is 0, kept when it is set
    sid = store.stock_index[(pid, 0)]
    stock = client.get(f"/api/stock_availables/{sid}").text
    assert "\t<id_product_attribute><![CDATA[0]]></id_product_attribute>\n" in stock
    assert re.search(
        r'\t<id_product xlink:href="[^"]+/api/products/\d+"><!\[CDATA\[\d+\]\]></id_product>\n',
        stock,
    )
    combo_sid = store.stock_index[(pid, store.combinations_of(pid)[0])]
    assert (
        'id_product_attribute xlink:href="'
        in client.get(f"/api/stock_availables/{combo_sid}").text
    )


# ---------------------------------------------------------------------- 2.2 JSON


def test_json_selection_precedence_and_empty_lists(client: httpx.Client) -> None:
    """``getOutputObject``: Io-Format header, then Output-Format, then output_format, then
    io_format; the value must be ``JSON`` exactly. An empty list is ``[]`` in every variant."""
    assert client.get("/api/orders/1", params={"io_format": "JSON"}).json()["order"]["id"] == 1
    r = client.get("/api/orders/1", params={"output_format": "JSON"}, headers={"Io-Format": "XML"})
    assert r.text.startswith("<?xml")
    empty = {"filter[id]": "[99999]", "output_format": "JSON"}
    assert client.get("/api/orders", params=empty).text == "[]"
    assert client.get("/api/orders", params=empty | {"display": "full"}).text == "[]"
    assert client.get("/api/orders", params=empty | {"display": "[id]"}).text == "[]"
    made = client.get(
        "/api/orders",
        params={
            "output_format": "JSON",
            "display": "[id,current_state]",
            "limit": "1",
            "sort": "[id_ASC]",
        },
    )
    assert made.json() == {
        "orders": [{"id": 1, "current_state": made.json()["orders"][0]["current_state"]}]
    }
    # json_encode escapes slashes (the 8.x capture shows ``\/``); descriptions hold "</p>"
    assert "<\\/p>" in client.get("/api/products/1", params={"output_format": "JSON"}).text
    detail = client.get(
        "/api/products/1", params={"output_format": "JSON", "language": "2"}
    ).json()
    assert isinstance(detail["product"]["name"], str)  # one language: a plain string


# ---------------------------------------------------------------------- 3. list semantics


def test_no_sort_is_id_order_and_pages_are_stable(client: httpx.Client) -> None:
    """No ``sort`` = no ORDER BY: MySQL reads the primary key, and a real 8.2.1 answers in id
    order (tests/realstore/test_conformance.py checks it on the real store); limit pages
    cover every row once."""
    plain = ids(client.get("/api/orders"))
    assert plain == list(range(1, 41))
    pages = [ids(client.get("/api/orders", params={"limit": f"{o},15"})) for o in (0, 15, 30)]
    assert [i for page in pages for i in page] == plain
    assert ids(client.get("/api/order_states", params={"sort": "id_ASC"})) == list(range(1, 14))


def test_limit_forms(client: httpx.Client) -> None:
    assert len(ids(client.get("/api/orders", params={"limit": "7"}))) == 7
    assert ids(client.get("/api/orders", params={"limit": "5,"})) == []  # LIMIT 5, 0
    assert ids(client.get("/api/orders", params={"limit": "38,10", "sort": "[id_ASC]"})) == [
        39,
        40,
    ]


def test_filter_operators_and_the_silent_traps(client: httpx.Client, shop: SandboxServer) -> None:
    """``SQLUtils::getSQLRetrieveFilter``: ``[a,b]`` is an inclusive BETWEEN with sorted bounds;
    ``>=`` / ``<=`` are not operators and silently disable the filter (all rows)."""
    q = {"sort": "[id_ASC]"}
    assert ids(client.get("/api/orders", params=q | {"filter[id]": "[7,3]"})) == [3, 4, 5, 6, 7]
    assert ids(client.get("/api/orders", params=q | {"filter[id]": "<[3]"})) == [1, 2]
    assert len(ids(client.get("/api/orders", params={"filter[id]": "<=[3]"}))) == 40
    assert len(ids(client.get("/api/orders", params={"filter[id]": ">=[38]"}))) == 40
    orders = shop.store.tables["orders"]
    day = sorted(o["date_upd"] for o in orders.values())[5]
    lo, hi = day, sorted(o["date_upd"] for o in orders.values())[9]
    got = ids(
        client.get("/api/orders", params=q | {"date": "1", "filter[date_upd]": f"[{lo},{hi}]"})
    )
    assert got == sorted(o for o, r in orders.items() if lo <= r["date_upd"] <= hi)
    assert len(got) >= 5  # both bounds included
    r = client.get(
        "/api/orders", params={"date": "1", "sort": "[date_add_ASC,id_ASC]", "limit": "3"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"display": "[id,order_rows]"}, 35, 'Unable to display this field "order_rows".'),
        (
            {"display": "[id,order_rows[nope]]"},
            35,
            "Unable to display this field \"order_rows (details : ['nope'])\".",
        ),
        ({"display": "id"}, 36, "The 'display' syntax is wrong."),
        (
            {"sort": "[id_UP]"},
            37,
            'The "sort" value has to be formed as this example: "field_ASC" or \'[field_1_DESC,field_2_ASC,field_3_ASC,...]\' ("field" has to be an available field)',
        ),
        (
            {"sort": "[date_upd_ASC]"},
            38,
            "Unable to filter by this field. However, these are available: ",
        ),
        ({"filter[date_add]": ">[2025-01-01]"}, 32, "This filter does not exist. Did you mean:"),
        ({"filter[current_state]": ""}, 33, 'The filter "current_state" is malformed.'),
        (
            {"limit": "1,2,3"},
            39,
            'The "limit" value has to be formed as this example: "5,25" or "10"',
        ),
    ],
)
def test_query_errors_with_real_messages(
    client: httpx.Client, params: dict[str, str], code: int, message: str
) -> None:
    """Codes and texts of ``setFieldsToDisplay`` / ``manageFilters``; then PHP 8's four
    warnings (``getFilteredObjectList`` reads ``false`` as an array): 500 on a real 8.2.1."""
    r = client.get("/api/orders", params=params)
    assert (r.status_code, codes(r)) == (500, [code, 3, 3, 3, 3])
    assert messages(r)[0].startswith(message)


def test_display_minimum_and_association_subfields(client: httpx.Client) -> None:
    q = {"sort": "[id_ASC]", "limit": "2"}
    assert (
        client.get("/api/orders", params=q | {"display": "minimum"}).text
        == client.get("/api/orders", params=q).text
    )
    r = client.get("/api/orders", params=q | {"display": "[id,order_rows[id,product_quantity]]"})
    row = parse_xml(r.text).find("orders/order/associations/order_rows/order_row")
    assert row is not None
    assert [c.tag for c in row] == ["id", "product_quantity"]


# ---------------------------------------------------------------------- 5. writes


def test_put_nulls_absent_fields_and_moves_dates(fresh_shop: SandboxServer) -> None:
    """Section 8.1: a partial PUT leaves the product inactive with zero prices and a new
    date_add; a client date_upd is overwritten with now; stock id_shop becomes 0; an order
    loses its current_state (and no history is written for state 0)."""
    store = fresh_shop.store
    with http(fresh_shop) as c:
        full = c.get("/api/products/1").text
        body = put_body(full).replace(
            re.search(r"<date_upd>.*?</date_upd>", put_body(full)).group(0),  # type: ignore[union-attr]
            "<date_upd>2001-01-01 00:00:00</date_upd>",
        )
        r = c.put("/api/products", content=body)
        assert r.status_code == 200
        ent = parse_xml(r.text)[0]
        assert ent.findtext("date_upd") == T
        assert ent.find("associations") is not None  # the full entity comes back
        assert store.tables["products"][1]["active"] == "1"
        partial = '<prestashop><product><id>1</id><price>9.5</price><name><language id="1">X</language></name></product></prestashop>'
        assert c.put("/api/products", content=partial).status_code == 200
        prod = store.tables["products"][1]
        assert (prod["active"], prod["wholesale_price"], prod["date_add"], prod["price"]) == (
            "0",
            "0.000000",
            T,
            "9.500000",
        )
        assert prod["name"][2]  # a language not sent keeps its stored value
        assert prod["description"] == {1: "", 2: ""}  # an absent multilingual field is blanked
        sid = store.stock_index[(2, 0)]
        r = c.put(
            "/api/stock_availables",
            content=f"<prestashop><stock_available><id>{sid}</id><id_product>2</id_product><id_product_attribute>0</id_product_attribute><quantity>4</quantity><depends_on_stock>0</depends_on_stock><out_of_stock>2</out_of_stock></stock_available></prestashop>",
        )
        assert r.status_code == 200
        assert store.tables["stock_availables"][sid]["id_shop"] == "0"
        oid = next(o for o, rec in store.tables["orders"].items() if rec["current_state"] == "2")
        before = len(store.histories_of(oid))
        order = put_body(c.get(f"/api/orders/{oid}").text, drop=("current_state",))
        assert c.put("/api/orders", content=order).status_code == 200
    assert store.tables["orders"][oid]["current_state"] == "0"
    assert len(store.histories_of(oid)) == before


def test_patch_touches_only_present_fields(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    before = dict(store.tables["products"][3])
    with http(fresh_shop) as c:
        r = c.patch(
            "/api/products",
            content="<prestashop><product><id>3</id><price>12.25</price></product></prestashop>",
        )
    assert r.status_code == 200
    after = store.tables["products"][3]
    assert after["price"] == "12.250000"
    assert after["date_upd"] == T
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"price", "date_upd"}


def test_write_errors_follow_save_entity_from_xml(fresh_shop: SandboxServer) -> None:
    """89 before 90; the first field in field order decides between 93 and 41; a required
    multilingual field left empty is 84 (validateFieldsLang); a POST id is 91."""
    with http(fresh_shop) as c:
        dup = "<prestashop><manufacturer><id>1</id><name>a</name></manufacturer><manufacturer><id>1</id><name>b</name></manufacturer><manufacturer><name>c</name></manufacturer></prestashop>"
        r = c.put("/api/manufacturers", content=dup)
        assert (r.status_code, codes(r), messages(r)) == (
            400,
            [89],
            ["id is duplicate in request"],
        )
        r = c.put(
            "/api/manufacturers",
            content="<prestashop><manufacturer><name>c</name></manufacturer></prestashop>",
        )
        assert (r.status_code, codes(r)) == (400, [90])
        # products: manufacturer_name (read-only) comes before price (required) in field order
        r = c.put(
            "/api/products",
            content="<prestashop><product><id>1</id><manufacturer_name>x</manufacturer_name></product></prestashop>",
        )
        assert (r.status_code, codes(r)) == (400, [93])
        r = c.post(
            "/api/products", content="<prestashop><product><price>3</price></product></prestashop>"
        )
        assert (r.status_code, codes(r), messages(r)) == (
            400,
            [84],
            ['Validation error: "Property Product-&gt;name is empty."'],  # translator escapes
        )
        r = c.post(
            "/api/products",
            content='<prestashop><product><name><language id="1">N</language></name></product></prestashop>',
        )
        assert (r.status_code, codes(r), messages(r)) == (
            400,
            [41],
            ['parameter "price" required'],
        )


def test_xml_error_is_500_127_echoing_the_body(fresh_shop: SandboxServer) -> None:
    body = "<prestashop><order_history><id_order>1</id_order>"
    with http(fresh_shop) as c:
        r = c.post("/api/order_histories", content=body)
    assert (r.status_code, codes(r)) == (500, [127])
    msg = messages(r)[0]
    assert msg.startswith("XML error : String could not be parsed as XML\n")  # real 8.2.1
    assert f"\nXML length : {len(body)}\nOriginal XML : {body}" in msg


def test_unknown_association_is_400_86_after_the_save(fresh_shop: SandboxServer) -> None:
    """``saveEntityFromXml`` sets associations after ``update()``: the fields are saved, then 86."""
    with http(fresh_shop) as c:
        r = c.patch(
            "/api/products",
            content="<prestashop><product><id>4</id><price>1.5</price><associations><nope><x><id>1</id></x></nope></associations></product></prestashop>",
        )
    assert (r.status_code, codes(r)) == (400, [86])
    assert fresh_shop.store.tables["products"][4]["price"] == "1.500000"


def test_several_entities_in_one_write(fresh_shop: SandboxServer) -> None:
    body = (
        "<prestashop>"
        + "".join(
            f"<manufacturer><name>M{i}</name><active>1</active></manufacturer>" for i in range(2)
        )
        + "</prestashop>"
    )
    with http(fresh_shop) as c:
        r = c.post("/api/manufacturers", content=body)
    assert r.status_code == 201
    root = parse_xml(r.text)
    assert [e.tag for e in root] == ["manufacturer", "manufacturer"]  # no plural wrapper
    assert [e.findtext("name") for e in root] == ["M0", "M1"]


# ---------------------------------------------------------------------- 6.2 / 8.5 order_histories


def test_order_history_email_flag_and_duplicates(fresh_shop: SandboxServer) -> None:
    """``OrderHistory::addWs``: ``(bool) Tools::getValue('sendemail')`` - ``sendmail`` (typo) and
    ``sendemail=0`` send nothing, any truthy value sends; the same state twice is not refused."""
    store = fresh_shop.store
    oid = next(o for o, r in store.tables["orders"].items() if r["current_state"] == "2")
    body = f"<prestashop><order_history><id_order>{oid}</id_order><id_order_state>3</id_order_state></order_history></prestashop>"
    before = len(store.histories_of(oid))
    with http(fresh_shop) as c:
        for params in ({"sendmail": "1"}, {"sendemail": "0"}, {"sendemail": "true"}):
            assert c.post("/api/order_histories", params=params, content=body).status_code == 201
        emails = c.get("/__sandbox/stats").json()["emails_sent"]
    assert emails == [{"id_order": oid, "id_order_state": 3}]
    assert len(store.histories_of(oid)) == before + 3
    assert store.order_state(oid) == 3
    assert store.tables["orders"][oid]["date_upd"] == T


def test_tracking_put_does_not_move_the_order(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    ocid = store.carriers_by_order[2][0]
    upd = store.tables["orders"][2]["date_upd"]
    with http(fresh_shop) as c:
        root = parse_xml(c.get(f"/api/order_carriers/{ocid}").text)
        root[0].find("tracking_number").text = "TRK-9"  # type: ignore[union-attr]
        assert c.put("/api/order_carriers", content=ET.tostring(root)).status_code == 200
        assert parse_xml(c.get("/api/orders/2").text)[0].findtext("shipping_number") == "TRK-9"
    assert store.tables["orders"][2]["date_upd"] == upd


# ---------------------------------------------------------------------- faults


def test_faults_before_change_and_after_commit_on_a_state_change(
    fresh_shop: SandboxServer,
) -> None:
    """error_rate refuses before anything changed; lost_after_commit and malformed answers come
    after the store applied the order_history (a blind retry would post it twice)."""
    store = fresh_shop.store
    oid = next(o for o, r in store.tables["orders"].items() if r["current_state"] == "2")
    body = f"<prestashop><order_history><id_order>{oid}</id_order><id_order_state>3</id_order_state></order_history></prestashop>"
    n = len(store.histories_of(oid))
    with http(fresh_shop, timeout=2) as c:
        fresh_shop.faults.update({"error_rate": 1})
        assert c.post("/api/order_histories", content=body).status_code == 500
        assert (len(store.histories_of(oid)), store.order_state(oid)) == (n, 2)
        fresh_shop.faults.update({"error_rate": 0, "lost_after_commit_rate": 1})
        try:
            r = c.post("/api/order_histories", content=body)
            assert r.status_code == 500
        except httpx.TransportError:
            pass
        assert (len(store.histories_of(oid)), store.order_state(oid)) == (n + 1, 3)
        fresh_shop.faults.update({"lost_after_commit_rate": 0, "malformed_rate": 1})
        r = c.post(
            "/api/order_histories",
            content=body.replace("<id_order_state>3<", "<id_order_state>4<"),
        )
        with pytest.raises(ET.ParseError):
            parse_xml(r.content)
        assert (len(store.histories_of(oid)), store.order_state(oid)) == (n + 2, 4)
        fresh_shop.faults.update({"malformed_rate": 0})


def test_put_order_shipping_number_goes_to_the_order_carrier(fresh_shop: SandboxServer) -> None:
    """``Order::setWsShippingNumber`` (the setter of the getter field): the order_carrier's
    tracking_number changes, and the order itself is saved (date_upd = now)."""
    store = fresh_shop.store
    with http(fresh_shop) as c:
        root = parse_xml(put_body(c.get("/api/orders/3").text))
        root[0].find("shipping_number").text = "TRK-3"  # type: ignore[union-attr]
        r = c.put("/api/orders", content=ET.tostring(root))
        assert r.status_code == 200
        assert parse_xml(r.text)[0].findtext("shipping_number") == "TRK-3"
    assert (
        store.tables["order_carriers"][store.carriers_by_order[3][0]]["tracking_number"] == "TRK-3"
    )
    assert store.tables["orders"][3]["date_upd"] == T
