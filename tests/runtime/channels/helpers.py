"""Test helpers: recorded PrestaShop responses (body + status + headers) served through
httpx.MockTransport, and an independent reading of the sample XML for comparisons."""

# ruff: noqa: S314 - trusted local samples read with the stdlib on purpose, independently of the client

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET  # trusted local samples only

import httpx

from tests.conftest import samples_dir

KEY = "ZQ88PRJX5VWQHCWE4EE7SQ7HPNX00RAJ"


@dataclass
class Recorded:
    path: Path
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    request_line: str = ""

    @property
    def body(self) -> bytes:
        return self.path.read_bytes()


def recorded(path: Path) -> Recorded:
    """The sample body with the status and headers of its ``.http.txt`` sidecar (if any)."""
    rec = Recorded(path)
    stem = path.name.rsplit(".", 1)[0]
    sidecar = path.with_name(stem + ".http.txt")
    if sidecar.exists():
        for line in sidecar.read_text().splitlines():
            if line.startswith(("#", ">")) or not line.strip():
                continue
            if line.startswith("HTTP/"):
                rec.status = int(line.split()[1])
            elif ": " in line and not line.split(":", 1)[0].count(" "):
                name, value = line.split(": ", 1)
                if name.lower() not in {
                    "set-cookie",
                    "content-length",
                    "connection",
                    "keep-alive",
                    "vary",
                    "transfer-encoding",
                }:
                    rec.headers[name] = value
            else:
                rec.request_line = line
    else:
        name = path.name
        if "POST_201" in name:
            rec.status = 201
        elif "404" in name:
            rec.status = 404
        ctype = "application/json" if name.endswith(".json") else "text/xml;charset=utf-8"
        rec.headers = {"Content-Type": ctype, "PSWS-Version": "8.1.7"}
    return rec


def serve(rec: Recorded, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(rec.status, headers=rec.headers, content=rec.body)

    return httpx.MockTransport(handler)


def sample(name: str) -> Path:
    return samples_dir() / name


def response_samples() -> list[Path]:
    """Every recorded response body (not the sidecars, not the request bodies)."""
    out = []
    for p in sorted(samples_dir().iterdir()):
        if p.suffix not in {".xml", ".json"} or "request" in p.name:
            continue
        out.append(p)
    return out


def is_list_document(root: ET.Element) -> bool:
    children = list(root)
    if len(children) != 1:
        return False
    first = children[0]
    return first.find("id") is None and first.tag.endswith("s") and first.tag != "errors"


def plural(tag: str) -> str:
    if tag.endswith("y"):
        return tag[:-1] + "ies"
    if tag.endswith("s"):
        return tag + "es"
    return tag + "s"


def reference_fields(path: Path) -> list[dict[str, object]]:
    """An independent reading of a sample: each entity's scalar fields as stripped text and
    multilingual fields as {lang id: text}; associations as {name: [ids]}."""
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        (value,) = doc.values()
        return value if isinstance(value, list) else [value]
    root = ET.fromstring(path.read_bytes())
    children = list(root)
    if not children:
        return []
    first = children[0]
    entities = list(first) if is_list_document(root) else children
    out = []
    for ent in entities:
        if ent.tag == "errors":
            continue
        d: dict[str, object] = {}
        if ent.get("id") is not None and not len(ent):
            d["id"] = ent.get("id")
        for f in ent:
            if f.tag == "associations":
                d["associations"] = {
                    a.tag: [(i.findtext("id") or i.get("id") or "").strip() for i in a] for a in f
                }
            elif len(f) and all(c.tag == "language" for c in f):
                d[f.tag] = {c.get("id"): (c.text or "").strip() for c in f}
            else:
                d[f.tag] = (f.text or "").strip()
        out.append(d)
    return out


Handler = Callable[[httpx.Request], httpx.Response]


def xml_response(body: bytes | str, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status,
        headers={
            "Content-Type": "text/xml;charset=utf-8",
            "PSWS-Version": "1.7.8.11",
            "X-Powered-By": "PrestaShop Webservice",
        },
        content=body if isinstance(body, bytes) else body.encode(),
    )


def error_xml(code: int, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n'
        f"<errors>\n<error>\n<code><![CDATA[{code}]]></code>\n<message><![CDATA[{message}]]>"
        "</message>\n</error>\n</errors>\n</prestashop>\n"
    )
