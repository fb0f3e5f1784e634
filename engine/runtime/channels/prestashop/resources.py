"""PrestaShop's resources and their fields: the store side the channel mappings are
checked against (``engine.spec.StoreSide``).

Two sources, one reader: the bundled knowledge (``resources.json``: PrestaShop 8.2.1's own
``?schema=synopsis`` of each resource the mappings use, captured from the real store and
kept in ``tests/fixtures/prestashop/synopsis-8.2.1``, plus the fields 1.7 has that 8.x has
not, and the other way round), and a connected store's live ``?schema=synopsis``, which also
lists the fields its modules add (``omsflow spec validate --store NAME``).

A field's type comes from its ``format`` (``isUnsignedId`` -> id, ``isPrice`` -> decimal,
``isBool`` -> boolean, ``isDate`` -> date, a multilingual field -> multilingual, any other
format -> text), then from ``_OVERRIDES`` for the fields PrestaShop declares without one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources as _res
from typing import Any
from xml.etree.ElementTree import Element

from engine.runtime.channels.prestashop import xml as psxml
from engine.spec.storeside import StoreField, StoreResource, StoreSide

CHANNEL = "prestashop"

ROLES: Mapping[str, str] = {
    "order_in": "orders",
    "customer_in": "customers",
    "address_in": "addresses",
    "product_in": "products",
    "combination_in": "combinations",
    "stock_out": "stock_availables",
    "price_out": "products",
    "variation_price_out": "combinations",
    "status_out": "order_histories",
}
"""Mapping name -> the resource it reads (inbound) or writes (outbound). ``order_line_in``
reads the orders' ``order_rows`` association (a child of ``order_in``)."""

WRITES: Mapping[str, tuple[str, ...]] = {
    "stock_out": ("quantity",),
    "price_out": ("price",),
    "variation_price_out": ("price",),
    "status_out": ("id_order", "id_order_state"),
}
"""Outbound mapping -> the fields the write needs (the adapter reads them)."""

RESOURCES = (
    "orders",
    "products",
    "combinations",
    "stock_availables",
    "order_histories",
    "customers",
    "addresses",
    "order_details",
)
"""The resources bundled (and read live): every one a mapping role names."""

_FORMATS: Mapping[str, str] = {
    "isunsignedid": "id",
    "isnullorunsignedid": "id",
    "isunsignedint": "integer",
    "isint": "integer",
    "ispositiveint": "integer",
    "isprice": "decimal",
    "isnegativeprice": "decimal",
    "isfloat": "decimal",
    "isunsignedfloat": "decimal",
    "isbool": "boolean",
    "isdate": "date",
    "isdateformat": "date",
    "isbirthdate": "date",
    "isdateornull": "date",
}

_OVERRIDES: Mapping[str, Mapping[str, str]] = {
    "orders": {
        "valid": "boolean",
        "invoice_number": "integer",
        "delivery_number": "integer",
        "invoice_date": "date",
        "delivery_date": "date",
        "reference": "text",
        "shipping_number": "text",
        "note": "text",
    },
    "order_rows": {
        "product_id": "id",
        "product_attribute_id": "id",
        "product_quantity": "integer",
        "product_name": "text",
        "product_reference": "text",
        "product_ean13": "text",
        "product_isbn": "text",
        "product_upc": "text",
        "product_price": "decimal",
        "id_customization": "id",
        "unit_price_tax_incl": "decimal",
        "unit_price_tax_excl": "decimal",
    },
    "products": {
        "new": "boolean",
        "cache_default_attribute": "id",
        "id_default_image": "id",
        "id_default_combination": "id",
        "position_in_category": "integer",
        "manufacturer_name": "text",
        "quantity": "integer",
        "type": "text",
        "unit_price_ratio": "decimal",
    },
    "combinations": {"reference": "text", "supplier_reference": "text"},
    "customers": {
        "id_default_group": "id",
        "newsletter_date_add": "date",
        "ip_registration_newsletter": "text",
        "last_passwd_gen": "date",
        "note": "text",
    },
}

