"""The adapter and the connect probe against the sandbox store over real HTTP on loopback
(no shared wire-format code: the sandbox is written independently)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from engine.errors import ChannelAuthFailed, ChannelPermissionMissing, ChannelProtocolError
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.prestashop.connect import probe
from engine.runtime.channels.ratelimit import RetryPolicy
from sandbox.server import SandboxServer, start_sandbox

PERMISSIONS = {
    "configurations": ["GET"],
    "languages": ["GET"],
    "order_states": ["GET"],
    "orders": ["GET"],
    "order_histories": ["GET", "POST"],
    "order_carriers": ["GET", "PUT"],
    "products": ["GET", "POST", "PUT", "DELETE"],
    "combinations": ["GET", "POST", "PUT", "DELETE"],
    "stock_availables": ["GET", "PUT"],
    "categories": ["GET", "POST"],
    "manufacturers": ["GET", "POST", "PUT"],
    "product_options": ["GET", "POST"],
    "product_option_values": ["GET", "POST"],
    "images": ["GET", "POST"],
}
CHANNEL = SimpleNamespace(
    permissions=PERMISSIONS,
    status_map=SimpleNamespace(
        outbound={
            "New": "Payment accepted",
            "RFP": "Processing in progress",
            "In_transit": "Shipped",
            "Complete": "Delivered",
            "Packed": None,
        },
        inbound={"Payment accepted": {}, "Canceled": {}, "Teleported": {}},
        imported=("Payment accepted",),
    ),
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=120, orders=40, seed=3, hang_seconds=0.6) as server:
        yield server


def adapter(server: SandboxServer, **kw) -> PrestaShopAdapter:
    client = PrestaShopClient(server.url, server.key, **kw)
    return PrestaShopAdapter(
        client, page_size=kw.pop("page_size", 50) if "page_size" in kw else 50
    )


def set_faults(server: SandboxServer, **rates: float) -> None:
    for name, value in rates.items():
        setattr(server.faults, name, value)


def catalogue(a: PrestaShopAdapter) -> list:
    return list(a.products())


def test_faulty_catalogue_read_equals_clean_read(sandbox: SandboxServer) -> None:
    with adapter(sandbox) as a:
        clean = catalogue(a)
        clean_requests = a.client.total_requests
    assert len(clean) == 120
    assert any(item.combinations for item in clean)
    assert all(item.stock for item in clean)
    set_faults(sandbox, error_rate=0.2, timeout_rate=0.05)
    try:
        # The timeout must exceed a healthy page's time on a loaded 2-core machine, or the
        # injected hangs are not the only timeouts and retries may run out.
        with adapter(
            sandbox,
            timeout=1.5,
            connect_timeout=1.5,
            retry=RetryPolicy(attempts=12, backoff_seconds=0.01, max_backoff_seconds=0.05),
        ) as a:
            faulty = catalogue(a)
            faulty_requests = a.client.total_requests
    finally:
        set_faults(sandbox, error_rate=0.0, timeout_rate=0.0)
    assert faulty == clean
    assert faulty_requests > clean_requests  # the faults were really hit and retried
    # batch reads: far fewer requests than products
    assert clean_requests < len(clean) / 5


def test_orders_and_state_change_round_trip(sandbox: SandboxServer) -> None:
    with adapter(sandbox) as a:
        ids, missing = a.resolve_states(["Payment accepted", "Shipped", "Nope"])
        assert missing == ["Nope"]
        assert set(ids) == {"Payment accepted", "Shipped"}
        orders = list(a.orders_since_id(0))
        assert len(orders) == 40
        assert [o.id for o in orders] == sorted(o.id for o in orders)
        assert all(o.rows and o.reference for o in orders)
        order = next(o for o in orders if o.current_state != ids["Shipped"])
        change = a.set_order_state(order.id, ids["Shipped"])
        assert change.changed
        assert a.current_state(order.id) == ids["Shipped"]
        assert not a.set_order_state(order.id, ids["Shipped"]).changed
        assert a.client.stats[("POST", "order_histories")] == 1
        changed = list(a.orders_changed_since(order.date_upd or "2000-01-01 00:00:00"))
        assert order.id in {o.id for o in changed}
        by_state = list(a.orders_by_state([ids["Shipped"]]))
        assert order.id in {o.id for o in by_state}
        carrier = a.set_tracking_number(order.id, "OMS123456789")
        assert carrier.tracking_number == "OMS123456789"
        assert a.get_order(order.id).shipping_number in {"OMS123456789", ""}


def test_catalogue_writes_round_trip(sandbox: SandboxServer) -> None:
    with adapter(sandbox) as a:
        item = next(i for i in a.products() if i.combinations)
        comb = item.combinations[0]
        row = a.set_stock(item.product.id, comb.id, 17)
        assert row.quantity == 17
        fresh = a.get_product(item.product.id)
        assert fresh.quantity(comb.id) == 17
        assert a.set_price(item.product.id, "12.5").price == 12.5
        assert a.set_combination_price_impact(comb.id, "-1").price == -1
        assert not a.set_active(item.product.id, False).active
        man = a.create_manufacturer(name="Omsflow Brand")
        cat = a.create_category(name="Omsflow Cat")
        opt = a.create_product_option(name="Size")
        val = a.create_product_option_value(option_id=opt.id, name="XL")
        p = a.create_product(
            name="New tee",
            reference="NT-1",
            price="9.99",
            category_id=cat.id,
            manufacturer_id=man.id,
        )
        c = a.create_combination(
            product_id=p.id, reference="NT-1-XL", price_impact="1", option_value_ids=[val.id]
        )
        got = a.get_product(p.id)
        assert got.product.reference == "NT-1"
        assert got.product.id_manufacturer == man.id
        assert [x.reference for x in got.combinations] == ["NT-1-XL"]
        a.delete_combination(c.id)
        a.delete_product(p.id)
        assert a.client.stats[("DELETE", "products")] == 1
        assert {m.name for m in a.manufacturers()} >= {"Omsflow Brand"}
        assert a.categories()
        assert a.product_options()
        assert a.product_option_values()


def test_probe_succeeds_with_the_right_key(sandbox: SandboxServer) -> None:
    report = probe(sandbox.url, sandbox.key, CHANNEL)
    assert report.api_url == sandbox.url + "/api"
    assert report.missing_states == ("Teleported",)
    assert report.state_ids["Payment accepted"] > 0
    assert "Shipped" in report.state_ids
    assert "PUT" in report.granted["stock_availables"]


def test_probe_fails_clearly_with_a_wrong_key(sandbox: SandboxServer) -> None:
    with pytest.raises(ChannelAuthFailed) as info:
        probe(sandbox.url, "A" * 32, CHANNEL)
    assert "fix:" in str(info.value)
    assert "A" * 32 not in str(info.value)


def test_probe_names_the_missing_permission(sandbox: SandboxServer) -> None:
    key = "LACKSPUT" + "0" * 24
    perms = {k: list(v) for k, v in PERMISSIONS.items()}
    perms["stock_availables"] = ["GET"]
    r = httpx.post(
        sandbox.url + "/__sandbox/keys",
        json={"key": key, "permissions": perms},
        auth=(sandbox.key, ""),
    )
    assert r.status_code < 300, r.text
    with pytest.raises(ChannelPermissionMissing) as info:
        probe(sandbox.url, key, CHANNEL)
    assert str(info.value) == (
        "prestashop: key lacks PUT on stock_availables "
        "(fix: enable it in Advanced Parameters > Webservice)"
    )


@pytest.fixture(scope="module")
def html_site() -> Iterator[str]:
    async def page(request):
        return HTMLResponse("<!DOCTYPE html><html><body><h1>My shop</h1></body></html>")

    app = Starlette(routes=[Route("/{path:path}", page)])
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_probe_refuses_a_url_that_is_not_a_webservice(html_site: str) -> None:
    with pytest.raises(ChannelProtocolError) as info:
        probe(html_site, "B" * 32, CHANNEL)
    msg = str(info.value)
    assert "HTML page" in msg
    assert "not the PrestaShop webservice" in msg
    assert "fix:" in msg
    assert "\n" not in msg


def test_probe_of_an_unreachable_url_is_one_line() -> None:
    from engine.errors import ChannelUnavailable

    with pytest.raises(ChannelUnavailable) as info:
        probe("http://127.0.0.1:9", "C" * 32, CHANNEL, timeout=1)
    assert "\n" not in str(info.value)


def test_get_products_reads_many_as_get_product_reads_one(sandbox: SandboxServer) -> None:
    with adapter(sandbox) as a:
        items = list(a.products())
        wanted = [i.product.id for i in items[:7]] + [999_999]  # the last one is not there
        before = a.client.total_requests
        got = a.get_products(wanted, chunk=5)
        assert a.client.total_requests - before == 6  # 3 per chunk of ids, not 3 per product
        assert [g.product.id for g in got] == wanted[:-1]
        for g in got:
            one = a.get_product(g.product.id)
            assert (g.product, g.combinations, g.stock, g.cover_image_url) == (
                one.product,
                one.combinations,
                one.stock,
                one.cover_image_url,
            )
        assert any(g.combinations for g in got) or not any(i.combinations for i in items[:7])
