# ruff: noqa: E501  (literal XML bodies read best on one line)
"""Conformance: the sandbox store answers like a real PrestaShop 8.2.1, request for request.

The SAME list of requests (``CASES``: lists with filters, display, sort and limit; one of each
resource omsflow reads; each write omsflow makes; the errors omsflow handles) goes to the real
store and to a sandbox, in XML and in JSON, and the STRUCTURE of the two answers is compared:

- the status;
- the headers: the same header names on both sides, the values of those a client acts on
  (Content-Type, PSWS-Version, WWW-Authenticate, X-Powered-By), the shape of Set-Cookie;
  only the ``php -S`` transport differences of ``TRANSPORT_ALLOWED`` are allowed;
- XML: element names and their order, attribute names (``xlink:href`` by presence, the other
  attributes by value), the texts of errors and of the API root's descriptions;
- JSON: keys and their order, the JSON type of every value, errors by value.

Ids are looked up per store (``Side.ids``): the real store is PrestaShop's demo shop, the
sandbox a generated one; each case names a shape (a product with combinations, a simple
product...) and each store supplies its own id of that shape. The answers hold different DATA,
so three data-dependent rules of PrestaShop are applied, each one checked for coverage so a
rule can never hide a structure that was never compared:

- ``id_*`` fields with an empty or 0 value carry no ``xlink:href``
  (``WebserviceOutputBuilder::renderField``): a link is compared where both sides are empty or
  both are set;
- JSON detail views drop empty values (``array_filter`` in ``WebserviceOutputJSON``): a key
  absent on one side is accepted when that store's XML answer to the same request has the
  field empty;
- an association is empty on one side (a product without features...): its items are
  compared where both sides have some.

After all cases: every link, key and association the real store showed must have been
compared at least once, else the test fails naming it. A difference fails with the request,
the format, the path, and the two values (real vs sandbox).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import httpx
import pytest
from defusedxml.ElementTree import fromstring as parse_xml

from sandbox.server import SandboxServer, start_sandbox

pytestmark = pytest.mark.realstore

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

# --------------------------------------------------------------------------- the allow-list
#: The ONLY differences allowed: ``php -S`` (the real store's web server here) vs uvicorn (the
#: sandbox's). They are transport, not PrestaShop: under Apache the real store differs the
#: same way. Header name -> (when it is allowed, why).
TRANSPORT_ALLOWED: dict[str, tuple[Callable[[str | None, str | None], bool], str]] = {
    "connection": (
        lambda real, sandbox: True,
        "php -S answers `Connection: close` on every request; uvicorn keeps connections alive",
    ),
    "content-length": (
        lambda real, sandbox: True,
        "php -S writes the body without Content-Length; uvicorn always sends it",
    ),
    "host": (
        lambda real, sandbox: True,
        "php -S echoes the request's Host header in the answer",
    ),
    "x-powered-by": (
        lambda real, sandbox: (real or "").startswith("PHP/") and sandbox is None,
        "on answers PHP writes itself (the dispatcher's no-key 401, a PHP fatal error) php "
        "adds `X-Powered-By: PHP/<version>` (expose_php); PrestaShop's own answers say "
        "`PrestaShop Webservice`, compared by value",
    ),
}
#: Header values compared exactly (besides presence, which is compared for every header).
VALUE_HEADERS = ("content-type", "psws-version", "www-authenticate", "x-powered-by")
#: Attributes whose values are data (ids, URLs, the shop's name): compared by presence.
DATA_ATTRIBUTES = frozenset({XLINK_HREF, "id", "shopName"})


# --------------------------------------------------------------------------- the two stores


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def xml(self) -> Element | None:
        if not self.body.lstrip().startswith(b"<?xml"):
            return None
        root: Element = parse_xml(self.body)
        return root


@dataclass
class Side:
    """One store: its API URL, key, the ids of the shapes the cases use, what they created."""

    name: str
    api: str
    key: str
    ids: dict[str, int]
    created: dict[str, list[int]] = field(default_factory=dict)
    #: a second key, allowed only to read orders and order states (``LIMITED_PERMISSIONS``)
    limited_key: str = ""

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: str | None = None,
        fmt: str = "xml",
        auth: str = "key",
    ) -> Answer:
        # A fresh connection and no cookie jar per request: PrestaShop sets its cookie only
        # for a client that does not send one back, and every case must see that.
        headers = {"Output-Format": "JSON"} if fmt == "json" else {}
        kw: dict[str, Any] = {}
        if auth == "key":
            kw["auth"] = (self.key, "")
        elif auth == "bad":
            kw["auth"] = ("WRONGKEYWRONGKEYWRONGKEYWRONGKEY", "")
        elif auth == "limited":
            kw["auth"] = (self.limited_key, "")
        r = httpx.request(
            method,
            f"{self.api}/{path}",
            params=dict(params or {}),
            content=body.encode() if body is not None else None,
            headers=headers,
            timeout=60,
            **kw,
        )
        return Answer(r.status_code, [(k.lower(), v) for k, v in r.headers.items()], r.content)

    def entity(self, path: str) -> Element:
        """The store's own XML of one entity (read-modify-write bodies start from it)."""
        root = self.send("GET", path).xml()
        assert root is not None, f"{self.name}: GET {path} gave no XML"
        assert len(root), f"{self.name}: GET {path} gave no entity"
        return root[0]

    def remember(self, resource: str, answer: Answer) -> None:
        """Keep the id a POST answered (XML or JSON), for the later cases that use it."""
        rid: int | None = None
        root = answer.xml()
        if root is not None and len(root) and root[0].find("id") is not None:
            rid = int(root[0].findtext("id") or 0)
        elif answer.body.startswith(b"{"):
            doc = json.loads(answer.body)
            for value in doc.values():
                if isinstance(value, dict) and "id" in value:
                    rid = int(value["id"])
                elif isinstance(value, list) and value and "id" in value[0]:
                    rid = int(value[0]["id"])
        if rid:
            self.created.setdefault(resource, []).append(rid)

    def take(self, resource: str) -> int:
        """The oldest id this run created in ``resource`` that no case used yet."""
        return self.created[resource].pop(0)


