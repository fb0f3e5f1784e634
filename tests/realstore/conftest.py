"""The real PrestaShop 8.2.1 in the suite (``-m realstore``).

One store per test process (``session`` scope: its own database name and free port), started
by ``harness.start`` from ``../shared/realps``. Every test gets it back as the installer left
it: ``rps`` resets the tables the test changed afterwards. Without PHP/MariaDB/the kit the
tests skip with one line saying what is missing; under ``CI=true`` they fail instead.

Under pytest-xdist each worker that runs a real-store test starts its own store rather than
sharing one through a lock: the tests write to the store (stock, orders, configuration) and
put it back afterwards, which is only sound while one test at a time uses it; a per-worker
store is isolated by construction (own MariaDB database, own port) and a crashed worker leaves
nothing for the others to trip on. The install costs 35-60 s of CPU, so every test here is in
the xdist group ``realstore``, which the root conftest's scheduler (``loadgroup``) sends to a
single worker: one store per run in practice. Every test here is also ``slow`` (the install
alone is far over 2 s), so ``-m "not slow"`` never starts PrestaShop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import omsflow
from tests.conftest import IN_CI

from . import harness

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("realstore"))


@pytest.fixture(scope="session")
def realstore_session() -> Iterator[harness.RealStore]:
    reason = harness.missing_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the real PrestaShop cannot run: {reason}")
        pytest.skip(f"real PrestaShop unavailable: {reason}")
    try:
        store = harness.start()
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(f"real PrestaShop did not start: {str(exc).splitlines()[0]}")
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def rps(realstore_session: harness.RealStore) -> Iterator[harness.RealStore]:
    """The real store, as installed; whatever the test changes is put back afterwards."""
    yield realstore_session
    realstore_session.reset()


class Cli:
    """``omsflow`` in-process on a fresh SQLite file in the test's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True):
        res = self.runner.invoke(omsflow, list(args), catch_exceptions=True)
        if ok:
            assert res.exit_code == 0, f"omsflow {' '.join(args)} -> {res.exit_code}\n{res.output}"
        return res

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'omsflow.db'}")
    monkeypatch.setenv("OMSFLOW_WMS_SECRET", "realstore-test-secret-0123456789abcdef")
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path)
