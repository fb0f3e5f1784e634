"""Execute a listing plan against one store and bind everything the store created in the OMS.

``apply_drafts`` builds the ``existing`` snapshots from the OMS database (no store request:
a second import of the same file plans all-unchanged and makes no request at all), looks up
the products it is about to create by SKU in the store (batched ``filter[reference]``) so a
retry adopts what an interrupted run created, creates the names the drafts need (category,
manufacturer, attribute groups and values), then writes products concurrently
(``client.map_concurrent``): product, combinations, stock (one read + one PUT per changed
row), cover image. Each chunk of results is bound in one transaction: ``ProductRow`` (with
``store_ids[str(store_id)] = {product_id, combination_id, stock_available_id, ...}``, the
shape the outbox's ``push_stock`` reads), ``BindingRow`` and ``InventoryRow``. A failure of
one product is reported and the others go on; only what the store created is bound.

What omsflow last wrote that the OMS tables cannot hold exactly (the image source uploaded,
the description, prices beyond the 2 decimals of the ``Money`` columns) is recorded in the
product's ``store_ids`` entry, so re-imports compare against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.errors import OmsflowError, StaleOrder
from engine.runtime import inventory
from engine.runtime.db.base import utcnow
from engine.runtime.db.repository import SqlBindingRepository
from engine.runtime.db.tables import (
    AttributeGroupRow,
    AttributeValueRow,
    BrandRow,
    CategoryRow,
    InventoryRow,
    ProductRow,
)
from engine.runtime.listing.drafts import ProductDraft
from engine.runtime.listing.plan import (
    Change,
    CombinationSnapshot,
    ProductSnapshot,
    plan_changes,
)
from engine.runtime.listing.target import PrestaShopTarget

OutcomeKind = Literal["create", "update", "unchanged", "failed"]
Progress = Callable[[int, int, str], None]
"""``(done, total, sku)`` after each product."""
CHUNK = 50
"""Products written concurrently, then bound in one transaction."""
_CENT = Decimal("0.01")


@dataclass
class Outcome:
    """What happened to one product."""

    sku: str
    kind: OutcomeKind
    fields: tuple[str, ...] = ()
    product_id: int | None = None
    error: str | None = None
    planned: str | None = None
    """For ``failed``: what was planned (create or update)."""
    shorted: tuple[str, ...] = ()
    """References of the orders moved to Partial: the new stock is below what they held."""
    promoted: tuple[str, ...] = ()
    """References of the Partial orders the new stock serves (now New)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "result": self.kind,
            "fields": list(self.fields),
            "product_id": self.product_id,
            "error": self.error,
            "shorted_orders": list(self.shorted),
            "promoted_orders": list(self.promoted),
        }


@dataclass
class ApplyReport:
    """Per product outcomes, counts, requests made and time taken."""

    outcomes: list[Outcome]
    dry_run: bool = False
    requests: dict[str, int] = field(default_factory=dict)
    """HTTP method -> requests made by this run (client stats delta)."""
    created_names: dict[str, int] = field(default_factory=dict)
    """Store objects created for names: category, brand, group, value."""
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        out = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
        key = {"create": "created", "update": "updated", "unchanged": "unchanged"}
        for o in self.outcomes:
            out[key.get(o.kind, "failed")] += 1
        return out

    @property
    def writes(self) -> int:
        return sum(n for m, n in self.requests.items() if m in ("POST", "PUT", "DELETE"))

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "requests": dict(self.requests),
            "created_names": dict(self.created_names),
            "seconds": round(self.seconds, 3),
            "products": [o.to_json() for o in self.outcomes],
        }


# --------------------------------------------------------------------------- snapshots


def _entry(row: ProductRow, store_id: int) -> dict[str, Any] | None:
    entry = (row.store_ids or {}).get(str(store_id))
    return entry if isinstance(entry, dict) and entry.get("product_id") else None


def _exact(recorded: object, column: Decimal | None) -> Decimal:
    """The price omsflow wrote (exact) unless the OMS column was changed since."""
    if recorded is not None:
        value = Decimal(str(recorded))
        if column is None or value.quantize(_CENT) == Decimal(column).quantize(_CENT):
            return value
    return Decimal(column or 0)