# --------------------------------------------------------------------------- the cases


Body = Callable[[Side], str]
Path = str | Callable[[Side], str]


@dataclass(frozen=True)
class Case:
    """One request sent to both stores (in each of ``formats``)."""

    name: str
    method: str
    path: Path
    params: Mapping[str, str] = field(default_factory=dict)
    body: Body | None = None
    auth: str = "key"
    formats: tuple[str, ...] = ("xml", "json")
    creates: str | None = None  # the resource whose new id the answer holds

    def resolve(self, side: Side) -> str:
        return self.path(side) if callable(self.path) else self.path.format(**side.ids)


def _put(resource: str, id_key: str, changes: Mapping[str, str]) -> Body:
    """omsflow's read-modify-write: GET the entity as XML, drop the read-only and
    ``notFilterable`` fields and the associations, apply ``changes``, PUT it all back."""

    def body(side: Side) -> str:
        ent = side.entity(f"{resource}/{side.ids[id_key]}")
        for child in list(ent):
            if child.get("notFilterable") or child.tag == "associations":
                ent.remove(child)
        parts = []
        for child in ent:
            if child.tag in changes:
                parts.append(f"<{child.tag}>{changes[child.tag]}</{child.tag}>")
            elif len(child):
                langs = "".join(
                    f'<language id="{lang.get("id")}">{_esc(lang.text or "")}</language>'
                    for lang in child
                )
                parts.append(f"<{child.tag}>{langs}</{child.tag}>")
            else:
                parts.append(f"<{child.tag}>{_esc(child.text or '')}</{child.tag}>")
        return f"<prestashop><{ent.tag}>{''.join(parts)}</{ent.tag}></prestashop>"

    return body


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _langs(en: str, fr: str) -> str:
    return f'<language id="1">{en}</language><language id="2">{fr}</language>'


def _product_body(price: str) -> Body:
    def body(side: Side) -> str:
        cat, man = side.ids["category_leaf"], side.ids["manufacturer"]
        return (
            "<prestashop><product>"
            f"<id_manufacturer>{man}</id_manufacturer><id_category_default>{cat}</id_category_default>"
            "<reference>CONFORM-1</reference><ean13></ean13><weight>0.500000</weight>"
            f"<price>{price}</price><active>1</active><state>1</state>"
            "<product_type>standard</product_type><available_for_order>1</available_for_order>"
            "<show_price>1</show_price><minimal_quantity>1</minimal_quantity>"
            f"<name>{_langs('Conformance mug', 'Mug de conformité')}</name>"
            f"<link_rewrite>{_langs('conformance-mug', 'mug-de-conformite')}</link_rewrite>"
            f"<associations><categories><category><id>{cat}</id></category></categories></associations>"
            "</product></prestashop>"
        )

    return body


def _combination_body(side: Side) -> str:
    product = side.created["products"][0]
    a, b = side.ids["option_value_a"], side.ids["option_value_b"]
    return (
        "<prestashop><combination>"
        f"<id_product>{product}</id_product><ean13>4006381333931</ean13><reference></reference>"
        "<price>1.500000</price><minimal_quantity>1</minimal_quantity>"
        "<associations><product_option_values>"
        f"<product_option_value><id>{a}</id></product_option_value>"
        f"<product_option_value><id>{b}</id></product_option_value>"
        "</product_option_values></associations>"
        "</combination></prestashop>"
    )


def _static(xml: str) -> Body:
    def body(side: Side) -> str:
        return xml.format(**side.ids)

    return body


