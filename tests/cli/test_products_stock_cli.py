"""Stock through the listing commands (issue 13): ``products create`` without ``--stock``
leaves an existing product's stock alone; ``products delete/deactivate`` of a SKU that open
orders reserve needs ``--force``; ``products create --stock`` below what is reserved moves the
newest orders to Partial. Click's CliRunner in-process, the sandbox store over loopback HTTP,
a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main, omsflow
from engine.runtime import inventory, service
from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.tables import OrderRow
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.specs import load_bundle
from sandbox.server import SandboxServer, start_sandbox

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=0, orders=0) as sb:
        yield sb


@pytest.fixture
def db(tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    engine = dbsession.make_engine(url)
    dbsession.upgrade(engine)
    sessions = dbsession.session_factory(engine)
    with sessions.begin() as s:
        stores.save_store(s, "main", sandbox.url, sandbox.key, {})
    yield sessions
    engine.dispose()


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(omsflow, list(args), input=input, catch_exceptions=False)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Through ``cli.main``: its error boundary prints refusals as one line / JSON."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def store_qty(sandbox: SandboxServer, sku: str) -> int:
    product = next(p for p in sandbox.store.records("products") if p["reference"] == sku)
    return sandbox.store.stock_of(int(product["id"]))


def oms_level(db: Any, sku: str) -> inventory.StockLevel:
    with db() as s:
        return inventory.levels(s, [sku])[sku]


def order(db: Any, ref: str, minutes: int, lines: dict[str, int]) -> str:
    placed = NewOrder(
        ref, T0 + timedelta(minutes=minutes), [NewLine(k, v) for k, v in lines.items()]
    )
    res = service.create_order(db, load_bundle(), placed, idempotency_key=f"t:{ref}", at=T0)
    return str(res.state)


def states(db: Any) -> dict[str, str]:
    with db() as s:
        return dict(s.execute(select(OrderRow.reference, OrderRow.state)).all())


# --------------------------------------------------------------------------- keep stock


def test_create_again_without_stock_keeps_the_stock_in_the_oms_and_the_store(
    db: Any, sandbox: SandboxServer
) -> None:
    made = run("products", "create", "--sku", "S1", "--name", "Mug", "--price", "10.50",
               "--stock", "7")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert (store_qty(sandbox, "S1"), oms_level(db, "S1").on_hand) == (7, 7)

    renamed = run("products", "create", "--sku", "S1", "--name", "Mug v2", "--price", "10.50",
                  "--json")  # fmt: skip
    assert renamed.exit_code == 0, renamed.output
    (outcome,) = json.loads(renamed.output)["products"]
    assert (outcome["result"], outcome["fields"]) == ("update", ["name"])
    assert (store_qty(sandbox, "S1"), oms_level(db, "S1").on_hand) == (7, 7)
    product = next(p for p in sandbox.store.records("products") if p["reference"] == "S1")
    assert "Mug v2" in json.dumps(product["name"])

    # --stock given: it is written; a new product without --stock starts at 0
    assert run("products", "create", "--sku", "S1", "--name", "Mug v2", "--price", "10.50",
               "--stock", "3").exit_code == 0  # fmt: skip
    assert (store_qty(sandbox, "S1"), oms_level(db, "S1").on_hand) == (3, 3)
    assert run("products", "create", "--sku", "S2", "--name", "Cup", "--price", "4").exit_code == 0
    assert (store_qty(sandbox, "S2"), oms_level(db, "S2").on_hand) == (0, 0)


@pytest.mark.slow
def test_a_file_without_stock_keeps_each_variants_stock(
    db: Any, sandbox: SandboxServer, tmp_path: Path
) -> None:
    (tmp_path / "tee.yaml").write_text(
        "sku: TEE\nname: Tee\nprice: '20.00'\nvariants:\n"
        "  - {sku: TEE-S, attributes: {Size: S}, stock: 3}\n"
        "  - {sku: TEE-M, attributes: {Size: M}, stock: 4}\n"
    )
    assert run("products", "create", "--from", "tee.yaml").exit_code == 0
    (tmp_path / "tee2.yaml").write_text(
        "sku: TEE\nname: Tee shirt\nprice: '20.00'\nvariants:\n"
        "  - {sku: TEE-S, attributes: {Size: S}}\n"
        "  - {sku: TEE-M, attributes: {Size: M}, stock: 9}\n"
    )
    again = run("products", "create", "--from", "tee2.yaml")
    assert again.exit_code == 0, again.output
    assert (oms_level(db, "TEE-S").on_hand, oms_level(db, "TEE-M").on_hand) == (3, 9)
    pid = int(next(p for p in sandbox.store.records("products") if p["reference"] == "TEE")["id"])
    by_ref = {sandbox.store.get("combinations", c)["reference"]: c
              for c in sandbox.store.combinations_of(pid)}  # fmt: skip
    assert sandbox.store.stock_of(pid, by_ref["TEE-S"]) == 3
    assert sandbox.store.stock_of(pid, by_ref["TEE-M"]) == 9


# --------------------------------------------------------------------------- stock set


def test_stock_set_below_reserved_shorts_the_newest_order_and_refuses_below_released(
    db: Any, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("products", "create", "--sku", "S1", "--name", "Mug", "--price", "5",
               "--stock", "4").exit_code == 0  # fmt: skip
    assert order(db, "OLD", 10, {"S1": 2}) == "New"
    assert order(db, "YOUNG", 20, {"S1": 2}) == "New"

    code, out, err = run_main(capsys, "stock", "set", "S1", "2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["on_hand"], doc["reserved"], doc["available"]) == (2, 2, 0)
    assert [doc["orders"][str(o)] for o in doc["shorted_orders"]] == ["YOUNG"]
    assert states(db) == {"OLD": "New", "YOUNG": "Partial"}

    code, out, err = run_main(capsys, "stock", "adjust", "S1", "+2")
    assert code == 0, err
    assert out.strip().endswith("1 Partial order(s) now New: YOUNG")

    service.apply_inbound(db, load_bundle(), reference="OLD", trigger="release",
                          source="user", idempotency_key="t:rel", at=T0)  # fmt: skip
    code, out, err = run_main(capsys, "stock", "set", "S1", "1")
    assert code == 78
    [line] = err.strip().splitlines()
    assert line.startswith("error: stock set S1 1: 2 unit(s) of S1 are held by order(s)")
    assert "OLD (RFP, 2)" in line
    code, out, err = run_main(capsys, "stock", "adjust", "S1", "-3", "--json")
    assert code == 78
    refused = json.loads(out)
    assert [o["reference"] for o in refused["orders"]] == ["OLD"]
    assert refused["held"] == 2
    assert (oms_level(db, "S1").on_hand, states(db)) == (4, {"OLD": "RFP", "YOUNG": "New"})

    code, out, err = run_main(capsys, "stock", "set", "S1", "2")
    assert code == 0, err
    assert "1 order(s) moved to Partial (stock short): YOUNG" in out


def test_stock_set_on_a_product_with_variants_is_refused_naming_them(
    db: Any, sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tee.yaml").write_text(
        "sku: TEE\nname: Tee\nprice: '20.00'\nvariants:\n"
        "  - {sku: TEE-S, attributes: {Size: S}, stock: 3}\n"
        "  - {sku: TEE-M, attributes: {Size: M}, stock: 4}\n"
    )
    assert run("products", "create", "--from", "tee.yaml").exit_code == 0
    code, _out, err = run_main(capsys, "stock", "set", "TEE", "5")
    assert code == 78
    [line] = err.strip().splitlines()
    assert line.startswith("error: TEE has variants")
    assert "TEE-M, TEE-S" in line
    code, out, _err = run_main(capsys, "stock", "adjust", "TEE", "+1", "--json")
    assert (code, json.loads(out)["variants"]) == (78, ["TEE-M", "TEE-S"])
    assert oms_level(db, "TEE").on_hand == 0


def test_listing_a_lower_stock_follows_the_stock_rules(
    db: Any, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("products", "create", "--sku", "S1", "--name", "Mug", "--price", "5",
               "--stock", "5").exit_code == 0  # fmt: skip
    order(db, "REL", 5, {"S1": 1})
    order(db, "OLD", 10, {"S1": 2})
    order(db, "YOUNG", 20, {"S1": 2})
    service.apply_inbound(db, load_bundle(), reference="REL", trigger="release",
                          source="user", idempotency_key="t:rel", at=T0)  # fmt: skip
    before = store_qty(sandbox, "S1")

    # below what the released order holds: the product fails before any store write
    code, out, err = run_main(capsys, "products", "create", "--sku", "S1", "--name", "Mug",
                              "--price", "5", "--stock", "0", "--json")  # fmt: skip
    assert code == 1
    (outcome,) = json.loads(out)["products"]
    assert outcome["result"] == "failed"
    assert "REL (RFP, 1)" in outcome["error"]
    assert store_qty(sandbox, "S1") == before
    assert states(db) == {"REL": "RFP", "OLD": "New", "YOUNG": "New"}

    # below what is reserved: the newest order goes to Partial, in the binding transaction
    code, out, err = run_main(capsys, "products", "create", "--sku", "S1", "--name", "Mug",
                              "--price", "5", "--stock", "3")  # fmt: skip
    assert code == 0, err
    assert "S1: update (product 1); 1 order(s) moved to Partial: YOUNG" in out
    assert states(db) == {"REL": "RFP", "OLD": "New", "YOUNG": "Partial"}
    level = oms_level(db, "S1")
    assert (level.on_hand, level.reserved, level.available) == (3, 3, 0)

    # more stock serves the waiting order again
    code, out, err = run_main(capsys, "products", "create", "--sku", "S1", "--name", "Mug",
                              "--price", "5", "--stock", "6")  # fmt: skip
    assert "1 Partial order(s) now New: YOUNG" in out
    assert states(db)["YOUNG"] == "New"


# --------------------------------------------------------------------------- delete / deactivate


@pytest.mark.slow
def test_delete_or_deactivate_of_held_skus_needs_force_and_names_the_orders(
    db: Any, sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for sku in ("S1", "S2"):
        assert run("products", "create", "--sku", sku, "--name", sku, "--price", "5",
                   "--stock", "5").exit_code == 0  # fmt: skip
    (tmp_path / "tee.yaml").write_text(
        "sku: TEE\nname: Tee\nprice: '20.00'\nvariants:\n"
        "  - {sku: TEE-S, attributes: {Size: S}, stock: 3}\n"
        "  - {sku: TEE-M, attributes: {Size: M}, stock: 4}\n"
    )
    assert run("products", "create", "--from", "tee.yaml").exit_code == 0
    assert order(db, "HOLD-1", 10, {"S1": 2}) == "New"
    assert order(db, "WAIT-1", 20, {"TEE-M": 10}) == "Partial"
    refs = set(by_ref(sandbox))

    code, out, err = run_main(capsys, "products", "delete", "S1", "S2", "--yes")
    assert code == 78
    [line] = err.strip().splitlines()
    assert line.startswith("error: products delete: 1 SKU(s) held by open orders (S1: HOLD-1")
    assert "HOLD-1 (New, 2 reserved)" in line
    assert "--force" in line
    assert set(by_ref(sandbox)) == refs  # nothing changed, S2 included

    code, out, err = run_main(capsys, "products", "deactivate", "TEE", "--json")
    assert code == 78
    doc = json.loads(out)
    assert [(o["reference"], o["sku"], o["reserved"]) for o in doc["held"]["TEE"]] == [
        ("WAIT-1", "TEE-M", 0)
    ]
    assert by_ref(sandbox)["TEE"]["active"] == "1"

    code, out, err = run_main(capsys, "products", "deactivate", "TEE", "--force")
    assert code == 0, err
    assert "forced: open orders still hold it: WAIT-1 (Partial, waiting)" in out + err
    assert by_ref(sandbox)["TEE"]["active"] == "0"

    code, out, err = run_main(capsys, "products", "delete", "S1", "S2", "--yes", "--force",
                              "--json")  # fmt: skip
    assert code == 0, err
    results = {r["sku"]: r for r in json.loads(out)["results"]}
    assert [o["reference"] for o in results["S1"]["orders"]] == ["HOLD-1"]
    assert results["S2"]["orders"] == []
    assert not {"S1", "S2"} & set(by_ref(sandbox))
    # a re-run (after Ctrl-C, say) reports them done
    code, out, err = run_main(capsys, "products", "delete", "S1", "S2", "--yes")
    assert code == 0, err
    assert "S1: already deleted" in out + err


def by_ref(sandbox: SandboxServer) -> dict[str, dict[str, Any]]:
    return {p["reference"]: p for p in sandbox.store.records("products")}
