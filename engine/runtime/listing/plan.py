"""The seam between drafts and the store: the ``ListingTarget`` port and pure change planning.

``plan_changes`` compares drafts with what the store already holds (snapshots found by SKU)
and says, per product, create / update / unchanged and which fields differ, so that
importing the same file twice makes no write request the second time. It is pure: no store,
no database. ``ListingTarget`` lists the operations a writer needs; the real implementation
(PrestaShop adapter + binding storage) lives elsewhere and is injected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from engine.runtime.listing.drafts import ProductDraft, VariantDraft

ChangeKind = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class CombinationSnapshot:
    """A combination as the store holds it, in draft terms."""

    id: int
    sku: str
    attributes: tuple[tuple[str, str], ...]
    """(group name, value name) pairs, resolved from the store's option value ids."""
    price_impact: Decimal
    stock: int


@dataclass(frozen=True)
class ProductSnapshot:
    """A product as the store holds it, in draft terms (names, not ids)."""

    id: int
    sku: str
    name: str
    price: Decimal
    """The store's base price, tax excluded."""
    stock: int
    """Product-level quantity (single products; the store's sum for variation products)."""
    category: str | None
    """Default category name."""
    brand: str | None
    """Manufacturer name."""
    image: str | None
    """The source (URL or path) of the cover last uploaded by omsflow, as recorded in the
    bindings; None when unknown, which makes a draft with an image re-upload it."""
    active: bool
    description: str
    combinations: tuple[CombinationSnapshot, ...] = ()


@dataclass(frozen=True)
class Change:
    """What writing one draft (or one variant) would do."""

    kind: ChangeKind
    sku: str
    fields_changed: tuple[str, ...] = ()
    """Draft field names that differ (all set fields for a create); ``variants`` when any
    variant changes."""
    variants: tuple[Change, ...] = ()
    """Per-variant changes of a variation product, in draft order."""
    extra_variants: tuple[str, ...] = ()
    """SKUs of store combinations the draft does not list; left alone (deleting is explicit)."""
    existing_id: int | None = None
    """The store id for updates/unchanged."""


class ListingTarget(Protocol):
    """The store operations a listing writer needs; ids are the store's integer ids.

    Every ``ensure_*`` is idempotent: it finds by name and creates only when missing.
    """

    def ensure_category(self, name: str) -> int:
        """The id of the category named ``name``, created under Home if missing."""
        ...

    def ensure_brand(self, name: str) -> int:
        """The id of the manufacturer named ``name``, created if missing."""
        ...

    def ensure_attribute_value(self, group: str, value: str) -> tuple[int, int]:
        """(product_option id, product_option_value id), each created if missing."""
        ...

    def find_product_by_sku(self, sku: str) -> ProductSnapshot | None:
        """The product whose reference is ``sku`` (or that a binding maps it to), or None."""
        ...

    def create_product(
        self, draft: ProductDraft, *, category_id: int | None, brand_id: int | None
    ) -> int:
        """Create the product (no combinations, no stock, no image); returns its id."""
        ...

    def update_product(
        self,
        product_id: int,
        draft: ProductDraft,
        fields: Sequence[str],
        *,
        category_id: int | None,
        brand_id: int | None,
    ) -> None:
        """Write the named draft ``fields`` (as in ``Change.fields_changed``) to the product."""
        ...

    def create_combination(
        self, product_id: int, variant: VariantDraft, value_ids: Sequence[int]
    ) -> int:
        """Create a combination with these option value ids; returns its id."""
        ...

    def update_combination(
        self,
        combination_id: int,
        variant: VariantDraft,
        fields: Sequence[str],
        value_ids: Sequence[int],
    ) -> None:
        """Write the named variant ``fields`` to the combination."""
        ...

    def set_stock(self, product_id: int, combination_id: int | None, quantity: int) -> None:
        """Set the stock_available quantity (``combination_id`` None: the product row)."""
        ...

    def upload_image(self, product_id: int, source: str, *, first: bool = False) -> int:
        """Upload ``source`` (URL or file path) as the product's cover; returns the image id.
        ``first``: the product has no image yet (what a failed upload leaves can go)."""
        ...


