"""Run every benchmark scenario (one process each) and the performance floors of
``../shared/perf-floors`` in the same run; print ONE table and write ``bench/results.md``.

Usage: ``python bench/run.py [--quick] [--only NAME[,NAME]] [--no-floors]``
(or ``.venv/bin/python -m bench``). Targets are reported met / not met, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOORS = ROOT.parent / "shared" / "perf-floors"
RESULTS = Path(__file__).resolve().parent / "results.md"

LABELS = {
    "catalog": "catalogue sync (products + variations)",
    "catalog_serial": "catalogue sync, serial page reads",
    "realstore_catalog": "real PS 8.2.1",  # its rows' labels start so (bench/realstore.py)
    "backfill": "90-day order backfill",
    "stock_push": "stock push, 20 ms/call",
    "coalescing": "stock changes, coalesced",
    "stock_set": "stock set, one transaction each",
    "cli_short": "one short command (omsflow stock set)",
    "events_memory": "apply_event, in memory",
    "events_sqlite": "events, SQLite, 1 worker",
    "events_pg1": "events, PostgreSQL, 1 worker",
    "events_pg3": "events, PostgreSQL, 3 workers",
}

# scenario -> (floor script, case name, how the floor's figure reads)
FLOOR_CASES: dict[str, tuple[str, str]] = {
    "catalog": ("scen", "A catalog sync, httpx.Client sequential, page 500"),
    "backfill": ("scen", "C order backfill 50k, AsyncClient c=1, page 500"),
    "stock_push": ("scen", "B stock push 10k PUT, c=8, +20ms"),
    "events_memory": (
        "sm",
        "T5 transitions shared Machine, flyweight model, set_state(stored) per event",
    ),
    "events_sqlite": ("db", "SA Core prebuilt sqlite WAL sync=NORMAL batch=1"),
    "events_pg1": ("db", "SA Core prebuilt postgres batch=1"),
}
# what the scen floor's figure is divided by, in the scenarios' own unit: A reads 10k products
# and 20k combinations (and their 30k stock rows), as the catalogue row counts products +
# variations; B 10k PUTs; C 50k orders
FLOOR_ENTITIES = {"A": 30_000, "B": 10_000, "C": 50_000}


def _py() -> str:
    return sys.executable


def run_scenario(name: str, quick: bool) -> dict[str, Any]:
    cmd = [_py(), "-m", "bench.scenarios", name] + (["--quick"] if quick else [])
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail[:200], "elapsed": time.perf_counter() - t0}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- floors

_H11_SHIM = (
    "import sys, runpy, bench_http as h; o = h.start_server; "
    "h.start_server = lambda port, loop='asyncio', http_impl='h11': o(port, loop, http_impl); "
    "sys.argv = [sys.argv[1]] + sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _floor(script: str, args: list[str], out: Path, shim: bool = False) -> dict[str, Any] | str:
    cmd = [_py(), "-c", _H11_SHIM, script, *args] if shim else [_py(), script, *args]
    proc = subprocess.run(
        cmd, cwd=FLOORS, capture_output=True, text=True, check=False, timeout=1800
    )
    if proc.returncode != 0 or not out.exists():
        return (proc.stderr.strip().splitlines() or ["failed"])[-1][:160]
    return json.loads(out.read_text())["summary"]


def run_floors(
    wanted: set[str], quick: bool, pg_url: str | None
) -> tuple[dict[str, Any], list[str]]:
    """Floor figures per scenario: {"rate": entities/s}; and notes."""
    notes: list[str] = []
    if not FLOORS.is_dir():
        return {}, [f"no floors at {FLOORS}: ratios skipped"]
    tmp = Path(tempfile.mkdtemp(prefix="omsflow-floors-"))
    out: dict[str, Any] = {}
    need = {FLOOR_CASES[s][0] for s in wanted if s in FLOOR_CASES}
    if "sm" in need:
        res = _floor(
            "bench_sm.py",
            [
                "--repeats",
                "1",
                "--orders",
                "2000" if quick else "10000",
                "--only",
                "T5",
                "--out",
                str(tmp / "sm.json"),
            ],
            tmp / "sm.json",
        )
        if isinstance(res, str):
            notes.append(f"bench_sm.py failed: {res}")
        else:
            case = res.get(FLOOR_CASES["events_memory"][1], {})
            rate = case.get("triggers_per_s") or case.get("median_tps") or case.get("events_per_s")
            if rate is None:
                rate = next((v for k, v in case.items() if "per_s" in k or k.endswith("/s")), None)
            out["events_memory"] = {"rate": rate} if rate else None
    if "db" in need:
        args = [
            "--repeats",
            "1",
            "--small",
            "500" if quick else "2000",
            "--big",
            "1000",
            "--syncs",
            "NORMAL",
            "--out",
            str(tmp / "db.json"),
        ]
        if pg_url:
            args += ["--pg", pg_url]
        res = _floor("bench_db.py", args, tmp / "db.json")
        if isinstance(res, str):
            notes.append(f"bench_db.py failed: {res}")
        else:
            for scen in ("events_sqlite", "events_pg1"):
                case = res.get(FLOOR_CASES[scen][1])
                if case:
                    out[scen] = {"rate": case["median_tps"]}
    if "scen" in need and not quick:
        only = ",".join(
            sorted(
                {
                    {"catalog": "A", "stock_push": "B", "backfill": "C"}[s]
                    for s in wanted
                    if s in ("catalog", "stock_push", "backfill")
                }
            )
        )
        res = _floor(
            "bench_scenarios.py",
            ["--repeats", "1", "--only", only, "--port", "18481", "--out", str(tmp / "scen.json")],
            tmp / "scen.json",
            shim=True,
        )
        if isinstance(res, str):
            notes.append(f"bench_scenarios.py failed: {res}")
        else:
            for scen in ("catalog", "backfill", "stock_push"):
                case = res.get(FLOOR_CASES[scen][1])
                if case:
                    n = FLOOR_ENTITIES[FLOOR_CASES[scen][1][0]]
                    out[scen] = {"rate": n / case["median_s"], "seconds": case["median_s"]}
        notes.append(
            "floor HTTP server: uvicorn asyncio+h11 (as the sandbox runs here; "
            "uvloop/httptools are not installed)"
        )
    elif "scen" in need:
        notes.append("--quick: the end-to-end floors (bench_scenarios.py) are skipped")
    return out, notes


# --------------------------------------------------------------------------- table


def _target(result: dict[str, Any]) -> tuple[str, str]:
    rate = result["entities"] / result["wall_s"] if result.get("wall_s") else 0.0
    values = {
        **{k: v for k, v in result.items() if isinstance(v, int | float)},
        "wall_s": result.get("wall_s", 0.0),
        "rate": rate,
        "peak_mb": result.get("peak_mb", 0.0),
        "requests": result.get("requests"),
        "requests_ratio": (result["requests"] / result["min_requests"])
        if result.get("min_requests")
        else None,
    }
    parts, ok = [], True
    for key, op, bound in result.get("targets", []):
        got = values.get(key)
        if got is None:
            continue
        met = {"<=": got <= bound, ">=": got >= bound, "==": got == bound}[op]
        ok = ok and met
        fmt = f"{got:,.1f}" if isinstance(got, float) else f"{got:,}"
        parts.append(f"{key} {fmt} {op} {bound:,.1f}" + ("" if met else " NOT MET"))
    if not parts:
        return "-", ""
    return ("met" if ok else "not met"), "; ".join(parts)


def table(results: dict[str, dict[str, Any]], floors: dict[str, Any]) -> list[str]:
    head = (
        "| scenario | entities | wall s | entities/s | HTTP req / min | peak MB "
        "| vs floor | target | details |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for name, r in results.items():
        label = r.get("label") or LABELS.get(name, name)
        if "error" in r or "skipped" in r:
            lines.append(
                f"| {label} | | | | | | | not run | {r.get('error') or r.get('skipped')} |"
            )
            continue
        rate = r["entities"] / r["wall_s"] if r["wall_s"] else 0.0
        req = "-"
        if r.get("min_requests") is not None:
            req = (
                f"{r['requests']:,} {r['request_kind']} / {r['min_requests']:,} "
                f"= {r['requests'] / max(1, r['min_requests']):.2f}x"
            )
        floor = floors.get(name)
        vs = f"{rate / floor['rate']:.2f}x" if floor and floor.get("rate") else "n/a"
        verdict, why = _target(r)
        lines.append(
            f"| {label} | {r['entities']:,} {r['unit']} | {r['wall_s']:.2f} | {rate:,.0f} | {req} "
            f"| {r['peak_mb']:.0f} | {vs} | {verdict} | {why}; {r.get('notes', '')} |"
        )
    return lines


def _label(line: str) -> str:
    return line.split("|")[1].strip() if line.count("|") > 2 else ""


def _order(label: str) -> int:
    names = list(LABELS)
    for i, name in enumerate(names):
        if label == LABELS[name] or label.startswith(LABELS[name] + ":"):
            return i
    return len(names)


def merge(
    old: str, new: list[str], meta: str, names: list[str]
) -> tuple[list[str], str, list[str]]:
    """The table of ``old`` with the rows of ``new`` put in (same label: replaced), in the
    scenarios' order; the header line says which rows this run updated; and old's notes."""
    head = new[:2]
    rows = {_label(line): line for line in new[2:]}
    kept = [
        line
        for line in old.splitlines()
        if line.startswith("| ") and not line.startswith("| scenario |")
        if _label(line) not in rows
    ]
    merged = sorted(kept + list(rows.values()), key=lambda line: _order(_label(line)))
    first = next((line for line in old.splitlines()[1:] if line.strip()), "")
    parts = first.split(" | ")  # the full run's line, then one part per partial run
    redone = set(names)
    parts = parts[:1] + [
        part
        for part in parts[1:]
        if not set(part.removeprefix("rows updated ").split(":", 1)[0].split(", ")) <= redone
    ]
    first = " | ".join(parts)
    notes: list[str] = []
    for line in old.splitlines():
        if line.startswith("- "):
            notes.append(line[2:])
        elif line.startswith("  ") and notes:  # a note's nested lines stay with it
            notes[-1] += "\n" + line
    return [*head, *merged], f"{first} | rows updated {', '.join(names)}: {meta}", notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--no-floors", action="store_true", help="skip the floor scripts")
    ap.add_argument("--out", default=str(RESULTS), help="markdown file to write")
    a = ap.parse_args(argv)
    # scenarios copy their databases (a connected template per round): one secret key for all
    # of them through the environment, instead of a key file beside each copy
    if not os.environ.get("OMSFLOW_SECRET_KEY"):
        from cryptography.fernet import Fernet

        os.environ["OMSFLOW_SECRET_KEY"] = Fernet.generate_key().decode()
    from bench.scenarios import SCENARIOS, _pg_url

    names = [n.strip() for n in a.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(
            f"error: unknown scenario {unknown[0]!r} (one of {', '.join(SCENARIOS)})",
            file=sys.stderr,
        )
        return 2
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        result = run_scenario(name, a.quick)
        for i, row in enumerate(result.get("rows") or [result]):  # a scenario may give several
            results[name if i == 0 else f"{name}#{i}"] = {
                **row,
                "peak_mb": result.get("peak_mb", 0.0),
            }
    floors: dict[str, Any] = {}
    notes: list[str] = []
    if not a.no_floors:
        print("running floors ...", file=sys.stderr, flush=True)
        pg = _pg_url()
        floors, notes = run_floors(set(names), a.quick, pg.replace("+psycopg", "") if pg else None)
    lines = table(results, floors)
    meta = (
        f"{'quick' if a.quick else 'full'} sizes; python {platform.python_version()}; "
        f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}"
    )
    out = Path(a.out)
    notes.append(
        "vs floor: our entities/s divided by the floor's, measured in the same run "
        "(../shared/perf-floors); n/a: no matching floor script."
    )
    if a.only and out.exists():  # a partial run updates its rows of the existing table
        lines, meta, old_notes = merge(out.read_text(encoding="utf-8"), lines, meta, names)
        notes = list(dict.fromkeys([*old_notes, *notes]))
    doc = ["# omsflow benchmark", "", meta, "", *lines, ""]
    doc += [f"- {n}" for n in notes]
    text = "\n".join(doc) + "\n"
    print(text)
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
