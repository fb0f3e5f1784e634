"""The empty template: both sheets, notes row, frozen panes, validation lists, documentation."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook

from engine.runtime.listing.template import COLUMN_NAMES, write_template
from engine.runtime.listing.workbook import read_workbook

REQUIRED = [
    "parent_sku", "sku", "name", "type", "price", "retail_selling_price", "selling_price",
    "stock", "category", "brand", "image_url", "active", "description",
    "attribute_1_name", "attribute_1_value", "attribute_2_name", "attribute_2_value",
    "attribute_3_name", "attribute_3_value", "price_impact",
]  # fmt: skip


def test_template_has_products_and_columns_sheets(tmp_path: Path) -> None:
    path = write_template(tmp_path / "t.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["Products", "Columns"]
    ws = wb["Products"]
    headers = [c.value for c in ws[1]]
    assert headers == list(COLUMN_NAMES)
    assert set(REQUIRED) <= set(headers)
    notes = [c.value for c in ws[2]]
    assert all(isinstance(n, str) and n for n in notes)
    assert ws.freeze_panes == "C3"
    assert ws.column_dimensions["K"].width > 20  # image_url

    docs = wb["Columns"]
    assert [c.value for c in docs[1]] == ["column", "required", "meaning", "example", "rules"]
    documented = {docs.cell(r, 1).value: docs.cell(r, 3).value for r in range(2, 2 + len(headers))}
    assert set(documented) == set(headers)
    assert all(documented.values())


def test_template_validation_lists_and_numeric_rules(tmp_path: Path) -> None:
    ws = load_workbook(write_template(tmp_path / "t.xlsx"))["Products"]
    col = {c.value: c.column_letter for c in ws[1]}
    by_col: dict[str, tuple[str, str | None]] = {}
    for dv in ws.data_validations.dataValidation:
        for rng in str(dv.sqref).split():
            by_col[rng.split(":")[0].rstrip("0123456789")] = (dv.type, dv.formula1)
    assert by_col[col["active"]] == ("list", '"yes,no"')
    assert by_col[col["type"]] == ("list", '"single,variation"')
    for name in ("price", "selling_price", "retail_selling_price"):
        assert by_col[col[name]] == ("decimal", "0")
    assert by_col[col["stock"]] == ("whole", "0")
    assert by_col[col["price_impact"]][0] == "decimal"
    assert col["name"] not in by_col


def test_empty_template_reads_as_nothing(tmp_path: Path) -> None:
    result = read_workbook(write_template(tmp_path / "t.xlsx"))
    assert (result.drafts, result.errors, result.rows_read) == ([], [], 0)
