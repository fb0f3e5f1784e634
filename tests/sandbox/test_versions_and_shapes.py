"""The sandbox's options: the catalogue shapes real stores have, the number of languages, and
older PrestaShop versions (so omsflow can be tested against a 1.7 store too)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from defusedxml.ElementTree import fromstring as parse_xml

from sandbox.errors import ConfigError
from sandbox.schema import resources_for
from sandbox.server import SandboxServer, start_sandbox
from sandbox.store import SandboxStore, ean13
from tests.sandbox.conftest import NOW


def _ean_ok(code: str) -> bool:
    return len(code) == 13 and code.isdigit() and ean13(code[:12]) == code


# ------------------------------------------------------------------------------ shapes


def test_without_shapes_every_combination_has_its_own_reference() -> None:
    store = SandboxStore.generate(
        products=60, orders=0, seed=4, now=NOW, repeat_reference_share=0, no_reference_share=0
    )
    combos = store.tables["combinations"].values()
    refs = [c["reference"] for c in combos]
    assert refs
    assert all(refs)
    assert len(set(refs)) == len(refs)


def test_the_shapes_of_real_stores_when_asked() -> None:
    """``repeat_reference_share``: combinations that repeat their product's reference (the
    demo shop: all of them); ``no_reference_share``: combinations without a reference, some
    with an EAN-13 (a valid one) and some with nothing at all."""
    store = SandboxStore.generate(
        products=200,
        orders=0,
        seed=4,
        now=NOW,
        repeat_reference_share=0.3,
        no_reference_share=0.3,
    )
    products = store.tables["products"]
    repeat, none_ean, none_bare, own = 0, 0, 0, 0
    for pid, rec in products.items():
        combos = [store.tables["combinations"][c] for c in store.combinations_of(pid)]
        for c in combos:
            if c["reference"] == rec["reference"]:
                repeat += 1
            elif c["reference"] == "":
                if c["ean13"]:
                    assert _ean_ok(c["ean13"]), c["ean13"]
                    none_ean += 1
                else:
                    none_bare += 1
            else:
                own += 1
        # one shape per product: its combinations all have it
        shapes = {
            "repeat"
            if c["reference"] == rec["reference"]
            else "none"
            if not c["reference"]
            else "own"
            for c in combos
        }
        assert len(shapes) <= 1
    assert min(repeat, none_ean, none_bare, own) > 0
    # order rows carry the references the catalogue has (none for those without)
    refs = {c["reference"] for c in store.tables["combinations"].values()}
    assert "" in refs


def test_shapes_leave_the_rest_of_the_shop_unchanged() -> None:
    """The shapes draw from their own sequence: the same seed gives the same products, prices
    and orders whatever the shares."""
    plain = SandboxStore.generate(products=40, orders=20, seed=9, now=NOW)
    shaped = SandboxStore.generate(
        products=40, orders=20, seed=9, now=NOW, repeat_reference_share=0.5, no_reference_share=0.5
    )
    for res in ("products", "orders", "stock_availables"):
        a, b = plain.tables[res], shaped.tables[res]
        assert [r["id"] for r in a.values()] == [r["id"] for r in b.values()]
    assert [p["price"] for p in plain.tables["products"].values()] == [
        p["price"] for p in shaped.tables["products"].values()
    ]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"repeat_reference_share": 1.5}, "repeat_reference_share must be between 0 and 1"),
        ({"repeat_reference_share": 0.6, "no_reference_share": 0.6}, "must not exceed 1"),
        ({"languages": 7}, "languages must be 1..6"),
    ],
)
def test_bad_generator_options_are_refused(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxStore.generate(products=2, orders=0, **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        start_sandbox(products=2, orders=0, **kw)  # type: ignore[arg-type]


def test_up_to_six_languages() -> None:
    store = SandboxStore.generate(products=3, orders=1, languages=6, now=NOW)
    assert store.lang_ids == [1, 2, 3, 4, 5, 6]
    isos = [r["iso_code"] for r in store.tables["languages"].values()]
    assert isos == ["en", "fr", "de", "es", "it", "nl"]
    assert set(store.tables["products"][1]["name"]) == {1, 2, 3, 4, 5, 6}


# ------------------------------------------------------------------------------ versions


def test_the_fields_of_older_versions() -> None:
    v821, v178, v177 = resources_for("8.2.1"), resources_for("1.7.8.11"), resources_for("1.7.7.8")
    names = {
        v: [f.name for f in r["products"].fields]
        for v, r in (("8", v821), ("178", v178), ("177", v177))
    }
    assert "product_type" in names["8"]
    assert "product_type" in names["178"]  # 1.7.8.0 added the column and its field
    assert "product_type" not in names["177"]
    assert "state" in names["177"]  # since 1.7.0.0
    combos = [f.name for f in v178["combinations"].fields]
    assert combos[:3] == ["id", "id_product", "location"]
    assert "quantity" in combos
    assert "available_now" not in combos
    assert "note" in [f.name for f in v178["orders"].fields]
    assert "note" not in [f.name for f in v177["orders"].fields]
    with pytest.raises(ValueError, match=r"1\.7\.x and 8\.x"):
        resources_for("1.6.1.24")
    with pytest.raises(ValueError, match="not a PrestaShop version"):
        resources_for("eight")


@pytest.fixture(scope="module")
def old_shop() -> Iterator[SandboxServer]:
    with start_sandbox(products=8, orders=3, seed=2, now=NOW, version="1.7.7.8") as server:
        yield server


def test_an_older_store_answers_as_one(old_shop: SandboxServer) -> None:
    """1.7: PSWS-Version on every answer (even a bad key's), JSON details keep their empty
    values (no array_filter before 8.0), the JSON root is a list of names, empty values are
    ``<x></x>`` before 1.7.8.0, products have no product_type."""
    auth = (old_shop.key, "")
    api = old_shop.api_url
    r = httpx.get(f"{api}/products/1", auth=auth)
    assert r.headers["psws-version"] == "1.7.7.8"
    assert "<product_type" not in r.text
    assert re.search(r"<ean13></ean13>|<isbn></isbn>", r.text)
    bad = httpx.get(f"{api}/products", auth=("WRONGKEYWRONGKEYWRONGKEYWRONGKEY", ""))
    assert (bad.status_code, bad.headers["psws-version"]) == (401, "1.7.7.8")
    detail = httpx.get(f"{api}/orders/1", auth=auth, headers={"Output-Format": "JSON"}).json()
    assert "gift" in detail["order"]  # "0" kept
    root = httpx.get(f"{api}/", auth=auth, headers={"Output-Format": "JSON"})
    assert root.status_code == 200
    assert "products" in root.json()
    combo = parse_xml(httpx.get(f"{api}/combinations?display=full&limit=1", auth=auth).text)
    fields = [c.tag for c in combo[0][0]]
    assert "location" in fields
    assert "available_now" not in fields
    # a bad filter is a plain 400 there: no PHP 8 warnings
    err = httpx.get(f"{api}/orders", params={"filter[nope]": "1"}, auth=auth)
    assert err.status_code == 400


def test_the_version_is_kept_with_the_data(tmp_path) -> None:
    store = SandboxStore.generate(products=2, orders=0, version="1.7.8.11", now=NOW)
    store.save(tmp_path / "shop.json")
    again = SandboxStore.load(tmp_path / "shop.json")
    assert again.version == "1.7.8.11"
    assert "location" in again.resources["combinations"].by_name
