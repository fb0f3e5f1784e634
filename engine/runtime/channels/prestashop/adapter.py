"""PrestaShopAdapter: the operations an OMS needs from a PrestaShop store, in typed records.

It is the only code that knows the webservice's resources and write rules: state changes
through POST order_histories (not idempotent: current state checked first, never posted twice),
read-modify-write PUTs of FULL objects with read-only fields stripped (stock, price, tracking,
active), catalogue reads in ``display=full`` batches (products, then their combinations and
stock rows by product-id range: a few requests per page, not per product).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import re
import threading
import unicodedata
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from xml.etree.ElementTree import Element

from engine.errors import (
    ChannelAuthFailed,
    ChannelError,
    ChannelNotFound,
    ChannelPermissionMissing,
    ChannelProtocolError,
    ChannelRejected,
    ChannelUnavailable,
)
from engine.runtime.channels.port import (
    ChannelOrder,
    ChannelPort,
    ClockRead,
    ListedCombination,
    ListedProduct,
    StockPush,
    checked_write,
)
from engine.runtime.channels.prestashop import xml as psxml
from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.prestashop.records import (
    CatalogItem,
    Category,
    Combination,
    Manufacturer,
    Order,
    OrderCarrier,
    OrderHistory,
    OrderState,
    Product,
    ProductOption,
    ProductOptionValue,
    StockAvailable,
    as_bool,
    as_decimal,
    as_int,
    as_str,
    assoc_items,
    language_value,
    with_fields,
)
from engine.runtime.channels.prestashop.shop import (
    BASE_KEYS,
    SHOP_KEYS,
    Language,
    ShopClock,
    ShopFacts,
    clock_for,
    pick_configuration,
)
from engine.runtime.channels.prestashop.xml import Association, Languages
from engine.runtime.readahead import read_ahead
from engine.spec.statuses import DEFAULT_STATE_KEYS, is_state_key, state_key_for

T = TypeVar("T")

# Fields a PUT must not send back (code 93), beyond those the store marks notFilterable.
READ_ONLY: Mapping[str, frozenset[str]] = {
    "products": frozenset(
        {
            "manufacturer_name",
            "quantity",
            "position_in_category",
            "id_default_image",
            "id_default_combination",
            "type",
        }
    ),
    "categories": frozenset({"level_depth", "nb_products_recursive"}),
    "manufacturers": frozenset({"link_rewrite"}),
    "combinations": frozenset(),
    "stock_availables": frozenset(),
    "order_carriers": frozenset(),
}
NODE = {
    "products": "product",
    "combinations": "combination",
    "categories": "category",
    "manufacturers": "manufacturer",
    "stock_availables": "stock_available",
    "order_carriers": "order_carrier",
    "order_histories": "order_history",
    "product_options": "product_option",
    "product_option_values": "product_option_value",
}
_FILTER_UNSAFE = frozenset("|[]")

log = logging.getLogger("omsflow.channels.prestashop")
_TRACKING_RE = re.compile(r"^[~:#,%&_=()\[\].? +\-@/a-zA-Z0-9]+$")


# Every writable field of a stock_available row, in the store's order: what a full-object
# PUT must carry (``stock_body``). ``location`` (1.7.5+) is ignored by older stores.
STOCK_FIELDS = (
    "id",
    "id_product",
    "id_product_attribute",
    "id_shop",
    "id_shop_group",
    "quantity",
    "depends_on_stock",
    "out_of_stock",
    "location",
)


def stock_body(row: StockAvailable) -> dict[str, Any]:
    """The JSON-safe full body of a stock row read in full, for ``put_stock`` later (the
    row's ``token``: what a binding keeps)."""
    return row.token


def _stock_value(name: str, value: Any) -> Any:
    if name == "location":
        return "" if value is None else str(value)
    return as_int(value)


def slug(text: str) -> str:
    """PrestaShop-style link_rewrite: ascii, lower case, dashes."""
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", norm.lower()).strip("-") or "item"


def _price(value: Decimal | float | int | str) -> str:
    return f"{Decimal(str(value)):.6f}"


class _PageReader:
    """Reads on up to ``workers`` threads, per stream in order: each stream runs at most
    ``workers`` reads ahead of what its consumer has taken (a bounded memory), and the
    threads serve the streams in the order reads were added (the caller interleaves them)."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omsflow-pages")
        self._ahead = workers
        self._jobs: dict[str, deque[Callable[[], Any]]] = defaultdict(deque)
        self._futures: dict[str, deque[Future[Any]]] = defaultdict(deque)

    def add(self, stream: str, job: Callable[[], Any]) -> None:
        self._jobs[stream].append(job)
        self._fill(stream)

    def _fill(self, stream: str) -> None:
        jobs, futures = self._jobs[stream], self._futures[stream]
        while jobs and len(futures) < self._ahead:
            futures.append(self._pool.submit(jobs.popleft()))

    def take(self, stream: str) -> Any:
        """The next result of ``stream`` in the order its reads were added (a read's error
        is raised here)."""
        self._fill(stream)
        future = self._futures[stream].popleft()
        self._fill(stream)
        return future.result()

    def __enter__(self) -> _PageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._jobs.clear()
        for futures in self._futures.values():
            for future in futures:
                future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _written(value: Any) -> Any:
    """A mapped value as a write sends it: decimals as PrestaShop prices, booleans 1/0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal | float):
        return _price(value)
    return value


def _changes(value: Any, name: str) -> dict[str, Any]:
    """The fields an outbound mapping gives (``{field: value}``), or one ``name`` value."""
    if isinstance(value, Mapping):
        return {str(k): _written(v) for k, v in value.items()}
    return {name: _written(Decimal(str(value)) if name == "price" else value)}


def stock_quantity(fields: Mapping[str, Any] | int) -> int:
    """The quantity a stock write sets (``stock_out`` must write ``quantity``)."""
    value = fields["quantity"] if isinstance(fields, Mapping) else fields
    return max(0, int(value if value is not None else 0))


@dataclass(frozen=True)
class ConfigRead:
    """One ``configurations`` read: the values PrestaShop uses for the default shop, the
    store's clock when it answered (its ``Date`` header, UTC) and its ``PSWS-Version``."""

    values: Mapping[str, str]
    server_time: datetime | None
    version: str


@dataclass(frozen=True)
class StateChange:
    """What ``set_order_state`` did: ``changed`` False means the store already showed it."""

    order_id: int
    state_id: int
    previous_state: int
    changed: bool
    history_id: int | None = None


