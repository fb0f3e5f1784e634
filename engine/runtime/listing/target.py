"""The real ``ListingTarget``: the PrestaShop adapter plus name caches, batched SKU lookups.

``PrestaShopTarget`` resolves names (category, manufacturer, attribute group/value) to store
ids through caches read once per run (four paged GETs) and creates what is missing; finds
products by SKU in batches (``filter[reference]=[A|B|...]``, a few GETs per hundred SKUs)
so a retry adopts what an interrupted run created instead of duplicating it; and writes a
product's stock with ONE read of its stock rows and one PUT per changed row (never the
product-level row of a product with combinations: PrestaShop keeps it as their sum). New
products are real, visible ones (``adapter.create_product``: ``state=1`` and ``product_type``
on 8.x, names in every store language from the store's facts). The ``ensure_*`` methods are
safe to call from the adapter's worker threads (one lock around the caches).
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.errors import ChannelRejected, ConfigError
from engine.runtime.channels.port import ChannelPort
from engine.runtime.listing.drafts import ProductDraft, VariantDraft
from engine.runtime.listing.plan import CombinationSnapshot, ProductSnapshot

ImageFetcher = Callable[[str], tuple[str, bytes, str]]
"""``source -> (filename, bytes, content type)``: an http(s) URL or a local file path."""


def _key(text: str) -> str:
    return text.strip().casefold()


def default_image_fetcher(
    base_dir: str | Path | None = None, timeout: float = 20.0
) -> ImageFetcher:
    """Read local files (relative to ``base_dir``) and download http(s) URLs with httpx."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()

    def fetch(source: str) -> tuple[str, bytes, str]:
        if "://" in source:
            import httpx

            try:
                response = httpx.get(source, timeout=timeout, follow_redirects=True)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise ConfigError(f"image {source}: cannot download ({exc})") from None
            name = source.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "image.jpg"
            ctype = response.headers.get("content-type", "").split(";", 1)[0].strip()
            return name, response.content, ctype or _guess_type(name)
        path = Path(source) if Path(source).is_absolute() else base / source
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"image {source}: cannot read ({exc.strerror})") from None
        return path.name, content, _guess_type(path.name)

    return fetch


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "image/jpeg"


@dataclass(frozen=True)
class Found:
    """A product found in the store by SKU, in draft terms, plus what binding needs."""

    snapshot: ProductSnapshot
    stock_ids: Mapping[int, int]
    """combination id (0: the product row) -> stock_available id."""
    has_image: bool


