"""Issue 11 through the command line: the rename experiment is a located error; a field added
under ``extra:`` in a copy of the channel spec reaches ``orders show --json`` and
``products show --json`` with no code change (sandbox over HTTP); ``spec validate --store``
reads the store's own fields; ``spec preview`` maps a record without writing anything;
``spec schema oms`` prints the model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main, omsflow
from engine.spec.schema import SCHEMA_IDS
from sandbox.server import SandboxServer, start_sandbox
from tests.spec.helpers import CHANNEL_PATH, CHANNEL_TEXT, MACHINE_PATH, line_of, replace_once

GIFT = "      - {from: gift_message, to: gift_text}\n"  # (the bundled spec keeps it too)
AFTER = "      - {from: id_currency, to: currency_id, transform: none_if_zero}\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with copies of the shipped specs and its own SQLite database."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "channels").mkdir()
    shutil.copy(MACHINE_PATH, tmp_path / "specs" / MACHINE_PATH.name)
    shutil.copy(CHANNEL_PATH, tmp_path / "channels" / CHANNEL_PATH.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'omsflow.db'}")
    return tmp_path


def write_channel(workdir: Path, text: str) -> None:
    (workdir / "channels" / CHANNEL_PATH.name).write_text(text, encoding="utf-8")


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(omsflow, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result


def as_json(*args: str, code: int = 0) -> Any:
    return json.loads(run(*args, "--json", code=code).stdout)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=12, orders=30, seed=5) as server:
        yield server


def test_rename_experiment_is_one_located_line_naming_total_paid(workdir: Path) -> None:
    text = replace_once(CHANNEL_TEXT, "to: total_paid, transform", "to: total_pad, transform")
    write_channel(workdir, text)
    result = run("spec", "validate", code=1)
    lines = result.stdout.strip().splitlines()
    where = f"channels/prestashop.yaml:{line_of(text, 'to: total_pad')}:"
    assert any(
        line.startswith(where) and "'total_pad'" in line and "did you mean 'total_paid'?" in line
        for line in lines
    ), lines
    assert any("does not map 'total_paid'" in line for line in lines), lines
    doc = as_json("spec", "validate", code=1)
    assert {p["code"] for p in doc["problems"]} == {"spec.unknown-field", "spec.missing-field"}


def test_schema_oms_prints_the_model() -> None:
    doc = json.loads(run("spec", "schema", "oms").stdout)
    assert doc["$id"] == SCHEMA_IDS["oms"]
    assert "total_paid" in doc["$defs"]["order"]["required"]
    assert doc["x-mappings"]["order_in"]["record"] == "order"


@pytest.mark.slow
def test_gift_message_under_extra_reaches_orders_show_with_no_code_change(
    workdir: Path, sandbox: SandboxServer
) -> None:
    text = replace_once(CHANNEL_TEXT, AFTER, AFTER + GIFT)
    text = replace_once(
        text,
        "      - {from: id_manufacturer, to: brand_id, transform: none_if_zero}\n",
        "      - {from: id_manufacturer, to: brand_id, transform: none_if_zero}\n"
        "    extra:\n      - {from: weight, to: weight, transform: decimal}\n",
    )
    write_channel(workdir, text)
    run("spec", "validate")
    run("store", "connect", "--url", sandbox.url, "--key", sandbox.key, "--name", "main")
    orders = as_json("orders", "list")["orders"]
    gifts = {
        str(oid): o["gift_message"]
        for oid, o in sandbox.store.tables["orders"].items()
        if o.get("gift_message")
    }
    shown = [o for o in orders if o["external_id"] in gifts]
    assert shown, "the sandbox wrote no gift message on an imported order"
    for o in orders:
        doc = as_json("orders", "show", o["reference"])
        assert doc["extra"]["gift_text"] == gifts.get(o["external_id"], "")
        assert doc["extra"]["customer_id"] == int(
            sandbox.store.tables["orders"][int(o["external_id"])]["id_customer"]
        )
        # the store's own reference of each line (empty for a combination that has none)
        refs = {
            str(r["product_reference"])
            for r in sandbox.store.tables["orders"][int(o["external_id"])]["associations"][
                "order_rows"
            ]
        }
        assert {line["extra"]["reference"] for line in doc["lines"]} <= refs
    first = shown[0]
    human = run("orders", "show", first["reference"]).stdout
    assert f"gift_text: {gifts[first['external_id']]}" in human
    product = next(p for p in as_json("products", "list")["products"] if not p["parent_sku"])
    weight = as_json("products", "show", product["sku"])["extra"]["weight"]
    assert weight is not None
    assert float(weight) >= 0


@pytest.mark.slow
def test_validate_against_a_connected_store(workdir: Path, sandbox: SandboxServer) -> None:
    run(
        "store", "connect", "--url", sandbox.url, "--key", sandbox.key, "--name", "sb", "--no-sync"
    )
    ok = run("spec", "validate", "--store", "sb").stdout
    assert ok.strip().endswith("mappings checked against store 'sb' (PrestaShop 8.2.1)")
    text = replace_once(
        CHANNEL_TEXT,
        "      - {from: price, to: price, transform: decimal}\n  variation_price_out",
        "      - {from: price, to: price, transform: decimal}\n"
        "      - {from: sku, to: prise}\n  variation_price_out",
    )
    write_channel(workdir, text)
    bad = run("spec", "validate", "--store", "sb", code=1).stdout.strip().splitlines()
    assert bad == [
        f"channels/prestashop.yaml:{line_of(text, 'to: prise')}:25: store 'sb' (PrestaShop "
        "8.2.1) products have no field 'prise' (at $.mappings.price_out.direct[1].to); "
        "did you mean 'price'? [spec.unknown-store-field]"
    ]


def test_validate_store_unknown_is_one_error_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--create", "spec", "validate", "--store", "nope"])
    assert info.value.code != 0
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: store 'nope' not found (known: none)"
    ]


def test_preview_sample_order_shows_every_mapped_field_with_its_source(workdir: Path) -> None:
    doc = as_json("spec", "preview", "order", "--sample")
    fields = {f["field"]: f for f in doc["fields"]}
    assert fields["total_paid"]["from"] == "total_paid_tax_incl"
    assert fields["total_paid"]["value"] == "68.200000"
    assert fields["ordered_at"]["store_value"] == "2026-11-30 08:41:33"  # shop time
    assert fields["ordered_at"]["value"] == "2026-11-30T07:41:33+00:00"  # UTC
    assert fields["lines[1].combination_id"]["from"] == "order_rows[1].product_attribute_id"
    assert doc["result"]["reference"] == "XKBKNABJK"
    assert len(doc["result"]["lines"]) == 2
    assert doc["unmapped"] == []  # customer and addresses are mapped (read around live orders)
    text = run("spec", "preview", "order", "--sample").stdout
    assert "total_paid" in text
    assert "<- total_paid_tax_incl via decimal" in text
    product = as_json("spec", "preview", "product", "--sample")
    assert product["result"]["name"] == "Hummingbird printed t-shirt"
    assert [v["store_id"] for v in product["variations"]] == [1, 2]


def test_preview_needs_a_reference_or_sample(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["spec", "preview", "order"])
    assert info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: give a reference or --sample")
