"""Catalogue sync, store -> OMS: categories, attribute groups and values, brands, products
and their combinations (a combination is a child ``ProductRow`` with ``parent_id``).

Idempotent upserts through bindings (``BindingRow`` kinds category, attribute_group,
attribute_value, brand, product, combination), loaded once per run into dicts; the page's
rows are compared in memory and only changed rows are written (bulk INSERT ... RETURNING,
bulk UPDATE by primary key), so a re-run writes nothing.

Modes: a *full* sync reads every product in id order (keyset pages; the cursor
``catalog.full`` holds the last committed product id, so a killed run resumes) and marks
bound products the store no longer lists as ``deleted``; a *delta* sync reads products whose
``date_upd`` is after the ``catalog.delta`` cursor (store-side edits, deactivations). Each
page is committed with its cursor in one transaction.

Units: every product and combination is a sellable unit bound by the store's ids
(``id_product``, ``id_product_attribute``); nothing is skipped. A unit's SKU is the OMS's
name for it, made once when the unit is first bound by the channel's ``skus`` rule (its own
reference, its EAN-13, a template, the ids-based fallback; ``store_ids[store]["sku_source"]``
says which) and kept afterwards, whatever the store later does to its reference (recorded
as ``store_ids[store]["reference"]``). Two different products with one reference are a
``duplicate_reference`` row in ``catalog_conflicts``, rewritten at the end of each run.
A delta run also reads the products that gained a combination newer than every bound one
(PrestaShop's ``Combination::add`` leaves the product's ``date_upd`` alone).

Stock: the first time a SKU is bound, its ``inventory.on_hand`` is the store's quantity.
After that the OMS is the stock master: later syncs never overwrite ``on_hand`` (the OMS
pushes its available quantity to the store through the outbox instead). Products with
combinations hold no stock of their own; their combinations do. Each binding caches its
channel's opaque stock token (``store_ids[store]["stock_token"]``, ``CatalogStock.token``;
PrestaShop's is the stock row's writable fields, so push_stock can PUT the full row without
reading it); a new quantity alone is not a change (``CatalogPort.kept_stock_token``), but a
product whose set of combinations changed (``store_ids[store]["combinations"]``) has its
units' tokens replaced by the rows just read.

The store is read through ``channels.port.CatalogPort`` (neutral records: ``CatalogEntry``
and what it holds); nothing here knows a channel's wire format or resource names.

Shop dates are the shop's local time (``PS_TIMEZONE``, re-read at the start of every run):
the delta cursor is a shop-local text from the store's own clock and dates (never the OMS's),
kept an overlap (one hour, plus the hour the autumn change repeats) behind them (re-read
items compare equal and write nothing) so equal timestamps or a repeated hour lose no edit.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.core import build_record, map_record, source_fields
from engine.core.records import ProductRecord, VariationRecord
from engine.runtime.channels.clock import ShopClock, next_cursor
from engine.runtime.channels.port import (
    STOCK_TOKEN,
    CatalogEntry,
    CatalogPort,
    CatalogVariant,
    ChannelPort,
)
from engine.runtime.db.base import utcnow
from engine.runtime.db.direct import sqlite_insert_ids
from engine.runtime.db.repository import _dialect_insert
from engine.runtime.db.tables import (
    AttributeGroupRow,
    AttributeValueRow,
    BindingRow,
    BrandRow,
    CatalogConflictRow,
    CategoryRow,
    InventoryRow,
    ProductRow,
)
from engine.spec.model import SkuCandidate, SkuRuleSpec

from .common import (
    ItemRate,
    StoreTarget,
    SyncReport,
    ctrl_c_after_block,
    fewer_collections,
    load_store,
    read_cursor,
    recorded_run,
    refresh_shop_clock,
    save_run_counts,
    write_cursor,
)
from .progress import NullProgress, Progress

FULL_CURSOR = "catalog.full"
DELTA_CURSOR = "catalog.delta"
OVERLAP = timedelta(hours=1)
CENT = Decimal("0.01")
_FIELDS = (
    "sku",
    "name",
    "parent_id",
    "price",
    "active",
    "deleted",
    "image_url",
    "brand_id",
    "category_ids",
    "attribute_value_ids",
    "store_ids",
    "extra",
)


def _money(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(CENT)


# --------------------------------------------------------------------------- naming units

SKU_MAX = 64  # ProductRow.sku / InventoryRow.sku
_EAN = re.compile(r"^[0-9]{8,14}$")


def _text(value: str | None) -> str:
    return (value or "").strip()


def _ean(value: str) -> str:
    """An EAN/GTIN worth naming a unit by: 8-14 digits, not all zeros; else ''."""
    return value if _EAN.match(value) and value.strip("0") else ""


@functools.lru_cache(maxsize=4096)  # option value names repeat on every combination
def _slug(text: str) -> str:
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", norm.lower()).strip("-")


def _fallback(values: Mapping[str, str]) -> str:
    """``ps{store}-{product_id}`` or ``ps{store}-{product_id}-{combination_id}``."""
    base = f"ps{values['store']}-{values['product_id']}"
    return f"{base}-{values['combination_id']}" if values.get("combination_id") else base


def _candidate_value(
    cand: SkuCandidate, values: Mapping[str, str], *, own: bool = True, own_ean: bool = True
) -> str:
    """The SKU this candidate gives the unit, or '' when it gives none (not set, not the
    unit's own, a placeholder without a value, longer than a SKU may be)."""
    if cand.kind == "reference":
        value = values.get("reference", "") if own else ""
    elif cand.kind == "ean13":
        value = values.get("ean13", "") if own_ean else ""
    elif cand.kind == "template":
        if any(not values.get(name) for name in cand.placeholders):
            return ""
        try:
            value = cand.text.format_map(values)
        except (KeyError, ValueError, IndexError):
            return ""
    else:
        return ""
    value = value.strip()
    return value if len(value) <= SKU_MAX else ""


def _same_unit(entry: Mapping[str, Any], kind: str, ext: int) -> bool:
    if kind == "combination":
        return bool(entry.get("combination_id") == ext)
    return bool(entry.get("product_id") == ext and entry.get("combination_id") is None)


# --------------------------------------------------------------------------- reference data


def _bind_many(session: Session, store_id: int, kind: str, pairs: Mapping[str, str]) -> None:
    if not pairs:
        return
    now = utcnow()
    # one prepared upsert, executed for many rows (a multi-VALUES statement would be
    # compiled anew for every page)
    table = BindingRow.__table__
    stmt = _dialect_insert(session)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.store_id, table.c.kind, table.c.external_id],
        set_={"internal_id": stmt.excluded.internal_id},
    )
    session.execute(
        stmt,
        [
            {
                "store_id": store_id,
                "kind": kind,
                "external_id": str(e),
                "internal_id": str(i),
                "updated_at": now,
            }
            for e, i in pairs.items()
        ],
    )


