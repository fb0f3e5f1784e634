"""Adapter writes against recorded exchanges: bodies match the real recorded request bodies
structurally; order_histories is posted at most once; read-only fields are stripped."""

# ruff: noqa: S314 - trusted local samples read with the stdlib on purpose, independently of the client

from __future__ import annotations

from decimal import Decimal
from xml.etree import ElementTree as ET

import httpx
import pytest

from engine.errors import ChannelRejected, ChannelUnavailable
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.prestashop.shop import ShopFacts
from engine.runtime.channels.ratelimit import RetryPolicy

from .helpers import KEY, sample, xml_response


def adapter_for(handler) -> PrestaShopAdapter:
    client = PrestaShopClient(
        "http://shop.test",
        KEY,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=3, backoff_seconds=0.001, max_backoff_seconds=0.002),
        sleep=lambda s: None,
    )
    return PrestaShopAdapter(client)


def fields_of(body: bytes) -> tuple[str, str, dict[str, str]]:
    """(root tag, entity tag, {field: text}) of a write body."""
    root = ET.fromstring(body)
    (entity,) = list(root)
    return root.tag, entity.tag, {c.tag: (c.text or "").strip() for c in entity if not len(c)}


def structure(el: ET.Element, prefix: str = "") -> set[str]:
    """Element paths with their attribute names (values ignored): the XML's structure."""
    out = set()
    for child in el:
        path = f"{prefix}/{child.tag}"
        out.add(
            path
            + "".join(
                sorted(
                    f"@{k}"
                    for k in child.attrib
                    if k != "nodeType" and k != "api" and "href" not in k
                )
            )
        )
        out |= structure(child, path)
    return out


def test_set_stock_body_matches_recorded_put() -> None:
    row = ET.fromstring(sample("stock_available_1.ps1.6.1.9.xml").read_bytes())[0]
    listing = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n'
        "<stock_availables>\n"
        + ET.tostring(row, encoding="unicode")
        + "</stock_availables>\n</prestashop>"
    )
    put_bodies = []

    def handler(request):
        if request.method == "GET":
            assert request.url.params["filter[id_product]"] == "[1]"
            assert request.url.params["display"] == "full"
            return xml_response(
                listing.replace("ns0:", "xlink:").replace("xmlns:ns0", "xmlns:xlink")
            )
        put_bodies.append(request.content)
        return xml_response(sample("stock_available_PUT_quantity.ps1.6.1.9.xml").read_bytes())

    with adapter_for(handler) as a:
        result = a.set_stock(1, 0, 0)
    (body,) = put_bodies
    recorded = sample("stock_available_PUT_quantity.ps1.6.1.9.request.xml").read_bytes()
    assert fields_of(body) == fields_of(recorded)
    assert result.quantity == 0
    assert result.id_shop == 1


def test_set_tracking_number_body_matches_recorded_put() -> None:
    put_bodies = []

    def handler(request):
        path = request.url.path
        if request.method == "GET" and path.endswith("/order_carriers"):
            assert request.url.params["filter[id_order]"] == "[2]"
            return xml_response(
                sample("order_carriers_list_filter_id_order.ps1.6.1.6.xml").read_bytes()
            )
        if request.method == "GET":
            assert path.endswith("/order_carriers/2")
            return xml_response(sample("order_carrier_2.ps1.6.1.6.xml").read_bytes())
        assert request.method == "PUT"
        assert path.endswith("/order_carriers")
        put_bodies.append(request.content)
        return xml_response(sample("order_carrier_PUT_tracking_number.ps1.6.1.6.xml").read_bytes())

    with adapter_for(handler) as a:
        # the list sample is XML; the adapter asks JSON but accepts XML from a proxy
        carrier = a.set_tracking_number(2, "xyz")
    (body,) = put_bodies
    recorded = sample("order_carrier_PUT_tracking_number.ps1.6.1.6.request.xml").read_bytes()
    assert fields_of(body) == fields_of(recorded)
    assert carrier.tracking_number == "xyz"


