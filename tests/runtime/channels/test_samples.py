"""Every recorded PrestaShop response parses through the client into records without losing a
field the OMS uses (bodies + statuses + headers served through httpx.MockTransport)."""

# ruff: noqa: S314 - trusted local samples read with the stdlib on purpose, independently of the client

from __future__ import annotations

import json
from dataclasses import fields as dc_fields
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from engine.errors import ChannelError, ChannelNotFound
from engine.runtime.channels.prestashop import records as R
from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.prestashop.connect import parse_api_root

from .helpers import (
    KEY,
    is_list_document,
    plural,
    recorded,
    reference_fields,
    response_samples,
    serve,
)

RECORDS: dict[str, Any] = {
    "orders": R.Order,
    "order_states": R.OrderState,
    "order_histories": R.OrderHistory,
    "order_carriers": R.OrderCarrier,
    "categories": R.Category,
    "manufacturers": R.Manufacturer,
    "product_options": R.ProductOption,
    "product_option_values": R.ProductOptionValue,
    "products": R.Product,
    "combinations": R.Combination,
    "stock_availables": R.StockAvailable,
}
ASSOC_FIELDS = {
    "category_ids": "categories",
    "combination_ids": "combinations",
    "image_ids": "images",
    "option_value_ids": "product_option_values",
    "child_ids": "categories",
    "value_ids": "product_option_values",
}


def _resource_of(path: Path) -> tuple[str, str]:
    if path.suffix == ".json":
        (key,) = json.loads(path.read_text()).keys()
        return (key if key.endswith("s") else plural(key)), "JSON"
    root = ET.fromstring(path.read_bytes()) if path.stat().st_size else None
    if root is None or not len(root):
        return "", "XML"
    first = root[0]
    return (first.tag if is_list_document(root) else plural(first.tag)), "XML"


def _same_scalar(got: Any, want: Any) -> bool:
    return (
        str(got if got is not None else "").strip()
        == str(want if want is not None else "").strip()
    )


def _check_record(record: Any, ref: dict[str, Any]) -> None:
    """Every record field that the sample carries equals the sample's value, coerced."""
    for f in dc_fields(record):
        value = getattr(record, f.name)
        if f.name in ASSOC_FIELDS and "associations" in ref:
            assoc = ref["associations"].get(ASSOC_FIELDS[f.name]) or []
            ids = [int(i["id"]) if isinstance(i, dict) else int(i) for i in assoc]
            assert list(value) == ids, f.name
            continue
        if f.name == "rows":
            rows = (ref.get("associations") or {}).get("order_rows", [])
            assert len(value) == len(rows)
            continue
        if f.name not in ref:
            continue
        raw = ref[f.name]
        if isinstance(raw, dict | list):  # multilingual
            texts = R.language_values(
                [{"id": k, "value": v} for k, v in raw.items()] if isinstance(raw, dict) else raw
            )
            assert value in texts.values() or (value == "" and not any(texts.values())), f.name
        elif isinstance(value, bool):
            assert value == (str(raw).strip() not in {"", "0"}), f.name
        elif isinstance(value, int):
            assert value == int(str(raw).strip() or 0), f.name
        elif isinstance(value, Decimal):
            assert value == Decimal(str(raw).strip() or 0), f.name
        elif f.name.startswith("date_"):
            text = str(raw).strip()
            assert value == (None if not text or text.startswith("0000") else text), f.name
        else:
            assert _same_scalar(value, raw), f.name


@pytest.mark.parametrize("path", response_samples(), ids=lambda p: p.name)
def test_every_sample_parses_without_losing_fields(path: Path) -> None:
    rec = recorded(path)
    resource, fmt = _resource_of(path)
    with PrestaShopClient(
        "http://shop.test", KEY, transport=serve(rec), sleep=lambda s: None
    ) as c:
        if not resource:  # DELETE 200 with an empty body
            assert c.request("DELETE", "categories/10").status_code == 200
            return
        if resource == "errors" or rec.status >= 400:
            with pytest.raises(ChannelError) as info:
                c.get("categories", 99, fmt="XML")
            assert isinstance(info.value, ChannelNotFound)
            assert info.value.store_code in {"87", "92"}
            assert KEY not in str(info.value)
            return
        if "api_root" in path.name:
            shop, granted = parse_api_root(c.get_xml(""), c.api_url)
            assert shop == "Prestashop"
            assert set(granted["addresses"]) >= {"GET", "PUT", "POST", "DELETE", "HEAD"}
            return
        items = c.get(resource, fmt=fmt)
    refs = reference_fields(path)
    assert len(items) == len(refs)
    for item, ref in zip(items, refs, strict=True):
        for key, want in ref.items():
            got = item.get(key)
            if key == "associations":
                for name, ids in want.items():
                    got_ids = [str(i.get("id")) for i in got[name]]
                    want_ids = [str(i["id"]) if isinstance(i, dict) else i for i in ids]
                    assert got_ids == want_ids, name
            elif isinstance(want, dict):
                assert {str(v["id"]): v["value"] for v in got} == want, key
            elif fmt == "JSON":
                assert got == want, key
            else:
                assert _same_scalar(got, want), key
        cls = RECORDS.get(resource)
        if cls is not None and "schema" not in path.name:  # schemas are empty templates
            _check_record(cls.from_data(item), ref)


def test_order_sample_maps_every_oms_field() -> None:
    """The 1.6 XML order and the 8.x JSON order give the same typed fields the OMS maps."""
    from .helpers import sample

    for name, fmt in (
        ("order_5_detail.ps1.6.1.23.xml", "XML"),
        ("order_single_detail.ps8.x.json", "JSON"),
    ):
        rec = recorded(sample(name))
        with PrestaShopClient("http://shop.test", KEY, transport=serve(rec)) as c:
            order = R.Order.from_data(c.get("orders", 5, fmt=fmt)[0])
        m = order.to_mapping()
        for key in (
            "reference",
            "date_add",
            "date_upd",
            "total_paid_tax_incl",
            "total_products",
            "total_shipping",
            "id_customer",
            "id_currency",
            "payment",
            "current_state",
        ):
            assert m[key] not in (None, ""), (name, key)
        assert m["order_rows"]
        assert all(r["product_reference"] for r in m["order_rows"])
    # 8.x dropped falsy fields (gift, note…) and typed ints: still coerced
    assert order.current_state == 4
    assert order.rows[0].product_attribute_id == 0
    assert order.total_paid_tax_incl == Decimal("20.230000")


def test_product_json_multilingual_and_xml_single_language() -> None:
    from .helpers import sample

    rec = recorded(sample("product_single_detail.ps8.x.json"))
    with PrestaShopClient("http://shop.test", KEY, transport=serve(rec)) as c:
        p = R.Product.from_data(c.get("products", 59989)[0])
    assert p.name.startswith("Maquette Gundam")
    assert set(p.names) == {1, 2}
    assert p.id_default_image == 132903
    assert p.active
    assert p.price == Decimal("24.166667")
    assert p.stock_refs == (R.StockRef(60251, 0),)
    rec = recorded(sample("product_1_with_combinations.ps1.6.1.23.xml"))
    with PrestaShopClient("http://shop.test", KEY, transport=serve(rec)) as c:
        p = R.Product.from_data(c.get("products", 1, fmt="XML")[0])
    assert p.name == "Faded Short Sleeves T-shirt"
    assert p.combination_ids == (1, 2, 3, 4, 5, 6)
    assert p.id_manufacturer == 1
    assert p.reference == "demo_1"
    assert [s.id_product_attribute for s in p.stock_refs] == [0, 1, 2, 3, 4, 5, 6]