CASES: tuple[Case, ...] = (
    # ---- the API root (connect reads permissions from it)
    Case("api root", "GET", ""),
    Case("api root HEAD", "HEAD", "", formats=("xml",)),
    # ---- lists: filters, display, sort, limit
    Case("products ids, no sort", "GET", "products", {"limit": "3"}),
    Case(
        "products page (catalogue sync)",
        "GET",
        "products",
        {"filter[id]": ">[0]", "sort": "[id_ASC]", "limit": "0,3", "display": "full"},
    ),
    Case("products, display full, no sort", "GET", "products", {"display": "full", "limit": "2"}),
    Case(
        "products, display fields",
        "GET",
        "products",
        {
            "display": "[id,reference,price,name,product_type,state]",
            "filter[active]": "[1]",
            "sort": "[id_DESC]",
            "limit": "2",
        },
    ),
    Case(
        "products changed since (delta)",
        "GET",
        "products",
        {
            "date": "1",
            "filter[date_upd]": ">[2000-01-01 00:00:00]",
            "sort": "[id_ASC]",
            "limit": "0,2",
            "display": "full",
        },
    ),
    Case(
        "products by reference, no match",
        "GET",
        "products",
        {"filter[reference]": "[NO-SUCH-REF]", "display": "full"},
    ),
    Case(
        "combinations by product (sync stream)",
        "GET",
        "combinations",
        {
            "filter[id_product]": ">[0]",
            "sort": "[id_product_ASC,id_ASC]",
            "limit": "0,3",
            "display": "full",
        },
    ),
    Case(
        "combinations of one product", "GET", "combinations", {"filter[id_product]": "[{p_combo}]"}
    ),
    Case(
        "stock rows of a product",
        "GET",
        "stock_availables",
        {"filter[id_product]": "[{p_combo}]", "display": "full", "sort": "[id_ASC]"},
    ),
    Case(
        "stock rows by product range",
        "GET",
        "stock_availables",
        {"filter[id_product]": "[1,3]", "sort": "[id_ASC]", "limit": "0,3", "display": "full"},
    ),
    Case(
        "orders page (new orders)",
        "GET",
        "orders",
        {"filter[id]": ">[0]", "sort": "[id_ASC]", "limit": "0,2", "display": "full"},
    ),
    Case(
        "order current state",
        "GET",
        "orders",
        {"filter[id]": "[{order}]", "display": "[id,current_state]"},
    ),
    Case(
        "first order since a date",
        "GET",
        "orders",
        {
            "date": "1",
            "filter[date_add]": "[2000-01-01 00:00:00,9999-12-31 23:59:59]",
            "sort": "[id_ASC]",
            "limit": "0,1",
            "display": "[id]",
        },
    ),
    Case(
        "orders changed since",
        "GET",
        "orders",
        {
            "date": "1",
            "filter[date_upd]": ">[2000-01-01 00:00:00]",
            "sort": "[id_ASC]",
            "limit": "0,2",
            "display": "full",
        },
    ),
    Case(
        "order states",
        "GET",
        "order_states",
        {"sort": "[id_ASC]", "limit": "0,3", "display": "full"},
    ),
    Case(
        "order histories of an order",
        "GET",
        "order_histories",
        {"filter[id_order]": "[{order}]", "sort": "[id_ASC]", "limit": "0,50", "display": "full"},
    ),
    Case(
        "order carriers of an order",
        "GET",
        "order_carriers",
        {"filter[id_order]": "[{order}]", "sort": "[id_ASC]"},
    ),
    Case(
        "categories", "GET", "categories", {"sort": "[id_ASC]", "limit": "0,3", "display": "full"}
    ),
    Case(
        "manufacturers",
        "GET",
        "manufacturers",
        {"sort": "[id_ASC]", "limit": "0,2", "display": "full"},
    ),
    Case(
        "product options",
        "GET",
        "product_options",
        {"sort": "[id_ASC]", "limit": "0,2", "display": "full"},
    ),
    Case(
        "product option values",
        "GET",
        "product_option_values",
        {"sort": "[id_ASC]", "limit": "0,3", "display": "full"},
    ),
    Case("languages", "GET", "languages", {"sort": "[id_ASC]", "display": "full"}),
    # ---- one of each resource omsflow reads
    Case("product with combinations", "GET", "products/{p_combo}"),
    Case("simple product", "GET", "products/{p_simple}"),
    Case("combination", "GET", "combinations/{combination}"),
    Case("product-level stock row", "GET", "stock_availables/{stock_parent}"),
    Case("combination stock row", "GET", "stock_availables/{stock_combination}"),
    Case("order", "GET", "orders/{order}"),
    Case("order state", "GET", "order_states/2"),
    Case("order history", "GET", "order_histories/{history}"),
    Case("order carrier", "GET", "order_carriers/{order_carrier}"),
    Case("category", "GET", "categories/{category_leaf}"),
    Case("manufacturer", "GET", "manufacturers/{manufacturer}"),
    Case("product option", "GET", "product_options/{option}"),
    Case("product option value", "GET", "product_option_values/{option_value_a}"),
    Case("language", "GET", "languages/1"),
    Case("customer", "GET", "customers/{customer}"),
    Case("address", "GET", "addresses/{address}"),
    Case("carrier", "GET", "carriers/{carrier}"),
    Case("currency", "GET", "currencies/1"),
    # ---- read around a page of orders (issue 12): lines' details, the customer's message
    Case(
        "order details of a page of orders",
        "GET",
        "order_details",
        {"filter[id_order]": "[{order}|{thread_order}]", "display": "full"},
    ),
    Case("order detail", "GET", "order_details/{order_detail}"),
    Case("taxes of order details", "GET", "taxes", {"filter[id]": "[{tax}]", "display": "full"}),
    Case("tax", "GET", "taxes/{tax}"),
    Case(
        "customer threads of a page of orders",
        "GET",
        "customer_threads",
        {"filter[id_order]": "[{order}|{thread_order}]", "display": "full"},
    ),
    Case("customer thread", "GET", "customer_threads/{thread}"),
    Case(
        "customer messages of threads",
        "GET",
        "customer_messages",
        {"filter[id_customer_thread]": "[{thread}]", "display": "full"},
    ),
    Case("customer message", "GET", "customer_messages/{message}"),
    Case(
        "product, display fields", "GET", "products/{p_combo}", {"display": "[id,reference,name]"}
    ),
    Case("product in one language", "GET", "products/{p_simple}", {"language": "1"}),
    # ---- the writes omsflow makes
    Case(
        "order history POST (status change)",
        "POST",
        "order_histories",
        body=_static(
            "<prestashop><order_history><id_order>{order}</id_order><id_order_state>2</id_order_state></order_history></prestashop>"
        ),
    ),
    Case(
        "order carrier PUT (tracking number)",
        "PUT",
        "order_carriers",
        body=_put("order_carriers", "order_carrier", {"tracking_number": "CONF123456789"}),
    ),
    Case(
        "stock PUT, combination row",
        "PUT",
        "stock_availables",
        body=_put("stock_availables", "stock_combination", {"quantity": "37"}),
    ),
    Case(
        "stock PUT, simple product row",
        "PUT",
        "stock_availables",
        body=_put("stock_availables", "stock_simple", {"quantity": "41"}),
    ),
    Case(
        "product PUT (price)",
        "PUT",
        "products",
        body=_put("products", "p_simple", {"price": "19.990000"}),
    ),
    Case(
        "combination PUT (price impact)",
        "PUT",
        "combinations",
        body=_put("combinations", "combination", {"price": "2.000000"}),
    ),
    Case("product POST", "POST", "products", body=_product_body("12.500000"), creates="products"),
    Case(
        "combination POST", "POST", "combinations", body=_combination_body, creates="combinations"
    ),
    Case(
        "category POST",
        "POST",
        "categories",
        body=_static(
            f"<prestashop><category><id_parent>2</id_parent><active>1</active><name>{_langs('Conformance', 'Conformité')}</name><link_rewrite>{_langs('conformance', 'conformite')}</link_rewrite></category></prestashop>"
        ),
        creates="categories",
    ),
    Case(
        "manufacturer POST",
        "POST",
        "manufacturers",
        body=_static(
            "<prestashop><manufacturer><active>1</active><name>Conformance Works</name></manufacturer></prestashop>"
        ),
        creates="manufacturers",
    ),
    Case(
        "product option POST",
        "POST",
        "product_options",
        body=_static(
            f"<prestashop><product_option><is_color_group>0</is_color_group><group_type>select</group_type><name>{_langs('Material', 'Matière')}</name><public_name>{_langs('Material', 'Matière')}</public_name></product_option></prestashop>"
        ),
        creates="product_options",
    ),
    Case(
        "product option value POST",
        "POST",
        "product_option_values",
        body=_static(
            f"<prestashop><product_option_value><id_attribute_group>{{option}}</id_attribute_group><name>{_langs('Linen', 'Lin')}</name></product_option_value></prestashop>"
        ),
        creates="product_option_values",
    ),
    Case("combination DELETE", "DELETE", lambda s: f"combinations/{s.take('combinations')}"),
    Case("product DELETE", "DELETE", lambda s: f"products/{s.take('products')}"),
    # ---- the errors omsflow handles
    Case("bad key", "GET", "products", auth="bad"),
    Case("api root, limited key (connect reads permissions)", "GET", "", auth="limited"),
    Case("resource not allowed for the key", "GET", "products", auth="limited"),
    Case(
        "method not allowed for the key",
        "POST",
        "orders",
        body=_static("<prestashop><order><id_cart>1</id_cart></order></prestashop>"),
        auth="limited",
    ),
    Case("no key", "GET", "products", auth="none"),
    Case("unknown product id", "GET", "products/999999"),
    Case("unknown order id", "GET", "orders/999999"),
    Case("unknown resource", "GET", "nosuchresource"),
    Case("unknown filter field", "GET", "products", {"filter[nosuchfield]": "[1]"}),
    Case(
        "date filter without date=1",
        "GET",
        "orders",
        {"filter[date_upd]": ">[2020-01-01 00:00:00]"},
    ),
    Case("unknown sort field", "GET", "orders", {"sort": "[nosuchfield_ASC]"}),
    Case("bad display", "GET", "products", {"display": "[id,nosuchfield]"}),
    Case("bad price (validation)", "POST", "products", body=_product_body("abc")),
    Case(
        "PUT of an unknown id",
        "PUT",
        "manufacturers",
        body=_static(
            "<prestashop><manufacturer><id>999999</id><active>1</active><name>Nobody</name></manufacturer></prestashop>"
        ),
    ),
    Case("DELETE of an unknown id", "DELETE", "products/999999"),
    Case(
        "POST on stock_availables (not allowed)",
        "POST",
        "stock_availables",
        body=_static(
            "<prestashop><stock_available><id_product>1</id_product></stock_available></prestashop>"
        ),
    ),
)


