"""Variation products from YAML/JSON files, field rules, and located one-line errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings

from engine.runtime.listing.drafts import (
    DraftErrors,
    ProductDraft,
    VariantDraft,
    drafts_to_data,
    load_drafts,
    product_problems,
)

from .strategies import draft_files, drafts

TSHIRT = """\
sku: TSHIRT
name: Organic T-shirt
selling_price: 19.90
retail_selling_price: 24.00
category: T-shirts
brand: Acme
image: https://cdn.example.com/tshirt.jpg
active: yes
variants:
  - sku: 0012-S-RED
    attributes: {Size: S, Color: Red}
    stock: 5
  - sku: 0012-M-RED
    attributes: {Size: M, Color: Red}
    price_impact: 1.50
    stock: 2
"""


def test_yaml_variation_product_loads_exactly(tmp_path: Path) -> None:
    path = tmp_path / "tshirt.yaml"
    path.write_text(TSHIRT)
    assert load_drafts(path) == [
        ProductDraft(
            sku="TSHIRT", name="Organic T-shirt", price=Decimal("19.90"),
            retail_selling_price=Decimal("24.00"), selling_price=Decimal("19.90"),
            category="T-shirts", brand="Acme", image="https://cdn.example.com/tshirt.jpg",
            variants=(
                VariantDraft("0012-S-RED", (("Size", "S"), ("Color", "Red")), Decimal(0), 5),
                VariantDraft("0012-M-RED", (("Size", "M"), ("Color", "Red")), Decimal("1.5"), 2),
            ),
        )
    ]  # fmt: skip


def test_json_list_and_products_key_load(tmp_path: Path) -> None:
    data = yaml.safe_load(TSHIRT)
    data["variants"][0]["sku"] = "S-RED"
    single = {"sku": "MUG", "name": "Mug", "price": 4.5, "stock": 3}
    (tmp_path / "a.json").write_text(json.dumps([data, single]))
    (tmp_path / "b.json").write_text(json.dumps({"products": [data, single]}))
    a = load_drafts(tmp_path / "a.json")
    assert a == load_drafts(tmp_path / "b.json")
    assert [d.sku for d in a] == ["TSHIRT", "MUG"]
    assert a[1] == ProductDraft("MUG", "Mug", Decimal("4.5"), stock=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TSHIRT.replace("Size: M, Color: Red", "Size: S, Color: Red"),
         ["x.yaml:14: combination Size=S, Color=Red repeats variant 0 "
          "(at $.variants[1].attributes.Size)"]),
        (TSHIRT.replace("{Size: M, Color: Red}", "{Size: M}"),
         ["x.yaml:14: attribute names ['Size'] differ from the first variant's ['Color', 'Size'];"
          " every variant of a product needs the same attribute names"
          " (at $.variants[1].attributes.Size)"]),
        (TSHIRT.replace("sku: 0012-M-RED", "sku: 0012-S-RED"),
         ["x.yaml:13: SKU '0012-S-RED' is already used by variant 0 (at $.variants[1].sku)"]),
        (TSHIRT.replace("stock: 2", "stock: -2").replace("price_impact: 1.50", "price_impact: x"),
         ["x.yaml:15: price_impact must be a number, got 'x' (at $.variants[1].price_impact)",
          "x.yaml:16: stock must be >= 0, got -2 (at $.variants[1].stock)"]),
        (TSHIRT.replace("name: Organic T-shirt", "name: Bad; name\nnmae: typo"),
         ["x.yaml:2: name contains ';'; PrestaShop names exclude < > ; = # { } (at $.name)",
          "x.yaml:3: unknown product field 'nmae' (known: active, brand, category, description, "
          "image, name, price, retail_selling_price, selling_price, sku, stock, variants) "
          "(at $.nmae)"]),
        (TSHIRT.replace("selling_price: 19.90", "selling_price: 19.1234567"),
         ["x.yaml:3: selling_price 19.1234567 has more than 6 decimals (at $.selling_price)"]),
        (TSHIRT.replace("sku: TSHIRT", "sku: TS{1}"),
         ["x.yaml:1: SKU 'TS{1}' contains '{'; PrestaShop references exclude < > ; = { } "
          "(at $.sku)"]),
        (TSHIRT + "stock: 4\n",
         ["x.yaml:17: a variation product's stock is given per variant; parent stock must be 0 "
          "(at $.stock)"]),
        (TSHIRT.replace("brand: Acme", "brand: Acme\nbrand: Other"),
         ["x.yaml:7: duplicate key 'brand' (at $.brand)"]),
        ("sku: [unclosed\n", None),
    ],
)  # fmt: skip
def test_yaml_errors_are_located_one_line_each(
    tmp_path: Path, text: str, expected: list[str] | None
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(DraftErrors) as info:
        load_drafts(path)
    lines = str(info.value).splitlines()
    if expected is None:
        assert len(lines) == 1
        assert lines[0].startswith(f"{path}:")
        assert "not valid YAML" in lines[0]
        return
    assert lines == [f"{tmp_path}/{line}" for line in expected]


def test_duplicate_sku_across_products_names_both_places(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"products": [
        {"sku": "A", "name": "a", "price": "1"},
        {"sku": "B", "name": "b", "price": "1",
         "variants": [{"sku": "A", "attributes": {"Size": "S"}}]},
    ]}))  # fmt: skip
    with pytest.raises(DraftErrors) as info:
        load_drafts(path)
    assert str(info.value) == (
        f"{path}: SKU 'A' is already used at $.products[0] (at $.products[1].variants[0].sku)"
    )


def test_json_syntax_error_and_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"sku": "A",\n "name": }')
    with pytest.raises(DraftErrors, match=r"p\.json:2: not valid JSON"):
        load_drafts(tmp_path / "p.json")
    (tmp_path / "p.txt").write_text("sku: A")
    with pytest.raises(DraftErrors, match=r"expected a \.yaml, \.yml or \.json file"):
        load_drafts(tmp_path / "p.txt")


def test_local_image_must_exist_beside_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("sku: A\nname: a\nprice: 1\nimage: pics/a.jpg\n")
    with pytest.raises(DraftErrors, match=r"p\.yaml:4: image file 'pics/a.jpg' not found"):
        load_drafts(path)
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.jpg").write_bytes(b"\xff\xd8")
    assert load_drafts(path)[0].image == "pics/a.jpg"


@given(draft=drafts())
def test_generated_drafts_satisfy_every_rule(draft: ProductDraft) -> None:
    assert product_problems(draft) == []


@settings(max_examples=60)
@given(items=draft_files())
@pytest.mark.slow
def test_yaml_and_json_round_trip(
    tmp_path_factory: pytest.TempPathFactory, items: list[ProductDraft]
) -> None:
    folder = tmp_path_factory.mktemp("files")
    doc = drafts_to_data(items)
    (folder / "p.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    (folder / "p.json").write_text(json.dumps(doc))
    assert load_drafts(folder / "p.yaml") == items
    assert load_drafts(folder / "p.json") == items
