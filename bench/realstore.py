"""``realstore_catalog``: the full catalogue sync against a real PrestaShop 8.2.1 grown to
N simple products (``../shared/realps/grow.sh``), measured against the store's own time.

In ONE run, against ONE store (``tests/realstore/harness.py``), each measure repeated and the
median kept, in rotating order so a drift of the machine's load hits every measure alike:

- **store serial**: a bare httpx loop (no omsflow code) reading, one after the other, exactly
  the pages omsflow's serial catalogue read asks for: the four reference resources, products
  ``display=full`` keyset pages of ``page_size``, combinations and stock rows sorted by
  product (offset pages). The store's own floor for a serial sync.
- **omsflow serial**: ``sync_catalog(full=True)`` on a fresh SQLite (the store connected by
  ``omsflow store connect --no-sync``) with ``max_concurrency`` 1 (the serial path).
- **store parallel**: the bare loop reading the pages of the parallel path (id listings, id
  range pages, the offset pages) on ``max_concurrency`` threads: the store's own floor when
  read in parallel.
- **omsflow parallel**: the sync as an operator runs it (the channel's ``max_concurrency``).

The ratio the issue asks for is omsflow's wall time over the store's serial time (<= 1.1x).
The store is stopped and its databases dropped at the end, whatever happens (SIGTERM too).
"""

from __future__ import annotations

import json
import os
import resource as rlimit
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.procstat import group_cpu_s

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ("categories", "manufacturers", "product_options", "product_option_values")
BY_PRODUCT = "[id_product_ASC,id_ASC]"
STORE_NAME = "realps"


# --------------------------------------------------------------------------- bare reads