# --------------------------------------------------------------------------- comparison


@dataclass
class Diffs:
    """The differences found, and what the data-dependent rules left uncompared."""

    lines: list[str] = field(default_factory=list)
    compared: set[str] = field(default_factory=set)  # coverage keys compared on both sides
    owed: dict[str, str] = field(default_factory=dict)  # coverage key -> the first place

    def add(self, where: str, what: str, real: Any, sandbox: Any) -> None:
        self.lines.append(f"{where}: {what}\n      real:    {real!r}\n      sandbox: {sandbox!r}")

    def skip(self, key: str, where: str) -> None:
        self.owed.setdefault(key, where)

    def uncovered(self) -> list[str]:
        return [
            f"{where}: {key} was never compared (the two stores differ in data there in "
            "every answer; make the sandbox's generated data show it)"
            for key, where in sorted(self.owed.items())
            if key not in self.compared
        ]


def _falsy_text(text: str | None) -> bool:
    return (text or "").strip() in ("", "0")


def _falsy_element(el: Element) -> bool:
    """PHP's falsy for what an XML element holds: "" or "0", an association without items,
    a multilingual field shown in one language (JSON gives it as a plain string) and empty."""
    if not len(el):
        return _falsy_text(el.text)
    if el.tag == "associations":
        return all(not len(a) for a in el)
    if all(c.tag == "language" for c in el):
        return len(el) == 1 and _falsy_text(el[0].text)
    return False


#: a PHP message names the file where it happened, under the shop's own install folder
_PHP_PATH = re.compile(r"\((/[^()]*?)/(classes|src|vendor|config)/")


def _text(text: str | None) -> str:
    return _PHP_PATH.sub(r"(<shop>/\2/", text or "")


def _shape_key(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path)


