"""Listing over real HTTP to the sandbox store and a real database: the 500-row import,
the request-free re-import, bad rows, retries without duplicates, updates, and the
catalogue sync leaving what listing recorded alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.tables import BindingRow, InventoryRow, ProductRow
from engine.runtime.listing.apply import apply_drafts
from engine.runtime.listing.drafts import ProductDraft
from engine.runtime.listing.sample import make_sample_workbook, sample_drafts
from engine.runtime.listing.target import PrestaShopTarget
from engine.runtime.listing.workbook import read_workbook
from engine.runtime.specs import load_bundle
from sandbox.images import png_bytes
from sandbox.server import SandboxServer, start_sandbox

BUNDLE = load_bundle()


def fake_images(source: str) -> tuple[str, bytes, str]:
    """The sample's https://img.example.com URLs cannot be fetched here (no network)."""
    return source.rsplit("/", 1)[-1], png_bytes(len(source)), "image/png"


class Env:
    def __init__(self, sandbox: SandboxServer, sessions: sessionmaker[Session], store_id: int):
        self.sandbox = sandbox
        self.sessions = sessions
        self.store_id = store_id
        self.adapter = PrestaShopAdapter.from_channel(
            sandbox.url, sandbox.key, BUNDLE.channel, rate_limit=None
        )

    def target(self, fetch: Any = fake_images) -> PrestaShopTarget:
        return PrestaShopTarget(self.adapter, fetch_image=fetch)

    def apply(self, drafts: list[ProductDraft], **kw: Any) -> Any:
        fetch = kw.pop("fetch", fake_images)
        return apply_drafts(self.sessions, self.store_id, self.target(fetch), drafts, **kw)

    def stats(self) -> dict[str, dict[str, int]]:
        doc = httpx.get(
            self.sandbox.url + "/__sandbox/stats", params={"ws_key": self.sandbox.key}
        ).json()
        return dict(doc["requests"])

    def writes(self) -> int:
        return sum(
            n
            for per in self.stats().values()
            for m, n in per.items()
            if m in ("POST", "PUT", "DELETE", "PATCH")
        )

    def store_products(self) -> dict[str, dict[str, Any]]:
        st = self.sandbox.store
        return {p["reference"]: p for p in st.records("products")}


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=0, orders=0) as sb:
        yield sb


def _env(url: str, sandbox: SandboxServer) -> Iterator[Env]:
    engine = dbsession.make_engine(url)
    dbsession.upgrade(engine)
    sessions = dbsession.session_factory(engine)
    with sessions.begin() as s:
        store_id = stores.save_store(s, "main", sandbox.url, sandbox.key, {}).id
    env = Env(sandbox, sessions, store_id)
    try:
        yield env
    finally:
        env.adapter.close()
        engine.dispose()


@pytest.fixture
def env(db_url: str, sandbox: SandboxServer) -> Iterator[Env]:
    yield from _env(db_url, sandbox)


@pytest.fixture
def sqlite_env(tmp_path: Path, sandbox: SandboxServer) -> Iterator[Env]:
    yield from _env(f"sqlite:///{tmp_path / 'oms.db'}", sandbox)


def _lang(value: Any) -> str:
    return str(next(iter(value.values()))) if isinstance(value, dict) else str(value)


def assert_store_holds(env: Env, drafts: list[ProductDraft]) -> None:
    """The sandbox's own objects equal the drafts: products, combinations, stock, names."""
    st = env.sandbox.store
    products = env.store_products()
    assert sorted(products) == sorted(d.sku for d in drafts)
    for d in drafts:
        p = products[d.sku]
        pid = int(p["id"])
        assert _lang(p["name"]) == d.name
        assert Decimal(p["price"]) == d.price
        assert p["active"] == ("1" if d.active else "0")
        man = st.get("manufacturers", int(p["id_manufacturer"]))
        assert man is not None
        assert man["name"] == d.brand
        cat = st.get("categories", int(p["id_category_default"]))
        assert cat is not None
        assert _lang(cat["name"]) == d.category
        assert len(p["associations"].get("images") or []) == (1 if d.image else 0)
        combos = {st.get("combinations", c)["reference"]: c for c in st.combinations_of(pid)}
        assert sorted(combos) == sorted(v.sku for v in d.variants)
        for v in d.variants:
            combo = st.get("combinations", combos[v.sku])
            assert Decimal(combo["price"]) == v.price_impact  # the impact, not the price
            assert st.stock_of(pid, combos[v.sku]) == v.stock
            names = {
                _lang(st.get("product_option_values", int(i["id"]))["name"])
                for i in combo["associations"]["product_option_values"]
            }
            assert names == {value for _, value in v.attributes}
        if not d.variants:
            assert st.stock_of(pid) == d.stock


@pytest.mark.slow
def test_500_row_import_creates_exactly_the_file_then_reimport_writes_nothing(
    sqlite_env: Env, tmp_path: Path
) -> None:
    env = sqlite_env
    sample = make_sample_workbook(tmp_path / "bulk.xlsx")
    read = read_workbook(sample.path, sources=BUNDLE.channel.prices.sources)
    assert read.rows_read == 500
    assert not read.errors

    first = env.apply(read.drafts)
    assert first.counts() == {"created": 200, "updated": 0, "unchanged": 0, "failed": 0}
    assert_store_holds(env, sample.drafts)
    with env.sessions() as s:
        rows = {r.sku: r for r in s.scalars(select(ProductRow))}
        assert len(rows) == 600  # 100 parents + 400 variants + 100 singles
        inv = {i.sku: i.on_hand for i in s.scalars(select(InventoryRow))}
        kinds = {k for (k,) in s.execute(select(BindingRow.kind).distinct())}
    var = sample.drafts[0]
    ids = rows[var.variants[0].sku].store_ids[str(env.store_id)]
    assert ids["combination_id"]
    assert ids["stock_available_id"]
    assert ids["product_id"]
    assert rows[var.variants[0].sku].parent_id == rows[var.sku].id
    assert inv[var.variants[0].sku] == var.variants[0].stock
    assert {"product", "combination", "stock_available", "brand", "category"} <= kinds

    before = env.stats()
    second = env.apply(read_workbook(sample.path).drafts)
    assert second.counts() == {"created": 0, "updated": 0, "unchanged": 200, "failed": 0}
    assert second.requests == {}
    assert env.stats() == before  # not a single request reached the store


