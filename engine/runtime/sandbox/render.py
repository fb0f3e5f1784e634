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

from engine.runtime.sandbox.schema import RESOURCES, AssocDef, FieldDef, ResourceDef
from engine.runtime.sandbox.store import Record, SandboxStore, WebserviceFault

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

    def field(self, rdef: ResourceDef, rec: Record, f: FieldDef) -> str:
        value = self._value(rdef, rec, f)
        name = f.name
        if f.is_lang:
            api = self.api
            inner = "".join(
                f'<language id="{lang}" xlink:href="{api}languages/{lang}">'
                f"{cdata(value.get(lang, ''))}</language>"
                for lang in self.langs
            )
            return f"\t<{name}>{inner}</{name}>\n"
        attrs = ""
        if f.xlink and not (name.startswith("id_") and value in ("", "0")):
            if name == "id_default_image":
                attrs = f' xlink:href="{self.api}images/products/{rec["id"]}/{value}"'
            else:
                attrs = f' xlink:href="{self.api}{f.xlink}/{value}"'
        if f.getter:
            attrs += ' notFilterable="true"'
        return f"\t<{name}{attrs}>{cdata(value)}</{name}>\n"

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
                        f"{cdata(v)}</id>\n"
                    )
                elif f.xlink and v not in ("", "0"):
                    parts.append(
                        f'\t<{f.name} xlink:href="{self.api}{f.xlink}/{v}">{cdata(v)}</{f.name}>\n'
                    )
                else:
                    parts.append(f"\t<{f.name}>{cdata(v)}</{f.name}>\n")
            parts.append(f"\t</{a.node}>\n")
        parts.append(f"</{a.name}>\n")
        return "".join(parts)

    # -------------------------------------------------------------- entities

    def entity_full(self, rdef: ResourceDef, rec: Record) -> str:
        """The full view (detail, POST/PUT answer, ``display=full`` item); cached per record."""
        key = (rdef.name, rec["id"])
        if self._cacheable:
            slot = self.store.render_cache.get(key)
            if slot is not None and self.base in slot:
                return str(slot[self.base])
        parts = [f"<{rdef.node}>\n"]
        parts.extend(self.field(rdef, rec, f) for f in rdef.fields)
        if rdef.associations:
            parts.append("<associations>\n")
            parts.extend(self.association(rdef, rec, a, None) for a in rdef.associations)
            parts.append("</associations>\n")
        parts.append(f"</{rdef.node}>\n")
        text = "".join(parts)
        if self._cacheable and rdef.name in (
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

    def detail(self, rdef: ResourceDef, recs: Iterable[Record]) -> str:
        return HEAD + "".join(self.entity_full(rdef, r) for r in recs) + TAIL

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
            desc = RESOURCES[name].description if name in RESOURCES else "The images"
            parts.append(f'<{name} xlink:href="{href}" {flags}>\n')
            parts.append(f'<description xlink:href="{href}" {flags}>{desc}</description>\n')
            if name in RESOURCES:
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


_JSON_TEXT_SLOT = "\x00json"  # render-cache slot of the encoded JSON view (XML: base URLs)


class JsonRenderer:
    """8.x JSON output (PHP >= 8.1 native ints; bools as "0"/"1" strings, PS >= 8.1.3)."""

    def __init__(self, store: SandboxStore, langs: Sequence[int] | None = None) -> None:
        self.store = store
        self.langs = list(langs) if langs is not None else store.lang_ids

    @staticmethod
    def _typed(kind: str, value: str) -> Any:
        if kind == "i" and re.fullmatch(r"-?\d+", value or ""):
            return int(value)
        return value

    def entity(self, rdef: ResourceDef, rec: Record, display: Display | None) -> dict[str, Any]:
        """One entity as a JSON object (the encoded full view is cached by ``_entity_text``)."""
        return self._entity(rdef, rec, display)

    def _entity(self, rdef: ResourceDef, rec: Record, display: Display | None) -> dict[str, Any]:
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
                if len(self.langs) == 1:
                    out[f.name] = value.get(self.langs[0], "")
                else:
                    out[f.name] = [
                        {"id": lang, "value": value.get(lang, "")} for lang in self.langs
                    ]
            else:
                out[f.name] = self._typed(f.kind, value)
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
                    f.name: self._typed(f.kind, it.get(f.name, ""))
                    for f in a.fields
                    if subs is None or f.name in subs
                }
                for it in items
            ]
        if assocs:
            out["associations"] = assocs
        return out

    def detail(self, rdef: ResourceDef, recs: Sequence[Record]) -> str:
        doc: dict[str, Any] = {}
        for rec in recs:
            doc[rdef.node] = {
                k: v
                for k, v in self.entity(rdef, rec, None).items()
                if v not in ("", "0", 0, None, False)
            }  # 8.x array_filter
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
    except Exception as exc:  # noqa: BLE001 - defusedxml refusals and expat errors alike
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WebserviceFault(
            500, (127, f"XML error : {msg}\nXML length : {len(text)}\nOriginal XML : {text}")
        ) from None
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
