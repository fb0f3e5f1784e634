"""List query parameters of the sandbox: display, filter, sort, limit, date=1, language.

Follows ``WebserviceRequest::manageFilters`` / ``setFieldsToDisplay`` and
``SQLUtils::getSQLRetrieveFilter`` (``WEBSERVICE.md`` section 3): ``[a|b]`` is IN, ``[a,b]``
an inclusive BETWEEN, ``%[x]%`` LIKE, ``>[x]`` / ``<[x]`` strict, ``![x]`` NOT, an unknown
prefix such as ``>=[x]`` silently disables the filter; ``date_add`` / ``date_upd`` need
``date=1`` to be filtered or sorted (codes 32 / 38 otherwise). No ``sort`` means no ORDER BY:
MySQL walks whichever index it picked, which a real 8.2.1 shows as ascending ids for most
resources (products, combinations, stock rows, orders...) but ``NATURAL_ORDER`` for a few (the
order states come back 2..9,11,12,13,1,10: by ``module_name``). The sandbox answers the same,
so a client that pages without ``sort=[id_ASC]`` meets the same surprise as on a real store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.render import Display
from sandbox.schema import FieldDef, ResourceDef
from sandbox.store import OWNERS, Record, SandboxStore, WebserviceFault

_DATE_FIELDS = ("date_add", "date_upd")
Predicate = Callable[[Record], bool]


@dataclass
class ListQuery:
    """A parsed list request."""

    display: Display | None = None  # None: no display parameter
    display_full: bool = False
    predicates: list[Predicate] = field(default_factory=list)
    sort: list[tuple[FieldDef, bool]] = field(default_factory=list)  # (field, descending)
    offset: int = 0
    count: int | None = None
    langs: list[int] | None = None
    #: ``filter[id_product]=[a|b]`` on stock_availables: the only products whose rows can
    #: match (read from the store's index instead of scanning; the filter still applies)
    stock_products: list[int] | None = None
    #: ``filter[<owner>]=[a|b]`` on a resource of ``store.OWNERS`` (order details of a
    #: page of orders...): the only owners whose records can match (the filter still applies)
    owners: list[int] | None = None


def _available(rdef: ResourceDef, with_dates: bool) -> list[str]:
    return [f.name for f in rdef.fields if with_dates or f.name not in _DATE_FIELDS]


def _plain_filters(rdef: ResourceDef, with_dates: bool) -> list[str]:
    """``manageFilters``' ``$available_filters``: the fields that are not multilingual."""
    return [n for n in _available(rdef, with_dates) if not rdef.by_name[n].is_lang]


def parse_display(rdef: ResourceDef, raw: str) -> tuple[Display | None, bool]:
    """``display`` as ``WebserviceRequest::setFieldsToDisplay``: ``full``, ``minimum`` (the ids
    view: ``(None, False)``) or ``[f1,assoc[s1,s2]]``. A plain name must be a field (an
    association named without ``[...]`` is error 35, as in PrestaShop) and every sub-field
    must belong to its association (``id`` always does)."""
    if raw == "full":
        return None, True
    if raw == "minimum":
        return None, False
    avail = ", ".join(f.name for f in rdef.fields)
    m = re.fullmatch(r"\[(.*)\]", raw, flags=re.S)
    if not m:
        raise WebserviceFault(
            400,
            (
                36,
                "The 'display' syntax is wrong. You can set 'full' or "
                f"'[field_1,field_2,field_3,...]'. These are available: {avail}",
            ),
        )
    out: Display = {}
    for part in _split_top(m.group(1)):
        name, bracket, rest = part.partition("[")
        name = name.strip()
        assoc = rdef.assoc(name)
        subs = rest[:-1].split(",") if bracket else None
        if subs is None:
            ok = name in rdef.by_name
        else:
            ok = assoc is not None and all(
                s == "id" or any(f.name == s for f in assoc.fields) for s in subs
            )
        if not ok:
            detail = f" (details : {subs!r})" if subs is not None else ""
            raise WebserviceFault(
                400,
                (
                    35,
                    f'Unable to display this field "{name}{detail}". '
                    f"However, these are available: {avail}",
                ),
            )
        if subs is None:
            out[name] = None
        else:
            prev = out.get(name)
            out[name] = (prev or []) + [s for s in subs if s not in (prev or [])]
    return out, False