def db_snapshots(
    session: Session, store_id: int, drafts: Sequence[ProductDraft]
) -> tuple[dict[str, ProductSnapshot | None], dict[str, int]]:
    """What the OMS database says the store holds for the drafts' SKUs (no store request),
    and the reserved quantity per SKU (stock written to the store is on hand - reserved)."""
    skus = [d.sku for d in drafts]
    all_skus = [s for d in drafts for s in d.skus()]
    parents: dict[str, ProductRow] = {}
    for i in range(0, len(skus), 500):
        for row in session.scalars(
            select(ProductRow).where(ProductRow.sku.in_(skus[i : i + 500]))
        ):
            parents[row.sku] = row
    ids = [r.id for r in parents.values()]
    children: dict[int, list[ProductRow]] = {}
    for i in range(0, len(ids), 500):
        query = select(ProductRow).where(ProductRow.parent_id.in_(ids[i : i + 500]))
        for row in session.scalars(query.order_by(ProductRow.id)):
            children.setdefault(row.parent_id or 0, []).append(row)
    stock: dict[str, InventoryRow] = {}
    for i in range(0, len(all_skus), 500):
        query2 = select(InventoryRow).where(InventoryRow.sku.in_(all_skus[i : i + 500]))
        for inv in session.scalars(query2):
            stock[inv.sku] = inv
    cats = {c.id: c.name for c in session.scalars(select(CategoryRow))}
    brands = {b.id: b.name for b in session.scalars(select(BrandRow))}
    groups = {g.id: g.name for g in session.scalars(select(AttributeGroupRow))}
    values = {
        v.id: (groups.get(v.group_id, ""), v.name)
        for v in session.scalars(select(AttributeValueRow))
    }
    reserved = {s: inv.reserved for s, inv in stock.items()}

    def on_hand(sku: str) -> int:
        return stock[sku].on_hand if sku in stock else 0

    out: dict[str, ProductSnapshot | None] = {}
    for sku in skus:
        found = parents.get(sku)
        entry = _entry(found, store_id) if found is not None else None
        if found is None or entry is None or found.deleted or found.parent_id is not None:
            out[sku] = None
            continue
        row = found
        price = _exact(entry.get("price"), row.price)
        combos = []
        for child in children.get(row.id, []):
            centry = _entry(child, store_id)
            if centry is None or child.deleted or not centry.get("combination_id"):
                continue
            impact = (
                Decimal(str(centry["price_impact"]))
                if centry.get("price_impact") is not None
                and child.price is not None
                and (price + Decimal(str(centry["price_impact"]))).quantize(_CENT)
                == Decimal(child.price).quantize(_CENT)
                else Decimal(child.price or 0) - price
            )
            combos.append(
                CombinationSnapshot(
                    id=int(centry["combination_id"]),
                    sku=child.sku,
                    attributes=tuple(
                        values[int(v)] for v in child.attribute_value_ids or () if int(v) in values
                    ),
                    price_impact=impact,
                    stock=on_hand(child.sku),
                )
            )
        category_ids = list(row.category_ids or [])
        out[sku] = ProductSnapshot(
            id=int(entry["product_id"]),
            sku=sku,
            name=row.name,
            price=price,
            stock=on_hand(sku),
            category=cats.get(int(category_ids[0])) if category_ids else None,
            brand=brands.get(row.brand_id) if row.brand_id else None,
            image=entry.get("image_source"),
            active=row.active,
            description=str(entry.get("description", "")),
            combinations=tuple(combos),
        )
    return out, reserved


# --------------------------------------------------------------------------- writing


@dataclass
class _Written:
    """What the store accepted for one product (only this gets bound)."""

    product_id: int | None = None
    product_done: bool = False
    combos: dict[str, int] = field(default_factory=dict)
    combos_done: set[str] = field(default_factory=set)
    stock_ids: dict[int, int] = field(default_factory=dict)
    stock_done: dict[str, int] = field(default_factory=dict)
    image: tuple[int, str] | None = None
    error: str | None = None