def _runs(el: Element) -> list[tuple[str, list[Element]]]:
    out: list[tuple[str, list[Element]]] = []
    for child in el:
        tag = child.tag
        if out and out[-1][0] == tag:
            out[-1][1].append(child)
        else:
            out.append((tag, [child]))
    return out


def _tag(tag: str) -> str:
    return tag.replace(XLINK_HREF, "xlink:href")


def compare_xml(
    real: Element, sandbox: Element, where: str, path: str, d: Diffs, *, texts: bool = False
) -> None:
    if real.tag != sandbox.tag:
        d.add(where, f"{path}: element name", real.tag, sandbox.tag)
        return
    path = f"{path}/{real.tag}"
    texts = texts or real.tag in ("errors", "api")
    ra, sa = dict(real.attrib), dict(sandbox.attrib)
    leaf = not len(real) and not len(sandbox)
    if leaf and real.tag.startswith("id_") and XLINK_HREF in (ra.keys() | sa.keys()):
        key = f"xlink:href on {_shape_key(path)}"
        if _falsy_text(real.text) != _falsy_text(sandbox.text):
            ra.pop(XLINK_HREF, None)
            sa.pop(XLINK_HREF, None)
            d.skip(key, where)
        else:
            d.compared.add(key)
    if set(ra) != set(sa):
        d.add(where, f"{path}: attributes", sorted(map(_tag, ra)), sorted(map(_tag, sa)))
    for name in sorted(set(ra) & set(sa) - DATA_ATTRIBUTES):
        if ra[name] != sa[name]:
            d.add(where, f"{path}/@{_tag(name)}", ra[name], sa[name])
    if texts and leaf and _text(real.text) != _text(sandbox.text):
        d.add(where, f"{path}: text", real.text, sandbox.text)
    rr, sr = _runs(real), _runs(sandbox)
    if texts and [len(e) for _, e in rr] != [len(e) for _, e in sr]:
        d.add(
            where,
            f"{path}: number of elements",
            [(t, len(e)) for t, e in rr],
            [(t, len(e)) for t, e in sr],
        )
    if [t for t, _ in rr] != [t for t, _ in sr]:
        if real.get("nodeType") and (not len(real) or not len(sandbox)):
            if len(real):  # the real store shows items the sandbox does not have here
                d.skip(f"items of {_shape_key(path)}", where)
            return
        diff = "\n        ".join(
            difflib.unified_diff(
                [t for t, _ in rr], [t for t, _ in sr], "real", "sandbox", lineterm="", n=1
            )
        )
        d.add(where, f"{path}: child elements differ\n        {diff}", len(rr), len(sr))
        return
    if real.get("nodeType") and len(real):
        d.compared.add(f"items of {_shape_key(path)}")
    for (_, re_items), (_, sb_items) in zip(rr, sr, strict=True):
        for i, (a, b) in enumerate(zip(re_items, sb_items, strict=False)):
            sub = f"{path}[{i}]" if len(re_items) > 1 or len(sb_items) > 1 else path
            compare_xml(a, b, where, sub, d, texts=texts)


def _jtype(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "object",
        list: "array",
        str: "string",
        int: "int",
        float: "float",
        bool: "bool",
    }[type(value)]


def _falsy_json(value: Any) -> bool:
    return value in ("", "0", 0, None, False) or value == [] or value == {}


def _twin(el: Element | None, key: str | int) -> Element | None:
    if el is None:
        return None
    if isinstance(key, int):
        return el[key] if key < len(el) else None
    if el.tag == "prestashop" and len(el) == 1 and el[0].tag != key:
        return None
    return el.find(key)


def compare_json(
    real: Any,
    sandbox: Any,
    where: str,
    path: str,
    d: Diffs,
    twins: tuple[Element | None, Element | None],
    *,
    detail: bool = False,
    values: bool = False,
) -> None:
    tr, ts = _jtype(real), _jtype(sandbox)
    if tr != ts:
        d.add(where, f"{path}: JSON type", f"{tr} {real!r:.60}", f"{ts} {sandbox!r:.60}")
        return
    if values and not isinstance(real, dict | list):
        if (_text(real) if isinstance(real, str) else real) != (
            _text(sandbox) if isinstance(sandbox, str) else sandbox
        ):
            d.add(where, f"{path}: value", real, sandbox)
        return
    if isinstance(real, list):
        if values and len(real) != len(sandbox):
            d.add(where, f"{path}: number of items", len(real), len(sandbox))
        if bool(real) != bool(sandbox):
            d.add(where, f"{path}: empty on one side", len(real), len(sandbox))
        for i, (a, b) in enumerate(zip(real, sandbox, strict=False)):
            compare_json(
                a,
                b,
                where,
                f"{path}[{i}]",
                d,
                (_twin(twins[0], i), _twin(twins[1], i)),
                values=values,
            )
        return
    if not isinstance(real, dict):
        return
    if detail:
        for side, doc in (("real", real), ("sandbox", sandbox)):
            for k, v in doc.items():
                if k != "id" and _falsy_json(v):
                    d.add(
                        where,
                        f"{path}.{k}: an empty value the detail view must drop (array_filter)",
                        side,
                        v,
                    )
    common = [k for k in real if k in sandbox]
    if common != [k for k in sandbox if k in real]:
        d.add(where, f"{path}: key order", common, [k for k in sandbox if k in real])
    for k in list(real) + [k for k in sandbox if k not in real]:
        sub = f"{path}.{k}"
        key = f"{_shape_key(sub)}"
        tw = (_twin(twins[0], k), _twin(twins[1], k))
        if k in real and k in sandbox:
            d.compared.add(key)
            compare_json(real[k], sandbox[k], where, sub, d, tw, values=values or k == "errors")
            continue
        missing = "sandbox" if k in real else "real"
        twin = tw[1] if missing == "sandbox" else tw[0]
        if twin is not None and _falsy_element(twin):
            if missing == "sandbox":
                d.skip(key, where)  # data: the sandbox's value is empty there
            continue
        d.add(
            where,
            f"{sub}: key only in {'real' if missing == 'sandbox' else 'sandbox'}",
            real.get(k, "<absent>"),
            sandbox.get(k, "<absent>"),
        )


