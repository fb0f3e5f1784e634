"""The full catalogue read with parallel page reads gives exactly what the serial read gives:
the same pages, the same items in the same order, for about the same requests (sandbox
store over real HTTP; the real store's twin is tests/realstore/test_catalog_read.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.prestashop.records import CatalogItem
from sandbox.server import SandboxServer, start_sandbox

PRODUCTS, COMBINATIONS, STOCK_ROWS = 60, 56, 116  # what seed 4 generates


class Counting(httpx.BaseTransport):
    """The real HTTP transport, counting the requests in flight at once; ``after`` runs
    once after the first response whose URL contains ``trigger``."""

    def __init__(self, trigger: str = "", after: Callable[[], None] | None = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.trigger, self.after = trigger, after

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            response = self.inner.handle_request(request)
            response.read()
        finally:
            with self.lock:
                self.now -= 1
        after = self.after
        if after and self.trigger and self.trigger in str(request.url):
            self.after = None
            after()
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with start_sandbox(products=PRODUCTS, orders=0, seed=4, latency_ms=15) as server:
        yield server


def adapter(
    shop: SandboxServer, concurrency: int, page: int, transport: httpx.BaseTransport | None = None
) -> PrestaShopAdapter:
    client = PrestaShopClient(shop.url, shop.key, max_concurrency=concurrency, transport=transport)
    return PrestaShopAdapter(client, page_size=page)


def read(a: PrestaShopAdapter, after: int = 0) -> list[list[CatalogItem]]:
    with a:
        return list(a.catalog_pages(after_id=after))


def pages_of(n: int, size: int) -> int:
    return -(-n // size)


def parallel_requests(n: int, size: int) -> int:
    """One listing + the pages of a by-product stream; a last full page is followed by a
    probe, unless the listing already said nothing follows."""
    if n < size:
        return 1
    more = n - size
    return 2 + pages_of(more, size) + (1 if more and more % size == 0 else 0)


@pytest.mark.parametrize("size", [4, 7, 500])
@pytest.mark.slow
def test_parallel_pages_equal_serial_pages(shop: SandboxServer, size: int) -> None:
    serial_transport, parallel_transport = Counting(), Counting()
    serial_adapter = adapter(shop, 1, size, serial_transport)
    parallel_adapter = adapter(shop, 4, size, parallel_transport)
    serial = read(serial_adapter)
    parallel = read(parallel_adapter)

    assert parallel == serial
    items = [item for page in serial for item in page]
    ids = [item.product.id for item in items]
    assert len(ids) == PRODUCTS
    assert ids == sorted(ids)
    assert sum(len(i.combinations) for i in items) == COMBINATIONS
    assert sum(len(i.stock) for i in items) == STOCK_ROWS
    assert [len(p) for p in serial] == [size] * (PRODUCTS // size) + (
        [PRODUCTS % size] if PRODUCTS % size else []
    )

    # serial: keyset/offset pages until a short one
    assert dict(serial_adapter.client.stats) == {
        ("GET", "products"): PRODUCTS // size + 1,
        ("GET", "combinations"): COMBINATIONS // size + 1,
        ("GET", "stock_availables"): STOCK_ROWS // size + 1,
    }
    # parallel: one cheap id listing of the products; the rows' listing only when their
    # first page is full; the last product page is open-ended (a full one is probed)
    assert dict(parallel_adapter.client.stats) == {
        ("GET", "products"): 1 + PRODUCTS // size + 1,
        ("GET", "combinations"): parallel_requests(COMBINATIONS, size),
        ("GET", "stock_availables"): parallel_requests(STOCK_ROWS, size),
    }
    assert serial_transport.most == 1
    if size < PRODUCTS:
        assert 1 < parallel_transport.most <= 4


def test_parallel_read_resumes_after_a_committed_page(shop: SandboxServer) -> None:
    full = read(adapter(shop, 1, 7))
    after = full[3][-1].product.id
    resumed = read(adapter(shop, 4, 7, Counting()), after=after)
    assert resumed == read(adapter(shop, 1, 7), after=after)
    assert [i for p in resumed for i in p] == [i for p in full[4:] for i in p]


def test_products_created_during_the_read_are_read_once_in_order() -> None:
    """The last page is open-ended: products created after the id listing land there, and
    when it comes back full the read goes on by keyset."""
    with start_sandbox(products=PRODUCTS, orders=0, seed=4) as own:
        made: list[int] = []

        def create() -> None:
            with PrestaShopAdapter(PrestaShopClient(own.url, own.key)) as writer:
                for n in range(5):
                    made.append(
                        writer.create_product(name=f"Late {n}", reference=f"LATE-{n}", price=3).id
                    )

        transport = Counting(trigger="/api/products?", after=create)
        pages = read(adapter(own, 4, 7, transport))
    ids = [item.product.id for page in pages for item in page]
    assert len(made) == 5
    assert ids == sorted(set(ids))
    assert len(ids) == PRODUCTS + 5
    assert ids[-5:] == made
    assert [len(p) for p in pages][-2:] == [7, 2]  # the full open-ended page, then keyset


def test_a_failing_page_read_stops_the_read_and_leaves_no_thread(shop: SandboxServer) -> None:
    from engine.errors import ChannelNotFound

    class Breaking(Counting):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            url = str(request.url)
            if "/products?" in url and "filter%5Bid%5D=%5B" in url:  # a closed id range
                return httpx.Response(404, request=request)
            return super().handle_request(request)

    before = threading.active_count()
    with pytest.raises(ChannelNotFound):
        read(adapter(shop, 4, 7, Breaking()))
    assert threading.active_count() <= before