def test_order_history_body_and_product_bodies_follow_docs_schemas() -> None:
    posted: dict[str, bytes] = {}

    def handler(request):
        resource = request.url.path.rsplit("/", 1)[-1]
        if request.method == "GET" and request.url.params.get("schema") == "blank":
            # the store's products resource, as the adapter reads it once before a create
            return xml_response(sample("docs_products_schema_blank.ps8.x.xml").read_text())
        if request.method == "GET":
            return httpx.Response(200, json={"orders": [{"id": 5, "current_state": 2}]})
        posted[resource] = request.content
        node = {
            "order_histories": "order_history",
            "products": "product",
            "combinations": "combination",
            "manufacturers": "manufacturer",
        }[resource]
        return xml_response(f"<prestashop><{node}><id>9</id></{node}></prestashop>", 201)

    with adapter_for(handler) as a:
        change = a.set_order_state(5, 4)
        a.create_product(
            name="Tee", reference="T-1", price=Decimal("9.5"), category_id=3, manufacturer_id=1
        )
        a.create_combination(
            product_id=9, reference="T-1-S", price_impact="1.5", option_value_ids=[1, 13]
        )
        a.create_manufacturer(name="ACMEManufacturer")
    assert change.changed
    assert change.history_id == 9
    assert change.previous_state == 2
    checks = {
        "order_histories": "docs_order_histories_schema_blank.ps8.x.xml",
        "products": "docs_products_schema_blank.ps8.x.xml",
        "combinations": "docs_combinations_schema_blank.ps8.x.xml",
    }
    for resource, schema_file in checks.items():
        schema = ET.fromstring(sample(schema_file).read_bytes())
        body = ET.fromstring(posted[resource])
        assert body.tag == "prestashop"
        assert body[0].tag == schema[0].tag
        assert body[0].find("id") is None  # POST must not carry an id (code 91)
        extra = structure(body) - structure(schema)
        assert not extra, (resource, extra)
    _, _, hist = fields_of(posted["order_histories"])
    assert hist == {"id_order": "5", "id_order_state": "4"}
    # the docs' recorded POST requests, structurally
    comb_doc = ET.fromstring(sample("docs_combination_POST_request.ps8.x.xml").read_bytes())
    comb = ET.fromstring(posted["combinations"])
    assert {p for p in structure(comb_doc) if "associations" in p} <= structure(comb)
    assert [e.text for e in comb.iter("id")] == ["1", "13"]
    man_doc = fields_of(sample("docs_manufacturer_POST_request.ps8.x.xml").read_bytes())
    assert fields_of(posted["manufacturers"])[2]["name"] == man_doc[2]["name"]
    prod = ET.fromstring(posted["products"])[0]
    assert prod.find("name/language").get("id") == "1"
    assert prod.findtext("name/language") == "Tee"
    assert prod.findtext("price") == "9.500000"
    assert [e.text for e in prod.findall("associations/categories/category/id")] == ["3"]
    assert prod.findtext("state") == "1"  # not a draft (the schema has the field)
    assert prod.find("product_type") is None  # the docs' 8.x schema has no product_type


def test_set_price_strips_read_only_fields_and_keeps_the_rest() -> None:
    put = []

    def handler(request):
        if request.method == "GET":
            return xml_response(sample("product_1_with_combinations.ps1.6.1.23.xml").read_bytes())
        put.append(request.content)
        return xml_response(sample("product_1_with_combinations.ps1.6.1.23.xml").read_bytes())

    with adapter_for(handler) as a:
        a.set_price(1, Decimal("20"))
    _root, node, fields = fields_of(put[0])
    assert node == "product"
    assert fields["price"] == "20.000000"
    for read_only in (
        "manufacturer_name",
        "quantity",
        "position_in_category",
        "id_default_image",
        "type",
    ):
        assert read_only not in fields
    assert fields["active"] == "1"
    assert fields["reference"] == "demo_1"
    assert fields["id"] == "1"
    body = ET.fromstring(put[0])[0]
    assert body.find("associations") is None
    assert body.findtext("name/language") == "Faded Short Sleeves T-shirt"


class FakeOrders:
    """A store double for one order: GET current_state, POST order_histories with a chosen
    failure mode (raised before or after the write took effect)."""

    def __init__(self, state: int, fail: str | None) -> None:
        self.state = state
        self.fail = fail
        self.posts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(
                200, json={"orders": [{"id": 5, "current_state": str(self.state)}]}
            )
        self.posts += 1
        target = int(ET.fromstring(request.content).findtext("order_history/id_order_state"))
        if self.fail == "before":
            return httpx.Response(503)
        self.state = target
        if self.fail == "after":
            raise httpx.ReadTimeout("applied, answer lost")
        if self.fail == "after-500":
            return httpx.Response(500)
        return xml_response(
            "<prestashop><order_history><id>77</id></order_history></prestashop>", 201
        )


