"""Quantities are range-checked at the command line: a number no store row can hold is a
usage error naming the argument, never an OverflowError traceback (issue 13)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import STOCK_MAX, omsflow
from engine.runtime.listing.drafts import STOCK_MAX as DRAFTS_STOCK_MAX


def test_one_limit_for_the_cli_and_the_workbook() -> None:
    assert STOCK_MAX == DRAFTS_STOCK_MAX


@pytest.mark.parametrize(
    ("args", "exit_code", "says"),
    [
        (["stock", "set", "SKU", "99999999999999999999"], 2, "0<=x<=2147483647"),
        # a negative quantity is the same usage error, not "No such option '-3'"
        (["stock", "set", "SKU", "-3"], 2, "'QTY': -3 is not in the range 0<=x<=2147483647"),
        (["stock", "adjust", "SKU", "+99999999999999999999"], 78, "beyond"),
        (
            [
                "products",
                "create",
                "--sku",
                "S",
                "--name",
                "n",
                "--price",
                "1",
                "--stock",
                "99999999999999999999",
            ],
            2,
            "0<=x<=2147483647",
        ),
    ],
)
def test_quantities_out_of_range(tmp_path, monkeypatch, args, exit_code, says) -> None:
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'o.db'}")
    res = CliRunner().invoke(omsflow, args)
    assert res.exit_code in (exit_code, 1 if exit_code == 78 else exit_code), res.output
    text = res.output + (str(res.exception) if res.exception else "")
    assert says in text
    assert "Traceback" not in res.output
    assert not isinstance(res.exception, OverflowError)