@dataclass
class _Job:
    draft: ProductDraft
    change: Change
    snapshot: ProductSnapshot | None
    stock_ids: Mapping[int, int] = field(default_factory=dict)
    category_id: int | None = None
    brand_id: int | None = None
    value_ids: dict[str, list[int]] = field(default_factory=dict)
    written: _Written = field(default_factory=_Written)
    adopted: bool = False
    """The store already held the product (found by SKU) but the OMS had not bound it: a
    run interrupted after its store writes, or a product made in the store by hand."""
    shorted: tuple[str, ...] = ()
    promoted: tuple[str, ...] = ()


def _write(target: PrestaShopTarget, job: _Job, reserved: Mapping[str, int]) -> _Written:
    d, change, w = job.draft, job.change, job.written
    w.stock_ids.update(job.stock_ids)
    try:
        if change.kind == "create":
            w.product_id = target.create_product(
                d, category_id=job.category_id, brand_id=job.brand_id
            )
            w.product_done = True
        else:
            w.product_id = change.existing_id
            if "type" in change.fields_changed:
                raise OmsflowError(
                    f"{d.sku}: the store's product has combinations but the draft is a single "
                    "product; delete it first (omsflow products delete)"
                )
            product_fields = [
                f
                for f in ("name", "price", "active", "description", "category", "brand")
                if f in change.fields_changed
            ]
            if product_fields and w.product_id is not None:
                target.update_product(
                    w.product_id,
                    d,
                    product_fields,
                    category_id=job.category_id,
                    brand_id=job.brand_id,
                )
            w.product_done = True
        assert w.product_id is not None  # noqa: S101 - set on both paths
        pid = w.product_id
        quantities: dict[int, int] = {}
        stock_skus: dict[int, tuple[str, int]] = {}
        existing = {c.sku: c.id for c in (job.snapshot.combinations if job.snapshot else ())}
        w.combos.update(existing)
        for i, (v, vc) in enumerate(zip(d.variants, change.variants, strict=True)):
            if vc.kind == "create":
                cid = target.create_combination(
                    pid,
                    v,
                    job.value_ids[v.sku],
                    default_on=(i == 0 and not existing),
                )
                w.combos[v.sku] = cid
                w.combos_done.add(v.sku)
            elif vc.kind == "update":
                cid = w.combos[v.sku]
                target.update_combination(cid, v, vc.fields_changed, job.value_ids[v.sku])
                w.combos_done.add(v.sku)
            else:
                continue
            if vc.kind == "create" or "stock" in vc.fields_changed:
                quantities[w.combos[v.sku]] = max(0, v.stock - reserved.get(v.sku, 0))
                stock_skus[w.combos[v.sku]] = (v.sku, v.stock)
        if not d.variants and (change.kind == "create" or "stock" in change.fields_changed):
            quantities[0] = max(0, d.stock - reserved.get(d.sku, 0))
            stock_skus[0] = (d.sku, d.stock)
        if quantities:
            w.stock_ids.update(target.write_stock(pid, quantities))
            w.stock_done.update(dict(stock_skus.values()))
        if job.adopted:  # the OMS learns the stock of every unit the store already held
            held = _store_stocks(job.snapshot)
            for sku, qty in _stocks(d):
                if sku not in w.stock_done and sku in held:
                    w.stock_done[sku] = held[sku] if _keeps(d, sku) else qty
        if d.image and (change.kind == "create" or "image" in change.fields_changed):
            # only a product this run created surely has no image: for any other, the
            # adapter reads its images first, so a failed upload deletes only its own
            first = change.kind == "create"
            w.image = (target.upload_image(pid, d.image, first=first), d.image)
    except OmsflowError as exc:
        w.error = str(exc)
    return w


def _stocks(d: ProductDraft) -> list[tuple[str, int]]:
    return [(v.sku, v.stock) for v in d.variants] if d.variants else [(d.sku, d.stock)]


def _keeps(d: ProductDraft, sku: str) -> bool:
    """True when the draft gives no stock for ``sku`` (``keep_stock``)."""
    if not d.variants:
        return d.keep_stock
    return any(v.keep_stock for v in d.variants if v.sku == sku)


