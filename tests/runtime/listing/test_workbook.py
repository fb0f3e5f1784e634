"""Reading the bulk workbook: the 500-row sample, bad rows by row and column, the errors copy."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from engine.runtime.listing.drafts import ProductDraft, VariantDraft
from engine.runtime.listing.sample import make_sample_workbook
from engine.runtime.listing.template import COLUMN_NAMES, write_template
from engine.runtime.listing.workbook import (
    RowError,
    WorkbookError,
    read_workbook,
    write_errors_copy,
    write_workbook,
)

from .strategies import draft_files


def test_sample_reads_into_100_variation_products_and_100_singles(tmp_path: Path) -> None:
    sample = make_sample_workbook(tmp_path / "s.xlsx")
    result = read_workbook(sample.path)
    assert result.errors == []
    assert result.rows_read == 500
    variations = [d for d in result.drafts if d.variants]
    singles = [d for d in result.drafts if not d.variants]
    assert len(variations) == 100
    assert all(len(d.variants) == 4 for d in variations)
    assert len(singles) == 100
    assert result.drafts == sample.drafts
    assert result.rows_per_draft == sample.rows
    assert sum(len(r) for r in result.rows_per_draft.values()) == 500


def test_ten_bad_rows_are_reported_by_row_and_column_and_their_products_excluded(
    tmp_path: Path,
) -> None:
    sample = make_sample_workbook(tmp_path / "bad.xlsx", bad_rows=10, seed=3)
    assert len(sample.bad) == 10
    assert len({c for _, c in sample.bad}) == 10  # distinct columns
    assert len(sample.bad_products) == 10  # distinct products
    result = read_workbook(sample.path)
    assert [(e.row, e.column) for e in result.errors] == sample.bad
    excluded_rows = sorted(r for rows in result.excluded.values() for r in rows)
    assert excluded_rows == sorted(r for p in sample.bad_products for r in sample.rows[p])
    assert len(result.excluded) == 10
    assert result.drafts == sample.good_drafts
    assert not {d.sku for d in result.drafts} & sample.bad_products
    written_rows = {r for rows in result.rows_per_draft.values() for r in rows}
    assert not written_rows & {r for r, _ in sample.bad}


def test_errors_copy_has_an_errors_column_filled_per_row(tmp_path: Path) -> None:
    sample = make_sample_workbook(
        tmp_path / "bad.xlsx", variation_products=5, single_products=5, bad_rows=4, seed=1
    )
    result = read_workbook(sample.path)
    dest = write_errors_copy(
        sample.path, tmp_path / "bad.errors.xlsx", result.errors, notes=result.row_notes()
    )
    ws = load_workbook(dest)["Products"]
    headers = [c.value for c in ws[1]]
    assert headers == [*COLUMN_NAMES, "errors"]
    err_col = len(headers)
    bad_rows = {e.row: e for e in result.errors}
    excluded_rows = {r for rows in result.excluded.values() for r in rows}
    for r in range(3, ws.max_row + 1):
        text = ws.cell(r, err_col).value
        if r in bad_rows:
            assert text.startswith(f"{bad_rows[r].column}: ")
        elif r in excluded_rows:
            assert text.startswith("not imported: product ")
        else:
            assert text is None
    # The copy is itself a readable workbook: the errors column is ignored on read.
    again = read_workbook(dest)
    assert [(e.row, e.column) for e in again.errors] == sample.bad
    # Re-running on the copy replaces the column instead of adding another.
    write_errors_copy(dest, dest, [])
    ws = load_workbook(dest)["Products"]
    assert [c.value for c in ws[1]].count("errors") == 1
    assert all(ws.cell(r, err_col).value is None for r in range(2, ws.max_row + 1))


def _rows(tmp_path: Path, *rows: dict[str, object]) -> Path:
    path = write_template(tmp_path / "w.xlsx")
    wb = load_workbook(path)
    ws = wb["Products"]
    col = {c.value: c.column for c in ws[1]}
    for r, row in enumerate(rows, start=3):
        for key, value in row.items():
            ws.cell(r, col[key], value)
    wb.save(path)
    return path


def test_variation_rows_group_by_parent_and_take_parent_fields_from_first_row(
    tmp_path: Path,
) -> None:
    path = _rows(
        tmp_path,
        {"parent_sku": "TS", "sku": "TS-S", "name": "Tee", "selling_price": 10,
         "attribute_1_name": "Size", "attribute_1_value": "S", "stock": 3, "category": "Tops"},
        {"sku": "MUG", "name": "Mug", "price": "4.5", "stock": 7, "active": "no"},
        {},  # blank rows are ignored
        {"parent_sku": "TS", "sku": "TS-M", "attribute_1_name": "Size",
         "attribute_1_value": "M", "price_impact": -1.25, "name": "Tee"},
    )  # fmt: skip
    result = read_workbook(path)
    assert result.errors == []
    assert result.drafts == [
        ProductDraft(
            "TS", "Tee", Decimal(10), selling_price=Decimal(10), category="Tops",
            variants=(
                VariantDraft("TS-S", (("Size", "S"),), Decimal(0), 3),
                VariantDraft("TS-M", (("Size", "M"),), Decimal("-1.25"), 0),
            ),
        ),
        ProductDraft("MUG", "Mug", Decimal("4.5"), stock=7, active=False),
    ]  # fmt: skip
    assert result.rows_per_draft == {"TS": (3, 6), "MUG": (4,)}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (  # duplicate SKU: only the repeat is excluded
            [{"sku": "A", "name": "a", "price": 1}, {"sku": "A", "name": "b", "price": 1}],
            [(4, "sku", "already used in row 3")],
        ),
        (  # later rows may not contradict the first row's product fields
            [{"parent_sku": "P", "sku": "P1", "name": "n", "price": 1,
              "attribute_1_name": "Size", "attribute_1_value": "S"},
             {"parent_sku": "P", "sku": "P2", "name": "other", "price": 1,
              "attribute_1_name": "Size", "attribute_1_value": "M"}],
            [(4, "name", "differs from the product's first row 3")],
        ),
        (  # attribute groups must match across variants
            [{"parent_sku": "P", "sku": "P1", "name": "n", "price": 1,
              "attribute_1_name": "Size", "attribute_1_value": "S"},
             {"parent_sku": "P", "sku": "P2",
              "attribute_1_name": "Color", "attribute_1_value": "Red"}],
            [(4, "attribute_1_name", "differ from the first variant")],
        ),
        (  # no two variants with the same combination
            [{"parent_sku": "P", "sku": "P1", "name": "n", "price": 1,
              "attribute_1_name": "Size", "attribute_1_value": "S"},
             {"parent_sku": "P", "sku": "P2",
              "attribute_1_name": "Size", "attribute_1_value": "S"}],
            [(4, "attribute_1_name", "repeats variant 0")],
        ),
        (  # price disagrees with the selling price the channel writes
            [{"sku": "A", "name": "a", "price": 2, "selling_price": 3}],
            [(3, "price", "differs from selling_price 3")],
        ),
        (
            [{"sku": "A", "name": "a"}],
            [(3, "price", "price is required")],
        ),
        (
            [{"sku": "A", "name": "a", "price": "1.5", "stock": "many"},
             {"sku": "B", "name": "b", "price": "1", "attribute_1_name": "Size"}],
            [(3, "stock", "must be a number"), (4, "attribute_1_name", "variation rows")],
        ),
        (  # a variation row without attributes; parent sku reused as a variant sku
            [{"parent_sku": "P", "sku": "P1", "name": "n", "price": 1},
             {"sku": "P", "name": "m", "price": 1}],
            [(3, "attribute_1_name", "at least one attribute"), (4, "sku", "already used")],
        ),
        (
            [{"sku": "A", "name": "a", "price": 1, "image_url": "pics/missing.jpg"}],
            [(3, "image_url", "not found beside w.xlsx")],
        ),
    ],
)  # fmt: skip
def test_row_errors(
    tmp_path: Path, rows: list[dict[str, object]], expected: list[tuple[int, str, str]]
) -> None:
    result = read_workbook(_rows(tmp_path, *rows))
    got = [(e.row, e.column, e.message) for e in result.errors]
    assert [(r, c) for r, c, _ in got] == [(r, c) for r, c, _ in expected], got
    for (_, _, message), (_, _, part) in zip(got, expected, strict=True):
        assert part in message
    bad = {r for r, _, _ in expected}
    assert not {r for rows in result.rows_per_draft.values() for r in rows} & bad


def test_not_an_xlsx_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "products.xlsx"
    path.write_text("sku,name\nA,b\n")
    with pytest.raises(WorkbookError) as info:
        read_workbook(path)
    assert str(info.value).startswith(f"{path}: not an .xlsx workbook")
    assert "\n" not in str(info.value)
    with pytest.raises(WorkbookError, match="no such file"):
        read_workbook(tmp_path / "nope.xlsx")


def test_missing_sheet_or_headers_is_one_clear_line(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.title = "Sheet1"
    wb.save(tmp_path / "a.xlsx")
    with pytest.raises(WorkbookError, match=r"no 'Products' sheet \(sheets: Sheet1\)"):
        read_workbook(tmp_path / "a.xlsx")
    wb.active.title = "Products"
    wb.active.append(["sku", "stock"])
    wb.save(tmp_path / "b.xlsx")
    with pytest.raises(WorkbookError, match=r"lacks required column\(s\) name, price"):
        read_workbook(tmp_path / "b.xlsx")


def test_write_workbook_refuses_more_attributes_than_columns(tmp_path: Path) -> None:
    attrs = tuple((f"g{i}", "v") for i in range(4))
    draft = ProductDraft("P", "n", Decimal(1), variants=(VariantDraft("P1", attrs),))
    with pytest.raises(ValueError, match="at most 3 attributes"):
        write_workbook(tmp_path / "x.xlsx", [draft])


def test_row_error_renders_as_one_line() -> None:
    assert str(RowError(7, "price", "price must be >= 0, got -5")) == (
        "row 7, price: price must be >= 0, got -5"
    )


@settings(max_examples=40)
@given(drafts=draft_files(), data=st.data())
@pytest.mark.slow
def test_round_trip_read_of_written_drafts(
    tmp_path_factory: pytest.TempPathFactory, drafts: list[ProductDraft], data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("rt") / "rt.xlsx"
    rows = write_workbook(path, drafts)
    result = read_workbook(path)
    assert result.errors == []
    assert result.drafts == drafts
    assert result.rows_per_draft == rows
