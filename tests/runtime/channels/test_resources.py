"""The PrestaShop resources the mapping checks know: the bundled ``resources.json`` is what
PrestaShop 8.2.1's own ``?schema=synopsis`` says (captured from the real store, kept in the
fixtures) plus the documented 8.x/1.7 differences; field types come from the formats."""

from __future__ import annotations

import json
from pathlib import Path

from engine.runtime.channels.prestashop import resources
from engine.runtime.channels.prestashop import xml as psxml
from tests.conftest import REPO, samples_dir

FIXTURES = REPO / "tests" / "fixtures" / "prestashop" / "synopsis-8.2.1"


def test_bundled_knowledge_is_the_real_synopsis_plus_version_differences() -> None:
    captured = {r: (FIXTURES / f"{r}.xml").read_text("utf-8") for r in resources.RESOURCES}
    assert resources.bundle_data(captured) == resources.bundled_data()
    assert sorted(p.stem for p in FIXTURES.glob("*.xml")) == sorted(resources.RESOURCES)


def test_field_types_and_flags() -> None:
    side = resources.bundled()
    orders, products = side.resources["orders"], side.resources["products"]
    assert orders.fields["total_paid_tax_incl"].type == "decimal"
    assert orders.fields["date_add"].type == "date"
    assert orders.fields["id_customer"].type == "id"
    assert orders.fields["gift_message"].type == "text"
    assert orders.fields["valid"].type == "boolean"
    rows = orders.associations["order_rows"]
    assert rows.fields["product_quantity"].type == "integer"
    assert rows.fields["product_name"].read_only
    assert products.fields["name"].type == "multilingual"
    assert products.fields["manufacturer_name"].read_only
    assert products.fields["product_type"].versions == ("8.x",)
    assert side.resources["combinations"].fields["location"].versions == ("1.7",)
    assert side.resources["stock_availables"].fields["quantity"].type == "integer"
    assert side.roles["stock_out"] == "stock_availables"
    assert side.writes["status_out"] == ("id_order", "id_order_state")


def test_a_1_7_synopsis_reads_the_same_way() -> None:
    root = psxml.parse_xml(
        Path(samples_dir() / "iq2i_categories_schema_synopsis.ps1.7.x.xml").read_bytes()
    )
    data = resources.synopsis_to_data("categories", root)
    assert data["fields"]["name"]["type"] == "multilingual"
    assert data["fields"]["active"]["type"] == "boolean"
    assert data["fields"]["id_parent"]["type"] == "integer"  # 1.7 declares it isUnsignedInt
    assert "categories" in data["associations"]
    json.dumps(data)  # JSON-safe, as resources.json holds it
