"""The harness itself: the store answers as PrestaShop 8.2.1 and ``reset`` puts it back."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.realstore


def test_real_store_answers_and_reset_restores(rps) -> None:
    with rps.client() as c:
        r = c.get("/")
        assert r.status_code == 200
        assert r.headers["psws-version"].startswith("8.2")
    before = rps.scalar(
        "SELECT quantity FROM ps_stock_available WHERE id_product=6 AND id_product_attribute=0"
    )
    rps.sql(
        "UPDATE ps_stock_available SET quantity=7 WHERE id_product=6 AND id_product_attribute=0"
    )
    rps.sql("CREATE TABLE zz_test_made (a INT)")
    restored = rps.reset()
    assert "ps_stock_available" in restored
    assert "zz_test_made" in restored
    assert (
        rps.scalar(
            "SELECT quantity FROM ps_stock_available WHERE id_product=6 AND id_product_attribute=0"
        )
        == before
    )
    assert "zz_test_made" not in rps.tables()
