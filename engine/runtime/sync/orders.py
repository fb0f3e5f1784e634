"""Order sync, store -> OMS: the new-orders stream and the status-changes stream.

*New orders*: orders with ``id`` above the ``orders.new`` cursor whose current state is one
of the channel's imported statuses (on the first run: from the first order placed inside
the backfill window, ``--since`` / ``schedules.backfill``). *Status changes*: orders with
``date_upd`` after the ``orders.changed`` cursor, same states.

First sight of an order creates it with its lines (``service.create_orders_in``) through
the import trigger its store status names (``status_map.inbound[status].import``): ``import``
reserves stock and enters New or Partial; orders first seen later in their life enter
through ``import_processing`` / ``import_shipped`` / ...). A known order whose store status
changed fires ``inbound[status].change`` (if any) through the one rule with the idempotency
key ``ps:<store id>:<order id>:<state id>:<date_upd>``; a refusal is recorded and flags the
order, which keeps its state. A status that merely echoes the OMS state (the outbound map
says the order's state shows as that status) fires nothing.

Each page (orders, events, cursor) is one transaction, so a killed run resumes cleanly and
a re-run creates no duplicate and applies no transition twice.

Dates: the store writes them in the shop's clock (``PS_TIMEZONE``). An order's dates are
converted to UTC before mapping (``ordered_at`` is its ``date_add`` read in the shop's zone),
the backfill window is sent in shop time, and the ``date_upd`` cursor is a shop-local text
taken from the store's own dates and clock (``channels.clock.next_cursor``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from engine.core import build_record, map_record, source_fields
from engine.core.records import AddressRecord, OrderLineRecord, OrderRecord, as_source
from engine.errors import ConfigError
from engine.runtime import service
from engine.runtime.channels.clock import ShopClock, next_cursor
from engine.runtime.channels.port import ChannelOrder, ChannelPort
from engine.runtime.db.tables import (
    LINE_FACTS,
    BindingRow,
    InboundEventRow,
    OrderRow,
    ProductRow,
)
from engine.runtime.readahead import read_ahead

from .common import (
    StoreTarget,
    SyncReport,
    ctrl_c_after_block,
    fewer_collections,
    load_store,
    parse_ps_date,
    ps_date,
    read_cursor,
    recorded_run,
    refresh_shop_clock,
    save_run_counts,
    write_cursor,
)
from .progress import NullProgress, Progress

NEW_CURSOR = "orders.new"
CHANGED_CURSOR = "orders.changed"
FLOOR_CURSOR = "orders.floor"
OVERLAP = timedelta(hours=1)


def parse_since(text: str) -> int:
    """``90d`` / ``12w`` / ``90`` -> days.

    Raises:
        ConfigError: not a whole number of days or weeks.
    """
    raw = text.strip().lower()
    factor = 1
    if raw.endswith("d"):
        raw = raw[:-1]
    elif raw.endswith("w"):
        raw, factor = raw[:-1], 7
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"--since {text!r}: expected days like 90d (or weeks like 12w)")
    return int(raw) * factor


def event_key(store_id: int, order_id: int, state_id: int, date_upd: str | None) -> str:
    return f"ps:{store_id}:{order_id}:{state_id}:{date_upd or ''}"


def _chunks(items: Iterable[ChannelOrder], size: int) -> Iterator[list[ChannelOrder]]:
    page: list[ChannelOrder] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


class OrderSync:
    """Applies pages of store orders (one transaction each)."""

    def __init__(
        self,
        bundle: Any,
        store: StoreTarget,
        state_names: Mapping[int, str],
        floor: str,
        *,
        adopt_stock: bool = False,
        clock: ShopClock | None = None,
    ) -> None:
        self.bundle = bundle
        self.clock = clock or ShopClock()
        self.channel = bundle.channel
        self.store = store
        self.names = dict(state_names)
        self.floor = floor
        self.order_in = self.channel.mappings["order_in"]
        self.order_fields = source_fields(self.order_in)
        """What ``order_in`` reads of an order: only those of its dates are converted."""
        # The first backfill adopts the store's open orders: the store's quantities (taken as
        # on hand by the first catalogue sync) already exclude their units, so an import that
        # reserves them puts them back on hand (core.stock.book): the available quantity stays
        # what the store shows, instead of counting those units twice.
        self.adopt_stock = adopt_stock
        self.related: dict[str, dict[int, Any]] = {}
        """Customers, addresses, countries, ... read this run, by resource and id."""

    def _mapped(self, order: ChannelOrder) -> dict[str, Any]:
        """``order_in``'s output for ``order``, its dates (those it reads) in UTC."""
        source = self.clock.utc_fields(order.to_mapping(), self.order_fields)
        return map_record(self.order_in, source)

    def _new_order(
        self,
        order: ChannelOrder,
        name: str,
        mapped: Mapping[str, Any],
        units: Mapping[tuple[int, int], str] | None = None,
    ) -> service.NewOrder:
        """The import of a store order: its ``order_in`` mapping's output as the typed OMS
        order (``core.build_record``), nothing read around it. Lines name their unit by
        the store ids the mapping gives (``product_id``, ``combination_id``)."""
        record: OrderRecord = build_record("order", mapped)
        return new_order(record, self.store.id, order.id, name, order.current_state, units)

    def with_related(self, adapter: ChannelPort, orders: list[ChannelOrder]) -> list[ChannelOrder]:
        """The page's orders with their customer, addresses, carrier and currency, read in
        bulk around the page (``ChannelPort.read_related``; cached for the run)."""
        return adapter.read_related(orders, self.related)

    def bind_new_units(
        self,
        sessions: sessionmaker[Session],
        adapter: ChannelPort,
        orders: Sequence[ChannelOrder],
        report: SyncReport,
    ) -> None:
        """Before a page is applied: bind the store products its new orders name that no
        catalogue sync has bound yet (created since the last one), so their lines get the
        unit's own SKU and stock, not a fallback name. The store's quantity read now
        already lacks the units of the page's orders that will reserve stock, so those
        are counted back on hand (as the first backfill's adopted orders are)."""
        from .catalog import bind_products

        ids = [str(o.id) for o in orders]
        with sessions() as session:
            known = set(
                session.scalars(
                    select(OrderRow.external_id).where(
                        OrderRow.store_id == self.store.id, OrderRow.external_id.in_(ids)
                    )
                )
            )
            fresh = [o for o in orders if str(o.id) not in known]
            wanted = _unit_ids(fresh)
            bound = bound_units(session, self.store.id, wanted)
        missing = {pid for pid, cid in wanted if (pid, cid) not in bound}
        if not missing:
            return
        extra: dict[tuple[int, int], int] = {}
        if not self.adopt_stock:  # (the first backfill adopts its orders' units itself)
            for order in fresh:
                if self._reserves(order):
                    for row in order.rows:
                        unit = (row.product_id, row.product_attribute_id)
                        if row.product_id in missing and row.product_quantity > 0:
                            extra[unit] = extra.get(unit, 0) + row.product_quantity
        try:
            bind_products(sessions, self.bundle, self.store, adapter, missing, report, extra)
        except IntegrityError:
            report.add("units_bound_concurrently")  # a catalogue run bound them meanwhile

    def _reserves(self, order: ChannelOrder) -> bool:
        """Whether importing this order (now) reserves stock: an imported status whose
        import trigger's transitions reserve, inside the backfill window."""
        name = self.names.get(order.current_state)
        rule = self.channel.status_map.inbound.get(name) if name else None
        if rule is None or not rule.import_trigger:
            return False
        if order.date_add is not None and order.date_add < self.floor:
            return False
        machine = self.bundle.machine
        return any(
            e.kind == "reserve_stock"
            for t in machine.transitions
            if t.trigger == rule.import_trigger and machine.initial in t.sources
            for e in t.effects
        )

    def apply_page(
        self, session: Session, orders: Sequence[ChannelOrder], report: SyncReport, *, at: datetime
    ) -> None:
        ids = [str(o.id) for o in orders]
        known = {
            row.external_id: row
            for row in session.scalars(
                select(OrderRow)
                .where(OrderRow.store_id == self.store.id, OrderRow.external_id.in_(ids))
                .options(selectinload(OrderRow.lines))
            )
        }
        keys = {o.id: event_key(self.store.id, o.id, o.current_state, o.date_upd) for o in orders}
        seen = set(
            session.scalars(
                select(InboundEventRow.idempotency_key).where(
                    InboundEventRow.idempotency_key.in_(list(keys.values()))
                )
            )
        )
        inbound = self.channel.status_map.inbound
        units = bound_units(
            session, self.store.id, _unit_ids(o for o in orders if str(o.id) not in known)
        )
        pending: list[service.OrderImport] = []
        for order in orders:
            report.add("orders_seen")
            name = self.names.get(order.current_state)
            rule = inbound.get(name) if name else None
            row = known.get(str(order.id))
            key = keys[order.id]
            if row is None:
                if name is None or rule is None or not rule.import_trigger:
                    report.add("skipped_status_not_imported")
                    continue
                if order.date_add is not None and order.date_add < self.floor:
                    report.add("skipped_before_window")
                    continue
                if key in seen:
                    report.add("duplicates")
                    continue
                mapped = self._mapped(order)
                new = self._new_order(order, name, mapped, units)
                if not new.lines:
                    report.add("skipped_no_lines")
                    continue
                # written in bulk with the page's other new orders (flushed before any
                # event on a known order, so the order of the page is kept)
                pending.append(
                    service.OrderImport(
                        new, rule.import_trigger, key, adopt_stock=self.adopt_stock
                    )
                )
                seen.add(key)
                continue
            self._refresh_parties(row, order, report)
            upd = parse_ps_date(order.date_upd, self.clock)
            if row.channel_state_id == order.current_state:
                if upd is not None and row.channel_updated_at != upd:
                    row.channel_updated_at = upd
                    report.add("orders_touched")
                else:
                    report.add("orders_unchanged")
                continue
            if name is None:
                report.add("skipped_status_not_imported")
                continue
            trigger = rule.change_trigger if rule is not None else None
            if key in seen:
                report.add("duplicates")
            elif trigger and not self._echoes(row.state, name, order.current_state):
                self._create(session, pending, report, at=at)
                result = service.apply_in_session(
                    session,
                    self.bundle,
                    row,
                    trigger=trigger,
                    source="channel",
                    idempotency_key=key,
                    at=at,
                    payload={
                        "store_state": name,
                        "state_id": order.current_state,
                        "date_upd": order.date_upd,
                    },
                )
                seen.add(key)
                report.add(f"changes_{result.outcome}")
            else:
                report.add("changes_without_trigger")
            row.channel_state = name
            row.channel_state_id = order.current_state
            row.channel_updated_at = upd
            session.flush()
        self._create(session, pending, report, at=at)

    def _refresh_parties(self, row: OrderRow, order: ChannelOrder, report: SyncReport) -> None:
        """A known order seen again (its ``date_upd`` moved): take the store's customer,
        addresses and carrier as they are now (an address edited in the back office)."""
        if not order.related:
            return
        record: OrderRecord = build_record("order", self._mapped(order))
        fresh = new_order(record, self.store.id, order.id, "", order.current_state)
        now = {
            "customer_name": fresh.customer_name,
            "customer_email": fresh.customer_email,
            "customer_phone": fresh.customer_phone,
            "shipping_address": dict(fresh.shipping_address),
            "invoice_address": dict(fresh.invoice_address),
            "ship_country": service.country_of(fresh.shipping_address),
            "carrier": fresh.carrier,
        }
        changed = {k: v for k, v in now.items() if getattr(row, k) != v}
        if not changed:
            return
        for name, value in changed.items():
            setattr(row, name, value)
        report.add("orders_parties_updated")

    def _echoes(self, oms_state: str, name: str, store_state_id: int) -> bool:
        """True when the store's state is what the OMS state shows as (the outbound map; by
        store id too, as the map may name a state by its key and the inbound rule by name)."""
        shown = self.channel.status_map.outbound.get(oms_state)
        if not shown:
            return False
        return shown == name or self.store.state_ids.get(shown) == store_state_id

    def _create(
        self,
        session: Session,
        pending: list[service.OrderImport],
        report: SyncReport,
        *,
        at: datetime,
    ) -> None:
        """Import the new orders collected so far (``service.create_orders_in``: each order
        through the one rule, the page's rows written in bulk) and empty ``pending``."""
        if not pending:
            return
        results = service.create_orders_in(session, self.bundle, pending, source="channel", at=at)
        pending.clear()
        for result in results:
            report.add("orders_created" if result.applied else f"orders_{result.outcome}")
            if result.state:
                report.add(f"created_{result.state}" if result.applied else "import_refused")