def _store_stocks(snap: ProductSnapshot | None) -> dict[str, int]:
    """SKU -> the store's quantity, for the units of a product found in the store."""
    if snap is None:
        return {}
    if snap.combinations:
        return {c.sku: c.stock for c in snap.combinations}
    return {snap.sku: snap.stock}


# --------------------------------------------------------------------------- binding


class _Names:
    """OMS rows for store names (category, brand, attribute group/value), bound per store."""

    def __init__(self, session: Session, store_id: int) -> None:
        self.session = session
        self.store_id = store_id
        self.bindings = SqlBindingRepository(session)

    def _row(self, model: Any, kind: str, external: int, name: str, **extra: Any) -> Any:
        internal = self.bindings.to_internal(self.store_id, kind, str(external))
        row = self.session.get(model, int(internal)) if internal else None
        if row is None:
            query = select(model).where(model.name == name)
            for k, v in extra.items():
                query = query.where(getattr(model, k) == v)
            row = self.session.scalars(query.limit(1)).first()
        if row is None:
            row = model(name=name, **extra)
            self.session.add(row)
            self.session.flush()
        self.bindings.bind(self.store_id, kind, str(external), str(row.id))
        return row

    def category(self, external: int, name: str) -> int:
        return int(self._row(CategoryRow, "category", external, name).id)

    def brand(self, external: int, name: str) -> int:
        return int(self._row(BrandRow, "brand", external, name).id)

    def value(self, group_ext: int, group: str, value_ext: int, value: str) -> int:
        g = self._row(AttributeGroupRow, "attribute_group", group_ext, group)
        return int(
            self._row(AttributeValueRow, "attribute_value", value_ext, value, group_id=g.id).id
        )


def _bind(
    session: Session,
    store_id: int,
    target: PrestaShopTarget,
    job: _Job,
    bundle: Any = None,
) -> None:
    d, w = job.draft, job.written
    if w.product_id is None:
        return
    sid = str(store_id)
    names = _Names(session, store_id)
    bindings = names.bindings
    now = utcnow()
    snap = job.snapshot
    parent = session.scalars(select(ProductRow).where(ProductRow.sku == d.sku)).one_or_none()
    if parent is None:
        parent = ProductRow(
            sku=d.sku, name=d.name if w.product_done or snap is None else snap.name
        )
        session.add(parent)
    entry = dict(_entry(parent, store_id) or {})
    if w.product_done:
        parent.name = d.name
        parent.price = d.price
        parent.retail_selling_price = d.retail_selling_price
        parent.selling_price = d.selling_price
        parent.active = d.active
        parent.parent_id = None
        if d.image is not None:
            parent.image_url = d.image
        if d.category is not None and job.category_id:
            parent.category_ids = [names.category(job.category_id, d.category)]
        if d.brand is not None and job.brand_id:
            parent.brand_id = names.brand(job.brand_id, d.brand)
        entry["price"] = str(d.price)
        entry["description"] = d.description
    elif snap is not None and parent.price is None:
        parent.price = snap.price
        parent.active = snap.active
    parent.deleted = False
    entry["product_id"] = w.product_id
    entry["combination_id"] = None
    if 0 in w.stock_ids:
        entry["stock_available_id"] = w.stock_ids[0]
    if w.image is not None:
        entry["image_id"], entry["image_source"] = w.image
    elif snap is not None and snap.image is not None:
        entry["image_source"] = snap.image
    parent.store_ids = {**(parent.store_ids or {}), sid: entry}
    session.flush()
    bindings.bind(store_id, "product", str(w.product_id), str(parent.id))
    if 0 in w.stock_ids and not d.variants:
        bindings.bind(store_id, "stock_available", str(w.stock_ids[0]), str(parent.id))

    # unchanged variants hold the draft's impact: re-derive their price from the parent's
    unchanged = {vc.sku: vc.kind == "unchanged" for vc in job.change.variants}
    for v in d.variants:
        cid = w.combos.get(v.sku)
        if cid is None:
            continue
        row = session.scalars(select(ProductRow).where(ProductRow.sku == v.sku)).one_or_none()
        # the catalogue sync's naming: "Parent - Group : Value, Group : Value"
        label = ", ".join(f"{g} : {value}" for g, value in v.attributes)
        if row is None:
            row = ProductRow(sku=v.sku, name=f"{d.name} - {label}"[:255])
            session.add(row)
        row.parent_id = parent.id
        row.deleted = False
        centry = dict(_entry(row, store_id) or {})
        settled = v.sku in w.combos_done or unchanged.get(v.sku, False)
        if settled or row.price is None:
            row.name = f"{parent.name} - {label}"[:255]
            row.price = Decimal(parent.price or 0) + v.price_impact
            row.active = parent.active
            row.brand_id = parent.brand_id
            row.category_ids = list(parent.category_ids or [])
            centry["price_impact"] = str(v.price_impact)
            value_ids = job.value_ids.get(v.sku, [])
            row.attribute_value_ids = sorted(
                names.value(target.groups[_k(g)], g, vid, val)
                for (g, val), vid in zip(v.attributes, value_ids, strict=False)
            )
        centry.update(product_id=w.product_id, combination_id=cid)
        if cid in w.stock_ids:
            centry["stock_available_id"] = w.stock_ids[cid]
        row.store_ids = {**(row.store_ids or {}), sid: centry}
        session.flush()
        bindings.bind(store_id, "combination", str(cid), str(row.id))
        if cid in w.stock_ids:
            bindings.bind(store_id, "stock_available", str(w.stock_ids[cid]), str(row.id))
    for sku, qty in sorted(w.stock_done.items()):
        inventory.set_on_hand(session, sku, qty, at=now, push=False)
    if bundle is not None and w.stock_done:
        # stock below what orders hold shorts the newest; stock above serves waiting ones
        from engine.runtime import service

        moved = service.settle_stock(session, bundle, skus=w.stock_done, at=now)
        job.shorted = tuple(moved.references[o] for o in moved.shorted)
        job.promoted = tuple(moved.references[o] for o in moved.promoted)