def _bindings(session: Session, store_id: int, kind: str) -> dict[int, int]:
    rows = session.execute(
        select(BindingRow.external_id, BindingRow.internal_id).where(
            BindingRow.store_id == store_id, BindingRow.kind == kind
        )
    )
    return {int(e): int(i) for e, i in rows}


def _upsert_simple(
    session: Session,
    store_id: int,
    kind: str,
    table: Any,
    wanted: Mapping[int, dict[str, Any]],
    report: SyncReport,
) -> dict[int, int]:
    """Create or update small reference rows (``wanted``: external id -> column values)."""
    bound = _bindings(session, store_id, kind)
    existing = (
        {
            row.id: row
            for row in session.scalars(select(table).where(table.id.in_(list(bound.values()))))
        }
        if bound
        else {}
    )
    new_pairs: dict[str, str] = {}
    for ext, values in wanted.items():
        row = existing.get(bound.get(ext, -1))
        if row is None:
            row = table(**values)
            session.add(row)
            session.flush()
            bound[ext] = row.id
            new_pairs[str(ext)] = str(row.id)
            report.add(f"{kind}_created")
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            report.add(f"{kind}_updated")
    _bind_many(session, store_id, kind, new_pairs)
    session.flush()
    return bound


class Reference:
    """Internal ids (and labels) of the store's categories, brands and attribute values."""

    def __init__(self) -> None:
        self.categories: dict[int, int] = {}
        self.brands: dict[int, int] = {}
        self.values: dict[int, int] = {}
        self.labels: dict[int, str] = {}
        self.groups: dict[int, int] = {}
        self.value_names: dict[int, str] = {}


def sync_reference(
    session: Session, adapter: CatalogPort, store_id: int, report: SyncReport
) -> Reference:
    """Categories (with parents), brands, attribute groups and values, in one transaction."""
    ref = Reference()
    cats = adapter.categories()
    ref.categories = _upsert_simple(
        session,
        store_id,
        "category",
        CategoryRow,
        {c.id: {"name": c.name or f"#{c.id}", "active": c.active} for c in cats},
        report,
    )
    rows = {
        r.id: r
        for r in session.scalars(
            select(CategoryRow).where(CategoryRow.id.in_(list(ref.categories.values())))
        )
    }
    for c in cats:
        row = rows.get(ref.categories[c.id])
        parent = ref.categories.get(c.parent_id)
        if row is not None and row.parent_id != parent and parent != row.id:
            row.parent_id = parent
    ref.brands = _upsert_simple(
        session,
        store_id,
        "brand",
        BrandRow,
        {m.id: {"name": m.name or f"#{m.id}"} for m in adapter.manufacturers()},
        report,
    )
    options = adapter.product_options()
    ref.groups = _upsert_simple(
        session,
        store_id,
        "attribute_group",
        AttributeGroupRow,
        {o.id: {"name": o.public_name or o.name or f"#{o.id}"} for o in options},
        report,
    )
    group_names = {o.id: o.public_name or o.name for o in options}
    values = [v for v in adapter.product_option_values() if v.option_id in ref.groups]
    ref.values = _upsert_simple(
        session,
        store_id,
        "attribute_value",
        AttributeValueRow,
        {
            v.id: {"group_id": ref.groups[v.option_id], "name": v.name or f"#{v.id}"}
            for v in values
        },
        report,
    )
    ref.labels = {v.id: f"{group_names.get(v.option_id, '')} : {v.name}" for v in values}
    ref.value_names = {v.id: v.name for v in values}
    session.flush()
    return ref


