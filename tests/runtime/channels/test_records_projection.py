"""``to_mapping(names)`` (what the catalogue sync hands a mapping that reads a few fields)
is ``to_mapping()`` restricted to those names, on the real 8.2.1 captures."""

from __future__ import annotations

import json
import os

import pytest

from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.prestashop.records import Combination, Product
from tests.conftest import SHARED

REAL = SHARED / "prestashop" / "samples" / "ps8.2.1-real"
NAMES = [
    ["reference", "ean13", "name", "price", "active", "id_manufacturer"],
    ["category_ids", "date_upd", "meta_title", "no_such_field", "option_value_ids", "state"],
    [],
]


def _items(capture: str, resource: str) -> list[dict]:
    body = (REAL / f"{capture}_json.body").read_bytes()
    return PrestaShopClient.json_items(json.loads(body), resource)


@pytest.mark.skipif(
    not REAL.is_dir() and os.environ.get("CI") != "true",
    reason="no real 8.2.1 captures beside the repository",
)
@pytest.mark.parametrize("names", NAMES)
def test_projection_is_the_full_mapping_restricted(names) -> None:
    products = [Product.from_data(d, 1) for d in _items("products_full", "products")]
    combos = [Combination.from_data(d) for d in _items("combinations", "combinations")]
    assert products
    assert combos
    for record in [*products, *combos]:
        full = record.to_mapping()
        assert record.to_mapping(names) == {n: full[n] for n in names if n in full}
