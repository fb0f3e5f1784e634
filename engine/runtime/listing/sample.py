"""Seeded sample bulk workbooks for tests, benchmarks and the demo, with optional bad rows.

``make_sample_workbook`` writes a valid file (by default 100 variation products x 4 variants
plus 100 single products = 500 rows) and can break N rows, each in a distinct product and,
as far as the list of breakages allows, a distinct column; it returns exactly which.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from openpyxl import load_workbook

from engine.runtime.listing.drafts import ProductDraft, VariantDraft
from engine.runtime.listing.template import COLUMNS, PRODUCTS_SHEET
from engine.runtime.listing.workbook import write_workbook

_CATEGORIES = ("T-shirts", "Shoes", "Bags", "Accessories", "Home", "Toys")
_BRANDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark")
_SIZES = ("S", "M", "L", "XL", "XXL", "3XL")
_COLORS = ("Red", "Blue", "Green", "Black", "White")

# (column, bad value on a variation row, bad value on a single row, product's first row only?)
# Each yields exactly one error, in that column; 11 distinct columns.
_BREAKAGES: tuple[tuple[str, object, object, bool], ...] = (
    ("price", -5, -5, True),
    ("name", "Bad <name>", "Bad <name>", True),
    ("category", "Shoes; Bags", "Shoes; Bags", True),
    ("active", "maybe", "maybe", True),
    ("selling_price", "1.1234567", "1.1234567", True),
    ("image_url", "ftp://img.example.com/a.jpg", "ftp://img.example.com/a.jpg", True),
    ("stock", -1, 2.5, False),
    ("sku", "BAD{SKU}", "BAD{SKU}", False),
    ("type", "bundle", "bundle", False),
    ("price_impact", "abc", "1.00", False),  # on a single row: "for variation rows"
    ("attribute_1_value", None, "Red", False),  # variation: name without value
)


@dataclass(frozen=True)
class SampleWorkbook:
    """What ``make_sample_workbook`` wrote."""

    path: Path
    drafts: list[ProductDraft]
    """Every product as intended before any row was broken (file order)."""
    rows: dict[str, tuple[int, ...]]
    """Product SKU -> its Excel rows."""
    bad: list[tuple[int, str]]
    """(row, column) of each broken cell, sorted by row."""
    bad_products: frozenset[str]
    """SKUs of the products that hold a broken row (and must be left out)."""

    @property
    def good_drafts(self) -> list[ProductDraft]:
        """The drafts a reader must return: all but the broken products."""
        return [d for d in self.drafts if d.sku not in self.bad_products]


def sample_drafts(
    *,
    variation_products: int = 100,
    variants_each: int = 4,
    single_products: int = 100,
    seed: int = 0,
) -> list[ProductDraft]:
    """Seeded valid drafts: variation products (Size x Color) interleaved with single ones."""
    if variants_each > len(_SIZES) * len(_COLORS):
        raise ValueError(f"variants_each is at most {len(_SIZES) * len(_COLORS)}")
    rng = random.Random(seed)
    combos = [(s, c) for c in _COLORS for s in _SIZES]

    def prices() -> tuple[Decimal, Decimal]:
        selling = Decimal(rng.randrange(500, 20000)) / 100
        return selling, (selling * Decimal("1.2")).quantize(Decimal("0.01"))

    variations: list[ProductDraft] = []
    for i in range(variation_products):
        selling, retail = prices()
        variants = tuple(
            VariantDraft(
                sku=f"VAR-{i:04d}-{size}-{color.upper()}",
                attributes=(("Size", size), ("Color", color)),
                price_impact=Decimal(rng.choice((0, 0, 150, 300, -50))) / 100,
                stock=rng.randrange(0, 60),
            )
            for size, color in combos[:variants_each]
        )
        variations.append(
            ProductDraft(
                sku=f"VAR-{i:04d}",
                name=f"Variation product {i}",
                price=selling,
                retail_selling_price=retail,
                selling_price=selling,
                category=rng.choice(_CATEGORIES),
                brand=rng.choice(_BRANDS),
                image=f"https://img.example.com/var-{i:04d}.jpg",
                active=rng.random() > 0.1,
                description=f"Sample variation product {i}.",
                variants=variants,
            )
        )
    singles: list[ProductDraft] = []
    for i in range(single_products):
        selling, retail = prices()
        singles.append(
            ProductDraft(
                sku=f"SGL-{i:04d}",
                name=f"Single product {i}",
                price=selling,
                retail_selling_price=retail,
                selling_price=selling,
                stock=rng.randrange(0, 200),
                category=rng.choice(_CATEGORIES),
                brand=rng.choice(_BRANDS),
                image=f"https://img.example.com/sgl-{i:04d}.jpg",
                active=rng.random() > 0.1,
                description=f"Sample single product {i}.",
            )
        )
    out: list[ProductDraft] = []
    while variations or singles:
        if variations:
            out.append(variations.pop(0))
        if singles:
            out.append(singles.pop(0))
    return out


def make_sample_workbook(
    path: str | Path,
    *,
    variation_products: int = 100,
    variants_each: int = 4,
    single_products: int = 100,
    bad_rows: int = 0,
    seed: int = 0,
) -> SampleWorkbook:
    """Write a seeded sample workbook; optionally break ``bad_rows`` rows in distinct products.

    Each broken row holds exactly one bad cell, so a reader must report exactly ``bad``.

    Raises:
        ValueError: more bad rows than products.
    """
    drafts = sample_drafts(
        variation_products=variation_products,
        variants_each=variants_each,
        single_products=single_products,
        seed=seed,
    )
    if bad_rows > len(drafts):
        raise ValueError(f"bad_rows={bad_rows} exceeds the {len(drafts)} products")
    out = Path(path)
    rows = write_workbook(out, drafts)
    bad: list[tuple[int, str]] = []
    bad_products: set[str] = set()
    if bad_rows:
        rng = random.Random(seed + 1)
        victims = rng.sample(drafts, bad_rows)
        wb = load_workbook(out)
        ws = wb[PRODUCTS_SHEET]
        col = {c.name: i for i, c in enumerate(COLUMNS, start=1)}
        for n, draft in enumerate(victims):
            column, on_variant, on_single, first_only = _BREAKAGES[n % len(_BREAKAGES)]
            value = on_variant if draft.variants else on_single
            product_rows = rows[draft.sku]
            row = product_rows[0] if first_only else rng.choice(product_rows)
            if isinstance(value, str) and "{SKU}" in value:
                value = value.replace("{SKU}", "{" + draft.sku + "}")
            ws.cell(row, col[column]).value = value
            bad.append((row, column))
            bad_products.add(draft.sku)
        wb.save(out)
    return SampleWorkbook(out, drafts, rows, sorted(bad), frozenset(bad_products))