def _cookie_shape(value: str | None) -> str | None:
    if value is None:
        return None
    shape = re.sub(r"^PrestaShop-[0-9a-f]{32}=[^;]*", "PrestaShop-<hash>=<value>", value)
    shape = re.sub(r"expires=[^;]+", "expires=<date>", shape)
    return re.sub(r"Max-Age=\d+", "Max-Age=<n>", shape)


#: PrestaShop writes its cookie when the request ends, which PHP can only do while it has
#: not sent the headers yet: under this many bytes of body (measured on the real store)
COOKIE_BODY_LIMIT = 4096


def compare_headers(real: Answer, sandbox: Answer, where: str, d: Diffs) -> None:
    names = {k for k, _ in real.headers} | {k for k, _ in sandbox.headers}
    for name in sorted(names):
        rv, sv = real.header(name), sandbox.header(name)
        allowed = TRANSPORT_ALLOWED.get(name)
        if allowed is not None and allowed[0](rv, sv):
            continue
        if name == "set-cookie" and (len(real.body) < COOKIE_BODY_LIMIT) != (
            len(sandbox.body) < COOKIE_BODY_LIMIT
        ):
            d.skip("set-cookie presence", where)  # data: bodies on either side of the limit
            continue
        if name == "set-cookie":
            d.compared.add("set-cookie presence")
        if (rv is None) != (sv is None):
            d.add(
                where,
                f"header {name}",
                _cookie_shape(rv) if name == "set-cookie" else rv,
                _cookie_shape(sv) if name == "set-cookie" else sv,
            )
        elif name in VALUE_HEADERS and rv != sv:
            d.add(where, f"header {name}", rv, sv)
        elif name == "set-cookie" and _cookie_shape(rv) != _cookie_shape(sv):
            d.add(where, "header set-cookie (shape)", _cookie_shape(rv), _cookie_shape(sv))


def compare_answers(
    case: Case,
    fmt: str,
    real: Answer,
    sandbox: Answer,
    d: Diffs,
    twins: tuple[Answer | None, Answer | None],
) -> None:
    shown = case.path if isinstance(case.path, str) else "<id created by this run>"
    where = f"[{case.name}] {case.method} /api/{shown} ({fmt.upper()})"
    if real.status != sandbox.status:
        d.add(where, "status", real.status, sandbox.status)
    compare_headers(real, sandbox, where, d)
    rx, sx = real.xml(), sandbox.xml()
    if rx is not None or sx is not None:
        if rx is None or sx is None:
            d.add(where, "body", real.body[:200], sandbox.body[:200])
        else:
            compare_xml(rx, sx, where, "", d)
        return
    if real.body.startswith((b"{", b"[")) or sandbox.body.startswith((b"{", b"[")):
        try:
            rj, sj = json.loads(real.body), json.loads(sandbox.body)
        except ValueError:
            d.add(where, "body (JSON)", real.body[:200], sandbox.body[:200])
            return
        tx = (twins[0].xml() if twins[0] else None, twins[1].xml() if twins[1] else None)
        detail = (
            isinstance(rj, dict) and len(rj) == 1 and isinstance(next(iter(rj.values())), dict)
        )
        if detail and list(rj) == list(sj):
            node = next(iter(rj))
            twin = (_twin(tx[0], node), _twin(tx[1], node))
            compare_json(rj[node], sj[node], where, node, d, twin, detail=True)
        else:
            errors = isinstance(rj, dict) and "errors" in rj
            compare_json(rj, sj, where, "", d, tx, values=errors)
        return
    if real.body != sandbox.body:
        d.add(where, "body", real.body[:200], sandbox.body[:200])


def run_cases(real: Side, sandbox: Side, cases: tuple[Case, ...] = CASES) -> tuple[int, Diffs]:
    """Send every case to both stores (XML first, then JSON) and compare; returns the number
    of requests compared and the differences."""
    d = Diffs()
    count = 0
    for case in cases:
        xml_answers: tuple[Answer | None, Answer | None] = (None, None)
        for fmt in case.formats:
            answers = []
            for side in (real, sandbox):
                body = case.body(side) if case.body else None
                ans = side.send(
                    case.method,
                    case.resolve(side),
                    params={k: v.format(**side.ids) for k, v in case.params.items()},
                    body=body,
                    fmt=fmt,
                    auth=case.auth,
                )
                if case.creates and ans.status == 201:
                    side.remember(case.creates, ans)
                answers.append(ans)
            count += 1
            compare_answers(case, fmt, answers[0], answers[1], d, xml_answers)
            if fmt == "xml":
                xml_answers = (answers[0], answers[1])
    return count, d


# --------------------------------------------------------------------------- the test