@pytest.mark.slow
def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_written_for_them(
    env: Env, tmp_path: Path
) -> None:
    sample = make_sample_workbook(
        tmp_path / "bad.xlsx", variation_products=15, single_products=15, bad_rows=10, seed=3
    )
    read = read_workbook(sample.path)
    assert sorted({(e.row, e.column) for e in read.errors}) == sample.bad
    report = env.apply(read.drafts)
    assert report.counts()["created"] == 20
    held = env.store_products()
    assert not (set(held) & sample.bad_products)
    assert_store_holds(env, sample.good_drafts)
    with env.sessions() as s:
        skus = set(s.scalars(select(ProductRow.sku)))
    bad_skus = {sku for d in sample.drafts if d.sku in sample.bad_products for sku in d.skus()}
    assert not (skus & bad_skus)


@pytest.mark.slow
def test_a_failed_product_does_not_stop_the_others_and_a_retry_adds_no_duplicate(
    env: Env,
) -> None:
    drafts = sample_drafts(variation_products=3, variants_each=2, single_products=3, seed=5)
    broken = drafts[1].image

    def flaky(source: str) -> tuple[str, bytes, str]:
        if source == broken:
            raise ConfigError(f"image {source}: cannot download (test)")
        return fake_images(source)

    first = env.apply(drafts, fetch=flaky)
    outcome = {o.sku: o for o in first.outcomes}
    assert outcome[drafts[1].sku].kind == "failed"
    assert "cannot download" in (outcome[drafts[1].sku].error or "")
    assert sum(o.kind == "create" for o in first.outcomes) == 5
    # the product itself was created and bound; only its image is missing
    assert drafts[1].sku in env.store_products()

    second = env.apply(drafts)
    changed = {o.sku: o for o in second.outcomes if o.kind != "unchanged"}
    assert list(changed) == [drafts[1].sku]
    assert changed[drafts[1].sku].fields == ("image",)
    refs = [p["reference"] for p in env.sandbox.store.records("products")]
    assert sorted(refs) == sorted(d.sku for d in drafts)  # no duplicate
    assert_store_holds(env, drafts)


@pytest.mark.slow
def test_products_created_by_an_unrecorded_run_are_adopted_not_duplicated(
    env: Env, tmp_path: Path
) -> None:
    drafts = sample_drafts(variation_products=2, variants_each=3, single_products=2, seed=7)
    env.apply(drafts)
    # a run whose bindings were lost: a fresh OMS database against the same store
    fresh = _env(f"sqlite:///{tmp_path / 'other.db'}", env.sandbox)
    other = next(fresh)
    report = other.apply(drafts)
    assert report.counts()["created"] == 0
    assert report.counts()["failed"] == 0
    assert len(list(env.sandbox.store.records("products"))) == 4
    assert len(list(env.sandbox.store.records("combinations"))) == 6
    writes = other.writes()
    again = other.apply(drafts)
    assert again.counts()["unchanged"] == 4
    assert other.writes() == writes
    fresh.close()


def test_an_update_writes_only_what_changed_and_keeps_impacts_relative(env: Env) -> None:
    drafts = sample_drafts(variation_products=2, variants_each=3, single_products=1, seed=11)
    env.apply(drafts)
    var, single = drafts[0], drafts[1]
    v0 = replace(var.variants[0], stock=var.variants[0].stock + 7)
    new_var = replace(
        var,
        name=var.name + " v2",
        price=var.price + 1,
        selling_price=var.price + 1,
        variants=(v0, *var.variants[1:]),
    )
    new_single = replace(single, stock=single.stock + 3, active=not single.active)
    changed = [new_var, new_single, *drafts[2:]]
    before = env.stats()
    report = env.apply(changed)
    kinds = {o.sku: (o.kind, o.fields) for o in report.outcomes}
    assert kinds[new_var.sku] == ("update", ("name", "price", "variants"))
    assert kinds[new_single.sku] == ("update", ("active", "stock"))
    others = [k for sku, (k, _) in kinds.items() if sku not in (new_var.sku, new_single.sku)]
    assert others == ["unchanged"]
    after = env.stats()
    assert after["products"].get("POST", 0) == before["products"].get("POST", 0)
    assert after["combinations"].get("POST", 0) == before["combinations"].get("POST", 0)
    assert_store_holds(env, changed)
    with env.sessions() as s:
        row = s.scalars(select(ProductRow).where(ProductRow.sku == v0.sku)).one()
        assert row.price == new_var.price + v0.price_impact
        assert s.get(InventoryRow, v0.sku).on_hand == v0.stock  # type: ignore[union-attr]
    assert env.apply(changed).counts()["unchanged"] == 3


def test_dry_run_plans_without_writing(env: Env) -> None:
    drafts = sample_drafts(variation_products=1, variants_each=2, single_products=1)
    report = env.apply(drafts, dry_run=True)
    assert [o.kind for o in report.outcomes] == ["create", "create"]
    assert env.writes() == 0
    with env.sessions() as s:
        assert s.scalars(select(ProductRow)).first() is None