class PrestaShopAdapter:
    """Typed operations over one store's ``PrestaShopClient``."""

    home_category_id = 2
    """PrestaShop's default "Home" category (1 is "Root")."""

    def __init__(
        self,
        client: PrestaShopClient,
        *,
        page_size: int = 500,
        language_id: int | None = None,
        write_language_ids: Sequence[int] = (1,),
        send_email: bool = False,
        facts: ShopFacts | None = None,
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.language_id = language_id
        self.write_language_ids = tuple(write_language_ids)
        self.send_email = send_email
        self._language_given = language_id is not None
        self._facts: ShopFacts | None = None
        self.facts = facts
        self._product_fields: frozenset[str] | None = None
        self._lock = threading.Lock()

    @property
    def facts(self) -> ShopFacts | None:
        """What the store told about itself (None: not read)."""
        return self._facts

    @facts.setter
    def facts(self, facts: ShopFacts | None) -> None:
        self._facts = facts
        if facts is not None and facts.language_ids:
            # write names in every language the store has; read them in its default one
            self.write_language_ids = facts.language_ids
            if not self._language_given:
                self.language_id = facts.language_ids[0]

    @classmethod
    def from_channel(
        cls,
        url: str,
        key: Any,
        channel: Any,
        *,
        facts: ShopFacts | Mapping[str, Any] | None = None,
        **client_kw: Any,
    ) -> PrestaShopAdapter:
        """Build client + adapter from a ``ChannelSpec``'s ``connection`` block; ``facts``
        (a ``ShopFacts`` or the JSON saved in ``StoreRow.facts``) give the store's
        languages (names are written in all of them), its clock and its version."""
        from engine.runtime.channels.ratelimit import RetryPolicy

        conn = getattr(channel, "connection", None)
        kw: dict[str, Any] = {}
        page_size = 500
        send_email = False
        if conn is not None:
            kw["timeout"] = getattr(conn, "timeout_seconds", 10.0)
            kw["connect_timeout"] = getattr(conn, "connect_timeout_seconds", 5.0)
            kw["max_concurrency"] = getattr(conn, "max_concurrency", 8)
            kw["verify"] = getattr(conn, "verify_tls", True)
            page_size = getattr(conn, "page_size", 500)
            send_email = getattr(conn, "send_email_on_status_change", False)
            retry = getattr(conn, "retry", None)
            if retry is not None:
                kw["retry"] = RetryPolicy(
                    attempts=retry.attempts,
                    backoff_seconds=retry.backoff_seconds,
                    max_backoff_seconds=retry.max_backoff_seconds,
                )
            rate = getattr(conn, "rate_limit", None)
            if rate is not None:
                kw["rate_limit"] = (rate.requests, rate.per_seconds)
        kw.update(client_kw)
        if facts is not None and not isinstance(facts, ShopFacts):
            facts = ShopFacts.from_json(facts)
        return cls(
            PrestaShopClient(url, key, **kw),
            page_size=page_size,
            send_email=send_email,
            facts=facts,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PrestaShopAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ================================================================== the shop itself

    @property
    def clock(self) -> ShopClock:
        """The shop's clock (UTC until facts are known)."""
        return self.facts.clock if self.facts is not None else ShopClock()

    def read_configuration(self, names: Iterable[str]) -> ConfigRead:
        """``GET configurations?filter[name]=[A|B|...]`` in one request: the values
        PrestaShop uses for the default shop (``shop.pick_configuration``), the store's
        ``Date`` header and its ``PSWS-Version``. Absent keys are absent from ``values``."""
        wanted = sorted({n.strip() for n in names if n and n.strip()})
        if "PS_SHOP_DEFAULT" not in wanted:
            wanted.append("PS_SHOP_DEFAULT")
        params = {
            "filter[name]": "[" + "|".join(wanted) + "]",
            "display": "[id,name,value,id_shop,id_shop_group]",
        }
        response = self.client.request("GET", "configurations", params=params)
        rows = psxml.document_items(
            self.client.xml(response, "GET configurations"), "configurations"
        )
        server_time: datetime | None = None
        date = response.headers.get("date")
        if date:
            try:
                server_time = email.utils.parsedate_to_datetime(date).astimezone(UTC)
            except (TypeError, ValueError):
                server_time = None
        return ConfigRead(
            values=pick_configuration(rows),
            server_time=server_time,
            version=response.headers.get("psws-version", ""),
        )

    def languages(self) -> list[Language]:
        """The store's languages (active or not), by id."""
        items = self.client.iter_all(
            "languages", display="[id,iso_code,active]", page_size=self.page_size
        )
        langs = [
            Language(as_int(d.get("id")), as_str(d.get("iso_code")), as_bool(d.get("active")))
            for d in items
        ]
        return sorted(langs, key=lambda lang: lang.id)

    def shop_facts(
        self, state_keys: Iterable[str] = (), *, version: str = ""
    ) -> tuple[ShopFacts, list[str]]:
        """Read what the store tells about itself (two requests: ``configurations``,
        ``languages``) and the warnings worth showing (an unknown ``PS_TIMEZONE``). The
        state keys read are PrestaShop's defaults plus ``state_keys``."""
        keys = {*DEFAULT_STATE_KEYS, *(k for k in state_keys if is_state_key(k))}
        conf = self.read_configuration([*BASE_KEYS, *sorted(keys)])
        values = conf.values
        warnings: list[str] = []
        clock, warning = clock_for(values.get("PS_TIMEZONE"))
        if warning:
            warnings.append(warning)
        langs = self.languages()
        default_lang = as_int(values.get("PS_LANG_DEFAULT")) or None
        if default_lang is not None and default_lang not in {lang.id for lang in langs}:
            default_lang = langs[0].id if langs else None
        shop = {field: values[k] for k, field in SHOP_KEYS.items() if values.get(k)}
        shop.update(self._shop_place(shop, default_lang))
        facts = ShopFacts(
            timezone=clock.name,
            languages=tuple(langs),
            default_language_id=default_lang or (langs[0].id if langs else None),
            version=conf.version or version,
            shop=shop,
            state_keys={
                k: as_int(v)
                for k, v in sorted(values.items())
                if is_state_key(k) and as_int(v, 0) > 0
            },
            read_at=(conf.server_time or datetime.now(UTC)).isoformat(),
        )
        return facts, warnings

    def _shop_place(self, shop: Mapping[str, str], lang: int | None) -> dict[str, str]:
        """The shop's country (name in the default language, ISO code) and state name, for
        the label's sender: ``PS_SHOP_*`` holds only their ids (one request each). A key
        that may not read them, or an id the store lacks, gives nothing."""
        out: dict[str, str] = {}
        for resource, key in (("countries", "country_id"), ("states", "state_id")):
            rid = as_int(shop.get(key))
            if rid <= 0:
                continue
            try:
                items = self.client.get(resource, rid)
            except (ChannelNotFound, ChannelRejected):
                continue
            except ChannelError as exc:
                if getattr(exc, "status", None) in (401, 403):
                    continue
                raise
            if not items:
                continue
            name = language_value(items[0].get("name"), lang)
            iso = as_str(items[0].get("iso_code"))
            prefix = "country" if resource == "countries" else "state"
            if name:
                out[prefix] = name
            if iso:
                out[f"{prefix}_iso"] = iso
        return out

    def product_fields(self) -> frozenset[str]:
        """The fields the store's ``products`` resource has (``?schema=blank``, read once
        per adapter): 8.x has ``state`` and ``product_type``, older stores lack them."""
        with self._lock:
            if self._product_fields is None:
                root = self.client.get_xml("products", params={"schema": "blank"})
                node = root.find("product")
                self._product_fields = frozenset(
                    child.tag for child in (node if node is not None else [])
                )
            return self._product_fields

    def _writes_8x_fields(self) -> tuple[bool, bool]:
        """(send ``state``, send ``product_type``): only to 8.x stores whose products
        resource has the field."""
        major = self.facts.major_version if self.facts is not None else None
        if major is not None and major < 8:
            return False, False
        fields = self.product_fields()
        return "state" in fields, "product_type" in fields

    # ================================================================== order states

    def order_states(self) -> list[OrderState]:
        return [
            OrderState.from_data(d, self.language_id)
            for d in self.client.iter_all("order_states", page_size=self.page_size)
        ]

    def resolve_states(
        self, names: Iterable[str], state_keys: Mapping[str, int] | None = None
    ) -> tuple[dict[str, int], list[str]]:
        """Map status map entries to this store's order-state ids; also return those the
        store lacks. An entry is a ``PS_OS_*`` configuration key or a state name: a key, or
        a name that is the default name of a key's state (``Shipped`` -> ``PS_OS_SHIPPING``),
        resolves through the store's configuration (``state_keys``, read when not given);
        a name falls back to the store's state names in ANY of its languages
        (case-insensitive). Deleted states never match."""
        wanted = list(dict.fromkeys(names))
        if state_keys is None:
            keys = {k for k in (state_key_for(n) for n in wanted) if k}
            state_keys = (
                {
                    k: as_int(v)
                    for k, v in self.read_configuration(sorted(keys)).values.items()
                    if is_state_key(k)
                }
                if keys
                else {}
            )
        index: dict[str, int] = {}
        alive: set[int] = set()
        for state in self.order_states():
            if state.deleted:
                continue
            alive.add(state.id)
            for text in [state.name, *state.names.values()]:
                if text.strip():
                    index.setdefault(text.strip().casefold(), state.id)
        found: dict[str, int] = {}
        missing: list[str] = []
        for name in wanted:
            key = state_key_for(name)
            state_id = state_keys.get(key) if key else None
            if state_id not in alive:
                state_id = None
            if state_id is None and not is_state_key(name):
                state_id = index.get(name.strip().casefold())
            if state_id is None:
                missing.append(name)
            else:
                found[name] = state_id
        return found, missing

    # ================================================================== orders

    @staticmethod
    def _state_filter(states: Iterable[int] | None) -> dict[str, str]:
        ids = sorted({int(s) for s in states or ()})
        return {"filter[current_state]": "[" + "|".join(map(str, ids)) + "]"} if ids else {}

    def orders_since_id(
        self, cursor_id: int, *, states: Iterable[int] | None = None
    ) -> Iterator[Order]:
        """Orders with ``id > cursor_id`` in id order (keyset pages: new orders arriving
        during the read never shift a page)."""
        last = int(cursor_id)
        extra = self._state_filter(states)
        while True:
            params = {
                "filter[id]": f">[{last}]",
                "sort": "[id_ASC]",
                "limit": f"0,{self.page_size}",
                "display": "full",
                **extra,
            }
            items = self.client.get("orders", params=params)
            for item in items:
                order = Order.from_data(item)
                last = max(last, order.id)
                yield order
            if len(items) < self.page_size:
                return

    # ------------------------------------------------------------------ around orders

    RELATED_CHUNK = 250
    """Ids per ``filter[id]=[a|b|...]`` request (the URL stays well under 8 KB)."""
    ORDER_CHUNK = 500
    """Order ids per ``filter[id_order]=[a|b|...]`` request: a whole page of orders (500 ids
    of up to 7 digits, ``|`` escaped, still well under 8 KB of URL)."""

    def _by_owner(
        self,
        resource: str,
        owner: str,
        ids: Iterable[int],
        cache: dict[str, dict[int, Any]],
        chunk_size: int,
    ) -> dict[int, list[dict[str, Any]]]:
        """Records of ``resource`` grouped by their ``owner`` field (``id_order``,
        ``id_customer_thread``), read in bulk (``filter[owner]=[a|b|...]``, full display,
        no limit: every record of those owners) for the owner ids ``cache`` lacks; an owner
        with none is cached empty."""
        known: dict[int, list[dict[str, Any]]] = cache.setdefault(resource, {})
        wanted = sorted({int(i) for i in ids if int(i) > 0} - set(known))
        for start in range(0, len(wanted), chunk_size):
            chunk = wanted[start : start + chunk_size]
            params = {
                f"filter[{owner}]": "[" + "|".join(map(str, chunk)) + "]",
                "display": "full",
            }
            found: dict[int, list[dict[str, Any]]] = {i: [] for i in chunk}
            for item in self.client.get(resource, params=params):
                found.setdefault(as_int(item.get(owner)), []).append(item)
            for owner_id, items in found.items():
                known[owner_id] = sorted(items, key=lambda d: as_int(d.get("id")))
        return known

    def _order_details(
        self, orders: Sequence[Order], cache: dict[str, dict[int, Any]]
    ) -> dict[int, dict[str, Any]]:
        """The page's ``order_details`` by their id (= the order row's id): one request
        per page of orders, plus ``taxes`` for the tax ids the run has not seen yet. Each
        gets ``tax_rate``: PrestaShop keeps it hidden from the webservice (OrderDetail's
        ``hidden_fields``); the sum of the rates of the detail's ``taxes`` association
        (the order_detail_tax rows), 0 when it has none."""
        by_order = self._by_owner(
            "order_details", "id_order", (o.id for o in orders), cache, self.ORDER_CHUNK
        )
        details = [d for o in orders for d in by_order.get(o.id, ())]
        tax_ids = [as_int(t.get("id")) for d in details for t in assoc_items(d, "taxes")]
        taxes = self._by_ids("taxes", tax_ids, cache) if tax_ids else {}
        out: dict[int, dict[str, Any]] = {}
        for d in details:
            rates = [
                as_decimal((taxes.get(as_int(t.get("id"))) or {}).get("rate"))
                for t in assoc_items(d, "taxes")
            ]
            rate = sum(rates, Decimal(0)).quantize(Decimal("0.001"))
            out[as_int(d.get("id"))] = {**d, "tax_rate": f"{rate:f}"}
        return out

    def _customer_messages(
        self, orders: Sequence[Order], cache: dict[str, dict[int, Any]]
    ) -> dict[int, str]:
        """Order id -> what the customer wrote about it: PrestaShop keeps the checkout
        message (and later ones) as ``customer_messages`` of a ``customer_thread`` whose
        ``id_order`` is the order. One request for the page's threads, one for their
        messages (only when the page has a thread). The customer's own messages (no
        employee, not private), oldest first, one paragraph each."""
        threads = self._by_owner(
            "customer_threads", "id_order", (o.id for o in orders), cache, self.ORDER_CHUNK
        )
        thread_ids = [as_int(t.get("id")) for o in orders for t in threads.get(o.id, ())]
        if not thread_ids:
            return {}
        messages = self._by_owner(
            "customer_messages",
            "id_customer_thread",
            thread_ids,
            cache,
            self.ORDER_CHUNK,
        )
        out: dict[int, str] = {}
        for o in orders:
            mine = [
                m
                for t in threads.get(o.id, ())
                for m in messages.get(as_int(t.get("id")), ())
                if not as_int(m.get("id_employee")) and not as_bool(m.get("private"))
            ]
            mine.sort(key=lambda m: (as_str(m.get("date_add")), as_int(m.get("id"))))
            text = "\n\n".join(t for m in mine if (t := as_str(m.get("message")).strip()))
            if text:
                out[o.id] = text
        return out

    def _by_ids(
        self, resource: str, ids: Iterable[int], cache: dict[str, dict[int, Any]]
    ) -> dict[int, dict[str, Any]]:
        """Records of ``resource`` by id, read in bulk (``filter[id]=[a|b|...]``, full
        display) for the ids ``cache`` lacks; ids the store no longer has are cached empty."""
        known: dict[int, dict[str, Any]] = cache.setdefault(resource, {})
        wanted = sorted({int(i) for i in ids if int(i) > 0} - set(known))
        for start in range(0, len(wanted), self.RELATED_CHUNK):
            chunk = wanted[start : start + self.RELATED_CHUNK]
            params = {
                "filter[id]": "[" + "|".join(map(str, chunk)) + "]",
                "display": "full",
                "limit": f"0,{len(chunk)}",
            }
            for item in self.client.get(resource, params=params):
                known[as_int(item.get("id"))] = item
            for missing in chunk:
                known.setdefault(missing, {})
        return known

    def with_related(
        self,
        orders: Sequence[Order],
        cache: dict[str, dict[int, Any]] | None = None,
    ) -> list[Order]:
        """``orders`` with what the mappings read around them (``Order.related``, listed
        by ``resources.order_reads``): customer, delivery and invoice addresses (with their
        country's ISO code and name and their state), carrier, currency. Read in bulk per
        page: one request per resource for the ids the run's ``cache`` lacks (customers,
        addresses, countries, states, carriers, currencies: at most 6 per page of up to
        ``RELATED_CHUNK`` orders), never one per order. Each order row gets its
        ``detail`` (the ``order_details`` record, with ``tax_rate``) and the order its
        ``customer_message`` (``_order_details``, ``_customer_messages``: 2 to 4 requests
        more per page of up to ``ORDER_CHUNK`` orders; only the taxes are kept for the
        run)."""
        if not orders:
            return []
        cache = {} if cache is None else cache
        customers = self._by_ids("customers", (o.id_customer for o in orders), cache)
        addresses = self._by_ids(
            "addresses",
            [o.id_address_delivery for o in orders] + [o.id_address_invoice for o in orders],
            cache,
        )
        used = [
            addresses.get(i) or {}
            for o in orders
            for i in (o.id_address_delivery, o.id_address_invoice)
        ]
        countries = self._by_ids("countries", (as_int(a.get("id_country")) for a in used), cache)
        states = self._by_ids("states", (as_int(a.get("id_state")) for a in used), cache)
        carriers = self._by_ids("carriers", (o.id_carrier for o in orders), cache)
        currencies = self._by_ids("currencies", (o.id_currency for o in orders), cache)
        # what belongs to these orders alone is read per page and not kept for the run (a
        # backfill sees each order once: keeping 100k order lines would only cost memory)
        page: dict[str, dict[int, Any]] = {"taxes": cache.setdefault("taxes", {})}
        details = self._order_details(orders, page)
        messages = self._customer_messages(orders, page)

        def address(address_id: int, lang: int) -> dict[str, Any] | None:
            raw = addresses.get(address_id)
            if not raw:
                return None
            country = countries.get(as_int(raw.get("id_country"))) or {}
            state = states.get(as_int(raw.get("id_state"))) or {}
            return {
                **raw,
                "country_iso": as_str(country.get("iso_code")) or None,
                "country": language_value(country.get("name"), lang) or None,
                "state": as_str(state.get("name")) or None,
                "state_iso": as_str(state.get("iso_code")) or None,
            }

        out: list[Order] = []
        for o in orders:
            carrier = carriers.get(o.id_carrier) or {}
            currency = currencies.get(o.id_currency) or {}
            related: dict[str, Any] = {
                "customer": dict(customers.get(o.id_customer) or {}) or None,
                "delivery_address": address(o.id_address_delivery, o.id_lang),
                "invoice_address": address(o.id_address_invoice, o.id_lang),
                "carrier": {"id": o.id_carrier, "name": as_str(carrier.get("name"))}
                if carrier
                else None,
                "currency": {
                    "id": o.id_currency,
                    "iso_code": as_str(currency.get("iso_code")),
                    "name": language_value(currency.get("name"), o.id_lang),
                }
                if currency
                else None,
                "customer_message": messages.get(o.id),
            }
            rows = tuple(
                with_fields(r, rest={**r.rest, "detail": details[r.id]}) if r.id in details else r
                for r in o.rows
            )
            out.append(with_fields(o, rows=rows, related=related))
        return out

    def read_related(
        self, orders: Sequence[ChannelOrder], cache: dict[str, dict[int, Any]]
    ) -> list[ChannelOrder]:
        """The port's ``with_related``: ``orders`` must be ``Order``s this adapter read."""
        own = [o for o in orders if isinstance(o, Order)]
        if len(own) != len(orders):
            raise TypeError("prestashop: read_related takes the orders this adapter read")
        return [*self.with_related(own, cache)]

    def orders_changed_since(
        self, date_upd: str, *, states: Iterable[int] | None = None
    ) -> Iterator[Order]:
        """Orders with ``date_upd > cursor`` (strict, shop timezone; keep an overlap and
        de-duplicate), paged in id order."""
        params = {"date": "1", "filter[date_upd]": f">[{date_upd}]", **self._state_filter(states)}
        for item in self.client.iter_all("orders", params=params, page_size=self.page_size):
            yield Order.from_data(item)

    def orders_by_state(self, states: Iterable[int]) -> Iterator[Order]:
        params = self._state_filter(states)
        if not params:
            return
        for item in self.client.iter_all("orders", params=params, page_size=self.page_size):
            yield Order.from_data(item)

    def get_order(self, order_id: int) -> Order:
        items = self.client.get("orders", order_id)
        if not items:
            raise ChannelNotFound(f"prestashop: order {order_id} not found", resource="orders")
        return Order.from_data(items[0])

    def find_order(self, ref: str) -> Order:
        """An order by its reference (the newest, when a split cart shares one) or by its
        id (``12`` or ``#12``)."""
        text = ref.strip()
        if text.lstrip("#").isdigit():
            return self.get_order(int(text.lstrip("#")))
        items = self.client.get(
            "orders",
            params={"filter[reference]": f"[{text}]", "display": "full", "sort": "[id_DESC]"},
        )
        if not items:
            raise ChannelNotFound(
                f"prestashop: no order with reference {text!r}", resource="orders"
            )
        return Order.from_data(items[0])

    def find_units(self, reference: str) -> list[tuple[int, int]]:
        """``(product_id, combination_id)`` of the products (0) and combinations whose
        reference is ``reference``, products first."""
        text = reference.strip()
        params = {"filter[reference]": f"[{text}]", "display": "[id,id_product]"}
        found = [
            (as_int(d.get("id")), 0)
            for d in self.client.get(
                "products", params={"filter[reference]": f"[{text}]", "display": "[id]"}
            )
        ]
        found += [
            (as_int(d.get("id_product")), as_int(d.get("id")))
            for d in self.client.get("combinations", params=params)
        ]
        return found

    def current_state(self, order_id: int) -> int:
        """The order's ``current_state`` (one small list read)."""
        items = self.client.get(
            "orders", params={"filter[id]": f"[{int(order_id)}]", "display": "[id,current_state]"}
        )
        if not items:
            raise ChannelNotFound(
                f"prestashop: order {order_id} not found", resource="orders", status=404
            )
        return as_int(items[0].get("current_state"))

    def order_history(self, order_id: int) -> list[OrderHistory]:
        params = {"filter[id_order]": f"[{int(order_id)}]"}
        return [
            OrderHistory.from_data(d)
            for d in self.client.iter_all(
                "order_histories", params=params, page_size=self.page_size
            )
        ]

    def set_order_state(
        self,
        order_id: int,
        state_id: int,
        *,
        send_email: bool | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> StateChange:
        """Move the order to ``state_id`` by POST order_histories, at most once.

        ``fields``: the order_history as the channel's ``status_out`` mapping writes it (its
        ``id_order`` and ``id_order_state`` are the order and state; other fields go along).

        The POST is not idempotent (the store accepts the same state twice), so: read the
        current state and skip if already there; POST without automatic retry; on an
        ambiguous failure (timeout, dropped connection, 5xx) re-read the state: if the store
        shows the target, the change happened; otherwise re-raise (the caller's retry will
        check the state again before posting)."""
        body_fields = _changes(fields or {}, "id_order")
        order_id = int(body_fields.pop("id_order", order_id))
        state_id = int(body_fields.pop("id_order_state", state_id))
        previous = self.current_state(order_id)
        if previous == state_id:
            return StateChange(order_id, state_id, previous, changed=False)
        email = self.send_email if send_email is None else send_email
        body = psxml.build_entity(
            "order_history",
            [("id_order", order_id), ("id_order_state", state_id), *body_fields.items()],
        )
        params = {"sendemail": "1"} if email else None
        try:
            items = self.client.post_xml("order_histories", body, params=params)
        except ChannelUnavailable:
            if self.current_state(order_id) == state_id:
                return StateChange(order_id, state_id, previous, changed=True)
            raise
        history_id = as_int(items[0].get("id")) if items else None
        return StateChange(order_id, state_id, previous, changed=True, history_id=history_id)

    def order_carriers(self, order_id: int) -> list[OrderCarrier]:
        params = {"filter[id_order]": f"[{int(order_id)}]"}
        return [
            OrderCarrier.from_data(d)
            for d in self.client.iter_all(
                "order_carriers", params=params, page_size=self.page_size
            )
        ]

    def set_tracking_number(
        self, order_id: int, number: str, *, send_email: bool = False
    ) -> OrderCarrier:
        """Write the tracking number on the order's (first) order_carrier: list by id_order,
        GET the full object, PUT it back with only ``tracking_number`` changed."""
        number = number.strip()
        if not number or not _TRACKING_RE.match(number):
            raise ChannelRejected(
                f"prestashop: tracking number {number!r} has characters PrestaShop refuses",
                resource="order_carriers",
            )
        ids = self.client.get(
            "order_carriers",
            params={"filter[id_order]": f"[{int(order_id)}]", "sort": "[id_ASC]"},
        )
        if not ids:
            raise ChannelNotFound(
                f"prestashop: order {order_id} has no order_carrier to hold a tracking number",
                resource="order_carriers",
            )
        carrier_id = as_int(ids[0].get("id"))
        params = {"sendemail": "1"} if send_email else None
        items = self._put_changed(
            "order_carriers", carrier_id, {"tracking_number": number}, params=params
        )
        return OrderCarrier.from_data(items[0])

    # ================================================================== read-modify-write

    def _entity_element(self, resource: str, id: int) -> Element:
        root = self.client.get_xml(f"{resource}/{int(id)}")
        elements = psxml.document_entity_elements(root, resource)
        if not elements:
            raise ChannelNotFound(
                f"prestashop: {resource} {id} not found", resource=resource, status=404
            )
        return elements[0]

    def _put_element(
        self,
        resource: str,
        el: Element,
        changes: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | None = None,
        skip_if_same: bool = True,
    ) -> list[dict[str, Any]]:
        """PUT the full object ``el`` with ``changes`` applied, read-only fields removed."""
        drop = READ_ONLY.get(resource, frozenset()) | psxml.not_filterable_fields(el)
        fields = psxml.element_fields(el, drop=drop)
        current = dict(fields)
        if skip_if_same and all(
            str(current.get(k, "")) == psxml._scalar(v) for k, v in changes.items()
        ):
            return [psxml.entity_to_dict(el)]
        merged = [(name, changes.get(name, value)) for name, value in fields]
        merged += [(k, v) for k, v in changes.items() if k not in current]
        body = psxml.build_entity(NODE[resource], merged)
        return self.client.put_xml(resource, body, params=params)

    def _put_changed(
        self,
        resource: str,
        id: int,
        changes: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        items = self._put_element(
            resource, self._entity_element(resource, id), changes, params=params
        )
        if not items:
            raise ChannelProtocolError(
                f"prestashop: PUT {resource} {id} answered no entity", resource=resource
            )
        return items

    # ================================================================== catalogue reads

    def categories(self) -> list[Category]:
        return [
            Category.from_data(d, self.language_id)
            for d in self.client.iter_all("categories", page_size=self.page_size)
        ]

    def manufacturers(self) -> list[Manufacturer]:
        return [
            Manufacturer.from_data(d)
            for d in self.client.iter_all("manufacturers", page_size=self.page_size)
        ]

    def product_options(self) -> list[ProductOption]:
        return [
            ProductOption.from_data(d, self.language_id)
            for d in self.client.iter_all("product_options", page_size=self.page_size)
        ]

    def product_option_values(self) -> list[ProductOptionValue]:
        return [
            ProductOptionValue.from_data(d, self.language_id)
            for d in self.client.iter_all("product_option_values", page_size=self.page_size)
        ]

    def cover_image_url(self, product: Product) -> str | None:
        """``/api/images/products/<id>/<id_default_image>`` (needs the key to fetch)."""
        image = product.id_default_image or (product.image_ids[0] if product.image_ids else 0)
        if not image:
            return None
        return f"{self.client.api_url}/images/products/{product.id}/{image}"

    def _by_product_range(self, resource: str, lo: int, hi: int) -> list[dict[str, Any]]:
        params = {"filter[id_product]": f"[{lo},{hi}]"}
        return list(self.client.iter_all(resource, params=params, page_size=self.page_size))

    def products(self, *, full: bool = True, since: str | None = None) -> Iterator[CatalogItem]:
        """Every product (or those with ``date_upd > since``), in id order. With ``full``,
        each page's combinations and stock rows are batch-read by product-id range
        (``display=full``), so the cost is a few requests per page of products."""
        params = {"date": "1", "filter[date_upd]": f">[{since}]"} if since else None
        for page in self.client.pages("products", params=params, page_size=self.page_size):
            products = [Product.from_data(d, self.language_id) for d in page]
            if not products:
                continue
            combos: dict[int, list[Combination]] = defaultdict(list)
            stock: dict[int, list[StockAvailable]] = defaultdict(list)
            if full:
                lo = min(p.id for p in products)
                hi = max(p.id for p in products)
                combo_items, stock_items = self.client.map_concurrent(
                    functools.partial(self._by_product_range, lo=lo, hi=hi),
                    ["combinations", "stock_availables"],
                )
                for d in combo_items:
                    c = Combination.from_data(d)
                    combos[c.id_product].append(c)
                for d in stock_items:
                    s = StockAvailable.from_data(d)
                    stock[s.id_product].append(s)
            for p in products:
                yield CatalogItem(
                    product=p,
                    combinations=tuple(sorted(combos.get(p.id, ()), key=lambda c: c.id)),
                    stock=tuple(sorted(stock.get(p.id, ()), key=lambda s: s.id)),
                    cover_image_url=self.cover_image_url(p),
                    api_url=self.client.api_url,
                )

    def products_changed_since(self, date_upd: str) -> Iterator[CatalogItem]:
        """``products(full=True, since=date_upd)``: the port's delta read."""
        return self.products(full=True, since=date_upd)

    def _sorted_by_product(self, resource: str, after_id: int) -> Iterator[dict[str, Any]]:
        params = {"filter[id_product]": f">[{int(after_id)}]"}
        yield from self.client.iter_all(
            resource, params=params, page_size=self.page_size, sort="[id_product_ASC,id_ASC]"
        )

    def catalog_pages(self, *, after_id: int = 0) -> Iterator[list[CatalogItem]]:
        """The whole catalogue after product ``after_id``, one page of products at a time,
        in id order (keyset pages: resumable from the last id of a committed page).

        With ``max_concurrency`` above 1 the pages are read in parallel (see
        ``_parallel_streams``); with 1, products, combinations and stock rows are three
        sorted streams read one request at a time. Either way the pages, their items and
        their order are the same, and the request count is the page minimum of each
        resource; the parallel read adds one cheap id listing of the products, and one for
        combinations and for stock rows when they have more than one page.
        """
        if self.client.max_concurrency > 1:
            with _PageReader(self.client.max_concurrency) as reader:
                pages, combos, stocks = self._parallel_streams(reader, int(after_id))
                yield from self._merge_catalog(pages, combos, stocks)
        else:
            ahead = 2 * self.page_size
            yield from self._merge_catalog(
                read_ahead(self._keyset_products(int(after_id)), ahead),
                read_ahead(self._sorted_by_product("combinations", after_id), ahead),
                read_ahead(self._sorted_by_product("stock_availables", after_id), ahead),
            )

    def _keyset_products(self, after: int) -> Iterator[list[dict[str, Any]]]:
        """``display=full`` product pages with ``id > after``, keyset by id, until a short
        page."""
        last = after
        while True:
            items = self._product_page(f">[{last}]", limit=True)
            if items:
                last = max(as_int(d.get("id")) for d in items)
                yield items
            if len(items) < self.page_size:
                return

    def _product_page(self, id_filter: str, *, limit: bool) -> list[dict[str, Any]]:
        params = {"filter[id]": id_filter, "sort": "[id_ASC]", "display": "full"}
        if limit:
            params["limit"] = f"0,{self.page_size}"
        return self.client.get("products", params=params)

    def _by_product_page(self, resource: str, after: int, offset: int) -> list[dict[str, Any]]:
        return self.client.get(
            resource,
            params={
                "filter[id_product]": f">[{after}]",
                "sort": "[id_product_ASC,id_ASC]",
                "limit": f"{offset},{self.page_size}",
                "display": "full",
            },
        )

    def _list_ids(
        self, resource: str, params: Mapping[str, str], sort: str, offset: int = 0
    ) -> list[int]:
        """The ids of ``resource`` (``params``, ``sort``, from ``offset``) WITHOUT ``display``:
        PrestaShop then builds no objects (``fieldsToDisplay == 'minimum'``), so 5,000 ids
        cost one cheap request where ``display=[id]`` loads every object. Read in chunks of
        100 pages."""
        chunk = self.page_size * 100
        ids: list[int] = []
        while True:
            items = self.client.get(
                resource, params={**params, "sort": sort, "limit": f"{offset + len(ids)},{chunk}"}
            )
            ids += [as_int(d.get("id")) for d in items]
            if len(items) < chunk:
                return ids

    def _first_rows_page(self, resource: str, after: int) -> tuple[list[dict[str, Any]], int]:
        """Page 0 of a by-product stream and, only when it is full, how many rows follow it
        (one cheap listing): a catalogue with one page of combinations pays nothing more."""
        page = self._by_product_page(resource, after, 0)
        if len(page) < self.page_size:
            return page, 0
        params = {"filter[id_product]": f">[{after}]"}
        sort = "[id_product_ASC,id_ASC]"
        return page, len(self._list_ids(resource, params, sort, offset=self.page_size))

    def _parallel_streams(
        self, reader: _PageReader, after: int
    ) -> tuple[Iterator[list[dict[str, Any]]], Iterator[dict[str, Any]], Iterator[dict[str, Any]]]:
        """The catalogue's three streams, read on up to ``max_concurrency`` threads
        (``reader``), each still in order.

        Products: one cheap listing of the ids, then pages of ``page_size`` ids, each read as
        the closed id range ``[previous page's last id + 1, its last id]`` (keyset-stable,
        no offsets); the last page is open-ended (``>[id]`` with ``limit``) and, if it comes
        back full (products created during the read), reading goes on by keyset as the
        serial path does. Combinations and stock rows: the serial path's offset pages
        (sorted by product); page 0 first, and when it is full a listing counts the rest,
        read in parallel, then on by offset while the last page is full."""
        size = self.page_size
        rows_streams = ("combinations", "stock_availables")
        reader.add(
            "products",
            functools.partial(
                self._list_ids, "products", {"filter[id]": f">[{after}]"}, "[id_ASC]"
            ),
        )
        for resource in rows_streams:
            reader.add(resource, functools.partial(self._first_rows_page, resource, after))

        def products() -> Iterator[list[dict[str, Any]]]:
            ids = sorted(reader.take("products"))
            n_pages = -(-len(ids) // size)
            lo = after
            for k in range(n_pages - 1):
                hi = ids[(k + 1) * size - 1]
                reader.add(
                    "products",
                    functools.partial(self._product_page, f"[{lo + 1},{hi}]", limit=False),
                )
                lo = hi
            if n_pages:
                reader.add(
                    "products", functools.partial(self._product_page, f">[{lo}]", limit=True)
                )
            last: list[dict[str, Any]] = []
            for _ in range(n_pages):
                last = reader.take("products")
                if last:
                    yield last
            if len(last) == size:  # products created during the read: on by keyset
                yield from self._keyset_products(max(as_int(d.get("id")) for d in last))

        def rows(resource: str) -> Iterator[dict[str, Any]]:
            page, more = reader.take(resource)
            pages = -(-more // size)
            for j in range(1, pages + 1):
                reader.add(
                    resource, functools.partial(self._by_product_page, resource, after, j * size)
                )
            yield from page
            for _ in range(pages):
                page = reader.take(resource)
                yield from page
            offset = (pages + 1) * size
            while more and len(page) == size:  # rows added during the read: on by offset
                page = self._by_product_page(resource, after, offset)
                offset += size
                yield from page

        return products(), rows("combinations"), rows("stock_availables")

    def _merge_catalog(
        self,
        pages: Iterator[list[dict[str, Any]]],
        combos: Iterator[dict[str, Any]],
        stocks: Iterator[dict[str, Any]],
    ) -> Iterator[list[CatalogItem]]:
        """Join pages of products with the combinations and stock rows of the same products
        (both streams sorted by product id) into pages of ``CatalogItem``."""
        pending_combo: Combination | None = None
        pending_stock: StockAvailable | None = None
        for page in pages:
            products = [Product.from_data(d, self.language_id) for d in page]
            hi = max(p.id for p in products)
            by_combo: dict[int, list[Combination]] = defaultdict(list)
            by_stock: dict[int, list[StockAvailable]] = defaultdict(list)
            while True:
                if pending_combo is None:
                    nxt = next(combos, None)
                    if nxt is None:
                        break
                    pending_combo = Combination.from_data(nxt)
                if pending_combo.id_product > hi:
                    break
                by_combo[pending_combo.id_product].append(pending_combo)
                pending_combo = None
            while True:
                if pending_stock is None:
                    nxt = next(stocks, None)
                    if nxt is None:
                        break
                    pending_stock = StockAvailable.from_data(nxt)
                if pending_stock.id_product > hi:
                    break
                by_stock[pending_stock.id_product].append(pending_stock)
                pending_stock = None
            yield [
                CatalogItem(
                    product=p,
                    combinations=tuple(sorted(by_combo.get(p.id, ()), key=lambda c: c.id)),
                    stock=tuple(sorted(by_stock.get(p.id, ()), key=lambda s: s.id)),
                    cover_image_url=self.cover_image_url(p),
                    api_url=self.client.api_url,
                )
                for p in products
            ]

    def first_order_id_since(self, date_add: str) -> int | None:
        """The smallest order id with ``date_add >= date_add`` (shop time), or None."""
        items = self.client.get(
            "orders",
            params={
                "date": "1",
                "filter[date_add]": f"[{date_add},9999-12-31 23:59:59]",
                "sort": "[id_ASC]",
                "limit": "0,1",
                "display": "[id]",
            },
        )
        return as_int(items[0].get("id")) if items else None

    def get_product(self, product_id: int) -> CatalogItem:
        items = self.client.get("products", product_id)
        if not items:
            raise ChannelNotFound(
                f"prestashop: product {product_id} not found", resource="products"
            )
        p = Product.from_data(items[0], self.language_id)
        return CatalogItem(
            product=p,
            combinations=tuple(self.combinations(p.id)),
            stock=tuple(self.stock_availables(p.id)),
            cover_image_url=self.cover_image_url(p),
            api_url=self.client.api_url,
        )

    def get_products(self, product_ids: Iterable[int], chunk: int = 100) -> list[CatalogItem]:
        """``get_product`` of many products at once: per ``chunk`` ids three requests
        (products, their combinations, their stock rows, each ``filter[...]=[a|b|…]``)
        instead of three per product. Products the store no longer has are left out."""
        ids = sorted({int(i) for i in product_ids})
        out: list[CatalogItem] = []
        for start in range(0, len(ids), chunk):
            wanted = "[" + "|".join(map(str, ids[start : start + chunk])) + "]"

            def read(resource: str, field: str, wanted: str = wanted) -> list[dict[str, Any]]:
                return list(
                    self.client.iter_all(
                        resource, params={f"filter[{field}]": wanted}, page_size=self.page_size
                    )
                )

            products, combos, stock = self.client.map_concurrent(
                lambda job: read(*job),
                [
                    ("products", "id"),
                    ("combinations", "id_product"),
                    ("stock_availables", "id_product"),
                ],
            )
            by_combo: dict[int, list[Combination]] = defaultdict(list)
            by_stock: dict[int, list[StockAvailable]] = defaultdict(list)
            for d in combos:
                c = Combination.from_data(d)
                by_combo[c.id_product].append(c)
            for d in stock:
                row = StockAvailable.from_data(d)
                by_stock[row.id_product].append(row)
            for d in products:
                p = Product.from_data(d, self.language_id)
                out.append(
                    CatalogItem(
                        product=p,
                        combinations=tuple(sorted(by_combo.get(p.id, ()), key=lambda c: c.id)),
                        stock=tuple(sorted(by_stock.get(p.id, ()), key=lambda r: r.id)),
                        cover_image_url=self.cover_image_url(p),
                        api_url=self.client.api_url,
                    )
                )
        return out

    def combinations(self, product_id: int) -> list[Combination]:
        params = {"filter[id_product]": f"[{int(product_id)}]"}
        return [
            Combination.from_data(d)
            for d in self.client.iter_all("combinations", params=params, page_size=self.page_size)
        ]

    def products_with_combinations_after(self, combination_id: int) -> set[int]:
        """Ids of the products that have a combination with an id above ``combination_id``
        (PrestaShop's ``Combination::add`` leaves its product's ``date_upd`` alone)."""
        items = self.client.iter_all(
            "combinations",
            params={"filter[id]": f">[{int(combination_id)}]"},
            page_size=self.page_size,
            display="[id,id_product]",
        )
        return {as_int(d.get("id_product")) for d in items} - {0}

    def stock_availables(self, product_id: int) -> list[StockAvailable]:
        params = {"filter[id_product]": f"[{int(product_id)}]"}
        return [
            StockAvailable.from_data(d)
            for d in self.client.iter_all(
                "stock_availables", params=params, page_size=self.page_size
            )
        ]

    # ================================================================== catalogue writes

    def set_stock(
        self,
        product_id: int,
        combination_id: int | None,
        quantity: int | Mapping[str, Any],
    ) -> StockAvailable:
        """PUT the full stock_available row of (product, combination) with only ``quantity``
        changed (or the fields the ``stock_out`` mapping gives, ``quantity`` among them).
        Refuses rows that depend on stock (the store would 500, code 133) and the
        product-level row of a product with combinations (the store recomputes it)."""
        changes = _changes(quantity, "quantity")
        changes["quantity"] = (
            stock_quantity(changes) if isinstance(quantity, Mapping) else (int(quantity))
        )
        attr = int(combination_id or 0)
        root = self.client.get_xml(
            "stock_availables",
            params={
                "filter[id_product]": f"[{int(product_id)}]",
                "display": "full",
                "sort": "[id_ASC]",
            },
        )
        rows = psxml.document_entity_elements(root, "stock_availables")
        target = None
        has_combination_rows = False
        for el in rows:
            row_attr = as_int(psxml.entity_to_dict(el).get("id_product_attribute"))
            has_combination_rows = has_combination_rows or row_attr != 0
            if row_attr == attr and target is None:
                target = el
        if target is None:
            raise ChannelNotFound(
                f"prestashop: no stock row for product {product_id} combination {attr}",
                resource="stock_availables",
                status=404,
            )
        if attr == 0 and has_combination_rows:
            raise ChannelRejected(
                f"prestashop: product {product_id} has combinations; write each "
                "combination's stock (the store sums them into the product row)",
                resource="stock_availables",
            )
        row = StockAvailable.from_data(psxml.entity_to_dict(target))
        if row.depends_on_stock:
            raise ChannelRejected(
                f"prestashop: stock of product {product_id} combination {attr} depends on "
                "advanced stock management and cannot be written (store code 133)",
                resource="stock_availables",
            )
        if row.quantity == changes["quantity"] and len(changes) == 1:
            return row  # the store already shows it: no write (coalesced bursts end here)
        items = self._put_element("stock_availables", target, changes)
        return StockAvailable.from_data(items[0]) if items else row

    def put_stock(
        self, body: Mapping[str, Any], quantity: int | Mapping[str, Any]
    ) -> StockAvailable:
        """PUT the stock row ``body`` (a complete ``stock_body`` of a row read in full
        earlier, e.g. by the catalogue sync) with ``quantity`` (or the fields the
        ``stock_out`` mapping gives): ONE request, no read.

        The body carries every writable field (a PUT nulls absent ones: ``id_shop`` 0 breaks
        stock), so a stale body can only write stale ``out_of_stock``/``location``/shop ids;
        the store's answer is the saved row. ``ChannelNotFound`` when the row is gone,
        ``ChannelRejected`` when the store refuses it (e.g. it now depends on stock)."""
        missing = [name for name in STOCK_FIELDS if name not in body]
        if missing:
            raise ValueError(f"stock body lacks {', '.join(missing)}: read the row first")
        if as_int(body.get("id")) <= 0:
            raise ValueError("stock body has no row id: read the row first")
        changes = _changes(quantity, "quantity")
        changes["quantity"] = (
            stock_quantity(changes) if isinstance(quantity, Mapping) else (int(quantity))
        )
        fields = [
            (name, changes[name] if name in changes else _stock_value(name, body[name]))
            for name in STOCK_FIELDS
        ]
        fields += [(k, v) for k, v in changes.items() if k not in STOCK_FIELDS]
        items = self.client.put_xml(
            "stock_availables", psxml.build_entity(NODE["stock_availables"], fields)
        )
        if not items:
            raise ChannelProtocolError(
                f"prestashop: PUT stock_availables {body['id']} answered no entity",
                resource="stock_availables",
            )
        return StockAvailable.from_data(items[0])

    def set_price(
        self, product_id: int, price: Decimal | float | str | Mapping[str, Any]
    ) -> Product:
        """The product's base price (tax excluded): full-object PUT, only ``price`` changed
        (or the fields the ``price_out`` mapping gives)."""
        items = self._put_changed("products", product_id, _changes(price, "price"))
        return Product.from_data(items[0], self.language_id)

    def set_combination_price_impact(
        self, combination_id: int, impact: Decimal | float | str | Mapping[str, Any]
    ) -> Combination:
        """A combination's price relative to its product's (or the fields the
        ``variation_price_out`` mapping gives)."""
        items = self._put_changed("combinations", combination_id, _changes(impact, "price"))
        return Combination.from_data(items[0])

    def set_active(self, product_id: int, active: bool) -> Product:
        items = self._put_changed("products", product_id, {"active": "1" if active else "0"})
        return Product.from_data(items[0], self.language_id)

    def update_product(
        self,
        product_id: int,
        *,
        name: str | None = None,
        description: str | None = None,
        price: Decimal | float | str | None = None,
        active: bool | None = None,
        category_id: int | None = None,
        manufacturer_id: int | None = None,
    ) -> None:
        """GET the full product and PUT it back with the given fields changed (one read, one
        write; nothing given: no request). ``name`` (with its ``link_rewrite``) and
        ``description`` are written in every store language, other languages' texts kept."""
        given = {
            "name": name,
            "description": description,
            "price": price,
            "active": active,
            "category_id": category_id,
            "manufacturer_id": manufacturer_id,
        }
        if all(v is None for v in given.values()):
            return
        el = self._entity_element("products", product_id)
        current = dict(psxml.element_fields(el))

        def langs(field: str, text: str) -> Languages:
            old = current.get(field)
            values = dict(old.values) if isinstance(old, Languages) else {}
            for lang in self.write_language_ids:
                values[lang] = text
            return Languages(values)

        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = langs("name", name)
            changes["link_rewrite"] = langs("link_rewrite", slug(name))
        if description is not None:
            changes["description"] = langs("description", description)
        if price is not None:
            changes["price"] = _price(price)
        if active is not None:
            changes["active"] = "1" if active else "0"
        if category_id is not None:
            changes["id_category_default"] = str(int(category_id))
        if manufacturer_id is not None:
            changes["id_manufacturer"] = str(int(manufacturer_id))
        self._put_element("products", el, changes, skip_if_same=False)

    def rename_manufacturer(self, manufacturer_id: int, name: str) -> Manufacturer:
        """The manufacturer's name (full-object PUT, only ``name`` changed)."""
        items = self._put_changed("manufacturers", manufacturer_id, {"name": name})
        return Manufacturer.from_data(items[0])

    def write_stock(self, product_id: int, quantities: Mapping[int, int]) -> dict[int, int]:
        """Set several stock rows of one product with ONE read of its rows and one PUT per
        changed row. ``quantities``: combination id (0: the product row) -> quantity.
        Refuses the product row of a product with combinations (the store sums them), a
        missing row and a row that depends on stock. Returns combination id -> stock row id
        for every row of the product."""
        root = self.client.get_xml(
            "stock_availables",
            params={"filter[id_product]": f"[{int(product_id)}]", "display": "full"},
        )
        rows: dict[int, tuple[Element, dict[str, Any]]] = {}
        for el in psxml.document_entity_elements(root, "stock_availables"):
            d = psxml.entity_to_dict(el)
            rows.setdefault(as_int(d.get("id_product_attribute")), (el, d))
        if 0 in quantities and any(attr != 0 for attr in rows):
            # PrestaShop keeps the product row of a product with combinations as the sum of
            # their rows: only the combinations' rows are ever written
            raise ChannelRejected(
                f"prestashop: product {product_id} has combinations; its product-level stock "
                "is the store's sum of theirs and is not written (set each variant's stock)",
                resource="stock_availables",
            )
        for attr, qty in quantities.items():
            if attr not in rows:
                raise ChannelRejected(
                    f"prestashop: no stock row for product {product_id} combination {attr} "
                    "(a create the store failed half-way leaves this; fix: delete that "
                    "product or combination in the store, then import again)",
                    resource="stock_availables",
                )
            el, d = rows[attr]
            if str(d.get("depends_on_stock")) == "1":
                raise ChannelRejected(
                    f"prestashop: stock of product {product_id} combination {attr} depends on "
                    "advanced stock management and cannot be written (store code 133)",
                    resource="stock_availables",
                )
            if as_int(d.get("quantity")) != int(qty):
                self._put_element("stock_availables", el, {"quantity": int(qty)})
        return {attr: as_int(d.get("id")) for attr, (_, d) in rows.items()}

    LOOKUP_CHUNK = 50
    """References per ``filter[reference]=[a|b|...]`` request."""

    def listed_products(self, references: Iterable[str]) -> dict[str, ListedProduct]:
        """``products_by_reference`` in listing's terms (``ListedProduct``)."""
        out: dict[str, ListedProduct] = {}
        for ref, item in self.products_by_reference(references).items():
            p = item.product
            out[ref] = ListedProduct(
                id=p.id,
                sku=ref,
                name=p.name,
                price=p.price,
                active=p.active,
                category_id=p.id_category_default,
                brand_id=p.id_manufacturer,
                has_image=bool(p.image_ids),
                combinations=tuple(
                    ListedCombination(c.id, c.reference, tuple(c.option_value_ids), c.price)
                    for c in item.combinations
                ),
                stock={s.id_product_attribute: (s.id, s.quantity) for s in item.stock},
            )
        return out

    @property
    def concurrency(self) -> int:
        return self.client.max_concurrency

    def requests_by_method(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (method, _), n in list(self.client.stats.items()):
            out[method] = out.get(method, 0) + n
        return out

    def products_by_reference(self, references: Iterable[str]) -> dict[str, CatalogItem]:
        """Products whose reference is one of ``references`` (the first one per reference),
        with their combinations and stock rows, in a few batched concurrent GETs
        (``filter[reference]=[A|B|...]``). References a filter cannot carry (``|``, ``[``,
        ``]``) are never found."""
        wanted = {r for r in references if r and not (_FILTER_UNSAFE & set(r))}
        if not wanted:
            return {}
        client = self.client
        refs = sorted(wanted)
        size = self.LOOKUP_CHUNK
        chunks = [refs[i : i + size] for i in range(0, len(refs), size)]

        def by_reference(chunk: list[str]) -> list[dict[str, Any]]:
            params = {"filter[reference]": "[" + "|".join(chunk) + "]", "display": "full"}
            return list(client.iter_all("products", params=params, page_size=500))

        products: dict[str, Product] = {}
        for items in client.map_concurrent(by_reference, chunks):
            for d in items:
                p = Product.from_data(d, self.language_id)
                if p.reference in wanted:
                    products.setdefault(p.reference, p)
        if not products:
            return {}
        ids = sorted(p.id for p in products.values())
        id_chunks = [ids[i : i + size] for i in range(0, len(ids), size)]

        def by_products(job: tuple[str, list[int]]) -> list[dict[str, Any]]:
            resource, chunk = job
            params = {"filter[id_product]": "[" + "|".join(map(str, chunk)) + "]"}
            return list(client.iter_all(resource, params=params, page_size=500))

        jobs = [(r, c) for r in ("combinations", "stock_availables") for c in id_chunks]
        combos: dict[int, list[Combination]] = defaultdict(list)
        stock: dict[int, list[StockAvailable]] = defaultdict(list)
        for (resource, _), items in zip(
            jobs, client.map_concurrent(by_products, jobs), strict=True
        ):
            for d in items:
                if resource == "combinations":
                    c = Combination.from_data(d)
                    combos[c.id_product].append(c)
                else:
                    s = StockAvailable.from_data(d)
                    stock[s.id_product].append(s)
        return {
            ref: CatalogItem(
                product=p,
                combinations=tuple(sorted(combos.get(p.id, ()), key=lambda c: c.id)),
                stock=tuple(sorted(stock.get(p.id, ()), key=lambda s: s.id)),
                cover_image_url=self.cover_image_url(p),
                api_url=self.client.api_url,
            )
            for ref, p in products.items()
        }

    def concurrently(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        """Run ``jobs`` on up to the store's ``max_concurrency`` threads, results in order."""
        return self.client.map_concurrent(lambda job: job(), jobs)

    def _langs(self, text: str) -> Languages:
        return Languages(dict.fromkeys(self.write_language_ids, text))

    def _created(self, resource: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ChannelProtocolError(
                f"prestashop: POST {resource} answered no entity", resource=resource
            )
        return items[0]

    CREATE_ATTEMPTS = 3
    """POSTs of one new object when the store answers 5xx and leaves it behind."""

    def _post_undoing_halves(
        self, resource: str, body: bytes, reference: str, product_id: int | None = None
    ) -> list[dict[str, Any]]:
        """POST a product (or a combination of ``product_id``); on a 5xx, delete what that
        POST left half-made and POST again (``_post_undoing``).

        PrestaShop inserts the row, runs the object's hooks, and only then writes its
        ``stock_available`` row: a fatal error in between (a module's, or 8.2.1's own race
        on a cold translation cache when several requests warm it at once) answers 500 and
        leaves a product, or combination, that has no stock row and never will. The
        webservice cannot create a stock row, so a re-run would adopt it by reference and
        fail on its stock. Only rows with ``reference`` and no stock row are deleted: a
        complete one (the store finished and failed later) is kept and the error raised."""
        return self._post_undoing(
            resource, body, reference, lambda: self._half_made(resource, reference, product_id)
        )

    def _post_undoing_named(
        self, resource: str, body: bytes, name: str, **filters: int
    ) -> list[dict[str, Any]]:
        """POST a category, manufacturer, attribute group or value that the store does not
        hold by ``name`` (its callers create only such); on a 5xx, delete every row of that
        name (and ``filters``) the failed POST left, and POST again (``_post_undoing``). The
        store writes the row and its languages before the hooks that fail: left alone, each
        failed POST is a duplicate of the name (a category without its position and groups)
        and the next product needing it POSTs another."""

        def leftovers() -> tuple[list[int], bool]:
            if not name or _FILTER_UNSAFE & set(name):
                return [], True  # cannot be looked up: never delete blind
            params = {"filter[name]": f"[{name}]", "display": "[id]"}
            params.update({f"filter[{k}]": f"[{int(v)}]" for k, v in filters.items()})
            found = {as_int(d.get("id")) for d in self.client.iter_all(resource, params=params)}
            return sorted(found - {0}), False

        return self._post_undoing(resource, body, name, leftovers)

    def _post_undoing(
        self,
        resource: str,
        body: bytes,
        what: str,
        leftovers: Callable[[], tuple[list[int], bool]],
    ) -> list[dict[str, Any]]:
        """POST ``body`` to ``resource`` (``_undoing``)."""
        return self._undoing(
            lambda: self.client.post_xml(resource, body), resource, what, leftovers
        )

    def _undoing(
        self,
        send: Callable[[], T],
        resource: str,
        what: str,
        leftovers: Callable[[], tuple[list[int], bool]],
    ) -> T:
        """``send()`` a create; when the store answers 5xx, DELETE ``resource``/id for each
        id ``leftovers()`` names (what the failed create wrote) and send again, up to
        ``CREATE_ATTEMPTS`` times. After the last attempt the leftovers are deleted too: a
        failed create leaves nothing behind. ``leftovers`` also says whether a complete
        object stands beside them (then the error is raised, nothing sent again). A call
        that got no answer (a timeout: the store may still be on it) is never sent again."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return send()
            except ChannelUnavailable as exc:
                if exc.status is None:
                    raise
                left, whole = leftovers()
                for rid in left:
                    self.client.delete(resource, rid)
                if left:
                    log.warning(
                        "prestashop: POST %s%s answered %s and left id %s behind; deleted it%s",
                        resource,
                        f" {what}" if what else "",
                        exc.status,
                        ", ".join(map(str, left)),
                        ""
                        if whole or attempt >= self.CREATE_ATTEMPTS
                        else f", sending again ({attempt + 1}/{self.CREATE_ATTEMPTS})",
                    )
                if whole or not left or attempt >= self.CREATE_ATTEMPTS:
                    raise

    def _half_made(
        self, resource: str, reference: str, product_id: int | None
    ) -> tuple[list[int], bool]:
        """Ids of ``resource`` rows with ``reference`` (of ``product_id`` for combinations)
        that have no stock row, and whether a row with a stock row exists beside them."""
        if not reference or _FILTER_UNSAFE & set(reference):
            return [], True  # cannot be looked up: never delete blind
        params = {"filter[reference]": f"[{reference}]", "display": "[id,id_product]"}
        if product_id is not None:
            params["filter[id_product]"] = f"[{int(product_id)}]"
        elif resource == "products":
            params["display"] = "[id]"
        ids = {as_int(d.get("id")) for d in self.client.iter_all(resource, params=params)} - {0}
        if not ids:
            return [], False
        if product_id is None:
            key, where = "id_product", {"filter[id_product]": "[" + "|".join(map(str, ids)) + "]"}
        else:
            key, where = "id_product_attribute", {"filter[id_product]": f"[{int(product_id)}]"}
        stocked = {
            as_int(d.get(key))
            for d in self.client.iter_all(
                "stock_availables",
                params={**where, "display": "[id,id_product,id_product_attribute]"},
            )
        }
        halves = sorted(ids - stocked)
        return halves, bool(ids & stocked)

    def create_product(
        self,
        *,
        name: str,
        reference: str,
        price: Decimal | float | str,
        category_id: int = 2,
        category_ids: Sequence[int] = (),
        manufacturer_id: int = 0,
        active: bool = True,
        ean13: str = "",
        description: str = "",
        weight: Decimal | float | str = 0,
        with_combinations: bool = False,
    ) -> Product:
        """POST a product that the back office shows: on 8.x ``state=1`` (without it the
        webservice leaves a draft, ``state=0``, that PrestaShop cleans up) and
        ``product_type`` ``standard``, or ``combinations`` when ``with_combinations``
        (PrestaShop sets that itself once a combination exists: sending it up front keeps
        the product right between the two POSTs); name, link_rewrite and description in
        every language of the store. Stores without those fields (older than 8, or a
        products resource without them) get neither."""
        cats = list(dict.fromkeys([category_id, *category_ids]))
        send_state, send_type = self._writes_8x_fields()
        fields: list[tuple[str, Any]] = [
            ("id_manufacturer", manufacturer_id),
            ("id_category_default", category_id),
            ("reference", reference),
            ("ean13", ean13),
            ("weight", _price(weight)),
            ("price", _price(price)),
            ("active", active),
        ]
        if send_state:
            fields.append(("state", 1))
        if send_type:
            fields.append(("product_type", "combinations" if with_combinations else "standard"))
        fields += [
            ("available_for_order", True),
            ("show_price", True),
            ("minimal_quantity", 1),
            ("name", self._langs(name)),
            ("link_rewrite", self._langs(slug(name))),
        ]
        if description:
            fields.append(("description", self._langs(description)))
        body = psxml.build_entity("product", fields, {"categories": Association("category", cats)})
        items = self._post_undoing_halves("products", body, reference)
        return Product.from_data(self._created("products", items), self.language_id)

    def create_combination(
        self,
        *,
        product_id: int,
        reference: str,
        price_impact: Decimal | float | str = 0,
        option_value_ids: Sequence[int] = (),
        minimal_quantity: int = 1,
        default_on: bool = False,
        ean13: str = "",
    ) -> Combination:
        fields: list[tuple[str, Any]] = [
            ("id_product", int(product_id)),
            ("ean13", ean13),
            ("reference", reference),
            ("price", _price(price_impact)),
            ("minimal_quantity", minimal_quantity),
        ]
        if default_on:
            fields.append(("default_on", True))
        body = psxml.build_entity(
            "combination",
            fields,
            {"product_option_values": Association("product_option_value", option_value_ids)},
        )
        items = self._post_undoing_halves("combinations", body, reference, int(product_id))
        return Combination.from_data(self._created("combinations", items))

    def create_category(self, *, name: str, parent_id: int = 2, active: bool = True) -> Category:
        body = psxml.build_entity(
            "category",
            [
                ("id_parent", int(parent_id)),
                ("active", active),
                ("name", self._langs(name)),
                ("link_rewrite", self._langs(slug(name))),
            ],
        )
        items = self._post_undoing_named("categories", body, name, id_parent=parent_id)
        return Category.from_data(self._created("categories", items), self.language_id)

    def create_manufacturer(self, *, name: str, active: bool = True) -> Manufacturer:
        body = psxml.build_entity("manufacturer", [("active", active), ("name", name)])
        items = self._post_undoing_named("manufacturers", body, name)
        return Manufacturer.from_data(self._created("manufacturers", items))

    def create_product_option(
        self, *, name: str, public_name: str | None = None, group_type: str = "select"
    ) -> ProductOption:
        body = psxml.build_entity(
            "product_option",
            [
                ("is_color_group", group_type == "color"),
                ("group_type", group_type),
                ("name", self._langs(name)),
                ("public_name", self._langs(public_name or name)),
            ],
        )
        items = self._post_undoing_named("product_options", body, name)
        return ProductOption.from_data(self._created("product_options", items), self.language_id)

    def create_product_option_value(
        self, *, option_id: int, name: str, color: str = ""
    ) -> ProductOptionValue:
        fields: list[tuple[str, Any]] = [("id_attribute_group", int(option_id))]
        if color:
            fields.append(("color", color))
        fields.append(("name", self._langs(name)))
        body = psxml.build_entity("product_option_value", fields)
        items = self._post_undoing_named(
            "product_option_values", body, name, id_attribute_group=option_id
        )
        return ProductOptionValue.from_data(
            self._created("product_option_values", items), self.language_id
        )

    def upload_image(
        self,
        product_id: int,
        filename: str,
        content: bytes,
        content_type: str = "image/jpeg",
        *,
        first: bool = False,
    ) -> int:
        """POST ``images/products/<id>`` (multipart field ``image``); returns the image id.

        PrestaShop writes the image's row (the cover when the product has none) before the
        file and its thumbnails: a 500 in between leaves an image with no picture, and a
        re-run that sees an image uploads none. So a 5xx deletes the images the upload left
        (those the product did not have before it) and sends it again, up to
        ``CREATE_ATTEMPTS`` times, the last failure included. ``first``: the product had no
        image before this call (the importer knows), which saves reading its images first.
        """
        path = f"images/products/{int(product_id)}"
        before = frozenset() if first else frozenset(self._image_ids(product_id))

        def send() -> Element:
            return self.client.upload(path, filename, content, content_type)

        def left_behind() -> tuple[list[int], bool]:
            return [i for i in self._image_ids(product_id) if i not in before], False

        root = self._undoing(send, path, "", left_behind)
        for el in root.iter():
            if el.tag == "id" and (el.text or "").strip():
                return as_int(el.text)
            if el.tag == "declination" and el.get("id"):
                return as_int(el.get("id"))
        raise ChannelProtocolError(
            f"prestashop: image upload for product {product_id} answered no image id",
            resource="images",
        )

    def _image_ids(self, product_id: int) -> list[int]:
        """The product's image ids (``GET images/products/<id>``; none: the store's 404)."""
        try:
            root = self.client.get_xml(f"images/products/{int(product_id)}")
        except ChannelNotFound:
            return []
        return sorted(as_int(el.get("id")) for el in root.iter("declination") if el.get("id"))

    def delete_product(self, product_id: int) -> None:
        self.client.delete("products", product_id)

    def delete_combination(self, combination_id: int) -> None:
        self.client.delete("combinations", combination_id)

    # ================================================================== the channel port
    # (``engine.runtime.channels.port.ChannelPort``: what sync, outbox, effects and listing
    # call; the methods above that it names are part of it too)

    @property
    def requests_sent(self) -> int:
        return self.client.total_requests

    def read_clock(self, saved: Mapping[str, Any] | None) -> ClockRead:
        """Re-read ``PS_TIMEZONE`` (one request; a store whose saved facts lack its
        languages gets all of them read once) and take the store's facts. A key that may
        not read ``configurations`` keeps the saved zone (noted ``timezone_unread``)."""
        facts = ShopFacts.from_json(saved) if saved else None
        notes: list[str] = []
        warnings: list[str] = []
        changes: dict[str, Any] = {}
        try:
            conf = self.read_configuration(["PS_TIMEZONE"])
            if facts is None or not facts.languages:
                facts, warnings = self.shop_facts()
                changes = facts.to_json()
                notes.append("facts_read")
        except (
            ChannelAuthFailed,
            ChannelPermissionMissing,
            ChannelNotFound,
            ChannelRejected,
        ) as exc:
            kept = facts.timezone if facts else "UTC"
            warnings.append(f"PS_TIMEZONE not read ({exc}); keeping {kept}")
            if facts is not None:
                self.facts = facts
            return ClockRead(kept, None, None, ("timezone_unread",), tuple(warnings))
        clock, warning = clock_for(conf.values.get("PS_TIMEZONE"))
        if warning:
            warnings.append(warning)
        if clock.name != facts.timezone:
            changes["timezone"] = clock.name
            notes.append("timezone_changed")
            facts = ShopFacts.from_json({**facts.to_json(), "timezone": clock.name})
        self.facts = facts
        return ClockRead(
            clock.name, conf.server_time, changes or None, tuple(notes), tuple(warnings)
        )

    def tracking_numbers(self, order_id: int) -> list[str]:
        return [c.tracking_number for c in self.order_carriers(order_id) if c.tracking_number]

    def _price_of(self, resource: str, id: int) -> Decimal | None:
        items = self.client.get(resource, int(id))
        if not items:
            return None
        try:
            return Decimal(str(items[0].get("price", "")))
        except ArithmeticError:
            return None

    def product_price(self, product_id: int) -> Decimal | None:
        return self._price_of("products", product_id)

    def combination_price(self, combination_id: int) -> Decimal | None:
        return self._price_of("combinations", combination_id)

    @staticmethod
    def kept_stock_token(cached: Any, fresh: Any) -> Any:
        """The token to keep when a sync read ``fresh`` for a unit whose binding holds
        ``cached``: the cached one when only the quantity moved (our pushes, the store's
        sales: not a row change; the cached quantity only decides whether ``push_stock``
        reads before writing), else ``fresh``."""
        if (
            isinstance(cached, Mapping)
            and isinstance(fresh, Mapping)
            and {**cached, "quantity": None} == {**fresh, "quantity": None}
        ):
            return cached
        return fresh

    def push_stock(
        self,
        product_id: int,
        combination_id: int | None,
        write: Mapping[str, Any] | Decimal | int | str,
        *,
        token: Any = None,
    ) -> StockPush:
        """Set a unit's stock: ONE PUT from ``token`` (the row cached with the binding) when
        the new quantity differs from the cached one; otherwise — no usable token, the
        store refused or lost the row, or a value back at the cached quantity, where the
        store may already show it — read the row and PUT only if the store differs. A
        write whose answer was lost is read back: shown, it is a success (``read_back``).
        ``StockPush.token`` is the fresh row when it differs from the token beyond its
        quantity (the caller keeps it), else None."""
        write = write if isinstance(write, Mapping) else int(write)
        quantity = stock_quantity(write)
        pid, attr = int(product_id), int(combination_id or 0)

        def shows() -> bool:
            return any(
                r.id_product_attribute == attr and r.quantity == quantity
                for r in self.stock_availables(pid)
            )

        body = _usable_token(token, pid, attr)
        if body is not None and as_int(body["quantity"]) != quantity:
            cached = body
            try:
                put = checked_write(lambda: self.put_stock(cached, write), shows)
            except (ChannelNotFound, ChannelRejected):
                body = None  # the row is gone or refused (e.g. now depends on stock): read it
            else:
                return StockPush(quantity, read_back=put is None)
        row = checked_write(lambda: self.set_stock(pid, combination_id, write), shows)
        if row is None:
            return StockPush(quantity, read_back=True)
        fresh = stock_body(row)
        if body is None or {k: v for k, v in fresh.items() if k != "quantity"} != {
            k: body[k] for k in fresh if k != "quantity"
        }:
            return StockPush(quantity, token=fresh)
        return StockPush(quantity)


def _usable_token(token: Any, product_id: int, attr: int) -> Mapping[str, Any] | None:
    """The cached stock row when it is complete, writable and of this product and
    combination; else None (``push_stock`` reads the row instead)."""
    if not isinstance(token, Mapping) or any(name not in token for name in STOCK_FIELDS):
        return None
    try:
        ok = (
            int(token["id"]) > 0
            and int(token["id_product"]) == product_id
            and int(token["id_product_attribute"]) == attr
            and int(token["depends_on_stock"]) == 0
        )
    except (TypeError, ValueError):
        return None
    return token if ok else None


def open_channel(
    url: str,
    key: Any,
    spec: Any,
    *,
    facts: Mapping[str, Any] | None = None,
    **client_kw: Any,
) -> ChannelPort:
    """The ``prestashop`` factory of ``channels.registry``: ``PrestaShopAdapter.from_channel``."""
    return PrestaShopAdapter.from_channel(url, key, spec, facts=facts, **client_kw)


def as_port(adapter: PrestaShopAdapter) -> ChannelPort:
    """The adapter as the engine sees it: mypy checks here that ``PrestaShopAdapter``
    implements every method of ``ChannelPort`` with compatible types."""
    return adapter