class PrestaShopTarget:
    """``ListingTarget`` over one store's channel (see the module docstring)."""

    def __init__(
        self,
        adapter: ChannelPort,
        *,
        fetch_image: ImageFetcher | None = None,
        parent_category_id: int | None = None,
    ) -> None:
        self.adapter = adapter
        self.fetch_image = fetch_image or default_image_fetcher()
        self.home = adapter.home_category_id
        """The channel's home category (``ListingPort.home_category_id``)."""
        self.parent_category_id = self.home if parent_category_id is None else parent_category_id
        self._lock = threading.RLock()
        self._loaded = False
        self.categories: dict[str, int] = {}
        self.category_names: dict[int, str] = {}
        self.brands: dict[str, int] = {}
        self.brand_names: dict[int, str] = {}
        self.groups: dict[str, int] = {}
        self.values: dict[tuple[int, str], int] = {}
        self.value_names: dict[int, tuple[str, str]] = {}
        self.group_names: dict[int, str] = {}
        self.created: dict[str, int] = {"category": 0, "brand": 0, "group": 0, "value": 0}

    # ------------------------------------------------------------------ name caches

    def load(self) -> None:
        """Read categories, manufacturers, attribute groups and values once (4 paged GETs)."""
        with self._lock:
            if self._loaded:
                return
            a = self.adapter
            readers: list[Callable[[], Sequence[Any]]] = [
                a.categories,
                a.manufacturers,
                a.product_options,
                a.product_option_values,
            ]
            results: list[Sequence[Any]] = a.concurrently(readers)
            cats, mans, opts, vals = results
            for c in cats:
                self.category_names[c.id] = c.name
                if c.id > self.home or not c.is_root_category:
                    self.categories.setdefault(_key(c.name), c.id)
            for m in mans:
                self.brand_names[m.id] = m.name
                self.brands.setdefault(_key(m.name), m.id)
            for o in opts:
                self.group_names[o.id] = o.name
                self.groups.setdefault(_key(o.name), o.id)
            for v in vals:
                group = self.group_names.get(v.option_id, "")
                self.value_names[v.id] = (group, v.name)
                self.values.setdefault((v.option_id, _key(v.name)), v.id)
            self._loaded = True

    def ensure_category(self, name: str) -> int:
        self.load()
        with self._lock:
            found = self.categories.get(_key(name))
            if found is None:
                cat = self.adapter.create_category(name=name, parent_id=self.parent_category_id)
                found = self.categories[_key(name)] = cat.id
                self.category_names[cat.id] = name
                self.created["category"] += 1
            return found

    def ensure_brand(self, name: str) -> int:
        self.load()
        with self._lock:
            found = self.brands.get(_key(name))
            if found is None:
                man = self.adapter.create_manufacturer(name=name)
                found = self.brands[_key(name)] = man.id
                self.brand_names[man.id] = name
                self.created["brand"] += 1
            return found

    def ensure_attribute_value(self, group: str, value: str) -> tuple[int, int]:
        self.load()
        with self._lock:
            gid = self.groups.get(_key(group))
            if gid is None:
                gid = self.groups[_key(group)] = self.adapter.create_product_option(name=group).id
                self.group_names[gid] = group
                self.created["group"] += 1
            vid = self.values.get((gid, _key(value)))
            if vid is None:
                made = self.adapter.create_product_option_value(option_id=gid, name=value)
                vid = self.values[(gid, _key(value))] = made.id
                self.value_names[vid] = (self.group_names.get(gid, group), value)
                self.created["value"] += 1
            return gid, vid

    # ------------------------------------------------------------------ finding by SKU

    def find_product_by_sku(self, sku: str) -> ProductSnapshot | None:
        found = self.find_products(ProductDraft(sku=sku, name=sku, price=Decimal(0)) for _ in [0])
        hit = found.get(sku)
        return hit.snapshot if hit else None

    def find_products(self, drafts: Iterable[ProductDraft]) -> dict[str, Found]:
        """Products whose reference is one of the drafts' SKUs, with their combinations
        and stock, in a few batched GETs (``ChannelPort.listed_products``)."""
        wanted = {d.sku: d for d in drafts}
        if not wanted:
            return {}
        self.load()
        out: dict[str, Found] = {}
        for sku, p in self.adapter.listed_products(wanted).items():
            snap = ProductSnapshot(
                id=p.id,
                sku=sku,
                name=p.name,
                price=p.price,
                stock=p.stock[0][1] if 0 in p.stock else 0,
                category=self.category_names.get(p.category_id),
                brand=self.brand_names.get(p.brand_id) if p.brand_id else None,
                image=wanted[sku].image if p.has_image else None,
                active=p.active,
                description=wanted[sku].description,
                combinations=tuple(
                    CombinationSnapshot(
                        id=c.id,
                        sku=c.sku,
                        attributes=tuple(
                            self.value_names[v]
                            for v in c.option_value_ids
                            if v in self.value_names
                        ),
                        price_impact=c.price_impact,
                        stock=p.stock[c.id][1] if c.id in p.stock else 0,
                    )
                    for c in p.combinations
                ),
            )
            out[sku] = Found(snap, {a: s[0] for a, s in p.stock.items()}, p.has_image)
        return out

    # ------------------------------------------------------------------ writes

    def create_product(
        self, draft: ProductDraft, *, category_id: int | None, brand_id: int | None
    ) -> int:
        product = self.adapter.create_product(
            name=draft.name,
            reference=draft.sku,
            price=draft.price,
            category_id=category_id or self.parent_category_id,
            manufacturer_id=brand_id or 0,
            active=draft.active,
            description=draft.description,
            with_combinations=bool(draft.variants),
        )
        return product.id

    def update_product(
        self,
        product_id: int,
        draft: ProductDraft,
        fields: Sequence[str],
        *,
        category_id: int | None,
        brand_id: int | None,
    ) -> None:
        """GET the full product, PUT it back with the changed fields (one read, one write)."""
        self.adapter.update_product(
            product_id,
            name=draft.name if "name" in fields else None,
            description=draft.description if "description" in fields else None,
            price=draft.price if "price" in fields else None,
            active=draft.active if "active" in fields else None,
            category_id=category_id if "category" in fields and category_id else None,
            manufacturer_id=brand_id if "brand" in fields else None,
        )

    def create_combination(
        self,
        product_id: int,
        variant: VariantDraft,
        value_ids: Sequence[int],
        *,
        default_on: bool = False,
    ) -> int:
        combo = self.adapter.create_combination(
            product_id=product_id,
            reference=variant.sku,
            price_impact=variant.price_impact,
            option_value_ids=value_ids,
            default_on=default_on,
        )
        return combo.id

    def update_combination(
        self,
        combination_id: int,
        variant: VariantDraft,
        fields: Sequence[str],
        value_ids: Sequence[int],
    ) -> None:
        if "attributes" in fields:
            raise ChannelRejected(
                f"variant {variant.sku}: its attribute values differ from the store's "
                "combination; omsflow does not re-point combinations (delete the variant in "
                "the store, then import again)",
                resource="combinations",
            )
        if "price_impact" in fields:
            self.adapter.set_combination_price_impact(combination_id, variant.price_impact)

    def set_stock(self, product_id: int, combination_id: int | None, quantity: int) -> None:
        self.write_stock(product_id, {int(combination_id or 0): quantity})

    def write_stock(self, product_id: int, quantities: Mapping[int, int]) -> dict[int, int]:
        """Set several stock rows of one product with one GET and one PUT per changed row.

        Args:
            quantities: combination id (0: the product row) -> quantity.

        Returns:
            combination id -> stock_available id, for every row of the product.
        """
        return self.adapter.write_stock(product_id, quantities)

    def upload_image(self, product_id: int, source: str, *, first: bool = False) -> int:
        name, content, ctype = self.fetch_image(source)
        return self.adapter.upload_image(product_id, name, content, ctype, first=first)


__all__ = ["Found", "ImageFetcher", "PrestaShopTarget", "default_image_fetcher"]