def _split_top(text: str) -> list[str]:
    """``parseDisplayFields``: split on commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
        depth += (ch == "[") - (ch == "]")
    if cur != "":
        parts.append(cur)
    return parts


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


NUMERIC_KINDS = frozenset({"i", "b", "d", "d3"})
"""Field kinds the webservice compares and sorts as numbers."""


def _cmp_key(f: FieldDef) -> Callable[[str], Any]:
    if f.kind in NUMERIC_KINDS:
        return lambda v: (0, _number(v) or 0.0, "")
    return lambda v: (1, 0.0, str(v).lower())


def _predicate(
    store: SandboxStore, rdef: ResourceDef, f: FieldDef, raw: str, langs: Sequence[int]
) -> Predicate | None:
    numeric = f.kind in NUMERIC_KINDS
    name = f.name

    def on(test: Callable[[Any], bool], negate: bool = False) -> Predicate:
        """The record matches when ``test`` holds for its value (a multilingual field: for
        the value in any language asked for; ``negate``: for none of them)."""
        if f.is_lang:
            if negate:
                return lambda rec: not any(test(v) for v in _lang_values(rec, name, langs))
            return lambda rec: any(test(v) for v in _lang_values(rec, name, langs))
        if name == "id":
            if negate:
                return lambda rec: not test(str(rec["id"]))
            return lambda rec: test(str(rec["id"]))
        if negate:
            return lambda rec: not test(rec.get(name, ""))
        return lambda rec: test(rec.get(name, ""))

    def eq(a: str, b: str) -> bool:
        if numeric:
            na, nb = _number(a), _number(b)
            if na is not None and nb is not None:
                return na == nb
        return a.strip().lower() == b.strip().lower()

    m = re.fullmatch(r"(!?)\[(.*)\]", raw, flags=re.S)
    if m and not (m.group(1) == "" and "," in m.group(2) and "|" not in m.group(2)):
        wanted = m.group(2).split("|")
        # eq() against every wanted value at once: numbers by value (a numeric field),
        # the rest by their trimmed lower-case text
        numbers = {n for w in wanted if (n := _number(w)) is not None} if numeric else set()
        texts = {w.strip().lower() for w in wanted}
        plain = {w.strip().lower() for w in wanted if not numeric or _number(w) is None}

        def one_of(v: str) -> bool:
            n = _number(v) if numeric else None
            if n is not None:
                return n in numbers or v.strip().lower() in plain
            return v.strip().lower() in texts

        return on(one_of, negate=m.group(1) == "!")
    if m:  # [a,b]: BETWEEN, inclusive, bounds sorted; only digits . : - space allowed
        parts = m.group(2).split(",")
        if len(parts) == 2 and all(re.fullmatch(r"[0-9.: \-]+", p) for p in parts):
            # PHP sort() compares numeric strings as numbers ('51' < '100')
            lo, hi = sorted(
                (p.strip() for p in parts),
                key=lambda t: (0, _number(t) or 0.0, t) if _number(t) is not None else (1, 0.0, t),
            )
            if numeric and _number(lo) is not None and _number(hi) is not None:
                nlo, nhi = float(lo), float(hi)
                return on(lambda v: nlo <= (_number(v) or 0.0) <= nhi)
            return on(lambda v: lo <= v <= hi)
        whole = m.group(2)
        return on(lambda v: eq(v, whole))
    m = re.fullmatch(r"(%?)\[(.*)\](%?)", raw, flags=re.S)
    if m and (m.group(1) or m.group(3)):
        needle = m.group(2).lower()
        if m.group(1) and m.group(3):
            return on(lambda v: needle in v.lower())
        if m.group(3):
            return on(lambda v: v.lower().startswith(needle))
        return on(lambda v: v.lower().endswith(needle))
    m = re.fullmatch(r"([<>])\[(.*)\]", raw, flags=re.S)
    if m:
        op, ref = m.group(1), m.group(2)
        nref = _number(ref)
        if numeric and nref is not None:
            if op == ">":
                return on(lambda v: (_number(v) or 0.0) > nref)
            return on(lambda v: (_number(v) or 0.0) < nref)
        if op == ">":
            return on(lambda v: v > ref)
        return on(lambda v: v < ref)
    if "[" in raw or "]" in raw:
        return None  # an unknown operator such as >=[x]: the filter is silently dropped
    return on(lambda v: eq(v, raw))


def _lang_values(rec: Record, name: str, langs: Sequence[int]) -> list[str]:
    v = rec.get(name, "")
    return [v.get(lang, "") for lang in langs]


def parse_list_query(
    store: SandboxStore, rdef: ResourceDef, params: Mapping[str, str]
) -> ListQuery:
    """Parse the query string of a list GET; raises WebserviceFault with the real codes."""
    q = ListQuery()
    with_dates = params.get("date", "") not in ("", "0")
    if "language" in params:
        q.langs = parse_language(store, params["language"])
    langs = q.langs or store.lang_ids
    if "display" in params:
        q.display, q.display_full = parse_display(rdef, params["display"])
    for key, raw in params.items():
        m = re.fullmatch(r"filter\[([^\]]*)\]", key)
        if not m:
            continue
        name = m.group(1)
        f = rdef.by_name.get(name)
        if f is None or (name in _DATE_FIELDS and not with_dates):
            avail = _plain_filters(rdef, with_dates)
            guess = closest(name, avail)
            raise WebserviceFault(
                400,
                (
                    32,
                    f'This filter does not exist. Did you mean: "{guess}"? The full list is: "'
                    + '", "'.join(avail)
                    + '"',
                ),
            )
        if raw == "":
            raise WebserviceFault(400, (33, f'The filter "{name}" is malformed.'))
        if f.getter:
            raise WebserviceFault(
                400,
                (
                    34,
                    f'The field "{name}" is dynamic. '
                    "It is not possible to filter GET query with this field.",
                ),
            )
        pred = _predicate(store, rdef, f, raw, langs)
        if pred is not None:
            q.predicates.append(pred)
        m = re.fullmatch(r"\[(\d+(?:\|\d+)*)\]", raw)
        if rdef.name == "stock_availables" and name == "id_product" and m:
            q.stock_products = [int(x) for x in m.group(1).split("|")]
        if m and name == OWNERS.get(rdef.name):
            q.owners = [int(x) for x in m.group(1).split("|")]
    if "sort" in params:
        raw = params["sort"].strip()
        inner = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        for part in inner.split(","):
            m = re.fullmatch(r"(.+)_(asc|desc)", part.strip(), flags=re.I)
            if not m:
                raise WebserviceFault(
                    400,
                    (
                        37,
                        'The "sort" value has to be formed as this example: "field_ASC" or '
                        "'[field_1_DESC,field_2_ASC,field_3_ASC,...]' "
                        '("field" has to be an available field)',
                    ),
                )
            f = rdef.by_name.get(m.group(1))
            if f is None or f.getter or (f.name in _DATE_FIELDS and not with_dates):
                avail = _available(rdef, with_dates)
                plain = ", ".join(n for n in avail if not rdef.by_name[n].is_lang)
                i18n = ", ".join(n for n in avail if rdef.by_name[n].is_lang)
                raise WebserviceFault(
                    400,
                    (
                        38,
                        f"Unable to filter by this field. However, these are available: {plain}"
                        f", for i18n fields:{i18n}",
                    ),
                )
            q.sort.append((f, m.group(2).upper() == "DESC"))
    if "limit" in params:
        parts = params["limit"].split(",")
        if len(parts) > 2:
            raise WebserviceFault(
                400, (39, 'The "limit" value has to be formed as this example: "5,25" or "10"')
            )
        nums = [_php_int(p) for p in parts]
        if len(nums) == 1:
            q.count = nums[0]
        else:
            q.offset, q.count = nums[0], nums[1]
    return q


def _record_id(rec: Record) -> int:
    return int(rec["id"])


#: the resources a real 8.2.1 lists, without ``sort``, in the order of a secondary index (the
#: one MySQL picks for the webservice's query): the field it starts with, then the id
NATURAL_ORDER: dict[str, str] = {
    "order_states": "module_name",  # 2..9, 11, 12, 13, 1, 10 on a fresh install
    "order_histories": "id_order",
    "categories": "id_parent",
    "addresses": "id_customer",
}


def _natural_key(rdef: ResourceDef) -> Callable[[Record], Any]:
    name = NATURAL_ORDER.get(rdef.name)
    if name is None or name not in rdef.by_name:
        return _record_id
    numeric = rdef.by_name[name].kind in ("i", "b")

    def key(rec: Record) -> Any:
        value = rec.get(name) or ""
        return (_php_int(str(value)) if numeric else str(value), int(rec["id"]))

    return key


def _php_int(text: str) -> int:
    m = re.match(r"\s*(-?\d+)", text)
    return int(m.group(1)) if m else 0


def parse_language(store: SandboxStore, raw: str) -> list[int]:
    text = raw.strip()
    m = re.fullmatch(r"\[(\d+),(\d+)\]", text)
    if m:
        lo, hi = sorted((int(m.group(1)), int(m.group(2))))
        ids = list(range(lo, hi + 1))
    else:
        ids = (
            [int(p) for p in re.findall(r"\d+", text)]
            if re.fullmatch(r"\[?[\d|]+\]?", text)
            else []
        )
    if not ids:
        raise WebserviceFault(400, (79, "Languages syntax is not valid"))
    for i in ids:
        if i not in store.lang_ids:
            raise WebserviceFault(400, (80, f"Language ID {i} does not exist"))
    return ids


def select(store: SandboxStore, rdef: ResourceDef, q: ListQuery) -> list[Record]:
    """Apply filters, sort and limit to the records of ``rdef``."""
    if q.stock_products is not None:
        table = store.tables[rdef.name]
        ids = {i for p in q.stock_products for i in store.stock_by_product.get(p, ())}
        recs = [table[i] for i in sorted(ids) if i in table]
    elif q.owners is not None:
        table = store.tables[rdef.name]
        index = store.owned[rdef.name]
        ids = {i for o in q.owners for i in index.get(o, ())}
        recs = [table[i] for i in sorted(ids) if i in table]
    else:
        recs = list(store.records(rdef.name))
    for pred in q.predicates:
        recs = [r for r in recs if pred(r)]
    langs = q.langs or store.lang_ids
    if not q.sort:
        recs.sort(key=_natural_key(rdef))
    for f, desc in reversed(q.sort):
        recs.sort(key=_sort_key(f, langs), reverse=desc)
    if q.count is not None:
        recs = recs[q.offset : q.offset + max(q.count, 0)] if q.count > 0 else []
    elif q.offset:
        recs = recs[q.offset :]
    return recs


def _sort_key(f: FieldDef, langs: Sequence[int]) -> Callable[[Record], Any]:
    """A record's key for ``sort=[<f>_ASC|DESC]``: the id as a number; numeric fields by
    value, the rest by lower-case text (``_cmp_key``); a multilingual field in the first
    language asked for."""
    if f.name == "id":
        return _record_id
    name, key = f.name, _cmp_key(f)
    if f.is_lang:
        lang = langs[0]
        return lambda rec: key(str(rec.get(name, "").get(lang, "")))
    if f.kind in NUMERIC_KINDS:  # _cmp_key's (0, number, ""): the number alone orders alike
        return lambda rec: _number(str(rec.get(name, ""))) or 0.0
    return lambda rec: key(str(rec.get(name, "")))


def closest(word: str, candidates: Sequence[str]) -> str:
    """``WebserviceRequest::getClosest``: the smallest Levenshtein distance, the LAST one
    on a tie (``$lev <= $shortest``)."""
    best, shortest = "", -1
    for cand in candidates:
        lev = _distance(word, cand)
        if lev == 0:
            return cand
        if lev <= shortest or shortest < 0:
            best, shortest = cand, lev
    return best


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, for the "Did you mean" of error 32."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
