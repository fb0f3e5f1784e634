"""How fast each safe way of reading the webservice's answers is, on real documents:

- ``defusedxml``: ``defusedxml.ElementTree.fromstring`` (forbid DTD/entities/external), then
  ``xml.document_items`` (the normalised items);
- ``lxml hardened``: ``xml.parse_xml`` (lxml with entities, DTDs, network and huge trees off,
  any DOCTYPE refused), then ``xml.document_items``;
- ``JSON``: the same resource asked with ``Output-Format: JSON``, ``json.loads`` then
  ``PrestaShopClient.json_items``.

Documents: the real PrestaShop 8.2.1 captures (``../shared/prestashop/samples/ps8.2.1-real``,
``X.body`` next to ``X_json.body``) and, with ``--sandbox``, 500-entity ``display=full`` pages
of the sandbox (products, combinations, stock rows, orders).

Usage: ``python -m bench.parsers [--sandbox] [--repeats 5]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET

from engine.runtime.channels.prestashop import xml as psxml
from engine.runtime.channels.prestashop.client import PrestaShopClient

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "prestashop" / "samples" / "ps8.2.1-real"
REAL_DOCS = {  # capture -> resource
    "products_full": "products",
    "product_one": "products",
    "combinations": "combinations",
    "stock_availables": "stock_availables",
    "order_one": "orders",
    "order_states": "order_states",
}


def _defused(body: bytes, resource: str) -> list[dict[str, Any]]:
    root = DET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    return psxml.document_items(root, resource)


def _lxml(body: bytes, resource: str) -> list[dict[str, Any]]:
    return psxml.document_items(psxml.parse_xml(body), resource)


def _json(body: bytes, resource: str) -> list[dict[str, Any]]:
    return PrestaShopClient.json_items(json.loads(body), resource)


WAYS: dict[str, Callable[[bytes, str], list[dict[str, Any]]]] = {
    "defusedxml": _defused,
    "lxml hardened": _lxml,
    "JSON": _json,
}


def _time(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of one call (enough calls per sample for ~50 ms)."""
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    loops = max(1, int(0.05 / one))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - t0) / loops)
    return statistics.median(samples)


def sandbox_pages() -> dict[str, tuple[bytes, bytes, str]]:
    import httpx

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.sandbox_proc",
            "--products",
            "1000",
            "--orders",
            "600",
            "--combination-share",
            "0.5",
            "--combinations-per-product",
            "4",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    doc = json.loads(proc.stdout.readline())
    out: dict[str, tuple[bytes, bytes, str]] = {}
    try:
        with httpx.Client(
            base_url=doc["url"] + "/api/", auth=(doc["key"], ""), timeout=60
        ) as http:
            for res in ("products", "combinations", "stock_availables", "orders"):
                params = {"display": "full", "limit": "0,500", "sort": "[id_ASC]"}
                xml = http.get(res, params=params).content
                js = http.get(res, params=params, headers={"Output-Format": "JSON"}).content
                out[f"sandbox {res}, 500"] = (xml, js, res)
    finally:
        proc.stdin.close()
        proc.wait(30)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sandbox", action="store_true", help="also 500-entity sandbox pages")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    docs: dict[str, tuple[bytes, bytes, str]] = {
        f"real 8.2.1 {name}": (
            (REAL / f"{name}.body").read_bytes(),
            (REAL / f"{name}_json.body").read_bytes(),
            res,
        )
        for name, res in REAL_DOCS.items()
    }
    if a.sandbox:
        docs.update(sandbox_pages())
    print(
        "| document | items | XML KB | JSON KB | defusedxml ms | lxml hardened ms | JSON ms "
        "| defusedxml / lxml | lxml / JSON |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, (xml, js, res) in docs.items():
        items = {way: fn(js if way == "JSON" else xml, res) for way, fn in WAYS.items()}
        n = len(items["JSON"])
        assert len(items["defusedxml"]) == len(items["lxml hardened"]) == n, label
        assert items["defusedxml"] == items["lxml hardened"], label
        ms = {}
        for way, fn in WAYS.items():
            body = js if way == "JSON" else xml
            ms[way] = 1000 * _time(lambda fn=fn, body=body, res=res: fn(body, res), a.repeats)
        print(
            f"| {label} | {n} | {len(xml) / 1024:.1f} | {len(js) / 1024:.1f} "
            f"| {ms['defusedxml']:.2f} | {ms['lxml hardened']:.2f} | {ms['JSON']:.2f} "
            f"| {ms['defusedxml'] / ms['lxml hardened']:.2f}x "
            f"| {ms['lxml hardened'] / ms['JSON']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
