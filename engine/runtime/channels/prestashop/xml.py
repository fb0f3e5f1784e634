"""PrestaShop webservice XML: parse what a store sends (hardened lxml: no DTD, no entities, no
network, no huge trees; a DOCTYPE is refused) into the same plain shape as its JSON output, and
build the ``<prestashop>`` write envelopes.

The normalised shape (shared with JSON output so records are built once):

- a field is a ``str`` (XML is all text; ``""`` for an empty node);
- a multilingual field is ``[{"id": "1", "value": "..."}, ...]``;
- ``associations`` is ``{name: [{field: value, ...}, ...]}``;
- a list without ``display`` gives ``[{"id": "5"}, ...]`` (the ``id`` attribute).

Write bodies follow the recorded requests (``samples/*.request.xml``): an XML declaration,
``<prestashop xmlns:xlink=...>``, one entity node, one child per field, escaped text,
``<language id="N">`` for multilingual fields, ``<associations>`` for association sets.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from engine.errors import ChannelProtocolError

XLINK = "http://www.w3.org/1999/xlink"
_HREF = f"{{{XLINK}}}href"

# Names of the language child and the association wrapper, as PrestaShop renders them.
_LANGUAGE = "language"
_ASSOCIATIONS = "associations"


class DangerousXml(ValueError):
    """A document carrying a DTD (a ``<!DOCTYPE …>``): entity declarations, external subsets
    and their references are what billion-laughs and XXE attacks are made of; a webservice
    answer never has one, so any is refused before a value is read."""


class MalformedXml(ValueError):
    """A document that does not parse (cut, garbled, not XML)."""


_SPACE = re.compile(rb"[ \t\r\n]*")


def _doctype_in_prolog(data: bytes) -> bool:
    """Whether a ``<!DOCTYPE`` comes before the root element (after a BOM, the XML
    declaration, comments, processing instructions, space): a linear scan, no backtracking."""
    i = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while True:
        match = _SPACE.match(data, i)
        i = match.end() if match else i
        if data.startswith(b"<!DOCTYPE", i):
            return True
        for start, end in ((b"<!--", b"-->"), (b"<?", b"?>")):
            if data.startswith(start, i):
                close = data.find(end, i + len(start))
                if close < 0:
                    return False
                i = close + len(end)
                break
        else:
            return False


_parsers = threading.local()  # an lxml parser must not be shared between threads


def _parser() -> Any:
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,  # an entity reference stays a reference, never expanded
            no_network=True,  # no DTD, entity or XInclude is fetched over the network
            load_dtd=False,  # no external DTD subset is read (file or network)
            dtd_validation=False,
            huge_tree=False,  # libxml2's limits on depth, text node size and amplification
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )
        _parsers.parser = parser
    return parser


def _refuse_doctype(where: str) -> None:
    raise ChannelProtocolError(
        f"prestashop: refused dangerous XML in {where} (a DOCTYPE: DTDs and entities are "
        "not accepted from a store)"
    ) from DangerousXml("DOCTYPE")


def parse_xml(body: bytes | str, *, where: str = "response") -> Element:
    """Parse XML from a store; a DTD (entity declarations, external references: billion
    laughs, XXE) is refused as ``ChannelProtocolError`` ("refused dangerous XML"), like
    malformed XML ("malformed XML"); the cause is ``DangerousXml`` / ``MalformedXml``.

    The tree is lxml's; it offers the read API of ``xml.etree`` (``tag``, ``text``, ``get``,
    ``find``, ``iter``, iteration over children), which is all this package uses of it."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    # A DOCTYPE is refused before libxml2 reads its declarations; the check after the parse
    # is the backstop (a prolog in another encoding than UTF-8), safe either way: entities are
    # never expanded nor fetched by this parser.
    if _doctype_in_prolog(data):
        _refuse_doctype(where)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        cause = MalformedXml(str(exc))
        raise ChannelProtocolError(f"prestashop: malformed XML in {where} ({exc})") from cause
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        _refuse_doctype(where)
    return cast(Element, root)


def _text(el: Element) -> str:
    # PrestaShop writes CDATA without surrounding whitespace; pretty-printed copies (docs,
    # fixtures) add newlines around it, which are never part of a value we use.
    return (el.text or "").strip()


def element_to_value(el: Element) -> Any:
    """One field node -> str, or the multilingual list, or (for associations) a dict."""
    children = list(el)
    if not children:
        return _text(el)
    if all(c.tag == _LANGUAGE for c in children):
        return [{"id": c.get("id", ""), "value": _text(c)} for c in children]
    return {c.tag: element_to_value(c) for c in children}


def entity_to_dict(el: Element) -> dict[str, Any]:
    """An entity node (``<order>…</order>``) -> the normalised dict. An ids-only list item
    (``<order id="5" xlink:href=…/>``) gives ``{"id": "5"}``."""
    out: dict[str, Any] = {}
    if el.get("id") is not None and not list(el):
        return {"id": el.get("id", "")}
    for child in el:
        if child.tag == _ASSOCIATIONS:
            out[_ASSOCIATIONS] = {
                assoc.tag: [_assoc_item(item) for item in assoc] for assoc in child
            }
        else:
            out[child.tag] = element_to_value(child)
    return out


