"""The Excel bulk template: its columns (the one list the reader also uses) and ``write_template``.

The "Products" sheet has a header row, a notes row under it, frozen panes, column widths,
drop-down lists for enumerated values and numeric validation; the "Columns" sheet documents
every column. Reading and validating a filled workbook is ``workbook.py``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from engine.runtime.listing.drafts import (
    ATTRIBUTE_MAX,
    BRAND_MAX,
    CATEGORY_MAX,
    NAME_MAX,
    PRICE_MAX,
    SKU_MAX,
)

PRODUCTS_SHEET = "Products"
COLUMNS_SHEET = "Columns"
HEADER_ROW = 1
NOTES_ROW = 2
FIRST_DATA_ROW = 3
VALIDATION_LAST_ROW = 20000
"""Data validation and text formats cover rows 3..20000."""
MAX_ATTRIBUTES = 3
TYPES = ("single", "variation")
YES_NO = ("yes", "no")


@dataclass(frozen=True)
class Column:
    """One column of the Products sheet, documented on the Columns sheet."""

    name: str
    required: str
    """"yes", "no", or when it is required."""
    meaning: str
    example: str
    rules: str
    note: str
    """The short text of the notes row."""
    width: int = 16
    kind: str = "text"
    """text | price | signed_price | stock | enum:<a>,<b> — drives Excel validation."""
    parent: bool = False
    """A parent (product-level) field: on a variation product, read from its first row."""


_ATTR = [
    col
    for n in range(1, MAX_ATTRIBUTES + 1)
    for col in (
        Column(
            f"attribute_{n}_name",
            "variation rows: at least attribute_1",
            f"Name of attribute group {n} (e.g. Size, Color); created in the store if missing.",
            ("Size", "Color", "Material")[n - 1],
            f"1..{ATTRIBUTE_MAX} characters without < > = {{ }}; every variant of a product uses "
            "the same attribute names.",
            f"Attribute {n} name (variation rows)",
            14,
        ),
        Column(
            f"attribute_{n}_value",
            f"when attribute_{n}_name is set",
            f"Value of attribute {n} for this variant (e.g. M, Red).",
            ("M", "Red", "Cotton")[n - 1],
            f"1..{ATTRIBUTE_MAX} characters without < > = {{ }}; no two variants of a product "
            "share all values.",
            f"Attribute {n} value",
            14,
        ),
    )
]

COLUMNS: tuple[Column, ...] = (
    Column(
        "parent_sku",
        "variation rows",
        "SKU of the variation product this row is a variant of. Rows sharing a parent_sku form "
        "one product; its name, prices, category, brand, image, active and description come "
        "from its first row. Blank for single products.",
        "TSHIRT-01",
        "Same rules as sku; must not be used as any other row's sku.",
        "Blank for single products; same value on every variant row",
        16,
        parent=True,
    ),
    Column(
        "sku",
        "yes",
        "Product reference (single) or variant reference (variation). The import key: "
        "importing again updates the product with this SKU instead of creating another.",
        "TSHIRT-01-M-RED",
        f"1..{SKU_MAX} characters without < > ; = {{ }}; unique across the file.",
        "Required; unique",
        20,
    ),
    Column(
        "name",
        "yes (first row of a product)",
        "Product name shown in the store.",
        "Organic cotton T-shirt",
        f"1..{NAME_MAX} characters without < > ; = # {{ }}.",
        "Required on a product's first row",
        30,
        parent=True,
    ),
    Column(
        "type",
        "no",
        "single or variation; inferred from parent_sku when blank.",
        "variation",
        "single rows have no parent_sku; variation rows have one.",
        "single / variation (optional)",
        11,
        kind="enum:" + ",".join(TYPES),
    ),
    Column(
        "price",
        "unless selling_price or retail_selling_price is set",
        "Store base price, tax excluded. When selling_price (or else retail_selling_price) is "
        "set, that is what the store gets (the channel's price mapping) and price may be blank.",
        "19.99",
        f"Number >= 0, at most 6 decimals, at most {PRICE_MAX}; must equal the selling price "
        "that wins when both are given.",
        "Tax excl.; blank = selling price",
        11,
        kind="price",
        parent=True,
    ),
    Column(
        "retail_selling_price",
        "no",
        "OMS retail selling price (MRP); the store price when selling_price is blank.",
        "24.99",
        "Number >= 0, at most 6 decimals.",
        "OMS retail price (MRP)",
        13,
        kind="price",
        parent=True,
    ),
    Column(
        "selling_price",
        "no",
        "OMS selling price; becomes the store price when set.",
        "19.99",
        "Number >= 0, at most 6 decimals.",
        "OMS selling price → store price",
        13,
        kind="price",
        parent=True,
    ),
    Column(
        "stock",
        "no",
        "Quantity available: the product's (single) or the variant's (variation row). Blank = 0.",
        "25",
        "Whole number from 0 to 2147483647.",
        "Whole number; blank = 0",
        9,
        kind="stock",
    ),
    Column(
        "category",
        "no",
        "Default category by name; created under Home if missing. Blank keeps the store's.",
        "T-shirts",
        f"1..{CATEGORY_MAX} characters without < > ; = # {{ }}.",
        "Category name (created if missing)",
        16,
        parent=True,
    ),
    Column(
        "brand",
        "no",
        "Brand (PrestaShop manufacturer) by name; created if missing. Blank keeps the store's.",
        "Acme",
        f"1..{BRAND_MAX} characters without < > ; = # {{ }}.",
        "Brand (created if missing)",
        14,
        parent=True,
    ),
    Column(
        "image_url",
        "no",
        "Cover image: an http(s) URL, or a file path relative to the workbook's folder.",
        "https://cdn.example.com/tshirt.jpg",
        "http(s) URL, or a .jpg/.jpeg/.png/.gif/.webp file that exists.",
        "URL or file path",
        28,
        parent=True,
    ),
    Column(
        "active",
        "no",
        "Whether the product is visible in the store. Blank = yes.",
        "yes",
        "yes or no.",
        "yes / no; blank = yes",
        8,
        kind="enum:" + ",".join(YES_NO),
        parent=True,
    ),
    Column(
        "description",
        "no",
        "Long description (HTML allowed).",
        "Soft organic cotton, regular fit.",
        "At most 21844 characters.",
        "Free text",
        30,
        parent=True,
    ),
    *_ATTR,
    Column(
        "price_impact",
        "no",
        "Variant price relative to the product price, tax excluded (the store's combination "
        "price). Blank = 0.",
        "2.50",
        "Number, may be negative, at most 6 decimals; price + impact must be >= 0.",
        "Variant price +/- (variation rows)",
        12,
        kind="signed_price",
    ),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED_HEADERS = ("sku", "name")
"""Headers the reader refuses to work without (plus one of the price columns)."""
PRICE_HEADERS = ("price", "selling_price", "retail_selling_price")
TEXT_COLUMNS = frozenset(
    {"parent_sku", "sku", "name", "category", "brand", "image_url", "description"}
    | {f"attribute_{n}_{p}" for n in range(1, MAX_ATTRIBUTES + 1) for p in ("name", "value")}
)
"""Formatted as text so a typed SKU like 000123 keeps its zeros."""

_HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
_NOTES_FILL = PatternFill("solid", fgColor="DDEBF7")


def write_template(path: str | Path) -> Path:
    """Write the empty bulk template to ``path`` (an .xlsx); returns the path.

    Args:
        path: where to write; parent folders must exist; an existing file is replaced.
    """
    out = Path(path)
    new_template().save(out)
    return out


def new_template() -> Workbook:
    """The template as an openpyxl ``Workbook`` (``write_workbook`` fills it with rows)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # noqa: S101 - a new Workbook has one sheet
    ws.title = PRODUCTS_SHEET
    _products_sheet(ws)
    _columns_sheet(wb.create_sheet(COLUMNS_SHEET))
    return wb


