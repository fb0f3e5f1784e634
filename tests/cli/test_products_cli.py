"""`omsflow products create/template/import/activate/deactivate/delete/brands sync` through
click's CliRunner against the sandbox over loopback HTTP and a real SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select

from cli import omsflow
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.tables import BrandRow, ProductRow
from engine.runtime.listing.sample import sample_drafts
from engine.runtime.listing.workbook import write_workbook
from engine.runtime.specs import load_bundle
from sandbox.images import png_bytes
from sandbox.server import SandboxServer, start_sandbox


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=0, orders=0) as sb:
        yield sb


@pytest.fixture
def db(tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    engine = dbsession.make_engine(url)
    dbsession.upgrade(engine)
    sessions = dbsession.session_factory(engine)
    with sessions.begin() as s:
        stores.save_store(s, "main", sandbox.url, sandbox.key, {})
    yield sessions
    engine.dispose()


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(omsflow, list(args), input=input, catch_exceptions=False)


def by_ref(sandbox: SandboxServer) -> dict[str, dict[str, Any]]:
    return {p["reference"]: p for p in sandbox.store.records("products")}


def test_create_single_with_image_then_again_updates_instead_of_duplicating(
    db: Any, sandbox: SandboxServer, tmp_path: Path
) -> None:
    (tmp_path / "cover.png").write_bytes(png_bytes(7))
    args = ["products", "create", "--sku", "MUG-1", "--name", "Mug", "--price", "9.50",
            "--stock", "12", "--image", "cover.png", "--category", "Kitchen", "--brand", "Acme",
            "--json"]  # fmt: skip
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["counts"]["created"] == 1
    p = by_ref(sandbox)["MUG-1"]
    assert sandbox.store.stock_of(int(p["id"])) == 12
    assert len(p["associations"]["images"]) == 1
    assert sandbox.store.get("manufacturers", int(p["id_manufacturer"]))["name"] == "Acme"

    again = run(*args)
    assert json.loads(again.output)["counts"]["unchanged"] == 1
    changed = run(*[("14" if a == "12" else a) for a in args])
    assert json.loads(changed.output)["counts"]["updated"] == 1
    assert sandbox.store.stock_of(int(p["id"])) == 14
    assert list(by_ref(sandbox)) == ["MUG-1"]


def test_create_variation_product_from_yaml(
    db: Any, sandbox: SandboxServer, tmp_path: Path
) -> None:
    (tmp_path / "tee.yaml").write_text(
        "sku: TEE\nname: Tee\nselling_price: '20.00'\nbrand: Globex\nvariants:\n"
        "  - {sku: TEE-S, attributes: {Size: S}, stock: 3}\n"
        "  - {sku: TEE-XL, attributes: {Size: XL}, price_impact: '2.50', stock: 4}\n"
    )
    result = run("products", "create", "--from", "tee.yaml")
    assert result.exit_code == 0, result.output
    assert "created 1" in result.output
    p = by_ref(sandbox)["TEE"]
    combos = {sandbox.store.get("combinations", c)["reference"]: sandbox.store.get(
        "combinations", c) for c in sandbox.store.combinations_of(int(p["id"]))}  # fmt: skip
    assert float(combos["TEE-XL"]["price"]) == 2.5
    assert float(p["price"]) == 20.0


@pytest.mark.slow
def test_template_and_import_with_an_errors_copy(
    db: Any, sandbox: SandboxServer, tmp_path: Path
) -> None:
    assert run("products", "template", "blank.xlsx").exit_code == 0
    assert "Products" in load_workbook(tmp_path / "blank.xlsx").sheetnames
    drafts = [replace(d, image=None) for d in sample_drafts(
        variation_products=3, variants_each=2, single_products=3)]  # fmt: skip
    rows = write_workbook(tmp_path / "in.xlsx", drafts)
    wb = load_workbook(tmp_path / "in.xlsx")
    bad_row = rows[drafts[1].sku][0]
    headers = [c.value for c in wb["Products"][1]]
    wb["Products"].cell(bad_row, headers.index("price") + 1).value = -3
    wb.save(tmp_path / "in.xlsx")

    result = run("products", "import", "in.xlsx", "--json")
    assert result.exit_code == 1  # one product failed validation
    doc = json.loads(result.output)
    assert doc["counts"] == {"created": 5, "updated": 0, "unchanged": 0, "failed": 1}
    assert [(e["row"], e["column"]) for e in doc["row_errors"]] == [(bad_row, "price")]
    assert drafts[1].sku not in by_ref(sandbox)
    copy = load_workbook(tmp_path / "in.errors.xlsx")["Products"]
    errors_col = [c.value for c in copy[1]].index("errors") + 1
    assert "price" in str(copy.cell(bad_row, errors_col).value)
    assert copy.cell(rows[drafts[0].sku][0], errors_col).value == "create"

    again = run("products", "import", "in.xlsx")
    assert "created 0, updated 0, unchanged 5, failed 1" in again.output


@pytest.mark.slow
def test_activate_deactivate_delete_round_trip(
    db: Any, sandbox: SandboxServer, tmp_path: Path
) -> None:
    drafts = [replace(d, image=None, active=True) for d in sample_drafts(
        variation_products=1, variants_each=2, single_products=1)]  # fmt: skip
    write_workbook(tmp_path / "in.xlsx", drafts)
    assert run("products", "import", "in.xlsx").exit_code == 0
    var, single = drafts[0].sku, drafts[1].sku

    assert run("products", "deactivate", var, single).exit_code == 0
    assert {by_ref(sandbox)[s]["active"] for s in (var, single)} == {"0"}
    with db() as s:
        rows = {r.sku: r for r in s.scalars(select(ProductRow))}
        assert not rows[var].active
        assert not rows[drafts[0].variants[0].sku].active
    assert run("products", "activate", single).exit_code == 0
    assert by_ref(sandbox)[single]["active"] == "1"

    no = run("products", "delete", single, input="n\n")
    assert no.exit_code != 0
    assert single in by_ref(sandbox)
    variant = drafts[0].variants[1].sku
    yes = run("products", "delete", single, variant, "--yes", "--json")
    assert yes.exit_code == 0, yes.output
    assert single not in by_ref(sandbox)
    refs = {c["reference"] for c in sandbox.store.records("combinations")}
    assert variant not in refs
    assert drafts[0].variants[0].sku in refs
    with db() as s:
        rows = {r.sku: r for r in s.scalars(select(ProductRow))}
        assert rows[single].deleted
        assert rows[variant].deleted
        assert not rows[var].deleted
    missing = run("products", "activate", "NOPE")
    assert missing.exit_code == 1
    # a re-import lists the deleted product again (and the variant)
    again = run("products", "import", "in.xlsx", "--json")
    assert json.loads(again.output)["counts"]["created"] == 1
    assert single in by_ref(sandbox)


def test_brand_sync_round_trip(db: Any, sandbox: SandboxServer) -> None:
    bundle = load_bundle()
    with db.begin() as s:
        s.add(BrandRow(name="Northwind"))
    out = run("products", "brands", "sync", "--direction", "to-store", "--json")
    assert out.exit_code == 0, out.output
    names = {m["name"]: m for m in sandbox.store.records("manufacturers")}
    assert "Northwind" in names
    made = int(names["Northwind"]["id"])

    with db.begin() as s:
        s.scalars(select(BrandRow).where(BrandRow.name == "Northwind")).one().name = "Northwind Co"
    run("products", "brands", "sync")
    assert sandbox.store.get("manufacturers", made)["name"] == "Northwind Co"

    with PrestaShopAdapter.from_channel(sandbox.url, sandbox.key, bundle.channel) as adapter:
        adapter.rename_manufacturer(made, "Northwind Traders")
        extra = adapter.create_manufacturer(name="Contoso").id
    doc = json.loads(run("products", "brands", "sync", "--json").output)
    assert doc["counts"]["renamed_in_oms"] == 1
    with db() as s:
        oms = set(s.scalars(select(BrandRow.name)))
    assert {"Northwind Traders", "Contoso"} <= oms
    assert "Northwind Co" not in oms
    assert extra
    quiet = json.loads(run("products", "brands", "sync", "--json").output)
    assert quiet["counts"] == {}
