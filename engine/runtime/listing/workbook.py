"""Read a filled bulk workbook into product drafts, validating every row; write one back.

``read_workbook`` validates EVERY row before anything is written: a product with any bad row
is left out entirely and each problem is reported with its Excel row number and column.
``write_errors_copy`` writes the workbook back with an ``errors`` column. ``write_workbook``
is the inverse of ``read_workbook`` (tests, samples, exports). Nothing here talks to the store.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from engine.errors import OmsflowError
from engine.runtime.listing.drafts import (
    _URL,
    ATTRIBUTE_MAX,
    BRAND_MAX,
    CATEGORY_MAX,
    DEFAULT_PRICE_SOURCES,
    FieldProblem,
    ProductDraft,
    VariantDraft,
    parse_bool,
    parse_description,
    parse_image,
    parse_label,
    parse_name,
    parse_price,
    parse_sku,
    parse_stock,
    product_problems,
    resolve_price,
)
from engine.runtime.listing.template import (
    COLUMNS,
    COLUMNS_SHEET,
    FIRST_DATA_ROW,
    HEADER_ROW,
    MAX_ATTRIBUTES,
    NOTES_ROW,
    PRICE_HEADERS,
    PRODUCTS_SHEET,
    REQUIRED_HEADERS,
    new_template,
)

ERRORS_HEADER = "errors"

# Product-level fields and the column each is read from.
_PARENT_FIELDS: dict[str, str] = {
    "name": "name",
    "price": "price",
    "retail_selling_price": "retail_selling_price",
    "selling_price": "selling_price",
    "category": "category",
    "brand": "brand",
    "image": "image_url",
    "active": "active",
    "description": "description",
}
_PARSERS: dict[str, Callable[[object], Any]] = {
    "name": parse_name,
    "price": lambda raw: parse_price(raw, "price"),
    "retail_selling_price": lambda raw: parse_price(raw, "retail_selling_price"),
    "selling_price": lambda raw: parse_price(raw, "selling_price"),
    "category": lambda raw: parse_label(raw, "category", CATEGORY_MAX),
    "brand": lambda raw: parse_label(raw, "brand", BRAND_MAX),
    "image": parse_image,
    "active": parse_bool,
    "description": parse_description,
}
_NOTES = {c.name: c.note for c in COLUMNS}


class WorkbookError(OmsflowError):
    """The file cannot be read as a bulk workbook at all (not xlsx, no sheet, no headers)."""


@dataclass(frozen=True)
class RowError:
    """One problem in one cell: the Excel row number (1-based) and the column header."""

    row: int
    column: str
    """The column header (``price``, ``attribute_2_value`` ...); ``""`` for the whole row."""
    message: str

    def __str__(self) -> str:
        return (
            f"row {self.row}, {self.column}: {self.message}"
            if self.column
            else (f"row {self.row}: {self.message}")
        )


@dataclass
class WorkbookRead:
    """What ``read_workbook`` found: the products that can be written, and every problem."""

    drafts: list[ProductDraft]
    """Products whose rows are all valid, in order of their first row."""
    errors: list[RowError]
    """Every problem, sorted by row then column order."""
    rows_per_draft: dict[str, tuple[int, ...]]
    """Product SKU -> its Excel rows (a variation product's rows in variant order)."""
    excluded: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Products left out because one of their rows is bad -> all their rows."""
    rows_read: int = 0
    """Non-blank data rows."""

    def row_notes(self) -> dict[int, str]:
        """A note for rows that are valid but left out because a sibling row is bad."""
        bad = {e.row for e in self.errors}
        notes: dict[int, str] = {}
        for sku, rows in self.excluded.items():
            culprits = ", ".join(str(r) for r in rows if r in bad)
            for r in rows:
                if r not in bad:
                    notes[r] = f"not imported: product {sku} has errors in row {culprits}"
        return notes


@dataclass
class _Row:
    number: int
    values: dict[str, object]
    parent_sku: str | None = None
    sku: str | None = None
    kind: str = "single"
    parents: dict[str, Any] = field(default_factory=dict)
    """Parsed product-level fields present (non-blank) on this row."""
    stock: int = 0
    price_impact: Decimal | None = None
    attributes: list[tuple[str, str]] = field(default_factory=list)
    attribute_columns: list[int] = field(default_factory=list)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _open(path: Path) -> Any:
    name = str(path)
    if not path.is_file():
        raise WorkbookError(f"{name}: no such file")
    try:
        return load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        why = type(exc).__name__
        raise WorkbookError(
            f"{name}: not an .xlsx workbook ({why}); save it as Excel Workbook (.xlsx) "
            "or start from `omsflow products template`"
        ) from None


def _headers(ws: Any, name: str) -> dict[str, int]:
    first = next(ws.iter_rows(min_row=HEADER_ROW, max_row=HEADER_ROW, values_only=True), ())
    headers: dict[str, int] = {}
    for i, raw in enumerate(first):
        if _blank(raw):
            continue
        key = str(raw).strip().lower()
        if key in headers:
            col = get_column_letter(i + 1)
            raise WorkbookError(f"{name}: column {key!r} appears twice in row 1 (again in {col})")
        headers[key] = i
    missing = [h for h in REQUIRED_HEADERS if h not in headers]
    if not any(h in headers for h in PRICE_HEADERS):
        missing.append("price (or selling_price / retail_selling_price)")
    if missing:
        raise WorkbookError(
            f"{name}: sheet {PRODUCTS_SHEET!r} lacks required column(s) {', '.join(missing)} "
            "in row 1; start from `omsflow products template`"
        )
    return headers


def read_workbook(
    path: str | Path,
    *,
    sources: Sequence[str] = DEFAULT_PRICE_SOURCES,
    check_files: bool = True,
) -> WorkbookRead:
    """Read and validate every row of the "Products" sheet.

    Rows sharing a ``parent_sku`` form one variation product (product fields from its first
    row); rows without one are single products. Blank rows and the notes row are skipped.

    Args:
        path: the .xlsx file.
        sources: the channel's price sources (``ChannelSpec.prices.sources``).
        check_files: require local image files (relative to the workbook) to exist.

    Returns:
        ``WorkbookRead``: only products whose rows are all valid are in ``drafts``.

    Raises:
        WorkbookError: not an xlsx file, no "Products" sheet, or required headers missing.
    """
    p = Path(path)
    wb = _open(p)
    try:
        if PRODUCTS_SHEET not in wb.sheetnames:
            raise WorkbookError(
                f"{p}: no {PRODUCTS_SHEET!r} sheet (sheets: {', '.join(wb.sheetnames)}); "
                "start from `omsflow products template`"
            )
        ws = wb[PRODUCTS_SHEET]
        headers = _headers(ws, str(p))
        known = {c.name: headers[c.name] for c in COLUMNS if c.name in headers}
        raw_rows: list[tuple[int, dict[str, object]]] = []
        for number, cells in enumerate(
            ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True), start=HEADER_ROW + 1
        ):
            values = {n: cells[i] if i < len(cells) else None for n, i in known.items()}
            if all(_blank(v) for v in values.values()):
                continue
            if number == NOTES_ROW and _is_notes(values):
                continue
            raw_rows.append((number, values))
    finally:
        wb.close()
    return _Reader(p, sources, check_files).read(raw_rows)


def _is_notes(values: Mapping[str, object]) -> bool:
    return any(isinstance(v, str) and v.strip() == _NOTES[k] for k, v in values.items() if v)


class _Reader:
    def __init__(self, path: Path, sources: Sequence[str], check_files: bool) -> None:
        self.path = path
        self.sources = sources
        self.check_files = check_files
        self.errors: list[RowError] = []

    def err(self, row: int, column: str, message: str) -> None:
        self.errors.append(RowError(row, column, message))

    def read(self, raw_rows: Iterable[tuple[int, dict[str, object]]]) -> WorkbookRead:
        rows = [self._parse_row(n, v) for n, v in raw_rows]
        groups: dict[str, list[_Row]] = {}
        for row in rows:
            # A single product is its own group, so a repeated SKU excludes only the repeat.
            key = row.parent_sku if row.parent_sku else f"\0{row.number}"
            groups.setdefault(key, []).append(row)
        self._unique_skus(rows)

        drafts: list[ProductDraft] = []
        rows_per: dict[str, tuple[int, ...]] = {}
        excluded: dict[str, tuple[int, ...]] = {}
        for key, members in groups.items():
            numbers = tuple(r.number for r in members)
            raw_sku = members[0].values.get("sku")
            shown = str(raw_sku).strip() if not _blank(raw_sku) else f"row {numbers[0]}"
            sku = key if not key.startswith("\0") else (members[0].sku or shown)
            draft = self._group(key, members)
            if draft is None:
                excluded[sku] = numbers
                continue
            drafts.append(draft)
            rows_per[draft.sku] = numbers
        order = {c.name: i for i, c in enumerate(COLUMNS)}
        self.errors.sort(key=lambda e: (e.row, order.get(e.column, -1)))
        return WorkbookRead(drafts, self.errors, rows_per, excluded, len(rows))

    # ----------------------------------------------------------------- one row

    def _parse_row(self, number: int, values: dict[str, object]) -> _Row:
        row = _Row(number, values)
        get = values.get

        def parse(column: str, fn: Callable[[object], Any]) -> Any:
            try:
                return fn(get(column))
            except FieldProblem as exc:
                self.err(number, column, str(exc))
                return None

        if not _blank(get("parent_sku")):
            row.parent_sku = parse("parent_sku", lambda raw: parse_sku(raw, "parent_sku"))
            if row.parent_sku is None:
                row.parent_sku = f"\0bad parent in row {number}"
        row.sku = parse("sku", parse_sku)
        kind = str(get("type") or "").strip().lower()
        has_parent = not _blank(get("parent_sku"))
        if kind not in ("", "single", "variation"):
            self.err(number, "type", f"type must be single or variation, got {get('type')!r}")
        elif kind == "variation" and not has_parent:
            self.err(number, "type", "a variation row needs a parent_sku")
        elif kind == "single" and has_parent:
            self.err(number, "type", "a single product has no parent_sku; clear one of them")
        row.kind = "variation" if has_parent else "single"
        if row.parent_sku and row.sku and row.parent_sku == row.sku:
            self.err(number, "sku", "a variant's sku must differ from its parent_sku")

        for fld, column in _PARENT_FIELDS.items():
            if not _blank(get(column)):
                value = parse(column, _PARSERS[fld])
                if value is not None:
                    row.parents[fld] = value
        row.stock = parse("stock", parse_stock) or 0
        impact_given = not _blank(get("price_impact"))
        if impact_given:
            row.price_impact = parse(
                "price_impact", lambda raw: parse_price(raw, "price_impact", signed=True)
            )

        for n in range(1, MAX_ATTRIBUTES + 1):
            name_col, value_col = f"attribute_{n}_name", f"attribute_{n}_value"
            has_name, has_value = not _blank(get(name_col)), not _blank(get(value_col))
            if not (has_name or has_value):
                continue
            if row.kind == "single":
                self.err(number, name_col if has_name else value_col,
                         "attributes are for variation rows (set parent_sku)")  # fmt: skip
                continue
            if not has_value:
                self.err(number, value_col, f"{name_col} is set but the value is blank")
                continue
            if not has_name:
                self.err(number, name_col, f"{value_col} is set but the name is blank")
                continue
            group = parse(
                name_col,
                lambda raw: parse_label(raw, "attribute name", ATTRIBUTE_MAX, generic=True),
            )
            value = parse(
                value_col,
                lambda raw: parse_label(raw, "attribute value", ATTRIBUTE_MAX, generic=True),
            )
            if group is not None and value is not None:
                row.attributes.append((group, value))
                row.attribute_columns.append(n)
        if row.kind == "single" and impact_given:
            self.err(number, "price_impact", "price_impact is for variation rows (set parent_sku)")
        return row

    # ----------------------------------------------------------------- across rows

    def _unique_skus(self, rows: Sequence[_Row]) -> None:
        first: dict[str, tuple[int, str]] = {}
        seen_parents: set[str] = set()
        for row in rows:
            if row.parent_sku and row.parent_sku not in seen_parents:
                seen_parents.add(row.parent_sku)
                self._claim(first, row.parent_sku, row.number, "parent_sku")
            if row.sku:
                self._claim(first, row.sku, row.number, "sku")

    def _claim(self, first: dict[str, tuple[int, str]], sku: str, row: int, column: str) -> None:
        if sku.startswith("\0"):
            return
        if sku in first:
            at, col = first[sku]
            self.err(row, column, f"SKU {sku!r} is already used in row {at} ({col})")
        else:
            first[sku] = (row, column)

    def _group(self, key: str, members: list[_Row]) -> ProductDraft | None:
        head = members[0]
        if key.startswith("\0"):  # a single product, or a row whose parent_sku is unreadable
            return self._single(head)
        # Product fields come from the first row; later rows may repeat them only unchanged.
        for row in members[1:]:
            for fld, value in row.parents.items():
                if fld not in head.parents or head.parents[fld] != value:
                    shown = "blank" if fld not in head.parents else repr(head.parents[fld])
                    self.err(
                        row.number,
                        _PARENT_FIELDS[fld],
                        f"differs from the product's first row {head.number} ({shown}); product "
                        "fields come from the first row: leave this cell blank",
                    )
        for row in members:
            if not row.attributes and not any(e.row == row.number for e in self.errors):
                message = "a variation row needs at least one attribute name and value"
                self.err(row.number, "attribute_1_name", message)
        variants = tuple(
            VariantDraft(r.sku or "", tuple(r.attributes), r.price_impact or Decimal(0), r.stock)
            for r in members
        )
        return self._build(key, head, members, variants, stock=0)

    def _single(self, row: _Row) -> ProductDraft | None:
        return self._build(row.sku or "", row, [row], (), stock=row.stock)

    def _build(
        self,
        sku: str,
        head: _Row,
        members: list[_Row],
        variants: tuple[VariantDraft, ...],
        stock: int,
    ) -> ProductDraft | None:
        numbers = {r.number for r in members}
        if any(e.row in numbers for e in self.errors):
            return None
        p = head.parents
        if "name" not in p:
            self.err(head.number, "name", "name is required on a product's first row")
            return None
        try:
            price = resolve_price(
                p.get("price"),
                retail_selling_price=p.get("retail_selling_price"),
                selling_price=p.get("selling_price"),
                sources=self.sources,
            )
        except FieldProblem as exc:
            self.err(head.number, "price", str(exc))
            return None
        draft = ProductDraft(
            sku=sku,
            name=p["name"],
            price=price,
            retail_selling_price=p.get("retail_selling_price"),
            selling_price=p.get("selling_price"),
            stock=stock,
            category=p.get("category"),
            brand=p.get("brand"),
            image=p.get("image"),
            active=p.get("active", True),
            description=p.get("description", ""),
            variants=variants,
        )
        for problem in product_problems(draft, sources=self.sources):
            row = head if problem.variant is None else members[problem.variant]
            column = _PARENT_FIELDS.get(problem.field, problem.field)
            if problem.field == "attributes":
                idx = problem.attribute or 0
                n = row.attribute_columns[idx] if idx < len(row.attribute_columns) else 1
                column = f"attribute_{n}_name"
            elif problem.field == "sku" and problem.variant is None and variants:
                column = "parent_sku"
            self.err(row.number, column, problem.message)
        local = draft.image and not _URL.match(draft.image)
        if self.check_files and local and not (self.path.parent / str(draft.image)).is_file():
            self.err(
                head.number,
                "image_url",
                f"image file {draft.image!r} not found beside {self.path.name}",
            )
        if any(e.row in numbers for e in self.errors):
            return None
        return draft


# --------------------------------------------------------------------------- writing


def _put(ws: Any, row: int, col: int, value: object) -> None:
    if value is None or value == "":
        return
    if isinstance(value, Decimal):
        cell = ws.cell(row, col, float(value))
        cell.number_format = "0.00####"
        return
    cell = ws.cell(row, col, value)
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, even when the text starts with "="


def write_workbook(path: str | Path, drafts: Sequence[ProductDraft]) -> dict[str, tuple[int, ...]]:
    """Write drafts as a filled template (the inverse of ``read_workbook``).

    Returns:
        Product SKU -> its Excel rows.

    Raises:
        ValueError: a variant has more than three attributes (the template's columns).
    """
    wb = new_template()
    ws = wb[PRODUCTS_SHEET]
    col = {c.name: i for i, c in enumerate(COLUMNS, start=1)}
    r = FIRST_DATA_ROW
    rows: dict[str, tuple[int, ...]] = {}

    def parent_cells(d: ProductDraft) -> None:
        for fld, column in _PARENT_FIELDS.items():
            value = getattr(d, fld)
            if fld == "active":
                value = "yes" if value else "no"
            _put(ws, r, col[column], value)

    for d in drafts:
        start = r
        if not d.variants:
            _put(ws, r, col["sku"], d.sku)
            _put(ws, r, col["type"], "single")
            parent_cells(d)
            _put(ws, r, col["stock"], d.stock)
            r += 1
        for i, v in enumerate(d.variants):
            if len(v.attributes) > MAX_ATTRIBUTES:
                raise ValueError(
                    f"{v.sku}: the template holds at most {MAX_ATTRIBUTES} attributes"
                )
            _put(ws, r, col["parent_sku"], d.sku)
            _put(ws, r, col["sku"], v.sku)
            _put(ws, r, col["type"], "variation")
            if i == 0:
                parent_cells(d)
            _put(ws, r, col["stock"], v.stock)
            for n, (group, value) in enumerate(v.attributes, start=1):
                _put(ws, r, col[f"attribute_{n}_name"], group)
                _put(ws, r, col[f"attribute_{n}_value"], value)
            _put(ws, r, col["price_impact"], v.price_impact)
            r += 1
        rows[d.sku] = tuple(range(start, r))
    wb.save(path)
    return rows


_ERROR_FILL = PatternFill("solid", fgColor="F8CBAD")
_NOTE_FILL = PatternFill("solid", fgColor="FFF2CC")


def write_errors_copy(
    src: str | Path,
    dest: str | Path,
    errors: Iterable[RowError],
    *,
    notes: Mapping[int, str] | None = None,
) -> Path:
    """Copy ``src`` to ``dest`` with an ``errors`` column filled per row (empty for good rows).

    Args:
        src: the workbook that was read.
        dest: where to write the copy (may equal ``src``).
        errors: the problems (``WorkbookRead.errors``); one row may have several.
        notes: extra per-row text for rows without errors, e.g. ``WorkbookRead.row_notes()``.
    """
    p = Path(src)
    try:
        wb = load_workbook(p)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise WorkbookError(f"{p}: not an .xlsx workbook ({type(exc).__name__})") from None
    if PRODUCTS_SHEET not in wb.sheetnames:
        raise WorkbookError(f"{p}: no {PRODUCTS_SHEET!r} sheet")
    ws = wb[PRODUCTS_SHEET]
    target = None
    for cell in ws[HEADER_ROW]:
        if isinstance(cell.value, str) and cell.value.strip().lower() == ERRORS_HEADER:
            target = cell.column
    if target is None:
        target = ws.max_column + 1
        head = ws.cell(HEADER_ROW, target, ERRORS_HEADER)
        head.font = Font(bold=True, color="9C0006")
        ws.column_dimensions[get_column_letter(target)].width = 60
    per_row: dict[int, list[str]] = {}
    for e in errors:
        per_row.setdefault(e.row, []).append(f"{e.column}: {e.message}" if e.column else e.message)
    for r in range(HEADER_ROW + 1, ws.max_row + 1):
        ws.cell(r, target).value = None
    for r, text in (notes or {}).items():
        if r not in per_row:
            cell = ws.cell(r, target, text)
            cell.fill = _NOTE_FILL
    for r, messages in per_row.items():
        cell = ws.cell(r, target, "; ".join(messages))
        cell.data_type = "s"
        cell.fill = _ERROR_FILL
    out = Path(dest)
    wb.save(out)
    return out


__all__ = [
    "COLUMNS_SHEET",
    "ERRORS_HEADER",
    "PRODUCTS_SHEET",
    "RowError",
    "WorkbookError",
    "WorkbookRead",
    "read_workbook",
    "write_errors_copy",
    "write_workbook",
]
