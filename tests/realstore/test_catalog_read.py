"""The full catalogue read against the real PrestaShop 8.2.1: parallel page reads (id listing
without ``display``, closed id ranges, offset pages sorted by product) give exactly the pages
of the serial read, and the store's own catalogue."""

from __future__ import annotations

import subprocess

import pytest

from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.prestashop.records import CatalogItem

from . import harness

pytestmark = pytest.mark.realstore


def read(
    rps: harness.RealStore, concurrency: int, page: int, after: int = 0
) -> tuple[list[list[CatalogItem]], dict[tuple[str, str], int]]:
    client = PrestaShopClient(rps.url, rps.key, max_concurrency=concurrency, timeout=60)
    with PrestaShopAdapter(client, page_size=page) as adapter:
        pages = list(adapter.catalog_pages(after_id=after))
        return pages, dict(client.stats)


def count(rps: harness.RealStore, table: str) -> int:
    return int(rps.scalar(f"SELECT COUNT(*) FROM {table}") or 0)


@pytest.mark.parametrize("page", [7, 500])
def test_parallel_read_equals_serial_read_on_the_demo_store(
    rps: harness.RealStore, page: int
) -> None:
    serial, serial_stats = read(rps, 1, page)
    parallel, parallel_stats = read(rps, 4, page)

    assert parallel == serial
    items = [i for p in serial for i in p]
    assert [i.product.id for i in items] == [
        int(r[0]) for r in rps.sql("SELECT id_product FROM ps_product ORDER BY id_product")
    ]
    assert sum(len(i.combinations) for i in items) == count(rps, "ps_product_attribute")
    assert sum(len(i.stock) for i in items) == count(rps, "ps_stock_available")
    for item in items:  # each combination and stock row sits with its own product
        assert {c.id_product for c in item.combinations} <= {item.product.id}
        assert {s.id_product for s in item.stock} == {item.product.id}
    # about the same requests: a product id listing, and a rows listing only when a
    # stream has more than one page
    extra = sum(parallel_stats.values()) - sum(serial_stats.values())
    assert 0 <= extra <= 3
    if page == 500:
        assert extra == 1


def test_parallel_read_of_a_grown_store_resumes_like_the_serial_one(
    rps: harness.RealStore,
) -> None:
    grow = harness.realps_dir() / "grow.sh"
    subprocess.run(["bash", str(grow), rps.database, "1100"], check=True, capture_output=True)
    total = count(rps, "ps_product")

    parallel, stats = read(rps, 4, 500)
    serial, _ = read(rps, 1, 500)
    assert parallel == serial
    assert [len(p) for p in parallel] == [500, 500, total - 1000]
    assert stats[("GET", "products")] == 1 + 3  # the id listing, three pages

    after = parallel[0][-1].product.id  # resume after the first committed page
    resumed, _ = read(rps, 4, 500, after=after)
    assert resumed == parallel[1:]
