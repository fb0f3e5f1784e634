"""The sandbox's own wire format: XML and JSON output as PrestaShop 8.x writes them; XML input.

Written from ``WebserviceOutputXML`` / ``WebserviceOutputJSON`` / ``WebserviceOutputBuilder``
behaviour (``../shared/prestashop/WEBSERVICE.md`` sections 2 and 4) and checked against the
real recordings; it shares nothing with omsflow's client. XML rules: ``\\n`` after every
element, one TAB before fields and association items, CDATA everywhere (1.7.8+ rule, empty
values included), ``xlink:href`` on linked fields except ``id_*`` fields whose value is 0,
``notFilterable="true"`` on getter fields. JSON rules: empty list ``[]``, ``display`` switches to
the plural list, one language gives a string, several a list of ``{id, value}``, 8.x
``array_filter`` on detail objects, INT columns as ints and the rest as strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from defusedxml import ElementTree as DET

from sandbox.schema import ROOT_DESCRIPTIONS, AssocDef, FieldDef, ResourceDef
from sandbox.store import Record, SandboxStore, WebserviceFault

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n'
TAIL = "</prestashop>\n"

#: display selection: field name -> None (whole field / association) or sub-field names
Display = dict[str, list[str] | None]

_FORMATS = {
    "i": "isUnsignedId",
    "b": "isBool",
    "d": "isPrice",
    "d3": "isFloat",
    "t": "isDate",
    "D": "isDateFormat",
    "s": "isGenericName",
    "L": "isGenericName",
    "N": "",
}


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


class XmlRenderer:
    """Renders records of one store for one base URL (``http://host:port``)."""

    def __init__(self, store: SandboxStore, base: str, langs: Sequence[int] | None = None) -> None:
        self.store = store
        self.base = base
        self.api = base + "/api/"
        self.langs = list(langs) if langs is not None else store.lang_ids
        self._cacheable = langs is None or list(langs) == store.lang_ids

    # -------------------------------------------------------------- fields

    def _value(self, rdef: ResourceDef, rec: Record, f: FieldDef) -> Any:
        if f.name == "id":
            return str(rec["id"])
        if f.getter:
            return self.store.getter_value(rdef.name, rec, f.name)
        return rec.get(f.name, "")

    def _cdata(self, value: str) -> str:
        # before 1.7.8.0 an empty value was rendered <x></x>, without CDATA
        return cdata(value) if value or self.store.cdata_always else ""

    def field(self, rdef: ResourceDef, rec: Record, f: FieldDef, bare: bool = False) -> str:
        """One field node; ``bare``: a multilingual field an answer to a write did not
        receive (a plain PHP string, not a per-language array: no language links)."""
        value = self._value(rdef, rec, f)
        name = f.name
        if f.is_lang:
            api = self.api
            if bare:
                inner = "".join(
                    f'<language id="{lang}">{self._cdata("")}</language>' for lang in self.langs
                )
            else:
                inner = "".join(
                    f'<language id="{lang}" xlink:href="{api}languages/{lang}">'
                    f"{self._cdata(value.get(lang, ''))}</language>"
                    for lang in self.langs
                )
            return f"\t<{name}>{inner}</{name}>\n"
        if value is None:
            value = ""
        attrs = ""
        if f.xlink and not (name.startswith("id_") and value in ("", "0")):
            if name == "id_default_image":
                attrs = f' xlink:href="{self.api}images/products/{rec["id"]}/{value}"'
            else:
                attrs = f' xlink:href="{self.api}{f.xlink}/{value}"'
        if f.getter:
            attrs += ' notFilterable="true"'
        return f"\t<{name}{attrs}>{self._cdata(value)}</{name}>\n"

    # -------------------------------------------------------------- associations

    def _item_href(self, rdef: ResourceDef, rec: Record, a: AssocDef, item_id: str) -> str:
        if a.api in ("images", "images/products"):
            pid = rec["id"] if rdef.name == "products" else rec.get("id_product", "0")
            return f"{self.api}images/products/{pid}/{item_id}"
        return f"{self.api}{a.api}/{item_id}"

    def association(
        self, rdef: ResourceDef, rec: Record, a: AssocDef, subs: list[str] | None
    ) -> str:
        items = self.store.assoc_items(rdef.name, rec, a.name)
        head = (
            f'<{a.name} nodeType="{a.node}" virtualEntity="true"'
            if a.api is None
            else f'<{a.name} nodeType="{a.node}" api="{a.api}"'
        )
        if not items:
            return head + "/>\n"
        parts = [head, ">\n"]
        fields = [f for f in a.fields if subs is None or f.name in subs]
        for item in items:
            iid = item.get("id", "")
            if a.api is None:
                parts.append(f"\t<{a.node}>\n")
            else:
                href = self._item_href(rdef, rec, a, iid)
                parts.append(f'\t<{a.node} xlink:href="{href}">\n')
            for f in fields:
                v = item.get(f.name, "")
                if f.name == "id" and a.id_xlink:
                    parts.append(
                        f'\t<id xlink:href="{self._item_href(rdef, rec, a, iid)}">'
                        f"{self._cdata(v)}</id>\n"
                    )
                elif f.xlink:  # association fields keep their link even for 0
                    parts.append(
                        f'\t<{f.name} xlink:href="{self.api}{f.xlink}/{v}">'
                        f"{self._cdata(v)}</{f.name}>\n"
                    )
                else:
                    parts.append(f"\t<{f.name}>{self._cdata(v)}</{f.name}>\n")
            parts.append(f"\t</{a.node}>\n")
        parts.append(f"</{a.name}>\n")
        return "".join(parts)

    # -------------------------------------------------------------- entities

    def entity_full(
        self, rdef: ResourceDef, rec: Record, bare: frozenset[str] = frozenset()
    ) -> str:
        """The full view (detail, POST/PUT answer, ``display=full`` item); cached per record.
        ``bare``: multilingual fields a write did not receive (see ``field``)."""
        key = (rdef.name, rec["id"])
        cacheable = self._cacheable and not bare
        if cacheable:
            slot = self.store.render_cache.get(key)
            if slot is not None and self.base in slot:
                return str(slot[self.base])
        parts = [f"<{rdef.node}>\n"]
        parts.extend(self.field(rdef, rec, f, f.name in bare) for f in rdef.fields)
        if rdef.associations:
            parts.append("<associations>\n")
            parts.extend(self.association(rdef, rec, a, None) for a in rdef.associations)
            parts.append("</associations>\n")
        parts.append(f"</{rdef.node}>\n")
        text = "".join(parts)
        if cacheable and rdef.name in (
            "products",
            "combinations",
            "orders",
            "stock_availables",
        ):
            self.store.render_cache.setdefault(key, {})[self.base] = text
        return text

    def entity_display(self, rdef: ResourceDef, rec: Record, display: Display) -> str:
        parts = [f"<{rdef.node}>\n"]
        parts.extend(self.field(rdef, rec, f) for f in rdef.fields if f.name in display)
        named = [a for a in rdef.associations if a.name in display]
        if named:
            parts.append("<associations>\n")
            parts.extend(self.association(rdef, rec, a, display[a.name]) for a in named)
            parts.append("</associations>\n")
        parts.append(f"</{rdef.node}>\n")
        return "".join(parts)

    def list_minimal(self, rdef: ResourceDef, ids: Iterable[int]) -> str:
        api = self.api + rdef.name + "/"
        node = rdef.node
        body = "".join(f'<{node} id="{i}" xlink:href="{api}{i}"/>\n' for i in ids)
        return f"{HEAD}<{rdef.name}>\n{body}</{rdef.name}>\n{TAIL}"

    def list_full(self, rdef: ResourceDef, recs: Iterable[Record], display: Display | None) -> str:
        if display is None:
            body = "".join(self.entity_full(rdef, r) for r in recs)
        else:
            body = "".join(self.entity_display(rdef, r, display) for r in recs)
        return f"{HEAD}<{rdef.name}>\n{body}</{rdef.name}>\n{TAIL}"

    def detail(
        self,
        rdef: ResourceDef,
        recs: Sequence[Record],
        bare: Sequence[frozenset[str]] = (),
    ) -> str:
        marks = list(bare) + [frozenset()] * (len(recs) - len(bare))
        return (
            HEAD
            + "".join(self.entity_full(rdef, r, b) for r, b in zip(recs, marks, strict=True))
            + TAIL
        )

    # -------------------------------------------------------------- schemas, root

    def schema(self, rdef: ResourceDef, kind: str) -> str:
        parts = [HEAD, f"<{rdef.node}>\n"]
        for f in rdef.fields:
            if kind == "blank":
                if f.read_only:
                    continue
                if f.is_lang:
                    inner = "".join(
                        f'<language id="{lang}">{cdata("")}</language>' for lang in self.langs
                    )
                    parts.append(f"\t<{f.name}>{inner}</{f.name}>\n")
                else:
                    parts.append(f"\t<{f.name}>{cdata('')}</{f.name}>\n")
                continue
            if f.name == "id":
                continue
            attrs = ' notFilterable="true"' if f.getter else ""
            if f.required:
                attrs += ' required="true"'
            if f.read_only:
                attrs += ' read_only="true"'
            if _FORMATS[f.kind]:
                attrs += f' format="{_FORMATS[f.kind]}"'
            if f.read_only:
                attrs += ' readOnly="true"'
            if f.is_lang:
                inner = "".join(
                    f'<language id="{lang}" xlink:href="{self.api}languages/{lang}" '
                    'format="isUnsignedId"></language>'
                    for lang in self.langs
                )
                parts.append(f"\t<{f.name}{attrs}>{inner}</{f.name}>\n")
            else:
                parts.append(f"\t<{f.name}{attrs}></{f.name}>\n")
        if rdef.associations:
            parts.append("<associations>\n")
            for a in rdef.associations:
                head = (
                    f'<{a.name} nodeType="{a.node}" virtualEntity="true">'
                    if a.api is None
                    else f'<{a.name} nodeType="{a.node}" api="{a.api}">'
                )
                subs = "".join(f"\t<{f.name}>{cdata('')}</{f.name}>\n" for f in a.fields)
                parts.append(f"{head}\n\t<{a.node}>\n{subs}\t</{a.node}>\n</{a.name}>\n")
            parts.append("</associations>\n")
        parts.append(f"</{rdef.node}>\n{TAIL}")
        return "".join(parts)

    def api_root(self, perms: Mapping[str, frozenset[str]], shop_name: str) -> str:
        parts = [HEAD, f'<api shopName="{_attr(shop_name)}">\n']
        for name in sorted(perms):
            methods = perms[name]
            if not methods:
                continue
            flags = " ".join(
                f'{m.lower()}="{"true" if m in methods else "false"}"'
                for m in ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD")
            )
            href = f"{self.api}{name}"
            desc, has_schema = ROOT_DESCRIPTIONS.get(name, (name, name != "images"))
            parts.append(f'<{name} xlink:href="{href}" {flags}>\n')
            parts.append(f'<description xlink:href="{href}" {flags}>\n{desc}</description>\n')
            if has_schema:
                parts.append(f'<schema xlink:href="{href}?schema=blank" type="blank"/>\n')
                parts.append(f'<schema xlink:href="{href}?schema=synopsis" type="synopsis"/>\n')
            parts.append(f"</{name}>\n")
        parts.append("</api>\n" + TAIL)
        return "".join(parts)


def errors_xml(errors: Sequence[tuple[int, str]]) -> str:
    body = "".join(
        f"<error>\n<code>{cdata(str(code))}</code>\n<message>{cdata(msg)}</message>\n</error>\n"
        for code, msg in errors
    )
    return f"{HEAD}<errors>\n{body}</errors>\n{TAIL}"


# ------------------------------------------------------------------------------------ JSON


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def errors_json(errors: Sequence[tuple[int, str]]) -> str:
    return _dumps({"errors": [{"code": c, "message": m} for c, m in errors]})


def _int(value: Any) -> Any:
    text = str(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else value


def _bool(value: Any) -> Any:
    return str(value) == "1"


#: what a real 8.2.1's write answers type differently in JSON, per (resource, method): the
#: values the entity class itself set during add()/update() (seen in the conformance test)
WRITTEN_TYPES: dict[tuple[str, str], dict[str, Any]] = {
    ("order_histories", "POST"): {"id_order_state": _int},  # changeIdOrderState((int) ...)
    ("combinations", "PUT"): {"default_on": _bool},
    ("categories", "POST"): {"level_depth": _int, "nb_products_recursive": _int},
    ("product_options", "POST"): {"position": _int},  # getHigherPosition() + 1
    ("product_option_values", "POST"): {"position": _int},
}

_JSON_TEXT_SLOT = "\x00json"  # render-cache slot of the encoded JSON view (XML: base URLs)


class JsonRenderer:
    """8.x JSON output as a real 8.2.1 writes it: the values come from the database as PHP
    strings, so every value is a JSON string except the entity's own ``id`` (cast to int),
    the getters that return a PHP int (``json_int``: ``id_default_combination``...) and the
    nulls (``new``, ``id_default_image`` without images). Language ids are strings too."""

    def __init__(self, store: SandboxStore, langs: Sequence[int] | None = None) -> None:
        self.store = store
        self.langs = list(langs) if langs is not None else store.lang_ids

    @staticmethod
    def _typed(f: FieldDef, value: Any) -> Any:
        if value is None:
            return None
        if f.json_int and re.fullmatch(r"-?\d+", str(value)):
            return int(value)
        return str(value)

    def entity(
        self,
        rdef: ResourceDef,
        rec: Record,
        display: Display | None,
        bare: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """One entity as a JSON object (the encoded full view is cached by ``_entity_text``).
        ``bare``: multilingual fields a write did not receive (plain empty strings in PHP)."""
        out: dict[str, Any] = {}
        for f in rdef.fields:
            if display is not None and f.name not in display:
                continue
            if f.name == "id":
                out["id"] = rec["id"]
                continue
            value: Any = (
                self.store.getter_value(rdef.name, rec, f.name)
                if f.getter
                else rec.get(f.name, "")
            )
            if f.is_lang:
                if f.name in bare:
                    out[f.name] = ""
                elif len(self.langs) == 1:
                    out[f.name] = value.get(self.langs[0], "")
                else:
                    out[f.name] = [
                        {"id": str(lang), "value": value.get(lang, "")} for lang in self.langs
                    ]
            else:
                out[f.name] = self._typed(f, value)
        assocs: dict[str, Any] = {}
        for a in rdef.associations:
            if display is not None and a.name not in display:
                continue
            subs = None if display is None else display[a.name]
            items = self.store.assoc_items(rdef.name, rec, a.name)
            if not items:
                continue
            assocs[a.name] = [
                {
                    f.name: self._typed(f, it.get(f.name, ""))
                    for f in a.fields
                    if subs is None or f.name in subs
                }
                for it in items
            ]
        if assocs:
            out["associations"] = assocs
        return out

    def detail(
        self,
        rdef: ResourceDef,
        recs: Sequence[Record],
        bare: Sequence[frozenset[str]] = (),
        written: str | None = None,
    ) -> str:
        """A detail view; ``written``: the method of a write this answers (PHP renders the
        object it just saved, not a reloaded one: other types, see ``WRITTEN_TYPES``)."""
        doc: dict[str, Any] = {}
        marks = list(bare) + [frozenset()] * (len(recs) - len(bare))
        for rec, b in zip(recs, marks, strict=True):
            item = self.entity(rdef, rec, None, b)
            if written is not None:
                item["id"] = str(item["id"])  # set from the XML (PUT) or Insert_ID() (POST)
                for name, cast in WRITTEN_TYPES.get((rdef.name, written), {}).items():
                    if name in item and item[name] is not None:
                        item[name] = cast(item[name])
            if self.store.json_filter:  # 8.x: array_filter drops every falsy value
                item = {k: v for k, v in item.items() if v not in ("", "0", 0, None, False)}
            doc[rdef.node] = item
        return _dumps(doc)

    def listing(
        self, rdef: ResourceDef, recs: Sequence[Record], display: Display | None, minimal: bool
    ) -> str:
        if not recs:
            return "[]"
        if minimal:
            return _dumps({rdef.name: [{"id": r["id"]} for r in recs]})
        if display is None and self.langs == self.store.lang_ids:
            return f'{{"{rdef.name}":[' + ",".join(self._entity_text(rdef, r) for r in recs) + "]}"
        return _dumps({rdef.name: [self.entity(rdef, r, display) for r in recs]})

    def _entity_text(self, rdef: ResourceDef, rec: Record) -> str:
        """The encoded full view of one entity, cached beside its object."""
        slot = self.store.render_cache.get((rdef.name, rec["id"]))
        if slot is not None and _JSON_TEXT_SLOT in slot:
            return str(slot[_JSON_TEXT_SLOT])
        text = _dumps(self.entity(rdef, rec, None))
        if rdef.name in ("products", "combinations", "orders", "stock_availables"):
            self.store.render_cache.setdefault((rdef.name, rec["id"]), {})[_JSON_TEXT_SLOT] = text
        return text


# ------------------------------------------------------------------------------------ input


def parse_body(body: bytes) -> list[tuple[dict[str, Any], dict[str, list[dict[str, str]]]]]:
    """The entities of a write body: ``[(fields, associations)]``; parse errors are code 127.

    A field with ``<language id="N">`` children becomes ``{N: text}``. Values keep their
    whitespace, as PrestaShop keeps it for string fields.
    """
    text = body.decode("utf-8", errors="replace")
    if text.startswith("xml="):
        text = text[4:]
    try:
        root = DET.fromstring(text.encode("utf-8")) if text.strip() else None
        if root is None:
            raise ValueError("Start tag expected, '<' not found")
    except Exception as exc:
        # SimpleXMLElement's exception text (PHP also reports each libxml error first, as
        # code 3 warnings whose wording is libxml's own: not imitated)
        msg = "String could not be parsed as XML"
        raise WebserviceFault(
            500, (127, f"XML error : {msg}\nXML length : {len(text)}\nOriginal XML : {text}")
        ) from exc
    out = []
    for ent in root:
        values: dict[str, Any] = {}
        assocs: dict[str, list[dict[str, str]]] = {}
        for child in ent:
            tag = _local(child.tag)
            if tag == "associations":
                for a in child:
                    assocs[_local(a.tag)] = [
                        {_local(sub.tag): (sub.text or "") for sub in item} for item in a
                    ]
                continue
            langs = [c for c in child if _local(c.tag) == "language"]
            if langs:
                values[tag] = {
                    int(c.get("id", "0")): (c.text or "")
                    for c in langs
                    if c.get("id", "").isdigit()
                }
            else:
                values[tag] = child.text or ""
        out.append((values, assocs))
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