# --------------------------------------------------------------------------- products


class CatalogState:
    """Everything a run needs to decide inserts/updates without per-row SELECTs."""

    def __init__(self, session: Session, store_id: int) -> None:
        self.store_id = store_id
        self.key = str(store_id)
        self.products = _bindings(session, store_id, "product")
        self.combinations = _bindings(session, store_id, "combination")
        self.rows: dict[int, dict[str, Any]] = {}
        self.by_sku: dict[str, int] = {}
        self.children: dict[int, set[int]] = {}
        cols = [getattr(ProductRow, f) for f in _FIELDS]
        for rid, *values in session.execute(select(ProductRow.id, *cols)):
            self._remember(rid, dict(zip(_FIELDS, values, strict=True)))
        self.bound_product_ids = sorted(self.products)

    def _remember(self, rid: int, values: dict[str, Any]) -> None:
        self.rows[rid] = values
        self.by_sku[values["sku"]] = rid
        if values["parent_id"] is not None:
            self.children.setdefault(values["parent_id"], set()).add(rid)


_PRODUCTS: Table = ProductRow.__table__
# RETURNING the (unique) SKU with the id: the ids are matched to the rows by it, so the
# rows go in multi-row batches on every database (``sort_by_parameter_order`` cannot be
# kept by SQLite, where SQLAlchemy then sends one INSERT per row); batches of 100 rows,
# not 1,000: SQLite's driver keeps each prepared statement of a new size, ~1 MB at 1,000
_INSERT_PRODUCTS = (
    insert(_PRODUCTS)
    .returning(_PRODUCTS.c.id, _PRODUCTS.c.sku)
    .execution_options(insertmanyvalues_page_size=100)
)


_read_fields = source_fields
"""The top-level fields of a record a mapping reads (its rules' first path parts)."""