def _k(text: str) -> str:
    return text.strip().casefold()


# --------------------------------------------------------------------------- the run


def _stats(target: PrestaShopTarget) -> dict[str, int]:
    return target.adapter.requests_by_method()


def plan_against(
    session_factory: sessionmaker[Session],
    store_id: int,
    target: PrestaShopTarget | None,
    drafts: Sequence[ProductDraft],
) -> tuple[list[_Job], dict[str, int]]:
    """The plan: DB snapshots, then (only for would-be creates) a batched store lookup."""
    with session_factory() as session:
        existing, reserved = db_snapshots(session, store_id, drafts)
    changes = plan_changes(drafts, existing)
    jobs = [_Job(d, c, existing.get(d.sku)) for d, c in zip(drafts, changes, strict=True)]
    creates = [j.draft for j in jobs if j.change.kind == "create"]
    if creates and target is not None:
        found = target.find_products(creates)
        for job in jobs:
            hit = found.get(job.draft.sku)
            if hit is not None and job.change.kind == "create":
                job.snapshot = hit.snapshot
                job.stock_ids = hit.stock_ids
                job.adopted = True
                job.change = plan_changes([job.draft], {job.draft.sku: hit.snapshot})[0]
                if job.change.kind == "unchanged":  # bind it: the store already matches
                    job.change = replace(job.change, kind="update", fields_changed=("adopted",))
    return jobs, reserved


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``apply_drafts``. The products whose store writes had started were
    finished and bound first (nothing the store accepted is left unbound); ``report`` holds
    their outcomes. A re-run of the same drafts finishes the rest: it is idempotent by SKU
    (bound products plan unchanged, products the store holds but the OMS has not bound are
    found by SKU and adopted)."""

    def __init__(self, report: ApplyReport, total: int) -> None:
        self.report = report
        self.total = total
        super().__init__(self.summary())

    @property
    def done(self) -> int:
        """Products whose store state now matches their draft (created, updated, unchanged)."""
        c = self.report.counts()
        return c["created"] + c["updated"] + c["unchanged"]

    def summary(self, again: str = "run the same import again") -> str:
        c = self.report.counts()
        failed = f", {c['failed']} failed" if c["failed"] else ""
        return (
            f"interrupted: {self.done} of {self.total} products written to the store "
            f"(created {c['created']}, updated {c['updated']}, unchanged {c['unchanged']}"
            f"{failed}); {again} to finish it — it is idempotent by SKU"
        )


def apply_drafts(
    session_factory: sessionmaker[Session],
    store_id: int,
    target: PrestaShopTarget,
    drafts: Sequence[ProductDraft],
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    chunk: int = CHUNK,
    bundle: Any = None,
) -> ApplyReport:
    """Create or update ``drafts`` in the store and bind them in the OMS (see module doc).

    Args:
        session_factory: the OMS database.
        store_id: ``StoreRow.id`` of the store ``target`` writes to.
        target: the store writer.
        drafts: validated drafts (prices already resolved by the channel's price mapping).
        dry_run: plan only (reads: the DB, and the store by SKU for would-be creates).
        progress: called after each product.
        chunk: products written concurrently before one binding transaction.
        bundle: the lifecycle (``specs.Bundle``). Given, stock follows the stock rules: a
            stock below what orders past New hold fails that product before any write, a
            stock below what is reserved moves the newest orders to Partial, a stock above
            serves waiting orders (``service.settle_stock``, in the binding transaction).

    Returns:
        The report; a product whose write failed is ``failed`` with the store's message.

    Raises:
        Interrupted: Ctrl-C; what was written is bound, the exception holds the report.
    """
    started = time.monotonic()
    before = _stats(target)
    outcomes: dict[str, Outcome] = {}
    jobs: list[_Job] = []

    def report() -> ApplyReport:
        after = _stats(target)
        return ApplyReport(
            outcomes=[outcomes[j.draft.sku] for j in jobs if j.draft.sku in outcomes],
            dry_run=dry_run,
            requests={m: n - before.get(m, 0) for m, n in after.items() if n - before.get(m, 0)},
            created_names=dict(target.created),
            seconds=time.monotonic() - started,
        )

    try:
        jobs, reserved = plan_against(session_factory, store_id, target, drafts)
        if bundle is not None:
            _refuse_below_held(session_factory, bundle, jobs, outcomes)
        total = len(jobs)
        done = len(outcomes)
        pending: list[_Job] = []
        for job in jobs:
            if job.draft.sku in outcomes:
                continue
            if job.change.kind == "unchanged" or dry_run:
                outcomes[job.draft.sku] = Outcome(
                    job.draft.sku,
                    job.change.kind,
                    job.change.fields_changed,
                    job.change.existing_id,
                )
                done += 1
                if progress:
                    progress(done, total, job.draft.sku)
            else:
                pending.append(job)
        _ensure_names(target, pending, outcomes)
        ready = [j for j in pending if j.draft.sku not in outcomes]
        done = len(outcomes)
        _write_all(
            session_factory,
            store_id,
            target,
            ready,
            reserved,
            outcomes,
            chunk=chunk,
            bundle=bundle,
            progress=progress,
            done=done,
            total=total,
        )
    except KeyboardInterrupt:
        raise Interrupted(report(), len(drafts)) from None
    return report()


def _refuse_below_held(
    session_factory: sessionmaker[Session],
    bundle: Any,
    jobs: Sequence[_Job],
    outcomes: dict[str, Outcome],
) -> None:
    """Fail (before any write) the products whose new stock is below what orders past New
    hold (``service.require_unheld``): those orders cannot be moved back to Partial."""
    from engine.runtime import service

    with session_factory() as session:
        for job in jobs:
            stock = _planned_stock(job)
            if not stock:
                continue
            now = {sku: level.on_hand for sku, level in inventory.levels(session, stock).items()}
            try:
                what = f"stock of {job.draft.sku}"
                service.require_unheld(session, bundle, stock, what, before=now)
            except service.StockHeld as exc:
                c = job.change
                outcomes[job.draft.sku] = Outcome(
                    job.draft.sku, "failed", c.fields_changed, c.existing_id, str(exc), c.kind
                )


def _planned_stock(job: _Job) -> dict[str, int]:
    """SKU -> the stock this job will write (as ``_write`` decides)."""
    d, c = job.draft, job.change
    if c.kind == "unchanged":
        return {}
    if not d.variants:
        return {d.sku: d.stock} if c.kind == "create" or "stock" in c.fields_changed else {}
    return {
        v.sku: v.stock
        for v, vc in zip(d.variants, c.variants, strict=True)
        if vc.kind == "create" or "stock" in vc.fields_changed
    }


def _write_all(
    session_factory: sessionmaker[Session],
    store_id: int,
    target: PrestaShopTarget,
    ready: Sequence[_Job],
    reserved: Mapping[str, int],
    outcomes: dict[str, Outcome],
    *,
    chunk: int,
    bundle: Any,
    progress: Progress | None,
    done: int,
    total: int,
) -> None:
    """Write ``ready`` to the store ``chunk`` products at a time on the client's threads,
    binding each chunk in one transaction. On Ctrl-C the products already started are
    finished (nothing queued is started), bound, and the interrupt re-raised."""
    workers = max(1, int(target.adapter.concurrency))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="listing")
    batch: Sequence[_Job] = ()
    futures: dict[Future[_Written], _Job] = {}
    bound = True
    try:
        for i in range(0, len(ready), max(1, chunk)):
            batch = ready[i : i + max(1, chunk)]
            bound = False
            futures = {pool.submit(_write, target, j, reserved): j for j in batch}
            for future in as_completed(futures):
                future.result()
                done += 1
                if progress:
                    progress(done, total, futures[future].draft.sku)
            _bind_batch(session_factory, store_id, target, batch, bundle)
            _record(batch, outcomes)
            bound = True
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)  # running products finish
        if not bound:
            started = [j for f, j in futures.items() if f.done() and not f.cancelled()]
            _bind_batch(session_factory, store_id, target, started, bundle)
            _record(started, outcomes)
        raise
    finally:
        pool.shutdown(wait=False)


def _bind_batch(
    session_factory: sessionmaker[Session],
    store_id: int,
    target: PrestaShopTarget,
    batch: Sequence[_Job],
    bundle: Any,
) -> None:
    """Bind what the store accepted for ``batch`` in one transaction (again if an order
    changed under the stock rules' events, or PostgreSQL broke a deadlock by rolling it
    back: the binding is idempotent)."""
    from engine.runtime.service import rolled_back_whole

    for attempt in range(1, 4):
        try:
            with session_factory() as session, session.begin():
                for job in batch:
                    _bind(session, store_id, target, job, bundle)
            return
        except (StaleOrder, StaleDataError):
            if attempt == 3:
                raise
        except DBAPIError as exc:
            if not rolled_back_whole(exc) or attempt == 3:
                raise


def _record(batch: Sequence[_Job], outcomes: dict[str, Outcome]) -> None:
    for job in batch:
        w, c = job.written, job.change
        if w.error is None:
            outcomes[job.draft.sku] = Outcome(
                job.draft.sku,
                c.kind,
                c.fields_changed,
                w.product_id,
                shorted=job.shorted,
                promoted=job.promoted,
            )
        else:
            outcomes[job.draft.sku] = Outcome(
                job.draft.sku,
                "failed",
                c.fields_changed,
                w.product_id,
                w.error,
                c.kind,
                shorted=job.shorted,
                promoted=job.promoted,
            )


def _ensure_names(
    target: PrestaShopTarget, jobs: Sequence[_Job], outcomes: dict[str, Outcome]
) -> None:
    """Resolve (creating when missing) every name the jobs need; a failure fails the job."""
    for job in jobs:
        d = job.draft
        try:
            if d.category is not None:
                job.category_id = target.ensure_category(d.category)
            if d.brand is not None:
                job.brand_id = target.ensure_brand(d.brand)
            for v in d.variants:
                job.value_ids[v.sku] = [
                    target.ensure_attribute_value(g, val)[1] for g, val in v.attributes
                ]
        except OmsflowError as exc:
            c = job.change
            outcomes[d.sku] = Outcome(d.sku, "failed", c.fields_changed, None, str(exc), c.kind)


__all__ = ["ApplyReport", "Interrupted", "Outcome", "apply_drafts", "db_snapshots", "plan_against"]