def _assoc_item(item: Element) -> dict[str, Any]:
    fields: dict[str, Any] = {c.tag: element_to_value(c) for c in item}
    if "id" not in fields and item.get("id") is not None:
        fields["id"] = item.get("id", "")
    return fields


def not_filterable_fields(el: Element) -> set[str]:
    """Fields the store marks ``notFilterable="true"`` (computed by a getter, read-only)."""
    return {c.tag for c in el if c.get("notFilterable") == "true"}


@dataclass(frozen=True)
class StoreError:
    """One ``<error>`` of an ``<errors>`` body: the store's code and message."""

    code: str
    message: str


def errors_of(root: Element) -> list[StoreError]:
    """The ``<errors>`` of a document (empty when it has none)."""
    out: list[StoreError] = []
    for errors in root.iter("errors"):
        for err in errors.iter("error"):
            code = err.find("code")
            message = err.find("message")
            out.append(
                StoreError(
                    code=_text(code) if code is not None else "",
                    message=_text(message) if message is not None else "",
                )
            )
    return out


def document_items(root: Element, resource: str) -> list[dict[str, Any]]:
    """Entities of a response document: the items of a ``<resource>`` list wrapper, or the
    entity (or entities: a multi-entity POST/PUT has no wrapper) directly under the root."""
    if root.tag != "prestashop":
        raise ChannelProtocolError(
            f"prestashop: {resource}: XML root is <{root.tag}>, not <prestashop>"
        )
    children = list(root)
    if len(children) == 1 and children[0].tag == resource:
        return [entity_to_dict(item) for item in children[0]]
    return [entity_to_dict(child) for child in children if child.tag != "errors"]


def document_entity_elements(root: Element, resource: str) -> list[Element]:
    """Like ``document_items`` but the raw elements (for a read-modify-write PUT)."""
    children = list(root)
    if len(children) == 1 and children[0].tag == resource:
        return list(children[0])
    return [child for child in children if child.tag != "errors"]


# --------------------------------------------------------------------------- writing


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return f"{value:.6f}"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


@dataclass(frozen=True)
class Languages:
    """A multilingual value to write: ``{language_id: text}``."""

    values: Mapping[int, str]


@dataclass(frozen=True)
class Association:
    """An association set to write: ``<name nodeType=item><item><id>…</id></item>…</name>``."""

    item: str
    ids: Sequence[int]


def _field_xml(name: str, value: Any) -> str:
    if isinstance(value, Languages):
        inner = "".join(
            f"<language id={quoteattr(str(lang))}>{escape(text)}</language>"
            for lang, text in value.values.items()
        )
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, list) and all(isinstance(v, dict) and "id" in v for v in value):
        # the normalised multilingual shape read back from the store
        inner = "".join(
            f"<language id={quoteattr(str(v['id']))}>{escape(_scalar(v.get('value')))}</language>"
            for v in value
        )
        return f"<{name}>{inner}</{name}>"
    return f"<{name}>{escape(_scalar(value))}</{name}>"


def build_entity(
    node: str,
    fields: Iterable[tuple[str, Any]] | Mapping[str, Any],
    associations: Mapping[str, Association] | None = None,
) -> bytes:
    """The write envelope for one entity: ``<prestashop><node>fields…</node></prestashop>``."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    parts = [_field_xml(name, value) for name, value in items]
    if associations:
        assoc_parts = []
        for name, assoc in associations.items():
            inner = "".join(f"<{assoc.item}><id>{int(i)}</id></{assoc.item}>" for i in assoc.ids)
            assoc_parts.append(
                f"<{name} nodeType={quoteattr(assoc.item)} api={quoteattr(name)}>{inner}</{name}>"
            )
        parts.append(f"<{_ASSOCIATIONS}>{''.join(assoc_parts)}</{_ASSOCIATIONS}>")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<prestashop xmlns:xlink="{XLINK}"><{node}>{"".join(parts)}</{node}></prestashop>'
    )
    return body.encode("utf-8")


def element_fields(el: Element, *, drop: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """The fields of an entity element in document order, for a read-modify-write PUT:
    scalars as text, multilingual fields as ``Languages``; ``associations`` and the names in
    ``drop`` (read-only fields) left out."""
    skip = set(drop) | {_ASSOCIATIONS}
    out: list[tuple[str, Any]] = []
    for child in el:
        if child.tag in skip:
            continue
        langs = list(child)
        if langs and all(c.tag == _LANGUAGE for c in langs):
            out.append(
                (child.tag, Languages({int(c.get("id", "0")): (c.text or "") for c in langs}))
            )
        else:
            # keep the value exactly (string fields keep their whitespace on the store)
            out.append((child.tag, child.text or ""))
    return out