class CatalogSync:
    """Applies pages of ``CatalogEntry`` to the OMS tables (one transaction per page)."""

    def __init__(
        self,
        bundle: Any,
        store: StoreTarget,
        channel: CatalogPort,
        ref: Reference,
        state: CatalogState,
        clock: ShopClock | None = None,
    ) -> None:
        self.clock = clock or ShopClock()
        mappings = bundle.channel.mappings
        self.product_in = mappings["product_in"]
        self.combination_in = mappings["combination_in"]
        # the store dates a mapping can read: only those are turned into UTC texts
        self.product_fields = _read_fields(self.product_in)
        self.combination_fields = _read_fields(self.combination_in)
        self.rules: SkuRuleSpec = getattr(bundle.channel, "skus", None) or SkuRuleSpec()
        self.store = store
        self.channel = channel
        self.ref = ref
        self.state = state
        self.claimed: set[str] = set()
        # first-sight quantities to add per (product_id, combination_id) (bind_products)
        self.extra_on_hand: dict[tuple[int, int], int] = {}

    # -- desired values ------------------------------------------------------------

    def _store_ids(
        self, rid: int | None, ids: dict[str, Any], *, fresh_stock: bool = False
    ) -> dict[str, Any]:
        current = dict(self.state.rows[rid]["store_ids"] or {}) if rid is not None else {}
        before = current.get(self.state.key)
        if isinstance(before, dict):
            old = before.get(STOCK_TOKEN, before.get("stock"))
            before = {k: v for k, v in before.items() if k != "stock"}  # (before tokens)
            if not fresh_stock and old is not None and STOCK_TOKEN in ids:
                # only the quantity moved (our pushes, the store's sales): not a row change
                ids = {
                    **ids,
                    STOCK_TOKEN: self.channel.kept_stock_token(old, ids.get(STOCK_TOKEN)),
                }
        # keep what listing recorded beside the ids (image source, exact price, description)
        current[self.state.key] = {**before, **ids} if isinstance(before, dict) else ids
        return current

    def _owner(self, rid: int) -> dict[str, Any] | None:
        ids = (self.state.rows[rid]["store_ids"] or {}).get(self.state.key)
        return ids if isinstance(ids, dict) else None

    def desired(
        self, item: CatalogEntry, report: SyncReport
    ) -> list[tuple[str, int, int | None, dict[str, Any], int | None]]:
        """``(kind, external id, existing row id, values, store quantity)`` for the product
        and each combination; values' ``parent_id`` is filled later for new parents.

        Every unit is bound by the store's ids; a unit bound before keeps its SKU, a new
        one is named by the channel's SKU rule (``_name``)."""
        p = item.product
        rec: ProductRecord = build_record(
            "product",
            map_record(
                self.product_in,
                self.clock.utc_fields(p.to_mapping(self.product_fields), self.product_fields),
            ),
        )
        reference = _text(rec.reference)
        ean = _ean(_text(rec.ean13))
        price = _money(rec.price) or Decimal("0.00")
        active = bool(rec.active)
        brand = self.ref.brands.get(rec.brand_id or 0)
        cats = sorted({self.ref.categories[c] for c in p.category_ids if c in self.ref.categories})
        stock_rows = {s.combination_id: s for s in item.stock}
        base_stock = stock_rows.get(0)
        combo_ids = sorted(c.id for c in item.combinations)
        prid = self._bound("product", p.id)
        before = self._owner(prid) if prid is not None else None
        # the store added or removed combinations since the last sync: the cached stock
        # bodies are replaced by the rows just read (never a stale body PUT later)
        fresh = isinstance(before, dict) and before.get("combinations", combo_ids) != combo_ids
        if fresh:
            report.add("combination_sets_changed")
        product_values = {
            "store": str(self.store.id),
            "product_id": str(p.id),
            "reference": reference,
            "ean13": ean,
        }
        rid, sku, source = self._name("product", p.id, prid, product_values, own=True)
        name = rec.name or sku
        out: list[tuple[str, int, int | None, dict[str, Any], int | None]] = [
            (
                "product",
                p.id,
                rid,
                {
                    "sku": sku,
                    "name": name[:255],
                    "parent_id": None,
                    "price": price,
                    "active": active,
                    "deleted": False,
                    "image_url": item.cover_image_url,
                    "brand_id": brand,
                    "category_ids": cats,
                    "attribute_value_ids": [],
                    "extra": dict(rec.extra),
                    "store_ids": self._store_ids(
                        rid,
                        {
                            "product_id": p.id,
                            "combination_id": None,
                            "stock_available_id": base_stock.id if base_stock else None,
                            STOCK_TOKEN: base_stock.token if base_stock else None,
                            "sku_source": source,
                            "reference": reference,
                            "combinations": combo_ids,
                        },
                        fresh_stock=fresh,
                    ),
                },
                None if item.combinations else (base_stock.quantity if base_stock else 0),
            )
        ]
        mapped_combos: list[tuple[CatalogVariant, VariationRecord]] = [
            (
                c,
                build_record(
                    "variation",
                    map_record(
                        self.combination_in,
                        self.clock.utc_fields(
                            c.to_mapping(self.combination_fields), self.combination_fields
                        ),
                    ),
                ),
            )
            for c in item.combinations
        ]
        refs = [_text(cm.reference) for _c, cm in mapped_combos]
        eans = [_ean(_text(cm.ean13)) for _c, cm in mapped_combos]
        for (c, cm), cref, cean in zip(mapped_combos, refs, eans, strict=True):
            # a combination's reference (or EAN) is its own when neither its product nor a
            # sibling carries it too (many stores repeat the product's reference on each)
            own_ref = bool(cref) and cref != reference and refs.count(cref) == 1
            own_ean = bool(cean) and cean != ean and eans.count(cean) == 1
            values = {
                "store": str(self.store.id),
                "product_id": str(p.id),
                "combination_id": str(c.id),
                "reference": cref,
                "ean13": cean,
                "product_reference": reference,
                "attributes": "-".join(
                    part
                    for part in (
                        _slug(self.ref.value_names.get(v, "")) for v in c.option_value_ids
                    )
                    if part
                ),
            }
            crid, csku, csource = self._name(
                "combination",
                c.id,
                self._bound("combination", c.id),
                values,
                own=own_ref,
                own_ean=own_ean,
            )
            labels = [self.ref.labels[v] for v in c.option_value_ids if v in self.ref.labels]
            image = item.image_url(c.image_ids[0]) if c.image_ids else item.cover_image_url
            srow = stock_rows.get(c.id)
            out.append(
                (
                    "combination",
                    c.id,
                    crid,
                    {
                        "sku": csku,
                        "name": (f"{name} - {', '.join(labels)}" if labels else name)[:255],
                        "parent_id": None,
                        "price": _money(price + (cm.price_impact or Decimal(0))),
                        "active": active,
                        "deleted": False,
                        "image_url": image,
                        "brand_id": brand,
                        "category_ids": cats,
                        "attribute_value_ids": sorted(
                            {
                                self.ref.values[v]
                                for v in c.option_value_ids
                                if v in self.ref.values
                            }
                        ),
                        "extra": dict(cm.extra),
                        "store_ids": self._store_ids(
                            crid,
                            {
                                "product_id": p.id,
                                "combination_id": c.id,
                                "stock_available_id": srow.id if srow else None,
                                STOCK_TOKEN: srow.token if srow else None,
                                "sku_source": csource,
                                "reference": cref,
                            },
                            fresh_stock=fresh,
                        ),
                    },
                    srow.quantity if srow else 0,
                )
            )
        return out

    def _bound(self, kind: str, ext: int) -> int | None:
        """The row bound to this store unit, if any (and still in the OMS)."""
        rid = (self.state.products if kind == "product" else self.state.combinations).get(ext)
        return rid if rid is not None and rid in self.state.rows else None

    def _name(
        self,
        kind: str,
        ext: int,
        rid: int | None,
        values: Mapping[str, str],
        *,
        own: bool,
        own_ean: bool = True,
    ) -> tuple[int | None, str, str]:
        """``(row id or None for a new row, SKU, how it was made)``.

        A bound unit keeps its SKU (inventory, order lines and pushes are keyed by it, so a
        reference the store changes later is recorded, never followed). A new unit takes
        the first usable candidate of the channel's SKU rule: a value that is set, at most
        64 characters, and free (no other unit of this store holds it; a row no unit of
        this store holds is adopted, e.g. one ``products create`` made or another store's).
        """
        if rid is not None:
            sku = str(self.state.rows[rid]["sku"])
            entry = self._owner(rid) or {}
            source = entry.get("sku_source") or self._infer_source(kind, sku, values)
            return rid, sku, str(source)
        for cand in self.rules.candidates(kind):
            if cand.kind == "fallback":
                break
            value = _candidate_value(cand, values, own=own, own_ean=own_ean)
            if not value:
                continue
            usable, adopt = self._free(value, kind, ext)
            if usable:
                return adopt, value, cand.source
        base = _fallback(values)
        sku, n = base, 1
        while True:
            usable, adopt = self._free(sku, kind, ext)
            if usable:
                return adopt, sku, "fallback"
            n += 1
            sku = f"{base}-{n}"

    def _free(self, sku: str, kind: str, ext: int) -> tuple[bool, int | None]:
        """Whether ``sku`` can name this unit, and the row to adopt (None: a new row)."""
        if sku in self.claimed:
            return False, None
        rid = self.state.by_sku.get(sku)
        if rid is not None:
            owner = self._owner(rid)
            if owner is not None and not _same_unit(owner, kind, ext):
                return False, None
        self.claimed.add(sku)
        return True, rid

    def _infer_source(self, kind: str, sku: str, values: Mapping[str, str]) -> str:
        """How an SKU bound before its source was recorded was most likely made."""
        if sku == _fallback(values):
            return "fallback"
        for cand in self.rules.candidates(kind):
            if cand.kind != "fallback" and sku == _candidate_value(cand, values):
                return cand.source
        return "oms"

    # -- one page --------------------------------------------------------------------

    def apply_page(
        self, session: Session, items: Sequence[CatalogEntry], report: SyncReport
    ) -> None:
        """Write one page: inserts (parents first), updates of changed rows, new bindings,
        first-sight stock, combinations the store dropped marked deleted."""
        plans = [self.desired(item, report) for item in items]
        new_parents: list[tuple[int, dict[str, Any], int | None]] = []
        children: list[tuple[int, int, int | None, dict[str, Any], int | None]] = []
        updates: list[dict[str, Any]] = []
        new_bindings: dict[str, dict[str, str]] = {"product": {}, "combination": {}}
        first_sight: dict[str, int] = {}
        for plan in plans:
            if not plan:
                continue
            _kind, ext, rid, values, qty = plan[0]
            if rid is None:
                new_parents.append((ext, values, qty))
            else:
                self._diff(rid, values, updates)
                self._bind_if_needed("product", ext, rid, new_bindings, first_sight, values, qty)
            seen_children: set[int] = set()
            for _ck, cext, crid, cvalues, cqty in plan[1:]:
                children.append((ext, cext, crid, cvalues, cqty))
                if crid is not None:
                    seen_children.add(crid)
            if rid is not None:
                for gone in sorted(self.state.children.get(rid, set()) - seen_children):
                    if not self.state.rows[gone]["deleted"]:
                        updates.append({"id": gone, "deleted": True, "updated_at": utcnow()})
                        self.state.rows[gone]["deleted"] = True
                        report.add("combinations_deleted")
        if new_parents:
            ids = self._insert(session, [v for _e, v, _q in new_parents])
            for (ext, values, qty), rid in zip(new_parents, ids, strict=True):
                self._bind_if_needed("product", ext, rid, new_bindings, first_sight, values, qty)
            report.add("products_created", len(new_parents))
        new_children: list[tuple[int, dict[str, Any], int | None]] = []
        for ext, cext, crid, cvalues, cqty in children:
            cvalues["parent_id"] = self.state.products[ext]
            if crid is None:
                new_children.append((cext, cvalues, cqty))
            else:
                self._diff(crid, cvalues, updates)
                self._bind_if_needed(
                    "combination", cext, crid, new_bindings, first_sight, cvalues, cqty
                )
        if new_children:
            ids = self._insert(session, [v for _c, v, _q in new_children])
            for (cext, cvalues, cqty), rid in zip(new_children, ids, strict=True):
                self._bind_if_needed(
                    "combination", cext, rid, new_bindings, first_sight, cvalues, cqty
                )
            report.add("combinations_created", len(new_children))
        if updates:
            session.execute(update(ProductRow), updates)
            report.add("rows_updated", len({u["id"] for u in updates}))
        for kind, pairs in new_bindings.items():
            _bind_many(session, self.store.id, kind, pairs)
        if first_sight:
            now = utcnow()
            inventory = InventoryRow.__table__
            stmt = _dialect_insert(session)(inventory)
            stmt = stmt.on_conflict_do_update(
                index_elements=[inventory.c.sku], set_={"on_hand": stmt.excluded.on_hand}
            )
            session.execute(
                stmt,
                [
                    {"sku": s, "on_hand": max(0, q), "reserved": 0, "updated_at": now}
                    for s, q in sorted(first_sight.items())
                ],
            )
            report.add("stock_initialised", len(first_sight))

    def _insert(self, session: Session, rows: list[dict[str, Any]]) -> list[int]:
        now = utcnow()
        payload = [{**r, "created_at": now, "updated_at": now} for r in rows]
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            ids = sqlite_insert_ids(conn, _PRODUCTS, payload)  # executemany, ids worked out
        else:
            # a Core statement on the table (prebuilt, no ORM bulk-persistence bookkeeping);
            # "insertmanyvalues" batches the rows, each id comes back beside its row's SKU
            by_sku = {sku: int(i) for i, sku in session.execute(_INSERT_PRODUCTS, payload)}
            ids = [by_sku[r["sku"]] for r in rows]
            if len(by_sku) != len(rows):
                raise RuntimeError(f"inserted {len(rows)} products, got {len(by_sku)} ids back")
        for rid, values in zip(ids, rows, strict=True):
            self.state._remember(rid, dict(values))
        return ids

    def _diff(self, rid: int, values: dict[str, Any], updates: list[dict[str, Any]]) -> None:
        current = self.state.rows[rid]
        changed = {k: v for k, v in values.items() if current.get(k) != v}
        if changed:
            if "sku" in changed and self.state.by_sku.get(changed["sku"], rid) != rid:
                changed.pop("sku")  # a store-side SKU clash: keep ours
            changed["updated_at"] = utcnow()
            updates.append({"id": rid, **changed})
            if "sku" in changed:
                self.state.by_sku.pop(current["sku"], None)
                self.state.by_sku[changed["sku"]] = rid
            if "parent_id" in changed and values["parent_id"] is not None:
                self.state.children.setdefault(values["parent_id"], set()).add(rid)
            current.update({k: v for k, v in changed.items() if k != "updated_at"})

    def _bind_if_needed(
        self,
        kind: str,
        ext: int,
        rid: int,
        new_bindings: dict[str, dict[str, str]],
        first_sight: dict[str, int],
        values: Mapping[str, Any],
        qty: int | None,
    ) -> None:
        table = self.state.products if kind == "product" else self.state.combinations
        if table.get(ext) == rid:
            return
        table[ext] = rid
        new_bindings[kind][str(ext)] = str(rid)
        if kind == "product":
            bisect.insort(self.state.bound_product_ids, ext)
        if qty is not None:
            entry = (values["store_ids"] or {}).get(self.state.key) or {}
            unit = (int(entry.get("product_id") or 0), int(entry.get("combination_id") or 0))
            first_sight[str(values["sku"])] = qty + self.extra_on_hand.get(unit, 0)

    def record_conflicts(self, session: Session, report: SyncReport) -> int:
        """Rewrite this store's ``duplicate_reference`` conflicts from what is bound: two
        DIFFERENT store products carrying one reference (a product and its own
        combinations sharing it is normal). A conflict no longer shown is removed."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in self.state.rows.values():
            entry = (row["store_ids"] or {}).get(self.state.key)
            if row["deleted"] or not isinstance(entry, dict) or not entry.get("reference"):
                continue
            groups.setdefault(str(entry["reference"]), []).append(
                {
                    "product_id": entry.get("product_id"),
                    "combination_id": entry.get("combination_id"),
                    "sku": row["sku"],
                    "sku_source": entry.get("sku_source"),
                }
            )
        found = {
            ref: sorted(units, key=lambda u: (u["product_id"] or 0, u["combination_id"] or 0))
            for ref, units in groups.items()
            if len({u["product_id"] for u in units}) > 1
        }
        kind = "duplicate_reference"
        existing = {
            row.key: row
            for row in session.scalars(
                select(CatalogConflictRow).where(
                    CatalogConflictRow.store_id == self.store.id, CatalogConflictRow.kind == kind
                )
            )
        }
        now = utcnow()
        for ref, units in sorted(found.items()):
            detail = _conflict_detail(ref, units)
            known = existing.pop(ref, None)
            if known is None:
                session.add(
                    CatalogConflictRow(
                        store_id=self.store.id,
                        kind=kind,
                        key=ref,
                        units=units,
                        detail=detail,
                        first_seen=now,
                        last_seen=now,
                    )
                )
                report.add("conflicts_new")
            else:
                known.units, known.detail, known.last_seen = units, detail, now
        for gone in existing.values():
            session.delete(gone)
            report.add("conflicts_resolved")
        if found:
            report.add("conflicts", len(found))
        session.flush()
        return len(found)

    def mark_missing(
        self, session: Session, lo: int, hi: int | None, listed: set[int], report: SyncReport
    ) -> None:
        """Bound products with ``lo < id <= hi`` (``hi`` None: no bound) the store did not
        list: deleted (with their combinations)."""
        ids = self.state.bound_product_ids
        start = bisect.bisect_right(ids, lo)
        end = len(ids) if hi is None else bisect.bisect_right(ids, hi)
        updates = []
        for ext in ids[start:end]:
            if ext in listed:
                continue
            rid = self.state.products[ext]
            for target in [rid, *sorted(self.state.children.get(rid, ()))]:
                row = self.state.rows.get(target)
                if row is not None and not row["deleted"]:
                    row["deleted"] = True
                    updates.append({"id": target, "deleted": True, "updated_at": utcnow()})
                    report.add("products_deleted" if target == rid else "combinations_deleted")
        if updates:
            session.execute(update(ProductRow), updates)


def _conflict_detail(reference: str, units: Sequence[Mapping[str, Any]]) -> str:
    """One line: what is wrong and what to do about it."""
    products = sorted({int(u["product_id"]) for u in units})
    holder = next((u for u in units if u["sku"] == reference), None)
    others = [
        u
        for u in units
        if u["combination_id"] is None
        and (holder is None or u["product_id"] != holder["product_id"])
    ]
    kept = (
        f"SKU {reference!r} names product {holder['product_id']}"
        if holder is not None
        else f"no unit holds SKU {reference!r}"
    )
    given = ", ".join(f"product {u['product_id']} -> {u['sku']}" for u in others)
    return (
        f"reference {reference!r} is on {len(products)} different store products "
        f"({', '.join(map(str, products))}); {kept}"
        + (f"; the others got rule-made SKUs ({given})" if given else "")
        + "; fix: give each product its own reference in the store, then run "
        "`omsflow sync catalog --full`"
    )


def bind_products(
    sessions: sessionmaker[Session],
    bundle: Any,
    store: StoreTarget,
    adapter: CatalogPort,
    product_ids: Iterable[int],
    report: SyncReport,
    extra_on_hand: Mapping[tuple[int, int], int] | None = None,
) -> set[int]:
    """Bind store products now, outside a catalogue run (an order names a unit the
    catalogue sync has not bound yet): each product read with its combinations and stock,
    named by the SKU rule, first-sight stock taken (plus ``extra_on_hand`` per
    ``(product_id, combination_id)``: units the store already took off for orders about to
    reserve them). Returns the product ids the store still has (a product it no longer has
    stays unbound)."""
    wanted = sorted(set(product_ids))
    items = adapter.get_products(wanted)  # 3 requests per 100 products, not 3 per product
    if len(items) < len(wanted):
        report.add("units_not_in_store", len(wanted) - len(items))
    if not items:
        return set()
    with sessions.begin() as session:
        ref = sync_reference(session, adapter, store.id, report)
        state = CatalogState(session, store.id)
        sync = CatalogSync(bundle, store, adapter, ref, state)
        sync.extra_on_hand = dict(extra_on_hand or {})
        sync.apply_page(session, items, report)
    report.add("products_bound_for_orders", len(items))
    return {i.product.id for i in items}


def _pages(items: Iterable[CatalogEntry], size: int) -> Iterator[list[CatalogEntry]]:
    page: list[CatalogEntry] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _max_date(current: str | None, items: Sequence[CatalogEntry]) -> str | None:
    dates = [i.product.date_upd for i in items if i.product.date_upd]
    if current:
        dates.append(current)
    return max(dates) if dates else None


def sync_catalog(
    sessions: sessionmaker[Session],
    bundle: Any,
    store_name: str | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
    adapter: ChannelPort | None = None,
) -> SyncReport:
    """Run the catalogue sync for one store (see the module docstring).

    Args:
        full: read every product (and detect deletions) even when a delta cursor exists.
        adapter: the channel to read (default: the store's, built by its channel's
            factory, ``channels.registry``).

    Returns:
        the run's ``SyncReport`` (also stored as a ``SyncRunRow``).
    """
    progress = progress or NullProgress()
    store = load_store(sessions, store_name)
    rate = bundle.channel.schedules.catalog_rate
    limiter = ItemRate(rate.items if rate else None, rate.per_seconds if rate else None)
    with (
        fewer_collections(),  # a page of records lives a page long: see common.py
        recorded_run(sessions, store, "catalog", bundle.channel, adapter) as (report, adapter),
    ):
        shop = refresh_shop_clock(sessions, store, adapter, report)
        with sessions.begin() as session:
            ref = sync_reference(session, adapter, store.id, report)
            full_cursor = read_cursor(session, store.id, FULL_CURSOR)
            delta_cursor = read_cursor(session, store.id, DELTA_CURSOR)
            state = CatalogState(session, store.id)
        sync = CatalogSync(bundle, store, adapter, ref, state, shop.clock)
        # the store's own clock when the run started (a shop-local text)
        now_text = shop.started_or(datetime.now(UTC))
        if full or full_cursor or not delta_cursor:
            report.mode = "full"
            after, run_started, max_seen = 0, now_text, ""
            if full_cursor:  # resume an interrupted full sync
                parts = full_cursor.split("|")
                after, run_started, max_seen = int(parts[0]), parts[1], parts[2]
            progress.start("products")
            for page in adapter.catalog_pages(after_id=after):
                limiter.take(sum(1 + len(i.combinations) for i in page))
                hi = max(i.product.id for i in page)
                max_seen = _max_date(max_seen, page) or ""
                with ctrl_c_after_block():  # a committed page is always counted
                    with sessions.begin() as session:
                        sync.apply_page(session, page, report)
                        sync.mark_missing(session, after, hi, {i.product.id for i in page}, report)
                        write_cursor(
                            session, store.id, FULL_CURSOR, f"{hi}|{run_started}|{max_seen}"
                        )
                        report.add("products_seen", len(page))
                        report.add("combinations_seen", sum(len(i.combinations) for i in page))
                        save_run_counts(session, report.run_id, report.counts)
                    progress.advance("products", len(page))
                after = hi
            with sessions.begin() as session:
                sync.mark_missing(session, after, None, set(), report)
                sync.record_conflicts(session, report)
                write_cursor(session, store.id, FULL_CURSOR, None)
                write_cursor(
                    session,
                    store.id,
                    DELTA_CURSOR,
                    _delta_after(shop.clock, run_started, max_seen, None),
                )
            progress.finish("products")
        else:
            report.mode = "delta"
            since = delta_cursor
            max_seen = ""
            newest_combination = max(state.combinations, default=0)
            seen: set[int] = set()

            def save_changed(page: Sequence[CatalogEntry]) -> None:
                """One page of changed products, committed and counted together."""
                with ctrl_c_after_block():
                    with sessions.begin() as session:
                        sync.apply_page(session, page, report)
                        report.add("products_seen", len(page))
                        report.add("combinations_seen", sum(len(i.combinations) for i in page))
                        save_run_counts(session, report.run_id, report.counts)
                    progress.advance("products (changed)", len(page))

            progress.start("products (changed)")
            for page in _pages(adapter.products_changed_since(since), adapter.page_size):
                limiter.take(sum(1 + len(i.combinations) for i in page))
                max_seen = _max_date(max_seen, page) or ""
                seen.update(i.product.id for i in page)
                save_changed(page)
            # a combination added to a product leaves the product's date_upd as it was
            # (PrestaShop's Combination::add): products with combinations newer than every
            # bound one are read again, so their units are bound and their cached stock
            # rows replaced (the product-level row now being the store's sum)
            grown = sorted(adapter.products_with_combinations_after(newest_combination) - seen)
            for chunk in (grown[i : i + 100] for i in range(0, len(grown), 100)):
                page = adapter.get_products(chunk)  # gone products are left out
                limiter.take(sum(1 + len(i.combinations) for i in page))
                save_changed(page)
            with sessions.begin() as session:
                sync.record_conflicts(session, report)
                write_cursor(
                    session,
                    store.id,
                    DELTA_CURSOR,
                    _delta_after(shop.clock, now_text, max_seen, since),
                )
            progress.finish("products (changed)")
    return report


def _delta_after(clock: ShopClock, started: str, max_seen: str, previous: str | None) -> str:
    """The next delta cursor (shop-local text): the earlier of the store's clock at the
    run's start and the newest ``date_upd`` seen, minus the overlap; never before the
    previous cursor (``channels.clock.next_cursor``)."""
    value = next_cursor(
        clock, started=started, max_seen=max_seen, previous=previous, overlap=OVERLAP
    )
    return value or clock.to_local(datetime.now(UTC))