def real_ids(rps: Any) -> dict[str, int]:
    """The demo shop's ids of each shape (PrestaShop's install data; checked by SQL)."""

    def one(sql: str) -> int:
        value = rps.scalar(sql)
        assert value is not None, sql
        return int(value)

    return {
        "p_combo": 1,  # Hummingbird printed t-shirt: 8 combinations, 2 features
        "p_simple": 6,  # a standard product: no combinations
        "combination": 1,
        "stock_parent": one(
            "SELECT id_stock_available FROM ps_stock_available WHERE id_product=1 AND id_product_attribute=0"
        ),
        "stock_combination": one(
            "SELECT id_stock_available FROM ps_stock_available WHERE id_product=1 AND id_product_attribute=1"
        ),
        "stock_simple": one(
            "SELECT id_stock_available FROM ps_stock_available WHERE id_product=6 AND id_product_attribute=0"
        ),
        "order": 1,
        "history": one("SELECT MIN(id_order_history) FROM ps_order_history WHERE id_order=1"),
        "order_carrier": one(
            "SELECT MIN(id_order_carrier) FROM ps_order_carrier WHERE id_order=1"
        ),
        "category_leaf": one("SELECT MAX(id_category) FROM ps_category WHERE id_parent > 2"),
        "manufacturer": 1,
        "option": 1,
        "option_value_a": one(
            "SELECT MIN(id_attribute) FROM ps_attribute WHERE id_attribute_group=1"
        ),
        "option_value_b": one(
            "SELECT MIN(id_attribute) FROM ps_attribute WHERE id_attribute_group=2"
        ),
        "customer": one("SELECT id_customer FROM ps_orders WHERE id_order=1"),
        "address": one("SELECT id_address_delivery FROM ps_orders WHERE id_order=1"),
        "carrier": one("SELECT id_carrier FROM ps_orders WHERE id_order=1"),
    }


def add_checkout_message_and_tax(rps: Any) -> dict[str, int]:
    """What the demo data lacks and a real shop has: a checkout message (the customer_thread
    and customer_message PaymentModule::validateOrder writes) on order 2, and the 20 % tax on
    order 1's first line (an order_detail_tax row: PrestaShop hides the detail's tax_rate).
    Returns the ids of those shapes, for the cases read around a page of orders."""
    _add_thread_and_tax(rps)

    def one(sql: str) -> int:
        value = rps.scalar(sql)
        assert value not in (None, "NULL"), sql
        return int(str(value))

    return {
        "order_detail": one("SELECT MIN(id_order_detail) FROM ps_order_detail WHERE id_order=1"),
        "tax": one("SELECT MIN(id_tax) FROM ps_order_detail_tax"),
        "thread_order": one("SELECT MIN(id_order) FROM ps_customer_thread WHERE id_order > 0"),
        "thread": one("SELECT MIN(id_customer_thread) FROM ps_customer_thread WHERE id_order > 0"),
        "message": one(
            "SELECT MIN(m.id_customer_message) FROM ps_customer_message m JOIN ps_customer_thread t "
            "ON t.id_customer_thread = m.id_customer_thread WHERE t.id_order > 0"
        ),
    }


def _add_thread_and_tax(rps: Any) -> None:
    rps.sql(
        "INSERT INTO ps_customer_thread (id_shop, id_lang, id_contact, id_customer, id_order, "
        "id_product, status, email, token, date_add, date_upd) SELECT 1, o.id_lang, 0, "
        "o.id_customer, o.id_order, 0, 'open', c.email, 'CONFORMTOKEN', o.date_add, o.date_add "
        "FROM ps_orders o JOIN ps_customer c ON c.id_customer = o.id_customer WHERE o.id_order = 2;"
        "INSERT INTO ps_customer_message (id_customer_thread, id_employee, message, file_name, "
        "ip_address, user_agent, private, `read`, date_add, date_upd) VALUES (LAST_INSERT_ID(), 0, "
        "'Merci de sonner deux fois', '', '', '', 0, 0, NOW(), NOW());"
        "INSERT INTO ps_order_detail_tax (id_order_detail, id_tax, unit_amount, total_amount) "
        "SELECT MIN(id_order_detail), 1, 4.78, 4.78 FROM ps_order_detail WHERE id_order = 1;"
    )


def sandbox_ids(server: SandboxServer) -> dict[str, int]:
    """The generated shop's ids of the same shapes."""
    s = server.store
    p_combo = next(p for p in sorted(s.tables["products"]) if s.combinations_of(p))
    p_simple = next(p for p in sorted(s.tables["products"]) if not s.combinations_of(p))
    combination = s.combinations_of(p_combo)[0]
    order = min(o for o, r in s.tables["orders"].items() if r["note"])  # like demo order 1
    rec = s.tables["orders"][order]
    leaf = max(c for c, r in s.tables["categories"].items() if int(r["id_parent"]) > 1)
    values = s.tables["product_option_values"].values()
    thread = min(s.tables["customer_threads"])
    return {
        "p_combo": p_combo,
        "p_simple": p_simple,
        "combination": combination,
        "stock_parent": s.stock_index[(p_combo, 0)],
        "stock_combination": s.stock_index[(p_combo, combination)],
        "stock_simple": s.stock_index[(p_simple, 0)],
        "order": order,
        "history": s.histories_by_order[order][0],
        "order_carrier": s.carriers_by_order[order][0],
        "category_leaf": leaf,
        "manufacturer": 1,
        "option": 1,
        "option_value_a": min(int(v["id"]) for v in values if v["id_attribute_group"] == "1"),
        "option_value_b": min(int(v["id"]) for v in values if v["id_attribute_group"] == "2"),
        # the demo order's customer subscribed to the newsletter; its address has a company
        "customer": min(c for c, r in s.tables["customers"].items() if r["newsletter"] == "1"),
        "address": min(a for a, r in s.tables["addresses"].items() if r["company"]),
        "carrier": int(rec["id_carrier"]),
        # a combination's line with a reference, like demo line 1 (the JSON detail view
        # drops an empty value)
        "order_detail": min(
            d
            for d, r in s.tables["order_details"].items()
            if r["product_reference"] and r["product_attribute_id"] != "0"
        ),
        "tax": 1,
        "thread_order": int(s.tables["customer_threads"][thread]["id_order"]),
        "thread": thread,
        "message": min(s.owned["customer_messages"][thread]),
    }


