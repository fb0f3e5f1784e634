"""A sandbox store in its own process, so a scenario's peak memory is omsflow's alone.

Prints one JSON line ``{"url", "key"}`` when ready; serves until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import sys

from sandbox.server import start_sandbox
from sandbox.store import SandboxStore


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--products", type=int, default=100)
    ap.add_argument("--orders", type=int, default=0)
    ap.add_argument("--combination-share", type=float, default=0.5)
    ap.add_argument("--combinations-per-product", type=int, default=0, help="0: 2-4 at random")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    store = SandboxStore.generate(
        products=a.products,
        orders=a.orders,
        seed=a.seed,
        combination_share=a.combination_share,
        combinations_per_product=a.combinations_per_product or None,
    )
    server = start_sandbox(store=store, latency_ms=a.latency_ms, log_level="critical")
    print(json.dumps({"url": server.url, "key": server.key}), flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