VERSION_ONLY: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "8.x": {"products": {"product_type": {"type": "text"}}},
    "1.7": {
        "combinations": {
            "quantity": {"type": "integer"},
            "location": {"type": "text"},
        }
    },
}
"""Fields only one major version has: 8.0 added ``products.product_type``; 1.7 still lists
``quantity`` and ``location`` on combinations (8.x keeps stock in stock_availables only)."""


def _type(resource: str, el: Element) -> str:
    name = el.tag
    if name in _OVERRIDES.get(resource, {}):
        return _OVERRIDES[resource][name]
    if el.find("language") is not None:
        return "multilingual"
    fmt = (el.get("format") or "").lower()
    if fmt:
        return _FORMATS.get(fmt, "text")
    if name == "id" or name.startswith("id_"):
        return "id"
    if name.startswith("date_") or name.endswith("_date"):
        return "date"
    if el.get("maxSize"):
        return "text"
    return "any"


def _read_only(el: Element) -> bool:
    return (el.get("read_only") or el.get("readOnly") or "").lower() == "true"


def _fields(resource: str, el: Element) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"id": {"type": "id"}}
    for child in el:
        if child.tag == "associations":
            continue
        entry: dict[str, Any] = {"type": _type(resource, child)}
        if _read_only(child):
            entry["read_only"] = True
        out[child.tag] = entry
    return out


def synopsis_to_data(resource: str, root: Element) -> dict[str, Any]:
    """One resource's ``?schema=synopsis`` document -> ``{"fields": {...}, "associations":
    {name: {"fields": {...}}}}`` (the shape of ``resources.json``)."""
    entity = next(iter(root), None)
    if entity is None:
        return {"fields": {}, "associations": {}}
    assocs: dict[str, Any] = {}
    node = entity.find("associations")
    for assoc in node if node is not None else ():
        item = next(iter(assoc), None)
        assocs[assoc.tag] = {
            "fields": _fields(assoc.tag, item) if item is not None else {"id": {"type": "id"}}
        }
    return {"fields": _fields(resource, entity), "associations": assocs}


def bundle_data(synopses: Mapping[str, str]) -> dict[str, Any]:
    """``resources.json`` from the captured synopses (resource -> XML text) and the
    version differences (``VERSION_ONLY``)."""
    out: dict[str, Any] = {}
    for resource in sorted(synopses):
        data = synopsis_to_data(resource, psxml.parse_xml(synopses[resource]))
        for version, extra in VERSION_ONLY.items():
            for name, entry in extra.get(resource, {}).items():
                data["fields"][name] = {**data["fields"].get(name, entry), "versions": [version]}
        out[resource] = data
    return {
        "description": (
            "PrestaShop webservice resources and fields, from PrestaShop 8.2.1's "
            "?schema=synopsis; 'versions' marks a field only some versions have "
            "(engine/runtime/channels/prestashop/resources.py)."
        ),
        "versions": ["8.x", "1.7"],
        "resources": out,
    }


def _resource(name: str, data: Mapping[str, Any]) -> StoreResource:
    return StoreResource(
        name=name,
        fields={
            fname: StoreField(
                name=fname,
                type=str(f.get("type", "any")),
                read_only=bool(f.get("read_only", False)),
                versions=tuple(f.get("versions", ())),
            )
            for fname, f in data.get("fields", {}).items()
        },
        associations={
            aname: _resource(aname, a) for aname, a in data.get("associations", {}).items()
        },
    )


ADDRESS_READS: Mapping[str, Mapping[str, Any]] = {
    "country_iso": {"type": "text", "read_only": True},
    "country": {"type": "text", "read_only": True},
    "state": {"type": "text", "read_only": True},
    "state_iso": {"type": "text", "read_only": True},
}
"""What the adapter adds to an order's addresses: the country's ISO code and name (in the
order's language), the state's name and ISO code (from ``countries`` and ``states``)."""


ORDER_READS: Mapping[str, Mapping[str, Any]] = {
    "customer_message": {"type": "text", "read_only": True},
}
"""What the adapter adds to an order's fields: what the customer wrote about it (the
``customer_messages`` of its ``customer_threads``)."""