@pytest.mark.parametrize("fail", ["after", "after-500"])
def test_state_change_lost_answer_is_not_posted_twice(fail) -> None:
    store = FakeOrders(2, fail)
    with adapter_for(store) as a:
        change = a.set_order_state(5, 4)
        again = a.set_order_state(5, 4)
    assert change.changed
    assert store.state == 4
    assert not again.changed
    assert store.posts == 1


def test_state_change_refused_before_write_raises_and_never_reposts() -> None:
    store = FakeOrders(2, "before")
    with adapter_for(store) as a, pytest.raises(ChannelUnavailable):
        a.set_order_state(5, 4)
    assert store.posts == 1
    assert store.state == 2


def test_state_already_there_posts_nothing_and_sendemail_is_spelled_right() -> None:
    store = FakeOrders(4, None)
    with adapter_for(store) as a:
        assert not a.set_order_state(5, 4).changed
    assert store.posts == 0
    seen = []

    def handler(request):
        seen.append(request)
        return FakeOrders(2, None)(request)

    with adapter_for(handler) as a:
        a.set_order_state(5, 4, send_email=True)
    assert seen[-1].url.params["sendemail"] == "1"


def test_stock_write_refuses_product_row_of_product_with_combinations() -> None:
    body = sample("stock_availables_display_id_fields.ps1.6.1.20.xml").read_bytes()
    with (
        adapter_for(lambda r: xml_response(body)) as a,
        pytest.raises(ChannelRejected, match="combinations"),
    ):
        a.set_stock(1, 0, 5)


_SCHEMA_821 = (
    "<prestashop><product><id/><id_manufacturer/><reference/><state/><product_type/>"
    "<price/><active/><name><language id='1'/><language id='2'/></name></product></prestashop>"
)


def _creating(facts: ShopFacts | None, schema: str = _SCHEMA_821):
    """(adapter, posted bodies, requests seen) over a store answering with ``schema``."""
    posted: list[bytes] = []
    seen: list[str] = []

    def handler(request):
        seen.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        if request.method == "GET":
            return xml_response(schema)
        posted.append(request.content)
        return xml_response("<prestashop><product><id>9</id></product></prestashop>", 201)

    a = adapter_for(handler)
    a.facts = facts
    return a, posted, seen


def test_an_8x_product_is_created_real_with_its_type_in_every_language() -> None:
    facts = ShopFacts.from_json(
        {"version": "8.2.1", "languages": [{"id": 1}, {"id": 2}], "default_language_id": 1}
    )
    a, posted, seen = _creating(facts)
    with a:
        a.create_product(name="Tee", reference="T-1", price="9.5", description="Soft")
        a.create_product(name="Tee", reference="T-2", price="9.5", with_combinations=True)
    single, variable = (ET.fromstring(b)[0] for b in posted)
    assert single.findtext("state") == "1"
    assert single.findtext("product_type") == "standard"
    assert variable.findtext("product_type") == "combinations"
    for field in ("name", "link_rewrite", "description"):
        assert [e.get("id") for e in single.findall(f"{field}/language")] == ["1", "2"]
    assert single.findtext("link_rewrite/language") == "tee"
    assert sum("schema=blank" in r for r in seen) == 1  # the schema is read once


def test_older_stores_get_neither_state_nor_product_type() -> None:
    a, posted, seen = _creating(ShopFacts.from_json({"version": "1.7.8.11"}))
    with a:
        a.create_product(name="Tee", reference="T-1", price="9.5")
    body = ET.fromstring(posted[0])[0]
    assert body.find("state") is None
    assert body.find("product_type") is None
    assert not seen[:-1]  # no schema read: the version says enough
    # an 8.x store whose products resource lacks the field: not sent either
    bare = "<prestashop><product><id/><reference/><price/></product></prestashop>"
    a, posted, _seen = _creating(ShopFacts.from_json({"version": "8.0.0"}), bare)
    with a:
        a.create_product(name="Tee", reference="T-1", price="9.5")
    body = ET.fromstring(posted[0])[0]
    assert body.find("state") is None
    assert body.find("product_type") is None
