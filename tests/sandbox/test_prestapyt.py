"""A client we did not write (prestapyt) against the sandbox, as against a real store.

prestapyt deviates from the protocol in one place: it warns ("may not be compatible") for any
PSWS-Version above 1.7.8.999, so against an 8.x store it always warns; the warning is
silenced here, not bent in the sandbox.
"""

from __future__ import annotations

import pytest
from prestapyt import PrestaShopWebServiceDict, PrestaShopWebServiceError

from sandbox.server import SandboxServer

pytestmark = pytest.mark.filterwarnings("ignore:This library may not be compatible:UserWarning")


def test_prestapyt_lists_reads_and_writes(fresh_shop: SandboxServer) -> None:
    store = fresh_shop.store
    ps = PrestaShopWebServiceDict(fresh_shop.url + "/api", fresh_shop.key)
    # list with filter / sort / limit
    shipped = ps.search(
        "orders", options={"filter[current_state]": "[4|5]", "sort": "[id_DESC]", "limit": "3"}
    )
    want = sorted(
        (o for o, r in store.tables["orders"].items() if r["current_state"] in ("4", "5")),
        reverse=True,
    )[:3]
    assert shipped == want
    assert ps.search("orders", options={"limit": "0"}) == []
    # display
    listed = ps.get(
        "stock_availables",
        options={
            "display": "[id,quantity]",
            "filter[id_product]": "1",
            "filter[id_product_attribute]": "0",
        },
    )
    row = listed["stock_availables"]["stock_available"]
    assert int(row["quantity"]) == store.stock_of(1)
    # read
    order = ps.get("orders", shipped[0])["order"]
    assert int(order["id"]) == shipped[0]
    assert order["associations"]["order_rows"]["order_row"]
    # create an order_history
    oid = next(o for o, r in store.tables["orders"].items() if r["current_state"] == "2")
    made = ps.add("order_histories", {"order_history": {"id_order": oid, "id_order_state": 3}})
    assert int(made["prestashop"]["order_history"]["id_order_state"]) == 3
    assert store.order_state(oid) == 3
    # edit a stock_available: full object from GET, quantity changed
    pid = next(p for p in sorted(store.tables["products"]) if store.combinations_of(p))
    combo = store.combinations_of(pid)[0]
    sid = store.stock_index[(pid, combo)]
    stock = ps.get("stock_availables", sid)
    stock["stock_available"]["quantity"] = "41"
    ps.edit("stock_availables", stock)
    assert store.stock_of(pid, combo) == 41
    assert store.stock_of(pid) == sum(store.stock_of(pid, c) for c in store.combinations_of(pid))
    # a refused write surfaces as prestapyt's error with the store's code
    with pytest.raises(PrestaShopWebServiceError) as err:
        ps.add("stock_availables", {"stock_available": {"id_product": 1}})
    assert err.value.error_code == 405 or "101" in str(err.value)
