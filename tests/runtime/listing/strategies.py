"""Hypothesis strategies for valid product drafts (one place, as in attrs' tests/strategies.py)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from engine.runtime.listing.drafts import ProductDraft, VariantDraft


# Printable text without the characters PrestaShop forbids, without control characters
# (openpyxl refuses them) and already stripped (cells are read stripped).
def _text(bad: str, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    alphabet = st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=bad
    )
    return st.text(alphabet, min_size=min_size, max_size=max_size).filter(
        lambda s: s == s.strip() and len(s) >= min_size
    )


skus = _text("<>;={}", 1, 20)
names = _text("<>;=#{}", 1, 40)
labels = _text("<>;=#{}", 1, 20)
attr_text = _text("<>={}", 1, 12)
prices = st.decimals(min_value=0, max_value=Decimal("999999999.999999"), places=6)
small_prices = st.decimals(min_value=0, max_value=Decimal("99999"), places=2)
stocks = st.integers(min_value=0, max_value=2_147_483_647)


@st.composite
def drafts(draw: st.DrawFn) -> ProductDraft:
    selling = draw(st.none() | prices)
    retail = draw(st.none() | prices)
    price = selling if selling is not None else retail if retail is not None else draw(prices)
    variation = draw(st.booleans())
    variants: tuple[VariantDraft, ...] = ()
    if variation:
        groups = draw(st.lists(attr_text, min_size=1, max_size=3, unique=True))
        combos = draw(
            st.lists(st.tuples(*[attr_text for _ in groups]), min_size=1, max_size=4, unique=True)
        )
        impacts = st.decimals(min_value=-price, max_value=Decimal("1000"), places=2)
        variants = tuple(
            VariantDraft(
                sku=f"V{i}-" + draw(skus),
                attributes=tuple(zip(groups, combo, strict=True)),
                price_impact=draw(impacts),
                stock=draw(stocks),
            )
            for i, combo in enumerate(combos)
        )
    return ProductDraft(
        sku=draw(skus),
        name=draw(names),
        price=price,
        retail_selling_price=retail,
        selling_price=selling,
        stock=0 if variation else draw(stocks),
        category=draw(st.none() | labels),
        brand=draw(st.none() | labels),
        image=draw(
            st.none()
            | st.from_regex(r"https://[a-z]{1,8}\.example\.com/[a-z0-9]{1,8}\.jpg", fullmatch=True)
        ),
        active=draw(st.booleans()),
        description=draw(st.just("") | _text("", 1, 60)),
        variants=variants,
    )


@st.composite
def draft_files(draw: st.DrawFn) -> list[ProductDraft]:
    """Several drafts with SKUs unique across all of them."""
    out = draw(st.lists(drafts(), min_size=1, max_size=4))
    renamed = []
    for n, d in enumerate(out):
        variants = tuple(
            VariantDraft(f"P{n}{v.sku}", v.attributes, v.price_impact, v.stock) for v in d.variants
        )
        renamed.append(
            ProductDraft(
                f"P{n}-{d.sku}",
                d.name,
                d.price,
                d.retail_selling_price,
                d.selling_price,
                d.stock,
                d.category,
                d.brand,
                d.image,
                d.active,
                d.description,
                variants,
            )
        )
    return renamed