def _products_sheet(ws: Worksheet) -> None:
    for i, col in enumerate(COLUMNS, start=1):
        letter = get_column_letter(i)
        head = ws.cell(HEADER_ROW, i, col.name)
        head.font = Font(bold=True, color="FFFFFF")
        head.fill = _HEADER_FILL
        note = ws.cell(NOTES_ROW, i, col.note)
        note.font = Font(italic=True, color="404040")
        note.fill = _NOTES_FILL
        note.alignment = Alignment(wrap_text=True, vertical="top")
        ws.column_dimensions[letter].width = col.width
        rng = f"{letter}{FIRST_DATA_ROW}:{letter}{VALIDATION_LAST_ROW}"
        if col.name in TEXT_COLUMNS:
            ws.column_dimensions[letter].number_format = "@"
        dv = _validation(col)
        if dv is not None:
            dv.add(rng)
            ws.add_data_validation(dv)
    ws.row_dimensions[NOTES_ROW].height = 45
    # Rows 1-2 and the parent_sku/sku columns stay visible while scrolling.
    ws.freeze_panes = f"C{FIRST_DATA_ROW}"
    ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(len(COLUMNS))}{HEADER_ROW}"


def _validation(col: Column) -> DataValidation | None:
    if col.kind.startswith("enum:"):
        values = col.kind.removeprefix("enum:")
        dv = DataValidation(type="list", formula1=f'"{values}"', allow_blank=True)
        dv.error = f"{col.name}: choose one of {values.replace(',', ', ')}"
    elif col.kind == "price":
        dv = DataValidation(
            type="decimal", operator="between", formula1="0", formula2=str(PRICE_MAX),
            allow_blank=True,
        )  # fmt: skip
        dv.error = f"{col.name}: a number from 0 to {PRICE_MAX}, tax excluded"
    elif col.kind == "signed_price":
        dv = DataValidation(
            type="decimal", operator="between", formula1=f"-{PRICE_MAX}",
            formula2=str(PRICE_MAX), allow_blank=True,
        )  # fmt: skip
        dv.error = f"{col.name}: a number (may be negative)"
    elif col.kind == "stock":
        dv = DataValidation(
            type="whole", operator="between", formula1="0", formula2="2147483647",
            allow_blank=True,
        )  # fmt: skip
        dv.error = f"{col.name}: a whole number >= 0"
    else:
        return None
    dv.errorTitle = f"Invalid {col.name}"
    dv.showErrorMessage = True
    dv.prompt = col.note
    dv.showInputMessage = True
    return dv


def _columns_sheet(ws: Worksheet) -> None:
    heads = ("column", "required", "meaning", "example", "rules")
    for i, text in enumerate(heads, start=1):
        cell = ws.cell(1, i, text)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = _HEADER_FILL
    for r, col in enumerate(COLUMNS, start=2):
        for i, value in enumerate(
            (col.name, col.required, col.meaning, col.example, col.rules), 1
        ):
            cell = ws.cell(r, i, value)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            cell.data_type = "s"
    for letter, width in zip("ABCDE", (22, 22, 60, 26, 50), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "B2"
    tail = len(COLUMNS) + 3
    ws.cell(tail, 1, "Rows").font = Font(bold=True)
    ws.cell(
        tail,
        3,
        "Row 1 is the header and row 2 the notes (skipped on import). Blank rows are ignored. "
        "Every row is validated before anything is written; a product with any bad row is left "
        "out entirely, and the import writes a copy of this workbook with an 'errors' column.",
    ).alignment = Alignment(wrap_text=True, vertical="top")
