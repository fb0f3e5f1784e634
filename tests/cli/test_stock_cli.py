"""stock set/adjust, price set, outbox list/retry/run and sync stock through the CLI, against
a sandbox store over HTTP and a SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.runtime.db import session as dbsession
from sandbox.server import SandboxServer, start_sandbox
from tests.runtime.outbox.support import put_count, seed_catalogue, seed_store


@pytest.fixture
def shop() -> Iterator[SandboxServer]:
    with start_sandbox(products=12, orders=5, seed=4) as server:
        yield server


@pytest.fixture
def env(
    tmp_path: Path, shop: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, tuple[int, int]]:
    url = f"sqlite:///{tmp_path / 'omsflow.db'}"
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    engine = dbsession.make_engine(url)
    dbsession.upgrade(engine)
    sessions = dbsession.session_factory(engine)
    skus = seed_catalogue(sessions, shop, seed_store(sessions, shop))
    engine.dispose()
    return skus


def _invoke(*args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    from cli import omsflow

    result = runner.invoke(omsflow, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        from engine.errors import OmsflowError

        if isinstance(result.exception, OmsflowError):
            return result.exception.exit_code, result.stdout, str(result.exception)
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow
def test_stock_set_then_outbox_run_changes_the_store(
    env: dict[str, tuple[int, int]], shop: SandboxServer
) -> None:
    sku = next(k for k, (_, c) in env.items() if c == 0)
    code, out, _ = _invoke("stock", "set", sku, "42", "--json")
    assert code == 0
    assert json.loads(out)["available"] == 42
    code, out, _ = _invoke("stock", "adjust", sku, "-2")
    assert code == 0
    code, out, _ = _invoke("outbox", "list", "--json")
    [entry] = json.loads(out)
    assert {k: entry[k] for k in ("kind", "state", "attempts")} == {
        "kind": "push_stock",
        "state": "pending",
        "attempts": 0,
    }
    assert set(entry) >= {"id", "order_reference", "next_attempt_at", "last_error"}
    code, out, _ = _invoke("outbox", "run", "--once")
    assert code == 0, out
    assert "delivered 1" in out
    assert shop.store.stock_of(*env[sku]) == 40
    assert put_count(shop) == 1


def test_unknown_sku_is_one_line_and_exit_1(env: dict[str, tuple[int, int]]) -> None:
    code, _, err = _invoke("stock", "set", "NOPE-1", "3")
    assert code == 1
    assert err.count("\n") == 0
    assert "NOPE-1" in err


def test_dead_effect_listed_and_retried(
    env: dict[str, tuple[int, int]], shop: SandboxServer
) -> None:
    sku = next(k for k, (_, c) in env.items() if c == 0)
    shop.faults.update({"error_rate": 0.0})
    _invoke("stock", "set", sku, "9")
    shop.state.keys.clear()  # the key is disabled in the store: 401, not retryable
    code, out, _ = _invoke("outbox", "run", "--once")
    assert code == 1
    code, out, _ = _invoke("outbox", "list", "--dead", "--json")
    [dead] = json.loads(out)
    assert shop.key not in (dead["last_error"] or "")
    assert dead["state"] == "dead"
    shop.add_key(shop.key, {"stock_availables": ["GET", "PUT"]})
    assert _invoke("outbox", "retry", str(dead["id"]))[0] == 0
    assert _invoke("outbox", "run", "--once")[0] == 0
    assert shop.store.stock_of(*env[sku]) == 9


@pytest.mark.slow
def test_price_set_and_sync_stock(env: dict[str, tuple[int, int]], shop: SandboxServer) -> None:
    sku = next(k for k, (_, c) in env.items() if c == 0)
    pid = env[sku][0]
    code, out, _ = _invoke("price", "set", sku, "--retail", "30", "--selling", "24.5", "--json")
    assert code == 0, out
    assert json.loads(out)["queued"] == 1
    assert _invoke("outbox", "run", "--once")[0] == 0
    product = shop.store.get("products", pid)
    assert product is not None
    assert float(product["price"]) == 24.5
    code, out, _ = _invoke("sync", "stock", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["queued"] == len(env)
    assert doc["delivered"] == doc["queued"]