# --------------------------------------------------------------------------- line -> unit


def _unit_ids(orders: Iterable[ChannelOrder]) -> set[tuple[int, int]]:
    """``(product_id, combination_id)`` of every row of ``orders`` (0: no combination)."""
    return {
        (row.product_id, row.product_attribute_id)
        for order in orders
        for row in order.rows
        if row.product_id > 0
    }


def bound_units(
    session: Session, store_id: int, ids: Collection[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    """The SKU of each store unit ``(product_id, combination_id)`` bound in this store
    (bindings ``product`` / ``combination`` -> the OMS row). Unbound units are absent."""
    if not ids:
        return {}
    wanted = {
        "product": sorted({str(p) for p, c in ids if not c}),
        "combination": sorted({str(c) for _p, c in ids if c}),
    }
    found: dict[tuple[int, int], str] = {}
    for kind, external in wanted.items():
        for chunk in (external[i : i + 500] for i in range(0, len(external), 500)):
            rows = session.execute(
                select(BindingRow.external_id, ProductRow.sku, ProductRow.store_ids)
                .join(ProductRow, ProductRow.id == cast(BindingRow.internal_id, Integer))
                .where(
                    BindingRow.store_id == store_id,
                    BindingRow.kind == kind,
                    BindingRow.external_id.in_(chunk),
                )
            )
            for ext, sku, store_ids in rows:
                entry = (store_ids or {}).get(str(store_id))
                pid = entry.get("product_id") if isinstance(entry, dict) else None
                if kind == "product":
                    found[(int(ext), 0)] = sku
                elif pid is not None:
                    found[(int(pid), int(ext))] = sku
    return found


def unit_sku(
    store_id: int,
    product_id: int | None,
    combination_id: int | None,
    units: Mapping[tuple[int, int], str],
) -> str:
    """The SKU of an order line: the unit bound to the line's store ids (product_id,
    combination_id), never its reference (one reference may name a product and all its
    combinations, or two different products). An unbound unit gets the fallback name
    ``ps{store}-{product_id}[-{combination_id}]`` the catalogue's SKU rule ends with."""
    pid, cid = int(product_id or 0), int(combination_id or 0)
    sku = units.get((pid, cid))
    if sku:
        return sku
    return f"ps{store_id}-{pid}" + (f"-{cid}" if cid else "")


def _address(record: AddressRecord | None) -> dict[str, Any]:
    if record is None:
        return {}
    values = as_source(record)
    return {k: v for k, v in values.items() if v not in (None, "", {})}


def new_order(
    record: OrderRecord,
    store_id: int,
    order_id: int,
    status_name: str,
    status_id: int,
    units: Mapping[tuple[int, int], str] | None = None,
) -> service.NewOrder:
    """The ``service.NewOrder`` a typed OMS order imports as (lines of 0 units skipped)."""
    lines = [
        service.NewLine(
            sku=unit_sku(store_id, line.product_id, line.combination_id, units or {}),
            quantity=int(line.quantity or 0),
            unit_price=_money(line.unit_price),
            name=line.name or None,
            external_id=str(line.external_id) if line.external_id else None,
            extra={**dict(line.extra), **line_facts(line)},
        )
        for line in record.lines
        if (line.quantity or 0) > 0
    ]
    customer = record.customer
    ship = record.shipping_address
    phone = (customer.phone if customer else None) or (
        (ship.phone or ship.phone_mobile) if ship else None
    )
    name = (customer.full_name if customer else None) or (ship.full_name if ship else None)
    return service.NewOrder(
        reference=record.reference or f"#{order_id}",
        ordered_at=record.ordered_at or datetime.now(UTC),
        lines=lines,
        store_id=store_id,
        external_id=str(order_id),
        total_paid=_money(record.total_paid),
        total_products=_money(record.total_products),
        total_shipping=_money(record.total_shipping),
        payment=record.payment_method or None,
        customer_name=name,
        customer_email=customer.email if customer else None,
        customer_phone=phone or None,
        shipping_address=_address(record.shipping_address),
        invoice_address=_address(record.invoice_address),
        carrier=record.carrier or None,
        currency=(record.currency or "").upper()[:3] or None,
        total_discounts=_money(record.total_discounts),
        total_wrapping=_money(record.total_wrapping),
        total_paid_tax_excl=_money(record.total_paid_tax_excl),
        channel_state=status_name,
        channel_state_id=status_id,
        channel_updated_at=record.updated_at,
        extra=dict(record.extra),
    )


def line_facts(line: OrderLineRecord) -> dict[str, str]:
    """The line's ``LINE_FACTS`` that are set, JSON-safe (decimals as text)."""
    out: dict[str, str] = {}
    for name in LINE_FACTS:
        value = getattr(line, name)
        if value is not None and value != "":
            out[name] = f"{value:f}" if isinstance(value, Decimal) else str(value)
    return out


_CENT = Decimal("0.01")


def _money(value: Any) -> Decimal | None:
    if value is None:
        return None
    if type(value) is Decimal:  # Decimal(str(d)) is d: its text reads back exactly
        return value.quantize(_CENT)
    return Decimal(str(value)).quantize(_CENT)


def _state_names(store: StoreTarget, channel: Any, adapter: ChannelPort) -> dict[int, str]:
    """Store state id -> the status map's ``inbound`` name for the imported statuses (the
    spec may write an imported status as its ``PS_OS_*`` key and its inbound rule by name,
    or the other way round)."""
    status_map = channel.status_map
    wanted = list(status_map.imported)
    ids = {n: store.state_ids[n] for n in wanted if n in store.state_ids}
    missing = [n for n in wanted if n not in ids]
    if missing:
        found, _gone = adapter.resolve_states(missing)
        ids.update(found)
    out: dict[int, str] = {}
    for name, state_id in ids.items():
        out.setdefault(int(state_id), status_map.inbound_key(name) or name)
    return out


STREAMS = ("new", "changes")


def sync_orders(
    sessions: sessionmaker[Session],
    bundle: Any,
    store_name: str | None = None,
    *,
    since_days: int | None = None,
    progress: Progress | None = None,
    adapter: ChannelPort | None = None,
    now: datetime | None = None,
    streams: Collection[str] = STREAMS,
) -> SyncReport:
    """Run the order streams for one store (see the module docstring).

    Args:
        since_days: the backfill window for the first run (default
            ``schedules.backfill_days``); given on a later run, the window is re-scanned.
        streams: ``"new"`` (new orders by id) and/or ``"changes"`` (status changes by
            ``date_upd``); both by default. The daemon runs each on its own schedule.

    Returns:
        the run's ``SyncReport`` (also stored as a ``SyncRunRow``).
    """
    progress = progress or NullProgress()
    store = load_store(sessions, store_name)
    now = now or datetime.now(UTC)
    with (
        fewer_collections(),
        recorded_run(sessions, store, "orders", bundle.channel, adapter) as (report, adapter),
    ):
        shop = refresh_shop_clock(sessions, store, adapter, report)
        clock = shop.clock
        names = _state_names(store, bundle.channel, adapter)
        if not names:
            raise ConfigError(
                f"store {store.name!r}: none of the imported statuses was resolved "
                "(fix: omsflow store connect again)"
            )
        states = sorted(names)
        days = since_days or bundle.channel.schedules.backfill_days
        window = ps_date(now - timedelta(days=days), clock)
        with sessions() as session:
            new_cursor = read_cursor(session, store.id, NEW_CURSOR)
            changed_cursor = read_cursor(session, store.id, CHANGED_CURSOR)
            floor = read_cursor(session, store.id, FLOOR_CURSOR)
        if floor is None or (since_days is not None and window < floor):
            floor = window
        # The first backfill is over once a run completed (it sets the status-changes cursor):
        # a run killed half-way still adopts the rest of the open orders when re-run.
        sync = OrderSync(
            bundle, store, names, floor, adopt_stock=changed_cursor is None, clock=clock
        )
        max_seen = ""

        # -- new orders (keyset on id; the cursor advances with each page)
        start_id: int | None = int(new_cursor) if new_cursor else None
        if "new" not in streams:
            start_id = None
        elif start_id is None or since_days is not None:
            first = adapter.first_order_id_since(window)
            if first is not None:
                start_id = first - 1 if start_id is None else min(start_id, first - 1)
        report.mode = "backfill" if new_cursor is None else "incremental"
        if start_id is not None:
            progress.start("orders (new)")
            # the page's customers, addresses, ... are read by the read-ahead thread too
            pages = _chunks(adapter.orders_since_id(start_id, states=states), adapter.page_size)
            for page in read_ahead(sync.with_related(adapter, p) for p in pages):
                max_seen = max([max_seen, *(o.date_upd or "" for o in page)])
                sync.bind_new_units(sessions, adapter, page, report)
                with ctrl_c_after_block():  # a committed page is always counted
                    with sessions.begin() as session:
                        sync.apply_page(session, page, report, at=now)
                        write_cursor(session, store.id, NEW_CURSOR, str(max(o.id for o in page)))
                        write_cursor(session, store.id, FLOOR_CURSOR, floor)
                        save_run_counts(session, report.run_id, report.counts)
                    progress.advance("orders (new)", len(page))
            progress.finish("orders (new)")

        # -- status changes (date_upd; the cursor advances when the stream is done, and is
        # first set after the first run, which imported every order as it was then)
        if changed_cursor is not None and "changes" not in streams:
            return report
        if changed_cursor is not None:
            progress.start("orders (status changes)")
            for page in _chunks(
                adapter.orders_changed_since(changed_cursor, states=states), adapter.page_size
            ):
                max_seen = max([max_seen, *(o.date_upd or "" for o in page)])
                page = sync.with_related(adapter, page)
                sync.bind_new_units(sessions, adapter, page, report)
                with ctrl_c_after_block():
                    with sessions.begin() as session:
                        sync.apply_page(session, page, report, at=now)
                        save_run_counts(session, report.run_id, report.counts)
                    progress.advance("orders (status changes)", len(page))
            progress.finish("orders (status changes)")
        # the store's clock at the start of the run (its Date header; ``now`` only for a
        # store that sends none) and the newest date_upd seen, less the overlap
        nxt = next_cursor(
            clock,
            started=shop.started_or(now),
            max_seen=max_seen,
            previous=changed_cursor,
            overlap=OVERLAP,
        )
        with sessions.begin() as session:
            write_cursor(session, store.id, CHANGED_CURSOR, nxt)
            write_cursor(session, store.id, FLOOR_CURSOR, floor)
    return report