LIMITED_KEY = "LIMITEDKEYREADSORDERSONLY0000001"
LIMITED_PERMISSIONS = {"orders": ["GET", "HEAD"], "order_states": ["GET", "HEAD"]}


def add_limited_key(rps: Any) -> None:
    """The same key on the real store, as the back office would save it."""
    rows = ", ".join(
        f"('{res}', '{method}', @id)"
        for res, methods in LIMITED_PERMISSIONS.items()
        for method in methods
    )
    rps.sql(
        "INSERT INTO ps_webservice_account (`key`, description, class_name, is_module, active) "
        f"VALUES ('{LIMITED_KEY}', 'omsflow conformance: reads orders', 'WebserviceRequest', 0, 1);"
        "SET @id = LAST_INSERT_ID();"
        "INSERT INTO ps_webservice_account_shop (id_webservice_account, id_shop) VALUES (@id, 1);"
        f"INSERT INTO ps_webservice_permission (resource, method, id_webservice_account) VALUES {rows};"
    )


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=30, orders=12, seed=5, languages=2) as server:
        server.add_key(LIMITED_KEY, LIMITED_PERMISSIONS)
        yield server


def test_the_sandbox_answers_like_the_real_store(
    rps: Any, sandbox: SandboxServer, request: pytest.FixtureRequest
) -> None:
    add_limited_key(rps)
    around = add_checkout_message_and_tax(rps)
    real = Side("real", rps.api_url, rps.key, {**real_ids(rps), **around}, limited_key=LIMITED_KEY)
    fake = Side(
        "sandbox", sandbox.api_url, sandbox.key, sandbox_ids(sandbox), limited_key=LIMITED_KEY
    )
    count, d = run_cases(real, fake)
    problems = d.lines + d.uncovered()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = f"conformance: {count} requests compared, {len(problems)} differences"
    if reporter is not None:
        reporter.write_line(line)
    assert not problems, line + "\n\n" + "\n\n".join(problems)


# --------------------------------------------------------------------------- behaviour


def _ids(answer: Answer) -> list[int]:
    root = answer.xml()
    assert root is not None, answer.body[:200]
    return [int(e.get("id") or 0) for e in root[0]]


#: without ``sort`` (no ORDER BY) MySQL walks the index it picked: the id for most
#: resources, these fields (then the id) for a few, as a real 8.2.1 answers
NATURAL_ORDER = {
    "products": None,
    "combinations": None,
    "stock_availables": None,
    "orders": None,
    "order_carriers": None,
    "manufacturers": None,
    "product_option_values": None,
    "order_states": "module_name",
    "order_histories": "id_order",
    "categories": "id_parent",
    "addresses": "id_customer",
}


def test_lists_without_sort_come_in_the_same_order_on_both(
    rps: Any, sandbox: SandboxServer
) -> None:
    sides = (
        Side("real", rps.api_url, rps.key, {}),
        Side("sandbox", sandbox.api_url, sandbox.key, {}),
    )
    for resource, field_name in NATURAL_ORDER.items():
        for side in sides:
            shown = f"[id,{field_name}]" if field_name else "[id]"
            root = side.send("GET", resource, params={"display": shown}).xml()
            assert root is not None
            rows = [
                (int(e.findtext("id") or 0), e.findtext(field_name) or "" if field_name else "")
                for e in root[0]
            ]
            assert len(rows) > 1, (side.name, resource)

            def key(row: tuple[int, str]) -> tuple[Any, int]:
                value = row[1]
                return (int(value) if value.isdigit() else value, row[0])

            assert rows == sorted(rows, key=key), (side.name, resource, rows)


def _stock(side: Side, product: int) -> dict[int, tuple[int, int]]:
    """The product's stock rows: id_product_attribute -> (row id, quantity)."""
    root = side.send(
        "GET",
        "stock_availables",
        params={"filter[id_product]": f"[{product}]", "display": "full"},
    ).xml()
    assert root is not None
    return {
        int(r.findtext("id_product_attribute") or 0): (
            int(r.findtext("id") or 0),
            int(r.findtext("quantity") or 0),
        )
        for r in root[0]
    }


def test_both_stores_keep_the_product_row_as_the_sum(rps: Any, sandbox: SandboxServer) -> None:
    """A PUT on a combination's stock row makes the product-level row the sum of the
    combinations' rows (``StockAvailable::postSave``); a PUT on the product-level row itself
    is saved as sent, until the next combination write sums it again. Same requests, same
    outcome on both stores."""
    real = Side("real", rps.api_url, rps.key, real_ids(rps))
    fake = Side("sandbox", sandbox.api_url, sandbox.key, sandbox_ids(sandbox))
    for side in (real, fake):
        product = side.ids["p_combo"]
        rows = _stock(side, product)
        combination = min(a for a in rows if a)
        for attribute, quantity in ((combination, 37), (0, 5), (max(rows), 11)):
            side.ids["row"] = rows[attribute][0]
            body = _put("stock_availables", "row", {"quantity": str(quantity)})(side)
            assert side.send("PUT", "stock_availables", body=body).status == 200
            rows = _stock(side, product)
            summed = sum(q for a, (_, q) in rows.items() if a)
            expected = quantity if attribute == 0 else summed
            assert rows[0][1] == expected, (side.name, attribute, quantity, rows)
