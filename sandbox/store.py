"""The sandbox store's data: in-memory PrestaShop resources, their write rules and side effects.

Records are plain dicts holding what the database would hold, as text (``"12"``,
``"16.510000"``, ``"2024-05-01 10:00:00"``); multilingual fields are ``{lang_id: text}``;
stored associations sit under ``"associations"``. Derived associations (a product's
combinations and stock rows) come from indexes. Writes follow ``WebserviceRequest::
saveEntityFromXml`` and the entity classes (PUT nulls absent fields, read-only fields are
refused, POST order_histories moves the order, a combination's stock row recomputes the
product-level row). ``SandboxStore.generate`` builds a deterministic catalogue and order book.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.schema import (
    DEFAULT_VERSION,
    RESOURCES,
    FieldDef,
    ResourceDef,
    decimal_text,
    resources_for,
    version_tuple,
)

Record = dict[str, Any]
Clock = Callable[[], datetime]

#: The default order states of a fresh 1.7.x / 8.x install (install/data/xml/order_state.xml):
#: id -> (name, template, color, module_name, flags). Flags: logable paid shipped delivery
#: invoice send_email pdf_invoice pdf_delivery hidden unremovable.
ORDER_STATES: dict[int, tuple[str, str, str, str, str]] = {
    1: ("Awaiting check payment", "cheque", "#34209E", "ps_checkpayment", "0000010001"),
    2: ("Payment accepted", "payment", "#3498D8", "", "1100111001"),
    3: ("Processing in progress", "preparation", "#3498D8", "", "1101110001"),
    4: ("Shipped", "shipped", "#01b887", "", "1111111101"),
    5: ("Delivered", "", "#01b887", "", "1111101101"),
    6: ("Canceled", "order_canceled", "#2C3E50", "", "0000010001"),
    7: ("Refunded", "refund", "#ec2e15", "", "0000111001"),
    8: ("Payment error", "payment_error", "#ec2e15", "", "0000010001"),
    9: ("On backorder (paid)", "outofstock", "#3498D8", "", "0100111001"),
    10: ("Awaiting bank wire payment", "bankwire", "#34209E", "ps_wirepayment", "0000010001"),
    11: ("Remote payment accepted", "payment", "#3498D8", "", "1100111001"),
    12: ("On backorder (not paid)", "outofstock", "#34209E", "", "0000010001"),
    13: (
        "Awaiting Cash On Delivery validation",
        "cashondelivery",
        "#34209E",
        "ps_cashondelivery",
        "0000010001",
    ),
}
_STATE_FLAG_NAMES = (
    "logable",
    "paid",
    "shipped",
    "delivery",
    "invoice",
    "send_email",
    "pdf_invoice",
    "pdf_delivery",
    "hidden",
    "unremovable",
)

_FMT = "%Y-%m-%d %H:%M:%S"
_LANGS = (
    ("en", "English (English)", "en-us"),
    ("fr", "Français (French)", "fr-fr"),
    ("de", "Deutsch (German)", "de-de"),
    ("es", "Español (Spanish)", "es-es"),
    ("it", "Italiano (Italian)", "it-it"),
    ("nl", "Nederlands (Dutch)", "nl-nl"),
)
#: the most languages a generated shop can have (``languages=``, ``--languages``)
MAX_LANGUAGES = len(_LANGS)


class WebserviceFault(Exception):
    """A webservice error as PrestaShop reports it: an HTTP status and ``(code, message)``s."""

    def __init__(self, status: int, *errors: tuple[int, str]) -> None:
        self.status = status
        self.errors = list(errors)
        super().__init__("; ".join(f"{c}: {m}" for c, m in errors))


OWNERS: dict[str, str] = {
    "order_details": "id_order",
    "customer_threads": "id_order",
    "customer_messages": "id_customer_thread",
}
"""Resource -> the field naming the record it belongs to (indexed: ``SandboxStore.owned``)."""


def _class(rdef: ResourceDef) -> str:
    """The PHP class name of a resource, as validation messages spell it."""
    return {
        "order_histories": "OrderHistory",
        "stock_availables": "StockAvailable",
        "product_options": "AttributeGroup",
        "product_option_values": "ProductAttribute",
    }.get(rdef.name, "".join(p.capitalize() for p in rdef.node.split("_")))


def _property(rdef: ResourceDef, name: str) -> str:
    """``Class->field`` as ObjectModel's messages print it: through the translator, which
    escapes HTML, so a real 8.2.1 says ``Product-&gt;price``."""
    return f"{_class(rdef)}-&gt;{name}"


def _fmt(dt: datetime) -> str:
    return dt.strftime(_FMT)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _default(f: FieldDef) -> str | None:
    """What a NULL set by PUT becomes once ObjectModel casts it (ints 0, strings '')."""
    if f.kind == "N":
        return None
    if f.kind in ("i", "b"):
        return "0"
    if f.kind in ("d", "d3"):
        return decimal_text(f.kind, 0.0)
    return ""


def ean13(first12: str) -> str:
    """A valid EAN-13: the 12 digits and their check digit."""
    digits = [int(d) for d in first12]
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return first12 + str((10 - total % 10) % 10)


class SandboxStore:
    """All resources of one sandbox shop, guarded by one lock; see the module docstring.

    Read helpers for tests: ``get(res, id)``, ``records(res)``, ``stock_of(product_id,
    combination_id=0)``, ``order_state(order_id)``, ``combinations_of(product_id)``,
    ``histories_of(order_id)``.
    """

    def __init__(
        self,
        *,
        languages: int = 2,
        clock: Clock | None = None,
        timezone: str = "UTC",
        version: str = DEFAULT_VERSION,
    ) -> None:
        self.lang_ids: list[int] = list(range(1, max(1, min(languages, len(_LANGS))) + 1))
        self.clock: Clock = clock or (lambda: datetime.now(UTC).replace(tzinfo=None))
        #: the PrestaShop version played (``PSWS-Version``; older ones lack 8.x fields)
        self.version = version
        self.resources: dict[str, ResourceDef] = resources_for(version)
        numbers = version_tuple(version)
        #: >= 1.7.8.0: empty values are rendered as empty CDATA, not <x></x>
        self.cdata_always = numbers >= (1, 7, 8, 0)
        #: >= 8.0.0: JSON details drop falsy fields (array_filter)
        self.json_filter = numbers >= (8,)
        #: >= 8.0.0: PSWS-Version only once authenticated (1.7 always sent it)
        self.version_after_auth = numbers >= (8,)
        #: 8.x runs on PHP 8 (1.7 on PHP 7): its TypeErrors and warnings become answers (the
        #: JSON API root a fatal 500, a refused list query a 500 with four warnings)
        self.php8 = numbers >= (8,)
        self.tables: dict[str, dict[int, Record]] = {name: {} for name in RESOURCES}
        self.next_id: dict[str, int] = dict.fromkeys(RESOURCES, 1)
        #: the multilingual fields each entity of the last ``write`` did not receive: PHP
        #: holds them as plain strings until reloaded, so the answer renders them bare
        self.written_unset: list[frozenset[str]] = []
        self.next_image_id = 1
        self.lock = threading.RLock()
        #: rendered full views per record: {(resource, id): {base_url | json slot: rendering}}
        self.render_cache: dict[tuple[str, int], dict[str, Any]] = {}
        self.combos_by_product: dict[int, list[int]] = {}
        self.stock_index: dict[tuple[int, int], int] = {}
        #: every stock row id per id_product (``filter[id_product]`` without a scan)
        self.stock_by_product: dict[int, set[int]] = {}
        self.carriers_by_order: dict[int, list[int]] = {}
        self.histories_by_order: dict[int, list[int]] = {}
        self.owned: dict[str, dict[int, list[int]]] = {r: {} for r in OWNERS}
        """Records by their owner's id (``OWNERS``: order details and customer threads by
        order, messages by thread), for the bulk reads around a page of orders."""
        self.data_path: Path | None = None
        self.shop_name = "omsflow sandbox"
        #: the shop's clock (PS_TIMEZONE): every date the store writes is local to it
        self.timezone = "UTC"
        self._zone: tzinfo = UTC
        self.set_timezone(timezone)

    # ------------------------------------------------------------------ reads

    def now(self) -> str:
        """The store's local time as PrestaShop writes it (``clock`` is UTC; naive = UTC)."""
        return _fmt(self.local(self.clock()))

    def local(self, moment: datetime) -> datetime:
        """An instant (naive = UTC) as the shop's naive local wall-clock time."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self._zone).replace(tzinfo=None)

    def set_timezone(self, name: str) -> None:
        """Change the shop's clock, as the back office's Localization page does: dates
        already written stay as they are; new ones are written in ``name``."""
        self._zone = UTC if name in ("UTC", "Etc/UTC") else ZoneInfo(name)
        self.timezone = name
        for rec in self.tables.get("configurations", {}).values():
            if rec["name"] == "PS_TIMEZONE":
                rec["value"] = name
                self.touch("configurations", rec["id"])

    def seed_configuration(self, at: datetime | None = None) -> None:
        """The ``configurations`` rows omsflow reads (global scope, as a fresh 8.x install
        holds them, ids included): language, time zone, shop address, order-state keys;
        dated ``at`` (a generated shop: its generation time, so a seed gives one shop)."""
        rows: list[tuple[int, str, str]] = [
            (1, "PS_LANG_DEFAULT", "1"),
            (66, "PS_TIMEZONE", self.timezone),
            (117, "PS_OS_CHEQUE", "1"),
            (118, "PS_OS_PAYMENT", "2"),
            (119, "PS_OS_PREPARATION", "3"),
            (120, "PS_OS_SHIPPING", "4"),
            (121, "PS_OS_DELIVERED", "5"),
            (122, "PS_OS_CANCELED", "6"),
            (123, "PS_OS_REFUND", "7"),
            (124, "PS_OS_ERROR", "8"),
            (125, "PS_OS_OUTOFSTOCK", "9"),
            (126, "PS_OS_BANKWIRE", "10"),
            (127, "PS_OS_WS_PAYMENT", "11"),
            (128, "PS_OS_OUTOFSTOCK_PAID", "9"),
            (129, "PS_OS_OUTOFSTOCK_UNPAID", "12"),
            (130, "PS_OS_COD_VALIDATION", "13"),
            (151, "PS_SHOP_DEFAULT", "1"),
            (236, "PS_SHOP_NAME", self.shop_name),
            (237, "PS_SHOP_EMAIL", "shop@sandbox.example"),
            (238, "PS_SHOP_ADDR1", "12 rue du Bac"),
            (239, "PS_SHOP_CODE", "75007"),
            (240, "PS_SHOP_CITY", "Paris"),
            (241, "PS_SHOP_COUNTRY_ID", "8"),
            (242, "PS_SHOP_PHONE", "+33 1 23 45 67 89"),
        ]
        have = {rec["name"] for rec in self.tables["configurations"].values()}
        stamp = _fmt(self.local(at)) if at is not None else self.now()
        for rid, name, value in rows:
            if name not in have:
                self._insert(
                    "configurations",
                    {"name": name, "value": value, "id_shop_group": "", "id_shop": "",
                     "date_add": stamp, "date_upd": stamp},
                    rid,
                )  # fmt: skip

    def _dates_to_shop_clock(self) -> None:
        """Rewrite every stored date (written as UTC) in the shop's clock."""
        if self._zone is UTC:
            return
        for res, table in self.tables.items():
            dates = [f.name for f in RESOURCES[res].fields if f.kind == "t"]
            for rec in table.values():
                for name in dates:
                    text = rec.get(name) or ""
                    if text and not text.startswith("0000-00-00"):
                        utc = datetime.strptime(text[:19], _FMT).replace(tzinfo=UTC)
                        rec[name] = _fmt(self.local(utc))
        self.render_cache.clear()

    def get(self, resource: str, rid: int) -> Record | None:
        return self.tables[resource].get(rid)

    def records(self, resource: str) -> Iterable[Record]:
        return self.tables[resource].values()

    def combinations_of(self, product_id: int) -> list[int]:
        return list(self.combos_by_product.get(product_id, ()))

    def stock_row(self, product_id: int, combination_id: int = 0) -> Record | None:
        sid = self.stock_index.get((product_id, combination_id))
        return None if sid is None else self.tables["stock_availables"].get(sid)

    def stock_of(self, product_id: int, combination_id: int = 0) -> int:
        row = self.stock_row(product_id, combination_id)
        if row is None:
            raise KeyError(f"no stock row for product {product_id} combination {combination_id}")
        return int(row["quantity"])

    def order_state(self, order_id: int) -> int:
        return int(self.tables["orders"][order_id]["current_state"])

    def histories_of(self, order_id: int) -> list[Record]:
        t = self.tables["order_histories"]
        return [t[h] for h in self.histories_by_order.get(order_id, ()) if h in t]

    def state_id(self, name: str) -> int:
        for rec in self.tables["order_states"].values():
            if name in rec["name"].values():
                return int(rec["id"])
        raise KeyError(name)

    def getter_value(self, res: str, rec: Record, name: str) -> str | None:
        """Value of a getter (computed) field: what the real ``getWs*`` method returns
        (None where PHP returns null: JSON ``null``, an empty XML node)."""
        if res == "products":
            if name == "id_default_image":
                imgs = rec["associations"].get("images") or []
                return imgs[0]["id"] if imgs else None  # getCoverWs: null without images
            if name == "id_default_combination":
                return str(self.default_combination(rec["id"]))
            if name == "manufacturer_name":
                m = self.tables["manufacturers"].get(int(rec["id_manufacturer"] or 0))
                return m["name"] if m else ""
            if name == "quantity":
                return "0"  # always 0 in the webservice (WEBSERVICE.md 6.5)
            if name == "position_in_category":
                return str(rec.get("position_in_category") or "0")
            if name == "type":
                return str(rec.get("type") or "simple")
        if res == "orders" and name == "shipping_number":
            ocs = self.carriers_by_order.get(rec["id"]) or []
            return self.tables["order_carriers"][ocs[-1]]["tracking_number"] if ocs else ""
        if res == "categories" and name == "nb_products_recursive":
            cat = str(rec["id"])
            return str(
                sum(
                    1
                    for p in self.tables["products"].values()
                    if any(c["id"] == cat for c in p["associations"].get("categories", ()))
                )
            )
        if res == "manufacturers" and name == "link_rewrite":
            return _slug(rec["name"])
        return str(rec.get(name, ""))

    def default_combination(self, product_id: int) -> int:
        """``Product::getDefaultAttribute``: the combination marked default, else 0."""
        for cid in self.combos_by_product.get(product_id, ()):
            if self.tables["combinations"][cid]["default_on"] == "1":
                return int(cid)
        return 0

    def assoc_items(self, res: str, rec: Record, name: str) -> list[dict[str, str]]:
        """Items of one association (each has ``id``), stored or derived."""
        rid = rec["id"]
        if res == "products":
            if name == "combinations":
                return [{"id": str(c)} for c in self.combos_by_product.get(rid, ())]
            if name == "stock_availables":
                rows = [(0, self.stock_index.get((rid, 0)))] + [
                    (c, self.stock_index.get((rid, c)))
                    for c in self.combos_by_product.get(rid, ())
                ]
                return [{"id": str(s), "id_product_attribute": str(a)} for a, s in rows if s]
            if name == "product_option_values":
                seen: dict[str, None] = {}
                for c in self.combos_by_product.get(rid, ()):
                    for v in self.tables["combinations"][c]["associations"].get(
                        "product_option_values", ()
                    ):
                        seen.setdefault(v["id"], None)
                return [{"id": v} for v in seen]
        if res == "categories":
            if name == "categories":
                return [
                    {"id": str(c["id"])}
                    for c in self.tables["categories"].values()
                    if c["id_parent"] == str(rid) and c["id"] != rid
                ]
            if name == "products":
                s = str(rid)
                return [
                    {"id": str(p["id"])}
                    for p in self.tables["products"].values()
                    if any(c["id"] == s for c in p["associations"].get("categories", ()))
                ]
        if res == "customer_threads" and name == "customer_messages":
            # CustomerThread::getWsCustomerMessages: the thread's messages, by id
            return [{"id": str(m)} for m in sorted(self.owned["customer_messages"].get(rid, ()))]
        if res == "product_options" and name == "product_option_values":
            s = str(rid)
            return [
                {"id": str(v["id"])}
                for v in self.tables["product_option_values"].values()
                if v["id_attribute_group"] == s
            ]
        return list(rec.get("associations", {}).get(name, ()))

    # ------------------------------------------------------------------ cache

    def touch(self, resource: str, rid: int) -> None:
        self.render_cache.pop((resource, rid), None)

    def _touch_all(self, resource: str) -> None:
        for key in [k for k in self.render_cache if k[0] == resource]:
            del self.render_cache[key]

    # ------------------------------------------------------------------ low-level insert

    def _blank(self, rdef: ResourceDef) -> Record:
        rec: Record = {}
        for f in rdef.fields[1:]:
            if f.getter and f.read_only:
                continue
            rec[f.name] = dict.fromkeys(self.lang_ids, "") if f.is_lang else _default(f)
        rec["associations"] = {}
        return rec

    def _insert(self, resource: str, values: Mapping[str, Any], rid: int | None = None) -> Record:
        rdef = self.resources[resource]
        rec = self._blank(rdef)
        rec.update(values)
        if rid is None:
            rid = self.next_id[resource]
        rec["id"] = rid
        self.next_id[resource] = max(self.next_id[resource], rid + 1)
        self.tables[resource][rid] = rec
        self._index(resource, rec)
        return rec

    def _index(self, resource: str, rec: Record) -> None:
        rid = rec["id"]
        if resource == "combinations":
            self.combos_by_product.setdefault(int(rec["id_product"]), []).append(rid)
        elif resource == "stock_availables":
            self.stock_index[(int(rec["id_product"]), int(rec["id_product_attribute"]))] = rid
            self.stock_by_product.setdefault(int(rec["id_product"]), set()).add(rid)
        elif resource == "order_carriers":
            self.carriers_by_order.setdefault(int(rec["id_order"]), []).append(rid)
        elif resource == "order_histories":
            self.histories_by_order.setdefault(int(rec["id_order"]), []).append(rid)
        elif resource in OWNERS:
            owner = int(rec.get(OWNERS[resource]) or 0)
            self.owned[resource].setdefault(owner, []).append(rid)

    def _unindex(self, resource: str, rec: Record) -> None:
        rid = rec["id"]
        if resource == "combinations":
            lst = self.combos_by_product.get(int(rec["id_product"]), [])
            if rid in lst:
                lst.remove(rid)
        elif resource == "stock_availables":
            self.stock_index.pop((int(rec["id_product"]), int(rec["id_product_attribute"])), None)
            self.stock_by_product.get(int(rec["id_product"]), set()).discard(rid)
        elif resource == "order_carriers":
            lst = self.carriers_by_order.get(int(rec["id_order"]), [])
            if rid in lst:
                lst.remove(rid)
        elif resource == "order_histories":
            lst = self.histories_by_order.get(int(rec["id_order"]), [])
            if rid in lst:
                lst.remove(rid)
        elif resource in OWNERS:
            lst = self.owned[resource].get(int(rec.get(OWNERS[resource]) or 0), [])
            if rid in lst:
                lst.remove(rid)

    def _lang(self, text: str, fr: str | None = None) -> dict[int, str]:
        out = {}
        for lang in self.lang_ids:
            out[lang] = fr if (lang == 2 and fr is not None) else text
        return out

    # ------------------------------------------------------------------ writes

    def write(
        self,
        method: str,
        resource: str,
        entities: list[tuple[dict[str, Any], dict[str, list[dict[str, str]]]]],
        *,
        send_email: bool = False,
    ) -> list[Record]:
        """POST / PUT / PATCH ``entities`` (fields, associations) as the real store does.

        Raises WebserviceFault with the real status and codes; applies nothing on error.
        """
        rdef = self.resources[resource]
        with self.lock:
            if method == "POST":
                for values, _ in entities:
                    if values.get("id", "") not in ("", None):
                        raise WebserviceFault(
                            400, (91, "id is forbidden when adding a new resource")
                        )
            else:
                # saveEntityFromXml: duplicates (89) are checked before missing ids (90)
                ids = [
                    int(v["id"]) if str(v["id"]).strip().isdigit() else -1
                    for v, _ in entities
                    if v.get("id") not in (None, "")
                ]
                if len(set(ids)) != len(ids):
                    raise WebserviceFault(400, (89, "id is duplicate in request"))
                if len(ids) != len(entities):
                    raise WebserviceFault(400, (90, "id is required when modifying a resource"))
                for i in ids:
                    if i not in self.tables[resource]:
                        raise WebserviceFault(404, (92, "Invalid ID"))
            for values, _ in entities:
                self._validate(rdef, method, values)
            self.written_unset = [
                frozenset(
                    f.name
                    for f in rdef.fields
                    if f.is_lang and method in ("POST", "PUT") and f.name not in v
                )
                for v, _ in entities
            ]
            out: list[Record] = []
            try:
                for v, a in entities:
                    out.append(self._apply(rdef, method, v, a, send_email))
            finally:
                self.persist()  # an error 86 comes after the entity was saved, as in PrestaShop
            return out

    def _validate(self, rdef: ResourceDef, method: str, values: Mapping[str, Any]) -> None:
        # saveEntityFromXml walks the fields in order: a present read-only field is 93, an
        # absent required (non-multilingual) one is 41 on POST/PUT, the first one found wins;
        # required multilingual fields are checked by validateFieldsLang (84) afterwards.
        for fd in rdef.fields:
            if fd.name in values and fd.read_only:
                raise WebserviceFault(
                    400,
                    (
                        93,
                        f'parameter "{fd.name}" not writable. '
                        "Please remove this attribute of this XML",
                    ),
                )
            absent = fd.name not in values
            if method in ("POST", "PUT") and fd.required and not fd.is_lang and absent:
                raise WebserviceFault(400, (41, f'parameter "{fd.name}" required'))
        default_lang = self.lang_ids[0]
        for lf in rdef.fields:
            if not (lf.is_lang and lf.required) or (method == "PATCH" and lf.name not in values):
                continue
            given = values.get(lf.name, "")
            text = given.get(default_lang, "") if isinstance(given, dict) else given
            if method == "PUT" and isinstance(given, dict) and default_lang not in given:
                continue  # the stored value of the default language is kept
            if not str(text).strip():
                raise WebserviceFault(
                    400,
                    (84, f'Validation error: "Property {_property(rdef, lf.name)} is empty."'),
                )
        for name, value in values.items():
            f = rdef.by_name.get(name)
            if f is None or f.is_lang or name == "id":
                continue
            if (
                f.kind in ("i", "b")
                and value != ""
                and not re.fullmatch(r"-?\d+", str(value).strip())
            ):
                raise WebserviceFault(
                    400, (85, f'Validation error: "Property {_property(rdef, name)} is not valid"')
                )
            if f.kind in ("d", "d3") and value != "":
                try:
                    float(value)
                except ValueError:
                    raise WebserviceFault(
                        400,
                        (85, f'Validation error: "Property {_property(rdef, name)} is not valid"'),
                    ) from None
        if rdef.name == "order_histories" and method == "POST":
            oid = values.get("id_order", "0")
            if not str(oid).isdigit() or int(oid) not in self.tables["orders"]:
                raise WebserviceFault(
                    400,
                    (85, 'Validation error: "Property OrderHistory-&gt;id_order is not valid"'),
                )
            sid = values.get("id_order_state", "0")
            if not str(sid).isdigit() or int(sid) not in self.tables["order_states"]:
                raise WebserviceFault(
                    400,
                    (
                        85,
                        'Validation error: "Property OrderHistory-&gt;id_order_state '
                        'is not valid"',
                    ),
                )

    def _normalise(self, f: FieldDef, value: Any) -> Any:
        if f.is_lang:
            return value
        if f.kind == "N":
            return None  # a property without a column: null again once reloaded
        text = "" if value is None else str(value)
        if f.kind in ("i", "b"):
            return str(int(text.strip())) if text.strip() else "0"
        if f.kind in ("d", "d3"):
            return decimal_text(f.kind, float(text)) if text.strip() else _default(f)
        return text

    def _apply(
        self,
        rdef: ResourceDef,
        method: str,
        values: Mapping[str, Any],
        assocs: Mapping[str, list[dict[str, str]]],
        send_email: bool,
    ) -> Record:
        res = rdef.name
        now = self.now()
        if method == "POST":
            rec = self._blank(rdef)
            old: Record | None = None
        else:
            old = self.tables[res][int(values["id"])]
            if res == "stock_availables" and old["depends_on_stock"] == "1":
                raise WebserviceFault(
                    500, (133, "You cannot update the available stock when it depends on stock.")
                )
            rec = dict(old)
            rec["associations"] = dict(old.get("associations") or {})
        for f in rdef.fields[1:]:
            if f.read_only:
                continue
            if f.name in values:
                if f.is_lang:
                    given = values[f.name]
                    if not isinstance(given, dict):  # no <language> nodes: every language
                        given = dict.fromkeys(self.lang_ids, str(given))
                    merged = dict(rec.get(f.name) or dict.fromkeys(self.lang_ids, ""))
                    merged.update({k: v for k, v in given.items() if k in self.lang_ids})
                    rec[f.name] = merged
                else:
                    rec[f.name] = self._normalise(f, values[f.name])
            elif method == "PUT":
                rec[f.name] = dict.fromkeys(self.lang_ids, "") if f.is_lang else _default(f)
        if "date_add" in rdef.by_name and (method == "POST" or not rec.get("date_add")):
            rec["date_add"] = now
        if "date_add" in rdef.by_name and method == "PUT" and "date_add" not in values:
            rec["date_add"] = now  # ObjectModel::update() refills an absent date_add
        if "date_upd" in rdef.by_name:
            rec["date_upd"] = now
        unknown = None
        for name, items in assocs.items():
            a = rdef.assoc(name)
            if a is None:
                unknown = name
                break
            if a.writable:
                rec["associations"][name] = [dict(i) for i in items]
        # AttributeGroup::add / ProductAttribute::add: no position -> after the last one (of
        # the same group for a value)
        options = res in ("product_options", "product_option_values")
        if options and method == "POST" and int(rec.get("position") or 0) <= 0:
            group = rec.get("id_attribute_group")
            taken = [
                int(o["position"] or 0)
                for o in self.tables[res].values()
                if res == "product_options" or o["id_attribute_group"] == group
            ]
            rec["position"] = str(max(taken, default=-1) + 1)
        if res == "products" and method == "POST":
            for lang, text in list(rec["link_rewrite"].items()):
                if not text:
                    rec["link_rewrite"][lang] = _slug(rec["name"].get(lang, ""))
        rid = self.next_id[res] if old is None else old["id"]
        rec["id"] = rid
        if old is not None:
            self._unindex(res, old)
        self.next_id[res] = max(self.next_id[res], rid + 1)
        self.tables[res][rid] = rec
        self._index(res, rec)
        self.touch(res, rid)
        self._side_effects(res, method, rec, old, now)
        if res == "orders" and "shipping_number" in values:
            # Order::setWsShippingNumber: the order's (first) order_carrier gets the number
            ocs = self.carriers_by_order.get(rid) or []
            if ocs:
                self.tables["order_carriers"][ocs[0]]["tracking_number"] = str(
                    values["shipping_number"]
                )
                self.touch("order_carriers", ocs[0])
        if unknown is not None:  # associations are set after add()/update(): the save stays
            raise WebserviceFault(400, (86, f'The association "{unknown}" does not exists'))
        return rec

    def _side_effects(
        self, res: str, method: str, rec: Record, old: Record | None, now: str
    ) -> None:
        if res == "order_histories" and method == "POST":
            order = self.tables["orders"][int(rec["id_order"])]
            order["current_state"] = rec["id_order_state"]
            order["date_upd"] = now
            state = self.tables["order_states"][int(rec["id_order_state"])]
            if state["logable"] == "1":
                order["valid"] = "1"
            self.touch("orders", order["id"])
        elif res == "orders" and old is not None and rec["current_state"] != old["current_state"]:
            if (
                rec["current_state"] != "0"
                and int(rec["current_state"]) in self.tables["order_states"]
            ):
                self._insert(
                    "order_histories",
                    {
                        "id_employee": "0",
                        "id_order_state": rec["current_state"],
                        "id_order": str(rec["id"]),
                        "date_add": now,
                    },
                )
        elif res == "stock_availables":
            pid, paid = int(rec["id_product"]), int(rec["id_product_attribute"])
            if paid != 0:
                self._recompute_product_stock(pid)
        elif res == "combinations":
            pid = int(rec["id_product"])
            if old is None:
                product = self.tables["products"].get(pid)
                if product is not None:
                    # Product::addCombinationEntity: the first combination becomes the
                    # default one, and the product's type becomes "combinations"
                    if not self.default_combination(pid):
                        rec["default_on"] = "1"
                        product["cache_default_attribute"] = str(rec["id"])
                    if "product_type" in product:
                        product["product_type"] = "combinations"
                self._insert(
                    "stock_availables",
                    {
                        "id_product": str(pid),
                        "id_product_attribute": str(rec["id"]),
                        "id_shop": "1",
                        "id_shop_group": "0",
                        "quantity": "0",
                        "depends_on_stock": "0",
                        "out_of_stock": "2",
                    },
                )
                self._recompute_product_stock(pid)
            self.touch("products", pid)
            if old is not None and int(old["id_product"]) != pid:
                self.touch("products", int(old["id_product"]))
        elif res == "products" and old is None:
            self._insert(
                "stock_availables",
                {
                    "id_product": str(rec["id"]),
                    "id_product_attribute": "0",
                    "id_shop": "1",
                    "id_shop_group": "0",
                    "quantity": "0",
                    "depends_on_stock": "0",
                    "out_of_stock": "2",
                },
            )
        elif res == "order_carriers":
            self.touch("orders", int(rec["id_order"]))
            if old is not None:
                self.touch("orders", int(old["id_order"]))
        elif res == "manufacturers":
            self._touch_all("products")

    def _recompute_product_stock(self, pid: int) -> None:
        combos = self.combos_by_product.get(pid, [])
        total = 0
        for c in combos:
            row = self.stock_row(pid, c)
            if row is not None:
                total += int(row["quantity"])
        top = self.stock_row(pid, 0)
        if top is not None and combos:
            top["quantity"] = str(total)
            self.touch("stock_availables", top["id"])

    def delete(self, resource: str, ids: list[int]) -> None:
        """DELETE as the real store: all ids must exist (else 404 code 87), then cascade."""
        with self.lock:
            missing = [i for i in ids if i not in self.tables[resource]]
            if missing:
                raise WebserviceFault(
                    404, (87, "Id(s) not exists: " + ", ".join(map(str, missing)))
                )
            for rid in ids:
                self._delete_one(resource, rid)
            self.persist()

    def _delete_one(self, resource: str, rid: int) -> None:
        rec = self.tables[resource].pop(rid, None)
        if rec is None:
            return
        self._unindex(resource, rec)
        self.touch(resource, rid)
        if resource == "products":
            for cid in list(self.combos_by_product.get(rid, ())):
                self._delete_one("combinations", cid)
            sid = self.stock_index.get((rid, 0))
            if sid:
                self._delete_one("stock_availables", sid)
            self.combos_by_product.pop(rid, None)
        elif resource == "combinations":
            pid = int(rec["id_product"])
            sid = self.stock_index.get((pid, rid))
            if sid:
                self._delete_one("stock_availables", sid)
            self._recompute_product_stock(pid)
            product = self.tables["products"].get(pid)
            if product is not None and rec["default_on"] == "1":
                # Product::updateDefaultAttribute: the first combination left, else none
                rest = sorted(self.combos_by_product.get(pid, ()))
                if rest:
                    self.tables["combinations"][rest[0]]["default_on"] = "1"
                    self.touch("combinations", rest[0])
                product["cache_default_attribute"] = str(rest[0]) if rest else "0"
            self.touch("products", pid)
        elif resource == "order_carriers":
            self.touch("orders", int(rec["id_order"]))

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> dict[str, Any]:
        def enc(rec: Record) -> Record:
            return {
                k: (
                    {str(lk): lv for lk, lv in v.items()}
                    if isinstance(v, dict) and k != "associations"
                    else v
                )
                for k, v in rec.items()
            }

        return {
            "version": 1,
            "timezone": self.timezone,
            "ps_version": self.version,
            "lang_ids": self.lang_ids,
            "next_id": self.next_id,
            "next_image_id": self.next_image_id,
            "tables": {r: [enc(rec) for rec in t.values()] for r, t in self.tables.items()},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, clock: Clock | None = None) -> SandboxStore:
        store = cls(
            languages=len(doc["lang_ids"]),
            clock=clock,
            timezone=doc.get("timezone", "UTC"),
            version=str(doc.get("ps_version", DEFAULT_VERSION)),
        )
        store.next_image_id = int(doc.get("next_image_id", 1))
        for res, rows in doc["tables"].items():
            if res not in store.resources:
                continue
            rdef = store.resources[res]
            for row in rows:
                rec = dict(row)
                for f in rdef.fields:
                    if f.is_lang and isinstance(rec.get(f.name), dict):
                        rec[f.name] = {int(k): v for k, v in rec[f.name].items()}
                store.tables[res][rec["id"]] = rec
                store._index(res, rec)
        store.next_id.update({k: int(v) for k, v in doc["next_id"].items() if k in RESOURCES})
        store.seed_configuration()  # a file saved before the sandbox served configurations
        return store

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole store to ``path`` atomically (temp file + rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            doc = self.to_json()
        fd, tmp = tempfile.mkstemp(prefix=".sandbox-", dir=str(target.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, clock: Clock | None = None) -> SandboxStore:
        with open(path, encoding="utf-8") as fh:
            store = cls.from_json(json.load(fh), clock=clock)
        store.data_path = Path(path)
        return store

    def persist(self) -> None:
        """Save after a write when the store is backed by a ``--data`` file."""
        if self.data_path is not None:
            self.save(self.data_path)

    # ------------------------------------------------------------------ generation

    @classmethod
    def generate(
        cls,
        *,
        products: int = 100,
        orders: int = 50,
        seed: int = 1,
        now: datetime | None = None,
        languages: int = 2,
        combination_share: float = 0.4,
        clock: Clock | None = None,
        combinations_per_product: int | None = None,
        timezone: str = "UTC",
        version: str = DEFAULT_VERSION,
        repeat_reference_share: float = 0.25,
        no_reference_share: float = 0.25,
        no_reference_ean_share: float = 0.5,
    ) -> SandboxStore:
        """A deterministic shop: same arguments, same records (ids, values, dates).

        ``combination_share`` of the products get combinations: 2 to 4 each, or exactly
        ``combinations_per_product`` (1 to 4, one per size) when given. ``timezone`` is the
        shop's clock (PS_TIMEZONE): the same instants as under UTC, written in local time.

        The shapes real stores have, per product with combinations: ``repeat_reference_share``
        of them have combinations that all repeat the product's reference (PrestaShop's demo
        shop: every one), ``no_reference_share`` combinations without a reference, of which
        ``no_reference_ean_share`` carry an EAN-13 (the others nothing at all). A quarter each
        by default, so the demo and every test meet the shapes real stores have; with both 0
        every combination has its own ``<reference>-<size>``. These draws use their own
        random sequence, so the rest of the shop is the same whatever they are.
        """
        if combinations_per_product is not None and not 1 <= combinations_per_product <= 4:
            raise ValueError(
                f"combinations_per_product must be 1..4, not {combinations_per_product}"
            )
        for label, share in (
            ("combination_share", combination_share),
            ("repeat_reference_share", repeat_reference_share),
            ("no_reference_share", no_reference_share),
            ("no_reference_ean_share", no_reference_ean_share),
        ):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{label} must be between 0 and 1, not {share}")
        if repeat_reference_share + no_reference_share > 1.0:
            raise ValueError("repeat_reference_share + no_reference_share must not exceed 1")
        if not 1 <= languages <= MAX_LANGUAGES:
            raise ValueError(f"languages must be 1..{MAX_LANGUAGES}, not {languages}")
        if now is None:
            now = (clock or (lambda: datetime.now(UTC)))()
        now = now.replace(tzinfo=None, microsecond=0)
        store = cls(languages=languages, clock=clock, version=version)
        gen = _Generator(store, random.Random(seed), now, combinations_per_product)
        gen.shapes = random.Random(f"shapes-{seed}")
        gen.repeat_share = repeat_reference_share
        gen.no_ref_share = no_reference_share
        gen.no_ref_ean_share = no_reference_ean_share
        gen.run(products, orders, combination_share)
        store.set_timezone(timezone)
        store._dates_to_shop_clock()
        store.seed_configuration(at=now)
        return store


_SIZES = ("S", "M", "L", "XL")
_COLORS = (
    ("White", "#ffffff"),
    ("Black", "#434A54"),
    ("Red", "#E84C3D"),
    ("Blue", "#5D9CEC"),
    ("Green", "#A0D468"),
    ("Grey", "#AAB2BD"),
)
_NOUNS = (
    "T-shirt",
    "Sweater",
    "Mug",
    "Notebook",
    "Poster",
    "Cushion",
    "Hoodie",
    "Cap",
    "Tote bag",
    "Pen",
    "Frame",
    "Scarf",
)
_ADJ = (
    "Classic",
    "Organic",
    "Vintage",
    "Hummingbird",
    "Mountain",
    "Ocean",
    "Urban",
    "Retro",
    "Minimal",
    "Bright",
)
_CATS = (
    "Clothes",
    "Men",
    "Women",
    "Accessories",
    "Stationery",
    "Home Accessories",
    "Art",
    "Kids",
    "Sport",
    "Gifts",
)
#: id -> (iso, name, call prefix, contains states): PrestaShop's own country ids
_COUNTRIES = {
    1: ("DE", "Germany", 49, False),
    8: ("FR", "France", 33, False),
    9: ("GR", "Greece", 30, False),
    10: ("IT", "Italy", 39, False),
    20: ("DK", "Denmark", 45, False),
    21: ("US", "United States", 1, True),
    177: ("RU", "Russian Federation", 7, False),
}
_US_STATES = (
    "AL Alabama",
    "AK Alaska",
    "AZ Arizona",
    "AR Arkansas",
    "CA California",
    "CO Colorado",
    "CT Connecticut",
    "DE Delaware",
    "FL Florida",
    "GA Georgia",
    "HI Hawaii",
    "ID Idaho",
    "IL Illinois",
    "IN Indiana",
    "IA Iowa",
    "KS Kansas",
    "KY Kentucky",
    "LA Louisiana",
    "ME Maine",
    "MD Maryland",
    "MA Massachusetts",
    "MI Michigan",
    "MN Minnesota",
    "MS Mississippi",
    "MO Missouri",
    "MT Montana",
    "NE Nebraska",
    "NV Nevada",
    "NH New Hampshire",
    "NJ New Jersey",
    "NM New Mexico",
    "NY New York",
    "NC North Carolina",
    "ND North Dakota",
    "OH Ohio",
    "OK Oklahoma",
    "OR Oregon",
    "PA Pennsylvania",
    "RI Rhode Island",
    "SC South Carolina",
    "SD South Dakota",
    "TN Tennessee",
    "TX Texas",
    "UT Utah",
    "VT Vermont",
    "VA Virginia",
    "WA Washington",
    "WV West Virginia",
    "WI Wisconsin",
    "WY Wyoming",
)
#: customer k % 8 -> (first, last, id_country, city, postcode, address line) or None: the
#: seeded US customer. Several countries and alphabets (Latin with accents, Cyrillic, Greek).
_PERSONAS: tuple[tuple[str, str, int, str, str, str] | None, ...] = (
    None,
    None,  # customers 1 and 4 stay US (a state): the shapes the conformance tests compare
    ("Дмитрий", "Иванов", 177, "Москва", "101000", "ул. Тверская, д. 7"),
    ("Γιώργος", "Παπαδόπουλος", 9, "Αθήνα", "105 57", "Οδός Ερμού 15"),
    None,
    ("Zoë", "Ørsted", 20, "København Ø", "2100", "Østerbrogade 12"),
    ("François", "Lefèvre", 8, "Paris", "75002", "3 rue de l'Église"),
    ("Jürgen", "Müller", 1, "München", "80331", "Marienplatz 8"),
)
_FIRST = ("John", "Jane", "Paul", "Marie", "Luca", "Sofia", "Omar", "Anna", "Tom", "Lea")
_LAST = ("DOE", "MARTIN", "ROSSI", "SMITH", "GARCIA", "MULLER", "DUBOIS", "NOVAK")
#: state -> share of generated orders (channel states first, then a few others)
#: What customers write at checkout (the order's customer_thread), in several alphabets.
_CHECKOUT_MESSAGES = (
    "Please leave the parcel with the neighbour at no. 12 if I am out.",
    "Merci de sonner deux fois, l'interphone est cassé.",
    "Пожалуйста, позвоните за час до доставки.",
    "Παρακαλώ αφήστε το δέμα στον θυρωρό.",
    "Bitte nicht vor 10 Uhr liefern.",
)
_STATE_MIX = ((2, 20), (3, 15), (4, 20), (5, 22), (6, 8), (10, 6), (8, 4), (7, 5))
_CHAINS = {2: [2], 3: [2, 3], 4: [2, 3, 4], 5: [2, 3, 4, 5], 6: [6], 7: [2, 7], 8: [8], 10: []}
_PAYMENTS = (
    ("ps_wirepayment", "Bank transfer", 10),
    ("ps_checkpayment", "Payments by check", 1),
    ("ps_checkout", "Card", 0),
)


class _Generator:
    def __init__(
        self,
        store: SandboxStore,
        rng: random.Random,
        now: datetime,
        combinations_per_product: int | None = None,
    ) -> None:
        self.s = store
        self.r = rng
        self.now = now
        self.per_product = combinations_per_product
        #: the draws added for the real-store shapes (features, suppliers, references):
        #: their own sequence, so ``r`` gives the same shop as before they existed
        self.shapes = random.Random("shapes")
        self.repeat_share = 0.0
        self.no_ref_share = 0.0
        self.no_ref_ean_share = 0.5

    def run(self, n_products: int, n_orders: int, share: float) -> None:
        s = self.s
        base = _fmt(self.now - timedelta(days=400))
        for i, (iso, name, code) in enumerate(_LANGS[: len(s.lang_ids)], start=1):
            s._insert(
                "languages",
                {
                    "name": name,
                    "iso_code": iso,
                    "locale": code[:3] + code[3:].upper(),
                    "language_code": code,
                    "active": "1",
                    "is_rtl": "0",
                    "date_format_lite": "m/d/Y" if iso == "en" else "d/m/Y",
                    "date_format_full": "m/d/Y H:i:s" if iso == "en" else "d/m/Y H:i:s",
                },
                rid=i,
            )
        s._insert(
            "currencies",
            {
                "names": s._lang("Euro", "euro"),
                "name": "Euro",
                "symbol": s._lang("€"),
                "iso_code": "EUR",
                "numeric_iso_code": "978",
                "precision": "2",
                "conversion_rate": "1.000000",
                "deleted": "0",
                "active": "1",
                "unofficial": "0",
                "modified": "0",
                "pattern": s._lang(""),
            },
        )
        for sid, (name, tpl, color, module, flags) in ORDER_STATES.items():
            vals: dict[str, Any] = dict(zip(_STATE_FLAG_NAMES, flags, strict=True))
            vals.update(
                name=s._lang(name),
                template=s._lang(tpl),
                color=color,
                module_name=module,
                deleted="0",
            )
            s._insert("order_states", vals, rid=sid)
        for country_id, (iso, cname, prefix, has_states) in _COUNTRIES.items():
            s._insert(
                "countries",
                {
                    "id_zone": "2" if iso == "US" else "1",
                    "id_currency": "0",
                    "call_prefix": str(prefix),
                    "iso_code": iso,
                    "active": "1",
                    "contains_states": "1" if has_states else "0",
                    "need_identification_number": "0",
                    "need_zip_code": "1",
                    "zip_code_format": "NNNNN" if iso in ("US", "FR", "DE", "IT") else "",
                    "display_tax_label": "1",
                    "name": s._lang(cname),
                },
                rid=country_id,
            )
        for state_id, entry in enumerate(_US_STATES, start=1):
            iso, sname = entry.split(" ", 1)
            s._insert(
                "states",
                {
                    "id_zone": "2",
                    "id_country": "21",
                    "iso_code": iso,
                    "name": sname,
                    "active": "1",
                },
                rid=state_id,
            )
        for cid, (name, delay) in enumerate(
            (("Click and collect", "Pick up in-store"), ("My carrier", "Delivery next day!")),
            start=1,
        ):
            s._insert(
                "carriers",
                {
                    "deleted": "0",
                    "is_module": "0",
                    "id_tax_rules_group": "1",
                    "id_reference": str(cid),
                    "name": name,
                    "active": "1",
                    "is_free": "1" if cid == 1 else "0",
                    "url": "" if cid == 1 else "https://tracking.example/@",
                    "shipping_handling": "0" if cid == 1 else "1",
                    "shipping_external": "0",
                    "range_behavior": "0",
                    "shipping_method": "1" if cid == 1 else "2",
                    "max_weight": "0.000000",
                    "need_range": "0",
                    "position": str(cid - 1),
                    "delay": s._lang(delay),
                },
            )
        self._categories(max(4, min(60, 8 + n_products // 500)), base)
        self._options()
        self._manufacturers(max(3, min(50, 4 + n_products // 200)), base)
        self._products(n_products, share)
        self._customers(max(5, min(2000, n_orders // 4 + 5)))
        self._brand_address()
        self._orders(n_orders)

    def _brand_address(self) -> None:
        s = self.s
        rec = s._insert(
            "addresses",
            {
                "id_manufacturer": "1",
                "id_country": "8",
                "alias": "manufacturer",
                "lastname": "WORKS",
                "firstname": "Brand",
                "address1": "1, Factory road",
                "postcode": "75002",
                "city": "Paris",
                "deleted": "0",
                "date_add": _fmt(self.now),
                "date_upd": _fmt(self.now),
            },
        )
        s.tables["manufacturers"][1]["associations"]["addresses"] = [{"id": str(rec["id"])}]

    def _categories(self, n: int, base: str) -> None:
        s = self.s
        for cid, name, parent, depth, root in (
            (1, "Root", "0", "0", "0"),
            (2, "Home", "1", "1", "1"),
        ):
            s._insert(
                "categories",
                {
                    "id_parent": parent,
                    "level_depth": depth,
                    "active": "1",
                    "id_shop_default": "1",
                    "is_root_category": root,
                    "position": "0",
                    "date_add": base,
                    "date_upd": base,
                    "name": s._lang(name),
                    "link_rewrite": s._lang(_slug(name)),
                },
                rid=cid,
            )
        for k in range(n):
            name = _CATS[k % len(_CATS)] + ("" if k < len(_CATS) else f" {k // len(_CATS) + 1}")
            s._insert(
                "categories",
                {
                    "id_parent": "2",
                    "level_depth": "2",
                    "active": "1",
                    "id_shop_default": "1",
                    "is_root_category": "0",
                    "position": str(k),
                    "date_add": base,
                    "date_upd": base,
                    "name": s._lang(name),
                    "link_rewrite": s._lang(_slug(name)),
                    "description": s._lang(f"<p>{name} of the sandbox shop.</p>"),
                },
            )
        self.leaf_categories = [c for c in s.tables["categories"] if c > 2]

    def _options(self) -> None:
        s = self.s
        s._insert(
            "product_options",
            {
                "is_color_group": "0",
                "group_type": "select",
                "position": "0",
                "name": s._lang("Size", "Taille"),
                "public_name": s._lang("Size", "Taille"),
            },
        )
        s._insert(
            "product_options",
            {
                "is_color_group": "1",
                "group_type": "color",
                "position": "1",
                "name": s._lang("Color", "Couleur"),
                "public_name": s._lang("Color", "Couleur"),
            },
        )
        for pos, size in enumerate(_SIZES):
            s._insert(
                "product_option_values",
                {
                    "id_attribute_group": "1",
                    "color": "",
                    "position": str(pos),
                    "name": s._lang(size),
                },
            )
        for pos, (color, hexv) in enumerate(_COLORS):
            s._insert(
                "product_option_values",
                {
                    "id_attribute_group": "2",
                    "color": hexv,
                    "position": str(pos),
                    "name": s._lang(color),
                },
            )
        self.size_ids = list(range(1, len(_SIZES) + 1))
        self.color_ids = list(range(len(_SIZES) + 1, len(_SIZES) + len(_COLORS) + 1))
        self.value_names = {i + 1: v for i, v in enumerate(_SIZES)} | {
            len(_SIZES) + i + 1: c for i, (c, _) in enumerate(_COLORS)
        }

    def _manufacturers(self, n: int, base: str) -> None:
        s = self.s
        for k in range(n):
            name = f"{_ADJ[k % len(_ADJ)]} Works" + (
                "" if k < len(_ADJ) else f" {k // len(_ADJ) + 1}"
            )
            s._insert(
                "manufacturers",
                {
                    "active": "1",
                    "name": name,
                    "date_add": base,
                    "date_upd": base,
                    "description": s._lang(""),
                    "short_description": s._lang(""),
                },
            )

    def _products(self, n: int, share: float) -> None:
        s, r = self.s, self.r
        rdef = s.resources["products"]
        template = s._blank(rdef)
        template.update(
            id_supplier="0",
            new=None,
            id_tax_rules_group="1",
            id_shop_default="1",
            state="1",
            additional_delivery_times="1",
            minimal_quantity="1",
            low_stock_alert="0",
            active="1",
            redirect_type="404",
            available_for_order="1",
            available_date="0000-00-00",
            show_condition="0",
            condition="new",
            show_price="1",
            indexed="1",
            visibility="both",
            pack_stock_type="3",
            width="0.000000",
            height="0.000000",
            depth="0.000000",
            type="simple",
            position_in_category="0",
        )
        ctemplate = s._blank(s.resources["combinations"])
        ctemplate.update(minimal_quantity="1", available_date="0000-00-00")
        if "available_now" in ctemplate:
            ctemplate.update(available_now=s._lang(""), available_later=s._lang(""))
        stemplate = {
            "id_shop": "1",
            "id_shop_group": "0",
            "depends_on_stock": "0",
            "out_of_stock": "2",
            "location": "",
        }
        n_man = len(s.tables["manufacturers"])
        start = self.now - timedelta(days=365)
        products, combos, stocks = (
            s.tables["products"],
            s.tables["combinations"],
            s.tables["stock_availables"],
        )
        sid = 1
        cid = 1
        img = 1
        self.catalogue: list[tuple[int, int, str, str, float]] = []  # pid, cid, name, ref, price
        positions: dict[int, int] = {}  # a product's place in its default category
        for pid in range(1, n + 1):
            rec = dict(template)
            name = f"{r.choice(_ADJ)} {r.choice(_NOUNS)} {pid}"
            price = round(r.uniform(4, 120), 2)
            added = start + timedelta(seconds=r.randrange(0, 300 * 86400))
            upd = added + timedelta(seconds=r.randrange(0, 60 * 86400))
            cat = r.choice(self.leaf_categories)
            positions[cat] = positions.get(cat, 0) + 1
            ref = f"SKU-{pid:06d}"
            images = [{"id": str(img + k)} for k in range(r.randint(1, 3))]
            img += len(images)
            rec.update(
                id=pid,
                position_in_category=str(positions[cat]),
                id_manufacturer=str(r.randint(1, n_man)),
                id_category_default=str(cat),
                reference=ref,
                ean13=f"{2000000000000 + pid * 7:013d}"[:13],
                weight=f"{r.uniform(0.1, 2):.6f}",
                price=f"{price:.6f}",
                wholesale_price=f"{price * 0.45:.6f}",
                date_add=_fmt(added),
                date_upd=_fmt(upd),
                name=s._lang(name),
                link_rewrite=s._lang(_slug(name)),
                description=s._lang(f"<p>{name}: a sandbox product.</p>"),
                description_short=s._lang(f"<p>{name}</p>"),
                available_now=s._lang("In stock", "En stock"),
                available_later=s._lang(""),
                meta_title=s._lang(""),
                meta_description=s._lang(""),
                meta_keywords=s._lang(""),
                delivery_in_stock=s._lang(""),
                delivery_out_stock=s._lang(""),
                associations={"categories": [{"id": "2"}, {"id": str(cat)}], "images": images},
            )
            products[pid] = rec
            shapes = self.shapes
            # like PrestaShop's demo shop: most products have a supplier and features
            rec["id_supplier"] = str(shapes.choice((1, 1, 2))) if shapes.random() < 0.85 else "0"
            if shapes.random() < 0.8:
                feats = [{"id": "1", "id_feature_value": str(shapes.randint(1, 5))}]
                if shapes.random() < 0.5:
                    feats.append({"id": "2", "id_feature_value": str(shapes.randint(6, 9))})
                rec["associations"]["product_features"] = feats
            has_combos = r.random() < share
            rec["product_type"] = "combinations" if has_combos else "standard"
            draw = shapes.random()
            ref_shape = (
                "repeat"
                if draw < self.repeat_share
                else "none"
                if draw < self.repeat_share + self.no_ref_share
                else "own"
            )
            qty_total = 0
            combo_ids: list[int] = []
            if has_combos:
                k = r.randint(2, 4)
                if self.per_product is not None:
                    k = self.per_product  # the draw above keeps the random sequence
                sizes = r.sample(self.size_ids, k)
                color = r.choice(self.color_ids) if r.random() < 0.5 else None
                for j, size in enumerate(sizes):
                    values = [{"id": str(size)}] + ([{"id": str(color)}] if color else [])
                    c = dict(ctemplate)
                    c_ref, c_ean = (
                        f"{ref}-{self.value_names[size]}",
                        f"{3000000000000 + cid * 7:013d}",
                    )
                    if ref_shape == "repeat":
                        c_ref = ref
                    elif ref_shape == "none":
                        c_ref = ""
                        c_ean = (
                            ean13(f"{400638133:09d}{cid % 1000:03d}")
                            if shapes.random() < self.no_ref_ean_share
                            else ""
                        )
                    c.update(
                        id=cid,
                        id_product=str(pid),
                        reference=c_ref,
                        ean13=c_ean,
                        price=f"{(j * 1.5):.6f}",
                        default_on="1" if j == 0 else "0",
                        associations={"product_option_values": values, "images": images[:1]},
                    )
                    combos[cid] = c
                    combo_ids.append(cid)
                    q = r.randint(0, 60)
                    qty_total += q
                    stocks[sid] = dict(
                        stemplate,
                        id=sid,
                        id_product=str(pid),
                        id_product_attribute=str(cid),
                        quantity=str(q),
                    )
                    sid += 1
                    label = f"Size : {self.value_names[size]}" + (
                        f", Color : {self.value_names[color]}" if color else ""
                    )
                    self.catalogue.append(
                        (pid, cid, f"{name} - {label}", c["reference"], price + j * 1.5)
                    )
                    cid += 1
                rec["cache_default_attribute"] = str(combo_ids[0])
                rec["type"] = "simple"
            else:
                qty_total = r.randint(0, 200)
                self.catalogue.append((pid, 0, name, ref, price))
            s.combos_by_product[pid] = combo_ids
            stocks[sid] = dict(
                stemplate,
                id=sid,
                id_product=str(pid),
                id_product_attribute="0",
                quantity=str(qty_total),
            )
            sid += 1
        for row in stocks.values():
            s.stock_index[(int(row["id_product"]), int(row["id_product_attribute"]))] = row["id"]
            s.stock_by_product.setdefault(int(row["id_product"]), set()).add(row["id"])
        s.next_id["products"] = n + 1
        s.next_id["combinations"] = cid
        s.next_id["stock_availables"] = sid
        s.next_image_id = img

    def _customers(self, n: int) -> None:
        s, r = self.s, self.r
        base = self.now - timedelta(days=200)
        for k in range(1, n + 1):
            first, last = r.choice(_FIRST), r.choice(_LAST)
            persona = _PERSONAS[k % len(_PERSONAS)]
            if persona is not None:
                first, last = persona[0], persona[1]
            added = _fmt(base + timedelta(seconds=r.randrange(0, 60 * 86400)))
            s._insert(
                "customers",
                {
                    "id_default_group": "3",
                    "id_lang": "1",
                    "newsletter_date_add": "0000-00-00 00:00:00",
                    "last_passwd_gen": added,
                    "secure_key": f"{r.getrandbits(128):032x}",
                    "deleted": "0",
                    "passwd": f"$2y$10${r.getrandbits(200):050x}"[:60],
                    "lastname": last,
                    "firstname": first,
                    "email": f"customer.{k}@example.com",
                    "newsletter": str(k % 2),  # every other customer subscribed
                    "optin": str(k % 2),
                    "id_gender": "1",
                    "birthday": "0000-00-00",
                    "outstanding_allow_amount": "0.000000",
                    "active": "1",
                    "id_shop": "1",
                    "id_shop_group": "1",
                    "date_add": added,
                    "date_upd": added,
                    "reset_password_validity": "0000-00-00 00:00:00",
                    "associations": {"groups": [{"id": "3"}]},
                },
            )
            place = {
                "id_country": "21",
                "id_state": str(r.randint(1, 50)),
                "address1": f"{r.randint(1, 200)}, Main street",
                "postcode": f"{r.randint(10000, 95999)}",
                "city": r.choice(("New York", "Boston", "Chicago", "Seattle")),
                "phone": f"01{r.randint(10000000, 99999999)}",
            }
            if persona is not None:
                place.update(
                    id_country=str(persona[2]),
                    id_state="0",
                    city=persona[3],
                    postcode=persona[4],
                    address1=persona[5],
                )
            s._insert(
                "addresses",
                {
                    "id_customer": str(k),
                    **place,
                    "alias": "My address",
                    "lastname": last,
                    "firstname": first,
                    **({"company": "My Company", "address2": "2nd floor"} if k % 2 else {}),
                    "deleted": "0",
                    "date_add": added,
                    "date_upd": added,
                },
            )

    def _taxes(self) -> None:
        s = self.s
        for rid, (rate, name) in enumerate((("20.000", "VAT 20%"), ("10.000", "VAT 10%")), 1):
            if rid not in s.tables["taxes"]:
                s._insert(
                    "taxes",
                    {"rate": rate, "active": "1", "deleted": "0", "name": s._lang(name)},
                    rid=rid,
                )

    def _order_detail(self, oid: int, row: dict[str, str]) -> None:
        """The ``order_details`` record of one order row, as PaymentModule writes it: the
        unit's EAN-13 and weight (product + combination) copied at the order, the 20 % tax
        (tax 1, the ``taxes`` association: PrestaShop hides the detail's tax_rate)."""
        s = self.s
        pid, cid = int(row["product_id"]), int(row["product_attribute_id"])
        product = s.tables["products"].get(pid) or {}
        combination = s.tables["combinations"].get(cid) or {} if cid else {}
        weight = float(product.get("weight") or 0) + float(combination.get("weight") or 0)
        ean = str(combination.get("ean13") or product.get("ean13") or "")
        qty = int(row["product_quantity"])
        incl, excl = float(row["unit_price_tax_incl"]), float(row["unit_price_tax_excl"])
        s._insert(
            "order_details",
            {
                "id_order": str(oid),
                "product_id": str(pid),
                "product_attribute_id": str(cid),
                "group_reduction": "0.00",
                "download_deadline": "0000-00-00 00:00:00",
                "id_shop": "1",
                "product_name": row["product_name"],
                "product_quantity": str(qty),
                "product_quantity_in_stock": str(qty),
                "product_price": row["product_price"],
                "reduction_percent": "0.00",
                "product_ean13": ean,
                "product_reference": row["product_reference"],
                "product_weight": f"{weight:.6f}",
                "id_tax_rules_group": "1",
                "unit_price_tax_incl": f"{incl:.6f}",
                "unit_price_tax_excl": f"{excl:.6f}",
                "total_price_tax_incl": f"{incl * qty:.6f}",
                "total_price_tax_excl": f"{excl * qty:.6f}",
                "original_product_price": row["product_price"],
                "associations": {"taxes": [{"id": "1"}]},
            },
            rid=int(row["id"]),
        )
        row["product_ean13"] = ean  # the order's row shows the detail's

    def _checkout_message(self, oid: int, cust: int, added: datetime) -> None:
        """A customer_thread of the order with the customer's checkout message, as
        PaymentModule::validateOrder keeps it (id_contact 0, status open, not private)."""
        s = self.s
        customer = s.tables["customers"].get(cust) or {}
        at = _fmt(added)
        thread = s._insert(
            "customer_threads",
            {
                "id_lang": "1",
                "id_shop": "1",
                "id_customer": str(cust),
                "id_order": str(oid),
                "id_product": "0",
                "id_contact": "0",
                "email": str(customer.get("email") or ""),
                "token": f"{oid:012x}"[-12:].upper(),
                "status": "open",
                "date_add": at,
                "date_upd": at,
            },
        )
        text = _CHECKOUT_MESSAGES[oid // 4 % len(_CHECKOUT_MESSAGES)]
        s._insert(
            "customer_messages",
            {
                "id_employee": "0",
                "id_customer_thread": str(thread["id"]),
                "message": text,
                "private": "0",
                "date_add": at,
                "date_upd": at,
                "read": "0",
            },
        )

    def _orders(self, n: int) -> None:
        s, r = self.s, self.r
        if not n or not self.catalogue:
            return
        self._taxes()
        span = 120 * 86400
        starts = sorted(r.randrange(0, span) for _ in range(n))
        states = [st for st, w in _STATE_MIX for _ in range(w)]
        n_cust = len(s.tables["customers"])
        rdef = s.resources["orders"]
        template = s._blank(rdef)
        template.update(
            id_cart="0",
            id_currency="1",
            id_lang="1",
            id_shop_group="1",
            id_shop="1",
            conversion_rate="1.000000",
            round_mode="2",
            round_type="2",
            carrier_tax_rate="20.000",
        )
        row_id = 1
        for oid, offset in enumerate(starts, start=1):
            added = self.now - timedelta(seconds=span) + timedelta(seconds=offset)
            state = r.choice(states)
            module, payment, first = r.choice(_PAYMENTS)
            chain = ([first] if first else []) + _CHAINS[state]
            if state == 10:
                chain, module, payment = [10], "ps_wirepayment", "Bank transfer"
            chain = [c for i, c in enumerate(chain) if i == 0 or c != chain[i - 1]]
            room = max(1, int((self.now - added).total_seconds()))
            steps = sorted(r.randrange(0, room) for _ in range(len(chain) - 1))
            times = [added] + [added + timedelta(seconds=st) for st in steps]
            cust = r.randint(1, n_cust)
            rows = []
            total = 0.0
            for _ in range(r.randint(1, 3)):
                pid, cid, name, ref, price = r.choice(self.catalogue)
                qty = r.randint(1, 3)
                total += price * 1.2 * qty
                rows.append(
                    {
                        "id": str(row_id),
                        "product_id": str(pid),
                        "product_attribute_id": str(cid),
                        "product_quantity": str(qty),
                        "product_name": name,
                        "product_reference": ref,
                        "product_ean13": "",
                        "product_isbn": "",
                        "product_upc": "",
                        "product_price": f"{price:.6f}",
                        "id_customization": "0",
                        "unit_price_tax_incl": f"{price * 1.2:.6f}",
                        "unit_price_tax_excl": f"{price:.6f}",
                    }
                )
                row_id += 1
            for row in rows:  # each row is an order_details record too (the same id)
                self._order_detail(oid, row)
            carrier = r.choice((1, 2))
            shipping = 0.0 if carrier == 1 else 7.0
            paid = ORDER_STATES[state][4][1] == "1"
            rec = dict(template)
            rec.update(
                id=oid,
                id_address_delivery=str(cust),
                id_address_invoice=str(cust),
                id_cart=str(oid),
                id_customer=str(cust),
                id_carrier=str(carrier),
                current_state=str(chain[-1]),
                module=module,
                payment=payment,
                invoice_number=str(oid) if paid else "0",
                invoice_date=_fmt(times[min(1, len(times) - 1)])
                if paid
                else "0000-00-00 00:00:00",
                delivery_number="0",
                delivery_date="0000-00-00 00:00:00",
                valid="1" if ORDER_STATES[chain[-1]][4][0] == "1" else "0",
                date_add=_fmt(added),
                date_upd=_fmt(times[-1]),
                secure_key=f"{r.getrandbits(128):032x}",
                total_paid=f"{total + shipping:.6f}",
                total_paid_tax_incl=f"{total + shipping:.6f}",
                total_paid_tax_excl=f"{total / 1.2 + shipping / 1.2:.6f}",
                total_paid_real=f"{total + shipping:.6f}" if paid else "0.000000",
                total_products=f"{total / 1.2:.6f}",
                total_products_wt=f"{total:.6f}",
                total_shipping=f"{shipping:.6f}",
                total_shipping_tax_incl=f"{shipping:.6f}",
                total_shipping_tax_excl=f"{shipping / 1.2:.6f}",
                reference="".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(9)),
                note="Leave the parcel at the door" if oid % 3 == 1 else "",
                associations={"order_rows": rows},
            )
            if oid % 3 == 0:  # a gift with a message (no random draw: the rest stays as seeded)
                rec.update(gift="1", gift_message=f"Happy birthday! A gift from order {oid}")
            s.tables["orders"][oid] = rec
            if oid % 4 == 2:  # the customer wrote a message at checkout (no random draw)
                self._checkout_message(oid, cust, added)
            for st, at in zip(chain, times, strict=True):
                s._insert(
                    "order_histories",
                    {
                        "id_employee": "0",
                        "id_order_state": str(st),
                        "id_order": str(oid),
                        "date_add": _fmt(at),
                    },
                )
            shipped = state in (4, 5)
            s._insert(
                "order_carriers",
                {
                    "id_order": str(oid),
                    "id_carrier": str(carrier),
                    "id_order_invoice": str(oid) if paid else "0",
                    "weight": "0.000000",
                    "shipping_cost_tax_excl": f"{shipping / 1.2:.6f}",
                    "shipping_cost_tax_incl": f"{shipping:.6f}",
                    "tracking_number": f"SBX{oid:08d}" if shipped else "",
                    "date_add": _fmt(added),
                },
            )
        s.next_id["orders"] = n + 1