DETAIL_READS: Mapping[str, Mapping[str, Any]] = {
    "tax_rate": {"type": "decimal", "read_only": True},
}
"""What the adapter adds to an order row's ``detail`` (its ``order_details`` record): the
tax rate, which PrestaShop hides from the webservice (read from the detail's ``taxes``)."""


def _row_detail(resources: Mapping[str, Any]) -> dict[str, Any]:
    """The ``detail`` association of an order row: the ``order_details`` fields and
    ``DETAIL_READS``."""
    details = resources.get("order_details") or {}
    return {"fields": {**details.get("fields", {"id": {"type": "id"}}), **DETAIL_READS}}


def order_reads(resources: Mapping[str, Any]) -> dict[str, Any]:
    """The associations the adapter puts onto each order it reads (read in bulk per page of
    orders, ``PrestaShopAdapter.with_related``): ``customer`` (the customers record),
    ``delivery_address`` and ``invoice_address`` (addresses records with ``ADDRESS_READS``),
    ``carrier`` (id, name) and ``currency`` (id, iso_code, name). PrestaShop's orders only
    hold their ids; the mappings read these like the store's own associations."""
    out: dict[str, Any] = {}
    customers = resources.get("customers")
    if customers:
        out["customer"] = {"fields": dict(customers.get("fields", {}))}
    addresses = resources.get("addresses")
    if addresses:
        fields = {**addresses.get("fields", {}), **ADDRESS_READS}
        out["delivery_address"] = {"fields": fields}
        out["invoice_address"] = {"fields": dict(fields)}
    out["carrier"] = {"fields": {"id": {"type": "id"}, "name": {"type": "text"}}}
    out["currency"] = {
        "fields": {"id": {"type": "id"}, "iso_code": {"type": "text"}, "name": {"type": "text"}}
    }
    return out


def store_side(data: Mapping[str, Any], label: str, *, live: bool = False) -> StoreSide:
    """A ``StoreSide`` of the ``prestashop`` channel from ``resources.json``-shaped data (the
    orders resource with the associations the adapter adds, ``order_reads``)."""
    resources = dict(data["resources"])
    if "orders" in resources:
        orders = dict(resources["orders"])
        assocs = {**order_reads(resources), **orders.get("associations", {})}
        if "order_rows" in assocs:  # each row has its order_details record as `detail`
            rows = dict(assocs["order_rows"])
            rows["associations"] = {
                **rows.get("associations", {}),
                "detail": _row_detail(resources),
            }
            assocs["order_rows"] = rows
        orders["associations"] = assocs
        orders["fields"] = {**orders.get("fields", {}), **ORDER_READS}
        resources["orders"] = orders
    if "addresses" in resources:  # address_in reads the addresses the adapter completed
        addresses = dict(resources["addresses"])
        addresses["fields"] = {**addresses.get("fields", {}), **ADDRESS_READS}
        resources["addresses"] = addresses
    return StoreSide(
        channel=CHANNEL,
        label=label,
        resources={name: _resource(name, r) for name, r in resources.items()},
        roles=ROLES,
        writes=WRITES,
        live=live,
    )


@cache
def bundled_data() -> dict[str, Any]:
    text = (_res.files(__package__) / "resources.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def bundled() -> StoreSide:
    """What omsflow knows of PrestaShop 8.x and 1.7 without asking a store."""
    return store_side(bundled_data(), "PrestaShop 8.x/1.7")


def live(adapter: Any, store_name: str, *, resources: Iterable[str] = RESOURCES) -> StoreSide:
    """The connected store's own resources: its ``?schema=synopsis`` of each (modules'
    fields included), read now (one request per resource)."""
    out: dict[str, Any] = {}
    for resource in resources:
        root = adapter.client.get_xml(resource, params={"schema": "synopsis"})
        out[resource] = synopsis_to_data(resource, root)
    facts = getattr(adapter, "facts", None)
    shown = str(facts.version) if facts is not None and facts.version else ""
    version = f" (PrestaShop {shown})" if shown else ""
    return store_side({"resources": out}, f"store '{store_name}'{version}", live=True)