_PRODUCT_FIELDS = ("name", "price", "active", "description")
_OPTIONAL_FIELDS = ("category", "brand", "image")  # None in the draft: keep the store's


def plan_changes(
    drafts: Sequence[ProductDraft], existing: Mapping[str, ProductSnapshot | None]
) -> list[Change]:
    """Per draft: create, update (with the fields that differ) or unchanged.

    Args:
        drafts: validated drafts (``read_workbook`` / ``load_drafts``).
        existing: product SKU -> what ``ListingTarget.find_product_by_sku`` returned
            (missing or None: the product does not exist yet).

    Returns:
        One ``Change`` per draft, in draft order. Prices compare by value (19.99 ==
        "19.990000"); a field left None in the draft (category, brand, image) is not compared.
    """
    return [_plan_one(d, existing.get(d.sku)) for d in drafts]


def _plan_one(draft: ProductDraft, snap: ProductSnapshot | None) -> Change:
    if snap is None:
        fields = [
            f for f in (*_PRODUCT_FIELDS, *_OPTIONAL_FIELDS) if getattr(draft, f) is not None
        ]
        if not draft.variants:
            fields.append("stock")
        variants = tuple(
            Change("create", v.sku, ("attributes", "price_impact", "stock"))
            for v in draft.variants
        )
        if variants:
            fields.append("variants")
        return Change("create", draft.sku, tuple(fields), variants)

    changed = [f for f in _PRODUCT_FIELDS if getattr(draft, f) != getattr(snap, f)]
    changed += [
        f
        for f in _OPTIONAL_FIELDS
        if getattr(draft, f) is not None and getattr(draft, f) != getattr(snap, f)
    ]
    if not draft.variants:
        if draft.stock != snap.stock and not draft.keep_stock:
            changed.append("stock")
        if snap.combinations:
            changed.append("type")  # the store has combinations; the draft is a single product
    by_sku = {c.sku: c for c in snap.combinations}
    variants = tuple(_plan_variant(v, by_sku.get(v.sku)) for v in draft.variants)
    if any(v.kind != "unchanged" for v in variants):
        changed.append("variants")
    listed = {v.sku for v in draft.variants}
    extra = (
        tuple(c.sku for c in snap.combinations if c.sku not in listed) if draft.variants else ()
    )
    kind: ChangeKind = "update" if changed else "unchanged"
    return Change(kind, draft.sku, tuple(changed), variants, extra, snap.id)


def _plan_variant(v: VariantDraft, snap: CombinationSnapshot | None) -> Change:
    if snap is None:
        return Change("create", v.sku, ("attributes", "price_impact", "stock"))
    changed: list[str] = []
    if sorted(v.attributes) != sorted(snap.attributes):
        changed.append("attributes")
    if v.price_impact != snap.price_impact:
        changed.append("price_impact")
    if v.stock != snap.stock and not v.keep_stock:
        changed.append("stock")
    return Change("update" if changed else "unchanged", v.sku, tuple(changed), existing_id=snap.id)


def snapshot_of(draft: ProductDraft, product_id: int = 1) -> ProductSnapshot:
    """The snapshot a store would hold right after writing ``draft`` (tests, dry runs)."""
    return ProductSnapshot(
        id=product_id,
        sku=draft.sku,
        name=draft.name,
        price=draft.price,
        stock=sum(v.stock for v in draft.variants) if draft.variants else draft.stock,
        category=draft.category,
        brand=draft.brand,
        image=draft.image,
        active=draft.active,
        description=draft.description,
        combinations=tuple(
            CombinationSnapshot(
                product_id * 1000 + i, v.sku, v.attributes, v.price_impact, v.stock
            )
            for i, v in enumerate(draft.variants, start=1)
        ),
    )
