"""plan_changes: a second import of the same data is all "unchanged"; differences are named."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given

from engine.runtime.listing.drafts import ProductDraft
from engine.runtime.listing.plan import Change, plan_changes, snapshot_of
from engine.runtime.listing.sample import make_sample_workbook, sample_drafts
from engine.runtime.listing.workbook import read_workbook

from .strategies import draft_files


def test_second_import_of_the_same_file_is_all_unchanged(tmp_path: Path) -> None:
    sample = make_sample_workbook(tmp_path / "s.xlsx")
    first = read_workbook(sample.path).drafts
    assert {c.kind for c in plan_changes(first, {})} == {"create"}
    # What the store holds after the first import, in the store's own formatting of prices.
    store = {
        d.sku: dataclasses.replace(snapshot_of(d, n), price=Decimal(f"{d.price:.6f}"))
        for n, d in enumerate(first, start=1)
    }
    second = plan_changes(read_workbook(sample.path).drafts, store)
    assert len(second) == 200
    assert all(c.kind == "unchanged" and c.fields_changed == () for c in second)
    assert all(v.kind == "unchanged" for c in second for v in c.variants)


@pytest.mark.slow
@given(items=draft_files())
def test_plan_against_own_snapshot_is_unchanged(items: list[ProductDraft]) -> None:
    store = {d.sku: snapshot_of(d, n) for n, d in enumerate(items, start=1)}
    assert [c.kind for c in plan_changes(items, store)] == ["unchanged"] * len(items)


def test_differences_are_named_per_field_and_variant() -> None:
    var, single = sample_drafts(variation_products=1, single_products=1, variants_each=3)
    store = {var.sku: snapshot_of(var, 1), single.sku: snapshot_of(single, 2)}
    v0, v1, v2 = var.variants
    edited_var = dataclasses.replace(
        var,
        name="Renamed",
        variants=(
            dataclasses.replace(v0, stock=v0.stock + 1),
            v1,
            dataclasses.replace(v2, sku="NEW-SKU"),
        ),
    )
    edited_single = dataclasses.replace(
        single, price=single.price + 1, category=None, active=False
    )
    var_change, single_change = plan_changes([edited_var, single], store)
    assert var_change.kind == "update"
    assert var_change.fields_changed == ("name", "variants")
    assert var_change.existing_id == 1
    assert [(v.sku, v.kind, v.fields_changed) for v in var_change.variants] == [
        (v0.sku, "update", ("stock",)),
        (v1.sku, "unchanged", ()),
        ("NEW-SKU", "create", ("attributes", "price_impact", "stock")),
    ]
    assert var_change.extra_variants == (v2.sku,)  # left alone: deleting is explicit
    assert single_change == Change("unchanged", single.sku, existing_id=2)

    (changed,) = plan_changes([edited_single], store)
    # category None in the draft means "keep the store's": not a change.
    assert changed.fields_changed == ("price", "active")


def test_single_draft_over_a_store_product_with_combinations_is_a_type_change() -> None:
    var, _ = sample_drafts(variation_products=1, single_products=1)
    as_single = dataclasses.replace(var, variants=(), stock=0)
    (change,) = plan_changes([as_single], {var.sku: snapshot_of(var)})
    assert "type" in change.fields_changed
    assert change.kind == "update"