class Bare:
    """A bare httpx client on the webservice (JSON output, the key as Basic user): what any
    program reading these pages must do, and nothing of omsflow."""

    def __init__(self, api_url: str, key: str, workers: int = 1) -> None:
        self.http = httpx.Client(
            base_url=api_url + "/",
            auth=(key, ""),
            headers={"Output-Format": "JSON"},
            timeout=120,
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        )
        self.requests: Counter[str] = Counter()

    def get(self, resource: str, params: dict[str, str]) -> list[dict[str, Any]]:
        r = self.http.get(resource, params=params)
        r.raise_for_status()
        self.requests[resource] += 1
        doc = r.json()
        return doc.get(resource, []) if isinstance(doc, dict) else []

    def offset_pages(
        self, resource: str, size: int, extra: dict[str, str], sort: str, offset: int = 0
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.get(
                resource,
                {**extra, "sort": sort, "limit": f"{offset},{size}", "display": "full"},
            )
            out += page
            if len(page) < size:
                return out
            offset += size

    def reference(self, size: int) -> None:
        for resource in REFERENCE:
            self.offset_pages(resource, size, {}, "[id_ASC]")

    def close(self) -> None:
        self.http.close()


def store_serial(api_url: str, key: str, size: int) -> dict[str, Any]:
    """The pages of omsflow's serial catalogue read, one after the other."""
    bare = Bare(api_url, key)
    t0 = time.perf_counter()
    bare.reference(size)
    last, products = 0, 0
    while True:
        page = bare.get(
            "products",
            {
                "filter[id]": f">[{last}]",
                "sort": "[id_ASC]",
                "limit": f"0,{size}",
                "display": "full",
            },
        )
        products += len(page)
        if page:
            last = max(int(d["id"]) for d in page)
        if len(page) < size:
            break
    rows = {
        r: len(bare.offset_pages(r, size, {"filter[id_product]": ">[0]"}, BY_PRODUCT))
        for r in ("combinations", "stock_availables")
    }
    wall = time.perf_counter() - t0
    bare.close()
    return {"wall": wall, "requests": dict(bare.requests), "products": products, **rows}


def store_parallel(api_url: str, key: str, size: int, workers: int) -> dict[str, Any]:
    """The pages of omsflow's parallel catalogue read, on ``workers`` threads: reference
    reads first (as the sync does), then one id listing of the products and page 0 of the
    combinations and stock rows (with a listing when full), then every other page."""
    bare = Bare(api_url, key, workers)
    t0 = time.perf_counter()
    bare.reference(size)

    def listing(resource: str, extra: dict[str, str], sort: str, offset: int) -> list[int]:
        items = bare.get(resource, {**extra, "sort": sort, "limit": f"{offset},{size * 100}"})
        return [int(d["id"]) for d in items]

    def first(resource: str) -> tuple[int, int]:
        page = bare.get(
            resource,
            {
                "filter[id_product]": ">[0]",
                "sort": BY_PRODUCT,
                "limit": f"0,{size}",
                "display": "full",
            },
        )
        if len(page) < size:
            return len(page), 0
        return len(page), len(listing(resource, {"filter[id_product]": ">[0]"}, BY_PRODUCT, size))

    got: Counter[str] = Counter()
    with ThreadPoolExecutor(workers) as pool:
        ids_f = pool.submit(listing, "products", {"filter[id]": ">[0]"}, "[id_ASC]", 0)
        firsts = {r: pool.submit(first, r) for r in ("combinations", "stock_availables")}
        ids = sorted(ids_f.result())
        jobs: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = []
        lo = 0
        n_pages = -(-len(ids) // size)
        for k in range(n_pages):
            if k < n_pages - 1:
                hi = ids[(k + 1) * size - 1]
                params = {"filter[id]": f"[{lo + 1},{hi}]", "sort": "[id_ASC]", "display": "full"}
                lo = hi
            else:
                params = {
                    "filter[id]": f">[{lo}]",
                    "sort": "[id_ASC]",
                    "display": "full",
                    "limit": f"0,{size}",
                }
            jobs.append(("products", lambda p=params: bare.get("products", p)))
        for resource, fut in firsts.items():
            n0, more = fut.result()
            got[resource] += n0
            for j in range(1, -(-more // size) + 1):
                params = {
                    "filter[id_product]": ">[0]",
                    "sort": BY_PRODUCT,
                    "limit": f"{j * size},{size}",
                    "display": "full",
                }
                jobs.append((resource, lambda r=resource, p=params: bare.get(r, p)))
        futures = [(name, pool.submit(job)) for name, job in jobs]
        for name, fut in futures:
            got[name] += len(fut.result())
    wall = time.perf_counter() - t0
    bare.close()
    return {"wall": wall, "requests": dict(bare.requests), **got}


# --------------------------------------------------------------------------- omsflow


def connect_template(url: str, key: str, folder: Path) -> Path:
    """``omsflow store connect --no-sync`` into a fresh SQLite file (the template each timed
    sync starts from: a copy is a freshly connected database)."""
    db = folder / "template.db"
    env = {
        **os.environ,
        "OMSFLOW_DATABASE_URL": f"sqlite:///{db}",
        "OMSFLOW_BENCH_KEY": key,
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-c", "from cli import main; main()", "store", "connect"]
    cmd += ["--url", url, "--key-env", "OMSFLOW_BENCH_KEY", "--name", STORE_NAME, "--no-sync"]
    proc = subprocess.run(
        cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"omsflow store connect failed: {proc.stderr.strip()[-300:]}")
    return db


def omsflow_sync(
    template: Path, folder: Path, run: int, concurrency: int | None
) -> dict[str, Any]:
    """``sync_catalog(full=True)`` on a copy of the template; ``concurrency`` None: the
    channel's own (what ``omsflow sync catalog --full`` uses)."""
    from sqlalchemy import func, select

    from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
    from engine.runtime.db import session as dbsession
    from engine.runtime.db import stores
    from engine.runtime.db.tables import ProductRow
    from engine.runtime.settings import Settings
    from engine.runtime.specs import load_bundle
    from engine.runtime.sync import sync_catalog

    db = folder / f"run{run}.db"
    with sqlite3.connect(template) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    bundle = load_bundle()
    engine, factory = dbsession.open_database(Settings(database_url=f"sqlite:///{db}"))
    with factory() as session:
        store = stores.get_store(session, STORE_NAME)
        url, key = store.url, store.key
    kw = {} if concurrency is None else {"max_concurrency": concurrency}
    adapter = PrestaShopAdapter.from_channel(url, key, bundle.channel, **kw)
    try:
        c0, t0 = _cpu(), time.perf_counter()
        report = sync_catalog(factory, bundle, STORE_NAME, full=True, adapter=adapter)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        stats = Counter({res: n for (_, res), n in adapter.client.stats.items()})
        workers = adapter.client.max_concurrency
    finally:
        adapter.close()
    with factory() as session:
        parents = session.scalar(
            select(func.count()).select_from(ProductRow).where(ProductRow.parent_id.is_(None))
        )
        children = session.scalar(
            select(func.count()).select_from(ProductRow).where(ProductRow.parent_id.is_not(None))
        )
    engine.dispose()
    db.unlink(missing_ok=True)
    return {
        "wall": wall,
        "cpu": cpu,
        "requests": dict(stats),
        "workers": workers,
        "seen_products": report.counts.get("products_seen", 0),
        "seen_combinations": report.counts.get("combinations_seen", 0),
        "oms_products": parents or 0,
        "oms_variations": children or 0,
    }


# --------------------------------------------------------------------------- scenario


def _stop_on_signals() -> None:
    def raise_exit(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, raise_exit)
    signal.signal(signal.SIGHUP, raise_exit)


def _cpu() -> float:
    """This process's CPU seconds (user + system): omsflow's own work in a sync."""
    r = rlimit.getrusage(rlimit.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _store_cpu(pgid: int) -> float:
    """CPU seconds the store's ``php -S`` process group (server and its 4 workers) has used:
    the store's own work, whatever else the machine runs (MariaDB's share is not in it)."""
    return group_cpu_s(pgid)


def _load() -> float:
    return os.getloadavg()[0]


def realstore_catalog(size: dict[str, int]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from engine.runtime.specs import load_bundle
    from tests.realstore import harness

    reason = harness.missing_reason()
    if reason:
        return {"skipped": f"real PrestaShop unavailable: {reason}"}
    grow = harness.realps_dir() / "grow.sh"
    channel = load_bundle().channel
    page = channel.connection.page_size
    workers = channel.connection.max_concurrency
    n, repeats = size["realstore_products"], size["realstore_repeats"]
    _stop_on_signals()
    loads = [_load()]
    t_start = time.perf_counter()
    store = harness.start()
    folder = Path(tempfile.mkdtemp(prefix="omsflow-bench-rps-"))
    try:
        started_s = time.perf_counter() - t_start
        subprocess.run(
            ["bash", str(grow), store.database, str(n)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        total = int(store.scalar("SELECT COUNT(*) FROM ps_product") or 0)
        template = connect_template(store.url, store.key, folder)
        warm = store_serial(store.api_url, store.key, page)  # caches, opcode, buffer pool
        measures: dict[str, Callable[[int], dict[str, Any]]] = {
            "store_serial": lambda _r: store_serial(store.api_url, store.key, page),
            "omsflow_serial": lambda r: omsflow_sync(template, folder, r, 1),
            "store_parallel": lambda _r: store_parallel(store.api_url, store.key, page, workers),
            "omsflow_parallel": lambda r: omsflow_sync(template, folder, r, None),
        }
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in measures}
        names = list(measures)
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                loads.append(_load())
                php0 = _store_cpu(store.pid)
                runs[name].append(measures[name](r))
                runs[name][-1]["php_cpu"] = _store_cpu(store.pid) - php0
                print(
                    f"  {name} #{r + 1}: {runs[name][-1]['wall']:.2f} s (load {_load():.1f})",
                    file=sys.stderr,
                    flush=True,
                )
        loads.append(_load())
    finally:
        store.stop()
        for f in folder.glob("*"):
            f.unlink()
        folder.rmdir()
    return _result(runs, warm, total, page, workers, started_s, loads, store.database)


def _requests(counts: dict[str, int]) -> str:
    ref = sum(n for r, n in counts.items() if r in REFERENCE)
    rest = [f"{r} {n}" for r, n in counts.items() if r not in REFERENCE]
    return ", ".join([*rest, f"reference {ref}"])


def _median(runs: list[dict[str, Any]]) -> float:
    return statistics.median(r["wall"] for r in runs)


def _result(
    runs: dict[str, list[dict[str, Any]]],
    warm: dict[str, Any],
    total: int,
    page: int,
    workers: int,
    started_s: float,
    loads: list[float],
    database: str,
) -> dict[str, Any]:
    """Four rows. A row's ratio to the store's serial time is the median of each round's
    ratio (the two measured minutes apart at most, under the same load)."""
    serial_req = sum(runs["store_serial"][0]["requests"].values())
    items = warm["products"] + warm["combinations"]
    load = f"load avg {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    common = {
        "entities": items,
        "unit": "products+combinations",
        "min_requests": serial_req,
        "request_kind": "GET",
    }

    def ratio(name: str, base: str = "store_serial") -> float:
        return statistics.median(
            a["wall"] / b["wall"] for a, b in zip(runs[name], runs[base], strict=True)
        )

    def row(name: str, label: str, targets: list[Any], note: str) -> dict[str, Any]:
        walls = ", ".join(f"{r['wall']:.2f}" for r in runs[name])
        cpus = [r["cpu"] for r in runs[name] if "cpu" in r]
        cpu = f"omsflow CPU {statistics.median(cpus):.2f} s; " if cpus else ""
        php = statistics.median(r["php_cpu"] for r in runs[name])
        cpu += f"store PHP CPU {php:.2f} s; "
        return {
            **common,
            "label": label,
            "wall_s": _median(runs[name]),
            "requests": sum(runs[name][0]["requests"].values()),
            "vs_store_serial": ratio(name),
            "targets": targets,
            "notes": f"median of {len(runs[name])} ({walls} s); {ratio(name):.2f}x the store's "
            f"serial time (median of per-round ratios); {cpu}{note}",
        }

    o_ser, o_par = runs["omsflow_serial"][0], runs["omsflow_parallel"][0]
    oms = (
        f"OMS holds {o_par['oms_products']} products + {o_par['oms_variations']} variations "
        f"(read {o_par['seen_products']} + {o_par['seen_combinations']})"
    )
    rows = [
        row(
            "store_serial",
            "real PS 8.2.1: store's serial read (bare httpx)",
            [],
            f"{total} products in the store, page {page}; GETs "
            f"{_requests(runs['store_serial'][0]['requests'])}; store {database} up in "
            f"{started_s:.0f} s, dropped after; warm-up pass {warm['wall']:.2f} s; {load}",
        ),
        row(
            "omsflow_serial",
            "real PS 8.2.1: omsflow sync, serial reads",
            [("vs_store_serial", "<=", 1.1)],
            f"max_concurrency {o_ser['workers']}; GETs {_requests(o_ser['requests'])}; {oms}",
        ),
        row(
            "store_parallel",
            f"real PS 8.2.1: store's parallel read ({workers} threads)",
            [],
            f"{ratio('store_serial', 'store_parallel'):.2f}x faster than its serial read; the "
            f"parallel path's pages: GETs {_requests(runs['store_parallel'][0]['requests'])}; "
            "php -S runs 4 workers",
        ),
        row(
            "omsflow_parallel",
            "real PS 8.2.1: omsflow sync, parallel reads",
            [("vs_store_serial", "<=", 1.1)],
            f"max_concurrency {o_par['workers']} (the channel's); "
            f"{ratio('omsflow_serial', 'omsflow_parallel'):.2f}x faster than serial reads; "
            f"GETs {_requests(o_par['requests'])}; {oms}",
        ),
    ]
    return {**rows[-1], "rows": rows, "raw": runs}


if __name__ == "__main__":
    print(json.dumps(realstore_catalog({"realstore_products": 200, "realstore_repeats": 1})))
